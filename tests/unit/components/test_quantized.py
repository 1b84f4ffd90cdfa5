"""Int8Linear against the arithmetic it stands for, and quantize() on a whole model."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from legollm.components.quantized import Int8Linear, quantization_of, quantize, quantize_weight
from legollm.core.exceptions import ConfigError
from legollm.models import DecoderLM, ModelConfig

BF16_EPS = 2.0**-8  # bfloat16 keeps 8 significant bits: rounding moves a value by <= 2^-9 of it


def test_quantize_weight_is_symmetric_per_row_within_half_a_step():
    torch.manual_seed(0)
    w = torch.randn(64, 48) * torch.logspace(-3, 1, 64)[:, None]  # rows of very different sizes
    w[5] = 0.0
    q, scale = quantize_weight(w)
    assert q.dtype == torch.int8 and q.shape == w.shape and scale.shape == (64,)
    assert q.abs().max() <= 127
    # the largest |weight| of each row lands on +-127: the whole int8 range is used
    nonzero = torch.arange(64) != 5
    assert torch.equal(q[nonzero].abs().amax(1), torch.full((63,), 127, dtype=torch.int8))
    assert torch.equal(q[5], torch.zeros(48, dtype=torch.int8))
    err = (w - q.float() * scale[:, None]).abs()
    assert (err <= scale[:, None] / 2 * (1 + 1e-5)).all()


@pytest.mark.parametrize("in_features", [64, 50])  # the vectorised kernel, and the scalar one
def test_int8_linear_is_the_product_with_the_dequantised_weight(in_features):
    torch.manual_seed(0)
    linear = nn.Linear(in_features, 40)
    layer = Int8Linear.from_linear(linear)
    x = torch.randn(2, 3, in_features)
    q, scale = quantize_weight(linear.weight)
    assert torch.equal(layer.weight, q) and torch.equal(layer.scale, scale)
    got = layer(x)
    assert got.shape == (2, 3, 40) and got.dtype == torch.float32
    if in_features % 16:  # scalar float32 loop: the float reference itself
        want = F.linear(x, q.float() * scale[:, None], linear.bias)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    else:  # bfloat16 inputs and outputs, float32 sums; the scale applied in float32
        xb = x.bfloat16().float()
        integer_sums = xb @ q.float().t()
        want = integer_sums * scale + linear.bias
        bound = BF16_EPS * integer_sums.abs() * scale + 1e-5
        assert ((got - want).abs() <= bound).all()
    assert F.linear(x, layer.dequantized_weight(), linear.bias).sub(got).abs().max() < 0.05


def test_a_row_that_starts_mid_tensor_is_read_correctly():
    torch.manual_seed(0)
    layer = Int8Linear.from_linear(nn.Linear(64, 32, bias=False)).to(torch.bfloat16)
    big = torch.randn(65 * 3, dtype=torch.bfloat16)
    x = big[1 : 1 + 64 * 3].view(3, 64)  # not on the kernel's 32-byte boundary
    want = (x.float() @ layer.weight.float().t()) * layer.scale.float()
    torch.testing.assert_close(layer(x).float(), want, rtol=2 * BF16_EPS, atol=1e-2)


def tiny(tie: bool = True) -> DecoderLM:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=96, context_length=32, n_layer=2, n_head=2, n_embd=32,
                      tie_embeddings=tie)  # fmt: skip
    return DecoderLM(cfg).eval()


def test_quantize_swaps_every_linear_and_unties_the_head():
    model = tiny()
    emb = model.tok_emb.weight.clone()
    n_linear = sum(isinstance(m, nn.Linear) for m in model.modules())
    assert quantization_of(model) is None
    assert quantize(model, "int8") is model
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    assert sum(isinstance(m, Int8Linear) for m in model.modules()) == n_linear
    assert quantization_of(model) == "int8"
    assert torch.equal(model.tok_emb.weight, emb)  # the embedding keeps its float weights
    head = model.lm_head.weight
    assert torch.equal(quantize(model).lm_head.weight, head)  # twice is once


def test_quantized_model_is_the_model_with_dequantised_weights():
    """The whole forward, against a float model whose weights are exactly q * scale."""
    model = tiny()
    quantized = quantize(copy.deepcopy(model))
    reference = copy.deepcopy(model)
    for name, layer in quantized.named_modules():
        if isinstance(layer, Int8Linear):
            ref = reference.get_submodule(name)
            ref.weight = nn.Parameter(layer.dequantized_weight())
    ids = torch.randint(0, 96, (2, 20))
    with torch.no_grad():
        got, want, plain = quantized(ids), reference(ids), model(ids)
    torch.testing.assert_close(got, want, rtol=0, atol=0.02 * want.abs().max().item())
    assert (got - want).abs().max() < (want - plain).abs().max()  # closer than to fp32 weights


def test_unknown_kind_is_a_clear_error():
    with pytest.raises(ConfigError, match="int4.*int8"):
        quantize(tiny(), "int4")
