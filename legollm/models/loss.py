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
