"""GGUF export checked by llama.cpp itself (through llama-cpp-python).

For a tiny random model of each architecture, saved by transformers with a tokenizer.json
made by `tokenizers`, and for a model the demo trains, loaded by us and exported:

- llama.cpp's token ids for text that exercises the split patterns equal ours;
- its logits for a prompt equal ours: f32 within 1e-3 relative (max |difference| over
  the largest |logit|); f16 and q8_0 within twice the change rounding our own weights
  the same way makes (see ``_tolerance``);
- its greedy continuation of 32 tokens equals ours (f32).

llama-cpp-python compiles llama.cpp on install (the ``gguf`` dependency group). Without
it these tests skip with a message, except in CI, where they fail.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    MixtralConfig,
    MixtralForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
    Qwen3MoeConfig,
    Qwen3MoeForCausalLM,
)

from legollm.cli.main import main
from legollm.core.tokenization.patterns import LLAMA3_SPLIT_PATTERN
from legollm.export import export_gguf
from legollm.export.gguf_vocab import QWEN2_SPLIT_PATTERN
from legollm.generation import generate
from legollm.models.loading import load_model

pytestmark = pytest.mark.slow


def _llama_cpp():
    try:
        import llama_cpp
    except ImportError:
        msg = "llama-cpp-python is not installed (uv sync --group gguf)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return llama_cpp


SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "Hello world! It's a fine day, isn't it? I'm sure THEY'LL say 12345 or 3.14159.\n"
    "café naïve déjà vu — 中文字符 日本語 😀👍 \t\ttabs  and   spaces\n\n\nnew lines\r\n"
    "def f(x):\n    return x ** 2  # four spaces\n" * 3
] * 20
PROBES = [
    "Hello, world! How's it going? I'M FINE, they'll see.",
    "café naïve Ünïcödé 中文 日本語 😀 👍🏽 ∑∫√",
    "123 4567 89012 3.14159 1,000,000 2024-01-01",
    "a  b   c    d\t\te\n\nf\n\n\n  g \r\n h   ",
    "   leading and trailing   ",
    "<|im_start|>user\nhi<|im_end|>\n<|endoftext|>",
    "x<|endoftext|>y <|im_end|> z",
]
PROMPT = "Hello world! It's a fine day, isn't it? 12345 café 中文"
TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _tokenizer_json(d: Path, pattern: str | None, ignore_merges: bool, nfc: bool) -> int:
    """Train a byte-level BPE with `tokenizers` into ``d/tokenizer.json``; its size.

    ``pattern`` None is GPT-2's ByteLevel pre-tokenizer; else a Split with that regex
    followed by ByteLevel(use_regex=False), as Llama 3's and Qwen's files have.
    """
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=pattern is None)
    if pattern is not None:
        split = pre_tokenizers.Split(Regex(pattern), behavior="isolated")
        byte_level = pre_tokenizers.Sequence([split, byte_level])
    tok.pre_tokenizer = byte_level
    tok.decoder = decoders.ByteLevel()
    if nfc:
        tok.normalizer = normalizers.NFC()
    trainer = trainers.BpeTrainer(vocab_size=420, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())  # fmt: skip
    tok.train_from_iterator(CORPUS, trainer)
    d.mkdir(parents=True, exist_ok=True)
    tok.save(str(d / "tokenizer.json"))
    return tok.get_vocab_size()


_SIZES = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)
_LLAMA3_ROPE = dict(rope_type="llama3", factor=4.0, low_freq_factor=1.0, high_freq_factor=4.0,
                    original_max_position_embeddings=16)  # fmt: skip
# name -> (model class, config class, config fields, tokenizer: (pattern, ignore_merges, nfc))
CASES = {
    "gpt2": (GPT2LMHeadModel, GPT2Config,
             dict(n_embd=64, n_layer=2, n_head=4, n_positions=128), (None, False, False)),
    "llama3.1-gqa-tied": (LlamaForCausalLM, LlamaConfig,
                          dict(_SIZES, num_key_value_heads=2, tie_word_embeddings=True,
                               rope_scaling=_LLAMA3_ROPE, max_position_embeddings=128),
                          (LLAMA3_SPLIT_PATTERN, True, False)),
    "llama-biases-untied": (LlamaForCausalLM, LlamaConfig,
                            dict(_SIZES, attention_bias=True, tie_word_embeddings=False,
                                 max_position_embeddings=128),
                            (LLAMA3_SPLIT_PATTERN, False, False)),
    "qwen3": (Qwen3ForCausalLM, Qwen3Config,
              dict(_SIZES, num_key_value_heads=2, head_dim=32, tie_word_embeddings=True,
                   max_position_embeddings=128), (QWEN2_SPLIT_PATTERN, False, True)),
    "mistral": (MistralForCausalLM, MistralConfig,
                dict(_SIZES, num_key_value_heads=2, sliding_window=None,
                     max_position_embeddings=128), (LLAMA3_SPLIT_PATTERN, True, False)),
    "mixtral": (MixtralForCausalLM, MixtralConfig,
                dict(_SIZES, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2,
                     sliding_window=None, max_position_embeddings=128),
                (LLAMA3_SPLIT_PATTERN, True, False)),
    "qwen3-moe": (Qwen3MoeForCausalLM, Qwen3MoeConfig,
                  dict(_SIZES, num_key_value_heads=2, head_dim=32, num_experts=4,
                       num_experts_per_tok=2, moe_intermediate_size=64, norm_topk_prob=True,
                       max_position_embeddings=128), (QWEN2_SPLIT_PATTERN, False, True)),
}  # fmt: skip

# How far llama.cpp's logits may be from our f32 logits, relative to the largest |logit|:
# max(1e-3, 2 * e), where e is how far OUR logits move when our own weights are rounded
# the way the file stores them (f16, or q8_0 as defined by ggml: blocks of 32 weights,
# one f16 scale = max |w| / 127, values rounded to integers in [-127, 127]).
# f32: e = 0, so the 1e-3 (measured: ~1e-6, llama.cpp's KV cache kept in f32).
# f16, q8_0: llama.cpp rounds the weights exactly so, then also rounds each matmul's
#   activations to the same format (f16, or 8-bit blocks); that second rounding is of the
#   same size as the first, so its error is at most about twice ours (measured: 0.9-1.9x).
# Mixtures of experts skip q8_0: rounding can flip which experts a token picks, and a
# flipped expert changes the logits by far more than any rounding (measured: 0.37 for ours).
Q8_BLOCK = 32


def _round_like_the_file(w: torch.Tensor, dtype: str) -> torch.Tensor:
    """``w`` as the GGUF file stores it: vectors in f32, matrices in ``dtype``."""
    if w.dim() == 1 or dtype == "f32":
        return w
    if dtype == "f16" or w.shape[-1] % Q8_BLOCK:  # q8_0 needs whole blocks; else f16
        return w.half().float()
    blocks = w.reshape(-1, Q8_BLOCK)
    scale = (blocks.abs().amax(-1, keepdim=True) / 127).half().float()
    q = torch.round(blocks / torch.where(scale == 0, 1.0, scale)).clamp(-127, 127)
    return (q * scale).reshape(w.shape)


def _tolerance(loaded, ids: list[int], ours_logits: np.ndarray, dtype: str) -> float:
    rounded = copy.deepcopy(loaded)
    with torch.no_grad():
        for p in rounded.model.parameters():
            p.copy_(_round_like_the_file(p, dtype))
    moved = _relative_error(_ours(rounded, ids, 0)[0], ours_logits)
    return max(1e-3, 2 * moved)


F32 = 0  # GGML_TYPE_F32: llama.cpp's KV cache in f32 (its default, f16, rounds k and v)


def _hf_dir(tmp: Path, case: str) -> Path:
    model_cls, config_cls, fields, (pattern, ignore_merges, nfc) = CASES[case]
    d = tmp / case
    vocab = _tokenizer_json(d, pattern, ignore_merges, nfc)
    torch.manual_seed(0)
    config = config_cls(vocab_size=vocab, initializer_range=0.2, bos_token_id=None,
                        eos_token_id=None, pad_token_id=None, **fields)  # fmt: skip
    model_cls(config).eval().save_pretrained(d)
    # what the model's tokens are for, by name: llama.cpp-based chat apps read these
    tok_config = {
        "eos_token": "<|im_end|>",
        "bos_token": "<|endoftext|>",
        "chat_template": TEMPLATE,
    }
    (d / "tokenizer_config.json").write_text(json.dumps(tok_config))
    return d


def _relative_error(theirs: np.ndarray, ours: np.ndarray) -> float:
    return float(np.abs(theirs - ours).max() / np.abs(ours).max())


def _check_tokenization(llm, tokenizer, eos: str, template: str | None) -> None:
    assert llm.token_eos() == tokenizer.special_tokens[eos]
    assert llm.metadata.get("tokenizer.chat_template") == template
    for text in PROBES:
        ours = tokenizer.encode(text)
        assert llm.tokenize(text.encode(), add_bos=False, special=True) == ours, text
        plain = tokenizer.encode_ordinary(text)
        assert llm.tokenize(text.encode(), add_bos=False, special=False) == plain, text


def _logits_and_greedy(llm, ids: list[int], new: int) -> tuple[np.ndarray, list[int]]:
    """llama.cpp's logits for every prompt position, then ``new`` greedy tokens."""
    llm.eval(ids)
    logits = np.array(llm.scores[: len(ids)], dtype=np.float32)
    out: list[int] = []
    for _ in range(new):
        out.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
        llm.eval(out[-1:])
    return logits, out


def _ours(loaded, ids: list[int], new: int) -> tuple[np.ndarray, list[int]]:
    x = torch.tensor([ids])
    with torch.no_grad():
        logits = loaded.model(x)
        logits = logits[0] if isinstance(logits, tuple) else logits
        greedy = generate(loaded.model, x, new, temperature=0.0)[0, len(ids) :].tolist()
    return logits[0].float().numpy(), greedy


def _check_model(llama_cpp, loaded, tmp: Path, eos: str, template: str | None,
                 dtypes=("f32", "f16", "q8_0")) -> None:  # fmt: skip
    """Export in each dtype; one llama.cpp context per file (tokenization checked on f32)."""
    ids = loaded.tokenizer.encode(PROMPT)
    ours_logits, ours_greedy = _ours(loaded, ids, 32)
    for dtype in dtypes:
        gguf = export_gguf(loaded, None, tmp / f"model-{dtype}.gguf", dtype)
        llm = llama_cpp.Llama(str(gguf), n_ctx=128, n_batch=128, logits_all=True, n_threads=2,
                              type_k=F32, type_v=F32, verbose=False)  # fmt: skip
        if dtype == "f32":
            _check_tokenization(llm, loaded.tokenizer, eos, template)
        logits, greedy = _logits_and_greedy(llm, ids, 32 if dtype == "f32" else 0)
        err = _relative_error(logits, ours_logits)
        tolerance = _tolerance(loaded, ids, ours_logits, dtype)
        assert err < tolerance, f"{dtype}: logits differ by {err:.2e} > {tolerance:.2e}"
        if dtype == "f32":
            assert greedy == ours_greedy


@pytest.mark.parametrize("case", list(CASES))
def test_llama_cpp_agrees_with_us_on_a_tiny_random_model(case, tmp_path):
    llama_cpp = _llama_cpp()
    loaded = load_model(_hf_dir(tmp_path, case))
    dtypes = ("f32", "f16") if loaded.model.config.ffn == "moe" else ("f32", "f16", "q8_0")
    _check_model(llama_cpp, loaded, tmp_path, "<|im_end|>", TEMPLATE, dtypes)


def test_llama_cpp_agrees_with_us_on_a_model_the_demo_trains(tmp_path, capsys):
    llama_cpp = _llama_cpp()
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--max-iters", "10", "--vocab-size", "300",
                 "--tokenizer-chars", "20000", "--no-progress"]) == 0  # fmt: skip
    gguf = tmp_path / "demo.gguf"
    assert main(["export", str(out / "run"), "--format", "gguf", "--output", str(gguf)]) == 0
    assert str(gguf) in capsys.readouterr().out
    loaded = load_model(out / "run")
    _check_model(llama_cpp, loaded, tmp_path, "<|endoftext|>", None, dtypes=("f32", "q8_0"))
    assert gguf.read_bytes() == (tmp_path / "model-f32.gguf").read_bytes()  # the CLI's file
