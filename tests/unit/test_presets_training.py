"""A Llama-style model trains with the same Trainer as GPT-2: the shipped config and
``family:name`` presets, a few steps on a tiny dataset, exported to transformers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from legollm.core.exceptions import ConfigError
from legollm.models import ModelConfig
from legollm.models.loss import training_loss
from legollm.training.config import TrainConfig, apply_overrides
from legollm.training.presets import model_preset
from legollm.training.run import build_trainer, model_config_dict

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs/train/tiny_llama_cpu.yaml"
VOCAB = 24


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """A prepared dir by hand: a noisy count-up sequence a model learns in a few steps."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 3000), ("val", 600)):
        ids = (np.arange(n) + (rng.random(n) < 0.2) * rng.integers(0, VOCAB, n)) % VOCAB
        ids.astype(np.uint16).tofile(tmp_path / f"{split}.bin")
    meta = {
        "vocab_size": VOCAB,
        "dtype": "uint16",
        "tokenizer": {"type": "char", "chars": "".join(chr(65 + i) for i in range(VOCAB))},
        "num_tokens": {"train": 3000, "val": 600},
        "eot_token_id": None,
    }
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    return tmp_path


def _fast(data_dir, run_dir) -> list[str]:
    return [f"data_dir={data_dir}", f"run_dir={run_dir}", "max_iters=12", "lr_decay_iters=12",
            "warmup_iters=2", "eval_interval=12", "eval_iters=2", "log_interval=1",
            "batch_size=4", "block_size=32", "progress=false", "plot=false",
            "save_checkpoints=false", "threads=1"]  # fmt: skip


def test_shipped_tiny_llama_config_trains(data_dir, tmp_path):
    cfg = TrainConfig.from_yaml(CONFIG, _fast(data_dir, tmp_path / "run"))
    trainer = build_trainer(cfg)
    c = trainer.raw_model.config
    assert (c.norm, c.position, c.ffn, c.kv_heads, c.qkv_bias) == (
        "rmsnorm", "rope", "swiglu", 2, False
    )  # fmt: skip
    assert trainer.raw_model.pos_emb is None  # RoPE: no learned position table
    trainer.fit()
    losses = [r["loss"] for r in trainer.history if "loss" in r]
    assert len(losses) == 12 and losses[-1] < losses[0]


def test_trained_llama_exports_to_transformers(data_dir, tmp_path):
    from transformers import LlamaForCausalLM

    from legollm.models import save_pretrained

    over = _fast(data_dir, tmp_path / "run") + ["model=llama3:tiny", "max_iters=3"]
    trainer = build_trainer(TrainConfig.from_yaml(CONFIG, over))
    trainer.fit()
    model = trainer.raw_model.eval()
    save_pretrained(model, tmp_path / "hf", model_type="llama")
    hf = LlamaForCausalLM.from_pretrained(tmp_path / "hf").eval()
    ids = torch.randint(0, VOCAB, (2, 32))
    with torch.no_grad():
        assert (model(ids) - hf(ids).logits).abs().max() <= 1e-5


def test_a_mixture_of_experts_trains_with_its_router_loss_and_exports(data_dir, tmp_path):
    """mixtral:tiny (4 experts, top 2, router_aux_loss_coef 0.02) on the same Trainer."""
    from transformers import MixtralForCausalLM

    from legollm.components.moe import load_balancing_loss
    from legollm.models import save_pretrained

    over = _fast(data_dir, tmp_path / "run") + ["model=mixtral:tiny"]
    trainer = build_trainer(TrainConfig.from_yaml(CONFIG, over))
    model = trainer.raw_model
    assert model.config.ffn == "moe" and model.config.router_aux_loss_coef == 0.02
    trainer.fit()
    losses = [r["loss"] for r in trainer.history if "loss" in r]
    assert losses[-1] < losses[0]
    ids = torch.randint(0, VOCAB, (2, 32))
    model.eval()
    with torch.no_grad():
        with_router = training_loss(model, model(ids), ids)
        lm = torch.nn.functional.cross_entropy(model(ids).flatten(0, 1), ids.flatten())
        aux = load_balancing_loss([b.ffn.router_logits for b in model.blocks], 2)
    torch.testing.assert_close(with_router, lm + 0.02 * aux)
    save_pretrained(model, tmp_path / "hf", model_type="mixtral")
    hf = MixtralForCausalLM.from_pretrained(tmp_path / "hf").eval()
    with torch.no_grad():
        assert (model(ids) - hf(ids).logits).abs().max() <= 1e-5


@pytest.mark.parametrize(
    "name",
    ["llama3:tiny", "qwen3:tiny", "mistral:tiny", "mixtral:tiny", "qwen3_moe:tiny", "gpt2:gpt2"],
)
def test_architecture_presets_are_sized_by_the_run(name):
    cfg = TrainConfig.from_dict({"model": name, "block_size": 48})
    fields = model_config_dict(cfg, {"vocab_size": 65})
    mc = ModelConfig.from_dict(fields)
    assert (mc.vocab_size, mc.context_length) == (65, 48)
    # a dotted override reaches into the preset like any other
    over = apply_overrides({"model": name}, ["model.n_layer=1"])
    assert over["model"]["n_layer"] == 1 and over["model"]["norm"] == mc.norm


def test_unknown_presets_name_the_choices():
    with pytest.raises(ConfigError, match="llama3:tiny"):
        model_preset("gpt9")
    with pytest.raises(ConfigError, match="unknown architecture preset"):
        model_preset("llama3:70b")
