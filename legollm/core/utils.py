"""Small file helpers used across LegoLLM."""

from __future__ import annotations

import hashlib
import os
import re
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


TEMP_SUFFIX = ".tmp"
_OUR_TEMP = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")  # what mkstemp makes in _temp_beside


def _temp_beside(path: str | os.PathLike[str]) -> Path:
    """Create an empty temp file ``.NAME.XXXX.tmp`` beside ``path`` and return its path.

    ``mkstemp`` makes it mode 0600 so that no one else can race us to it; the file is
    then given the mode a plain ``open()`` would (0666 less the umask), so a renamed
    checkpoint is as readable as ``metrics.jsonl`` next to it.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=TEMP_SUFFIX)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
    finally:
        os.close(fd)
    return Path(tmp)


def _umask() -> int:
    """The process umask, read without changing it where Linux allows.

    Elsewhere reading it means setting it, so it is set straight back.
    """
    with suppress(OSError, StopIteration, ValueError), open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temp path beside ``path``; rename it into place only if the block succeeds.

    For writers that need a path rather than a file object (``torch.save``,
    ``savefig``, ``safetensors``). On an exception, the temp file is removed and
    whatever was at ``path`` before is left untouched: readers never see a
    half-written file.
    """
    final = Path(path)
    tmp = _temp_beside(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temp file beside ``path`` and rename it into place only on success.

    The data is flushed to disk before the rename, so a crash right after leaves
    either the old file or the whole new one; see :func:`atomic_path`.
    """
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


def remove_stale_temps(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete the temp files a killed writer left in ``directory``; returns them.

    Only our own naming is touched (``.NAME.XXXXXXXX.tmp``, see :func:`_temp_beside`).
    Call it when a run starts, before anything writes there: a ``kill -9`` during
    ``torch.save`` otherwise leaves a ``.latest.pt.*.tmp`` as large as a checkpoint.
    """
    removed = []
    for p in Path(directory).glob(f".*{TEMP_SUFFIX}"):
        if _OUR_TEMP.fullmatch(p.name) and p.is_file():
            with suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed


def check_writable_dir(path: str | os.PathLike[str], what: str) -> Path:
    """Fail now, in one line, if ``path`` cannot be (or become) a directory we write into.

    Long jobs write their outputs late: finding out after an hour of training that the
    folder is read-only loses the hour. Nothing is created: a temp directory made and
    removed in the nearest existing ancestor proves the write works (permission bits
    alone would not: root ignores them, and immutable or read-only mounts refuse root).
    """
    target = Path(path)
    probe = target.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise ConfigError(f"cannot write to {what} {target}: {probe} is a file; choose a folder")
    try:
        os.rmdir(tempfile.mkdtemp(dir=probe, prefix=".legollm-probe-"))
    except OSError as e:
        raise ConfigError(
            f"cannot write to {what} {target}: {probe} refuses new files ({e.strerror}); "
            "choose a folder you can write to"
        ) from None
    return target


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
