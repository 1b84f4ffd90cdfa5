"""Core: what every layer may use, and which uses nothing above it.

- ``exceptions``: the error hierarchy (LegoLLMError and one subclass per area).
- ``utils``: reading files, atomic writes (temp file + rename), hashes, YAML mappings.
- ``runtime``: the one device and precision policy, and unwrapping DDP / compiled models.
- ``tokenization``: every tokenizer, and the specs that rebuild one from plain data.
"""
