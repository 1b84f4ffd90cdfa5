"""The training loss: next-token cross-entropy over a forward's logits.

``model(x)`` returns logits only; the loss is computed from them, so the same
forward serves training, evaluation and decoding, and a wrapper (DDP,
torch.compile) sees one output type. A mixture of experts adds its router's
load-balancing term, which the model computes from the router logits its last
forward kept (``DecoderLM.aux_loss``); ``training_loss`` adds the two.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

IGNORE_INDEX = -100  # a target that takes no part in the loss (padding, prompt tokens)


def lm_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of logits (B, T, vocab) against targets (B, T), skipping -100 targets.

    ``reduction``: "mean" over the real targets, "sum", or "none" (one value per
    position, flattened to (B * T,)). Computed in float32 whatever the logits' dtype.
    """
    return F.cross_entropy(
        logits.flatten(0, 1).float(), targets.flatten(), ignore_index=IGNORE_INDEX,
        reduction=reduction,
    )  # fmt: skip


def chunked_lm_loss(
    hidden: torch.Tensor,
    head: nn.Module,
    targets: torch.Tensor,
    chunk_size: int,
    reduction: str = "mean",
) -> torch.Tensor:
    """``lm_loss(head(hidden), targets, reduction)``, ``chunk_size`` tokens at a time.

    ``hidden`` (B, T, C) is ``model(x, return_hidden=True)`` and ``head`` the model's
    ``lm_head`` (a tied head is the embedding's weight: its gradient adds up as usual).
    Each slice's logits are made, reduced to a summed loss and dropped; the backward
    pass makes them again for its slice (``checkpoint``), so the peak is one slice's
    (chunk_size x vocab) logits and their gradient instead of the whole batch's. The
    result equals ``lm_loss`` up to float rounding (the sum runs in another order).
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    h, t = hidden.flatten(0, 1), targets.flatten()
    pieces = [
        checkpoint(_slice_loss, head, h[i : i + chunk_size], t[i : i + chunk_size],
                   "none" if reduction == "none" else "sum", use_reentrant=False)
        for i in range(0, h.shape[0], chunk_size)
    ]  # fmt: skip
    if reduction == "none":
        return torch.cat(pieces)
    total = torch.stack(pieces).sum()
    return total if reduction == "sum" else total / (t != IGNORE_INDEX).sum()


def _slice_loss(head: nn.Module, h: torch.Tensor, t: torch.Tensor, reduction: str):
    """One slice's cross-entropy: (n, C) hidden states -> logits (n, vocab) -> loss."""
    return lm_loss(head(h)[None], t[None], reduction)


def training_loss(
    model: nn.Module, logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """What training minimises for ``logits = model(x)``: ``lm_loss`` plus the model's
    auxiliary loss from that same forward (a mixture of experts' router balance).

    ``model`` is a DecoderLM, or any model with its ``aux_loss(targets, reduction)``.
    """
    loss = lm_loss(logits, targets, reduction)
    aux = model.aux_loss(targets, reduction)
    return loss if aux is None else loss + aux
