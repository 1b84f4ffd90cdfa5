"""TokenDataLoader: (x, y) batches straight out of a memmapped ``.bin`` token file.

The file is opened once with ``np.memmap``; a batch gathers ``batch_size`` windows of
``block_size + 1`` tokens with one fancy-index (only those pages are read, never the
whole file), converts them to int64 once, and splits each window into x (the first
``block_size`` tokens) and y (the same shifted by one).

Modes:
- ``random``: windows start at random offsets. The offsets of step ``s`` come from a
  generator seeded with ``(seed, s)``, so the batch sequence is a pure function of the
  seed and the step: ``state_dict()`` is just the step, and a resumed run sees exactly
  the batches it would have seen.
- ``sequential``: non-overlapping windows in file order, wrapping around at the end;
  ``eval_batches(n)`` is always the same deterministic pass from the start.

Distributed: every rank draws the same ``world_size * batch_size`` windows for a
step and keeps its own slice, so ranks never share a window within a step.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from legollm.core.exceptions import ConfigError, DataError
from legollm.data.meta import DTYPES, check_split_file, read_meta

MODES = ("random", "sequential")


class TokenDataLoader:
    """Batches of (x, y) LongTensors ``[batch_size, block_size]`` from a prepared dataset."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        batch_size: int,
        block_size: int,
        *,
        split: str = "train",
        mode: str = "random",
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        device: str | torch.device = "cpu",
        dtype: str | None = None,
    ):
        if mode not in MODES:
            raise ConfigError(f"unknown loader mode {mode!r}; use one of {MODES}")
        if batch_size < 1 or block_size < 1:
            raise ConfigError(
                f"batch_size and block_size must be >= 1, got {batch_size}, {block_size}"
            )
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank must be in [0, world_size={world_size}), got {rank}")
        p = Path(path)
        self.meta: dict[str, Any] | None = None
        if p.is_dir():
            self.meta = read_meta(p)
            p = p / f"{split}.bin"
        elif p.suffix == ".bin" and (p.parent / "meta.json").is_file():
            self.meta = read_meta(p.parent)
        if not p.is_file():
            raise DataError(f"token file not found: {p} (run data-prepare first)")
        dtype = dtype or (self.meta["dtype"] if self.meta else "uint16")
        if dtype not in DTYPES:
            raise ConfigError(f"unknown dtype {dtype!r}; use one of {sorted(DTYPES)}")
        check_split_file(p, dtype, self.meta)
        self.data = np.memmap(p, dtype=DTYPES[dtype], mode="r")
        if len(self.data) < block_size + 1:
            raise DataError(
                f"{p} holds {len(self.data)} tokens, fewer than block_size + 1 = {block_size + 1}; "
                "use a smaller block_size or more data"
            )
        self.path, self.split, self.mode = p, split, mode
        self.batch_size, self.block_size = batch_size, block_size
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.device = torch.device(device)
        self.step = 0
        self._window = np.arange(block_size + 1)  # (T+1,) offsets inside a window

    # -- sizes
    @property
    def num_tokens(self) -> int:
        return len(self.data)

    @property
    def vocab_size(self) -> int | None:
        return self.meta["vocab_size"] if self.meta else None

    @property
    def num_windows(self) -> int:
        """Non-overlapping windows of block_size + 1 (sharing one token at the seams)."""
        return (len(self.data) - 1) // self.block_size

    def __len__(self) -> int:
        """Batches in one sequential pass (per rank)."""
        return max(1, self.num_windows // (self.batch_size * self.world_size))

    # -- batches
    def _starts(self, step: int, mode: str) -> np.ndarray:
        B, W = self.batch_size, self.world_size
        if mode == "random":
            rng = np.random.default_rng([self.seed, step])
            starts = rng.integers(0, len(self.data) - self.block_size, size=B * W)
        else:
            starts = (
                np.arange(step * B * W, (step + 1) * B * W) % self.num_windows
            ) * self.block_size
        return starts[self.rank * B : (self.rank + 1) * B]

    def _batch(self, starts: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        idx = starts[:, None] + self._window  # (B, T+1)
        buf = self.data[idx]  # reads only those pages of the memmap
        x = torch.from_numpy(buf[:, :-1].astype(np.int64))  # (B, T), contiguous copy
        y = torch.from_numpy(buf[:, 1:].astype(np.int64))  # (B, T), shifted by one
        if self.device.type == "cuda":
            # pinned host memory lets the copy overlap with compute
            x = x.pin_memory().to(self.device, non_blocking=True)
            y = y.pin_memory().to(self.device, non_blocking=True)
        elif self.device.type != "cpu":
            x, y = x.to(self.device), y.to(self.device)
        return x, y

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The next (x, y) pair; advances the state by one step."""
        batch = self._batch(self._starts(self.step, self.mode))
        self.step += 1
        return batch

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Random mode: batches forever. Sequential mode: the rest of one pass."""
        if self.mode == "random":
            while True:
                yield self.next_batch()
        for _ in range(len(self) - self.step % len(self)):
            yield self.next_batch()

    def eval_batches(self, n: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """A deterministic sequential pass from the start (``n`` batches; None = all).

        Does not touch the training state, so evaluating mid-run changes nothing.
        """
        for step in range(len(self) if n is None else n):
            yield self._batch(self._starts(step, "sequential"))

    # -- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "seed": self.seed,
            "mode": self.mode,
            "batch_size": self.batch_size,
            "block_size": self.block_size,
            "world_size": self.world_size,
            "num_tokens": self.num_tokens,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("seed", "mode", "batch_size", "block_size", "world_size", "num_tokens"):
            if key in state and state[key] != getattr(self, key):
                raise ConfigError(
                    f"loader state has {key}={state[key]!r} but this loader has "
                    f"{getattr(self, key)!r}; resume with the same data and settings"
                )
        self.step = int(state["step"])

    def reset(self) -> None:
        self.step = 0

    def __repr__(self) -> str:
        return (
            f"TokenDataLoader({str(self.path)!r}, batch_size={self.batch_size}, "
            f"block_size={self.block_size}, mode={self.mode!r}, tokens={self.num_tokens})"
        )


__all__ = ["MODES", "TokenDataLoader", "read_meta"]
