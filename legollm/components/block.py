"""The pre-norm transformer block: x + attn(norm(x)), then x + ffn(norm(x)).

Normalising the input of each sub-layer (not its output, as the 2017 paper did)
keeps the residual stream an untouched sum, which is what lets deep stacks train.
"""

from __future__ import annotations

import torch
from torch import nn

from legollm.components.attention import CausalSelfAttention
from legollm.components.feedforward import build_ffn
from legollm.components.moe import MoE
from legollm.components.normalization import build_norm


class Block(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        c = config
        self.attn_norm = build_norm(c.norm, c.n_embd, c.norm_eps, c.norm_bias)
        self.attn = CausalSelfAttention(c)
        self.ffn_norm = build_norm(c.norm, c.n_embd, c.norm_eps, c.norm_bias)
        if c.ffn == "moe":
            self.ffn = MoE(c.n_embd, c.ffn_size, c.n_experts, c.n_experts_per_token, c.mlp_bias,
                           c.moe_normalize_topk)  # fmt: skip
        else:
            self.ffn = build_ffn(c.ffn, c.n_embd, c.ffn_size, c.mlp_bias, c.gelu_approximate)
        self.dropout = nn.Dropout(c.dropout)

    def forward(
        self, x: torch.Tensor, rope=None, input_pos=None, padding=None, document_ids=None
    ) -> torch.Tensor:
        """See ``CausalSelfAttention.forward`` for what the arguments after x mean."""
        x = x + self.dropout(self.attn(self.attn_norm(x), rope, input_pos, padding, document_ids))
        return x + self.dropout(self.ffn(self.ffn_norm(x)))
