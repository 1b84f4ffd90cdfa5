"""Validation loss in bits per byte: a figure that does not depend on the tokenizer.

A loss per token rewards a tokenizer with short tokens; dividing by the bytes each
token stands for removes that: ``bits/byte = loss / (ln 2 x bytes per token)``
(loss in nats per token). The bytes per token are those of the validation targets
the loss averages over, measured once (the validation batches are the same at every
evaluation): the UTF-8 bytes of the decoded targets over their count, special
tokens counting as their written form.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from legollm.core.exceptions import LegoLLMError
from legollm.core.tokenization.specs import load_tokenizer
from legollm.models.loss import IGNORE_INDEX


def decoder_for(spec: dict[str, Any] | None, base_dir=None):
    """The tokenizer a run's spec names (its relative paths under ``base_dir``, the run
    directory that holds the copies), or None when there is none or it cannot load."""
    if not spec:
        return None
    try:
        return load_tokenizer(spec, base_dir)
    except (LegoLLMError, OSError):
        return None


def bytes_per_token(tokenizer, batches) -> float | None:
    """UTF-8 bytes per real (not -100) target token over ``batches`` of ``(x, y, ...)``;
    None without a tokenizer or targets."""
    if tokenizer is None:
        return None
    ids = torch.cat([batch[1].flatten() for batch in batches])
    ids = ids[ids != IGNORE_INDEX].tolist()
    if not ids:
        return None
    decode_bytes = getattr(tokenizer, "decode_bytes", None)
    n_bytes = len(decode_bytes(ids)) if decode_bytes else len(tokenizer.decode(ids).encode())
    return n_bytes / len(ids)


def bits_per_byte(loss: float, per_token: float) -> float:
    """A loss in nats per token as bits per byte, at ``per_token`` bytes per token."""
    return loss / (math.log(2) * per_token)
