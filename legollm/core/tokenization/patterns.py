"""Pre-tokenization split patterns.

BPE never merges across the chunks these regexes cut, so "dog." and "dog!" share
the token for "dog". The GPT-2 pattern is the one OpenAI published with GPT-2;
the GPT-4 pattern (cl100k_base) also splits digits into runs of at most three
and treats case-insensitive contractions. Llama 3 (Meta's ``llama/tokenizer.py``)
uses the original cl100k_base pattern: the same pieces as GPT-4's, written with
plain instead of possessive quantifiers, and ``\\s*[\\r\\n]+`` for newline runs.
"""

GPT2_SPLIT_PATTERN = (
    r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
)

GPT4_SPLIT_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*|"""
    r"""\s*[\r\n]|\s+(?!\S)|\s+"""
)

LLAMA3_SPLIT_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
    r"""\s*[\r\n]+|\s+(?!\S)|\s+"""
)

PATTERNS = {"gpt2": GPT2_SPLIT_PATTERN, "gpt4": GPT4_SPLIT_PATTERN, "llama3": LLAMA3_SPLIT_PATTERN}
