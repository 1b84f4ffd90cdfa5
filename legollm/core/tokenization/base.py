"""What every LegoLLM tokenizer shares: ids <-> bytes, special tokens, save/load.

A tokenizer here is a table of token byte strings (``vocab``: id -> bytes), the
ordered merges that built it (``merges``: (left id, right id) -> new id, the
rank of a merge is its new id's position in training order), and a set of
special tokens that never come out of merging. Decoding is a lookup and a
join; text that splits a UTF-8 character comes back with U+FFFD instead of an
exception, so streaming partial output never crashes.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from legollm.core.exceptions import TokenizerError
from legollm.core.utils import atomic_write

FORMAT_NAME = "legollm-bpe"
FORMAT_VERSION = 1


def render_token(b: bytes) -> str:
    """A printable form of a token for the human-readable vocab file."""
    s = b.decode("utf-8", errors="replace")
    return "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in s)


class Tokenizer:
    """Base class: holds vocab, merges and special tokens; decodes and saves."""

    def __init__(self, pattern: str = "") -> None:
        self.pattern = pattern
        self.merges: dict[tuple[int, int], int] = {}
        self.vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}
        self.special_tokens: dict[str, int] = {}
        self.inverse_special_tokens: dict[int, str] = {}

    # -- sizes and specials ---------------------------------------------------
    @property
    def vocab_size(self) -> int:
        """One more than the largest id this tokenizer can emit (specials included)."""
        ids = list(self.vocab) + list(self.inverse_special_tokens)
        return max(ids) + 1 if ids else 0

    @property
    def eot_token_id(self) -> int | None:
        return self.special_tokens.get("<|endoftext|>")

    def register_special_tokens(self, special_tokens: dict[str, int]) -> None:
        """Add special tokens; an id that is already a merged/byte token is rejected."""
        for token, idx in special_tokens.items():
            if not token:
                raise TokenizerError("a special token must be a non-empty string")
            if idx in self.vocab:
                raise TokenizerError(
                    f"special token {token!r} has id {idx}, which is already the regular token "
                    f"{render_token(self.vocab[idx])!r}; pick an id >= {len(self.vocab)}"
                )
            other = self.inverse_special_tokens.get(idx)
            if other is not None and other != token:
                raise TokenizerError(f"special tokens {other!r} and {token!r} share id {idx}")
        for token, idx in special_tokens.items():
            self.special_tokens[token] = idx
            self.inverse_special_tokens[idx] = token

    # -- decoding -------------------------------------------------------------
    def decode_bytes(self, ids) -> bytes:
        parts = []
        vocab, specials = self.vocab, self.inverse_special_tokens
        for idx in ids:
            b = vocab.get(idx)
            if b is None:
                s = specials.get(idx)
                if s is None:
                    raise TokenizerError(
                        f"unknown token id {idx}: this tokenizer has ids 0..{self.vocab_size - 1}"
                    )
                b = s.encode("utf-8")
            parts.append(b)
        return b"".join(parts)

    def decode(self, ids) -> str:
        """Ids back to text; bytes that do not form valid UTF-8 become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    # -- persistence ----------------------------------------------------------
    def to_dict(self) -> dict:
        """A versioned, JSON-safe description: merges as base64 byte pairs, in rank order."""
        ordered = sorted(self.merges.items(), key=lambda kv: kv[1])
        # tokens no merge builds: the 256 bytes (permuted in some published vocabularies)
        # and, in Hugging Face files, tokens only reachable as whole chunks
        merged = set(self.merges.values())
        base = {i: b for i, b in self.vocab.items() if i not in merged}
        identity = base == {i: bytes([i]) for i in range(256)}
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "type": type(self).__name__,
            "pattern": self.pattern,
            "byte_tokens": None
            if identity
            else {i: base64.b64encode(b).decode() for i, b in sorted(base.items())},
            "merges": [[a, b, idx] for (a, b), idx in ordered],
            "special_tokens": self.special_tokens,
            **self._options(),
        }

    def _options(self) -> dict:
        """Extra fields a subclass saves (read back by :meth:`_set_options`)."""
        return {}

    def _set_options(self, data: dict) -> None:
        """Read back what :meth:`_options` wrote; absent keys keep their defaults."""

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``path`` (JSON, atomically) and ``path.vocab`` (one token per line, readable).

        A path without a suffix gets ``.json``. Returns the JSON path.
        """
        p = Path(path)
        if p.suffix == "":
            p = p.with_suffix(".json")
        with atomic_write(p) as f:
            json.dump(self.to_dict(), f)
        with atomic_write(p.with_suffix(".vocab")) as f:
            parents = {idx: pair for pair, idx in self.merges.items()}
            for idx in sorted(self.vocab):
                line = f"[{render_token(self.vocab[idx])}] {idx}"
                if idx in parents:
                    a, b = parents[idx]
                    line += f"  <- [{render_token(self.vocab[a])}][{render_token(self.vocab[b])}]"
                f.write(line + "\n")
            for token, idx in sorted(self.special_tokens.items(), key=lambda kv: kv[1]):
                f.write(f"[{token}] {idx}  (special)\n")
        return p

    def load(self, path: str | os.PathLike[str]):
        """Load what :meth:`save` wrote into this tokenizer (also usable as ``Cls.load``)."""
        p = Path(path)
        if not p.is_file() and p.with_suffix(".json").is_file():
            p = p.with_suffix(".json")
        if not p.is_file():
            raise TokenizerError(f"tokenizer file not found: {p}")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError(f"it holds a JSON {type(data).__name__}, not a LegoLLM tokenizer")
            if data.get("format") != FORMAT_NAME:
                raise ValueError(f"format is {data.get('format')!r}, expected {FORMAT_NAME!r}")
            if data.get("version") != FORMAT_VERSION:
                raise ValueError(f"unsupported version {data.get('version')!r}")
            self.pattern = data["pattern"]
            self.vocab = {i: bytes([i]) for i in range(256)}
            if data.get("byte_tokens"):
                self.vocab = {int(i): base64.b64decode(b) for i, b in data["byte_tokens"].items()}
            self.merges = {(a, b): idx for a, b, idx in data["merges"]}
            # a merge's parts usually have lower ids; converted vocabularies may list
            # (a, b) -> c with b > c, so build in passes until every merge resolves
            pending = list(self.merges.items())
            while pending:
                rest = [
                    m for m in pending if m[0][0] not in self.vocab or m[0][1] not in self.vocab
                ]
                for (a, b), idx in pending:
                    if a in self.vocab and b in self.vocab:
                        self.vocab[idx] = self.vocab[a] + self.vocab[b]
                if len(rest) == len(pending):
                    raise ValueError(f"merge {rest[0][0]} -> {rest[0][1]} uses an unknown token")
                pending = rest
            self._set_options(data)
            self.special_tokens, self.inverse_special_tokens = {}, {}
            self.register_special_tokens({k: int(v) for k, v in data["special_tokens"].items()})
        except (TokenizerError, ValueError, KeyError, TypeError, IndexError) as e:
            raise TokenizerError(f"corrupt tokenizer file {p}: {e}") from e
        self._after_load()
        return self

    def _after_load(self) -> None:
        """Hook for subclasses that keep derived tables (caches, compiled regexes)."""


class _LoadDescriptor:
    """Makes ``load`` work as ``Tok.load(path)`` (returns a new tokenizer) and ``tok.load(path)``."""

    def __get__(self, obj, cls):
        if obj is None:
            return lambda path: Tokenizer.load(cls(), path)
        return lambda path: Tokenizer.load(obj, path)


MAX_VOCAB_SIZE = 1 << 20  # four times the largest vocabularies in use (Gemma's 262,144)


def check_vocab_size(vocab_size: int, n_special: int = 0) -> int:
    """The number of merges a vocab size asks for, or a TokenizerError when it is out of range."""
    if not isinstance(vocab_size, int) or vocab_size < 256 + n_special:
        raise TokenizerError(
            f"vocab_size must be at least 256 (the byte tokens) + {n_special} special tokens, "
            f"got {vocab_size}"
        )
    if vocab_size > MAX_VOCAB_SIZE:
        raise TokenizerError(
            f"vocab_size {vocab_size:,} is more than a tokenizer can use (at most "
            f"{MAX_VOCAB_SIZE:,}; GPT-2 has 50,257 tokens, Llama 3 128,256): pick a smaller one"
        )
    return vocab_size - 256
