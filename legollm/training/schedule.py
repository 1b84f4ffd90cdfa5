"""Learning-rate schedules: pure functions of the step, so resuming needs only the step.

Two shapes:

- ``cosine`` (GPT-2/nanoGPT): linear warmup to ``lr``, cosine decay down to ``min_lr`` at
  ``decay_iters``, then flat at ``min_lr``.
- ``wsd`` (warmup-stable-decay): linear warmup, a long flat stretch at ``lr``, then a
  linear decay to ``min_lr`` over the last ``decay_frac`` of training. The flat stretch
  means a run can be extended without re-warming or re-shaping the schedule.

Warmup uses ``lr * (step + 1) / (warmup + 1)`` so step 0 never has lr 0 (a wasted step).
"""

from __future__ import annotations

import math

from legollm.core.exceptions import ConfigError

SCHEDULES = ("cosine", "wsd", "constant")


def cosine_lr(step: int, *, lr: float, min_lr: float, warmup: int, decay_iters: int) -> float:
    """Linear warmup -> cosine decay -> ``min_lr`` floor."""
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    if step >= decay_iters:
        return min_lr
    progress = (step - warmup) / max(1, decay_iters - warmup)  # 0 -> 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return min_lr + coeff * (lr - min_lr)


def wsd_lr(
    step: int, *, lr: float, min_lr: float, warmup: int, total: int, decay_frac: float
) -> float:
    """Linear warmup -> constant ``lr`` -> linear decay to ``min_lr`` over the last part."""
    if step < warmup:
        return lr * (step + 1) / (warmup + 1)
    decay_start = total - int(round(decay_frac * total))
    if step < decay_start:
        return lr
    if step >= total:
        return min_lr
    progress = (step - decay_start) / max(1, total - decay_start)  # 0 -> 1
    return lr + progress * (min_lr - lr)


def lr_at(step: int, config) -> float:
    """The learning rate of ``step`` for a :class:`~legollm.training.config.TrainConfig`."""
    if config.schedule == "constant":
        return config.lr
    decay_iters = config.lr_decay_iters or config.max_iters
    if config.schedule == "cosine":
        return cosine_lr(
            step,
            lr=config.lr,
            min_lr=config.min_lr,
            warmup=config.warmup_iters,
            decay_iters=decay_iters,
        )
    if config.schedule == "wsd":
        return wsd_lr(
            step,
            lr=config.lr,
            min_lr=config.min_lr,
            warmup=config.warmup_iters,
            total=decay_iters,
            decay_frac=config.decay_frac,
        )
    raise ConfigError(f"unknown schedule {config.schedule!r}; use one of {SCHEDULES}")


__all__ = ["SCHEDULES", "cosine_lr", "lr_at", "wsd_lr"]
