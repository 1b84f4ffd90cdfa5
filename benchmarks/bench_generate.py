"""Decoding speed: LegoLLM generate vs transformers' generate and nanoGPT's, same weights.

    uv run python benchmarks/bench_generate.py [--nanogpt-path /tmp/nanogpt/model.py]

GPT-2 124M config, random weights saved by transformers and loaded by ours (and
copied into nanoGPT's GPT); CPU, fp32, greedy, a 16-token prompt and 128 new
tokens. Prints new tokens/s at batch 1 against transformers (KV cache) and
nanoGPT (no cache; its ``generate`` samples, so it runs with top_k=1, which is
greedy), the memory-bandwidth bound (one matrix-vector product per weight matrix
per token), time to first token, and batch-8 throughput. Run it alone: a second
busy process on a 2-core machine stalls PyTorch's threads.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.nn.functional as F
from _train_common import import_nanogpt
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


def weight_sweep_seconds(model) -> float:
    """One batch-1 matrix-vector product with every weight matrix: the decode-step floor."""
    mats = [p for n, p in model.named_parameters() if p.dim() == 2 and "pos_emb" not in n]
    xs = {p.shape[1]: torch.randn(1, p.shape[1]) for p in mats}

    def sweep():
        for w in mats:
            F.linear(xs[w.shape[1]], w)

    with torch.inference_mode():
        sweep()
        return min(timed(sweep, 1) for _ in range(10))


def nanogpt_from_hf(nanogpt, hf: GPT2LMHeadModel, n_layer: int):
    """nanoGPT's GPT with transformers' weights (Conv1D (in, out) -> Linear (out, in))."""
    model = nanogpt.GPT(nanogpt.GPTConfig(n_layer=n_layer, bias=True, vocab_size=50257))
    conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    hf_state = hf.state_dict()
    state = {k: (hf_state[k].t() if k.endswith(conv1d) else hf_state[k]) for k in model.state_dict()
             if not k.endswith(".attn.bias")}  # fmt: skip
    model.load_state_dict(state, strict=False)
    return model.eval()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n-layer", type=int, default=12)
    p.add_argument("--new", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--nanogpt-path", help="nanoGPT's model.py (or its folder) for the cache-less anchor"
    )
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=args.n_layer)).eval()
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        ours = load_pretrained(d)
    bound = 1.0 / weight_sweep_seconds(ours)
    print(f"bandwidth bound (fp32 weights streamed once per token): {bound:.1f} tokens/s")
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
            f"batch {batch}: legollm {tps_ours:6.1f} new tokens/s, transformers {tps_hf:6.1f}, "
            f"ratio {tps_ours / tps_hf:.2f}x"
            + (f"; legollm at {tps_ours / bound:.0%} of the bound" if batch == 1 else "")
        )
        if batch == 1:
            ttft_ours, ttft_hf = timed(lambda: run_ours(1), 3), timed(lambda: run_hf(1), 3)
            print(
                f"  time to first token: legollm {ttft_ours * 1e3:.0f} ms, "
                f"transformers {ttft_hf * 1e3:.0f} ms"
            )
            if args.nanogpt_path:
                nano = nanogpt_from_hf(import_nanogpt(args.nanogpt_path), hf, args.n_layer)
                with torch.inference_mode():
                    same = nano.generate(prompt, 16, top_k=1)
                assert torch.equal(same, run_ours(16)), "nanoGPT's greedy tokens differ"

                def run_nano(nano=nano, prompt=prompt):
                    with torch.inference_mode():
                        return nano.generate(prompt, args.new, top_k=1)

                tps_nano = args.new / timed(run_nano, 1)
                print(
                    f"  nanoGPT generate (no KV cache): {tps_nano:6.1f} new tokens/s, "
                    f"legollm {tps_ours / tps_nano:.1f}x"
                )


if __name__ == "__main__":
    main()
