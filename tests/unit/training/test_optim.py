"""AdamW groups: decay on >= 2-D weights only, tied weights once, the decay really applied."""

import torch
from torch import nn

from legollm.models.loss import lm_loss
from legollm.training.optim import build_optimizer, param_groups
from tests.unit.training.conftest import BigramConfig, BigramLM


def test_groups_split_by_dimension():
    model = BigramLM(BigramConfig())
    decay, no_decay = param_groups(model, 0.1)
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(decay["params"]) == {id(model.emb.weight), id(model.head.weight)}
    assert ids(no_decay["params"]) == {
        id(model.norm.weight),
        id(model.norm.bias),
        id(model.head.bias),
    }
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0


def test_tied_weight_is_optimised_once():
    model = BigramLM(BigramConfig(n_embd=16, vocab_size=32))
    model.head = nn.Linear(16, 32, bias=False)
    model.head.weight = model.emb.weight  # tie
    decay, _ = param_groups(model, 0.1)
    assert len(decay["params"]) == 1


def test_decay_applied_only_to_matrices():
    # With zero gradients Adam's update is 0, so AdamW only multiplies by (1 - lr * wd).
    torch.manual_seed(0)
    model = BigramLM(BigramConfig())
    nn.init.normal_(model.norm.weight)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = build_optimizer(model, lr=0.5, weight_decay=0.2)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for n, p in model.named_parameters():
        factor = 1 - 0.5 * 0.2 if p.dim() >= 2 else 1.0
        torch.testing.assert_close(p.detach(), before[n] * factor, rtol=0, atol=1e-7)


def test_fused_on_cpu_by_default_and_foreach_on_request():
    """Auto picks the one-kernel fused AdamW where this torch has it (CPU since 2.4);
    fused=False asks for the batched foreach kernels; both compute the same steps."""
    models = {}
    for fused in (None, False):
        torch.manual_seed(0)
        model = BigramLM(BigramConfig())
        opt = build_optimizer(model, lr=1e-2, fused=fused)
        expect_fused = fused is None
        assert bool(opt.defaults.get("fused")) is expect_fused
        assert bool(opt.defaults.get("foreach")) is not expect_fused
        for _ in range(3):
            x = torch.randint(0, BigramConfig().vocab_size, (4, 8))
            lm_loss(model(x), x).backward()
            opt.step()
            opt.zero_grad()
        models[fused] = model
    for (name, a), b in zip(
        models[None].named_parameters(), models[False].parameters(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
