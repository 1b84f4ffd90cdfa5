"""Data layer: from raw text to train.bin / val.bin and batches (it needs only core).

- ``corpus``: the embedded default corpus (Python's own reference docs).
- ``download``: named datasets fetched atomically with checksums.
- ``prepare``: tokenize documents into train.bin / val.bin + meta.json, committed as a whole.
- ``meta``: reading and checking meta.json (sizes, tokenizer hash).
- ``summary``: statistics and a plot of a prepared dataset.
- ``loader``: the memory-mapped TokenDataLoader (random, sequential or epoch windows).

Names are imported lazily so ``legollm.data.corpus`` (and ``legollm --help``) never
pay for importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TokenDataLoader": "legollm.data.loader",
    "read_meta": "legollm.data.meta",
    "PrepareConfig": "legollm.data.prepare",
    "prepare_dataset": "legollm.data.prepare",
    "CharTokenizer": "legollm.core.tokenization.specs",
    "load_tokenizer": "legollm.core.tokenization.specs",
    "download": "legollm.data.download",
    "DATASETS": "legollm.data.download",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'legollm.data' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
