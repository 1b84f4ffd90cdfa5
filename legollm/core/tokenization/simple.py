"""A word-level tokenizer: the first step before subwords.

Text is split into words and punctuation; each distinct piece seen in training
gets an id. Anything unseen becomes ``<|unk|>``, which is exactly the weakness
byte-level BPE removes. ``<|endoftext|>`` separates documents.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from legollm.core.exceptions import TokenizerError
from legollm.core.utils import atomic_write

_SPLIT = re.compile(r'([,.:;?_!"()\']|--|\s)')
UNK, EOT = "<|unk|>", "<|endoftext|>"


class SimpleTokenizer:
    def __init__(self, vocab: dict[str, int] | None = None) -> None:
        self.str_to_int: dict[str, int] = dict(vocab or {})
        self.int_to_str = {i: s for s, i in self.str_to_int.items()}

    @staticmethod
    def _pieces(text: str) -> list[str]:
        return [p.strip() for p in _SPLIT.split(text) if p.strip()]

    def train(self, text: str, vocab_size: int | None = None, verbose: bool = False) -> None:
        """Build the vocabulary from ``text`` (the most frequent words first if capped)."""
        if not text:
            raise TokenizerError("cannot build a vocabulary from empty text")
        pieces = self._pieces(text)
        words = sorted(set(pieces))
        if vocab_size is not None:
            if vocab_size < 3:
                raise TokenizerError("vocab_size must leave room for <|unk|> and <|endoftext|>")
            freq: dict[str, int] = {}
            for p in pieces:
                freq[p] = freq.get(p, 0) + 1
            words = sorted(sorted(words, key=lambda w: -freq[w])[: vocab_size - 2])
        self.str_to_int = {w: i for i, w in enumerate([*words, EOT, UNK])}
        self.int_to_str = {i: s for s, i in self.str_to_int.items()}

    @property
    def vocab_size(self) -> int:
        return len(self.str_to_int)

    @property
    def special_tokens(self) -> dict[str, int]:
        return {s: self.str_to_int[s] for s in (EOT, UNK) if s in self.str_to_int}

    @property
    def eot_token_id(self) -> int | None:
        return self.str_to_int.get(EOT)

    def encode(self, text: str) -> list[int]:
        if not self.str_to_int:
            raise TokenizerError("the tokenizer has no vocabulary yet: call train() or load()")
        unk = self.str_to_int[UNK]
        return [self.str_to_int.get(p, unk) for p in self._pieces(text)]

    encode_ordinary = encode

    def decode(self, ids: list[int]) -> str:
        try:
            text = " ".join(self.int_to_str[i] for i in ids)
        except KeyError as e:
            raise TokenizerError(f"unknown token id {e.args[0]}") from e
        return re.sub(r'\s+([,.?!"()\'])', r"\1", text)  # no space before punctuation

    def save(self, path: str | os.PathLike[str]) -> Path:
        p = Path(path)
        with atomic_write(p) as f:
            json.dump({"format": "legollm-simple", "version": 1, "vocab": self.str_to_int}, f)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SimpleTokenizer:
        p = Path(path)
        if not p.is_file():
            raise TokenizerError(f"tokenizer file not found: {p}")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            if data["format"] != "legollm-simple":
                raise ValueError(f"format is {data['format']!r}")
            return cls({str(k): int(v) for k, v in data["vocab"].items()})
        except (ValueError, KeyError, TypeError) as e:
            raise TokenizerError(f"corrupt tokenizer file {p}: {e!r}") from e
