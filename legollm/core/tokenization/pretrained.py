"""Loading published BPE ranks: OpenAI's GPT-2 files, .tiktoken rank files, Llama 3.

GPT-2's files store tokens as *unicode strings*, not bytes: every byte is mapped to
a printable character first (so the vocab is readable JSON), and the merges file
lists pairs of such strings in priority order. We undo that byte -> unicode
permutation and rebuild the merges as id pairs. A .tiktoken file instead lists
``base64(token bytes) rank`` per line, with no merges; we recover each token's
merge by running BPE on its own bytes with only lower ranks allowed.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

from legollm.core.exceptions import TokenizerError
from legollm.core.tokenization.patterns import GPT2_SPLIT_PATTERN, LLAMA3_SPLIT_PATTERN
from legollm.core.utils import atomic_write


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character map.

    Bytes that are already printable (and not space) map to themselves; the other
    68 are shifted to code points 256, 257, ... in byte order.
    """
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    keep += range(ord("®"), ord("ÿ") + 1)
    mapping, shift = {}, 0
    for b in range(256):
        if b in keep:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + shift)
            shift += 1
    return mapping


def _read(path, what: str) -> str:
    p = Path(path)
    if not p.is_file():
        raise TokenizerError(f"{what} not found: {p}")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise TokenizerError(f"corrupt {what} {p}: not UTF-8 ({e})") from e


def load_gpt2_files(cls, encoder_json, vocab_bpe):
    """Build a tokenizer that gives tiktoken's "gpt2" ids from encoder.json + vocab.bpe."""
    try:
        encoder: dict[str, int] = json.loads(_read(encoder_json, "GPT-2 encoder.json"))
    except json.JSONDecodeError as e:
        raise TokenizerError(f"corrupt GPT-2 encoder.json {encoder_json}: {e}") from e
    if not isinstance(encoder, dict):
        raise TokenizerError(
            f"corrupt GPT-2 encoder.json {encoder_json}: it holds a JSON "
            f"{type(encoder).__name__}, not the token -> id mapping"
        )
    byte_decoder = {c: b for b, c in bytes_to_unicode().items()}
    tok = cls(pattern=GPT2_SPLIT_PATTERN)
    try:
        vocab = {
            idx: bytes(byte_decoder[c] for c in token)
            for token, idx in encoder.items()
            if token != "<|endoftext|>"
        }
        merges = {}
        lines = _read(vocab_bpe, "GPT-2 vocab.bpe").split("\n")
        for line in lines[1:]:  # the first line is a "#version" header
            if not line:
                continue
            a, b = line.split(" ")
            merges[(encoder[a], encoder[b])] = encoder[a + b]
    except (KeyError, ValueError, TypeError) as e:
        raise TokenizerError(
            f"corrupt GPT-2 files {encoder_json} / {vocab_bpe}: unexpected entry {e}"
        ) from e
    if any(len(vocab.get(i, b"")) != 1 for i in range(256)):
        raise TokenizerError(f"{encoder_json}: ids 0..255 must be the 256 byte tokens")
    tok.vocab, tok.merges = vocab, merges
    tok.bpe_mode = "ranks"  # tiktoken's "gpt2" is the oracle; ids are ranks in these files
    tok._after_load()
    if "<|endoftext|>" in encoder:
        tok.register_special_tokens({"<|endoftext|>": encoder["<|endoftext|>"]})
    return tok


def load_tiktoken(cls, path, pattern: str, special_tokens: dict[str, int]):
    """Build a tokenizer from a .tiktoken rank file (``base64 rank`` per line)."""
    ranks: dict[bytes, int] = {}
    for n, line in enumerate(_read(path, ".tiktoken rank file").splitlines(), 1):
        if not line.strip():
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except ValueError as e:
            raise TokenizerError(f"corrupt .tiktoken file {path}, line {n}: {e}") from e
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise TokenizerError(f"corrupt .tiktoken file {path}: ranks must be 0..{len(ranks) - 1}")
    singles = [t for t in ranks if len(t) == 1]
    if len(singles) != 256:
        raise TokenizerError(f"{path}: expected all 256 single-byte tokens, found {len(singles)}")
    tok = cls(pattern=pattern)
    tok.vocab = {r: t for t, r in ranks.items()}
    tok.merges = {}
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(token) > 1:
            # a token BPE cannot build from lower ranks (Llama 3 has a few added by hand)
            # stays a base token: the whole-chunk lookup still finds it, as in tiktoken
            pair = _recover_merge(ranks, token, rank)
            if pair is not None:
                tok.merges[(ranks[pair[0]], ranks[pair[1]])] = rank
    tok.bpe_mode = "ranks"
    tok._after_load()
    if special_tokens:
        tok.register_special_tokens(special_tokens)
    return tok


# Meta's layouts of Llama 3's 256 special tokens, ids num_base_tokens + position.
# "3": meta-llama/llama3 llama/tokenizer.py; "3.1" and "3.2": meta-llama/llama-models
# (models/llama3_1/api/tokenizer.py, models/llama3/tokenizer.py). The ids a chat needs
# (begin/end of text, start/end header, eot) sit at the same positions in all three.
_LLAMA3_NAMED = {
    "3": [
        "<|begin_of_text|>", "<|end_of_text|>",
        "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
        "<|reserved_special_token_2|>", "<|reserved_special_token_3|>",
        "<|start_header_id|>", "<|end_header_id|>",
        "<|reserved_special_token_4|>", "<|eot_id|>",
    ],
    "3.1": [
        "<|begin_of_text|>", "<|end_of_text|>",
        "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
        "<|finetune_right_pad_id|>", "<|step_id|>",
        "<|start_header_id|>", "<|end_header_id|>",
        "<|eom_id|>", "<|eot_id|>", "<|python_tag|>",
    ],
}  # fmt: skip
_LLAMA3_NAMED["3.2"] = [*_LLAMA3_NAMED["3.1"], "<|image|>"]
LLAMA3_NUM_SPECIAL_TOKENS = 256


def llama3_special_tokens(num_base_tokens: int, version: str = "3") -> dict[str, int]:
    """Llama 3's special tokens: the named ones, then reserved ones up to 256 in all."""
    named = _LLAMA3_NAMED.get(version)
    if named is None:
        raise TokenizerError(
            f"unknown Llama 3 tokenizer version {version!r}; use one of {sorted(_LLAMA3_NAMED)}"
        )
    first_reserved = sum(t.startswith("<|reserved_special_token_") for t in named)
    names = named + [
        f"<|reserved_special_token_{first_reserved + i}|>"
        for i in range(LLAMA3_NUM_SPECIAL_TOKENS - len(named))
    ]
    return {name: num_base_tokens + i for i, name in enumerate(names)}


def load_llama3_tokenizer(cls, path, version: str = "3"):
    """Llama 3's ``tokenizer.model``: a .tiktoken rank file, its split pattern, 256 specials."""
    tok = load_tiktoken(cls, path, LLAMA3_SPLIT_PATTERN, {})
    tok.register_special_tokens(llama3_special_tokens(len(tok.vocab), version))
    return tok


def _recover_merge(
    ranks: dict[bytes, int], token: bytes, max_rank: int
) -> tuple[bytes, bytes] | None:
    """The two tokens BPE joins last to make ``token``, using only ranks below its own."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 2:
        best_i, best_rank = None, max_rank
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < best_rank:
                best_i, best_rank = i, r
        if best_i is None:
            break
        parts[best_i : best_i + 2] = [parts[best_i] + parts[best_i + 1]]
    return (parts[0], parts[1]) if len(parts) == 2 else None


def save_tiktoken(tok, path) -> None:
    """Write ``base64(token bytes) id`` lines (specials excluded), loadable by tiktoken."""
    seen: dict[bytes, int] = {}
    for idx in sorted(tok.vocab):
        b = tok.vocab[idx]
        if b in seen:
            raise TokenizerError(
                f"tokens {seen[b]} and {idx} have the same bytes {b!r}; a .tiktoken file needs "
                "unique tokens"
            )
        seen[b] = idx
    if sorted(seen.values()) != list(range(len(seen))):
        raise TokenizerError("a .tiktoken file needs contiguous ids 0..N-1 for regular tokens")
    with atomic_write(path) as f:
        for b, idx in seen.items():
            f.write(f"{base64.b64encode(b).decode()} {idx}\n")
