"""Small file helpers used across LegoLLM."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

import yaml

from legollm.core.exceptions import ConfigError, DataError


def read_file(path: str | os.PathLike[str], encoding: str = "utf-8") -> str:
    """Read a whole text file, with an error that names the file when it is missing."""
    p = Path(path)
    if p.is_dir():
        raise DataError(f"{p} is a folder, not a file; give the path of a text file inside it")
    if not p.is_file():
        raise DataError(f"file not found: {p} (check the path; it must be a readable text file)")
    try:
        return p.read_text(encoding=encoding)
    except UnicodeDecodeError as e:
        raise DataError(f"{p} is not valid {encoding} text: {e}") from e


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temp file beside ``path`` and rename it into place only on success.

    A crash or an exception inside the block leaves whatever was at ``path`` before
    untouched: readers never see a half-written file.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_path(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Return ``(tmp, final)`` for writers that need a path (e.g. ``torch.save``).

    Write to ``tmp`` then call ``os.replace(tmp, final)``; see :func:`atomic_write`.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp")
    os.close(fd)
    return Path(tmp), final


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes, read in chunks (prepared data, checkpoints, downloads)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def read_yaml_mapping(path: str | os.PathLike[str], what: str = "config fields") -> dict:
    """Read a YAML file that must hold a mapping, with one clear ConfigError otherwise."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        d = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p} is not valid YAML: {e}") from e
    if not isinstance(d, dict):
        raise ConfigError(f"{p} must hold a mapping of {what}")
    return d
