"""A key/value cache allocated once and written in place: full, or a ring for sliding windows.

Decoding one token at a time only needs the new token's query against every
earlier key and value; caching them turns O(T^2) re-computation per step into
O(T). The buffers are pre-allocated so a step is an index_copy, never a
``torch.cat`` that reallocates (and so shapes stay static for torch.compile).

One rule places every token: position p goes to slot ``p % size``.

- Full attention: ``size = max_seq_len``, so slot p holds position p.
- Sliding window (Mistral): a query at p only sees keys at (p - window, p], so
  only the last ``window`` positions are ever needed and ``size = window``. The
  buffer is a ring: position p overwrites p - window, which no later query can
  see. Memory stays bounded however long the generation.

A ring has one subtlety. A chunk of several tokens (a prompt prefill) cannot be
written first and read after: its own later tokens would overwrite keys its
earlier queries still need (with window 8, writing positions 0..12 leaves 5..12,
but the query at 6 needs 0..6). So such a chunk attends "in flight" to the ring
as it was before the chunk, followed by the chunk's own keys; only then are the
chunk's last ``size`` keys kept (a chunk at position 0, a fresh prompt, has no
ring to see and attends to itself alone). This is simpler than prefilling in
window-sized pieces (one attention call, no loop) and costs at most one copy of
the ring per prefill, never per decoded token: a one-token step writes its key
and reads the ring in place, which also keeps the compiled step's shapes static.

``update`` returns, with the keys and values to attend to, the position each
of those keys holds (a negative number for a slot not written yet), so attention
builds its mask (causality, the window, padding) without knowing the layout.

``rows`` gives the same cache seen through some of its batch rows (views: writes
land in the one cache). A server batching requests that arrived at different
times prefills a newcomer's prompt into its own row only, and feeds a decode step
through the rows in use.
"""

from __future__ import annotations

import torch
from torch import nn

from legollm.core.exceptions import ConfigError


class KVCache(nn.Module):
    def __init__(
        self,
        batch_size: int,
        max_seq_len: int,
        n_kv_heads: int,
        head_dim: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
        window: int | None = None,
    ) -> None:
        super().__init__()
        if window is not None and window < 1:
            raise ConfigError(f"the sliding window must be at least 1 position, got {window}")
        self.max_seq_len = max_seq_len
        self.size = min(max_seq_len, window) if window is not None else max_seq_len
        self.rolling = self.size < max_seq_len  # a ring: positions will wrap around
        shape = (batch_size, n_kv_heads, self.size, head_dim)
        self.register_buffer("k", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v", torch.zeros(shape, dtype=dtype, device=device), persistent=False)

    def repeat_rows(self, n: int) -> None:
        """Repeat each row ``n`` times in place (rows a, b -> a, a, .., b, b, ..): a prefix
        run once, then continued ``n`` different ways (the choices of one question, the
        answers of one prompt's group)."""
        self.k = self.k.repeat_interleave(n, dim=0)
        self.v = self.v.repeat_interleave(n, dim=0)

    def rows(self, index: slice) -> KVCache:
        """This cache restricted to batch rows ``index``, sharing its storage.

        ``cache.rows(slice(2, 3))`` is a batch-1 cache whose updates write row 2 of
        ``cache`` and whose reads see row 2 alone; the other rows are untouched.
        """
        view = KVCache.__new__(KVCache)
        nn.Module.__init__(view)
        view.max_seq_len, view.size, view.rolling = self.max_seq_len, self.size, self.rolling
        view.register_buffer("k", self.k[index], persistent=False)
        view.register_buffer("v", self.v[index], persistent=False)
        return view

    def in_flight(self, input_pos: torch.Tensor) -> bool:
        """Whether this chunk attends to its own keys (after the old ring), not to the ring."""
        return self.rolling and len(input_pos) > 1

    @staticmethod
    def _continues(input_pos: torch.Tensor) -> bool:
        """Whether a chunk has earlier tokens in the ring to see (a host read: prefills only)."""
        return int(input_pos[0]) > 0

    def update(
        self, input_pos: torch.Tensor, k: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Store k, v (B, nkv, T, hd) of positions ``input_pos`` (T,); return what to attend to.

        That is the keys, the values and the position each key holds (S,), < 0 for
        an empty slot: the whole buffer (S = size), or for an in-flight chunk the
        chunk itself, after the ring as it was before the chunk if the chunk
        continues a sequence (S = size + T). Each chunk is taken to continue the one
        before (positions 0, 1, 2, ... in order, as decoding feeds them); starting
        again from 0 needs no reset.
        """
        k, v = k.to(self.k.dtype), v.to(self.v.dtype)
        in_flight = self.in_flight(input_pos)
        if in_flight:
            seen, positions = (k, v), input_pos
            if self._continues(input_pos):
                seen = torch.cat([self.k, k], dim=2), torch.cat([self.v, v], dim=2)
                positions = torch.cat([self._slot_positions(input_pos[0] - 1), input_pos])
        # only the last `size` tokens survive (and index_copy_ needs distinct slots)
        keep = slice(-self.size, None)
        slots = input_pos[keep] % self.size
        self.k.index_copy_(2, slots, k[:, :, keep])
        self.v.index_copy_(2, slots, v[:, :, keep])
        if in_flight:
            return *seen, positions
        return self.k, self.v, self._slot_positions(input_pos[-1])

    def _slot_positions(self, last: torch.Tensor) -> torch.Tensor:
        """(size,): the newest position p <= last with p % size == slot (negative if none yet)."""
        slots = torch.arange(self.size, device=self.k.device)
        return last - (last - slots) % self.size  # tensor % is floored: always in [0, size)
