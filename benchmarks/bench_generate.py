"""Decoding speed: LegoLLM generate vs transformers' generate and nanoGPT's, same weights.

    uv run python benchmarks/bench_generate.py [--nanogpt-path /tmp/nanogpt/model.py]
    uv run python benchmarks/bench_generate.py --smoke    # a 1-layer, 64-wide GPT-2, seconds

GPT-2 124M config, random weights saved by transformers and loaded by ours (and
copied into nanoGPT's GPT); CPU, fp32, greedy, a 16-token prompt and 128 new
tokens. Prints new tokens/s at batch 1 against transformers (KV cache) and
nanoGPT (no cache; its ``generate`` samples, so it runs with top_k=1, which is
greedy), ours both as ``load_pretrained`` returns the model and after
``store_by_columns`` (what ``legollm generate`` runs), time to first token and
batch-8 throughput. Two reference speeds: the memory bound (every weight read
once per token at the speed of a threaded ``sum``) and one unsplit
``F.linear`` per weight (PyTorch's one-core matrix-vector product). Run it
alone: a second busy process on a 2-core machine stalls PyTorch's threads.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
import torch.nn.functional as F
from _smoke import parse_args, skipped
from _train_common import import_nanogpt
from transformers import GPT2Config, GPT2LMHeadModel

from legollm.components.linear import store_by_columns
from legollm.generation import generate
from legollm.models import load_pretrained


def timed(fn, repeats: int = 2) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def decode_weights(model) -> list[torch.Tensor]:
    """The matrices a decode step reads (the tied head once; learned positions are one row)."""
    return [p for n, p in model.named_parameters() if p.dim() == 2 and "pos_emb" not in n]


def sweep_seconds(mats, op) -> float:
    with torch.inference_mode():
        [op(w) for w in mats]
        return min(timed(lambda: [op(w) for w in mats], 1) for _ in range(10))


def reference_speeds(model) -> tuple[float, float]:
    """Tokens/s if a step cost only reading the weights: at memory speed, and via F.linear."""
    mats = decode_weights(model)
    xs = {w.shape[1]: torch.randn(1, w.shape[1]) for w in mats}
    memory = 1 / sweep_seconds(mats, torch.sum)  # threaded: close to the memory's bandwidth
    unsplit = 1 / sweep_seconds(mats, lambda w: F.linear(xs[w.shape[1]], w))
    return memory, unsplit


def nanogpt_from_hf(nanogpt, hf: GPT2LMHeadModel):
    """nanoGPT's GPT with transformers' weights (Conv1D (in, out) -> Linear (out, in))."""
    c = hf.config
    model = nanogpt.GPT(nanogpt.GPTConfig(n_layer=c.n_layer, n_head=c.n_head, n_embd=c.n_embd,
                                          bias=True, vocab_size=50257))  # fmt: skip
    conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    hf_state = hf.state_dict()
    state = {k: (hf_state[k].t() if k.endswith(conv1d) else hf_state[k]) for k in model.state_dict()
             if not k.endswith(".attn.bias")}  # fmt: skip
    model.load_state_dict(state, strict=False)
    return model.eval()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n-layer", type=int, default=12)
    p.add_argument("--n-head", type=int, default=12)
    p.add_argument("--n-embd", type=int, default=768)
    p.add_argument("--new", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--nanogpt-path", help="nanoGPT's model.py (or its folder) for the cache-less anchor"
    )
    args = parse_args(p, dict(n_layer=1, n_head=2, n_embd=64, new=16, threads=1))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    shape = dict(n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd)
    hf = GPT2LMHeadModel(GPT2Config(**shape)).eval()
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)
        ours = load_pretrained(d)
    mb = sum(w.numel() for w in decode_weights(ours)) * 4 / 2**20
    memory, unsplit = reference_speeds(ours)
    print(f"weights read per token: {mb:.0f} MiB; if that were all a step cost:")
    print(f"  at memory speed (threaded sum): {memory:5.1f} tokens/s")
    print(f"  via one-core F.linear:          {unsplit:5.1f} tokens/s")
    prompt = torch.randint(0, 50257, (1, 16))

    def run_ours(n=args.new, prompt=prompt):
        return generate(ours, prompt, n)

    def run_hf(n=args.new, prompt=prompt):
        with torch.inference_mode():
            return hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=n,
                               min_new_tokens=n, do_sample=False, pad_token_id=0)  # fmt: skip

    assert torch.equal(run_ours(16), run_hf(16))
    t_loaded, t_hf = timed(run_ours), timed(run_hf)
    store_by_columns(ours)
    assert torch.equal(run_ours(16), run_hf(16))
    t_ours = timed(run_ours)
    tps_loaded, tps_ours, tps_hf = (args.new / t for t in (t_loaded, t_ours, t_hf))
    print(f"batch 1: transformers {tps_hf:6.1f} new tokens/s")
    print(f"  legollm as loaded:       {tps_loaded:6.1f}, ratio {tps_loaded / tps_hf:.2f}x")
    print(
        f"  legollm store_by_columns: {tps_ours:6.1f}, ratio {tps_ours / tps_hf:.2f}x; "
        f"{tps_ours / memory:.0%} of the memory bound"
    )
    ttft_ours, ttft_hf = timed(lambda: run_ours(1), 3), timed(lambda: run_hf(1), 3)
    print(
        f"  time to first token: legollm {ttft_ours * 1e3:.0f} ms, transformers {ttft_hf * 1e3:.0f} ms"
    )
    if args.nanogpt_path:
        nano = nanogpt_from_hf(import_nanogpt(args.nanogpt_path), hf)
        with torch.inference_mode():
            same = nano.generate(prompt, 16, top_k=1)
        assert torch.equal(same, run_ours(16)), "nanoGPT's greedy tokens differ"

        def run_nano():
            with torch.inference_mode():
                return nano.generate(prompt, args.new, top_k=1)

        tps_nano = args.new / timed(run_nano, 1)
        print(
            f"  nanoGPT generate (no KV cache): {tps_nano:6.1f} new tokens/s, "
            f"legollm {tps_ours / tps_nano:.1f}x"
        )
    else:
        skipped("nanoGPT's cache-less generate", "no --nanogpt-path given")
    prompt8 = torch.randint(0, 50257, (8, 16))
    t8_ours = timed(lambda: generate(ours, prompt8, args.new))
    with torch.inference_mode():
        t8_hf = timed(lambda: hf.generate(prompt8, attention_mask=torch.ones_like(prompt8),
                                          max_new_tokens=args.new, min_new_tokens=args.new,
                                          do_sample=False, pad_token_id=0))  # fmt: skip
    print(
        f"batch 8: legollm {8 * args.new / t8_ours:6.1f} new tokens/s, transformers "
        f"{8 * args.new / t8_hf:6.1f}, ratio {t8_hf / t8_ours:.2f}x"
    )


if __name__ == "__main__":
    main()
