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

For decoding, attention owns its KV cache (``setup_cache`` / ``remove_cache``):
the cache's one ``update`` returns the keys and values to attend to and the
position each key holds, and attention turns query and key positions into its
mask (``causal_mask``: causality, its sliding window, a batch's padding, packed
documents). Every layer builds its own mask, so nothing outside needs to know
how a cache lays out its keys.
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
        self.window = c.sliding_window  # None: full attention
        self.dropout = c.dropout
        self.impl = c.attn_impl
        self.kv_cache: KVCache | None = None

    # -- KV cache -------------------------------------------------------------
    def setup_cache(
        self,
        batch_size: int,
        max_seq_len: int,
        dtype: torch.dtype,
        device: torch.device | str,
        ring: bool = True,
    ) -> None:
        """A cache for positions 0 .. max_seq_len - 1 (a ring of ``window`` slots if smaller).

        ``ring=False`` keeps every position even with a sliding window (the mask still
        applies the window): memory grows with max_seq_len, but each slot keeps one
        position for good, which a server's batch of rows of different ages needs.
        """
        window = self.window if ring else None
        self.kv_cache = KVCache(
            batch_size, max_seq_len, self.n_kv_heads, self.head_dim, dtype, device, window
        )

    def remove_cache(self) -> None:
        self.kv_cache = None

    # -- forward --------------------------------------------------------------
    def forward(
        self,
        x: torch.Tensor,
        rope: tuple[torch.Tensor, torch.Tensor] | None = None,
        input_pos: torch.Tensor | None = None,
        padding: torch.Tensor | None = None,
        document_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x (B, T, C) at positions ``input_pos`` (T,; default 0 .. T - 1) -> (B, T, C).

        ``padding`` (B, positions so far) is a left-padded batch's attention_mask (0 =
        a padding token); ``document_ids`` (B, T) keeps packed examples apart.
        """
        B, T, _ = x.shape
        if input_pos is None:
            input_pos = torch.arange(T, device=x.device)
        q, k, v = self._project(x, rope)
        k, v, key_pos = self._keys_values(input_pos, k, v)  # (B, nkv, S, hd), (S,)
        mask = None  # plain causal: the fused kernel skips the upper half
        plain = self.kv_cache is None and self.window is None
        if not plain or padding is not None or document_ids is not None:
            mask = causal_mask(input_pos, key_pos, self.window, padding, document_ids)
        p = self.dropout if self.training else 0.0
        if self.impl == "sdpa":
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=p, is_causal=mask is None,
                enable_gqa=self.n_kv_heads != self.n_head,
            )  # fmt: skip
        else:
            y = self._manual(q, k, v, mask, p)
        y = y.transpose(1, 2).reshape(B, T, self.n_head * self.head_dim)  # (B, T, nh*hd)
        return self.o_proj(y)

    def _project(self, x: torch.Tensor, rope) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries (B, nh, T, hd), keys and values (B, nkv, T, hd), normed and rotated."""
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        return q, k, v

    def _keys_values(
        self, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The keys, values and key positions to attend to: the cache's, or this chunk's own."""
        if self.kv_cache is None:
            return k, v, input_pos
        return self.kv_cache.update(input_pos, k, v)

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


def causal_mask(
    q_pos: torch.Tensor,
    k_pos: torch.Tensor,
    window: int | None = None,
    padding: torch.Tensor | None = None,
    document_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Boolean (B|1, 1, T, S) mask, True = may attend, from query (T,) and key (S,) positions.

    A query at p sees the keys at positions in [0, p] (a negative key position is
    an empty cache slot), and only (p - window, p] with a sliding window.
    ``padding`` (B, L), indexed by position, hides padding tokens (positions past
    L are real ones); ``document_ids`` (B, T, keys = the queries) hides other
    documents.
    """
    q, k = q_pos[:, None], k_pos[None, :]
    allowed = (k <= q) & (k >= 0)  # (T, S) causal, written slots only
    if window is not None:
        allowed &= k > q - window
    allowed = allowed[None, None]  # (1, 1, T, S)
    if padding is not None:
        L = padding.shape[1]
        real = padding.bool()[:, k_pos.clamp(0, L - 1)] | (k_pos >= L)  # (B, S)
        allowed = allowed & real[:, None, None, :]  # (B, 1, T, S)
        # a padding query that sees nothing would give NaN: let it see itself
        allowed = allowed | (k == q)[None, None]
    if document_ids is not None:  # keys of the query's own document only
        allowed = allowed & (document_ids[:, :, None] == document_ids[:, None, :])[:, None]
    return allowed
