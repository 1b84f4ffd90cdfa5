"""Decoding speed: LegoLLM generate vs transformers' generate (KV cache) on the same weights.

    uv run python benchmarks/bench_generate.py

GPT-2 124M config, random weights saved by transformers and loaded by ours; CPU,
fp32, greedy, a 16-token prompt and 128 new tokens. Prints new tokens/s at batch 1
(target >= 1.4x HF), time to first token, and batch-8 throughput.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from legollm.generation import generate
from legollm.models import load_pretrained


def timed(fn, repeats: int = 2) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n-layer", type=int, default=12)
    p.add_argument("--new", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=args.n_layer)).eval()
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        ours = load_pretrained(d)
    for batch in (1, 8):
        prompt = torch.randint(0, 50257, (batch, 16))

        def run_ours(n=args.new, prompt=prompt):
            return generate(ours, prompt, n)

        def run_hf(n=args.new, prompt=prompt):
            with torch.inference_mode():
                return hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=n,
                                   min_new_tokens=n, do_sample=False, pad_token_id=0)  # fmt: skip

        assert torch.equal(run_ours(16), run_hf(16))
        t_ours, t_hf = timed(run_ours), timed(run_hf)
        tps_ours, tps_hf = batch * args.new / t_ours, batch * args.new / t_hf
        print(
            f"batch {batch}: legollm {tps_ours:6.1f} new tokens/s, transformers {tps_hf:6.1f}, ratio {tps_ours / tps_hf:.2f}x"
        )
        if batch == 1:
            ttft_ours, ttft_hf = timed(lambda: run_ours(1), 3), timed(lambda: run_hf(1), 3)
            print(
                f"  time to first token: legollm {ttft_ours * 1e3:.0f} ms, transformers {ttft_hf * 1e3:.0f} ms"
            )


if __name__ == "__main__":
    main()
