"""Training memory: plain vs activation checkpointing vs chunked loss vs both, and
DDP vs FSDP per rank, on a Llama-3.2-shaped model scaled down for a CPU.

Part 1 (one process): the same model (RMSNorm, RoPE with Llama 3 scaling, SwiGLU,
grouped-query attention, tied embeddings, a vocabulary 128x the width as in Llama
3.2 1B's 62x) trains a step in each of four ways through the real Trainer. Each
variant first trains one step (so AdamW's state exists and the gradients were
freed), then the next step's peak memory growth is measured: on CUDA the allocator's
peak, on a CPU the process's peak RSS (VmHWM, reset through /proc/self/clear_refs,
with glibc set to hand every freed block back). That growth is what a step adds on
top of weights and optimizer state: activations, gradients, the loss's logits.
The anchor is the plain step: the ratio is plain / both, and the time cost both / plain.
Targets: >= 3x less, < 40% slower.

Part 2 (two processes each, gloo): DDP and FSDP train the same model on 2 ranks for
two steps; each rank adds up the bytes of the weights, gradients and AdamW state it
holds (its shards, under FSDP; gradients are as large as the weights they belong
to). Target: FSDP <= 0.6x DDP per rank.

    uv run python benchmarks/bench_memory.py
    uv run python benchmarks/bench_memory.py --smoke     # tiny, seconds
    uv run python benchmarks/bench_memory.py --device cuda   # peaks from the CUDA allocator
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _smoke import parse_args, skipped

from legollm.models import DecoderLM, ModelConfig
from legollm.training.config import TrainConfig
from legollm.training.memory import estimate_memory
from legollm.training.trainer import Trainer

VARIANTS = {
    "plain": {},
    "checkpointing": {"activation_checkpointing": True},
    "chunked loss": {"loss_chunk_size": "chunk"},
    "both": {"activation_checkpointing": True, "loss_chunk_size": "chunk"},
}


def model_config(args) -> ModelConfig:
    return ModelConfig(
        vocab_size=args.vocab, context_length=args.block_size, n_layer=args.layers,
        n_head=args.heads, n_kv_heads=args.kv_heads, n_embd=args.dim, ffn_hidden=args.dim * 4,
        norm="rmsnorm", position="rope", ffn="swiglu", rope_theta=500000.0,
        rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0,
                          high_freq_factor=4.0, original_max_position_embeddings=8192),
        qkv_bias=False, attn_out_bias=False, mlp_bias=False, norm_bias=False,
        tie_embeddings=True, init="normal",
    )  # fmt: skip


class RandomBatches:
    """Random token batches: memory and time do not depend on what the tokens say."""

    def __init__(self, vocab: int, batch: int, block: int, seed: int = 0):
        self.shape, self.vocab = (batch, block + 1), vocab
        self.gen = torch.Generator().manual_seed(seed)

    def next_batch(self):
        x = torch.randint(0, self.vocab, self.shape, generator=self.gen)
        return x[:, :-1].contiguous(), x[:, 1:].contiguous()


# -- measuring a step's peak --------------------------------------------------------
def release_freed_memory() -> None:
    """Have glibc return every freed block to the OS (and serve big ones by mmap), so
    the process's RSS follows the live tensors instead of the allocator's high water."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 65536)  # M_MMAP_THRESHOLD: 64 KiB, no longer adapted upwards
        libc.malloc_trim(0)


def rss(key: str = "VmRSS:") -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))


def measure_step(trainer: Trainer, device: torch.device) -> tuple[int, float]:
    """(bytes the step adds at its peak, seconds) for one more step of ``trainer``."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
    else:
        release_freed_memory()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # VmHWM starts again from the current RSS
        before = rss()
    t0 = time.perf_counter()
    trainer.train_step()
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated(device)
    else:
        peak = rss("VmHWM:")
    return peak - before, time.perf_counter() - t0


def run_variant(args, name: str, device: torch.device) -> dict:
    fields = {k: (args.chunk if v == "chunk" else v) for k, v in VARIANTS[name].items()}
    cfg = TrainConfig(batch_size=args.batch_size, block_size=args.block_size, device=device.type,
                      precision=args.precision, progress=False, run_dir=tempfile.gettempdir(),
                      **fields)  # fmt: skip
    mcfg = model_config(args)
    torch.manual_seed(0)
    trainer = Trainer(DecoderLM(mcfg), cfg, RandomBatches(args.vocab, args.batch_size,
                                                          args.block_size))  # fmt: skip
    trainer.train_step()  # AdamW's state now exists; the gradients were freed
    peaks, times = [], []
    for _ in range(args.steps):
        peak, seconds = measure_step(trainer, device)
        peaks.append(peak)
        times.append(seconds)
    dtype = "bf16" if trainer.autocast_dtype == torch.bfloat16 else "fp32"
    est = estimate_memory(mcfg, cfg, 1, dtype).strategies["ddp"].step
    del trainer
    return {"peak": max(peaks), "seconds": statistics.median(times), "estimate": est}


# -- DDP vs FSDP on 2 ranks --------------------------------------------------------------
def local_bytes(t: torch.Tensor) -> int:
    """Bytes of this rank's part of ``t`` (a DTensor's local shard, or all of it)."""
    t = t.to_local() if hasattr(t, "to_local") else t
    return t.numel() * t.element_size()


def worker(args) -> None:
    """One rank of a 2-process run: print the bytes of its training state as JSON."""
    from legollm.training.distributed import cleanup_distributed, init_distributed

    init_distributed("gloo")
    extra = {"strategy": args.worker} if args.worker != "ddp" else {}
    cfg = TrainConfig(batch_size=args.batch_size, block_size=args.block_size, device="cpu",
                      precision="fp32", progress=False, run_dir=tempfile.gettempdir(),
                      **extra)  # fmt: skip
    torch.manual_seed(0)
    trainer = Trainer(DecoderLM(model_config(args)), cfg,
                      RandomBatches(args.vocab, args.batch_size, args.block_size, seed=1))  # fmt: skip
    for _ in range(2):
        trainer.train_step()
    weights = sum(local_bytes(p) for p in trainer.raw_model.parameters())
    adam = sum(local_bytes(v) for state in trainer.optimizer.state.values()
               for v in state.values() if torch.is_tensor(v))  # fmt: skip
    print(json.dumps({"held": 2 * weights + adam}), flush=True)  # + gradients, weight-sized
    cleanup_distributed()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(args, strategy: str) -> int:
    """Launch 2 ranks training with ``strategy``; the larger rank's held bytes."""
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()),
           "WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"}  # fmt: skip
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", strategy,
            "--dim", str(args.dim), "--layers", str(args.layers), "--heads", str(args.heads),
            "--kv-heads", str(args.kv_heads), "--vocab", str(args.vocab),
            "--batch-size", "1", "--block-size", str(min(args.block_size, 64))]  # fmt: skip
    procs = [
        subprocess.Popen(argv, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for r in range(2)
    ]  # fmt: skip
    held = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError(f"{strategy} rank failed:\n{err[-2000:]}")
        held.append(json.loads(out.strip().splitlines()[-1])["held"])
    return max(held)


def fsdp_available() -> bool:
    return "strategy" in TrainConfig.__dataclass_fields__


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=32768)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--block-size", type=int, default=512)
    ap.add_argument("--chunk", type=int, default=256, help="loss_chunk_size of the chunked runs")
    ap.add_argument("--steps", type=int, default=2, help="measured steps per variant")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one rank of part 2
    smoke = dict(dim=64, layers=2, heads=4, kv_heads=2, vocab=2048, batch_size=2, block_size=64,
                 chunk=32, steps=1, threads=1)  # fmt: skip
    args = parse_args(ap, smoke)
    torch.set_num_threads(args.threads)
    if args.worker:
        return worker(args)
    device = torch.device(args.device)
    if device.type == "cpu" and not Path("/proc/self/clear_refs").exists():
        skipped("the memory runs", "peak RSS needs Linux's /proc/self/clear_refs")
        print("ratio plain/both activation memory: skipped")
        return None
    n = sum(p.numel() for p in DecoderLM(model_config(args)).parameters())
    print(f"Llama-3.2-shaped: {n / 1e6:.1f}M parameters, {args.layers} layers, dim {args.dim}, "
          f"vocab {args.vocab}; micro-batch {args.batch_size} x {args.block_size}, "
          f"loss chunk {args.chunk}, {device}")  # fmt: skip
    print(f"{'variant':<16}{'step peak (MB)':>16}{'estimate (MB)':>15}{'step (s)':>10}")
    results = {}
    for name in VARIANTS:
        r = results[name] = run_variant(args, name, device)
        print(f"{name:<16}{r['peak'] / 1e6:>16.1f}{r['estimate'] / 1e6:>15.1f}"
              f"{r['seconds']:>10.2f}", flush=True)  # fmt: skip
    plain, both = results["plain"], results["both"]
    cost = both["seconds"] / plain["seconds"] - 1
    print(f"checkpointing + chunked loss: {plain['peak'] / both['peak']:.2f}x less step memory "
          f"(target >= 3x), step time {100 * cost:+.0f}% (target < +40%)")  # fmt: skip
    if device.type == "cpu":
        ddp = run_ranks(args, "ddp")
        if fsdp_available():
            fsdp = run_ranks(args, "fsdp")
            print(f"2 ranks, weights + gradients + AdamW per rank: DDP {ddp / 1e6:.1f} MB, "
                  f"FSDP {fsdp / 1e6:.1f} MB: {fsdp / ddp:.2f}x (target <= 0.6x)")  # fmt: skip
        else:
            print(f"2 ranks, weights + gradients + AdamW per rank: DDP {ddp / 1e6:.1f} MB, "
                  "FSDP pending (strategy: fsdp is not in this build yet)")  # fmt: skip
    print(f"ratio plain/both step memory: {plain['peak'] / both['peak']:.2f}x")
    return None


if __name__ == "__main__":
    main()
