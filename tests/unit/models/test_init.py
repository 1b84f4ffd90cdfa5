"""ModelConfig.init: the weights a fresh DecoderLM starts from.

The oracle for ``init="pytorch"`` is torch.nn itself: the same seed, the same modules
built in the same order must give the same numbers; and the statistics follow from
PyTorch's documented defaults (nn.Linear: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight
and bias; nn.Embedding: N(0, 1)).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from legollm.core.exceptions import ConfigError
from legollm.models import DecoderLM, ModelConfig

GPT_LIKE = dict(  # LLMs-from-scratch's GPT shape: no qkv bias, untied head, learned positions
    vocab_size=96, context_length=16, n_layer=2, n_head=2, n_embd=32, qkv_bias=False,
    tie_embeddings=False, init="pytorch",
)  # fmt: skip


def torch_stack(c: ModelConfig) -> list[nn.Module]:
    """Plain torch.nn modules with DecoderLM's shapes, built in DecoderLM's order."""
    mods: list[nn.Module] = [nn.Embedding(c.vocab_size, c.n_embd)]
    if c.position == "learned":
        mods.append(nn.Embedding(c.context_length, c.n_embd))
    for _ in range(c.n_layer):
        mods += [nn.Linear(c.n_embd, c.n_embd, bias=c.qkv_bias) for _ in "qkv"]
        mods.append(nn.Linear(c.n_embd, c.n_embd, bias=c.attn_out_bias))
        if c.ffn == "swiglu":
            mods.append(nn.Linear(c.n_embd, c.ffn_size, bias=c.mlp_bias))  # gate
        mods.append(nn.Linear(c.n_embd, c.ffn_size, bias=c.mlp_bias))  # up
        mods.append(nn.Linear(c.ffn_size, c.n_embd, bias=c.mlp_bias))  # down
    head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
    if not c.tie_embeddings:
        mods.append(head)  # a tied head was still built (and drew its numbers) first
    return mods


def non_norm_params(model: DecoderLM) -> list[torch.Tensor]:
    return [p for n, p in model.named_parameters() if "norm" not in n]


@pytest.mark.parametrize(
    "extra",
    [
        {},
        dict(
            norm="rmsnorm",
            position="rope",
            ffn="swiglu",
            mlp_bias=False,
            attn_out_bias=False,
            tie_embeddings=True,
        ),
    ],  # fmt: skip
    ids=["gpt_like", "llama_like"],
)
def test_pytorch_init_is_torch_nn_from_the_same_seed(extra):
    c = ModelConfig(**{**GPT_LIKE, **extra})
    torch.manual_seed(123)
    model = DecoderLM(c)
    torch.manual_seed(123)
    expected = [p for m in torch_stack(c) for p in m.parameters()]
    got = non_norm_params(model)
    assert [tuple(p.shape) for p in got] == [tuple(p.shape) for p in expected]
    for p, q in zip(got, expected, strict=True):
        assert torch.equal(p, q)


def test_pytorch_init_has_torch_default_statistics():
    c = ModelConfig(**{**GPT_LIKE, "vocab_size": 2000, "n_embd": 64, "init": "pytorch"})
    torch.manual_seed(0)
    model = DecoderLM(c)
    for name, p in model.named_parameters():
        p = p.detach()
        if "norm" in name:
            assert torch.equal(p, torch.ones_like(p) if name.endswith("weight") else 0 * p)
        elif "emb" in name:  # N(0, 1)
            assert abs(p.std().item() - 1.0) < 0.05 and abs(p.mean().item()) < 0.05
        else:  # U(-b, b), b = 1/sqrt(fan_in): std b/sqrt(3), nearly reaching the bound
            module = model.get_submodule(name.rsplit(".", 1)[0])
            bound = 1 / math.sqrt(module.in_features)
            assert p.abs().max().item() <= bound
            assert p.abs().max().item() > 0.9 * bound
            if p.numel() > 1000:
                assert p.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.1)


def test_gpt2_init_is_small_normal_with_scaled_residual_projections():
    c = ModelConfig(**{**GPT_LIKE, "vocab_size": 2000, "n_embd": 128, "init": "gpt2"})
    model = DecoderLM(c)
    params = dict(model.named_parameters())
    assert params["tok_emb.weight"].std().item() == pytest.approx(0.02, rel=0.05)
    assert params["blocks.0.ffn.up_proj.weight"].std().item() == pytest.approx(0.02, rel=0.05)
    scaled = 0.02 / math.sqrt(2 * c.n_layer)
    assert params["blocks.1.ffn.down_proj.weight"].std().item() == pytest.approx(scaled, rel=0.05)
    assert torch.equal(params["blocks.0.ffn.up_proj.bias"], torch.zeros(4 * c.n_embd))
    normal = DecoderLM(ModelConfig(**{**c.to_dict(), "init": "normal"}))
    down = dict(normal.named_parameters())["blocks.1.ffn.down_proj.weight"]
    assert down.std().item() == pytest.approx(0.02, rel=0.05)  # no residual scaling


def test_init_weights_reinitialises_by_the_scheme():
    """init_weights() on a trained-looking model restores the scheme (a tied head included)."""
    c = ModelConfig(**{**GPT_LIKE, "vocab_size": 2000, "tie_embeddings": True})
    model = DecoderLM(c)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(7.0)
    model.init_weights()
    assert model.lm_head.weight is model.tok_emb.weight
    assert abs(model.tok_emb.weight.std().item() - 1.0) < 0.05  # the embedding's N(0, 1)
    assert torch.equal(model.norm.weight, torch.ones(c.n_embd))
    q = model.blocks[0].attn.q_proj.weight
    assert q.abs().max().item() <= 1 / math.sqrt(c.n_embd)


def test_init_round_trips_and_rejects_unknown_schemes():
    c = ModelConfig(**GPT_LIKE)
    assert ModelConfig.from_dict(c.to_dict()).init == "pytorch"
    assert ModelConfig().init == "gpt2"  # the default: existing configs keep their init
    with pytest.raises(ConfigError, match=r"init='xavier'.*'gpt2'.*'normal'.*'pytorch'"):
        ModelConfig(init="xavier")
