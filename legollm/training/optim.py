"""AdamW with the two parameter groups GPT-2 style training uses.

Weight decay pulls weights towards zero. That is a useful prior for the matrices
(linear layers, embeddings) but not for biases and norm gains: decaying a LayerNorm
gain towards 0 fights the normalisation itself. The rule is by shape, not by name:
every parameter with ``dim() >= 2`` decays, every 1-D one does not.

``decay="all"`` decays every parameter instead, as ``torch.optim.AdamW(model.parameters(),
weight_decay=...)`` does: the recipe LLMs-from-scratch trains with, kept for reproducing it.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from legollm.core.exceptions import ConfigError


def param_groups(model: nn.Module, weight_decay: float, decay: str = "matrices") -> list[dict]:
    """Split trainable parameters into a decayed (>= 2-D) and a non-decayed (< 2-D) group
    (``decay="all"``: everything in the decayed group).

    ``named_parameters`` yields a tied weight (token embedding == LM head) once, so it
    is never optimised twice.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if decay not in ("matrices", "all"):
        raise ConfigError(f"weight decay applies to 'matrices' or 'all' parameters, not {decay!r}")
    decayed = [p for p in params if p.dim() >= 2 or decay == "all"]
    kept = [p for p in params if p.dim() < 2 and decay != "all"]
    return [
        {"params": decayed, "weight_decay": weight_decay},
        {"params": kept, "weight_decay": 0.0},
    ]


def build_optimizer(
    model: nn.Module,
    lr: float,
    weight_decay: float = 0.1,
    betas: tuple[float, float] = (0.9, 0.95),
    eps: float = 1e-8,
    device_type: str = "cpu",
    fused: bool | None = None,
    decay: str = "matrices",
) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`, fused (one kernel for all params) when available.

    ``fused=None`` picks it automatically: fused on CUDA and CPU where this torch build
    supports it, else ``foreach`` (a few batched kernels instead of one per tensor).
    """
    groups = param_groups(model, weight_decay, decay)
    supports_fused = "fused" in inspect.signature(torch.optim.AdamW).parameters
    if fused is None:
        fused = supports_fused and device_type in ("cuda", "cpu")
    kwargs = {"fused": True} if fused and supports_fused else {"foreach": True}
    try:
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, **kwargs)
    except (RuntimeError, ValueError):  # e.g. fused not built for this device/dtype
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps, foreach=True)


__all__ = ["build_optimizer", "param_groups"]
