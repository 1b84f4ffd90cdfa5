"""Continuation log-likelihoods against transformers on the same weights, one pair at a time.

The oracle is the definition: feed context + continuation tokens to transformers'
model, sum the log-softmax of each continuation token at the position before it,
and call it greedy when every continuation token is that position's argmax. The
split of the text into context and continuation tokens is written out by hand
(lm-evaluation-harness's rule: trailing context spaces move to the continuation,
the continuation's tokens are those of the whole after the context's).
"""

from __future__ import annotations

import pytest
import torch

from legollm.core.exceptions import DataError
from legollm.core.tokenization import RegexBPETokenizer
from legollm.evaluation import encode_pair, loglikelihood, loglikelihood_tokens
from legollm.models import load_pretrained

transformers = pytest.importorskip("transformers")

CONTEXT = 24


@pytest.fixture(scope="module")
def tok(shared_data):
    g = shared_data / "gpt2"
    return RegexBPETokenizer.from_gpt2_files(g / "encoder.json", g / "vocab.bpe")


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def models(request, tmp_path_factory):
    torch.manual_seed(0)
    if request.param == "gpt2":
        cfg = transformers.GPT2Config(vocab_size=50257, n_positions=CONTEXT, n_embd=32,
                                      n_layer=2, n_head=2)  # fmt: skip
        hf = transformers.GPT2LMHeadModel(cfg)
    else:
        cfg = transformers.LlamaConfig(vocab_size=50257, hidden_size=32, intermediate_size=64,
                                       num_hidden_layers=2, num_attention_heads=4,
                                       num_key_value_heads=2, max_position_embeddings=CONTEXT,
                                       tie_word_embeddings=False)  # fmt: skip
        hf = transformers.LlamaForCausalLM(cfg)
    d = tmp_path_factory.mktemp(request.param)
    hf.eval().save_pretrained(d)
    return hf, load_pretrained(d).eval()


def oracle(hf, context: list[int], continuation: list[int]) -> tuple[float, bool]:
    ids = (context + continuation)[-(CONTEXT + 1) :]
    with torch.no_grad():
        logits = hf(torch.tensor([ids[:-1]])).logits[0, -len(continuation) :]
    logprobs = torch.log_softmax(logits.double(), -1)
    target = torch.tensor(continuation)
    return float(logprobs.gather(-1, target[:, None]).sum()), bool(
        (logprobs.argmax(-1) == target).all()
    )


def test_trailing_spaces_move_to_the_continuation(tok):
    context, continuation = encode_pair(tok, "The capital of France is ", "Paris")
    assert context == tok.encode("The capital of France is")
    assert continuation == tok.encode(" Paris")


def test_continuation_tokens_follow_the_context_tokens_of_the_whole(tok):
    # "hello" + "world" tokenises as one piece of the whole; the continuation is what follows
    whole = tok.encode("helloworld")
    context, continuation = encode_pair(tok, "hello", "world")
    assert context == tok.encode("hello") and continuation == whole[len(context) :]


def test_empty_context_starts_from_end_of_text(tok):
    assert encode_pair(tok, "", "Hi there") == ([50256], tok.encode("Hi there"))


@pytest.mark.parametrize("share_min_saved", [0, 10**9], ids=["shared", "rows"])
def test_choices_equal_transformers_one_pair_at_a_time(tok, models, share_min_saved):
    hf, model = models
    ctx = "She opened the door and"
    choices = [" saw the sea.", " left", " found nothing at all under the old bed.", " ran"]
    pairs = [(ctx, c) for c in choices] + [("A lone question:", " yes"), ("", "Start")]
    encoded = [encode_pair(tok, c, x) for c, x in pairs]
    got = loglikelihood_tokens(model, encoded, batch_size=2, share_min_saved=share_min_saved)
    default = loglikelihood(model, tok, pairs)
    assert [lp for lp, _ in got] == pytest.approx([lp for lp, _ in default], abs=1e-4)
    for pair, (lp, greedy) in zip(encoded, got, strict=True):
        want_lp, want_greedy = oracle(hf, *pair)
        assert lp == pytest.approx(want_lp, abs=1e-4)
        assert greedy == want_greedy


def test_greedy_is_true_for_the_models_own_argmax(models):
    hf, model = models
    context = [464, 3139, 286]
    with torch.no_grad():
        nxt = int(hf(torch.tensor([context])).logits[0, -1].argmax())
    (_, greedy), (_, other) = loglikelihood_tokens(model, [(context, [nxt]), (context, [nxt + 1])])
    assert greedy and not other


def test_long_context_is_cut_from_the_left(tok, models):
    hf, model = models
    context = tok.encode("word " * 40)  # longer than the context of 24
    choices = [tok.encode(" end"), tok.encode(" the end of it")]
    got = loglikelihood_tokens(model, [(context, c) for c in choices], share_min_saved=0)
    for c, (lp, greedy) in zip(choices, got, strict=True):
        want_lp, want_greedy = oracle(hf, context, c)
        assert lp == pytest.approx(want_lp, abs=1e-4) and greedy == want_greedy


def test_a_continuation_longer_than_the_context_is_refused(models):
    _, model = models
    with pytest.raises(DataError, match="does not fit"):
        loglikelihood_tokens(model, [([1], [2] * (CONTEXT + 1))])
