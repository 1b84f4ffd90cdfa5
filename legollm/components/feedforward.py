"""Position-wise feed-forward networks.

GPT-2's MLP expands to 4x the width, applies GELU (tanh approximation, as the
original TensorFlow code did, so pretrained GPT-2 weights need it; ``approximate=
"none"`` is the exact erf form nanoGPT trains with, cheaper on CPUs) and projects back. SwiGLU (Llama, Qwen, Mistral)
multiplies a SiLU-gated branch by a linear branch, which trains better per
parameter; its hidden size is usually ~8/3 of the width to keep the count equal.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from legollm.components.linear import Linear


class GeluMLP(nn.Module):
    def __init__(self, dim: int, hidden: int, bias: bool = True, approximate: str = "tanh") -> None:
        super().__init__()
        self.up_proj = Linear(dim, hidden, bias=bias)
        self.down_proj = Linear(hidden, dim, bias=bias)
        self.approximate = approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.gelu(self.up_proj(x), approximate=self.approximate))


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int, bias: bool = False) -> None:
        super().__init__()
        self.gate_proj = Linear(dim, hidden, bias=bias)
        self.up_proj = Linear(dim, hidden, bias=bias)
        self.down_proj = Linear(hidden, dim, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


def build_ffn(kind: str, dim: int, hidden: int, bias: bool, gelu: str = "tanh") -> nn.Module:
    return GeluMLP(dim, hidden, bias, gelu) if kind == "gelu_mlp" else SwiGLU(dim, hidden, bias)
