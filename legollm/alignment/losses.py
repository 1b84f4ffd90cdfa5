"""The math of RLHF, one small function per formula, each beside its equation.

Shapes: a batch of B responses padded to T tokens. ``mask`` (B, T) is 1 on a
response's real tokens and 0 on padding; every per-token quantity is averaged
over the real tokens only (:func:`masked_mean`).

Reward model (Bradley-Terry): the probability that a human prefers the chosen
response is modelled as ``sigmoid(r(chosen) - r(rejected))``, so

    loss = -log sigmoid(r_c - r_r)                               bradley_terry_loss

PPO turns the rewards of one rollout batch into advantages and then takes several
clipped steps on them:

    delta_t = r_t + gamma * V_{t+1} - V_t           (V after the last token is 0)
    A_t     = delta_t + gamma * lam * A_{t+1}                    gae
    R_t     = A_t + V_t                             (the value target)
    A       = (A - mean A) / std A                               whiten
    rho_t   = exp(log pi(a_t) - log pi_old(a_t))
    L_pi    = -min(rho A, clip(rho, 1 - eps, 1 + eps) A)         ppo_policy_loss
    V_clip  = V_old + clip(V - V_old, -eps_v, eps_v)
    L_V     = 1/2 max((V - R)^2, (V_clip - R)^2)                 ppo_value_loss

The penalty that keeps the policy near the reference uses an estimate of
KL(pi || ref) from the sampled token only (``d = log pi - log ref``, the token
drawn from pi; Schulman, "Approximating KL divergence", 2020):

    k1 = d                       unbiased, can be negative       kl_estimate
    k2 = d^2 / 2                 biased, low variance
    k3 = exp(-d) - 1 + d         unbiased, always >= 0

GRPO (legollm.alignment.grpo) reuses the clipped policy loss and the estimators.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from legollm.core.exceptions import ConfigError

KL_ESTIMATORS = ("k1", "k2", "k3")


def masked_mean(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The mean of ``x`` over the entries where ``mask`` is 1 (all of them without a mask);
    0 when the mask is empty, never NaN."""
    if mask is None:
        return x.mean()
    mask = mask.to(x.dtype)
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def masked_var(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The (biased) variance of ``x`` over the masked entries."""
    return masked_mean((x - masked_mean(x, mask)) ** 2, mask)


# ---------------------------------------------------------------------------- reward model
def bradley_terry_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """Per-pair ``-log sigmoid(r_c - r_r)`` (B,) from the scalar rewards of each side.

    ``logsigmoid`` rather than ``log(sigmoid(.))``: the same value without underflow
    when the margin is very negative.
    """
    return -F.logsigmoid(chosen - rejected)


# ---------------------------------------------------------------------------- advantages
def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates and value targets ``(A, R)``, both (B, T).

    Walks backwards over the tokens::

        delta_t = r_t + gamma * V_{t+1} * m_{t+1} - V_t
        A_t     = delta_t + gamma * lam * A_{t+1} * m_{t+1}
        R_t     = A_t + V_t

    ``m`` is the mask: past a response's last real token nothing flows back, so a
    response ends there (its terminal value is 0). Padded positions get A = R = 0.
    """
    B, T = rewards.shape
    mask = mask.to(rewards.dtype)
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros(B, dtype=rewards.dtype, device=rewards.device)
    next_adv = torch.zeros_like(next_value)
    for t in reversed(range(T)):
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantages[:, t] = (delta + gamma * lam * next_adv) * mask[:, t]
        next_value = values[:, t] * mask[:, t]
        next_adv = advantages[:, t]
    returns = (advantages + values) * mask
    return advantages, returns


def whiten(
    x: torch.Tensor, mask: torch.Tensor | None = None, shift_mean: bool = True, eps: float = 1e-8
) -> torch.Tensor:
    """``(x - mean) / sqrt(var + eps)`` over the masked entries (padding stays 0).

    With ``shift_mean=False`` the mean is added back: only the scale changes.
    """
    mean, var = masked_mean(x, mask), masked_var(x, mask)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out if mask is None else out * mask.to(x.dtype)


# ---------------------------------------------------------------------------- PPO losses
def ppo_policy_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor | None,
    clip: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clipped surrogate ``mean(-min(rho A, clip(rho, 1-eps, 1+eps) A))`` and metrics.

    ``rho = exp(log pi - log pi_old)`` per token (pi_old: the policy that sampled the
    rollout, so rho is exactly 1 on the first step). Clipping removes the incentive to
    move rho beyond ``1 +- eps`` in the direction the advantage favours; moving back
    is never clipped. Metrics (detached): ``clip_fraction`` (tokens whose clipped term
    was the smaller) and ``ratio`` (the mean of rho).
    """
    ratio = torch.exp(logps - old_logps)
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip) * advantages
    loss = masked_mean(-torch.min(unclipped, clipped), mask)
    metrics = {
        "clip_fraction": masked_mean((clipped < unclipped).float(), mask).detach(),
        "ratio": masked_mean(ratio, mask).detach(),
    }
    return loss, metrics


def ppo_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor | None,
    clip: float,
) -> torch.Tensor:
    """``mean(1/2 max((V - R)^2, (V_clip - R)^2))``, ``V_clip = V_old + clip(V - V_old, +-eps)``.

    The pessimistic maximum keeps one rollout batch from dragging the value head far
    from where it was when the returns were computed.
    """
    v_clip = old_values + torch.clamp(values - old_values, -clip, clip)
    err = torch.max((values - returns) ** 2, (v_clip - returns) ** 2)
    return 0.5 * masked_mean(err, mask)


# ---------------------------------------------------------------------------- KL, entropy
def kl_estimate(logps: torch.Tensor, ref_logps: torch.Tensor, kind: str = "k3") -> torch.Tensor:
    """Per-token estimates of KL(pi || ref) from sampled tokens' log-probabilities.

    With ``d = log pi(a) - log ref(a)``: ``k1 = d``, ``k2 = d^2 / 2``,
    ``k3 = exp(-d) - 1 + d`` (the module docstring says which is biased). All three
    are exactly 0 where pi and ref agree.
    """
    d = logps - ref_logps
    if kind == "k1":
        return d
    if kind == "k2":
        return 0.5 * d**2
    if kind == "k3":
        return torch.expm1(-d) + d  # expm1: exact near d = 0, where the two cancel
    raise ConfigError(f"kl estimator must be one of {KL_ESTIMATORS}, got {kind!r}")


def token_logps(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """``log softmax(logits)[token]`` (B, T) for (B, T, V) logits and (B, T) tokens, in fp32."""
    logps = torch.log_softmax(logits.float(), dim=-1)
    return logps.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def entropy(logits: torch.Tensor) -> torch.Tensor:
    """(B, T) entropy ``-sum_v p_v log p_v`` of each position's next-token distribution."""
    logps = torch.log_softmax(logits.float(), dim=-1)
    return -(logps.exp() * logps).sum(dim=-1)


def explained_variance(
    values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """``1 - Var(R - V) / Var(R)``: 1 for a perfect value head, 0 for one that predicts the
    mean, negative for worse; NaN-free (0 when the returns do not vary)."""
    var_r = masked_var(returns, mask)
    if var_r <= 0:
        return torch.zeros((), dtype=returns.dtype, device=returns.device)
    return 1.0 - masked_var(returns - values, mask) / var_r


__all__ = [
    "KL_ESTIMATORS",
    "bradley_terry_loss",
    "entropy",
    "explained_variance",
    "gae",
    "kl_estimate",
    "masked_mean",
    "masked_var",
    "ppo_policy_loss",
    "ppo_value_loss",
    "token_logps",
    "whiten",
]
