"""Tokenizer specs: the plain-data recipe in meta.json that rebuilds a tokenizer.

A prepared dataset is only meaningful together with the tokenizer that wrote it,
so meta.json stores a small dict instead of a pickled object:

    {"type": "char", "chars": "\\n !...z", "special_tokens": {"<|endoftext|>": 65}}
    {"type": "gpt2", "encoder_json": "tokenizer/encoder.json", "vocab_bpe": "tokenizer/vocab.bpe"}
    {"type": "tiktoken", "path": "tokenizer/cl100k_base.tiktoken", "pattern": "gpt4",
     "special_tokens": {"<|endoftext|>": 100257}}
    {"type": "legollm", "path": "tokenizer/my.model"}

``load_tokenizer(spec)`` turns it back into an object with ``encode_batch``,
``decode``, ``special_tokens`` and ``eot_token_id``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from legollm.core.exceptions import ConfigError, TokenizerError

EOT = "<|endoftext|>"
TOKENIZER_TYPES = ("char", "gpt2", "tiktoken", "legollm")
# Which keys of each spec type name files (resolved against the meta.json folder).
_PATH_KEYS = {"gpt2": ("encoder_json", "vocab_bpe"), "tiktoken": ("path",), "legollm": ("path",)}


class CharTokenizer:
    """Character-level tokenizer: one id per distinct character of the corpus.

    The vocabulary is the sorted set of characters seen in the data, so ids are
    stable for a given corpus; special tokens take the ids after the characters.
    Encoding is a table lookup on the code points (numpy), no Python loop per char.
    """

    def __init__(self, chars: str, special_tokens: dict[str, int] | None = None):
        if len(set(chars)) != len(chars):
            raise TokenizerError("char tokenizer: the character list has duplicates")
        self.chars = "".join(sorted(chars))
        self.special_tokens = dict(special_tokens or {})
        self._itos = {i: c for i, c in enumerate(self.chars)}
        self._itos.update({i: s for s, i in self.special_tokens.items()})
        # sorted code points; searchsorted maps a code point to its id
        self._codes = np.array([ord(c) for c in self.chars], dtype=np.uint32)

    @classmethod
    def from_text(cls, texts: Iterable[str], eot: str | None = EOT) -> CharTokenizer:
        seen: set[str] = set()
        for t in texts:
            seen.update(t)
        chars = "".join(sorted(seen))
        return cls(chars, {eot: len(chars)} if eot else None)

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + len(self.special_tokens)

    @property
    def eot_token_id(self) -> int | None:
        return self.special_tokens.get(EOT)

    def encode_ordinary(self, text: str) -> list[int]:
        return self._encode_np(text).tolist()

    def encode(self, text: str, allowed_special: Any = "none") -> list[int]:
        return self.encode_ordinary(text)

    def encode_batch(self, texts: list[str], num_workers: int | None = None, **_: Any) -> list:
        return [self._encode_np(t) for t in texts]

    def _encode_np(self, text: str) -> np.ndarray:
        # (N,) code points: utf-32 is one fixed-width unit per character
        cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        ids = np.searchsorted(self._codes, cps)  # (N,) int64, in place from here on
        np.minimum(ids, len(self._codes) - 1, out=ids)  # unknown chars past the end
        bad = self._codes[ids] != cps  # a code point that is not in the vocabulary
        if bad.any():
            c = chr(int(cps[int(np.argmax(bad))]))
            raise TokenizerError(f"char tokenizer: character {c!r} is not in its vocabulary")
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        try:
            return "".join(self._itos[int(i)] for i in ids)
        except KeyError as e:
            raise TokenizerError(f"char tokenizer: unknown id {e.args[0]}") from None

    def spec(self) -> dict[str, Any]:
        return {"type": "char", "chars": self.chars, "special_tokens": self.special_tokens}


def _pattern(name: str | None) -> str:
    from legollm.core import tokenization as t

    named = {"gpt2": t.GPT2_SPLIT_PATTERN, "gpt4": t.GPT4_SPLIT_PATTERN}
    return named.get(name or "gpt4", name)


def load_tokenizer(spec: dict[str, Any], base_dir: str | os.PathLike[str] | None = None):
    """Rebuild the tokenizer a spec describes (paths relative to ``base_dir``)."""
    if not isinstance(spec, dict) or spec.get("type") not in TOKENIZER_TYPES:
        kind = spec.get("type") if isinstance(spec, dict) else spec
        raise ConfigError(
            f"unknown tokenizer type {kind!r}; use one of {', '.join(TOKENIZER_TYPES)}"
        )
    spec = resolve_spec_paths(spec, base_dir) if base_dir is not None else spec
    kind = spec["type"]
    for key in _PATH_KEYS.get(kind, ()):
        if not spec.get(key) or not Path(spec[key]).is_file():
            raise ConfigError(f"{kind} tokenizer: file {key}={spec.get(key)!r} not found")
    if kind == "char":
        return CharTokenizer(spec["chars"], spec.get("special_tokens"))
    from legollm.core.tokenization import RegexBPETokenizer

    specials = {str(k): int(v) for k, v in (spec.get("special_tokens") or {}).items()}
    if kind == "gpt2":
        tok = RegexBPETokenizer.from_gpt2_files(spec["encoder_json"], spec["vocab_bpe"])
        if EOT not in tok.special_tokens:  # GPT-2's one special token, id 50256
            tok.register_special_tokens({EOT: 50256})
    elif kind == "tiktoken":
        tok = RegexBPETokenizer.from_tiktoken(spec["path"], _pattern(spec.get("pattern")), specials)
    else:
        tok = RegexBPETokenizer()
        loaded = tok.load(spec["path"])  # a classmethod returns the tokenizer; a method fills tok
        tok = loaded if loaded is not None else tok
    if specials and kind != "tiktoken":
        tok.register_special_tokens(specials)
    return tok


def max_token_id(tok) -> int:
    """The largest id ``tok`` can emit, special tokens included."""
    ids = [tok.vocab_size - 1, *tok.special_tokens.values()]
    return int(max(ids))


def resolve_spec_paths(spec: dict[str, Any], base_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Return a copy of ``spec`` with its relative file paths made absolute."""
    out = dict(spec)
    for key in _PATH_KEYS.get(spec.get("type"), ()):
        if out.get(key) and not Path(out[key]).is_absolute():
            out[key] = str((Path(base_dir) / out[key]).resolve())
    return out


def spec_sha256(spec: dict[str, Any]) -> str:
    """Hash of everything that decides the ids: the spec's data and its files' bytes."""
    h = hashlib.sha256()
    data = {k: v for k, v in spec.items() if k not in _PATH_KEYS.get(spec.get("type"), ())}
    h.update(json.dumps(data, sort_keys=True).encode())
    for key in _PATH_KEYS.get(spec.get("type"), ()):
        h.update(file_sha256(spec[key]).encode())
    return h.hexdigest()


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


__all__ = [
    "EOT",
    "TOKENIZER_TYPES",
    "CharTokenizer",
    "file_sha256",
    "load_tokenizer",
    "max_token_id",
    "resolve_spec_paths",
    "spec_sha256",
]
