"""The textbook byte-level BPE: no pre-splitting, no special tokens.

Training counts every adjacent pair in the whole byte sequence, merges the most
frequent into a new token, and repeats: O(merges x text), which is the point:
it is the algorithm in its plainest form. :class:`RegexBPETokenizer` adds the
pre-split, special tokens and the fast trainer.
"""

from __future__ import annotations

from legollm.core.exceptions import TokenizerError
from legollm.core.tokenization.base import Tokenizer, _LoadDescriptor, check_vocab_size
from legollm.core.tokenization.training import merge_pair, reference_train_merges, warn_if_short


class NaiveBPETokenizer(Tokenizer):
    load = _LoadDescriptor()

    def train(self, text: str, vocab_size: int, verbose: bool = False) -> None:
        num_merges = check_vocab_size(vocab_size)
        if not text:
            raise TokenizerError("cannot train a tokenizer on empty text")
        merges = reference_train_merges([(text.encode("utf-8"), 1)], num_merges)
        self.merges, self.vocab = {}, {i: bytes([i]) for i in range(256)}
        for pair, idx in merges:
            self.merges[pair] = idx
            self.vocab[idx] = self.vocab[pair[0]] + self.vocab[pair[1]]
            if verbose:
                print(f"merge {idx - 255}/{num_merges}: {pair} -> {idx} {self.vocab[idx]!r}")
        warn_if_short(vocab_size, len(self.vocab), "the whole text")

    def encode(self, text: str) -> list[int]:
        ids = list(text.encode("utf-8"))
        while len(ids) >= 2:
            pairs = set(zip(ids, ids[1:], strict=False))
            pair = min(pairs, key=lambda p: self.merges.get(p, float("inf")))
            if pair not in self.merges:
                break
            ids = merge_pair(ids, pair, self.merges[pair])
        return ids

    encode_ordinary = encode
