"""Checkpoint I/O: atomic, weights_only, prefix-free."""

import os

import pytest
import torch
from torch import nn

from legollm.core.exceptions import ModelLoadError
from legollm.core.runtime import unwrap_model
from legollm.training.checkpoint import (
    clean_state_dict,
    load_checkpoint,
    save_checkpoint,
)
from tests.unit.training.conftest import BigramConfig, BigramLM


def _ckpt(model):
    return {"model": model.state_dict(), "model_config": model.config.to_dict(), "step": 3}


def test_round_trip_and_no_temp_files(tmp_path):
    model = BigramLM(BigramConfig())
    path = save_checkpoint(tmp_path / "run" / "latest.pt", _ckpt(model))
    assert os.listdir(tmp_path / "run") == ["latest.pt"]
    ckpt = load_checkpoint(tmp_path / "run")  # a run dir means its latest.pt
    assert ckpt["step"] == 3 and ckpt["model_config"] == model.config.to_dict()
    for k, v in model.state_dict().items():
        assert torch.equal(ckpt["model"][k], v)
    assert path.name == "latest.pt"


def test_failed_save_keeps_previous_file(tmp_path):
    model = BigramLM(BigramConfig())
    path = save_checkpoint(tmp_path / "latest.pt", _ckpt(model))
    good = path.read_bytes()
    with pytest.raises((AttributeError, TypeError)):  # a lambda cannot be pickled
        save_checkpoint(path, {"model": {}, "model_config": {}, "bad": lambda: 0})
    assert path.read_bytes() == good
    assert os.listdir(tmp_path) == ["latest.pt"]


class Evil:
    pass


def test_weights_only_refuses_pickled_objects(tmp_path):
    p = tmp_path / "evil.pt"
    torch.save({"model": {}, "model_config": Evil()}, p)
    with pytest.raises(ModelLoadError, match="not a readable"):
        load_checkpoint(p)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    torch.save({"weights": torch.ones(1)}, tmp_path / "x.pt")
    with pytest.raises(ModelLoadError, match="model_config"):
        load_checkpoint(tmp_path / "x.pt")


@pytest.mark.slow  # importing torch._dynamo costs ~5 s on a busy 2-core machine
def test_unwrap_and_clean_prefixes():
    model = BigramLM(BigramConfig())
    compiled = torch.compile(model)  # lazy: nothing compiles until called
    assert unwrap_model(compiled) is model
    assert all(k.startswith("_orig_mod.") for k in compiled.state_dict())
    cleaned = clean_state_dict({"module._orig_mod.emb.weight": 1, "head.bias": 2})
    assert cleaned == {"emb.weight": 1, "head.bias": 2}
    assert unwrap_model(nn.Linear(2, 2)).__class__ is nn.Linear


def test_tokenizer_paths_are_relative_to_the_checkpoint(tmp_path, monkeypatch):
    """A run dir that holds its tokenizer files can be moved: relative paths in the spec
    resolve against the checkpoint's folder, absolute ones are kept."""
    model = BigramLM(BigramConfig())
    spec = {"type": "gpt2", "encoder_json": "tokenizer/encoder.json", "vocab_bpe": "/abs/vocab.bpe"}
    save_checkpoint(tmp_path / "a" / "latest.pt", {**_ckpt(model), "tokenizer": spec})
    (tmp_path / "a").rename(tmp_path / "b")
    monkeypatch.chdir(tmp_path)  # not the folder the paths are relative to
    got = load_checkpoint(tmp_path / "b")["tokenizer"]
    assert got == {
        **spec,
        "encoder_json": str((tmp_path / "b" / "tokenizer" / "encoder.json").resolve()),
    }


def test_resume_accepts_a_checkpoint_written_before_a_config_field_existed(tmp_path):
    """A field added to ModelConfig later (``init``) takes its default when an older
    checkpoint is resumed, instead of reading as 'a different model config'."""
    from legollm.models import DecoderLM, ModelConfig
    from legollm.training import TrainConfig, Trainer

    cfg = ModelConfig(vocab_size=16, context_length=8, n_layer=1, n_head=2, n_embd=8)
    tcfg = TrainConfig(batch_size=1, block_size=8, device="cpu", progress=False, plot=False)

    class Loader:
        vocab_size, block_size = 16, 8

        def state_dict(self):
            return {}

        def load_state_dict(self, state):
            pass

    trainer = Trainer(DecoderLM(cfg), tcfg, Loader(), run_dir=tmp_path)
    state = trainer.state_dict()
    del state["model_config"]["init"]  # as written before the field existed
    save_checkpoint(tmp_path / "old.pt", state)
    trainer.resume(tmp_path / "old.pt")
    assert trainer.step == 0
