"""A tokenizer that cannot reach the vocab size asked for says so, and an absurd
size is refused before any work.

The oracle is counting: when every adjacent pair of a chunk is distinct, each merge
joins exactly one pair and shortens that chunk by one token, so a chunk of n bytes
gives exactly n - 1 merges and then nothing is left to merge.
"""

from __future__ import annotations

import warnings

import pytest

from legollm.cli.main import main
from legollm.core.exceptions import TokenizerError
from legollm.core.tokenization import RegexBPETokenizer
from legollm.core.tokenization.naive_bpe import NaiveBPETokenizer
from legollm.core.tokenization.training import VocabularyShortWarning

DISTINCT = "abcdefghij"  # 10 distinct bytes: 9 pairs, each once
CHUNKS = "ab cd ef"  # chunks "ab", " cd", " ef" (distinct pairs): 1 + 2 + 2 merges


@pytest.mark.parametrize(
    ("make", "text", "reachable"),
    [(NaiveBPETokenizer, DISTINCT, 256 + 9), (RegexBPETokenizer, CHUNKS, 256 + 5)],
)
def test_short_vocabulary_is_always_reported(make, text, reachable):
    tok = make()
    with pytest.warns(VocabularyShortWarning) as caught:
        tok.train(text, 300)  # not verbose: the warning comes anyway
    assert tok.vocab_size == reachable
    msg = str(caught[0].message)
    assert f"{reachable:,} tokens, not the 300 asked for" in msg
    assert "no pair is left to merge" in msg


@pytest.mark.parametrize(
    ("make", "text", "reachable"),
    [(NaiveBPETokenizer, DISTINCT, 256 + 9), (RegexBPETokenizer, CHUNKS, 256 + 5)],
)
def test_no_warning_when_the_vocabulary_is_reached(make, text, reachable):
    with warnings.catch_warnings():
        warnings.simplefilter("error", VocabularyShortWarning)
        make().train(text, reachable)


@pytest.mark.parametrize("make", [NaiveBPETokenizer, RegexBPETokenizer])
def test_absurd_vocab_size_is_refused_up_front(make):
    with pytest.raises(TokenizerError, match="1,000,000,000 is more than"):
        make().train(DISTINCT, 10**9)


def test_cli_warns_on_one_line_and_puts_specials_after_the_learned_tokens(tmp_path, capsys):
    src, out = tmp_path / "a.txt", tmp_path / "tok.json"
    src.write_text(CHUNKS)
    assert main(["tokenizer", "train", "--input", str(src), "--vocab-size", "5000", "--output", str(out)]) == 0  # fmt: skip
    err = capsys.readouterr().err
    assert err.startswith("warning: ") and err.count("\n") == 1
    assert "261 tokens, not the 5,000 asked for" in err
    tok = RegexBPETokenizer.load(out)
    assert tok.eot_token_id == 261 and tok.vocab_size == 262  # no unused ids in between
    assert tok.decode(tok.encode(CHUNKS)) == CHUNKS

    assert main(["tokenizer", "train", "--input", str(src), "--vocab-size", str(10**9), "--output", str(out)]) == 1  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pick a smaller one" in err
