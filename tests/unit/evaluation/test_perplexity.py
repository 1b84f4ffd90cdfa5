"""Perplexity against transformers on the same weights, and bits per byte by hand.

The oracle follows Hugging Face's perplexity guide ("Perplexity of fixed-length
models"): windows starting every ``stride`` tokens, the targets an earlier window
already scored set to -100. Its windows hold ``context + 1`` tokens, the model reading
the first ``context`` of them and predicting the ``context`` that follow, so that every
token after the first is scored, also when the stride equals the context.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from legollm.core.exceptions import ConfigError, DataError
from legollm.core.tokenization import RegexBPETokenizer
from legollm.evaluation import perplexity, token_nll
from legollm.models import load_pretrained

transformers = pytest.importorskip("transformers")

CONTEXT = 16
TEXT = (
    "It had always been his fate to have women say such things of him: the fact should "
    "be set down in extenuation. What struck me now was that, for the first time, he "
    "resented the tone. I had seen him, so often, basking under similar tributes."
)


@pytest.fixture(scope="module")
def gpt2_tokenizer(shared_data):
    g = shared_data / "gpt2"
    return RegexBPETokenizer.from_gpt2_files(g / "encoder.json", g / "vocab.bpe")


def _hf_gpt2():
    cfg = transformers.GPT2Config(vocab_size=50257, n_positions=CONTEXT, n_embd=32, n_layer=2,
                                  n_head=2)  # fmt: skip
    return transformers.GPT2LMHeadModel(cfg)


def _hf_llama():
    cfg = transformers.LlamaConfig(vocab_size=50257, hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=2, num_attention_heads=4,
                                   num_key_value_heads=2, max_position_embeddings=CONTEXT,
                                   tie_word_embeddings=False)  # fmt: skip
    return transformers.LlamaForCausalLM(cfg)


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def models(request, tmp_path_factory):
    """(transformers model, the same weights loaded by LegoLLM)."""
    torch.manual_seed(0)
    hf = (_hf_gpt2 if request.param == "gpt2" else _hf_llama)().eval()
    d = tmp_path_factory.mktemp(request.param)
    hf.save_pretrained(d)
    ours = load_pretrained(d)
    assert ours.config.context_length == CONTEXT
    return hf, ours


def hf_token_nll(hf, ids: list[int], stride: int) -> dict[int, float]:
    """{token position: NLL} by the guide's loop, one window at a time, with transformers."""
    seq = torch.tensor([ids])
    max_length = CONTEXT + 1  # inputs + the token after the last one
    nll, prev_end = {}, 0
    for begin in range(0, seq.size(1), stride):
        end = min(begin + max_length, seq.size(1))
        trg_len = end - prev_end
        input_ids = seq[:, begin:end]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100
        with torch.no_grad():
            logits = hf(input_ids[:, :-1]).logits
        losses = F.cross_entropy(logits[0], target_ids[0, 1:], reduction="none")
        for j in range(1, end - begin):
            if target_ids[0, j] != -100:
                assert begin + j not in nll, "a token scored twice"
                nll[begin + j] = losses[j - 1].item()
        prev_end = end
        if end == seq.size(1):
            break
    return nll


@pytest.mark.parametrize("stride", [3, 8, 13, 16])  # < = > half the context, = the context
def test_token_nll_and_perplexity_equal_transformers(models, gpt2_tokenizer, stride):
    hf, ours = models
    ids = gpt2_tokenizer.encode(TEXT)
    assert len(ids) > 3 * CONTEXT
    expected = hf_token_nll(hf, ids, stride)
    assert sorted(expected) == list(range(1, len(ids)))  # every token but the first
    got = token_nll(ours, ids, stride=stride, batch_size=3)
    want = torch.tensor([expected[t] for t in range(1, len(ids))])
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)

    result = perplexity(ours, gpt2_tokenizer, TEXT, stride=stride, batch_size=3)
    mean = sum(expected.values()) / len(expected)
    assert result.tokens == len(ids) and result.bytes == len(TEXT.encode())
    assert result.perplexity == pytest.approx(math.exp(mean), rel=1e-4)
    assert result.bits_per_token == pytest.approx(mean / math.log(2), rel=1e-4)


def test_text_shorter_than_one_window(models, gpt2_tokenizer):
    hf, ours = models
    text = "A short text, under one window."
    ids = gpt2_tokenizer.encode(text)
    assert 2 < len(ids) < CONTEXT
    expected = hf_token_nll(hf, ids, stride=CONTEXT // 2)
    result = perplexity(ours, gpt2_tokenizer, text)
    mean = sum(expected.values()) / len(expected)
    assert result.nll == pytest.approx(mean, rel=1e-4)


def test_default_stride_is_half_the_context(models, gpt2_tokenizer):
    _, ours = models
    ids = gpt2_tokenizer.encode(TEXT)
    torch.testing.assert_close(token_nll(ours, ids), token_nll(ours, ids, stride=CONTEXT // 2))


class Uniform(torch.nn.Module):
    """Equal logits for every token: each token costs ln(vocab) nats, whatever its context."""

    def __init__(self, vocab: int, context: int):
        super().__init__()
        self.config = type("Config", (), {"context_length": context, "sliding_window": None,
                                          "position": "learned"})()  # fmt: skip
        self.vocab = vocab
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, idx, logits_from=0):
        return torch.zeros(*idx[:, logits_from:].shape, self.vocab) + self.w


def test_bits_per_byte_by_hand():
    tok = RegexBPETokenizer()  # untrained: one token per byte
    text = "héllo wörld, twice: héllo wörld"  # 2-byte characters: bytes != characters
    n_bytes = len(text.encode())
    result = perplexity(Uniform(vocab=256, context=8), tok, text, stride=3)
    assert result.tokens == n_bytes
    # 8 bits per byte-token predicted, over n_bytes - 1 predicted tokens
    assert result.bits_per_byte == pytest.approx(
        (n_bytes - 1) * math.log(256) / (math.log(2) * n_bytes)
    )
    assert result.nll == pytest.approx(math.log(256))
    assert result.perplexity == pytest.approx(256)
    assert result.bits_per_token == pytest.approx(8)


def test_folder_of_texts_is_joined_by_end_of_text(tmp_path, gpt2_tokenizer, models):
    _, ours = models
    (tmp_path / "a.txt").write_text("First document.", encoding="utf-8")
    (tmp_path / "b.txt").write_text("Second document.", encoding="utf-8")
    result = perplexity(ours, gpt2_tokenizer, tmp_path)
    joined = gpt2_tokenizer.encode("First document.<|endoftext|>Second document.")
    assert result.tokens == len(joined)
    assert result.bytes == len("First document.Second document.")
    want = token_nll(ours, joined).double().mean().item()
    assert result.nll == pytest.approx(want, rel=1e-6)


def test_bad_input_is_one_clear_error(tmp_path, gpt2_tokenizer):
    model = Uniform(vocab=50257, context=8)
    with pytest.raises(DataError, match="empty"):
        perplexity(model, gpt2_tokenizer, "  \n")
    with pytest.raises(DataError, match="at least two"):
        perplexity(model, gpt2_tokenizer, "Hi")
    with pytest.raises(DataError, match="not found"):
        perplexity(model, gpt2_tokenizer, tmp_path / "missing.txt")
    for stride in (0, 9):
        with pytest.raises(ConfigError, match="stride must be between 1 and"):
            perplexity(model, gpt2_tokenizer, TEXT, stride=stride)
