"""Download named datasets (or any URL) safely.

Safe means: the bytes stream into a temp file inside the destination folder while
their sha256 is computed; only a complete file with the right checksum is renamed
to its final name, so a crash, a dropped connection or a tampered file never leaves
a partial file where the real one belongs. Transient failures (connection reset,
timeout, HTTP 5xx, a short body) are retried with exponential backoff; a 404 is not.
Names and archive members that would land outside the folder are refused.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from legollm.core.exceptions import DownloadError
from legollm.core.utils import atomic_write, file_sha256


@dataclass(frozen=True)
class Dataset:
    url: str
    sha256: str
    filename: str
    description: str


DATASETS: dict[str, Dataset] = {
    "tiny_shakespeare": Dataset(
        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        "tiny_shakespeare.txt",
        "Tiny Shakespeare, the classic char-level corpus (1.1 MB)",
    ),
    "the_verdict": Dataset(
        "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch02/01_main-chapter-code/the-verdict.txt",
        "b41e41a68f0398a3154ae69e2e4c0e2694e17fe0d66730536837f1b01935b31f",
        "the_verdict.txt",
        "'The Verdict', Edith Wharton short story (20 KB)",
    ),
}


class _Transient(Exception):
    """A failure worth retrying."""


def safe_join(root: str | os.PathLike[str], name: str) -> Path:
    """``root/name``, refusing names that would resolve outside ``root``."""
    base = Path(root).resolve()
    target = (base / name).resolve()
    if not name or Path(name).is_absolute() or not target.is_relative_to(base) or target == base:
        raise DownloadError(f"refusing to write {name!r}: it would land outside {base}")
    return target


def download(
    name: str | None,
    dest_dir: str | os.PathLike[str],
    *,
    url: str | None = None,
    sha256: str | None = None,
    filename: str | None = None,
    retries: int = 3,
    backoff: float = 1.0,
    timeout: float = 30.0,
    extract: bool = False,
    progress: bool = True,
) -> Path:
    """Download the registered dataset ``name`` (or ``url``) into ``dest_dir``; return its path.

    A file already there with the expected checksum is not downloaded again.
    """
    if url is None:
        if name not in DATASETS:
            raise DownloadError(
                f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))} (or pass --url)"
            )
        ds = DATASETS[name]
        url, sha256, filename = ds.url, sha256 or ds.sha256, filename or ds.filename
    if urllib.parse.urlparse(url).scheme not in ("http", "https"):
        raise DownloadError(f"only http(s) URLs can be downloaded, got {url!r}")
    filename = filename or name or Path(urllib.parse.urlparse(url).path).name
    if not filename or "/" in filename or "\\" in filename or filename in (".", ".."):
        raise DownloadError(f"refusing file name {filename!r}; give a plain name with --filename")
    dest = Path(dest_dir)
    final = safe_join(dest, filename)
    if final.is_file() and sha256 and file_sha256(final) == sha256.lower():
        return final

    created = _make_dirs(dest)
    try:
        _fetch_with_retries(url, final, sha256, retries, backoff, timeout, progress)
    except BaseException:
        for d in reversed(created):  # a failed download leaves no empty folders behind
            with suppress(OSError):
                d.rmdir()
        raise
    if extract:
        extract_archive(final, dest)
    return final


def _make_dirs(dest: Path) -> list[Path]:
    """Create ``dest`` and its missing parents; return the folders created, outermost first."""
    missing = [d for d in (dest, *dest.parents) if not d.exists()][::-1]
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(
            f"cannot create {dest}: {e.strerror}; choose a folder you can write to"
        ) from None
    return missing


def _fetch_with_retries(url, final, sha256, retries, backoff, timeout, progress) -> None:
    for attempt in range(retries + 1):
        try:
            _fetch(url, final, sha256, timeout, progress)
            return
        except _Transient as e:
            if attempt == retries:
                raise DownloadError(
                    f"download of {url} failed after {retries + 1} attempts: {e}. "
                    f"If you are offline, get the file another way and pass it to "
                    f"data-prepare as a local input"
                ) from None
            time.sleep(backoff * 2**attempt)


def _fetch(url: str, final: Path, sha256: str | None, timeout: float, progress: bool) -> None:
    from tqdm import tqdm

    req = urllib.request.Request(url, headers={"User-Agent": "legollm"})
    with atomic_write(final, "wb") as f:  # a failed or mismatched download leaves nothing
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                total = int(resp.headers.get("Content-Length") or 0) or None
                h, got = hashlib.sha256(), 0
                with tqdm(
                    total=total, unit="B", unit_scale=True, desc=final.name, disable=not progress
                ) as bar:
                    while block := resp.read(1 << 16):
                        f.write(block)
                        h.update(block)
                        got += len(block)
                        bar.update(len(block))
                if total is not None and got != total:
                    raise _Transient(f"connection closed after {got} of {total} bytes")
        except urllib.error.HTTPError as e:
            if e.code >= 500 or e.code == 429:
                raise _Transient(f"HTTP {e.code} {e.reason}") from None
            raise DownloadError(
                f"HTTP {e.code} {e.reason} for {url}; check the name or URL"
            ) from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, socket.gaierror):
                host = urllib.parse.urlparse(url).hostname
                raise DownloadError(
                    f"cannot resolve {host}: you seem to be offline. Download the file elsewhere "
                    f"and pass the local file to data-prepare (--inputs PATH) instead"
                ) from None
            raise _Transient(str(e.reason)) from None
        except (TimeoutError, ConnectionError, http.client.HTTPException, OSError) as e:
            raise _Transient(f"{type(e).__name__}: {e}") from None
        digest = h.hexdigest()
        if sha256 and digest != sha256.lower():
            raise DownloadError(
                f"checksum mismatch for {url}: expected sha256 {sha256}, got {digest}; "
                "the file was not saved"
            )


def extract_archive(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> list[Path]:
    """Extract a .zip or .tar(.gz/.bz2/.xz) into ``dest``, refusing members outside it."""
    archive, out = Path(archive), []
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            members = [(m.filename, m) for m in z.infolist() if not m.is_dir()]
            targets = [safe_join(dest, n) for n, _ in members]  # check all before writing
            for (_, m), t in zip(members, targets, strict=True):
                t.parent.mkdir(parents=True, exist_ok=True)
                with z.open(m) as src, open(t, "wb") as f:
                    f.write(src.read())
                out.append(t)
        return out
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as t:
            members = t.getmembers()
            for m in members:
                safe_join(dest, m.name)
                if m.issym() or m.islnk() or not (m.isfile() or m.isdir()):
                    raise DownloadError(
                        f"refusing archive member {m.name!r}: links are not allowed"
                    )
            t.extractall(dest, members=members, filter="data")
            return [safe_join(dest, m.name) for m in members if m.isfile()]
    raise DownloadError(f"{archive} is not a zip or tar archive; drop --extract")


__all__ = ["DATASETS", "Dataset", "download", "extract_archive", "safe_join"]
