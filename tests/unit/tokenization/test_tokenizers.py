"""Tokenizers against their oracles: tiktoken's GPT-2 ids, the textbook BPE trainer."""

from __future__ import annotations

import json

import pytest
import tiktoken
import tiktoken.load
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from legollm.core.exceptions import TokenizerError
from legollm.core.tokenization import (
    GPT2_SPLIT_PATTERN,
    GPT4_SPLIT_PATTERN,
    NaiveBPETokenizer,
    RegexBPETokenizer,
    SimpleTokenizer,
)
from legollm.core.tokenization.regex_bpe import _split_for_workers
from legollm.core.tokenization.training import reference_train_merges, train_merges

TEXT_FILES = ["the_verdict.txt", "tiny_shakespeare.txt", "python_docs.txt"]


@pytest.fixture(scope="module")
def gpt2_pair(shared_data):
    d = shared_data / "gpt2"
    ours = RegexBPETokenizer.from_gpt2_files(d / "encoder.json", d / "vocab.bpe")
    ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(
        str(d / "vocab.bpe"), str(d / "encoder.json")
    )
    oracle = tiktoken.Encoding(
        name="gpt2",
        pat_str=GPT2_SPLIT_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 50256},
    )
    return ours, oracle


@pytest.mark.parametrize("name", TEXT_FILES)
def test_gpt2_ids_equal_tiktoken_on_shared_text(gpt2_pair, shared_data, name):
    ours, oracle = gpt2_pair
    text = (shared_data / "text" / name).read_text(encoding="utf-8")
    if name == "python_docs.txt":
        text = text[:2_000_000]  # 2 MB keeps the suite fast; the benchmark covers all of it
    assert ours.encode_ordinary(text) == oracle.encode_ordinary(text)
    mixed = text[:5000] + "<|endoftext|>" + text[5000:10000]
    assert ours.encode(mixed, allowed_special="all") == oracle.encode(mixed, allowed_special="all")


unicode_text = st.lists(
    st.one_of(
        st.text(st.characters(codec="utf-8"), max_size=8),
        st.sampled_from(
            [" ", "\t", "\n", "\r\n", "'s", "'ll", "😀", "👍🏽", "中文", "é", "e\u0301"]
        ),
        st.just("<|endoftext|>"),
        st.text(" \n", min_size=2, max_size=12),
        st.text("0123456789", min_size=1, max_size=12),
    ),
    max_size=30,
).map("".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(unicode_text)
def test_gpt2_matches_tiktoken_on_random_unicode(gpt2_pair, text):
    ours, oracle = gpt2_pair
    assert ours.encode_ordinary(text) == oracle.encode_ordinary(text)
    ids = ours.encode(text, allowed_special="all")
    assert ids == oracle.encode(text, allowed_special="all")
    assert ours.decode(ids) == text


def test_encode_batch_equals_one_by_one(gpt2_pair, shared_data):
    ours, _ = gpt2_pair
    text = (shared_data / "text" / "tiny_shakespeare.txt").read_text(encoding="utf-8")
    docs = text.split("\n\n")
    assert ours.encode_batch(docs, num_workers=2) == [ours.encode(d) for d in docs]


def test_fast_trainer_equals_textbook_trainer(shared_data):
    text = (shared_data / "text" / "the_verdict.txt").read_text(encoding="utf-8")
    for pattern in (GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN):
        tok = RegexBPETokenizer(pattern)
        counts = [(c.encode(), n) for c, n in tok.chunk_counts(text, num_workers=1).items()]
        assert train_merges(counts, 400) == reference_train_merges(counts, 400)


def test_parallel_chunk_counts_equal_serial(shared_data):
    text = (shared_data / "text" / "tiny_shakespeare.txt").read_text(encoding="utf-8") * 2
    for pattern in (GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN):
        tok = RegexBPETokenizer(pattern)
        assert "".join(_split_for_workers(text, 3)) == text
        assert tok.chunk_counts(text, num_workers=2) == tok.chunk_counts(text, num_workers=1)


def test_textbook_merges_on_a_hand_checked_example():
    # "aaabdaaabac" (the Wikipedia example): (a,a) occurs 4 times -> Z=256, giving
    # "ZabdZabac"; (Z,a) and (a,b) now tie at 2 and the smaller pair (a,b) wins -> Y=257,
    # giving "ZYdZYac"; then (Z,Y) occurs twice -> 258.
    tok = NaiveBPETokenizer()
    tok.train("aaabdaaabac", 256 + 3)
    a, b = ord("a"), ord("b")
    assert tok.merges == {(a, a): 256, (a, b): 257, (256, 257): 258}
    assert tok.encode("aaabdaaabac") == [258, ord("d"), 258, a, ord("c")]


def test_naive_equals_regex_with_a_pattern_that_never_splits():
    text = "the cat sat on the mat; the cat ate the rat. " * 20
    naive, regex_tok = NaiveBPETokenizer(), RegexBPETokenizer(pattern=r"[\s\S]+")
    naive.train(text, 300)
    regex_tok.train(text, 300)
    assert naive.merges == regex_tok.merges
    assert naive.encode(text) == regex_tok.encode(text)


def test_training_is_deterministic_and_round_trips(tmp_path, shared_data):
    text = (shared_data / "text" / "the_verdict.txt").read_text(encoding="utf-8")
    t1, t2 = RegexBPETokenizer(GPT2_SPLIT_PATTERN), RegexBPETokenizer(GPT2_SPLIT_PATTERN)
    t1.train(text, 512)
    t2.train(text, 512)
    assert t1.merges == t2.merges
    t1.register_special_tokens({"<|endoftext|>": 512})
    path = t1.save(tmp_path / "tok")
    assert path.with_suffix(".vocab").read_text(encoding="utf-8").count("\n") == 513
    loaded = RegexBPETokenizer.load(path)
    s = text[:3000] + "<|endoftext|>" + "naïve 😀"
    assert loaded.encode(s) == t1.encode(s) and loaded.decode(loaded.encode(s)) == s
    assert loaded.eot_token_id == 512 and loaded.vocab_size == 513


def test_gpt2_tokenizer_saves_and_loads_with_its_byte_permutation(gpt2_pair, tmp_path):
    ours, oracle = gpt2_pair
    loaded = RegexBPETokenizer.load(ours.save(tmp_path / "gpt2.json"))
    s = "Hello world! ÄÖÜ 12345 <|endoftext|>"
    assert loaded.encode(s) == oracle.encode(s, allowed_special="all")


def test_tiktoken_export_loads_in_tiktoken_and_back(tmp_path, shared_data):
    text = (shared_data / "text" / "tiny_shakespeare.txt").read_text(encoding="utf-8")[:200_000]
    tok = RegexBPETokenizer(GPT4_SPLIT_PATTERN)
    tok.train(text, 600)
    path = tmp_path / "tok.tiktoken"
    tok.save_tiktoken(path)
    specials = {"<|endoftext|>": 600}
    oracle = tiktoken.Encoding(
        name="t",
        pat_str=GPT4_SPLIT_PATTERN,
        mergeable_ranks=tiktoken.load.load_tiktoken_bpe(str(path)),
        special_tokens=specials,
    )
    back = RegexBPETokenizer.from_tiktoken(path, GPT4_SPLIT_PATTERN, specials)
    sample = text[-20000:] + "<|endoftext|> Ünïcödé 😀"
    assert back.encode(sample) == oracle.encode(sample, allowed_special="all")


def test_decode_of_split_utf8_gives_replacement_chars():
    tok = RegexBPETokenizer()
    ids = tok.encode("😀")  # 4 byte tokens, no merges
    assert tok.decode(ids[:2]) == "\ufffd"
    assert tok.decode(ids) == "😀"


def test_simple_tokenizer_unknown_words_and_round_trip():
    tok = SimpleTokenizer()
    tok.train("Hello, world. Is this-- a test?")
    ids = tok.encode("Hello, world. Is this a test?")
    assert tok.decode(ids) == "Hello, world. Is this a test?"
    assert tok.encode("Hello, moon.")[2] == tok.special_tokens["<|unk|>"]


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda: RegexBPETokenizer().train("abc", 255), "at least 256"),
        (lambda: RegexBPETokenizer().train("", 300), "empty text"),
        (lambda: RegexBPETokenizer().decode([999]), "unknown token id 999"),
        (lambda: RegexBPETokenizer().register_special_tokens({"<s>": 65}), "already"),
        (lambda: RegexBPETokenizer.load("/nonexistent/tok.json"), "/nonexistent/tok.json"),
    ],
)
def test_bad_input_raises_tokenizer_error(action, message):
    with pytest.raises(TokenizerError, match=message):
        action()


def test_corrupt_file_names_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "legollm-bpe", "version": 1, "merges": "x"}))
    with pytest.raises(TokenizerError, match="bad.json"):
        RegexBPETokenizer.load(bad)
    (tmp_path / "enc.json").write_text("{not json")
    with pytest.raises(TokenizerError, match="enc.json"):
        RegexBPETokenizer.from_gpt2_files(tmp_path / "enc.json", tmp_path / "vocab.bpe")


def test_disallowed_special_raises_when_asked():
    tok = RegexBPETokenizer()
    tok.register_special_tokens({"<|endoftext|>": 256})
    with pytest.raises(TokenizerError, match="special token"):
        tok.encode("a <|endoftext|>", allowed_special="none_raise")
    assert 256 not in tok.encode("a <|endoftext|>", allowed_special="none")


LONG_CHUNKS = [" " * 1000, "a" * 700, "ab" * 400, "=" * 300, "xé" * 200, "1" * 600, "\n" * 500]


@pytest.mark.parametrize("threshold", [0, 256, 10**9])
def test_long_chunks_match_tiktoken(gpt2_pair, shared_data, monkeypatch, threshold):
    # chunks over _LONG_CHUNK bytes merge all occurrences of a pair per pass, shorter
    # ones one pair at a time; force each path on every chunk: the ids must not change
    import legollm.core.tokenization.regex_bpe as rb

    monkeypatch.setattr(rb, "_LONG_CHUNK", threshold)
    _, oracle = gpt2_pair
    d = shared_data / "gpt2"
    ours = RegexBPETokenizer.from_gpt2_files(d / "encoder.json", d / "vocab.bpe")  # cold cache
    for s in LONG_CHUNKS:
        for text in (s, s[:255], s[:257], "hello " + s + " world, it's 1234 naïve"):
            assert ours.encode_ordinary(text) == oracle.encode_ordinary(text), text[:20]


@pytest.mark.parametrize("threshold", [0, 10**9])
def test_the_rank_rule_on_both_merge_paths_matches_tiktoken(gpt2_pair, tmp_path, monkeypatch,
                                                             threshold):  # fmt: skip
    """GPT-2's ranks read as a .tiktoken file take the byte path of the one merge loop
    (tiktoken's rule); long and short chunks must give tiktoken's ids there too."""
    import legollm.core.tokenization.regex_bpe as rb

    monkeypatch.setattr(rb, "_LONG_CHUNK", threshold)
    ours, oracle = gpt2_pair
    ours.save_tiktoken(tmp_path / "gpt2.tiktoken")
    ranked = RegexBPETokenizer.from_tiktoken(tmp_path / "gpt2.tiktoken", GPT2_SPLIT_PATTERN)
    assert ranked.bpe_mode == "ranks"
    for s in LONG_CHUNKS:
        text = "hello " + s + " world, it's 1234 naïve"
        assert ranked.encode_ordinary(text) == oracle.encode_ordinary(text), s[:20]


@pytest.mark.parametrize("threshold", [0, 10**9])
def test_both_merge_paths_equal_the_textbook_loop(shared_data, monkeypatch, threshold):
    import legollm.core.tokenization.regex_bpe as rb

    monkeypatch.setattr(rb, "_LONG_CHUNK", threshold)
    text = (shared_data / "text" / "the_verdict.txt").read_text(encoding="utf-8")
    tok = RegexBPETokenizer(GPT2_SPLIT_PATTERN)
    tok.train(text + " ".join(LONG_CHUNKS), 600)
    naive = NaiveBPETokenizer()
    naive.merges, naive.vocab = tok.merges, tok.vocab
    for chunk in [*LONG_CHUNKS, *tok.chunk_counts(text, num_workers=1)]:
        assert tok._encode_chunk(chunk.encode("utf-8")) == naive.encode(chunk)
