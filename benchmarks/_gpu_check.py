"""The Python steps of benchmarks/gpu_check.sh: one GPU, GPT-2 124M, a few minutes.

    python benchmarks/_gpu_check.py train      # bf16 + torch.compile + flash SDPA: tokens/s, MFU
    python benchmarks/_gpu_check.py fsdp       # the same through strategy: fsdp (run by torchrun)
    python benchmarks/_gpu_check.py generate   # KV-cached decoding, batch 1 and 8: tokens/s
    python benchmarks/_gpu_check.py train --dry-run   # a tiny model on the CPU: checks the script

No data set and no tokenizer are needed: training reads random token batches, which
cost the GPU exactly what text would. Each step prints one ``gpu_check <step>:`` line.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import tempfile
import time

import torch

from legollm.generation.decode import generate
from legollm.models import DecoderLM
from legollm.models.presets import get_preset
from legollm.training.config import TrainConfig
from legollm.training.trainer import Trainer


class RandomBatches:
    """Uniform random token batches on the training device."""

    def __init__(self, vocab: int, batch: int, block: int, device: str):
        self.shape, self.vocab, self.device = (batch, block + 1), vocab, device
        self.gen = torch.Generator().manual_seed(0)

    def next_batch(self):
        x = torch.randint(0, self.vocab, self.shape, generator=self.gen).to(self.device)
        return x[:, :-1], x[:, 1:]

    def state_dict(self) -> dict:
        return {"rng": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["rng"])


def setup(args):
    """GPT-2 124M (or, dry, a 2-layer slice of it) and the batch shape for this device."""
    config = get_preset("gpt2:gpt2")
    if args.dry_run:
        config = dataclasses.replace(config, n_layer=2, n_head=2, n_embd=64, vocab_size=512)
        return config, "cpu", 2, 64, 4
    torch.backends.cuda.matmul.allow_tf32 = True
    return config, "cuda", 16, 1024, 30


def flash_only(device: str) -> contextlib.AbstractContextManager:
    """Let SDPA use only the flash kernel (an error, not a silent fallback, if it cannot)."""
    if device != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel(SDPBackend.FLASH_ATTENTION)


def train(args, strategy: str | None = None) -> None:
    config, device, batch, block, steps = setup(args)
    extra = {"strategy": strategy} if strategy else {}
    cfg = TrainConfig(batch_size=batch, block_size=block, max_iters=steps, warmup_iters=0,
                      log_interval=max(steps // 3, 1), eval_iters=0, save_checkpoints=False,
                      progress=False, plot=False, device=device,
                      precision="bf16" if device == "cuda" else "fp32", compile=not args.dry_run,
                      run_dir=tempfile.mkdtemp(prefix="legollm_gpu_check_"), **extra)  # fmt: skip
    torch.manual_seed(0)
    model = DecoderLM(dataclasses.replace(config, context_length=block))
    trainer = Trainer(model, cfg, RandomBatches(config.vocab_size, batch, block, device))
    with flash_only(device):
        trainer.fit()
    last = trainer.history[-1]  # the last log interval: compilation is behind it
    mfu = f", MFU {100 * last['mfu']:.1f}%" if "mfu" in last else ", MFU n/a (unknown peak)"
    memory = f", peak memory {last['peak_memory_gb']:.1f} GB" if "peak_memory_gb" in last else ""
    label = f"train ({strategy})" if strategy else "train"
    sdpa = "flash SDPA" if device == "cuda" else "default SDPA"
    print(f"gpu_check {label}: {last['tokens_per_s']:,.0f} tokens/s{mfu}{memory} "
          f"(GPT-2 {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M, batch {batch} x "
          f"{block}, {cfg.precision}, compile={cfg.compile}, {sdpa})", flush=True)  # fmt: skip


def fsdp(args) -> None:
    if "strategy" not in TrainConfig.__dataclass_fields__:
        print("gpu_check train (fsdp): skipped, strategy: fsdp is not in this build")
        return
    train(args, strategy="fsdp")


@torch.no_grad()
def decode(args) -> None:
    config, device, *_ = setup(args)
    torch.manual_seed(0)
    model = DecoderLM(config).to(device).eval()
    if device == "cuda":
        model = model.to(torch.bfloat16)
    new = 16 if args.dry_run else 256
    for batch in (1, 8):
        prompt = torch.randint(0, config.vocab_size, (batch, 32), device=device)
        generate(model, prompt, 4, compile=device == "cuda")  # warm up (and compile)
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        generate(model, prompt, new, compile=device == "cuda")
        if device == "cuda":
            torch.cuda.synchronize()
        rate = batch * new / (time.perf_counter() - t0)
        print(f"gpu_check generate: batch {batch}: {rate:,.0f} new tokens/s "
              f"({new} tokens, KV cache, {next(model.parameters()).dtype})", flush=True)  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=("train", "fsdp", "generate"))
    ap.add_argument("--dry-run", action="store_true", help="a tiny model on the CPU")
    args = ap.parse_args()
    if not args.dry_run and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU visible: run with --dry-run to check the script on a CPU")
    {"train": train, "fsdp": fsdp, "generate": decode}[args.step](args)


if __name__ == "__main__":
    main()
