"""A key/value cache allocated once for (batch, max length) and written in place.

Decoding one token at a time only needs the new token's query against every
earlier key and value; caching them turns O(T^2) re-computation per step into
O(T). The buffers are pre-allocated so a step is an index_copy, never a
``torch.cat`` that reallocates (and so shapes stay static for torch.compile).
"""

from __future__ import annotations

import torch
from torch import nn


class KVCache(nn.Module):
    def __init__(
        self,
        batch_size: int,
        max_seq_len: int,
        n_kv_heads: int,
        head_dim: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        shape = (batch_size, n_kv_heads, max_seq_len, head_dim)
        self.register_buffer("k", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v", torch.zeros(shape, dtype=dtype, device=device), persistent=False)

    def update(
        self, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v (B, nkv, T, hd) at positions ``input_pos`` (T,); return the full buffers."""
        self.k.index_copy_(2, input_pos, k.to(self.k.dtype))
        self.v.index_copy_(2, input_pos, v.to(self.v.dtype))
        return self.k, self.v

    def reset(self) -> None:
        self.k.zero_()
        self.v.zero_()
