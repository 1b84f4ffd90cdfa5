"""Fixtures for fine-tuning tests: the real GPT-2 tokenizer (shared data) and a char one."""

from __future__ import annotations

import pytest

from legollm.core.tokenization.specs import CharTokenizer

RECORDS = [
    {"instruction": "Add 2 and 3.", "input": "", "output": "5"},
    {"instruction": "Reverse the word.", "input": "abc", "output": "cba"},
    {"instruction": "Name a colour.", "input": "", "output": "Blue is a colour of the sky."},
]


@pytest.fixture(scope="session")
def gpt2_tokenizer(shared_data):
    from legollm.core.tokenization import RegexBPETokenizer

    g = shared_data / "gpt2"
    return RegexBPETokenizer.from_gpt2_files(g / "encoder.json", g / "vocab.bpe")


@pytest.fixture(scope="session")
def char_tokenizer():
    """Every printable ASCII character plus <|endoftext|>: small vocab for tiny models."""
    return CharTokenizer.from_text([" \n" + "".join(chr(c) for c in range(33, 127))])


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models gain nothing from a second thread, and on a busy 2-core machine the
    thread pool waits on its descheduled partner (100x slower steps): use one, then restore."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
