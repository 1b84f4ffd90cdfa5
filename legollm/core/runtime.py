"""Where a model runs: the one device and precision policy, and the wrappers around a model.

Training, generation and every command ask here, so "auto" means the same thing
everywhere.
"""

from __future__ import annotations

import torch
from torch import nn

from legollm.core.exceptions import ConfigError


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """The one device policy: CUDA if present, then Apple MPS, then CPU."""
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
    """The autocast dtype (None = plain fp32). ``auto`` is bf16 on CUDA GPUs that have it."""
    if precision == "auto":
        ok = device.type == "cuda" and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if ok else None
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("precision=fp16 (with GradScaler) needs CUDA; use bf16 or fp32")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def unwrap_model(model: nn.Module) -> nn.Module:
    """Peel DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers off a model."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


__all__ = ["resolve_device", "resolve_precision", "unwrap_model"]
