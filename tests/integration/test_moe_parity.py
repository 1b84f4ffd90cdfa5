"""Mixture-of-experts models against transformers: tiny random MixtralForCausalLM and
Qwen3MoeForCausalLM saved with save_pretrained.

Logits, greedy generation (also with a sliding window shorter than the text, and
Qwen's unnormalised top-k weights), the training loss with the router's
load-balancing term, and the export back to transformers.
"""

from __future__ import annotations

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    MixtralConfig,
    MixtralForCausalLM,
    Qwen3MoeConfig,
    Qwen3MoeForCausalLM,
)

from legollm.generation import generate
from legollm.models import load_pretrained, save_pretrained
from legollm.models.loss import training_loss

VOCAB = 256
BASE = dict(
    vocab_size=VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
    num_attention_heads=4, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
    max_position_embeddings=128, initializer_range=0.2, bos_token_id=None, eos_token_id=None,
    pad_token_id=None,
)  # fmt: skip
QWEN = dict(moe_intermediate_size=48, head_dim=32, num_experts=8)  # head_dim != 64 / 4
CASES = {
    "mixtral": (MixtralForCausalLM, MixtralConfig, {}),
    "mixtral-window": (MixtralForCausalLM, MixtralConfig, {"sliding_window": 8}),
    "mixtral-top3of8": (MixtralForCausalLM, MixtralConfig,
                        {"num_local_experts": 8, "num_experts_per_tok": 3}),
    "qwen3_moe": (Qwen3MoeForCausalLM, Qwen3MoeConfig, {**QWEN, "norm_topk_prob": False}),
    "qwen3_moe-normalized": (Qwen3MoeForCausalLM, Qwen3MoeConfig, {**QWEN, "norm_topk_prob": True}),
}  # fmt: skip


def build(case: str, **extra):
    cls, cfg_cls, fields = CASES[case]
    torch.manual_seed(0)
    hf = cls(cfg_cls(**{**BASE, **fields, **extra}))
    if cls is Qwen3MoeForCausalLM:  # transformers starts its routers at zero: all ties
        for layer in hf.model.layers:
            torch.nn.init.normal_(layer.mlp.gate.weight, std=0.2)
    return hf


@pytest.fixture(scope="module", params=list(CASES))
def pair(request, tmp_path_factory):
    hf = build(request.param).eval()
    path = tmp_path_factory.mktemp(request.param)
    hf.save_pretrained(path)
    return hf, load_pretrained(path)


def test_logits_equal_transformers(pair):
    hf, ours = pair
    ids = torch.randint(0, VOCAB, (3, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert (ours(ids) - hf(ids).logits).abs().max().item() <= 1e-4


def test_greedy_generation_of_a_padded_batch_equals_transformers(pair):
    hf, ours = pair
    g = torch.Generator().manual_seed(2)
    prompts = [torch.randint(1, VOCAB, (n,), generator=g) for n in (5, 13)]
    ids = torch.zeros(2, 13, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):  # left padding
        ids[i, 13 - len(p) :], mask[i, 13 - len(p) :] = p, 1
    want = hf.generate(ids, attention_mask=mask, max_new_tokens=32, do_sample=False,
                       pad_token_id=0)  # fmt: skip
    got = generate(ours, ids, 32, attention_mask=mask)
    assert torch.equal(got, want)
    assert len(set(got[1, 13:].tolist())) > 4  # a real sequence, not one repeated token


@pytest.mark.parametrize("case", ["mixtral", "qwen3_moe"])
def test_training_loss_with_the_router_term_equals_transformers(case, tmp_path):
    hf = build(case, output_router_logits=True, router_aux_loss_coef=0.05).train()
    hf.save_pretrained(tmp_path)
    ours = load_pretrained(tmp_path).train()
    assert ours.config.router_aux_loss_coef == 0.05
    x = torch.randint(0, VOCAB, (2, 24))
    targets = torch.cat([x[:, 1:], torch.full((2, 1), -100)], dim=1)  # transformers shifts inside
    loss = training_loss(ours, ours(x), targets)
    want = hf(input_ids=x, labels=x)
    assert want.aux_loss is not None
    torch.testing.assert_close(loss, want.loss, rtol=1e-5, atol=1e-6)


def test_export_reloads_in_transformers_with_the_same_logits(pair, tmp_path):
    hf, ours = pair
    save_pretrained(ours, tmp_path, model_type=hf.config.model_type)
    back = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(back) is type(hf)
    assert back.config.num_local_experts == hf.config.num_local_experts
    assert back.config.num_experts_per_tok == hf.config.num_experts_per_tok
    assert back.config.sliding_window == hf.config.sliding_window
    assert getattr(back.config, "norm_topk_prob", None) == getattr(
        hf.config, "norm_topk_prob", None
    )
    ids = torch.randint(0, VOCAB, (2, 40))
    with torch.no_grad():
        assert (ours(ids) - back(ids).logits).abs().max().item() <= 1e-5


def test_legollm_generate_on_a_mixtral_dir_prints_what_transformers_generates(tmp_path, capsys):
    """The command end to end: load (and re-lay for decoding) an HF Mixtral dir with a
    tokenizer.json, stream greedy text; the oracle is transformers, decoded by tokenizers."""
    from legollm.cli.main import main
    from tests.integration._hf_dirs import make_tokenizer_json

    tok = make_tokenizer_json(tmp_path)
    torch.manual_seed(0)
    hf = MixtralForCausalLM(MixtralConfig(**{**BASE, "vocab_size": tok.get_vocab_size()})).eval()
    hf.save_pretrained(tmp_path)
    prompt = "hello world"
    x = torch.tensor([tok.encode(prompt).ids])
    new = hf.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=20, do_sample=False,
                      pad_token_id=0)[0, x.shape[1] :].tolist()  # fmt: skip
    want = tok.decode(new, skip_special_tokens=False)
    argv = ["generate", str(tmp_path), "--prompt", prompt, "--strategy", "greedy",
            "--max-new-tokens", "20"]  # fmt: skip
    assert main(argv) == 0
    assert capsys.readouterr().out == prompt + want + "\n"
