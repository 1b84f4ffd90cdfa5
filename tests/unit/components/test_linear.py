"""The threaded few-row Linear gives F.linear's results, for either weight layout."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from legollm.components.linear import (
    SPLIT_MIN_NUMEL,
    Linear,
    split_linear,
    store_by_columns,
    use_split,
)
from legollm.generation import generate
from legollm.models import DecoderLM, ModelConfig


@pytest.fixture
def two_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def by_columns(w: torch.Tensor) -> torch.Tensor:
    return w.t().contiguous().t()


@pytest.mark.parametrize("layout", ["rows", "columns", "column slice"])
@pytest.mark.parametrize("parts", [2, 3])
@pytest.mark.parametrize("lead", [(1,), (2, 3), (5,)])
@pytest.mark.parametrize("bias", [True, False])
def test_split_linear_equals_f_linear(layout, parts, lead, bias):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(301, 64, generator=g)  # 301 = 3 * 100 + 1 and 2 * 150 + 1: a remainder row
    if layout == "columns":
        w = by_columns(w)
    elif layout == "column slice":  # a q/k/v slice of GPT-2's fused, transposed c_attn
        w = torch.randn(64, 3 * 301, generator=g).t()[301:602]
    b = torch.randn(301, generator=g) if bias else None
    x = torch.randn(*lead, 64, generator=g)
    got = split_linear(x, w, b, parts)
    assert got.shape == (*lead, 301)
    torch.testing.assert_close(got, F.linear(x, w, b), rtol=1e-5, atol=1e-5)


def test_split_path_backpropagates_like_f_linear(two_threads):
    layer = Linear(512, 600)
    assert layer.weight.numel() >= SPLIT_MIN_NUMEL
    x = torch.randn(4, 512, requires_grad=True)
    assert use_split(x, layer.weight) == 2
    layer(x).pow(2).sum().backward()
    grads = [t.grad.clone() for t in (x, layer.weight, layer.bias)]
    for t in (x, layer.weight, layer.bias):
        t.grad = None
    F.linear(x, layer.weight, layer.bias).pow(2).sum().backward()
    for got, want in zip(grads, (x.grad, layer.weight.grad, layer.bias.grad), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_split_is_used_only_where_it_pays(two_threads):
    big = torch.randn(1024, 256)  # exactly SPLIT_MIN_NUMEL
    row = torch.randn(1, 256)
    assert use_split(row, big) == 2
    assert use_split(row, by_columns(big)) == 2
    assert use_split(torch.randn(32, 256), big) == 2
    assert use_split(torch.randn(33, 256), big) == 0  # a real GEMM: MKL is already threaded
    assert use_split(row, torch.randn(1024, 512)[:, ::2]) == 0  # strided both ways: BLAS copies
    assert use_split(row, torch.randn(1023, 256)) == 0  # under 1 MiB
    assert use_split(row.bfloat16(), big.bfloat16()) == 0  # bf16 products are threaded already
    torch.set_num_threads(1)
    assert use_split(row, big) == 0


def lm(tie: bool) -> DecoderLM:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=4096, context_length=64, n_layer=2, n_head=2, n_embd=64,
                      tie_embeddings=tie)  # fmt: skip
    return DecoderLM(cfg).eval()  # the 4096 x 64 head is big enough to split


@pytest.mark.parametrize("tie", [True, False])
def test_store_by_columns_keeps_values_ties_and_tokens(two_threads, tie):
    model = lm(tie)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prompt = torch.randint(0, 4096, (2, 5))
    want = generate(model, prompt, max_new_tokens=12, temperature=0)
    store_by_columns(model)
    head = model.lm_head.weight
    assert head.stride() == (1, 4096)
    assert (model.tok_emb.weight is head) == tie
    assert model.blocks[0].ffn.up_proj.weight.is_contiguous()  # 256 x 64: too small to move
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert torch.equal(generate(model, prompt, max_new_tokens=12, temperature=0), want)
    store_by_columns(model)  # already by columns: nothing to do
    assert model.lm_head.weight is head
