"""Reading a Hugging Face ``tokenizer.json`` that describes byte-level BPE.

Qwen, Llama 3 (HF release), GPT-2 and most recent models ship one JSON file with
four parts we need:

- ``model.vocab``: token -> id, tokens written in GPT-2's byte -> printable-character
  alphabet (see :func:`~legollm.core.tokenization.pretrained.bytes_to_unicode`);
- ``model.merges``: pairs in priority order, as ``"a b"`` strings (older files) or
  ``["a", "b"]`` lists (newer files, which allow spaces inside tokens);
- ``added_tokens``: strings matched before any splitting (``<|im_start|>``, ...),
  which become our special tokens;
- ``pre_tokenizer``: the split regex, either a ``Split`` (behaviour ``Isolated``)
  followed by ``ByteLevel(use_regex=false)``, or ``ByteLevel(use_regex=true)``, which
  means GPT-2's pattern.

Anything else that changes the ids (SentencePiece-style models, byte fallback,
word suffixes, normalizers other than NFC, prefix spaces) is refused with an error
that names the file and the field. The post-processor (e.g. Llama 3 prepending
``<|begin_of_text|>``) is not applied: chat templates add such tokens explicitly.
"""

from __future__ import annotations

import json
from pathlib import Path

import regex

from legollm.core.exceptions import TokenizerError
from legollm.core.tokenization.patterns import GPT2_SPLIT_PATTERN
from legollm.core.tokenization.pretrained import bytes_to_unicode

# text that exercises every class the split patterns name; a pattern whose matches do
# not cover it would drop characters (tiktoken and we skip unmatched text, HF keeps it)
_COVERAGE_PROBE = (
    "Hello, WORLD! It's 12345 cafés\u00a0naïve 中文 😀 \t\n\r\n  \n\n x\u0301 "
    "a_b-c.d/e:f;g'h\"i(j)k[l]{m}n<o>p|q\\r~s`t@u#v$w%x^y&z*+= \u2028\u3000end"
)


class _Spec:
    """The file being read, for messages that name it and the field at fault."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, field: str, problem: str, fix: str) -> TokenizerError:
        return TokenizerError(f"{self.path}: {field}: {problem}; {fix}")


def load_tokenizer_json(cls, path):
    """Build a tokenizer of class ``cls`` that gives the ids HF ``tokenizers`` gives."""
    spec = _Spec(Path(path))
    if not spec.path.is_file():
        raise TokenizerError(f"tokenizer.json not found: {spec.path}")
    try:
        data = json.loads(spec.path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TokenizerError(f"corrupt tokenizer.json {spec.path}: {e}") from e
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise spec.fail("model", "missing", "is this a Hugging Face tokenizer.json?")
    model = data["model"]
    _check_model(spec, model)
    normalizer = _normalizer(spec, data.get("normalizer"))
    pattern = _split_pattern(spec, data.get("pre_tokenizer"))

    byte_decoder = {c: b for b, c in bytes_to_unicode().items()}
    added = _added_tokens(spec, data.get("added_tokens") or [])
    vocab: dict[int, bytes] = {}
    ids: dict[str, int] = {}
    if not isinstance(model.get("vocab"), dict):
        raise spec.fail("model.vocab", "missing or not a mapping", "the file is damaged")
    for token, idx in model["vocab"].items():
        if token in added and added[token] == idx:
            continue  # an added token listed in the vocab too (specials given to the trainer)
        try:
            vocab[int(idx)] = bytes(byte_decoder[c] for c in token)
        except KeyError as e:
            raise spec.fail(
                "model.vocab",
                f"token {token!r} has the character {e.args[0]!r}, which is not in the "
                "byte-level alphabet",
                "only byte-level BPE (GPT-2, Llama 3, Qwen) is supported, not "
                "SentencePiece-style vocabularies",
            ) from None
        ids[token] = int(idx)

    merges: dict[tuple[int, int], int] = {}
    last = -1
    for n, entry in enumerate(model.get("merges") or []):
        if isinstance(entry, str):
            parts = entry.split(" ")
        elif isinstance(entry, list):
            parts = entry
        else:
            parts = []
        if len(parts) != 2 or not all(isinstance(p, str) for p in parts):
            raise spec.fail(
                f"model.merges[{n}]", f"{entry!r} is not a pair", 'use "a b" or ["a", "b"]'
            )
        a, b = parts
        if a not in ids or b not in ids or a + b not in ids:
            missing = next(t for t in (a, b, a + b) if t not in ids)
            raise spec.fail(
                f"model.merges[{n}]", f"{missing!r} is not in model.vocab", "the file is damaged"
            )
        new = ids[a + b]
        if new < last:
            raise spec.fail(
                f"model.merges[{n}]",
                f"makes id {new} after a merge made id {last}",
                "merges whose priority differs from their ids' order are not supported",
            )
        last = new
        merges[(ids[a], ids[b])] = new

    tok = cls(pattern=pattern)
    tok.vocab, tok.merges = vocab, merges
    tok.bpe_mode = "merges"
    tok.ignore_merges = bool(model.get("ignore_merges", False))
    tok.normalizer = normalizer
    try:
        tok._after_load()
        tok.register_special_tokens({content: idx for content, idx in added.items()})
    except TokenizerError as e:
        raise TokenizerError(f"{spec.path}: {e}") from e
    return tok


def _check_model(spec: _Spec, model: dict) -> None:
    kind = model.get("type", "BPE" if "merges" in model else None)
    if kind != "BPE":
        raise spec.fail(
            "model.type",
            f"{kind!r} models are not supported",
            "only byte-level BPE loads (SentencePiece/Unigram, WordPiece and WordLevel do not)",
        )
    if model.get("byte_fallback"):
        raise spec.fail(
            "model.byte_fallback",
            "true means a SentencePiece-style BPE (Llama 2, Mistral)",
            "only byte-level BPE is supported",
        )
    for field in ("continuing_subword_prefix", "end_of_word_suffix"):
        if model.get(field):
            raise spec.fail(
                f"model.{field}", f"{model[field]!r} is not supported", "byte-level BPE uses none"
            )
    if model.get("dropout"):
        raise spec.fail(
            "model.dropout", f"{model['dropout']} makes encoding random", "set it to null"
        )


def _normalizer(spec: _Spec, norm) -> str | None:
    if norm is None:
        return None
    steps = norm.get("normalizers", []) if norm.get("type") == "Sequence" else [norm]
    kinds = [n.get("type") for n in steps]
    if kinds == []:
        return None
    if kinds == ["NFC"]:
        return "NFC"
    raise spec.fail("normalizer", f"{kinds} is not supported", "only null or NFC (as Qwen uses) is")


def _split_pattern(spec: _Spec, pre) -> str:
    if pre is None:
        raise spec.fail(
            "pre_tokenizer", "null (no split)", "byte-level BPE needs a ByteLevel pre-tokenizer"
        )
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    where = "pre_tokenizer.pretokenizers" if pre.get("type") == "Sequence" else "pre_tokenizer"
    kinds = [s.get("type") for s in steps]
    if kinds == ["ByteLevel"]:
        byte_level, pattern, field = steps[0], None, where
    elif kinds == ["Split", "ByteLevel"]:
        split, byte_level = steps
        field = f"{where}[0]"
        if split.get("behavior") != "Isolated" or split.get("invert"):
            raise spec.fail(
                field,
                f"behavior {split.get('behavior')!r}, invert {split.get('invert')!r}",
                "only Isolated splits without invert are supported",
            )
        pat = split.get("pattern") or {}
        if "Regex" in pat:
            pattern, field = pat["Regex"], f"{field}.pattern.Regex"
        elif "String" in pat:
            pattern, field = regex.escape(pat["String"]), f"{field}.pattern.String"
        else:
            raise spec.fail(f"{field}.pattern", f"{pat!r}", "expected Regex or String")
        if byte_level.get("use_regex", True):
            raise spec.fail(
                f"{where}[1].use_regex",
                "true splits a second time with GPT-2's regex",
                "only Split + ByteLevel(use_regex=false) is supported",
            )
    else:
        raise spec.fail(
            where,
            f"{kinds} is not supported",
            "expected ByteLevel, or Split (Isolated) followed by ByteLevel(use_regex=false)",
        )
    if byte_level.get("add_prefix_space"):
        raise spec.fail(
            f"{where}.add_prefix_space" if pattern is None else f"{where}[1].add_prefix_space",
            "true is not supported",
            "use a tokenizer.json with add_prefix_space false (as GPT-2, Llama 3 and Qwen do)",
        )
    if pattern is None:
        if not byte_level.get("use_regex", True):
            raise spec.fail(
                f"{where}.use_regex", "false without a Split leaves text unsplit", "not supported"
            )
        return GPT2_SPLIT_PATTERN
    try:
        compiled = regex.compile(pattern)
    except regex.error as e:
        raise spec.fail(
            field,
            f"the regex {pattern!r} does not compile in Python's regex module ({e})",
            "rewrite it without the Oniguruma-only syntax",
        ) from e
    if "".join(compiled.findall(_COVERAGE_PROBE)) != _COVERAGE_PROBE:
        raise spec.fail(
            field,
            "the regex leaves some text unmatched",
            "only patterns whose matches cover all text (like GPT-2's, Llama 3's) are supported",
        )
    return pattern


def _added_tokens(spec: _Spec, entries) -> dict[str, int]:
    out: dict[str, int] = {}
    for n, t in enumerate(entries):
        if not isinstance(t, dict) or "content" not in t or "id" not in t:
            raise spec.fail(f"added_tokens[{n}]", f"{t!r}", "expected {id, content, ...}")
        for flag in ("lstrip", "rstrip", "single_word"):
            if t.get(flag):
                raise spec.fail(
                    f"added_tokens[{n}].{flag}",
                    f"true for {t['content']!r} is not supported",
                    "only added tokens matched exactly as written are",
                )
        out[t["content"]] = int(t["id"])
    return out
