"""Tokenizer specs: the plain-data recipe in meta.json and checkpoints that rebuilds a tokenizer.

A prepared dataset (or a trained model) is only meaningful together with the tokenizer
that wrote it, so meta.json and every checkpoint store a small dict instead of a
pickled object:

    {"type": "char", "chars": "\\n !...z", "special_tokens": {"<|endoftext|>": 65}}
    {"type": "gpt2", "encoder_json": "tokenizer/encoder.json", "vocab_bpe": "tokenizer/vocab.bpe"}
    {"type": "tiktoken", "path": "tokenizer/cl100k_base.tiktoken", "pattern": "gpt4",
     "special_tokens": {"<|endoftext|>": 100257}}
    {"type": "legollm", "path": "tokenizer/my.model"}
    {"type": "hf_json", "path": "tokenizer/tokenizer.json"}     # Qwen, Llama 3 (HF), ...
    {"type": "llama3", "path": "tokenizer/tokenizer.model", "version": "3"}  # Meta's file

Relative paths are relative to the folder of the meta.json or checkpoint that holds
the spec; :func:`copy_spec_files` puts the files there so the folder is self-contained.
``load_tokenizer(spec)`` turns it back into an object with ``encode_batch``,
``decode``, ``special_tokens`` and ``eot_token_id``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from legollm.core.exceptions import ConfigError, TokenizerError
from legollm.core.tokenization.patterns import GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN
from legollm.core.tokenization.regex_bpe import RegexBPETokenizer
from legollm.core.utils import atomic_path, file_sha256

EOT = "<|endoftext|>"
TOKENIZER_TYPES = ("char", "gpt2", "tiktoken", "legollm", "hf_json", "llama3")
# Which keys of each spec type name files (resolved against the meta.json / checkpoint folder).
PATH_KEYS = {
    "gpt2": ("encoder_json", "vocab_bpe"),
    "tiktoken": ("path",),
    "legollm": ("path",),
    "hf_json": ("path",),
    "llama3": ("path",),
}


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
    named = {"gpt2": GPT2_SPLIT_PATTERN, "gpt4": GPT4_SPLIT_PATTERN}
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
    for key in PATH_KEYS.get(kind, ()):
        if not spec.get(key) or not Path(spec[key]).is_file():
            raise ConfigError(f"{kind} tokenizer: file {key}={spec.get(key)!r} not found")
    if kind == "char":
        return CharTokenizer(spec["chars"], spec.get("special_tokens"))
    specials = {str(k): int(v) for k, v in (spec.get("special_tokens") or {}).items()}
    if kind == "gpt2":
        tok = RegexBPETokenizer.from_gpt2_files(spec["encoder_json"], spec["vocab_bpe"])
        if EOT not in tok.special_tokens:  # GPT-2's one special token, id 50256
            tok.register_special_tokens({EOT: 50256})
    elif kind == "tiktoken":
        tok = RegexBPETokenizer.from_tiktoken(spec["path"], _pattern(spec.get("pattern")), specials)
    elif kind == "hf_json":  # its added_tokens are the special tokens
        tok = RegexBPETokenizer.from_tokenizer_json(spec["path"])
    elif kind == "llama3":  # the version names the 256 reserved special tokens
        tok = RegexBPETokenizer.from_llama3(spec["path"], str(spec.get("version", "3")))
    else:
        tok = RegexBPETokenizer.load(spec["path"])
    if specials and kind != "tiktoken":
        tok.register_special_tokens(specials)
    return tok


def spec_for_path(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The spec of a tokenizer file, or of the tokenizer in a model directory, with
    absolute paths.

    A directory is searched for ``tokenizer.json``, then Llama 3's ``tokenizer.model``,
    then GPT-2's files (HF's names ``vocab.json`` + ``merges.txt``, or OpenAI's
    ``encoder.json`` + ``vocab.bpe``). A file is told by its name; any other name is a
    file ``RegexBPETokenizer.save`` wrote.
    """
    p = Path(path).resolve()
    if p.is_dir():
        for name in ("tokenizer.json", "tokenizer.model"):
            if (p / name).is_file():
                return spec_for_path(p / name)
        for encoder, merges in (("vocab.json", "merges.txt"), ("encoder.json", "vocab.bpe")):
            if (p / encoder).is_file() and (p / merges).is_file():
                return {"type": "gpt2", "encoder_json": str(p / encoder),
                        "vocab_bpe": str(p / merges)}  # fmt: skip
        raise TokenizerError(
            f"no tokenizer in {p}: expected tokenizer.json, tokenizer.model, or "
            "vocab.json + merges.txt; pass one with --tokenizer PATH"
        )
    if not p.is_file():
        raise TokenizerError(f"tokenizer file not found: {p}")
    if p.name == "tokenizer.model":  # Llama 3's tiktoken rank file
        return {"type": "llama3", "path": str(p), "version": "3"}
    if p.name.endswith("tokenizer.json"):
        return {"type": "hf_json", "path": str(p)}
    return {"type": "legollm", "path": str(p)}


def load_tokenizer_file(path: str | os.PathLike[str]):
    """A tokenizer from a file or a model directory, by the files it holds (see
    :func:`spec_for_path`)."""
    return load_tokenizer(spec_for_path(path))


def copy_spec_files(spec: dict[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Copy the files ``spec`` names into ``out_dir/tokenizer/``; return the spec naming
    the copies relative to ``out_dir``.

    Prepared data and fine-tuning runs keep their own copy, so they still load after the
    original files are moved or deleted. Each copy is written to a temp file and renamed;
    an identical file already in place is left alone.
    """
    out, taken = dict(spec), set()
    for key in PATH_KEYS.get(spec.get("type"), ()):
        src = Path(spec[key])
        name = src.name if src.name not in taken else f"{key}_{src.name}"
        taken.add(name)
        dest = Path(out_dir) / "tokenizer" / name
        if not dest.is_file() or file_sha256(dest) != file_sha256(src):
            with atomic_path(dest) as tmp:
                shutil.copy(src, tmp)  # the bytes and the permission bits
        out[key] = dest.relative_to(out_dir).as_posix()
    return out


def max_token_id(tok) -> int:
    """The largest id ``tok`` can emit, special tokens included."""
    ids = [tok.vocab_size - 1, *tok.special_tokens.values()]
    return int(max(ids))


def resolve_spec_paths(spec: dict[str, Any], base_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Return a copy of ``spec`` with its relative file paths made absolute."""
    out = dict(spec)
    for key in PATH_KEYS.get(spec.get("type"), ()):
        if out.get(key) and not Path(out[key]).is_absolute():
            out[key] = str((Path(base_dir) / out[key]).resolve())
    return out


def spec_sha256(spec: dict[str, Any]) -> str:
    """Hash of everything that decides the ids: the spec's data and its files' bytes."""
    h = hashlib.sha256()
    data = {k: v for k, v in spec.items() if k not in PATH_KEYS.get(spec.get("type"), ())}
    h.update(json.dumps(data, sort_keys=True).encode())
    for key in PATH_KEYS.get(spec.get("type"), ()):
        h.update(file_sha256(spec[key]).encode())
    return h.hexdigest()


__all__ = [
    "EOT",
    "TOKENIZER_TYPES",
    "PATH_KEYS",
    "CharTokenizer",
    "copy_spec_files",
    "load_tokenizer",
    "load_tokenizer_file",
    "max_token_id",
    "resolve_spec_paths",
    "spec_for_path",
    "spec_sha256",
]
