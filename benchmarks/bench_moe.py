"""Mixture-of-experts speed: LegoLLM vs transformers' Mixtral on the same random weights.

A Mixtral-shaped model scaled down for a CPU (4 layers, dim 256, 8 SwiGLU experts
of 704, top 2, GQA 8/2 heads) is made by transformers, saved with
``save_pretrained`` and loaded by ours. Printed, each side by side in one process:

- forward (prefill) tokens/s on a batch of 4 x 256 tokens, float32;
- greedy decoding at batch 1: new tokens/s for 128 tokens after a 16-token prompt,
  ours through ``legollm.generation.generate``, transformers through its
  ``generate`` with its KV cache (the outputs are checked equal first);
- training step tokens/s (forward, backward, AdamW) on the forward's batch.

Run it alone: a second busy process on a 2-core machine stalls PyTorch's threads.

    uv run python benchmarks/bench_moe.py
    uv run python benchmarks/bench_moe.py --smoke    # 1 layer, 64 wide, seconds
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from _smoke import parse_args
from transformers import MixtralConfig, MixtralForCausalLM

from legollm.components.linear import store_by_columns
from legollm.generation import generate
from legollm.models import load_pretrained
from legollm.models.loss import training_loss


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--top-k", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--block-size", type=int, default=256, help="tokens per row of the batch of 4")
    smoke = dict(layers=1, dim=64, experts=4, vocab=1000, new=8, repeats=1, block_size=32,
                 threads=1)  # fmt: skip
    args = parse_args(ap, smoke)
    torch.set_num_threads(args.threads)

    cfg = MixtralConfig(
        vocab_size=args.vocab, hidden_size=args.dim, intermediate_size=args.dim * 11 // 4,
        num_hidden_layers=args.layers, num_attention_heads=8, num_key_value_heads=2,
        num_local_experts=args.experts, num_experts_per_tok=args.top_k,
        max_position_embeddings=1024, bos_token_id=None, eos_token_id=None, pad_token_id=None,
    )  # fmt: skip
    torch.manual_seed(0)
    hf = MixtralForCausalLM(cfg).eval()
    path = tempfile.mkdtemp(prefix="legollm_moebench_")
    hf.save_pretrained(path)
    ours = load_pretrained(path)
    n = sum(p.numel() for p in ours.parameters())
    print(f"{n / 1e6:.1f}M parameters, {args.experts} experts, top {args.top_k}, "
          f"{args.threads} threads, float32")  # fmt: skip

    gen = torch.Generator().manual_seed(1)
    batch = torch.randint(0, args.vocab, (4, args.block_size + 1), generator=gen)
    x, y = batch[:, :-1], batch[:, 1:]
    with torch.inference_mode():
        diff = (ours(x) - hf(x).logits).abs().max().item()
        print(f"logits max abs diff: {diff:.1e}")
        fwd = {
            "legollm": best_of(lambda: ours(x), args.repeats),
            "transformers": best_of(lambda: hf(x), args.repeats),
        }
    tokens = x.numel()
    print(f"forward, batch 4 x {args.block_size}: legollm {tokens / fwd['legollm']:,.0f} tokens/s, "
          f"transformers {tokens / fwd['transformers']:,.0f}, "
          f"ratio {fwd['transformers'] / fwd['legollm']:.2f}x")  # fmt: skip

    store_by_columns(ours)  # what `legollm generate` does after loading
    prompt = torch.randint(0, args.vocab, (1, 16), generator=torch.Generator().manual_seed(2))
    want = hf.generate(prompt, max_new_tokens=args.new, do_sample=False)
    assert torch.equal(generate(ours, prompt, args.new), want), "greedy outputs differ"
    rates = {"legollm": [], "transformers": []}
    for _ in range(args.repeats):  # alternate, so noise hits both alike
        t0 = time.perf_counter()
        generate(ours, prompt, args.new)
        rates["legollm"].append(args.new / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        hf.generate(prompt, max_new_tokens=args.new, do_sample=False)
        rates["transformers"].append(args.new / (time.perf_counter() - t0))
    ours_r, hf_r = (statistics.median(rates[k]) for k in ("legollm", "transformers"))
    print(f"greedy decoding, batch 1, 16 + {args.new}: legollm {ours_r:.1f} new tokens/s, "
          f"transformers {hf_r:.1f}, ratio {ours_r / hf_r:.2f}x")  # fmt: skip

    # fresh copies: the decoding section re-laid our weights by columns, for decoding
    torch.manual_seed(0)
    hf = MixtralForCausalLM.from_pretrained(path)
    ours = load_pretrained(path)
    opts = {"legollm": torch.optim.AdamW(ours.parameters(), lr=1e-4),
            "transformers": torch.optim.AdamW(hf.parameters(), lr=1e-4)}  # fmt: skip
    steps = {
        "legollm": lambda: training_loss(ours, ours(x), y),
        "transformers": lambda: hf(input_ids=x, labels=x).loss,  # shifts inside
    }

    def train_step(name):
        loss = steps[name]()
        loss.backward()
        opts[name].step()
        opts[name].zero_grad(set_to_none=True)

    ours.train(), hf.train()
    train = {}
    for name in steps:
        train_step(name)  # AdamW state, allocator
        train[name] = best_of(lambda name=name: train_step(name), args.repeats)
    ours.eval(), hf.eval()
    print(f"training step, batch 4 x {args.block_size}: legollm {tokens / train['legollm']:,.0f} tokens/s, "
          f"transformers {tokens / train['transformers']:,.0f}, "
          f"ratio {train['transformers'] / train['legollm']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
