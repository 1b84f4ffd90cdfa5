"""Turning logits into the next token: small pure functions, one place that chains them.

Each processor takes logits (B, V) and returns logits; masked-out tokens get -inf
so softmax gives them zero probability. Temperature 0 means greedy (argmax).
"""

from __future__ import annotations

import math

import torch

from legollm.core.exceptions import GenerationError


def apply_repetition_penalty(
    logits: torch.Tensor, seen: torch.Tensor, penalty: float
) -> torch.Tensor:
    """CTRL's penalty: shrink the logits of tokens already in ``seen`` (B, T) by ``penalty``."""
    scores = logits.gather(1, seen)
    scores = torch.where(scores > 0, scores / penalty, scores * penalty)
    return logits.scatter(1, seen, scores)


def apply_top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits per row."""
    k = min(k, logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[:, -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def apply_top_p(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of tokens whose probabilities sum to at least p (nucleus)."""
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    cum = sorted_logits.softmax(-1).cumsum(-1)
    drop = cum - sorted_logits.softmax(-1) >= p  # mass before this token already reaches p
    sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
    return torch.full_like(logits, float("-inf")).scatter(1, order, sorted_logits)


def apply_min_p(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Keep tokens whose probability is at least min_p times the most likely token's."""
    probs = logits.softmax(-1)
    return logits.masked_fill(probs < min_p * probs.max(-1, keepdim=True).values, float("-inf"))


def check_sampling_args(temperature, top_k, top_p, min_p, repetition_penalty) -> None:
    """Refuse values that would sample garbage quietly; NaN passes every ``<`` test, so
    each number must first be finite."""
    for name, value in (("temperature", temperature), ("top_p", top_p), ("min_p", min_p),
                        ("repetition_penalty", repetition_penalty)):  # fmt: skip
        if value is not None and not math.isfinite(value):
            raise GenerationError(f"{name} must be a finite number, got {value}")
    if temperature is None or temperature < 0:
        raise GenerationError(f"temperature must be >= 0 (0 is greedy), got {temperature}")
    if top_k is not None and top_k < 1:
        raise GenerationError(f"top_k must be >= 1, got {top_k}")
    if top_p is not None and not 0 < top_p <= 1:
        raise GenerationError(f"top_p must be in (0, 1], got {top_p}")
    if min_p is not None and not 0 <= min_p <= 1:
        raise GenerationError(f"min_p must be in [0, 1], got {min_p}")
    if repetition_penalty is not None and repetition_penalty <= 0:
        raise GenerationError(f"repetition_penalty must be > 0, got {repetition_penalty}")


def next_token(
    logits: torch.Tensor,
    *,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    min_p: float | None = None,
    repetition_penalty: float | None = None,
    seen: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pick the next token (B,) from logits (B, V)."""
    logits = logits.float()
    if repetition_penalty is not None and repetition_penalty != 1.0 and seen is not None:
        logits = apply_repetition_penalty(logits, seen, repetition_penalty)
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k is not None:
        logits = apply_top_k(logits, top_k)
    if top_p is not None and top_p < 1:
        logits = apply_top_p(logits, top_p)
    if min_p:
        logits = apply_min_p(logits, min_p)
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(1)
