"""Logit processors on hand-made logits."""

from __future__ import annotations

import math

import torch

from legollm.generation.sampling import (
    apply_min_p,
    apply_repetition_penalty,
    apply_top_k,
    apply_top_p,
    next_token,
)

# probabilities 0.5, 0.25, 0.125, 0.125
LOGITS = torch.tensor([[math.log(0.5), math.log(0.25), math.log(0.125), math.log(0.125)]])


def kept(logits):
    return torch.isfinite(logits)[0].tolist()


def test_top_k_keeps_k_largest():
    assert kept(apply_top_k(LOGITS, 2)) == [True, True, False, False]


def test_top_p_keeps_the_smallest_nucleus():
    assert kept(apply_top_p(LOGITS, 0.5)) == [True, False, False, False]
    assert kept(apply_top_p(LOGITS, 0.7)) == [True, True, False, False]
    assert kept(apply_top_p(LOGITS, 1.0)) == [True] * 4


def test_min_p_is_relative_to_the_best_token():
    assert kept(apply_min_p(LOGITS, 0.5)) == [True, True, False, False]


def test_repetition_penalty_divides_positive_and_multiplies_negative():
    logits = torch.tensor([[2.0, -2.0, 1.0]])
    out = apply_repetition_penalty(logits, torch.tensor([[0, 1]]), 2.0)
    assert out.tolist() == [[1.0, -4.0, 1.0]]


def test_greedy_and_sampling_frequencies():
    assert next_token(LOGITS).item() == 0
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([next_token(LOGITS, temperature=1.0, generator=g) for _ in range(4000)])
    freq = torch.bincount(draws.flatten(), minlength=4) / 4000
    assert torch.allclose(freq, torch.tensor([0.5, 0.25, 0.125, 0.125]), atol=0.03)
