"""A LegoLLM tokenizer as the ``tokenizer.ggml.*`` fields llama.cpp reads.

llama.cpp re-implements byte-level BPE in C++ and needs four things to reproduce our
ids exactly:

- the vocabulary as strings in GPT-2's byte -> printable-character alphabet (special
  tokens as written), one per id from 0 to the model's vocabulary size, with a type
  per token (normal, control for special tokens, unused for padding rows);
- the merges in priority order as ``"left right"`` strings; we rank a pair by the id
  it makes, so listing merges by that id gives llama.cpp the same ranks;
- a pre-tokenizer *name*: llama.cpp does not read a split regex from the file but
  picks one of its own (with hand-written fast paths) by name, so we name the one whose
  regex is ours. Llama 3's name also switches on "ignore merges" (a chunk that is
  itself a token is that token), so a tokenizer without that rule gets the name of a
  model with the same regex and plain merging (DBRX);
- bos/eos/pad ids, and ``add_bos_token: false``: LegoLLM never adds BOS implicitly.

What llama.cpp cannot reproduce raises :class:`TokenizerError` instead of writing a file
that tokenizes differently: character-level tokenizers (not byte-level), tiktoken rank
files (no merges), unknown split patterns, vocabularies with two ids for one string.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from legollm.core.exceptions import TokenizerError
from legollm.core.tokenization.patterns import (
    GPT2_SPLIT_PATTERN,
    GPT4_SPLIT_PATTERN,
    LLAMA3_SPLIT_PATTERN,
)
from legollm.core.tokenization.pretrained import bytes_to_unicode

# gguf's TokenType values
NORMAL, CONTROL, UNUSED = 1, 3, 5

# Qwen 2 / 2.5 / 3's tokenizer.json regex: Llama 3's, with single digits
QWEN2_SPLIT_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
    r"""\s*[\r\n]+|\s+(?!\S)|\s+"""
)

# split pattern -> (llama.cpp pre-tokenizer name with plain merging, name with ignore-merges)
# GPT-4's pattern is Llama 3's with possessive quantifiers, which split text identically.
PRE_TOKENIZERS: dict[str, tuple[str | None, str | None]] = {
    GPT2_SPLIT_PATTERN: ("gpt-2", None),
    GPT4_SPLIT_PATTERN: ("dbrx", "llama-bpe"),
    LLAMA3_SPLIT_PATTERN: ("dbrx", "llama-bpe"),
    QWEN2_SPLIT_PATTERN: ("qwen2", None),
}
_PATTERN_NAMES = "GPT-2's, GPT-4's (cl100k), Llama 3's or Qwen 2's"


@dataclass
class GGUFVocab:
    """The tokenizer fields of a GGUF file, ready for ``GGUFWriter``."""

    pre: str
    tokens: list[str]
    types: list[int]
    merges: list[str]
    special_ids: dict[str, int] = field(default_factory=dict)  # "bos"/"eos"/"pad" -> id
    chat_template: str | None = None


def gguf_vocab(
    tokenizer: Any,
    vocab_size: int,
    *,
    special_ids: dict[str, int] | None = None,
    chat_template: str | None = None,
) -> GGUFVocab:
    """The GGUF tokenizer fields for ``tokenizer`` and a model with ``vocab_size`` rows.

    ``special_ids`` (bos/eos/pad) default to the end-of-text token for all three, as
    GPT-2's conversion does; a model directory's own choices are read by
    :func:`hf_special_tokens`.
    """
    _check_byte_level(tokenizer)
    pre = _pre_tokenizer_name(tokenizer)
    byte_chars = bytes_to_unicode()
    tokens: dict[int, str] = {
        i: "".join(byte_chars[b] for b in token) for i, token in tokenizer.vocab.items()
    }
    types = dict.fromkeys(tokens, NORMAL)
    for text, i in tokenizer.special_tokens.items():
        tokens[i], types[i] = text, CONTROL
    if max(tokens) >= vocab_size:
        raise TokenizerError(
            f"the tokenizer has ids up to {max(tokens)}, but the model has only {vocab_size} "
            "embedding rows: export it with the tokenizer it was trained with"
        )
    for i in range(vocab_size):  # rows no token uses (padding to a round size)
        if i not in tokens:
            tokens[i], types[i] = f"[PAD{i}]", UNUSED
    texts = [tokens[i] for i in range(vocab_size)]
    _check_unique(texts)
    merges = [
        f"{tokens[a]} {tokens[b]}"
        for (a, b), _ in sorted(tokenizer.merges.items(), key=lambda kv: kv[1])
    ]
    return GGUFVocab(
        pre=pre,
        tokens=texts,
        types=[types[i] for i in range(vocab_size)],
        merges=merges,
        special_ids=_special_ids(tokenizer, special_ids),
        chat_template=chat_template,
    )


def _check_byte_level(tokenizer: Any) -> None:
    if not all(hasattr(tokenizer, a) for a in ("vocab", "merges", "pattern", "bpe_mode")):
        raise TokenizerError(
            f"{type(tokenizer).__name__} is not a byte-level BPE tokenizer, and llama.cpp reads "
            "only those (plus SentencePiece): retrain with a BPE tokenizer (tokenizer: legollm "
            "or gpt2 in the data config) to export to GGUF"
        )
    if tokenizer.bpe_mode != "merges":
        raise TokenizerError(
            "this tokenizer comes from a tiktoken rank file, which lists no merges, and "
            "llama.cpp needs them: export the model with its tokenizer.json instead "
            "(--tokenizer path/to/tokenizer.json)"
        )


def _pre_tokenizer_name(tokenizer: Any) -> str:
    if tokenizer.pattern not in PRE_TOKENIZERS:
        raise TokenizerError(
            f"llama.cpp has no pre-tokenizer for the split pattern {tokenizer.pattern!r}; "
            f"GGUF export supports {_PATTERN_NAMES}"
        )
    plain, whole_first = PRE_TOKENIZERS[tokenizer.pattern]
    name = whole_first if tokenizer.ignore_merges else plain
    if name is None:
        rule = "looks whole chunks up first" if tokenizer.ignore_merges else "merges plainly"
        raise TokenizerError(
            f"this tokenizer {rule}, which llama.cpp does not do with its split pattern"
        )
    return name


def _check_unique(texts: list[str]) -> None:
    seen: dict[str, int] = {}
    for i, text in enumerate(texts):
        if text in seen:
            raise TokenizerError(
                f"ids {seen[text]} and {i} are the same string {text!r}; llama.cpp looks "
                "tokens up by string, so it would merge them: retrain the tokenizer"
            )
        seen[text] = i


def _special_ids(tokenizer: Any, given: dict[str, int] | None) -> dict[str, int]:
    out = dict(given or {})
    eot = tokenizer.eot_token_id
    if "eos" not in out:
        if eot is None:
            raise TokenizerError(
                "the tokenizer has no <|endoftext|> token, which llama.cpp needs as its "
                "end-of-sequence id; register one when training the tokenizer"
            )
        out["eos"] = eot
    out.setdefault("bos", out["eos"])
    return out


def hf_special_tokens(directory: Path, tokenizer: Any) -> tuple[dict[str, int], str | None]:
    """(bos/eos/pad ids, Jinja chat template) a Hugging Face model directory declares.

    Ids come from config.json (``bos_token_id``, ``eos_token_id``; the first of a list),
    tokens by name from tokenizer_config.json, the template from
    ``chat_template.jinja`` or tokenizer_config.json's ``chat_template``.
    """
    config = _read_json(directory / "config.json")
    tok_config = _read_json(directory / "tokenizer_config.json")
    ids: dict[str, int] = {}
    for kind in ("bos", "eos", "pad"):
        value = config.get(f"{kind}_token_id")
        if isinstance(value, list):
            value = value[0] if value else None
        if value is None:
            value = tokenizer.special_tokens.get(_token_text(tok_config.get(f"{kind}_token")))
        if isinstance(value, int):
            ids[kind] = value
    template_file = directory / "chat_template.jinja"
    template = (
        template_file.read_text(encoding="utf-8")
        if template_file.is_file()
        else tok_config.get("chat_template")
    )
    if isinstance(template, list):  # named templates: the default one
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    return ids, template if isinstance(template, str) else None


def _token_text(token: Any) -> str | None:
    return token.get("content") if isinstance(token, dict) else token


def _read_json(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise TokenizerError(f"corrupt {path}: {e}") from e
    return data if isinstance(data, dict) else {}


__all__ = ["PRE_TOKENIZERS", "GGUFVocab", "gguf_vocab", "hf_special_tokens"]
