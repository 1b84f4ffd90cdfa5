"""Leaving LegoLLM: a model as files other tools run.

- ``gguf``: a GGUF file for llama.cpp and everything built on it (Ollama, LM Studio),
  in f32, f16 or q8_0, with the tokenizer and chat template inside.
- ``gguf_vocab``: our byte-level BPE tokenizer as llama.cpp's tokenizer fields.
- ``hf``: a Hugging Face directory (config.json, safetensors, tokenizer files).

Both take what :func:`legollm.models.loading.load_model` returns, so everything
``legollm generate`` runs (a LoRA run merged first) can be exported.
"""

from legollm.export.gguf import export_gguf, gguf_architecture
from legollm.export.hf import export_hf

__all__ = ["export_gguf", "export_hf", "gguf_architecture"]
