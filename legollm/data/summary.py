"""Summaries of raw text files and prepared datasets (what ``data-summary`` prints).

Raw text is streamed one document at a time, so a summary of a large corpus costs
one pass and bounded memory. A prepared folder is summarised from its meta.json and
the sizes of its ``.bin`` files, without reading them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from legollm.core.exceptions import DataError
from legollm.core.utils import atomic_path
from legollm.data.meta import DTYPES, SPLITS, read_meta
from legollm.data.prepare import (
    PrepareConfig,
    _batches,
    _encode_batch,
    collect_files,
    iter_documents,
)

_WORD = re.compile(r"\S+")


def summarize_text(
    inputs: list[str],
    *,
    split: str = "file",
    text_field: str = "text",
    tokenizer=None,
    top_k: int = 10,
) -> dict[str, Any]:
    """Counts over the documents of ``inputs`` (files or folders); tokens if a tokenizer is given."""
    cfg = PrepareConfig(inputs=list(inputs), output_dir=".", split=split, text_field=text_field)
    files = collect_files(cfg)
    chars = byts = lines = words = docs = 0
    distinct: set[str] = set()
    doc_chars: list[int] = []
    tokens, counts = 0, np.zeros(0, dtype=np.int64)  # counts[id] = occurrences
    for batch in _batches(iter_documents(cfg, files), 1_000_000):
        if tokenizer is not None:  # whole batches: the tokenizer may use all cores
            for ids in _encode_batch(tokenizer, batch, None):
                c = np.bincount(np.asarray(ids, dtype=np.int64))
                if len(c) > len(counts):
                    counts = np.pad(counts, (0, len(c) - len(counts)))
                counts[: len(c)] += c
                tokens += len(ids)
        for doc in batch:
            docs += 1
            chars += len(doc)
            byts += len(doc.encode("utf-8"))
            lines += doc.count("\n") + (not doc.endswith("\n"))
            words += len(_WORD.findall(doc))
            distinct.update(doc)
            doc_chars.append(len(doc))
    out: dict[str, Any] = {
        "files": [str(f) for f in files],
        "documents": docs,
        "characters": chars,
        "bytes": byts,
        "lines": lines,
        "words": words,
        "distinct_characters": len(distinct),
        "doc_chars": doc_chars,
    }
    if tokenizer is not None:
        out["tokens"] = tokens
        out["bytes_per_token"] = byts / tokens if tokens else 0.0
        top = np.argsort(-counts, kind="stable")[:top_k]  # ties: smaller id first
        out["top_tokens"] = [
            (int(i), tokenizer.decode([int(i)]), int(counts[i])) for i in top if counts[i]
        ]
    return out


def summarize_prepared(path: str | os.PathLike[str]) -> dict[str, Any]:
    """meta.json plus the token count of each split read from the file sizes."""
    p = Path(path)
    meta = read_meta(p)
    itemsize = np.dtype(DTYPES[meta["dtype"]]).itemsize
    splits = {}
    for name in SPLITS:
        f = p / f"{name}.bin"
        if f.is_file():
            n = f.stat().st_size // itemsize
            if n != meta["num_tokens"].get(name, n):
                raise DataError(
                    f"{f} holds {n} tokens but meta.json says {meta['num_tokens'][name]}"
                )
            splits[name] = {"tokens": n, "documents": meta.get("num_documents", {}).get(name)}
    return {"meta": meta, "splits": splits}


def document_lengths_prepared(path: str | os.PathLike[str], split: str = "train") -> list[int]:
    """Token length of each document of a prepared split (documents end at the eot id)."""
    meta = read_meta(path)
    data = np.memmap(Path(path) / f"{split}.bin", dtype=DTYPES[meta["dtype"]], mode="r")
    ends = np.flatnonzero(data == meta["eot_token_id"])
    return np.diff(np.concatenate([[-1], ends])).tolist()


def plot_lengths(
    lengths: list[int], out_png: str | os.PathLike[str], unit: str = "characters"
) -> Path:
    """Write a histogram of document lengths to ``out_png`` (headless Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(lengths, bins=min(50, max(1, len(set(lengths)))))
    ax.set_xlabel(f"document length ({unit})")
    ax.set_ylabel("documents")
    ax.set_title(f"{len(lengths)} documents")
    fig.tight_layout()
    try:
        with atomic_path(out_png) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return Path(out_png)


def format_summary(s: dict[str, Any]) -> str:
    """Human-readable lines for ``data-summary``."""
    if "meta" in s:
        m = s["meta"]
        lines = [
            f"tokenizer: {m['tokenizer'].get('type')}  vocab_size: {m['vocab_size']}  "
            f"dtype: {m['dtype']}  eot: {m.get('eot_token_id')}",
        ]
        cut = " (one document cut by tokens)" if m.get("split_unit") == "tokens" else ""
        for name, d in s["splits"].items():
            lines.append(f"{name}: {d['tokens']:,} tokens, {d['documents']} documents{cut}")
        for src in m.get("sources", []):
            lines.append(
                f"source: {src['path']} ({src['bytes']:,} bytes, sha256 {src['sha256'][:12]})"
            )
        return "\n".join(lines)
    lines = [
        f"{k}: {s[k]:,}"
        for k in ("documents", "characters", "bytes", "lines", "words", "distinct_characters")
    ]
    if "tokens" in s:
        lines.append(f"tokens: {s['tokens']:,}")
        lines.append(f"bytes/token: {s['bytes_per_token']:.3f}")
        lines.append("most frequent tokens:")
        lines += [f"  {i:>6}  {t!r:<20} {n:,}" for i, t, n in s["top_tokens"]]
    return "\n".join(lines)


__all__ = [
    "document_lengths_prepared",
    "format_summary",
    "plot_lengths",
    "summarize_prepared",
    "summarize_text",
]
