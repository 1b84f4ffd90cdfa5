"""Hugging Face tokenizer.json files, with the ``tokenizers`` library as the oracle.

No real Qwen or Llama 3 tokenizer.json is available offline, so the files are made
by ``tokenizers`` itself: a trained byte-level BPE in GPT-2's layout, and one in the
Qwen2 / Llama 3 layout (Split regex + ByteLevel without regex, NFC, ignore_merges).
"""

from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from legollm.core.exceptions import TokenizerError
from legollm.core.tokenization import LLAMA3_SPLIT_PATTERN, RegexBPETokenizer

ADDED = ["<|im_start|>", "<|im_end|>"]


def _train(text: str, pre_tokenizer, normalizer=None, ignore_merges=False) -> Tokenizer:
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tok.pre_tokenizer = pre_tokenizer
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1200,
        special_tokens=["<|endoftext|>"],  # ids 0: before the bytes, as HF trainers put them
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([text], trainer)
    tok.add_special_tokens(ADDED)
    return tok


@pytest.fixture(scope="module")
def files(shared_data, tmp_path_factory):
    text = (shared_data / "text" / "tiny_shakespeare.txt").read_text(encoding="utf-8")[:300_000]
    text += (shared_data / "text" / "python_docs.txt").read_text(encoding="utf-8")[:300_000]
    d = tmp_path_factory.mktemp("hf")
    gpt2_style = _train(text, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True))
    qwen_style = _train(
        text,
        pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(LLAMA3_SPLIT_PATTERN), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        ),
        normalizer=normalizers.NFC(),
        ignore_merges=True,
    )
    out = {}
    for name, tok in (("gpt2", gpt2_style), ("qwen", qwen_style)):
        path = d / name / "tokenizer.json"
        path.parent.mkdir()
        tok.save(str(path))
        out[name] = path
    # the older merges format: "a b" strings instead of ["a", "b"] lists
    legacy = json.loads(out["gpt2"].read_text(encoding="utf-8"))
    legacy["model"]["merges"] = [" ".join(m) for m in legacy["model"]["merges"]]
    out["legacy"] = d / "legacy.json"
    out["legacy"].write_text(json.dumps(legacy), encoding="utf-8")
    return out


@pytest.fixture(scope="module", params=["gpt2", "qwen", "legacy"])
def pair(request, files):
    path = files[request.param]
    return RegexBPETokenizer.from_tokenizer_json(path), Tokenizer.from_file(str(path))


def _hf_ids(hf: Tokenizer, text: str) -> list[int]:
    return hf.encode(text, add_special_tokens=False).ids


@pytest.mark.parametrize("name", ["the_verdict.txt", "tiny_shakespeare.txt", "python_docs.txt"])
def test_ids_equal_tokenizers_on_shared_text(pair, shared_data, name):
    ours, hf = pair
    text = (shared_data / "text" / name).read_text(encoding="utf-8")[-500_000:]
    assert ours.encode(text) == _hf_ids(hf, text)


def test_added_tokens_are_matched_as_hf_does(pair):
    ours, hf = pair
    s = (
        "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nWHAT'S 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n4<|im_end|><|endoftext|>text<|im_start|"
    )
    ids = ours.encode(s)
    assert ids == _hf_ids(hf, s)
    assert ours.decode(ids) == hf.decode(ids, skip_special_tokens=False) == s
    assert {t: ours.special_tokens[t] for t in ADDED} == {t: hf.token_to_id(t) for t in ADDED}


def test_byte_tokens_sit_where_the_file_puts_them(files):
    # the trainer gives <|endoftext|> id 0, so byte b"!" is id 1, not 33
    ours = RegexBPETokenizer.from_tokenizer_json(files["gpt2"])
    hf = Tokenizer.from_file(str(files["gpt2"]))
    assert ours.special_tokens["<|endoftext|>"] == hf.token_to_id("<|endoftext|>") == 0
    assert ours.encode("!") == _hf_ids(hf, "!") == [hf.token_to_id("!")]


text_strategy = st.lists(
    st.one_of(
        st.text(st.characters(codec="utf-8"), max_size=8),
        st.sampled_from(["'S", "'ll", "\r\n", "  \n", "😀", "中文", "e\u0301", "Å", "<|im_end|>"]),
        st.text("0123456789", min_size=1, max_size=9),
        st.text(" \t\n", min_size=1, max_size=6),
    ),
    max_size=25,
).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text_strategy)
def test_random_unicode_matches_tokenizers(files, text):
    for name in ("gpt2", "qwen"):
        ours = _loaded(files[name])
        hf = Tokenizer.from_file(str(files[name]))
        assert ours.encode(text) == _hf_ids(hf, text), name


_cache: dict = {}


def _loaded(path):
    if path not in _cache:
        _cache[path] = RegexBPETokenizer.from_tokenizer_json(path)
    return _cache[path]


def test_saved_and_reloaded_keeps_the_ids(files, tmp_path, shared_data):
    ours = RegexBPETokenizer.from_tokenizer_json(files["qwen"])
    back = RegexBPETokenizer.load(ours.save(tmp_path / "qwen.json"))
    text = (shared_data / "text" / "the_verdict.txt").read_text(encoding="utf-8")
    text = text.replace("e", "e\u0301") + "<|im_end|>"  # NFC composes e + acute
    assert (
        back.encode(text)
        == ours.encode(text)
        == _hf_ids(Tokenizer.from_file(str(files["qwen"])), text)
    )


def _edit(files, tmp_path, change) -> str:
    data = json.loads(files["gpt2"].read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def _set(keys, value):
    def change(data):
        d = data
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value

    return change


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_set(["model", "type"], "Unigram"), "model.type"),
        (_set(["model", "byte_fallback"], True), "model.byte_fallback"),
        (_set(["normalizer"], {"type": "Lowercase"}), "normalizer"),
        (_set(["pre_tokenizer", "add_prefix_space"], True), "add_prefix_space"),
        (_set(["pre_tokenizer"], {"type": "Whitespace"}), "pre_tokenizer"),
        (_set(["model", "vocab", "\u2581the"], 5000), "model.vocab"),
        (_set(["model", "merges"], [["x", "not-a-token"]]), "model.merges"),
        (_set(["added_tokens", 0, "lstrip"], True), "added_tokens"),
    ],
)
def test_unsupported_files_name_the_file_and_field(files, tmp_path, change, field):
    path = _edit(files, tmp_path, change)
    with pytest.raises(TokenizerError, match=field) as err:
        RegexBPETokenizer.from_tokenizer_json(path)
    assert path in str(err.value)


def test_split_regex_that_leaves_text_unmatched_is_refused(files, tmp_path):
    def change(data):
        data["pre_tokenizer"] = {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": r"\p{L}+"}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False},
            ],
        }  # fmt: skip

    with pytest.raises(TokenizerError, match="unmatched"):
        RegexBPETokenizer.from_tokenizer_json(_edit(files, tmp_path, change))


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(TokenizerError, match="not found"):
        RegexBPETokenizer.from_tokenizer_json(tmp_path / "nope.json")
    bad = tmp_path / "tokenizer.json"
    bad.write_text("{oops", encoding="utf-8")
    with pytest.raises(TokenizerError, match="tokenizer.json"):
        RegexBPETokenizer.from_tokenizer_json(bad)


@pytest.mark.parametrize("ignore_merges", [False, True])
def test_ignore_merges_looks_whole_chunks_up_first(tmp_path, ignore_merges):
    # "bc" merges before "ab", so BPE turns "abc" into [a, bc] and stops; with
    # ignore_merges (Llama 3's tokenizer.json sets it) the chunk is the token "abc"
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {c: i for i, c in enumerate(alphabet)}
    for t in ("bc", "ab", "abc"):
        vocab[t] = len(vocab)
    merges = [("b", "c"), ("a", "b"), ("ab", "c")]
    hf = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=ignore_merges))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    path = tmp_path / "tokenizer.json"
    hf.save(str(path))
    ours = RegexBPETokenizer.from_tokenizer_json(path)
    for s in ["abc", "xabc abc", "ab bc abcabc"]:
        assert ours.encode(s) == _hf_ids(hf, s)
    assert (ours.encode("abc") == [vocab["abc"]]) is ignore_merges


def test_spec_of_a_copied_file_keeps_the_ids(files, tmp_path, shared_data):
    """How an SFT run stores a tokenizer.json-only model's tokenizer: an hf_json spec
    naming its own copy, which loads after the model dir is gone."""
    from legollm.core.exceptions import ConfigError
    from legollm.core.tokenization.specs import copy_spec_files, load_tokenizer, spec_for_path

    model_dir = tmp_path / "qwen"
    shutil.copytree(files["qwen"].parent, model_dir)
    spec = spec_for_path(model_dir)
    assert spec == {"type": "hf_json", "path": str((model_dir / "tokenizer.json").resolve())}
    run = tmp_path / "run"
    saved = copy_spec_files(spec, run)
    assert saved == {"type": "hf_json", "path": "tokenizer/tokenizer.json"}
    shutil.rmtree(model_dir)
    ours = load_tokenizer(saved, base_dir=run)
    hf = Tokenizer.from_file(str(files["qwen"]))
    text = (shared_data / "text" / "python_docs.txt").read_text(encoding="utf-8")[:100_000]
    text += "<|im_start|>user\nhi<|im_end|><|endoftext|>"
    assert ours.encode(text) == _hf_ids(hf, text)
    (run / "tokenizer" / "tokenizer.json").unlink()
    with pytest.raises(ConfigError, match=r"hf_json tokenizer: file path=.*run/tokenizer/tok"):
        load_tokenizer(saved, base_dir=run)
