"""The mixture-of-experts feed-forward against a dense reference written from its definition.

The reference runs every expert on every token and mixes the outputs with the
router's probabilities, kept for each token's top k and renormalised to sum to 1
(zero for the other experts). The sparse dispatch must give the same numbers
while running each expert on its own tokens only.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

from legollm.components.moe import MoE, load_balancing_loss
from legollm.core.exceptions import ConfigError
from legollm.models import DecoderLM, ModelConfig
from legollm.models.loss import training_loss

DIM, HIDDEN, EXPERTS = 16, 24, 5


def dense_reference(moe: MoE, x: torch.Tensor, k: int) -> torch.Tensor:
    probs = moe.router(x).softmax(dim=-1)  # (N, E)
    top = probs.topk(k, dim=-1)
    gates = torch.zeros_like(probs).scatter(-1, top.indices, top.values)
    gates = gates / gates.sum(dim=-1, keepdim=True)
    outputs = torch.stack([expert(x) for expert in moe.experts], dim=1)  # (N, E, C)
    return (gates[..., None] * outputs).sum(dim=1)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_sparse_dispatch_equals_the_dense_definition(k):
    torch.manual_seed(k)
    moe = MoE(DIM, HIDDEN, EXPERTS, k)
    x = torch.randn(3, 7, DIM)
    got = moe(x)
    assert got.shape == x.shape
    want = dense_reference(moe, x.reshape(-1, DIM), k).view_as(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_each_expert_runs_only_on_its_tokens_and_one_token_runs_k_experts():
    torch.manual_seed(0)
    moe = MoE(DIM, HIDDEN, EXPERTS, 2)
    rows_seen = [0] * EXPERTS
    for e, expert in enumerate(moe.experts):
        expert.register_forward_hook(lambda m, args, out, e=e: rows_seen.__setitem__(e, rows_seen[e] + args[0].shape[0]))  # fmt: skip
    moe(torch.randn(1, 1, DIM))
    assert sorted(rows_seen, reverse=True)[:3] == [1, 1, 0]  # two experts, one row each
    rows_seen[:] = [0] * EXPERTS
    moe(torch.randn(40, DIM))
    assert sum(rows_seen) == 40 * 2  # every token twice in all, never all five


def test_gradients_reach_the_router_and_only_the_chosen_experts():
    """k = 2: the router learns through the mix of the two (with k = 1 the renormalised
    weight is always 1, so Mixtral-style routing gives the router no gradient)."""
    torch.manual_seed(0)
    moe = MoE(DIM, HIDDEN, EXPERTS, 2)
    x = torch.randn(1, DIM)
    chosen = set(moe.router(x).topk(2).indices[0].tolist())
    moe(x).sum().backward()
    assert moe.router.weight.grad.abs().sum() > 0
    for e, expert in enumerate(moe.experts):
        touched = expert.up_proj.weight.grad is not None
        assert touched == (e in chosen)


def test_load_balancing_loss_equals_transformers():
    torch.manual_seed(0)
    layers = [torch.randn(30, EXPERTS) for _ in range(3)]
    for k in (1, 2):
        want = load_balancing_loss_func(tuple(layers), EXPERTS, top_k=k)
        torch.testing.assert_close(load_balancing_loss(layers, k), want)
    # uniform router probabilities give the minimum, k (each expert gets 1/E of the choices)
    uniform = [torch.zeros(EXPERTS * 4, EXPERTS)]
    assert float(load_balancing_loss(uniform, 1)) == pytest.approx(1.0)


TINY_MOE = ModelConfig(
    vocab_size=64, context_length=32, n_layer=2, n_head=4, n_kv_heads=2, n_embd=32,
    norm="rmsnorm", position="rope", ffn="moe", n_experts=4, n_experts_per_token=2,
    qkv_bias=False, attn_out_bias=False, mlp_bias=False, norm_bias=False,
)  # fmt: skip


def test_the_model_adds_the_weighted_router_loss_for_either_reduction():
    torch.manual_seed(0)
    model = DecoderLM(dataclasses.replace(TINY_MOE, router_aux_loss_coef=0.5))
    x = torch.randint(0, 64, (2, 12))
    y = torch.randint(0, 64, (2, 12))
    y[0, :5] = -100  # masked positions still route, as in transformers
    logits = model(x)
    loss = training_loss(model, logits, y)
    lm = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100)
    aux = load_balancing_loss_func(tuple(b.ffn.router_logits for b in model.blocks), 4, top_k=2)
    torch.testing.assert_close(loss, lm + 0.5 * aux)
    summed = training_loss(model, model(x), y, "sum")
    torch.testing.assert_close(summed / (y != -100).sum(), loss)


def test_bad_mixture_configs_say_what_to_set():
    with pytest.raises(ConfigError, match="n_experts set"):
        dataclasses.replace(TINY_MOE, n_experts=None)
    with pytest.raises(ConfigError, match="n_experts set"):
        ModelConfig(n_experts=8)  # a dense model with experts
    with pytest.raises(ConfigError, match="between 1 and n_experts"):
        dataclasses.replace(TINY_MOE, n_experts_per_token=5)
    with pytest.raises(ConfigError, match="router_aux_loss_coef"):
        dataclasses.replace(TINY_MOE, router_aux_loss_coef=-1.0)


def test_the_deprecated_targets_call_still_returns_logits_and_the_training_loss():
    torch.manual_seed(0)
    model = DecoderLM(dataclasses.replace(TINY_MOE, router_aux_loss_coef=0.5))
    x, y = torch.randint(0, 64, (2, 12)), torch.randint(0, 64, (2, 12))
    logits = model(x)
    assert isinstance(logits, torch.Tensor) and logits.shape == (2, 12, 64)
    want = training_loss(model, logits, y, "sum")
    with pytest.warns(DeprecationWarning, match="training_loss"):
        old_logits, loss = model(x, targets=y, loss_reduction="sum")
    torch.testing.assert_close(old_logits, logits)
    torch.testing.assert_close(loss, want)
