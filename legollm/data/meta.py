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
from legollm.core.tokenization.specs import resolve_spec_paths, spec_sha256
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


def check_split_file(path: str | os.PathLike[str], dtype: str, meta: dict[str, Any] | None) -> int:
    """Check a ``.bin`` against its meta.json before it is memmapped; return its token count.

    The byte size must be exactly the token count meta.json recorded times the dtype's
    width: a truncated copy or a file from another prepare would otherwise train
    silently on the wrong tokens. An empty file gets its own message (``np.memmap``
    would only say it cannot map an empty file).
    """
    p = Path(path)
    itemsize = np.dtype(DTYPES[dtype]).itemsize
    actual = p.stat().st_size
    expected_tokens = (meta or {}).get("num_tokens", {}).get(p.stem)
    if expected_tokens is not None and actual != expected_tokens * itemsize:
        raise DataError(
            f"{p} is {actual:,} bytes but meta.json says {expected_tokens:,} {dtype} tokens "
            f"= {expected_tokens * itemsize:,} bytes; the file is truncated or from another "
            f"prepare: re-run data-prepare"
        )
    if actual == 0:
        if expected_tokens == 0:
            raise DataError(
                f"{p} holds no tokens: data-prepare put no documents in the {p.stem!r} split; "
                "re-run it with more documents (or a larger val_fraction for 'val')"
            )
        raise DataError(f"{p} is empty; re-run data-prepare")
    if actual % itemsize:
        raise DataError(f"{p} size is not a multiple of {dtype}; wrong dtype or corrupt file")
    return actual // itemsize


def write_meta(out_dir: str | os.PathLike[str], meta: dict[str, Any]) -> Path:
    """Write ``meta.json`` atomically (temp file + rename)."""
    path = Path(out_dir) / "meta.json"
    with atomic_write(path) as f:
        json.dump(meta, f, indent=2, sort_keys=False)
        f.write("\n")
    return path


def verify_tokenizer(meta: dict[str, Any], data_dir: str | os.PathLike[str]) -> None:
    """Check that the tokenizer files beside a dataset are the ones that wrote its ids.

    ``meta`` comes from :func:`read_meta` (absolute paths). A mismatch means the files
    changed after the prepare (edited, or a re-prepare that did not finish), and the
    ids in the ``.bin`` files would be decoded, and copied into runs, with the wrong
    vocabulary. Datasets written before the hash was recorded are not checked.
    """
    expected = meta.get("tokenizer_sha256")
    if expected is None:
        return
    try:
        actual = spec_sha256(meta["tokenizer"])
    except OSError as e:
        raise DataError(
            f"tokenizer file of {data_dir} is missing ({e.filename}); re-run data-prepare"
        ) from None
    if actual != expected:
        raise DataError(
            f"the tokenizer files of {data_dir} do not match meta.json's tokenizer_sha256: "
            "they changed after the data was prepared (an interrupted re-prepare?), so the "
            "ids in its .bin files may stand for other tokens; re-run data-prepare"
        )


def read_meta(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read the ``meta.json`` of a prepared directory (or the one beside a ``.bin``).

    Relative paths in the tokenizer spec are resolved against the directory, so
    ``load_tokenizer(read_meta(d)["tokenizer"])`` works from any working directory.
    """
    p = Path(path)
    meta_path = p / "meta.json" if p.is_dir() else p.with_name("meta.json")
    if not meta_path.is_file():
        raise DataError(
            f"no meta.json at {meta_path}; point at a directory written by data-prepare "
            "(or re-run it, if it was interrupted)"
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
    meta["tokenizer"] = resolve_spec_paths(meta["tokenizer"], meta_path.parent)
    return meta


__all__ = [
    "DTYPES",
    "SPLITS",
    "check_dtype",
    "check_split_file",
    "dtype_for_max_id",
    "read_meta",
    "verify_tokenizer",
    "write_meta",
]
