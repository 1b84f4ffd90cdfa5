"""Perplexity throughput: ``legollm.evaluation`` against a transformers strided loop.

Both score the same token ids of python_docs.txt in the same windows (the model's
context of inputs, starting every ``stride`` tokens, every token after the first
scored once) with the same random GPT-2 124M-shaped weights: transformers saves
them, LegoLLM loads them with ``load_pretrained``. The transformers side is the
loop of Hugging Face's perplexity guide, batched the same way. Same process,
timed one after the other; the NLLs must agree before a figure is printed.

    flock /tmp/legollm-bench.lock uv run python benchmarks/bench_eval.py --mb 0.25
    uv run python benchmarks/bench_eval.py --smoke     # a tiny model, a few KB of text
"""

import argparse
import math
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from _smoke import parse_args

from legollm.core.tokenization import RegexBPETokenizer
from legollm.evaluation.perplexity import token_nll, windows
from legollm.models import load_pretrained

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@torch.inference_mode()
def hf_nll(hf, ids: torch.Tensor, context: int, stride: int, batch_size: int) -> float:
    """Summed NLL by transformers over the same windows, batched, targets -100 where an
    earlier window scored them (padding too)."""
    spans = list(windows(ids.numel(), context, stride))
    total = 0.0
    for i in range(0, len(spans), batch_size):
        batch = spans[i : i + batch_size]
        T = max(end - start for start, _, end in batch)
        x = torch.zeros(len(batch), T, dtype=torch.long)
        y = torch.full((len(batch), T), -100, dtype=torch.long)
        for row, (start, first, end) in enumerate(batch):
            x[row, : end - start] = ids[start:end]
            y[row, first - 1 - start : end - start] = ids[first : end + 1]
        logits = hf(x).logits
        total += F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="sum").item()
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--file", default=str(SHARED / "text" / "python_docs.txt"))
    ap.add_argument("--mb", type=float, default=0.25, help="read the first MB of the file")
    ap.add_argument("--n-layer", type=int, default=12, help="12 = GPT-2 124M")
    ap.add_argument("--n-embd", type=int, default=768)
    ap.add_argument("--n-head", type=int, default=12)
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--stride", type=int, default=None, help="default: half the context")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    args = parse_args(ap, dict(mb=0.004, n_layer=1, n_embd=64, n_head=2, context=64))
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.set_num_threads(args.threads)
    g = SHARED / "gpt2"
    tok = RegexBPETokenizer.from_gpt2_files(g / "encoder.json", g / "vocab.bpe")
    with open(args.file, encoding="utf-8") as f:
        text = f.read(int(args.mb * 2**20))
    ids = torch.tensor(tok.encode_ordinary(text))
    stride = args.stride or args.context // 2
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=args.n_layer, n_embd=args.n_embd, n_head=args.n_head,
                     n_positions=args.context)  # fmt: skip
    hf = GPT2LMHeadModel(cfg).eval()
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        ours = load_pretrained(d).eval()
    print(f"{ids.numel():,} tokens, context {args.context}, stride {stride}, "
          f"batch {args.batch_size}, {args.threads} threads")  # fmt: skip

    t0 = time.perf_counter()
    nll_ours = token_nll(ours, ids, stride=stride, batch_size=args.batch_size).double().sum()
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    nll_hf = hf_nll(hf, ids, args.context, stride, args.batch_size)
    t_hf = time.perf_counter() - t0
    assert math.isclose(float(nll_ours), nll_hf, rel_tol=1e-4), (float(nll_ours), nll_hf)

    scored = ids.numel() - 1
    print(f"  transformers: {scored / t_hf:8.1f} tokens/s")
    print(f"  legollm:      {scored / t_ours:8.1f} tokens/s")
    print(f"ratio legollm / transformers: {t_hf / t_ours:.2f}x (target >= 1.0x)")


if __name__ == "__main__":
    main()
