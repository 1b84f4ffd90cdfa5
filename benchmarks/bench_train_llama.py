"""Llama-style training tokens/s: LegoLLM's DecoderLM vs transformers' LlamaForCausalLM,
same weights, same batches, same process.

A Llama 3.2-shaped model scaled down for a CPU (RMSNorm, RoPE with Llama 3.1's
frequency scaling, SwiGLU, grouped-query attention, tied embeddings) is made
randomly by transformers, saved with ``save_pretrained`` and loaded by ours. Each
side then runs the same loop: forward with the loss, backward, AdamW step, in
float32, on the same random token batches, timed in alternating rounds so that
machine noise hits both alike. Before timing, the script checks that both give
the same logits. Run it alone: a second busy process on a 2-core machine stalls
PyTorch's threads.

    uv run python benchmarks/bench_train_llama.py
    uv run python benchmarks/bench_train_llama.py --smoke    # 1 layer, 64 wide, seconds
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from _smoke import parse_args
from transformers import LlamaConfig, LlamaForCausalLM

from legollm.models import load_pretrained
from legollm.models.loss import lm_loss


def hf_config(args) -> LlamaConfig:
    return LlamaConfig(
        vocab_size=args.vocab,
        hidden_size=args.dim,
        intermediate_size=args.dim * 3,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        max_position_embeddings=2048,
        rope_theta=500000.0,
        rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0,
                          high_freq_factor=4.0, original_max_position_embeddings=512),
        tie_word_embeddings=True,
        attention_bias=False,
        mlp_bias=False,
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=32768)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--block-size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per round and side")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    smoke = dict(dim=64, layers=1, heads=2, kv_heads=1, vocab=1000, batch_size=2, block_size=32,
                 steps=1, rounds=1, threads=1)  # fmt: skip
    args = parse_args(ap, smoke)
    torch.set_num_threads(args.threads)
    B, T = args.batch_size, args.block_size

    torch.manual_seed(0)
    hf = LlamaForCausalLM(hf_config(args))
    path = tempfile.mkdtemp(prefix="legollm_llamabench_")
    hf.save_pretrained(path)
    ours = load_pretrained(path)
    n_params = sum(p.numel() for p in ours.parameters())

    g = torch.Generator().manual_seed(1)
    batches = [torch.randint(0, args.vocab, (B, T + 1), generator=g) for _ in range(4)]
    with torch.no_grad():
        x = batches[0][:, :T]
        diff = (ours(x) - hf(x).logits).abs().max().item()
    print(f"{n_params / 1e6:.1f}M parameters; logits max abs diff before training: {diff:.1e}")

    def ours_step(batch):
        return lm_loss(ours(batch[:, :-1]), batch[:, 1:])

    def hf_step(batch):
        # transformers shifts inside: the last input position has no label, the rest as ours
        return hf(input_ids=batch[:, :-1], labels=batch[:, :-1]).loss

    sides = {"legollm": (ours, ours_step), "transformers": (hf, hf_step)}
    opts = {name: torch.optim.AdamW(m.parameters(), lr=1e-4, fused=False) for name, (m, _) in sides.items()}  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in sides}

    def run(name: str, steps: int) -> float:
        model, step = sides[name]
        model.train()
        t0 = time.perf_counter()
        for i in range(steps):
            loss = step(batches[i % len(batches)])
            loss.backward()
            opts[name].step()
            opts[name].zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    for name in sides:  # warm-up: allocator, AdamW state
        run(name, 1)
    for r in range(args.rounds):
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for name in order:
            times[name].append(args.steps * B * T / run(name, args.steps))
    tps = {name: statistics.median(v) for name, v in times.items()}
    print(f"batch {B} x {T}, fp32, AdamW, {args.threads} threads, median of {args.rounds} rounds:")
    for name, v in tps.items():
        print(
            f"  {name:13s} {v:8,.0f} tokens/s   rounds: "
            + ", ".join(f"{t:,.0f}" for t in times[name])
        )
    print(f"ratio legollm / transformers: {tps['legollm'] / tps['transformers']:.2f}x")


if __name__ == "__main__":
    main()
