"""Prepare: raw text -> ``train.bin`` / ``val.bin`` + ``meta.json``.

The steps, each bounded in memory whatever the corpus size:

1. Validate the whole config (inputs exist, tokenizer loads, dtype fits) before any work.
2. Stream documents out of the inputs (text files split by a separator, JSONL records).
3. Tokenize them in chunks of ``chunk_chars`` with the tokenizer's ``encode_batch``
   on all cores, appending the end-of-text id after each document, into one temp
   token file, remembering each document's length.
4. Shuffle the *documents* with the seed and split them into val / train, so no
   document is in both (a single document is cut by tokens instead: its tail goes to
   val); copy each split's documents out of the (memmapped) temp file.
5. Write ``meta.json`` last: a folder with a meta.json is a complete dataset.

Steps 3-5 happen in a staging folder inside the output folder (the tokenizer copy
included), which is then moved into place as a whole: an interrupted re-prepare
leaves the previous dataset, or a folder without meta.json, never a mix of the two.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
import time
from array import array
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from legollm.core.config import config_from_dict
from legollm.core.exceptions import ConfigError, DataError
from legollm.core.tokenization.specs import (
    EOT,
    PATH_KEYS,
    TOKENIZER_TYPES,
    CharTokenizer,
    copy_spec_files,
    load_tokenizer,
    max_token_id,
    spec_sha256,
)
from legollm.core.utils import check_writable_dir, file_sha256, read_yaml_mapping
from legollm.data.meta import (
    DTYPES,
    META_VERSION,
    SPLITS,
    check_dtype,
    dtype_for_max_id,
    write_meta,
)

TEXT_EXTENSIONS = [".txt", ".md", ".rst", ".text", ".jsonl"]
READ_BLOCK = 1 << 18  # characters read at a time when splitting a text file
SPLIT_MODES = {"file": None, "paragraph": r"\n[ \t]*\n\s*", "line": r"\n"}


@dataclass
class PrepareConfig:
    """Everything ``prepare_dataset`` needs; every field is also a ``data-prepare`` flag."""

    inputs: list[str]
    output_dir: str
    tokenizer: str = "char"  # char | gpt2 | tiktoken | legollm | hf_json | llama3
    tokenizer_path: str | None = None  # the .tiktoken, LegoLLM, tokenizer.json or .model file
    encoder_json: str | None = None  # GPT-2 files
    vocab_bpe: str | None = None
    pattern: str | None = None  # tiktoken split pattern: "gpt2", "gpt4" or a regex
    special_tokens: dict[str, int] | None = None
    # How a text file becomes documents: "file" (the whole file), "paragraph"
    # (blank-line separated), "line", or "regex:<pattern>" (the separator).
    split: str = "file"
    # Group consecutive pieces into documents of about this many characters; lets a
    # single-file corpus (Shakespeare) be split by documents without tiny documents.
    max_doc_chars: int | None = None
    text_field: str = "text"  # the JSONL field holding the text
    val_fraction: float = 0.1
    seed: int = 1337
    shuffle: bool = True
    dtype: str = "auto"  # auto | uint16 | uint32
    num_workers: int | None = None  # tokenizer processes; None = all cores
    chunk_chars: int = 4_000_000  # characters tokenized per batch (bounds memory)
    extensions: list[str] = field(default_factory=lambda: list(TEXT_EXTENSIONS))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PrepareConfig:
        if isinstance(d, dict) and isinstance(d.get("inputs"), str):
            d = {**d, "inputs": [d["inputs"]]}
        config = config_from_dict(cls, d, "prepare config")
        empty = [k for k in ("inputs", "output_dir") if not getattr(config, k)]
        if empty:
            raise ConfigError(f"prepare config needs {empty}")
        return config

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> PrepareConfig:
        if Path(path).is_dir():
            raise ConfigError(f"--config {path} is a folder; give a YAML file such as "
                              "configs/data/shakespeare_char.yaml")  # fmt: skip
        return cls.from_dict(read_yaml_mapping(path, "prepare fields"))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ----------------------------------------------------------------------------- documents


def collect_files(config: PrepareConfig) -> list[Path]:
    """Expand the inputs (files, folders searched recursively) into a sorted file list."""
    files: list[Path] = []
    exts = {e.lower() for e in config.extensions}
    for item in config.inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in exts)
            if not found:
                raise DataError(f"input folder {p} holds no {sorted(exts)} files")
            files.extend(found)
        elif p.is_file():
            files.append(p)
        else:
            raise DataError(f"input not found: {p} (give text/JSONL files or folders)")
    return files


def _separator(split: str) -> re.Pattern | None:
    if split in SPLIT_MODES:
        pat = SPLIT_MODES[split]
    elif split.startswith("regex:"):
        pat = split[len("regex:") :]
    else:
        raise ConfigError(f"unknown split {split!r}; use file, paragraph, line or regex:<pattern>")
    try:
        return re.compile(pat) if pat else None
    except re.error as e:
        raise ConfigError(f"split regex {pat!r} does not compile: {e}") from e


def _pieces(f, sep: re.Pattern | None, block: int = READ_BLOCK) -> Iterator[tuple[str, str]]:
    """Yield (text, separator-after-it) from a text stream, reading ``block`` chars at a time."""
    if sep is None:
        yield f.read(), ""
        return
    buf = ""
    while True:
        chunk = f.read(block)
        eof = not chunk
        buf += chunk
        start = 0
        for m in sep.finditer(buf):
            # a match touching the end of the buffer might continue in the next block
            if (not eof and m.end() >= len(buf)) or m.end() == m.start():
                continue
            yield buf[start : m.start()], m.group()
            start = m.end()
        buf = buf[start:]
        if eof:
            if buf:
                yield buf, ""
            return


def iter_documents(config: PrepareConfig, files: list[Path] | None = None) -> Iterator[str]:
    """Stream the documents of the inputs, in file order (before any shuffle)."""
    sep = _separator(config.split)
    for path in files if files is not None else collect_files(config):
        if path.suffix.lower() == ".jsonl":
            yield from _jsonl_documents(path, config.text_field)
            continue
        try:
            with open(path, encoding="utf-8", newline="") as f:
                doc, joiner = "", ""
                for text, after in _pieces(f, sep):
                    if not text.strip():
                        continue
                    if config.max_doc_chars and doc and len(doc) + len(text) > config.max_doc_chars:
                        yield doc
                        doc = ""
                    doc = doc + joiner + text if doc else text
                    joiner = after
                    if not config.max_doc_chars:
                        yield doc
                        doc = ""
                if doc:
                    yield doc
        except UnicodeDecodeError as e:
            raise DataError(f"{path} is not UTF-8 text ({e}); convert it or leave it out") from e


def _jsonl_documents(path: Path, text_field: str) -> Iterator[str]:
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno} is not valid JSON: {e}") from e
            text = record.get(text_field) if isinstance(record, dict) else None
            if not isinstance(text, str):
                raise DataError(
                    f"{path}:{lineno} has no string field {text_field!r}; set text_field"
                )
            if text.strip():
                yield text


def _batches(docs: Iterator[str], chunk_chars: int) -> Iterator[list[str]]:
    batch, size = [], 0
    for d in docs:
        batch.append(d)
        size += len(d)
        if size >= chunk_chars:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


# ----------------------------------------------------------------------------- tokenizer


def _tokenizer_spec(config: PrepareConfig) -> dict[str, Any]:
    kind = config.tokenizer
    if kind not in TOKENIZER_TYPES:
        raise ConfigError(
            f"unknown tokenizer type {kind!r}; use one of {', '.join(TOKENIZER_TYPES)}"
        )
    spec: dict[str, Any] = {"type": kind}
    if kind == "gpt2":
        spec.update(encoder_json=config.encoder_json, vocab_bpe=config.vocab_bpe)
    elif kind != "char":
        spec.update(path=config.tokenizer_path, pattern=config.pattern)
    for key in PATH_KEYS.get(kind, ()):
        flag = "tokenizer_path" if key == "path" else key
        if not spec.get(key):
            raise ConfigError(f"tokenizer {kind} needs {flag}")
        if Path(spec[key]).is_dir():
            raise ConfigError(f"{flag}={spec[key]} is a folder; give the tokenizer file in it")
        if not Path(spec[key]).is_file():
            raise ConfigError(f"tokenizer file not found: {flag}={spec[key]}")
    if config.special_tokens:
        spec["special_tokens"] = dict(config.special_tokens)
    return spec


# ----------------------------------------------------------------------------- prepare

STAGE_PREFIX = ".prepare."  # staging folders inside output_dir: .prepare.XXXX.tmp


def prepare_dataset(
    config: PrepareConfig | dict[str, Any] | None = None, *, verbose: bool = False, **kwargs: Any
) -> Path:
    """Prepare a dataset; returns the output folder. See the module docstring.

    ``verbose`` prints each step (files, tokens, the split, the commit) to stderr.
    """
    if config is None:
        config = PrepareConfig.from_dict(kwargs)
    elif isinstance(config, dict):
        config = PrepareConfig.from_dict({**config, **kwargs})
    elif kwargs:
        config = dataclasses.replace(config, **kwargs)
    say = _say if verbose else lambda _msg: None

    # 1. validate everything before any work
    files, spec, tok, dtype = _validate(config)
    say(f"{len(files)} input file(s), {sum(f.stat().st_size for f in files):,} bytes; "
        f"tokenizer {spec['type']}, vocab {max_token_id(tok) + 1:,}, dtype {dtype}")  # fmt: skip
    out = Path(config.output_dir)

    # 2-5. build the whole dataset in a staging folder, then move it into place
    stage = _make_stage(out)
    try:
        meta = _build(config, files, spec, tok, dtype, stage, say)
        _commit(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    say(
        f"committed {out}: " + ", ".join(f"{k} {v:,} tokens" for k, v in meta["num_tokens"].items())
    )
    return out


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _validate(config: PrepareConfig) -> tuple[list[Path], dict[str, Any], Any, str]:
    """Check the config and load the tokenizer: (files, spec, tokenizer, dtype)."""
    if not 0.0 <= config.val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1), got {config.val_fraction}")
    if config.chunk_chars < 1 or (config.max_doc_chars is not None and config.max_doc_chars < 1):
        raise ConfigError("chunk_chars and max_doc_chars must be positive")
    _separator(config.split)
    files = collect_files(config)
    spec = _tokenizer_spec(config)
    check_writable_dir(config.output_dir, "output_dir")  # before reading the data

    if spec["type"] == "char":  # the vocabulary is the data's own characters
        tok = CharTokenizer.from_text(iter_documents(config, files))
        if config.special_tokens:
            extra = {s: i for s, i in config.special_tokens.items() if s not in tok.special_tokens}
            tok = CharTokenizer(tok.chars, {**tok.special_tokens, **extra})
        spec = tok.spec()
    else:
        tok = load_tokenizer(spec)
    if tok.special_tokens.get(EOT) is None:
        raise ConfigError(
            f"the tokenizer has no {EOT} token to separate documents; register it "
            f"(special_tokens: {{'{EOT}': ID}})"
        )
    max_id = max_token_id(tok)
    dtype = (
        dtype_for_max_id(max_id) if config.dtype == "auto" else check_dtype(config.dtype, max_id)
    )
    return files, spec, tok, dtype


def _make_stage(out: Path) -> Path:
    """Create ``out`` and a fresh staging folder in it (same file system, so the commit
    is a few renames); remove the staging folders a killed prepare left behind."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        for stale in out.glob(f"{STAGE_PREFIX}*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        return Path(tempfile.mkdtemp(dir=out, prefix=STAGE_PREFIX, suffix=".tmp"))
    except OSError as e:
        raise DataError(
            f"cannot write to output_dir {out}: {e.strerror}; choose a folder you can write to"
        ) from None


def _build(config, files, spec, tok, dtype, stage: Path, say) -> dict[str, Any]:
    """Write train.bin, val.bin, tokenizer/ and meta.json into ``stage``; return the meta."""
    np_dtype, eot = DTYPES[dtype], tok.special_tokens[EOT]
    spec = copy_spec_files(spec, stage)  # the dataset keeps working if the originals move
    tmp_tokens = stage / "tokens.tmp"
    workers = config.num_workers if config.num_workers is not None else os.cpu_count()
    t0 = time.perf_counter()
    lens = _tokenize_to(
        tmp_tokens, tok, iter_documents(config, files), eot, np_dtype, config.chunk_chars, workers
    )
    if not len(lens):
        raise DataError(f"the inputs hold no documents: {[str(p) for p in files]}")
    total = int(lens.sum())
    say(f"tokenized {len(lens):,} document(s) into {total:,} tokens "
        f"in {time.perf_counter() - t0:.1f}s")  # fmt: skip

    # seeded document shuffle, split by documents (or one document by tokens), copy out
    if len(lens) == 1 and config.val_fraction > 0:
        splits, unit = split_one_document(total, config.val_fraction), "tokens"
        say(f"one document: the last {config.val_fraction:.0%} of its tokens go to val")
    else:
        order = split_documents(len(lens), config.val_fraction, config.seed, config.shuffle)
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]])  # (n_docs,) offsets in tmp
        splits = {k: (starts[idx], lens[idx]) for k, idx in order.items()}
        unit = "documents"
    tokens = np.memmap(tmp_tokens, dtype=np_dtype, mode="r")
    for name, (seg_starts, seg_lens) in splits.items():
        _write_split(stage / f"{name}.bin", tokens, seg_starts, seg_lens, config.chunk_chars)
    del tokens
    tmp_tokens.unlink()

    meta = {
        "version": META_VERSION,
        "vocab_size": max_token_id(tok) + 1,
        "dtype": dtype,
        "eot_token_id": int(eot),
        "tokenizer": spec,
        "tokenizer_sha256": spec_sha256({**spec, **_abs_paths(spec, stage)}),
        "num_tokens": {k: int(v[1].sum()) for k, v in splits.items()},
        # each split is a run of documents, each ending in the end-of-text id
        "num_documents": {k: _count_documents(v[1], unit) for k, v in splits.items()},
        "split_unit": unit,
        "sources": [
            {"path": str(p), "bytes": p.stat().st_size, "sha256": file_sha256(p)} for p in files
        ],
        "config": config.to_dict(),
    }
    write_meta(stage, meta)
    return meta


def _count_documents(seg_lens: np.ndarray, unit: str) -> int:
    if unit == "tokens":  # one piece of the single document, whatever its segments
        return int(seg_lens.sum() > 0)
    return len(seg_lens)


def _commit(stage: Path, out: Path) -> None:
    """Move the dataset built in ``stage`` into ``out``, replacing the previous one.

    meta.json leaves first and arrives last, so a crash between the renames leaves a
    folder that says "re-run data-prepare" (no meta.json), never old bins or an old
    meta.json beside a new tokenizer. The old tokenizer/ folder is moved into the
    stage and deleted with it, so no stale tokenizer file survives a re-prepare.
    """
    (out / "meta.json").unlink(missing_ok=True)
    if (out / "tokenizer").exists():
        os.replace(out / "tokenizer", stage / "previous-tokenizer")
    if (stage / "tokenizer").exists():
        os.replace(stage / "tokenizer", out / "tokenizer")
    for name in SPLITS:
        os.replace(stage / f"{name}.bin", out / f"{name}.bin")
    os.replace(stage / "meta.json", out / "meta.json")
    _fsync_dir(out)


def _fsync_dir(path: Path) -> None:
    """Make the renames in ``path`` durable (a no-op where folders cannot be opened)."""
    with suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _tokenize_to(path: Path, tok, docs, eot: int, dtype, chunk_chars: int, workers) -> np.ndarray:
    """Tokenize ``docs`` chunk by chunk into ``path``, each followed by ``eot``.

    Returns the token count of every document (end-of-text included), in order.
    """
    doc_lens = array("q")  # 8 bytes per document, however many there are
    eot_arr = np.array([eot], dtype=dtype)
    with open(path, "wb") as f:
        for batch in _batches(docs, chunk_chars):
            parts = []
            for ids in _encode_batch(tok, batch, workers):
                parts += [np.asarray(ids, dtype=dtype), eot_arr]
                doc_lens.append(len(ids) + 1)
            f.write(np.concatenate(parts))  # buffer protocol: no extra copy
    return np.frombuffer(doc_lens, dtype=np.int64) if doc_lens else np.zeros(0, np.int64)


def split_documents(n: int, val_fraction: float, seed: int, shuffle: bool = True) -> dict:
    """Document indices of each split: a seeded permutation, the first share to val.

    Whole documents go to one split or the other, so no text leaks between them. With
    at least two documents and ``val_fraction > 0`` each split gets at least one.
    """
    order = np.random.default_rng(seed).permutation(n) if shuffle else np.arange(n)
    n_val = round(n * val_fraction)
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    return {"val": order[:n_val], "train": order[n_val:]}


def split_one_document(num_tokens: int, val_fraction: float) -> dict:
    """Segments ``(starts, lens)`` of each split when the corpus is a single document.

    Whole-document splitting would give val nothing, so the document is cut by tokens:
    the last ``val_fraction`` of it goes to val (as nanoGPT and LLMs-from-scratch cut
    one text file). ``num_tokens`` counts the trailing end-of-text id; the train part
    gets a copy of it, so both splits still end in one.
    """
    body = num_tokens - 1  # tokens before the end-of-text id
    n_val = min(max(round(body * val_fraction), 1), body - 1) if body >= 2 else 0
    cut = body - n_val
    eot_at = num_tokens - 1
    if n_val == 0:  # too short to cut: everything trains
        return {"val": _segments(), "train": _segments((0, num_tokens))}
    return {"val": _segments((cut, num_tokens - cut)), "train": _segments((0, cut), (eot_at, 1))}


def _segments(*pairs: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    starts = np.array([s for s, _ in pairs], dtype=np.int64)
    lens = np.array([n for _, n in pairs], dtype=np.int64)
    return starts, lens


def _abs_paths(spec: dict[str, Any], out: Path) -> dict[str, str]:
    return {k: str(out / spec[k]) for k in ("encoder_json", "vocab_bpe", "path") if spec.get(k)}


def _encode_batch(tok, texts: list[str], workers: int | None) -> list:
    """Documents are encoded as ordinary text: a literal "<|endoftext|>" in the data is
    just characters; only the separator we append is the special id."""
    if isinstance(tok, CharTokenizer):
        return tok.encode_batch(texts)
    return tok.encode_batch_arrays(texts, num_workers=workers, allowed_special="none")


def _write_split(path: Path, tokens: np.ndarray, starts, lens, buf_tokens=1 << 20) -> None:
    """Copy the segments ``tokens[s:s+l]``, in the given order, into ``path`` (in the
    staging folder, so it needs no temp file of its own)."""
    with open(path, "wb") as f:
        pending, size = [], 0
        for s, n in zip(starts.tolist(), lens.tolist(), strict=True):
            pending.append(tokens[s : s + n])  # a view of the memmap: no copy yet
            size += n
            if size >= buf_tokens:
                f.write(np.concatenate(pending))  # buffer protocol: no extra copy
                pending, size = [], 0
        if pending:
            f.write(np.concatenate(pending))
        f.flush()
        os.fsync(f.fileno())


__all__ = [
    "PrepareConfig",
    "collect_files",
    "iter_documents",
    "prepare_dataset",
    "split_documents",
    "split_one_document",
]
