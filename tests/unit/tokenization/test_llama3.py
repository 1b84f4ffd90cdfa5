"""Llama 3's tokenizer.model path against tiktoken, the library Meta's own tokenizer wraps.

No Llama 3 file is available offline, so we make one of the same kind: train a small
tokenizer with Llama 3's split pattern, export it as a .tiktoken rank file, and load
that file both ways. The special-token layout below is restated from Meta's source
(meta-llama/llama3 llama/tokenizer.py; meta-llama/llama-models for 3.1), not from ours.
"""

from __future__ import annotations

import base64

import pytest
import tiktoken
import tiktoken.load
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from legollm.core.exceptions import TokenizerError
from legollm.core.tokenization import LLAMA3_SPLIT_PATTERN, RegexBPETokenizer

VOCAB = 700


def meta_llama3_specials(num_base_tokens: int) -> dict[str, int]:
    names = [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|reserved_special_token_0|>",
        "<|reserved_special_token_1|>",
        "<|reserved_special_token_2|>",
        "<|reserved_special_token_3|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|reserved_special_token_4|>",
        "<|eot_id|>",
    ] + [f"<|reserved_special_token_{i}|>" for i in range(5, 256 - 5)]
    return {t: num_base_tokens + i for i, t in enumerate(names)}


@pytest.fixture(scope="module")
def llama3_pair(shared_data, tmp_path_factory):
    text = (shared_data / "text" / "tiny_shakespeare.txt").read_text(encoding="utf-8")
    trainer = RegexBPETokenizer(LLAMA3_SPLIT_PATTERN)
    trainer.train(text[:300_000], VOCAB)
    path = tmp_path_factory.mktemp("llama3") / "tokenizer.model"
    trainer.save_tiktoken(path)
    ours = RegexBPETokenizer.from_llama3(path)
    oracle = tiktoken.Encoding(
        name="llama3-small",
        pat_str=LLAMA3_SPLIT_PATTERN,
        mergeable_ranks=tiktoken.load.load_tiktoken_bpe(str(path)),
        special_tokens=meta_llama3_specials(VOCAB),
    )
    return ours, oracle


def test_pattern_is_metas_string():
    # Meta's pat_str, character for character (the regex is what decides the chunks)
    meta = (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+"
        r"[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    )
    assert meta == LLAMA3_SPLIT_PATTERN


def test_special_token_layout_matches_meta(llama3_pair):
    ours, _ = llama3_pair
    assert ours.special_tokens == meta_llama3_specials(VOCAB)
    assert ours.special_tokens["<|begin_of_text|>"] == VOCAB  # 128000 in the real file
    assert ours.special_tokens["<|eot_id|>"] == VOCAB + 9  # 128009
    assert ours.vocab_size == VOCAB + 256


@pytest.mark.parametrize("name", ["the_verdict.txt", "tiny_shakespeare.txt", "python_docs.txt"])
def test_ids_equal_tiktoken_on_shared_text(llama3_pair, shared_data, name):
    ours, oracle = llama3_pair
    text = (shared_data / "text" / name).read_text(encoding="utf-8")[:1_000_000]
    assert ours.encode_ordinary(text) == oracle.encode_ordinary(text)


def test_special_token_strings_equal_tiktoken(llama3_pair):
    ours, oracle = llama3_pair
    s = (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWHAT'S 12345 up?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nIt'll do.<|eot_id|><|end_of_text|>"
        "<|reserved_special_token_250|><|reserved_special_token_251|>"
    )
    ids = ours.encode(s, allowed_special="all")
    assert ids == oracle.encode(s, allowed_special="all")
    assert ours.decode(ids) == s
    # as plain text they are ordinary characters, as in tiktoken's encode_ordinary
    assert ours.encode_ordinary(s) == oracle.encode_ordinary(s)


def test_llama31_layout_from_llama_models():
    from legollm.core.tokenization.pretrained import llama3_special_tokens

    layout = llama3_special_tokens(128000, "3.1")
    assert len(layout) == 256 and sorted(layout.values()) == list(range(128000, 128256))
    named = {
        "<|finetune_right_pad_id|>": 128004,
        "<|start_header_id|>": 128006,
        "<|eom_id|>": 128008,
        "<|eot_id|>": 128009,
        "<|python_tag|>": 128010,
        "<|reserved_special_token_2|>": 128011,
        "<|reserved_special_token_246|>": 128255,
    }
    assert {k: layout[k] for k in named} == named
    with pytest.raises(TokenizerError, match="unknown Llama 3 tokenizer version"):
        llama3_special_tokens(128000, "4")


llama_text = st.lists(
    st.one_of(
        st.text(st.characters(codec="utf-8"), max_size=8),
        st.sampled_from(["'S", "'LL", "'Re", "'d", "\r\n", "\n\n\n", "  \n", "😀", "中文"]),
        st.text("0123456789", min_size=1, max_size=9),
        st.text(" \t\r\n", min_size=1, max_size=6),
    ),
    max_size=25,
).map("".join)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(llama_text)
def test_matches_tiktoken_on_random_unicode(llama3_pair, text):
    ours, oracle = llama3_pair
    assert ours.encode_ordinary(text) == oracle.encode_ordinary(text)


def test_rank_rule_handles_tokens_bpe_cannot_build(tmp_path):
    # A .tiktoken file may hold tokens whose bytes no lower-rank merge reaches (Llama 3
    # added some by hand). tiktoken emits them when a chunk equals them; so must we.
    ranks = {bytes([i]): i for i in range(256)}
    ranks[b"ab"] = 256
    ranks[b"xyz"] = 257  # no "xy" or "yz" token: unreachable by merging
    path = tmp_path / "odd.tiktoken"
    oracle = tiktoken.Encoding(
        name="odd", pat_str=LLAMA3_SPLIT_PATTERN, mergeable_ranks=ranks, special_tokens={}
    )
    path.write_text("".join(f"{base64.b64encode(t).decode()} {r}\n" for t, r in ranks.items()))
    ours = RegexBPETokenizer.from_tiktoken(path, LLAMA3_SPLIT_PATTERN)
    for s in ["xyz", "ab xyz abxyz", "xyzab"]:
        assert ours.encode_ordinary(s) == oracle.encode_ordinary(s)
    again = RegexBPETokenizer.load(ours.save(tmp_path / "odd.json"))
    assert again.encode_ordinary("ab xyz") == oracle.encode_ordinary("ab xyz")


def test_spec_of_a_copied_tokenizer_model_keeps_the_ids(llama3_pair, tmp_path):
    """A model dir with only Meta's tokenizer.model: a llama3 spec naming a copy of it
    rebuilds the tokenizer (specials included) after the dir is gone."""
    from legollm.core.tokenization.specs import copy_spec_files, load_tokenizer, spec_for_path

    ours, oracle = llama3_pair
    model_dir = tmp_path / "llama"
    model_dir.mkdir()
    ours.save_tiktoken(model_dir / "tokenizer.model")
    spec = spec_for_path(model_dir)
    assert spec["type"] == "llama3" and spec["version"] == "3"
    saved = copy_spec_files(spec, tmp_path / "run")
    assert saved["path"] == "tokenizer/tokenizer.model"
    (model_dir / "tokenizer.model").unlink()
    back = load_tokenizer(saved, base_dir=tmp_path / "run")
    s = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWHAT'S 12345?<|eot_id|>"
    assert back.encode(s, allowed_special="all") == oracle.encode(s, allowed_special="all")
