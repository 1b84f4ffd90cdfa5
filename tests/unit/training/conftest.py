"""Fixtures for training tests: a tiny prepared dataset and a contract-following model.

``BigramLM`` is a test double (embedding -> dropout -> linear) with the DecoderLM
training contract: ``model(x) -> logits``, ``model.aux_loss(y, reduction)`` (None: no
auxiliary loss), a ``config`` with ``vocab_size``/``context_length``/``to_dict``. It lets the loop be
tested without depending on the transformer; integration tests use the real DecoderLM.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pytest
from torch import nn


@dataclass
class BigramConfig:
    vocab_size: int = 32
    context_length: int = 16
    n_embd: int = 16
    dropout: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


class BigramLM(nn.Module):
    def __init__(self, config: BigramConfig):
        super().__init__()
        self.config = config
        self.emb = nn.Embedding(config.vocab_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.norm = nn.LayerNorm(config.n_embd)
        self.head = nn.Linear(config.n_embd, config.vocab_size)

    def forward(self, idx):
        return self.head(self.norm(self.drop(self.emb(idx))))  # (B, T, V)

    def aux_loss(self, targets, reduction="mean"):
        return None


def write_dataset(root: Path, vocab_size: int = 32, n_train: int = 4000, n_val: int = 600) -> Path:
    """A prepared dir by hand (train.bin, val.bin, meta.json) with a learnable pattern."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)

    def stream(n: int) -> np.ndarray:
        # a noisy "count up" sequence: next id is (id + 1) % V most of the time
        ids = np.empty(n, dtype=np.uint16)
        ids[0] = 0
        for i in range(1, n):
            ids[i] = (
                (ids[i - 1] + 1) % vocab_size if rng.random() < 0.8 else rng.integers(0, vocab_size)
            )
        return ids

    stream(n_train).tofile(root / "train.bin")
    stream(n_val).tofile(root / "val.bin")
    meta = {
        "vocab_size": vocab_size,
        "dtype": "uint16",
        "tokenizer": {
            "type": "char",
            "chars": "".join(chr(65 + i) for i in range(vocab_size)),
        },
        "num_tokens": {"train": n_train, "val": n_val},
        "eot_token_id": None,
    }
    (root / "meta.json").write_text(json.dumps(meta))
    return root


@pytest.fixture
def dataset(tmp_path) -> Path:
    return write_dataset(tmp_path / "data")
