"""Batches per second: TokenDataLoader vs nanoGPT's get_batch, same file, same process.

The anchor is the method nanoGPT's train.py uses, written here from its description:
re-create an ``np.memmap`` of the .bin for every batch (to dodge a memmap leak),
draw ``batch_size`` random offsets with torch, and build x and y each by
``torch.stack`` of ``torch.from_numpy(data[i:i+block].astype(np.int64))`` per row.

    flock /tmp/legollm-bench.lock uv run python benchmarks/bench_loader.py
    uv run python benchmarks/bench_loader.py --smoke
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _smoke import parse_args

from legollm.data import TokenDataLoader


def nanogpt_style_get_batch(path: Path, batch_size: int, block_size: int):
    data = np.memmap(path, dtype=np.uint16, mode="r")
    ix = torch.randint(len(data) - block_size, (batch_size,))
    x = torch.stack([torch.from_numpy(data[i : i + block_size].astype(np.int64)) for i in ix])
    y = torch.stack(
        [torch.from_numpy(data[i + 1 : i + 1 + block_size].astype(np.int64)) for i in ix]
    )
    return x, y


def rate(fn, iters: int) -> float:
    for _ in range(min(20, iters)):  # warm the page cache and the allocator
        fn()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return iters / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=50_000_000, help="size of the synthetic .bin")
    ap.add_argument("--batch-size", type=int, default=12)
    ap.add_argument("--block-size", type=int, default=1024)
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = parse_args(ap, dict(tokens=200_000, block_size=256, iters=50, repeats=1, threads=1))
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "train.bin"
        rng = np.random.default_rng(0)
        rng.integers(0, 50257, size=args.tokens, dtype=np.uint16).tofile(path)
        ours = TokenDataLoader(path, args.batch_size, args.block_size, dtype="uint16")
        B, T = args.batch_size, args.block_size
        best_a = best_o = 0.0
        for _ in range(args.repeats):  # interleave to share the noise of a busy machine
            best_a = max(best_a, rate(lambda: nanogpt_style_get_batch(path, B, T), args.iters))
            best_o = max(best_o, rate(ours.next_batch, args.iters))
        print(f"file: {args.tokens:,} uint16 tokens, batch {B}x{T}, best of {args.repeats}")
        print(f"nanoGPT-style get_batch: {best_a:10.1f} batches/s")
        print(f"TokenDataLoader:         {best_o:10.1f} batches/s")
        print(f"ratio (ours / anchor):   {best_o / best_a:10.2f}x")


if __name__ == "__main__":
    main()
