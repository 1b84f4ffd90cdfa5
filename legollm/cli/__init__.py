"""The one ``legollm`` command; each subcommand lives in its own module.

- ``main``: the parser and the one-line error handling.
- ``demo``, ``tokenizer``, ``data``, ``train``, ``generate``, ``chat``, ``sft``, ``dpo``:
  one subcommand each (``data`` also backs data-download / data-prepare / data-summary).
"""
