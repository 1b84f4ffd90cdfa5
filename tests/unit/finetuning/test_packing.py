"""Packed SFT rows: each example computes exactly what it computes in a row of its own.

The oracle is first principles: running the examples one by one. Packing must
change the padding, never the logits, the loss or the gradients.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from legollm.core.exceptions import ConfigError
from legollm.finetuning.dataset import InstructionLoader, collate, pack_examples
from legollm.models import DecoderLM, ModelConfig
from legollm.models.decoder import document_positions
from legollm.models.loss import lm_loss
from legollm.training import TrainConfig, Trainer

GPT2_STYLE = ModelConfig(vocab_size=64, context_length=32, n_layer=2, n_head=4, n_embd=32)
LLAMA_STYLE = dataclasses.replace(
    GPT2_STYLE, n_kv_heads=2, norm="rmsnorm", position="rope", ffn="swiglu", qkv_bias=False,
    attn_out_bias=False, mlp_bias=False, norm_bias=False, tie_embeddings=False,
)  # fmt: skip
CONFIGS = {
    "gpt2_sdpa": GPT2_STYLE,
    "gpt2_manual": dataclasses.replace(GPT2_STYLE, attn_impl="manual"),
    "llama_gqa_rope": LLAMA_STYLE,
    "mistral_window": dataclasses.replace(LLAMA_STYLE, sliding_window=4),
}


def examples(lengths, seed=0) -> list[tuple[list[int], list[int]]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in lengths:
        ids = torch.randint(0, 64, (n + 1,), generator=g).tolist()
        labels = ids[1:]
        labels[: n // 2] = [-100] * (n // 2)  # a masked prompt, as SFT has
        out.append((ids[:-1], labels))
    return out


def model_for(name: str) -> DecoderLM:
    torch.manual_seed(0)
    return DecoderLM(CONFIGS[name]).eval()


def test_document_positions_restart_at_each_document():
    docs = torch.tensor([[0, 0, 0, 1, 1, 2, -1, -1], [0, 1, 1, 1, 1, 1, 1, 1]])
    assert document_positions(docs).tolist() == [
        [0, 1, 2, 0, 1, 0, 0, 1],
        [0, 0, 1, 2, 3, 4, 5, 6],
    ]


def test_packing_records_which_example_each_position_belongs_to():
    packed = pack_examples(examples([5, 3, 7, 6]), max_length=16)
    assert [docs for _, _, docs in packed] == [[0] * 5 + [1] * 3 + [2] * 7, [0] * 6]
    x, y, docs = collate(packed, pad_id=0)
    assert docs[1].tolist() == [0] * 6 + [-1] * 9  # padding is no example's
    assert (y[1, 6:] == -100).all()


@pytest.mark.parametrize("name", CONFIGS)
def test_a_packed_row_gives_each_example_its_own_logits_and_loss(name):
    model = model_for(name)
    exs = examples([5, 3, 7, 6])
    packed = pack_examples(exs, max_length=16)  # rows: examples 0, 1, 2 and example 3
    x, y, docs = collate(packed, pad_id=0)
    with torch.no_grad():
        logits = model(x, document_ids=docs)
        loss = lm_loss(logits, y, "sum")
        leaky = model(x)
        alone_loss, k = torch.zeros(()), 0
        for row, (_, _, row_docs) in enumerate(packed):
            for doc in sorted(set(row_docs)):
                cols = [i for i, d in enumerate(row_docs) if d == doc]
                ex_x, ex_y = exs[k]
                k += 1
                alone = model(torch.tensor([ex_x]))
                ex_loss = lm_loss(alone, torch.tensor([ex_y]), "sum")
                torch.testing.assert_close(logits[row, cols], alone[0], rtol=1e-4, atol=1e-5)
                if doc:  # without document ids, a later example sees the earlier ones
                    assert not torch.allclose(leaky[row, cols], alone[0], atol=1e-3)
                alone_loss += ex_loss
    assert k == len(exs)
    torch.testing.assert_close(loss, alone_loss, rtol=1e-5, atol=1e-5)


def one_step(trainer) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of one train step and the gradients it stepped with (before zero_grad)."""
    grads = {}

    def capture(*args, **kwargs):
        grads.update({n: p.grad.clone() for n, p in trainer.raw_model.named_parameters()})

    trainer.optimizer.step = capture
    return trainer.train_step(), grads


def test_the_trainer_passes_document_ids_so_packing_leaves_loss_and_gradients_alone(tmp_path):
    """One optimizer step and one evaluation through the SFT loader, packed and not."""
    exs = examples([5, 3, 7, 6, 2, 9], seed=1)
    cfg = TrainConfig(batch_size=8, block_size=16, grad_clip=0, progress=False, device="cpu",
                      plot=False)  # fmt: skip
    results = []
    for data in (exs, pack_examples(exs, max_length=16)):
        model = model_for("gpt2_sdpa").train()  # learned positions: a shift would show
        loader = InstructionLoader(data, batch_size=8, pad_id=0, shuffle=False, max_length=16)
        val = InstructionLoader(data, batch_size=2, pad_id=0, shuffle=False, max_length=16)
        trainer = Trainer(model, cfg, loader, val, run_dir=tmp_path / str(len(results)))
        loss, grads = one_step(trainer)
        results.append((float(loss), trainer.evaluate(), grads))
    (loss_a, val_a, grads_a), (loss_b, val_b, grads_b) = results
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    assert val_a == pytest.approx(val_b, rel=1e-5)
    for n in grads_a:
        torch.testing.assert_close(grads_b[n], grads_a[n], rtol=1e-4, atol=1e-6)


def test_bad_document_ids_are_refused():
    model = model_for("gpt2_sdpa")
    x = torch.randint(0, 64, (1, 6))
    with pytest.raises(ConfigError, match="one document id per token"):
        model(x, document_ids=torch.zeros(1, 5, dtype=torch.long))
    model.setup_kv_cache(1, 8)
    with pytest.raises(ConfigError, match="not KV-cached decoding"):
        model(x, input_pos=torch.arange(6), document_ids=torch.zeros_like(x))
