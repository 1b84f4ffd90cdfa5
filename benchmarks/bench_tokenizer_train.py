"""BPE training time: LegoLLM vs Hugging Face `tokenizers` (and minbpe), same text, same run.

    uv run python benchmarks/bench_tokenizer_train.py               # python_docs.txt, vocab 32768
    uv run python benchmarks/bench_tokenizer_train.py --minbpe-path /tmp/minbpe   # + minbpe, vocab 512
    uv run python benchmarks/bench_tokenizer_train.py --smoke     # 0.1 MB, vocab 512, seconds

HF is fed the text line by line with a ByteLevel pre-tokenizer (GPT-2 split).
minbpe is not on PyPI: pass a checkout of it to include it; otherwise the issue's
anchor (76 s for vocab 512 on tiny_shakespeare, measured on this machine) is shown.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from _smoke import parse_args, skipped

from legollm.core.tokenization import GPT2_SPLIT_PATTERN, RegexBPETokenizer

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "text"


def time_ours(text: str, vocab: int) -> float:
    t0 = time.perf_counter()
    RegexBPETokenizer(GPT2_SPLIT_PATTERN).train(text, vocab)
    return time.perf_counter() - t0


def time_hf(text: str, vocab: int) -> float:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    lines = text.splitlines(keepends=True)
    t0 = time.perf_counter()
    tok.train_from_iterator(lines, trainer=trainer)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--file", default=str(DATA / "python_docs.txt"))
    p.add_argument("--vocab-size", type=int, default=32768)
    p.add_argument("--minbpe-path", help="a checkout of karpathy/minbpe")
    p.add_argument("--small-file", default=str(DATA / "tiny_shakespeare.txt"))
    p.add_argument("--max-mb", type=float, default=None, help="use only the first N MB of each")
    args = parse_args(p, dict(max_mb=0.05, vocab_size=512))
    torch.set_num_threads(2)
    cut = int(args.max_mb * 1e6) if args.max_mb else None
    text = Path(args.file).read_text(encoding="utf-8")[:cut]
    print(f"{Path(args.file).name}: {len(text) / 1e6:.1f} MB, vocab {args.vocab_size}")
    ours, hf = time_ours(text, args.vocab_size), time_hf(text, args.vocab_size)
    print(f"  legollm    {ours:7.2f} s")
    print(f"  tokenizers {hf:7.2f} s")
    print(f"  ratio ours/HF time: {ours / hf:.2f}x (target <= 3x)")

    small = Path(args.small_file).read_text(encoding="utf-8")[:cut]
    ours_small = time_ours(small, 512)
    if cut and not args.minbpe_path:
        skipped("minbpe", "no --minbpe-path given (its 76 s figure is for the whole file)")
        return
    if args.minbpe_path:
        sys.path.insert(0, args.minbpe_path)
        from minbpe import RegexTokenizer

        t0 = time.perf_counter()
        RegexTokenizer().train(small, 512)
        anchor, label = time.perf_counter() - t0, "measured"
    else:
        anchor, label = 76.0, "issue anchor, not measured here"
    print(
        f"{Path(args.small_file).name}, vocab 512: legollm {ours_small:.2f} s, minbpe {anchor:.1f} s ({label})"
    )
    print(f"  speed-up vs minbpe: {anchor / ours_small:.0f}x (target >= 100x)")


if __name__ == "__main__":
    main()
