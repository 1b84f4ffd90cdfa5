"""Activation checkpointing and the chunked loss change memory, not numbers.

The oracle is the plain path: ``lm_loss(model(x), y)`` with every activation kept
and the whole logits tensor made. Each saver must give the same loss and the same
gradient for every parameter (float32, 1e-6), with padding (-100 targets), tied
and untied heads, packed rows and dropout (checkpointing replays the same mask).
"""

from __future__ import annotations

import pytest
import torch

from legollm.models import DecoderLM, ModelConfig
from legollm.models.loss import IGNORE_INDEX, chunked_lm_loss, lm_loss, training_loss

TOL = 1e-6


def tiny(**overrides) -> DecoderLM:
    fields = dict(vocab_size=97, context_length=16, n_layer=2, n_head=4, n_embd=32)
    torch.manual_seed(0)
    return DecoderLM(ModelConfig(**{**fields, **overrides}))


def llama_like(**overrides) -> DecoderLM:
    llama = dict(
        norm="rmsnorm",
        position="rope",
        ffn="swiglu",
        n_kv_heads=2,
        qkv_bias=False,
        attn_out_bias=False,
        mlp_bias=False,
        norm_bias=False,
        tie_embeddings=False,
    )
    return tiny(**{**llama, **overrides})  # fmt: skip


def batch(vocab: int = 97, pad: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, vocab, (3, 16), generator=g)
    y = torch.randint(0, vocab, (3, 16), generator=g)
    if pad:
        y[0, :5] = IGNORE_INDEX  # a prompt that is not trained on
        y[2, 11:] = IGNORE_INDEX  # right padding
    return x, y


def loss_and_grads(model, loss_fn) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    torch.manual_seed(3)  # the same dropout masks on every path
    loss = loss_fn(model)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    return loss.detach(), grads


def assert_same(a, b) -> None:
    (loss_a, grads_a), (loss_b, grads_b) = a, b
    torch.testing.assert_close(loss_a, loss_b, rtol=TOL, atol=TOL)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], rtol=TOL, atol=TOL,
                                   msg=lambda m, name=name: f"{name}: {m}")  # fmt: skip


# A summed loss is compared per real token (as the Trainer divides it): float32 keeps
# ~7 digits of the sum, not 1e-6 of it.
def plain(x, y, reduction="mean"):
    n = (y != IGNORE_INDEX).sum() if reduction == "sum" else 1
    return lambda m: lm_loss(m(x), y, reduction) / n


def chunked(x, y, chunk, reduction="mean"):
    n = (y != IGNORE_INDEX).sum() if reduction == "sum" else 1
    return lambda m: chunked_lm_loss(m(x, return_hidden=True), m.lm_head, y, chunk, reduction) / n


@pytest.mark.parametrize("build", [tiny, llama_like], ids=["gpt2_tied", "llama_untied"])
def test_activation_checkpointing_gives_the_same_loss_and_gradients(build):
    model, (x, y) = build(), batch()
    expected = loss_and_grads(model, plain(x, y))
    model.activation_checkpointing = True
    assert_same(loss_and_grads(model, plain(x, y)), expected)


def test_activation_checkpointing_replays_dropout_and_packed_rows():
    model, (x, y) = tiny(dropout=0.1), batch()
    docs = torch.tensor([[0] * 6 + [1] * 10, [0] * 16, [0] * 3 + [1] * 3 + [2] * 10])
    fn = lambda m: lm_loss(m(x, document_ids=docs), y)  # noqa: E731
    expected = loss_and_grads(model, fn)
    model.activation_checkpointing = True
    assert_same(loss_and_grads(model, fn), expected)


def test_activation_checkpointing_keeps_fewer_tensors_for_backward():
    """What it is for: the saved activations shrink (counted by autograd's own hook)."""

    def saved_bytes(model, x):
        total = 0

        def pack(t):
            nonlocal total
            total += t.numel() * t.element_size()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            model(x)
        return total

    model, (x, _) = tiny(n_layer=4), batch()
    full = saved_bytes(model, x)
    model.activation_checkpointing = True
    assert saved_bytes(model, x) < full / 2


def test_activation_checkpointing_is_off_outside_training():
    model, (x, _) = tiny(), batch()
    model.activation_checkpointing = True
    model.eval()
    with torch.no_grad():
        ref = model(x)
    model.activation_checkpointing = False
    with torch.no_grad():
        assert torch.equal(model(x), ref)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("chunk", [1, 7, 48, 1000])  # one token, ragged, exact, one slice
@pytest.mark.parametrize("build", [tiny, llama_like], ids=["gpt2_tied", "llama_untied"])
def test_chunked_loss_gives_the_same_loss_and_gradients(build, chunk, reduction):
    model, (x, y) = build(), batch()
    expected = loss_and_grads(model, plain(x, y, reduction))
    assert_same(loss_and_grads(model, chunked(x, y, chunk, reduction)), expected)


def test_chunked_loss_per_token_and_all_ignored():
    model, (x, y) = tiny(), batch()
    with torch.no_grad():
        per_token = chunked_lm_loss(model(x, return_hidden=True), model.lm_head, y, 5, "none")
        torch.testing.assert_close(per_token, lm_loss(model(x), y, "none"), rtol=TOL, atol=TOL)
        nothing = torch.full_like(y, IGNORE_INDEX)  # the plain mean's 0 / 0 is NaN too
        assert chunked_lm_loss(model(x, return_hidden=True), model.lm_head, nothing, 5).isnan()
        assert lm_loss(model(x), nothing).isnan()


def test_both_savers_together_and_with_a_mixture_of_experts():
    model = llama_like(ffn="moe", n_experts=4, n_experts_per_token=2, router_aux_loss_coef=0.01)
    x, y = batch()
    expected = loss_and_grads(model, lambda m: training_loss(m, m(x), y))

    def both(m):
        return chunked(x, y, 10)(m) + m.aux_loss(y)

    model.activation_checkpointing = True
    assert_same(loss_and_grads(model, both), expected)


def test_chunked_loss_holds_one_slice_of_logits_at_a_time():
    """The largest tensor autograd keeps is a slice's input, never (tokens x vocab)."""
    model, (x, y) = tiny(vocab_size=4096), batch(pad=False)
    biggest = 0

    def pack(t):
        nonlocal biggest
        biggest = max(biggest, t.numel())
        return t

    hidden = model(x, return_hidden=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        chunked_lm_loss(hidden, model.lm_head, y, 8).backward()
    assert biggest < 48 * 4096 / 4  # the whole logits would be 48 x 4096
