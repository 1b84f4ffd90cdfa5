"""TextStreamer and stop strings, against Python's own UTF-8 decoder and str.find."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from legollm.core.exceptions import GenerationError
from legollm.core.tokenization import RegexBPETokenizer
from legollm.core.tokenization.specs import CharTokenizer
from legollm.generation import generate, stream
from legollm.generation.text import TextStreamer
from legollm.models import DecoderLM, ModelConfig

# A byte-level tokenizer with a few merges: multi-byte characters stay split across tokens.
BYTES = RegexBPETokenizer()
BYTES.train("aaab abab hello hello wörld 世界", vocab_size=262)


def streamed(tokenizer, ids, stop_strings=None):
    streamer = TextStreamer(tokenizer, stop_strings)
    pieces = [streamer.put(i) for i in ids]
    pieces.append(streamer.end())
    return pieces, streamer


def test_split_characters_are_held_back_until_complete():
    text = "héllo 世界 🎉!"
    ids = BYTES.encode_ordinary(text)
    assert len(ids) > len(text)  # some characters really are split across tokens
    pieces, streamer = streamed(BYTES, ids)
    assert "".join(pieces) == streamer.text == text
    assert all("\ufffd" not in p for p in pieces)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 261), max_size=40))
def test_pieces_join_to_the_full_decode_even_for_invalid_utf8(ids):
    pieces, _ = streamed(BYTES, ids)
    assert "".join(pieces) == BYTES.decode(ids)


@settings(max_examples=200, deadline=None)
@given(
    st.text(alphabet="ab\n:é界", max_size=30), st.text(alphabet="ab\n:é界", min_size=1, max_size=4)
)
def test_stop_string_is_found_across_token_boundaries(text, stop):
    ids = BYTES.encode_ordinary(text)
    pieces, streamer = streamed(BYTES, ids, [stop])
    cut = text.find(stop)
    assert "".join(pieces) == (text if cut < 0 else text[:cut])
    assert streamer.stopped == (cut >= 0)


def test_earliest_of_several_stop_strings_wins_and_nothing_after_it_leaks():
    ids = BYTES.encode_ordinary("hello\nUser: hi### more")
    pieces, streamer = streamed(BYTES, ids, ["###", "\nUser:"])
    assert "".join(pieces) == "hello"
    assert streamer.stopped


def test_tokenizers_without_bytes_are_diffed_whole():
    chars = CharTokenizer.from_text(["ab界\n"])
    ids = chars.encode_ordinary("a界b\nab")
    pieces, _ = streamed(chars, ids, ["\na"])
    assert "".join(pieces) == "a界b"


def test_empty_stop_string_is_rejected():
    with pytest.raises(GenerationError, match="non-empty"):
        TextStreamer(BYTES, [""])


class Scripted(torch.nn.Module):
    """A stand-in model whose row r emits scripts[r][n] as its n-th generated token."""

    def __init__(self, scripts, prompt_len, vocab=262, context_length=64):
        super().__init__()
        self.scripts, self.prompt_len, self.vocab = scripts, prompt_len, vocab
        self.config = ModelConfig(vocab_size=vocab, context_length=context_length)

    def forward(self, idx, *, position_ids=None, attention_mask=None, last_only=False, **_):
        n = int(attention_mask.shape[1]) - self.prompt_len  # tokens generated so far
        logits = torch.zeros(idx.shape[0], 1, self.vocab)
        for r, script in enumerate(self.scripts):
            logits[r, 0, script[min(n, len(script) - 1)]] = 1.0
        return logits


def test_stop_strings_finish_one_row_while_the_other_goes_on():
    a, b = BYTES.encode_ordinary("ab\n## x"), BYTES.encode_ordinary("aaaaaaaaaa")
    model = Scripted([a, b], prompt_len=2)
    out = generate(model, torch.zeros(2, 2, dtype=torch.long), 10, use_cache=False,
                   stop_strings=["##"], tokenizer=BYTES, pad_token_id=0)  # fmt: skip
    stop_at = BYTES.decode(a).find("##")
    row0 = out[0, 2:].tolist()
    assert BYTES.decode(row0).startswith("ab\n#")
    # the row ends at the token that completed "##", then only padding follows
    done = next(i for i in range(1, len(row0) + 1) if "##" in BYTES.decode(row0[:i]))
    assert BYTES.decode(row0[:done]).find("##") == stop_at
    assert row0[done:] == [0] * (len(row0) - done)
    assert out[1, 2:].tolist() == b[:10]


def test_stop_strings_need_a_tokenizer():
    model = Scripted([[1]], prompt_len=1)
    with pytest.raises(GenerationError, match="tokenizer"):
        list(stream(model, torch.zeros(1, 1, dtype=torch.long), 3, stop_strings=["x"]))


def tiny_model():
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=97, context_length=32, n_layer=2, n_head=2, n_embd=32)
    return DecoderLM(cfg).eval()


def test_too_long_prompt_with_the_window_disabled_is_an_error():
    model = tiny_model()
    prompt = torch.randint(0, 97, (1, 30))
    with pytest.raises(GenerationError, match="exceeds the model's context of 32"):
        generate(model, prompt, 5, crop_to_context=False)
    assert generate(model, prompt, 5).shape == (1, 35)  # the default crops to the context


def test_the_old_name_of_crop_to_context_still_works_and_says_it_is_deprecated():
    model = tiny_model()
    prompt = torch.randint(0, 97, (1, 30))
    with (
        pytest.warns(DeprecationWarning, match="crop_to_context"),
        pytest.raises(GenerationError, match="exceeds the model's context of 32"),
    ):
        generate(model, prompt, 5, slide_window=False)
    with pytest.warns(DeprecationWarning, match="crop_to_context"):
        assert torch.equal(
            generate(model, prompt, 5, slide_window=True), generate(model, prompt, 5)
        )


def test_last_only_logits_equal_the_full_forward_at_the_last_position():
    model = tiny_model()
    idx = torch.randint(0, 97, (2, 9))
    with torch.no_grad():
        assert torch.allclose(model(idx)[:, -1:], model(idx, last_only=True), atol=1e-6)


@pytest.mark.slow
def test_compiled_decode_step_gives_the_same_tokens():
    model = tiny_model()
    prompt = torch.randint(0, 97, (2, 5))
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    eager = generate(model, prompt, 12, attention_mask=mask)
    assert torch.equal(generate(model, prompt, 12, attention_mask=mask, compile=True), eager)
