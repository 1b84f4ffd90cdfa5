"""Tokenizers, from a word-level vocabulary to tiktoken-exact byte-level BPE."""

from legollm.core.tokenization.naive_bpe import NaiveBPETokenizer
from legollm.core.tokenization.patterns import (
    GPT2_SPLIT_PATTERN,
    GPT4_SPLIT_PATTERN,
    LLAMA3_SPLIT_PATTERN,
)
from legollm.core.tokenization.regex_bpe import RegexBPETokenizer
from legollm.core.tokenization.simple import SimpleTokenizer

__all__ = [
    "GPT2_SPLIT_PATTERN",
    "GPT4_SPLIT_PATTERN",
    "LLAMA3_SPLIT_PATTERN",
    "NaiveBPETokenizer",
    "RegexBPETokenizer",
    "SimpleTokenizer",
]
