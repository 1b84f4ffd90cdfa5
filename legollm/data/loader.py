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
- ``epochs``: the windows starting every ``stride`` tokens (``block_size`` unless
  given: non-overlapping), walked in passes (epochs), each in a fresh shuffled order,
  ``batch_size`` at a time, dropping the windows left over after the last whole
  batch. That is PyTorch's ``DataLoader(windows, batch_size, shuffle=True,
  drop_last=True, generator=torch.Generator().manual_seed(seed))`` over a
  ``GPTDatasetV1``-style window dataset (LLMs-from-scratch, chapter 2), batch for
  batch: see :meth:`TokenDataLoader.epoch_order`. The step says the epoch and the
  position in it, so resuming is exact here too.

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

MODES = ("random", "sequential", "epochs")


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
        stride: int | None = None,
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
        self.stride = block_size if stride is None else stride
        self._check_stride()
        self._order: tuple[int, np.ndarray, torch.Generator] | None = None  # epoch cache

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
        """Batches in one pass (per rank): an epoch in ``epochs`` mode."""
        if self.mode == "epochs":
            return self.batches_per_epoch
        return max(1, self.num_windows // (self.batch_size * self.world_size))

    # -- epochs mode
    def _check_stride(self) -> None:
        if self.stride < 1:
            raise ConfigError(f"stride must be >= 1 token, got {self.stride}")
        if self.stride != self.block_size and self.mode != "epochs":
            raise ConfigError(
                f"stride={self.stride} applies to mode='epochs' only, not {self.mode!r}"
            )
        if self.mode == "epochs" and self.batches_per_epoch < 1:
            raise DataError(
                f"{self.path} holds {self.num_tokens} tokens: {self.num_stride_windows} "
                f"window(s) of block_size + 1 = {self.block_size + 1} at stride {self.stride}, "
                f"fewer than one batch of {self.batch_size * self.world_size}; lower "
                "batch_size, block_size or stride, or use more data"
            )

    @property
    def num_stride_windows(self) -> int:
        """Windows of block_size + 1 tokens starting at 0, stride, 2 * stride, ..."""
        return (self.num_tokens - self.block_size - 1) // self.stride + 1

    @property
    def batches_per_epoch(self) -> int:
        """Whole batches in one epoch (per rank); the remainder is dropped, as drop_last."""
        return self.num_stride_windows // (self.batch_size * self.world_size)

    @property
    def epoch(self) -> int:
        """The epoch the next batch comes from (``epochs`` mode)."""
        return self.step // self.batches_per_epoch if self.mode == "epochs" else 0

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The window indices of ``epoch`` (0-based), in the order they are batched.

        The rule is what torch's ``DataLoader(shuffle=True, generator=g)`` draws from
        ``g = torch.Generator().manual_seed(seed)`` in each pass: one int64 (the base
        seed for its workers), ``torch.randperm(windows, generator=g)`` (the order), and
        one more ``randperm`` that its RandomSampler slices to nothing (the part of a
        last, partial permutation). Epoch e thus needs the generator after e passes: the
        next epoch continues from the cached one, any other (a resume) replays from the
        seed, a permutation per epoch.
        """
        if self._order is not None and self._order[0] == epoch:
            return self._order[1]
        if self._order is not None and self._order[0] == epoch - 1:
            start, g = epoch, self._order[2]
        else:
            start, g = 0, torch.Generator().manual_seed(self.seed)
        n = self.num_stride_windows
        for _ in range(start, epoch + 1):
            torch.empty((), dtype=torch.int64).random_(generator=g)
            order = torch.randperm(n, generator=g).numpy()
            torch.randperm(n, generator=g)
        self._order = (epoch, order, g)
        return order

    # -- batches
    def _starts(self, step: int, mode: str) -> np.ndarray:
        B, W = self.batch_size, self.world_size
        if mode == "random":
            rng = np.random.default_rng([self.seed, step])
            starts = rng.integers(0, len(self.data) - self.block_size, size=B * W)
        elif mode == "epochs":
            epoch, pos = divmod(step, self.batches_per_epoch)
            starts = self.epoch_order(epoch)[pos * B * W : (pos + 1) * B * W] * self.stride
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
        """Random mode: batches forever. Sequential and epochs modes: the rest of one pass."""
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
            "stride": self.stride,
            "epoch": self.epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from ``state``. Every step draws ``batch_size * world_size`` windows and
        rank r keeps slice r, so a state carries over to another number of ranks as long
        as that product (the global batch) is the same: 2 ranks x 4 == 1 rank x 8."""
        for key in ("seed", "mode", "block_size", "num_tokens", "stride"):
            if key in state and state[key] != getattr(self, key):
                raise ConfigError(
                    f"loader state has {key}={state[key]!r} but this loader has "
                    f"{getattr(self, key)!r}; resume with the same data and settings"
                )
        if "batch_size" in state:
            theirs = state["batch_size"] * state.get("world_size", 1)
            if theirs != self.batch_size * self.world_size:
                raise ConfigError(
                    f"loader state has a global batch of {theirs} ({state['batch_size']} x "
                    f"{state.get('world_size', 1)} ranks) but this loader draws "
                    f"{self.batch_size * self.world_size} ({self.batch_size} x "
                    f"{self.world_size}); set batch_size so that batch_size x ranks is "
                    f"{theirs} to resume"
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
