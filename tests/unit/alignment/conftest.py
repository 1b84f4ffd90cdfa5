"""Tiny starting models and preference data for the reward-model and PPO tests."""

from __future__ import annotations

import random

import pytest
import torch

from legollm.core.tokenization.specs import CharTokenizer
from legollm.models import DecoderLM, ModelConfig
from legollm.training.checkpoint import save_checkpoint
from tests.unit.finetuning.conftest import _one_thread  # noqa: F401


def char_tokenizer() -> CharTokenizer:
    return CharTokenizer.from_text([" \n" + "".join(chr(c) for c in range(33, 127))])


def make_char_checkpoint(path):
    """A tiny LegoLLM checkpoint (1 layer, 16 dim) with a char tokenizer, at ``path``."""
    tok = char_tokenizer()
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=tok.vocab_size, context_length=256, n_layer=1, n_head=2,
                      n_embd=16, dropout=0.0)  # fmt: skip
    save_checkpoint(path, {"model": DecoderLM(cfg).state_dict(), "model_config": cfg.to_dict(),
                           "tokenizer": tok.spec()})  # fmt: skip
    return path


@pytest.fixture
def char_checkpoint(tmp_path):
    return make_char_checkpoint(tmp_path / "base.pt")


def case_pairs(n: int = 48, seed: int = 0) -> list[dict[str, str]]:
    """Preference pairs a reader can check: the chosen answer is the word in lower case,
    the rejected one the same word in upper case."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        word = "".join(rng.choice("abcdefghij") for _ in range(rng.randint(3, 6)))
        out.append({"instruction": "Write the word.", "input": word,
                    "chosen": word, "rejected": word.upper()})  # fmt: skip
    return out
