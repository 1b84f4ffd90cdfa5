"""Byte-level BPE with a pre-split regex and special tokens (GPT-2/GPT-4 style).

Encoding is a pipeline: special tokens are cut out first (when allowed), the
regex splits the rest into chunks, and each chunk is merged independently. Real
text repeats its chunks ("the", " of", "\\n"), so a chunk -> ids cache answers most
of them; a miss runs the merges in rank order on that chunk alone.

Published vocabularies come with one of two merge rules, and ``bpe_mode`` says which:

- ``"merges"`` (our trainer, Hugging Face BPE): only the listed pairs merge, the pair
  learned first wins. ``ignore_merges`` (Hugging Face's name) first looks the whole
  chunk up in the vocabulary, as Llama 3's tokenizer.json asks.
- ``"ranks"`` (tiktoken): a chunk that is a token is that token; otherwise any two
  neighbours whose concatenation is a token may merge, the lowest id first. This is
  how a .tiktoken rank file (which lists no merges) is meant to be read.

Example::

    >>> tok = RegexBPETokenizer(pattern=GPT2_SPLIT_PATTERN)
    >>> tok.train("hello hello hello world", vocab_size=260)
    >>> tok.decode(tok.encode("hello world"))
    'hello world'
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import unicodedata
from array import array
from collections import Counter
from itertools import chain, repeat

import regex

from legollm.core.exceptions import TokenizerError
from legollm.core.tokenization.base import Tokenizer, _LoadDescriptor, check_vocab_size
from legollm.core.tokenization.hf_json import load_tokenizer_json
from legollm.core.tokenization.patterns import GPT4_SPLIT_PATTERN
from legollm.core.tokenization.pretrained import (
    load_gpt2_files,
    load_llama3_tokenizer,
    load_tiktoken,
    save_tiktoken,
)
from legollm.core.tokenization.training import train_merges, warn_if_short

_CACHE_LIMIT = 500_000  # distinct chunks kept; cleared when full so memory stays bounded
_LONG_CHUNK = 256  # bytes; longer chunks merge all occurrences of a pair per pass
_NO_MERGE = 1 << 62  # rank of a pair that does not merge (above every id)


class RegexBPETokenizer(Tokenizer):
    load = _LoadDescriptor()

    def __init__(self, pattern: str | None = None) -> None:
        super().__init__(GPT4_SPLIT_PATTERN if pattern is None else pattern)
        self.bpe_mode = "merges"  # or "ranks" (tiktoken's rule), see the module docstring
        self.ignore_merges = False  # look whole chunks up before merging ("merges" mode)
        self.normalizer: str | None = None  # "NFC": text is NFC-normalised first (Qwen2)
        self._after_load()

    def _options(self) -> dict:
        return {
            "bpe_mode": self.bpe_mode,
            "ignore_merges": self.ignore_merges,
            "normalizer": self.normalizer,
        }

    def _set_options(self, data: dict) -> None:
        self.bpe_mode = data.get("bpe_mode", "merges")
        self.ignore_merges = bool(data.get("ignore_merges", False))
        self.normalizer = data.get("normalizer")

    def _after_load(self) -> None:
        try:
            self._compiled = regex.compile(self.pattern)
        except regex.error as e:
            raise TokenizerError(f"invalid split pattern {self.pattern!r}: {e}") from e
        if self.bpe_mode not in ("merges", "ranks"):
            raise TokenizerError(f"bpe_mode must be 'merges' or 'ranks', got {self.bpe_mode!r}")
        if self.normalizer not in (None, "NFC"):
            raise TokenizerError(f"normalizer must be None or 'NFC', got {self.normalizer!r}")
        singles = {b[0] for b in self.vocab.values() if len(b) == 1}
        missing = [b for b in range(256) if b not in singles]
        if missing:
            raise TokenizerError(
                f"the vocabulary lacks {len(missing)} of the 256 single-byte tokens "
                f"(e.g. byte {missing[0]}); byte-level BPE needs all of them"
            )
        self._byte_ids = [0] * 256  # byte value -> id of its single-byte token (lowest id)
        for idx in sorted(self.vocab, reverse=True):
            b = self.vocab[idx]
            if len(b) == 1:
                self._byte_ids[b[0]] = idx
        # bytes -> id, for whole-chunk lookups and tiktoken's rank rule
        self._token_ids = {b: i for i, b in sorted(self.vocab.items(), reverse=True)}
        if self.bpe_mode == "ranks":
            encode_chunk = self._encode_chunk_ranks
        elif self.ignore_merges:
            encode_chunk = self._encode_chunk_whole_first
        else:
            encode_chunk = self._encode_chunk
        self._special_re = None
        if self.special_tokens:
            alts = sorted(self.special_tokens, key=len, reverse=True)
            self._special_re = regex.compile("(" + "|".join(map(regex.escape, alts)) + ")")
        self._cache = _ChunkCache(encode_chunk)

    def register_special_tokens(self, special_tokens: dict[str, int]) -> None:
        super().register_special_tokens(special_tokens)
        self._after_load()

    def __getstate__(self):  # worker processes rebuild the compiled regexes
        state = self.__dict__.copy()
        for key in ("_compiled", "_special_re", "_cache"):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._after_load()

    # -- training -------------------------------------------------------------
    def chunk_counts(self, text: str, num_workers: int | None = None) -> Counter[str]:
        """How often each pre-split chunk occurs; large texts are split across processes."""
        workers = num_workers or os.cpu_count() or 1
        if workers <= 1 or len(text) < 2_000_000:
            return Counter(self._compiled.findall(text))
        pieces = _split_for_workers(text, workers)
        with mp.get_context("fork").Pool(len(pieces)) as pool:
            parts = pool.map(_count_chunks, [(self.pattern, p) for p in pieces])
        total: Counter[str] = Counter()
        for part in parts:
            total.update(part)
        return total

    def train(
        self, text: str, vocab_size: int, verbose: bool = False, num_workers: int | None = None
    ) -> None:
        """Learn ``vocab_size - 256`` merges from ``text`` (special tokens are registered after)."""
        num_merges = check_vocab_size(vocab_size)
        if not text:
            raise TokenizerError("cannot train a tokenizer on empty text")
        t0 = time.perf_counter()
        counts = self.chunk_counts(text, num_workers)
        byte_counts = [(chunk.encode("utf-8"), n) for chunk, n in counts.items()]
        if verbose:
            print(f"pre-split: {len(counts):,} distinct chunks in {time.perf_counter() - t0:.2f}s")
        progress = _progress_printer(num_merges) if verbose else None  # merges done, merges/s
        merges = train_merges(byte_counts, num_merges, on_progress=progress)
        self.merges = {}
        self.vocab = {i: bytes([i]) for i in range(256)}
        for pair, idx in merges:
            self.merges[pair] = idx
            self.vocab[idx] = self.vocab[pair[0]] + self.vocab[pair[1]]
        self.special_tokens, self.inverse_special_tokens = {}, {}
        # merges learned here follow our own rule, whatever file this tokenizer came from
        self.bpe_mode, self.ignore_merges, self.normalizer = "merges", False, None
        self._after_load()
        if verbose:
            dt = time.perf_counter() - t0
            print(f"trained {len(merges):,} merges in {dt:.2f}s (vocab size {self.vocab_size:,})")
        warn_if_short(vocab_size, self.vocab_size, "every pre-split chunk of the text")

    # -- encoding -------------------------------------------------------------
    # Both rules run one merge loop (_merge_by_rank): they differ only in what a chunk's
    # parts are and how a pair is ranked.
    def _encode_chunk(self, chunk: bytes) -> list[int]:
        """Our trainer's rule: the adjacent pair with the lowest merge id was learned first."""
        ids = [self._byte_ids[b] for b in chunk]
        return _merge_by_rank(ids, self.merges, by_bytes=False)

    def _encode_chunk_whole_first(self, chunk: bytes) -> list[int]:
        idx = self._token_ids.get(chunk)
        return [idx] if idx is not None else self._encode_chunk(chunk)

    def _encode_chunk_ranks(self, chunk: bytes) -> list[int]:
        """tiktoken's rule: merge the neighbours whose concatenation has the lowest id."""
        get = self._token_ids.get
        idx = get(chunk)
        if idx is not None:
            return [idx]
        parts = [chunk[i : i + 1] for i in range(len(chunk))]
        parts = _merge_by_rank(parts, self._token_ids, by_bytes=True)
        return [self._token_ids[p] for p in parts]

    def encode_ordinary(self, text: str) -> list[int]:
        """Encode ``text`` ignoring special tokens (their strings are plain text here)."""
        if self.normalizer is not None:
            text = unicodedata.normalize(self.normalizer, text)
        cache = self._cache
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        # cache lookups and the concatenation both run in C; misses call _ChunkCache.__missing__
        return list(chain.from_iterable(map(cache.__getitem__, self._compiled.findall(text))))

    def encode(self, text: str, allowed_special: str | set[str] = "all") -> list[int]:
        """Encode ``text``; ``allowed_special`` is "all", "none", "none_raise" or a set.

        "none_raise" raises when the text contains a registered special token's
        string (as tiktoken does by default); "none" encodes such strings as text.
        """
        if allowed_special == "all":
            special = self.special_tokens
        elif allowed_special in ("none", "none_raise"):
            special = {}
            if allowed_special == "none_raise" and self._special_re is not None:
                found = self._special_re.search(text)
                if found:
                    raise TokenizerError(
                        f"text contains the special token {found.group()!r}; pass "
                        "allowed_special='all' to encode it as one token or 'none' as plain text"
                    )
        elif isinstance(allowed_special, set | frozenset | list | tuple):
            unknown = set(allowed_special) - set(self.special_tokens)
            if unknown:
                raise TokenizerError(f"not registered as special tokens: {sorted(unknown)}")
            special = {s: self.special_tokens[s] for s in allowed_special}
        else:
            raise TokenizerError(
                f"allowed_special must be 'all', 'none', 'none_raise' or a set, got {allowed_special!r}"
            )
        if not special:
            return self.encode_ordinary(text)
        if self.normalizer is not None:  # special tokens are ASCII: normalising first is safe
            text = unicodedata.normalize(self.normalizer, text)
        if special is self.special_tokens:
            splitter = self._special_re  # compiled once in _after_load
        else:
            alts = sorted(special, key=len, reverse=True)
            splitter = regex.compile("(" + "|".join(map(regex.escape, alts)) + ")")
        out: list[int] = []
        for i, part in enumerate(splitter.split(text)):
            if i % 2:  # odd parts are the captured special tokens
                out.append(special[part])
            elif part:
                out.extend(self.encode_ordinary(part))
        return out

    def encode_batch(
        self,
        texts: list[str],
        num_workers: int | None = None,
        allowed_special: str | set[str] = "all",
    ) -> list[list[int]]:
        """Encode many texts, spread over ``num_workers`` processes (default: every core)."""
        workers = min(num_workers or os.cpu_count() or 1, max(1, len(texts)))
        if workers <= 1 or sum(map(len, texts)) < 100_000:
            return [self.encode(t, allowed_special) for t in texts]
        return [ids.tolist() for ids in self.encode_batch_arrays(texts, workers, allowed_special)]

    def encode_batch_arrays(
        self,
        texts: list[str],
        num_workers: int | None = None,
        allowed_special: str | set[str] = "all",
    ) -> list[array]:
        """``encode_batch`` as compact ``array("I")`` per text: what bulk writers (data
        prepare) want, without building a Python int for every token."""
        workers = min(num_workers or os.cpu_count() or 1, max(1, len(texts)))
        if workers <= 1 or sum(map(len, texts)) < 100_000:
            return [array("I", self.encode(t, allowed_special)) for t in texts]
        # contiguous slices keep the order and give each worker a warm cache
        step = -(-len(texts) // (workers * 4))
        slices = [texts[i : i + step] for i in range(0, len(texts), step)]
        with mp.get_context("fork").Pool(workers, _init_worker, (self, allowed_special)) as pool:
            parts = pool.map(_encode_slice, slices)
        return [ids for part in parts for ids in part]

    # -- pretrained ranks -----------------------------------------------------
    @classmethod
    def from_gpt2_files(cls, encoder_json, vocab_bpe) -> RegexBPETokenizer:
        return load_gpt2_files(cls, encoder_json, vocab_bpe)

    @classmethod
    def from_tiktoken(
        cls, path, pattern: str, special_tokens: dict[str, int] | None = None
    ) -> RegexBPETokenizer:
        return load_tiktoken(cls, path, pattern, special_tokens or {})

    @classmethod
    def from_llama3(cls, path, version: str = "3") -> RegexBPETokenizer:
        """Llama 3's ``tokenizer.model`` with Meta's split pattern and 256 special tokens.

        ``version`` picks the names of the special tokens: "3" (Llama 3), "3.1"
        (adds <|eom_id|>, <|python_tag|>, ...), "3.2" (adds <|image|>).
        """
        return load_llama3_tokenizer(cls, path, version)

    @classmethod
    def from_tokenizer_json(cls, path) -> RegexBPETokenizer:
        """A Hugging Face ``tokenizer.json`` with a byte-level BPE model (GPT-2, Llama 3, Qwen)."""
        return load_tokenizer_json(cls, path)

    def save_tiktoken(self, path) -> None:
        save_tiktoken(self, path)


def _merge_by_rank(parts: list, ranks: dict, by_bytes: bool) -> list:
    """BPE on one chunk, for both rules: merge the adjacent pair of lowest rank
    (leftmost on ties) until no pair has a rank.

    Our rule (``by_bytes=False``): parts are ids, a pair ``(a, b)`` is ranked by its merge
    id and becomes that id. tiktoken's rule (``by_bytes=True``): parts are bytes, a pair
    is ranked by the id of ``a + b`` and becomes ``a + b``.

    The ranks of neighbouring pairs live in a list, so after a merge only the two pairs
    around it are ranked again and min()/index() find the next one in C. Long chunks
    (runs of spaces, long identifiers) instead merge every occurrence of the best pair
    per pass, which gives the same parts without the quadratic cost.
    """
    if len(parts) > _LONG_CHUNK:
        return _merge_by_rank_long(parts, ranks, by_bytes)
    get = ranks.get
    pairs = (
        map(bytes.__add__, parts, parts[1:]) if by_bytes else zip(parts, parts[1:], strict=False)
    )
    pair_ranks = list(map(get, pairs, repeat(_NO_MERGE)))
    while pair_ranks:
        best = min(pair_ranks)
        if best == _NO_MERGE:
            break
        i = pair_ranks.index(best)
        merged = parts[i] + parts[i + 1] if by_bytes else best
        parts[i : i + 2] = (merged,)
        del pair_ranks[i]
        if i < len(pair_ranks):
            right = parts[i + 1]
            pair_ranks[i] = get(merged + right if by_bytes else (merged, right), _NO_MERGE)
        if i:
            left = parts[i - 1]
            pair_ranks[i - 1] = get(left + merged if by_bytes else (left, merged), _NO_MERGE)
    return parts


def _merge_by_rank_long(parts: list, ranks: dict, by_bytes: bool) -> list:
    """Each pass merges every occurrence of the best pair, left to right."""
    while len(parts) >= 2:
        pairs = (
            map(bytes.__add__, parts, parts[1:])
            if by_bytes
            else zip(parts, parts[1:], strict=False)
        )
        pair_ranks = list(map(ranks.get, pairs, repeat(_NO_MERGE)))
        best = min(pair_ranks)
        if best == _NO_MERGE:
            break
        out, i, n = [], 0, len(parts)
        while i < n:
            if i + 1 < n and pair_ranks[i] == best:
                out.append(parts[i] + parts[i + 1] if by_bytes else best)
                i += 2
            else:
                out.append(parts[i])
                i += 1
        parts = out
    return parts


class _ChunkCache(dict):
    """chunk text -> token ids; a missing chunk is encoded once and remembered.

    Values are tuples, not lists: a tuple of ints drops out of the garbage collector's
    tracking after one pass, so tens of thousands of cached chunks do not make every
    collection during a long encode slower (about 6% of a cold 11 MB encode).
    """

    def __init__(self, encode_chunk) -> None:
        super().__init__()
        self.encode_chunk = encode_chunk

    def __missing__(self, chunk: str) -> tuple[int, ...]:
        ids = self[chunk] = tuple(self.encode_chunk(chunk.encode("utf-8")))
        return ids


# -- process-pool helpers (module level so they pickle) -------------------------
_worker_tok: RegexBPETokenizer | None = None
_worker_allowed: str | set[str] = "all"


def _init_worker(tok: RegexBPETokenizer, allowed_special) -> None:
    global _worker_tok, _worker_allowed
    _worker_tok, _worker_allowed = tok, allowed_special


def _encode_slice(texts: list[str]) -> list[array]:
    # compact int arrays pickle as one buffer each; lists of Python ints are slow to ship
    return [array("I", _worker_tok.encode(t, _worker_allowed)) for t in texts]


def _count_chunks(args: tuple[str, str]) -> Counter[str]:
    pattern, text = args
    return Counter(regex.compile(pattern).findall(text))


def _split_for_workers(text: str, parts: int) -> list[str]:
    """Cut at "\\n" between two non-space characters: no split pattern joins across that."""
    cuts, n = [0], len(text)
    for k in range(1, parts):
        i = text.find("\n", k * n // parts)
        while i != -1 and not (
            0 < i < n - 1 and not text[i - 1].isspace() and not text[i + 1].isspace()
        ):
            i = text.find("\n", i + 1)
        if i == -1 or i + 1 <= cuts[-1]:
            break
        cuts.append(i + 1)
    cuts.append(n)
    return [text[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if b > a]


def _progress_printer(total: int):
    last = [0.0]

    def report(done: int, elapsed: float) -> None:
        if done == total or elapsed - last[0] >= 1.0:
            last[0] = elapsed
            rate = done / elapsed if elapsed > 0 else 0.0
            print(f"  merges {done:,}/{total:,} ({rate:,.0f} merges/s)", flush=True)

    return report
