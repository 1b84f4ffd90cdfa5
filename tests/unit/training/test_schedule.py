"""LR schedules against values worked out by hand from their definitions."""

import math

import pytest

from legollm.training import TrainConfig, cosine_lr, lr_at, wsd_lr


@pytest.mark.parametrize(
    "step, expected",
    [
        (0, 1 / 5),  # warmup: lr * (step + 1) / (warmup + 1)
        (3, 4 / 5),
        (4, 1.0),  # cosine starts at the peak
        (9, 0.1 + 0.5 * 0.9),  # halfway through the decay: cos(pi/2) = 0 -> midpoint
        (14, 0.1),  # decay_iters: floor
        (1000, 0.1),  # past it: stays at the floor
    ],
)
def test_cosine_hand_values(step, expected):
    got = cosine_lr(step, lr=1.0, min_lr=0.1, warmup=4, decay_iters=14)
    assert got == pytest.approx(expected, abs=1e-12)


def test_cosine_quarter_point():
    # progress 1/4: 0.5 * (1 + cos(pi/4)) of the way from min_lr to lr
    got = cosine_lr(6, lr=1.0, min_lr=0.0, warmup=0, decay_iters=24)
    assert got == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


@pytest.mark.parametrize(
    "step, expected",
    [(0, 1 / 3), (1, 2 / 3), (2, 1.0), (4, 1.0), (5, 1.0), (7, 0.6), (9, 0.2), (10, 0.0)],
)
def test_wsd_hand_values(step, expected):
    # warmup 2, flat until 10 - 0.5 * 10 = 5, then linear to 0 at 10
    got = wsd_lr(step, lr=1.0, min_lr=0.0, warmup=2, total=10, decay_frac=0.5)
    assert got == pytest.approx(expected, abs=1e-12)


def test_lr_at_uses_config():
    cfg = TrainConfig(lr=2.0, min_lr=0.0, warmup_iters=0, max_iters=10, schedule="cosine")
    assert lr_at(0, cfg) == pytest.approx(2.0)
    assert lr_at(5, cfg) == pytest.approx(1.0)
    assert lr_at(10, cfg) == 0.0
    wsd = TrainConfig(lr=2.0, min_lr=0.0, warmup_iters=0, max_iters=10, schedule="wsd")
    assert lr_at(5, wsd) == 2.0  # default decay_frac 0.2: flat until step 8
    assert lr_at(9, wsd) == pytest.approx(1.0)
    const = TrainConfig(lr=3e-4, min_lr=0.0, warmup_iters=5, schedule="constant")
    assert lr_at(0, const) == lr_at(999, const) == 3e-4
