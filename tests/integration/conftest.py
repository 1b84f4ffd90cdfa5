"""Fixtures the integration tests share: tiny starting models for fine-tuning runs."""

import shutil

import pytest
import torch

from legollm.core.tokenization.specs import CharTokenizer
from legollm.models import DecoderLM, ModelConfig
from legollm.training.checkpoint import save_checkpoint


@pytest.fixture(scope="module")
def hf_gpt2_dir(tmp_path_factory, shared_data):
    """A tiny random transformers GPT-2 saved with save_pretrained, with GPT-2's tokenizer
    files under their HF names (vocab.json, merges.txt)."""
    transformers = pytest.importorskip("transformers")
    d = tmp_path_factory.mktemp("hf_gpt2")
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=1, n_head=2, n_embd=16, n_positions=256)
    transformers.GPT2LMHeadModel(cfg).save_pretrained(d, safe_serialization=True)
    shutil.copy(shared_data / "gpt2" / "encoder.json", d / "vocab.json")
    shutil.copy(shared_data / "gpt2" / "vocab.bpe", d / "merges.txt")
    return d


@pytest.fixture
def char_checkpoint(tmp_path):
    """A tiny LegoLLM checkpoint with a char tokenizer that covers the instruction data."""
    tok = CharTokenizer.from_text([" \n" + "".join(chr(c) for c in range(33, 127))])
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=tok.vocab_size, context_length=320, n_layer=1, n_head=2,
                      n_embd=16, dropout=0.1)  # fmt: skip
    model = DecoderLM(cfg)
    path = tmp_path / "base.pt"
    save_checkpoint(path, {"model": model.state_dict(), "model_config": cfg.to_dict(),
                           "tokenizer": tok.spec()})  # fmt: skip
    return path
