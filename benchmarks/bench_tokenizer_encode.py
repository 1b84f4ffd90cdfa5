"""GPT-2 encoding throughput: LegoLLM vs tiktoken on the same text, same run.

    uv run python benchmarks/bench_tokenizer_encode.py
    uv run python benchmarks/bench_tokenizer_encode.py --smoke    # the first 0.1 MB, once

Both are built offline from ../shared/data/gpt2, outside the timed region. One
process: encode_ordinary on the whole file (our chunk cache starts cold: a fresh
tokenizer per run). Batch: the file's lines in documents of ~100 lines, our
encode_batch (special tokens as text, like the other side) on 2 worker processes vs
tiktoken's encode_ordinary_batch (2 threads).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import tiktoken
import tiktoken.load
from _smoke import parse_args

from legollm.core.tokenization import GPT2_SPLIT_PATTERN, RegexBPETokenizer

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def best_of_pair(n: int, ours, theirs, setup) -> tuple[float, float]:
    """Best of ``n`` timings each of ``ours(setup())`` and ``theirs()``, alternated.

    Alternating run by run means both sides see the same machine load (it is shared);
    ``setup`` (building a fresh tokenizer) runs outside the timer.
    """
    best_ours = best_theirs = float("inf")
    for _ in range(n):
        tok = setup()
        t0 = time.perf_counter()
        ours(tok)
        best_ours = min(best_ours, time.perf_counter() - t0)
        t0 = time.perf_counter()
        theirs()
        best_theirs = min(best_theirs, time.perf_counter() - t0)
    return best_ours, best_theirs


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--file", default=str(SHARED / "text" / "python_docs.txt"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3, help="runs per measurement; best is kept")
    p.add_argument("--max-mb", type=float, default=None, help="use only the first N MB")
    args = parse_args(p, dict(max_mb=0.1, repeat=1))
    gpt2 = SHARED / "gpt2"
    text = Path(args.file).read_text(encoding="utf-8")
    if args.max_mb:
        text = text[: int(args.max_mb * 1e6)]
    mb = len(text.encode()) / 1e6
    enc = tiktoken.Encoding(
        name="gpt2",
        pat_str=GPT2_SPLIT_PATTERN,
        mergeable_ranks=tiktoken.load.data_gym_to_mergeable_bpe_ranks(
            str(gpt2 / "vocab.bpe"), str(gpt2 / "encoder.json")
        ),
        special_tokens={"<|endoftext|>": 50256},
    )

    def fresh():
        return RegexBPETokenizer.from_gpt2_files(gpt2 / "encoder.json", gpt2 / "vocab.bpe")

    # a fresh tokenizer per run (cold chunk cache), built outside the timer as tiktoken's is
    ours_one, tik_one = best_of_pair(
        args.repeat, lambda tok: tok.encode_ordinary(text), lambda: enc.encode_ordinary(text), fresh
    )
    lines = text.splitlines(keepends=True)
    docs = ["".join(lines[i : i + 100]) for i in range(0, len(lines), 100)]
    ours_batch, tik_batch = best_of_pair(
        args.repeat,
        lambda tok: tok.encode_batch(docs, args.workers, allowed_special="none"),
        lambda: enc.encode_ordinary_batch(docs, num_threads=args.workers),
        fresh,
    )
    assert fresh().encode_ordinary(text) == enc.encode_ordinary(text)
    print(f"{Path(args.file).name}: {mb:.1f} MB")
    print(
        f"  one process: legollm {mb / ours_one:5.1f} MB/s, tiktoken {mb / tik_one:5.1f} MB/s, ratio {tik_one / ours_one:.2f}x (target >= 0.5x)"
    )
    print(
        f"  batch x{args.workers}:    legollm {mb / ours_batch:5.1f} MB/s, tiktoken {mb / tik_batch:5.1f} MB/s, ratio {tik_batch / ours_batch:.2f}x (target >= 0.5x)"
    )


if __name__ == "__main__":
    main()
