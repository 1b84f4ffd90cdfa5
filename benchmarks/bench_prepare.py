"""Prepare throughput (MB/s of input text): ``prepare_dataset`` vs a nanoGPT-style prepare.

The anchor is the method nanoGPT's data/*/prepare.py scripts use, written here from
its description: tiktoken's "gpt2" encoding, ``encode_ordinary_batch`` over the
documents (tiktoken's own thread pool), the end-of-text id appended to each
document, one concatenated uint16 array written with ``tofile``. Both sides get the
same file and the same documents (paragraph groups of ~8 KB); ours is timed end to
end (read, split, tokenize on all cores, shuffle, split by documents, write, hash).

    flock /tmp/legollm-bench.lock uv run python benchmarks/bench_prepare.py
    uv run python benchmarks/bench_prepare.py --max-mb 1     # the first 1 MB
    uv run python benchmarks/bench_prepare.py --smoke        # the first 0.1 MB, once
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _smoke import parse_args

from legollm.data.prepare import PrepareConfig, iter_documents, prepare_dataset

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def gpt2_tiktoken(gpt2_dir: Path):
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext.openai_public import r50k_pat_str

    ranks = data_gym_to_mergeable_bpe_ranks(
        str(gpt2_dir / "vocab.bpe"), str(gpt2_dir / "encoder.json")
    )
    return tiktoken.Encoding(
        "gpt2", pat_str=r50k_pat_str, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 50256}
    )


def nanogpt_style_prepare(enc, docs: list[str], out: Path, num_threads: int) -> int:
    ids = enc.encode_ordinary_batch(docs, num_threads=num_threads)
    for d in ids:
        d.append(enc.eot_token)
    arr = np.array([i for d in ids for i in d], dtype=np.uint16)
    arr.tofile(out)
    return len(arr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--input", type=Path, default=SHARED / "text" / "python_docs.txt")
    ap.add_argument("--gpt2-dir", type=Path, default=SHARED / "gpt2")
    ap.add_argument("--max-mb", type=float, default=None, help="use only the first N MB")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--repeats", type=int, default=2)
    args = parse_args(ap, dict(max_mb=0.1, repeats=1))
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        src = args.input
        if args.max_mb:
            src = d / "input.txt"
            src.write_text(args.input.read_text()[: int(args.max_mb * 1e6)])
        mb = src.stat().st_size / 1e6
        cfg = PrepareConfig(
            inputs=[str(src)], output_dir=str(d / "ours"), tokenizer="gpt2",
            encoder_json=str(args.gpt2_dir / "encoder.json"),
            vocab_bpe=str(args.gpt2_dir / "vocab.bpe"),
            split="paragraph", max_doc_chars=8000, num_workers=args.workers, val_fraction=0.005,
        )  # fmt: skip
        t_anchor = t_ours = float("inf")
        for _ in range(args.repeats):
            # both sides pay for building their tokenizer from the GPT-2 files, as a
            # prepare script run from the command line does (prepare_dataset loads its own)
            t0 = time.perf_counter()
            enc = gpt2_tiktoken(args.gpt2_dir)
            docs = list(iter_documents(cfg))
            n_anchor = nanogpt_style_prepare(enc, docs, d / "anchor.bin", args.workers)
            t_anchor = min(t_anchor, time.perf_counter() - t0)
            t0 = time.perf_counter()
            out = prepare_dataset(cfg)
            t_ours = min(t_ours, time.perf_counter() - t0)
        ours = np.concatenate(
            [np.fromfile(out / f"{s}.bin", dtype=np.uint16) for s in ("train", "val")]
        )
        same = np.array_equal(
            np.sort(ours), np.sort(np.fromfile(d / "anchor.bin", dtype=np.uint16))
        )
        print(f"input: {src.name} {mb:.2f} MB, {len(docs)} documents, {args.workers} workers")
        print(f"nanoGPT-style (tiktoken): {mb / t_anchor:8.2f} MB/s  ({n_anchor:,} tokens)")
        print(f"prepare_dataset (ours):   {mb / t_ours:8.2f} MB/s  ({len(ours):,} tokens)")
        print(f"same token multiset: {same}")
        print(f"ratio (ours / anchor):    {t_anchor / t_ours:8.2f}x")


if __name__ == "__main__":
    main()
