"""Every RLHF loss against a case worked by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import pytest
import torch

from legollm.alignment.losses import (
    bradley_terry_loss,
    entropy,
    explained_variance,
    gae,
    kl_estimate,
    masked_mean,
    ppo_policy_loss,
    ppo_value_loss,
    token_logps,
    whiten,
)
from legollm.core.exceptions import ConfigError


def close(a, b, tol=1e-6):
    return torch.allclose(torch.as_tensor(a, dtype=torch.float64),
                          torch.as_tensor(b, dtype=torch.float64), atol=tol)  # fmt: skip


def test_bradley_terry_is_minus_log_sigmoid_of_the_margin():
    loss = bradley_terry_loss(torch.tensor([2.0, 0.0, -1.0]), torch.tensor([0.0, 0.0, 1.0]))
    # -log sigmoid(m) = log(1 + exp(-m)):  m = 2, 0, -2
    assert close(loss, [math.log1p(math.exp(-2)), math.log(2), math.log1p(math.exp(2))])


def test_bradley_terry_does_not_underflow_for_a_huge_negative_margin():
    loss = bradley_terry_loss(torch.tensor([0.0]), torch.tensor([200.0]))
    assert close(loss, [200.0], tol=1e-4)


def test_gae_by_hand():
    # one response of 2 real tokens, then padding (whose value 9 must be ignored)
    r = torch.tensor([[0.0, 1.0, 0.0]])
    v = torch.tensor([[0.5, 0.2, 9.0]])
    m = torch.tensor([[1, 1, 0]])
    adv, ret = gae(r, v, m, gamma=0.9, lam=0.8)
    # t=1: delta = 1 + 0.9*0 - 0.2 = 0.8;                A1 = 0.8
    # t=0: delta = 0 + 0.9*0.2 - 0.5 = -0.32;   A0 = -0.32 + 0.9*0.8*0.8 = 0.256
    assert close(adv, [[0.256, 0.8, 0.0]])
    assert close(ret, [[0.756, 1.0, 0.0]])  # R = A + V on real tokens


def test_gae_limits_are_monte_carlo_and_one_step_td():
    r = torch.tensor([[0.3, -0.2, 1.0, 0.5]])
    v = torch.tensor([[0.1, 0.4, -0.3, 0.2]])
    m = torch.ones(1, 4)
    adv, ret = gae(r, v, m, gamma=1.0, lam=1.0)  # A_t = sum of rewards from t on - V_t
    togo = torch.tensor([[1.6, 1.3, 1.5, 0.5]])
    assert close(adv, togo - v) and close(ret, togo)
    adv, _ = gae(r, v, m, gamma=0.5, lam=0.0)  # A_t = r_t + gamma V_{t+1} - V_t
    next_v = torch.tensor([[0.4, -0.3, 0.2, 0.0]])
    assert close(adv, r + 0.5 * next_v - v)


def test_whiten_uses_only_real_tokens():
    x = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    m = torch.tensor([[1, 1, 1, 0]])
    # mean 2, variance (1 + 0 + 1) / 3 = 2/3
    s = math.sqrt(1.5)
    assert close(whiten(x, m), [[-s, 0.0, s, 0.0]], tol=1e-5)
    assert close(whiten(x, m, shift_mean=False), [[2 - s, 2.0, 2 + s, 0.0]], tol=1e-5)


def test_masked_mean_of_an_empty_mask_is_zero():
    assert masked_mean(torch.ones(2, 3), torch.zeros(2, 3)).item() == 0.0


def test_clipped_policy_loss_inside_and_outside_the_clip_range():
    # eps = 0.2; per token: (rho, A) and its term -min(rho A, clip(rho) A)
    ratio = torch.tensor([1.1, 1.5, 1.5, 0.5])
    adv = torch.tensor([2.0, 1.0, -1.0, -1.0])
    # 1.1*2 = 2.2 inside          -> -2.2
    # 1.5 > 1.2 with A > 0        -> -min(1.5, 1.2)   = -1.2 (clipped)
    # 1.5 with A < 0              -> -min(-1.5, -1.2) =  1.5 (not clipped: moving back)
    # 0.5 < 0.8 with A < 0        -> -min(-0.5, -0.8) =  0.8 (clipped)
    old = torch.zeros(4)
    logps = ratio.log().requires_grad_()
    loss, metrics = ppo_policy_loss(logps, old, adv, None, clip=0.2)
    assert close(loss, (-2.2 - 1.2 + 1.5 + 0.8) / 4)
    assert close(metrics["clip_fraction"], 0.5)
    loss.backward()  # clipped tokens get no gradient; d(-rho A)/d log pi = -rho A
    assert close(logps.grad, [-2.2 / 4, 0.0, 1.5 / 4, 0.0])


def test_policy_loss_at_ratio_one_is_minus_the_mean_advantage():
    adv = torch.tensor([[0.5, -1.5, 7.0]])
    m = torch.tensor([[1, 1, 0]])
    lp = torch.tensor([[-1.0, -2.0, -3.0]])
    loss, metrics = ppo_policy_loss(lp, lp.clone(), adv, m, clip=0.2)
    assert close(loss, 0.5) and metrics["ratio"].item() == 1.0
    assert metrics["clip_fraction"].item() == 0.0


def test_clipped_value_loss_by_hand():
    # eps = 0.2
    # V=1.0, V_old=0.5, R=1: (V-R)^2 = 0; V_clip = 0.7, (0.7-1)^2 = 0.09 -> 0.09
    # V=0.6, V_old=0.5, R=2: inside the clip, (0.6-2)^2 = 1.96        -> 1.96
    v, old, ret = torch.tensor([1.0, 0.6]), torch.tensor([0.5, 0.5]), torch.tensor([1.0, 2.0])
    assert close(ppo_value_loss(v, old, ret, None, clip=0.2), 0.5 * (0.09 + 1.96) / 2)


def test_kl_estimators_by_hand():
    lp, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    d = math.log(2)
    assert close(kl_estimate(lp, ref, "k1"), [d])
    assert close(kl_estimate(lp, ref, "k2"), [d * d / 2])
    assert close(kl_estimate(lp, ref, "k3"), [0.5 - 1 + d])  # exp(-d) - 1 + d
    for kind in ("k1", "k2", "k3"):
        assert kl_estimate(lp, lp, kind).item() == 0.0


def test_k1_and_k3_average_to_the_exact_kl_under_the_policy():
    p = torch.tensor([0.6, 0.3, 0.1])
    q = torch.tensor([0.2, 0.5, 0.3])
    exact = (p * (p / q).log()).sum()
    for kind in ("k1", "k3"):  # E_{a ~ p}[k(a)] = sum_a p(a) k(a)
        assert close((p * kl_estimate(p.log(), q.log(), kind)).sum(), exact)


def test_unknown_kl_estimator_is_a_config_error():
    with pytest.raises(ConfigError, match="k1"):
        kl_estimate(torch.zeros(1), torch.zeros(1), "k9")


def test_token_logps_and_entropy():
    logits = torch.tensor([[[0.0, 0.0, 0.0, 0.0], [math.log(3.0), 0.0, 0.0, 0.0]]])
    # second row: probabilities 3/6, 1/6, 1/6, 1/6
    assert close(token_logps(logits, torch.tensor([[2, 0]])), [[math.log(0.25), math.log(0.5)]])
    h2 = -(0.5 * math.log(0.5) + 3 * (1 / 6) * math.log(1 / 6))
    assert close(entropy(logits), [[math.log(4), h2]], tol=1e-5)


def test_explained_variance():
    ret = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert close(explained_variance(ret, ret), 1.0)
    assert close(explained_variance(torch.full((4,), 2.5), ret), 0.0)
    # residual [1, 1, 1, 1] - has no variance, so EV = 1 even for a shifted prediction
    assert close(explained_variance(ret - 1, ret), 1.0)
    assert explained_variance(ret, torch.ones(4)).item() == 0.0  # constant returns: 0, not NaN
