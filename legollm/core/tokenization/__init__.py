"""Tokenizers, from a word-level vocabulary to tiktoken-exact byte-level BPE.

- ``simple``: SimpleTokenizer, words and punctuation from a fixed vocabulary.
- ``base``: the Tokenizer base class (save / load, special tokens).
- ``training``: the BPE merge trainer (incremental pair counts) and a reference one.
- ``naive_bpe``: NaiveBPETokenizer, BPE on the raw bytes.
- ``regex_bpe``: RegexBPETokenizer, GPT-2/GPT-4 style BPE with a split regex and specials.
- ``patterns``: the GPT-2, GPT-4 and Llama 3 split patterns.
- ``pretrained``: OpenAI's GPT-2 files and .tiktoken rank files in and out.
- ``hf_json``: Hugging Face tokenizer.json files.
- ``specs``: the plain-data spec in meta.json and checkpoints that rebuilds a tokenizer.
"""

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
