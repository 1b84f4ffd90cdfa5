"""Causal self-attention: multi-head, grouped-query and multi-query in one module.

``n_kv_heads`` decides the flavour: equal to ``n_head`` is classic MHA (GPT-2),
1 is MQA, anything in between is GQA (Llama 3, Qwen 3, Mistral), where each
key/value head is shared by a group of query heads; this shrinks the KV cache
by n_head / n_kv_heads. Query head h uses key/value head h // (n_head / n_kv_heads).

The keys and values are never copied out to one per query head: when decoding,
that copy would re-write the whole cache in every layer for every token (on a
2-core CPU, at 1024 cached positions, copying and attending took ~15x as long
as attending with the heads shared).

Two paths compute the same thing: ``sdpa`` calls PyTorch's fused
scaled_dot_product_attention (flash / memory-efficient kernels where the device
has them; ``enable_gqa`` shares the kv heads inside the kernel); ``manual`` writes
out softmax(QK^T / sqrt(d) + mask) V for reading and for testing the fast path
against, sharing the kv heads by folding each group of query heads into one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from legollm.components.kv_cache import KVCache
from legollm.components.linear import Linear
from legollm.components.normalization import RMSNorm
from legollm.components.position import apply_rope


class CausalSelfAttention(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        c = config
        self.n_head, self.n_kv_heads, self.head_dim = c.n_head, c.kv_heads, c.head_size
        self.q_proj = Linear(c.n_embd, c.n_head * c.head_size, bias=c.qkv_bias)
        self.k_proj = Linear(c.n_embd, c.kv_heads * c.head_size, bias=c.qkv_bias)
        self.v_proj = Linear(c.n_embd, c.kv_heads * c.head_size, bias=c.qkv_bias)
        self.o_proj = Linear(c.n_head * c.head_size, c.n_embd, bias=c.attn_out_bias)
        # Qwen 3 normalises each head's queries and keys before RoPE
        self.q_norm = RMSNorm(c.head_size, c.norm_eps) if c.qk_norm else None
        self.k_norm = RMSNorm(c.head_size, c.norm_eps) if c.qk_norm else None
        self.sliding_window = c.sliding_window
        self.dropout = c.dropout
        self.impl = c.attn_impl
        self.kv_cache: KVCache | None = None

    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        mask: torch.Tensor | None = None,
        input_pos: torch.Tensor | None = None,
    ) -> torch.Tensor:
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # (B, nh, T, hd)
        k = (
            self.k_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        )  # (B, nkv, T, hd)
        v = self.v_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        if self.kv_cache is not None:
            k, v = self.kv_cache.update(input_pos, k, v)  # (B, nkv, S, hd)
        p = self.dropout if self.training else 0.0
        if self.impl == "sdpa":  # no mask: plain causal, which lets the kernel skip the upper half
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=p, is_causal=mask is None,
                enable_gqa=self.n_kv_heads != self.n_head,
            )  # fmt: skip
        else:
            y = self._manual(q, k, v, mask, p)
        y = y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim)  # (B, T, nh*hd)
        return self.o_proj(y)

    @staticmethod
    def _manual(q, k, v, mask, p) -> torch.Tensor:
        """softmax(QK^T / sqrt(hd) + mask) V, each kv head serving its group of query heads.

        The g query heads of a group are stacked into one head of g*T rows, so a
        plain (batched) matmul against that group's single kv head does the work.
        """
        B, nh, T, hd = q.shape
        nkv, S = k.shape[1], k.shape[2]
        g = nh // nkv
        q = q.reshape(B, nkv, g * T, hd)  # heads h = j*g .. j*g+g-1 share kv head j
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hd)  # (B, nkv, g*T, S)
        att = att.view(B, nkv, g, T, S)
        if mask is None:
            mask = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(S - T)
        else:
            mask = mask[:, :, None]  # (B|1, 1, 1, T, S): the same for every head of a group
        att = att.masked_fill(~mask, float("-inf")).softmax(dim=-1)
        att = F.dropout(att, p) if p else att
        y = att.view(B, nkv, g * T, S) @ v  # (B, nkv, g*T, hd)
        return y.view(B, nh, T, hd)
