"""meta.json: the contract between a prepared dataset and everything that reads it.

A prepared directory holds ``train.bin`` and ``val.bin`` (flat arrays of token ids,
no header) and ``meta.json`` saying how to read them: the dtype, the vocabulary
size (the trainer sizes its embedding from it), the end-of-text id, and the
tokenizer spec that rebuilds the exact tokenizer that wrote the ids.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from legollm.core.exceptions import ConfigError, DataError
from legollm.core.utils import atomic_write

META_VERSION = 1
SPLITS = ("train", "val")
# The dtypes a .bin may hold, smallest first. uint16 halves disk and page-cache
# traffic against uint32, so it is used whenever every id fits.
DTYPES = {"uint16": np.uint16, "uint32": np.uint32}


def dtype_for_max_id(max_id: int) -> str:
    """Smallest unsigned dtype that can store every id in ``0..max_id``.

    >>> dtype_for_max_id(65535), dtype_for_max_id(65536)
    ('uint16', 'uint32')
    """
    if max_id < 0:
        raise ConfigError(f"max token id must be >= 0, got {max_id}")
    for name, dt in DTYPES.items():
        if max_id <= np.iinfo(dt).max:
            return name
    raise ConfigError(f"token id {max_id} does not fit in uint32; no supported dtype can hold it")


def check_dtype(dtype: str, max_id: int) -> str:
    """Validate a requested dtype against the largest id the tokenizer can emit."""
    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; use one of {sorted(DTYPES)} or 'auto'")
    limit = int(np.iinfo(DTYPES[dtype]).max)
    if max_id > limit:
        raise ConfigError(
            f"dtype {dtype} holds ids up to {limit} but the tokenizer can emit id {max_id} "
            f"(vocab size {max_id + 1}); use dtype 'auto' or 'uint32'"
        )
    return dtype


def write_meta(out_dir: str | os.PathLike[str], meta: dict[str, Any]) -> Path:
    """Write ``meta.json`` atomically (temp file + rename)."""
    path = Path(out_dir) / "meta.json"
    with atomic_write(path) as f:
        json.dump(meta, f, indent=2, sort_keys=False)
        f.write("\n")
    return path


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the ``meta.json`` of a prepared directory (or the one beside a ``.bin``).

    Relative paths in the tokenizer spec are resolved against the directory, so
    ``load_tokenizer(read_meta(d)["tokenizer"])`` works from any working directory.
    """
    p = Path(path)
    meta_path = p / "meta.json" if p.is_dir() else p.with_name("meta.json")
    if not meta_path.is_file():
        raise DataError(
            f"no meta.json at {meta_path}; point at a directory written by data-prepare"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{meta_path} is not valid JSON ({e}); re-run data-prepare") from e
    for key in ("vocab_size", "dtype", "tokenizer", "num_tokens"):
        if key not in meta:
            raise DataError(f"{meta_path} lacks {key!r}; re-run data-prepare")
    if meta["dtype"] not in DTYPES:
        raise DataError(f"{meta_path} has unknown dtype {meta['dtype']!r}")
    from legollm.core.tokenization.specs import resolve_spec_paths

    meta["tokenizer"] = resolve_spec_paths(meta["tokenizer"], meta_path.parent)
    return meta


__all__ = ["DTYPES", "SPLITS", "check_dtype", "dtype_for_max_id", "read_meta", "write_meta"]
