"""Where a model runs and at what precision: the one device and precision policy.

Training, fine-tuning, generation and every command after them ask the same two
questions (which device? which autocast dtype?), and the answers must agree: a model
trained under one rule and served under another behaves differently for no visible
reason. So the rules live here, below every layer that uses them, and nowhere else.
The precision rule is hardware-aware because bf16 is a speed-up only where the
hardware computes it: CUDA GPUs that support it, and CPUs with AVX512-BF16 or AMX
(or Arm's BF16 extension). Elsewhere PyTorch emulates bf16 matmuls, ~10x slower than
fp32, so ``auto`` picks fp32 there and an explicit ``bf16`` says what it costs.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn

from legollm.core.exceptions import ConfigError

# set to 1 or 0 to skip the detection (tests pin it, so their fp32 oracles hold on any CPU)
CPU_BF16_ENV = "LEGOLLM_CPU_BF16"
# /proc/cpuinfo flags (x86) or Features (Arm) that mean bf16 matmuls run in hardware
NATIVE_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """The device for ``name``: ``auto`` is CUDA if present, then Apple MPS, then CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device=cuda but no CUDA GPU is visible; use device=auto or cpu")
        return torch.device("cuda", local_rank)
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device=mps but MPS is not available; use device=auto or cpu")
    return torch.device(name)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (None = plain fp32).

    ``auto`` is bf16 on CUDA GPUs that support it and on CPUs that compute bf16
    natively, fp32 everywhere else. An explicit ``bf16`` on a CPU without native bf16
    is honoured, with a one-line warning on stderr giving the measured slowdown.
    """
    if precision == "auto":
        if device.type == "cuda":
            ok = torch.cuda.is_bf16_supported()
        else:
            ok = device.type == "cpu" and cpu_has_native_bf16()
        return torch.bfloat16 if ok else None
    if precision not in AUTOCAST_DTYPES:
        raise ConfigError(f"unknown precision {precision!r}; use auto, fp32, bf16 or fp16")
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision=fp16 (with GradScaler) needs CUDA; use bf16 or fp32")
    if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        print(f"warning: {slow_bf16_message(cpu_bf16_slowdown())}", file=sys.stderr)
    return AUTOCAST_DTYPES[precision]


def slow_bf16_message(slowdown: float) -> str:
    """What an explicit bf16 costs on this CPU, and what to use instead (one line)."""
    return (
        f"precision bf16: autocast runs {slowdown:.1f}x slower than fp32 on this CPU "
        "(measured on a small MLP; no AVX512-BF16/AMX, so bf16 is emulated); "
        "use precision: auto or fp32"
    )


def _cpu_feature_flags() -> set[str] | None:
    """The CPU's feature flags from /proc/cpuinfo, or None where it does not list them."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return None


@functools.cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 matmuls in hardware (decided once per process).

    ``LEGOLLM_CPU_BF16=1`` or ``0`` answers it outright. Otherwise the kernel's feature
    flags answer it where Linux lists them; elsewhere a small bf16 autocast step is
    timed against fp32 and bf16 counts as native if it is not slower.
    """
    forced = os.environ.get(CPU_BF16_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    flags = _cpu_feature_flags()
    if flags is not None:
        return bool(flags & NATIVE_BF16_FLAGS)
    return cpu_bf16_slowdown() <= 1.0


@functools.cache
def cpu_bf16_slowdown(tokens: int = 256, dim: int = 128, repeats: int = 3) -> float:
    """How many times slower a training step's matmuls run under CPU bf16 autocast.

    Times a small MLP's forward and backward (``tokens`` x ``dim``, 4x hidden: the
    shapes of a small CPU model) with and without bf16 autocast, best of ``repeats``,
    on one thread: on a busy machine a second thread only adds noise. ~0.5 s where
    bf16 is emulated, once per process.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gen = torch.Generator().manual_seed(0)
        mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))
        x = torch.randn(tokens, dim, generator=gen)

        def step(bf16: bool) -> float:
            t0 = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                loss = mlp(x).float().square().mean()
            loss.backward()
            return time.perf_counter() - t0

        def best(bf16: bool) -> float:
            step(bf16)  # the first call picks kernels and allocates
            return min(step(bf16) for _ in range(repeats))

        return best(True) / best(False)
    finally:
        torch.set_num_threads(threads)


def unwrap_model(model: nn.Module) -> nn.Module:
    """Peel DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers off a model."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


__all__ = [
    "NATIVE_BF16_FLAGS",
    "cpu_bf16_slowdown",
    "cpu_has_native_bf16",
    "resolve_device",
    "resolve_precision",
    "slow_bf16_message",
    "unwrap_model",
]
