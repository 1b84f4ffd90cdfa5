"""Normalization layers.

LayerNorm (GPT-2) re-centres and re-scales each token vector; RMSNorm (Llama,
Qwen, Mistral) only re-scales, which is cheaper and works as well. RMSNorm is
computed in float32 and cast back, as Llama does, so bf16 runs keep precision.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5, bias: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, self.eps)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def build_norm(kind: str, dim: int, eps: float, bias: bool = True) -> nn.Module:
    return LayerNorm(dim, eps, bias) if kind == "layernorm" else RMSNorm(dim, eps)
