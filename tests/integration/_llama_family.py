"""Tiny random transformers models of the Llama family (Llama 3, Qwen 3, Mistral), shared by
the parity and KV-cache tests. Weights are drawn with std 0.2 so greedy tokens depend on
the context (see test_llama_family_parity.py)."""

from __future__ import annotations

import copy

import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

VOCAB = 256
BASE = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=128,
    initializer_range=0.2,
    bos_token_id=None,
    eos_token_id=None,  # no EOS: both sides generate all 32 tokens
    pad_token_id=None,
)
# a short original context so the llama3 scaling moves some of head_dim 16's frequencies
LLAMA3_ROPE = dict(
    rope_type="llama3",
    factor=4.0,
    low_freq_factor=1.0,
    high_freq_factor=4.0,
    original_max_position_embeddings=16,
)
WINDOW = 8  # Mistral's sliding window, shorter than every test sequence

CASES = {
    "llama-mha-untied": (LlamaForCausalLM, LlamaConfig, dict(num_key_value_heads=4)),
    "llama-gqa2-tied-llama3rope": (
        LlamaForCausalLM,
        LlamaConfig,
        dict(num_key_value_heads=2, tie_word_embeddings=True, rope_scaling=LLAMA3_ROPE),
    ),
    "llama-gqa4-untied-llama3rope-theta": (
        LlamaForCausalLM,
        LlamaConfig,
        dict(
            num_attention_heads=8,
            num_key_value_heads=2,
            rope_theta=500000.0,
            rope_scaling=LLAMA3_ROPE,
        ),
    ),  # fmt: skip
    "llama-biases": (
        LlamaForCausalLM,
        LlamaConfig,
        dict(num_key_value_heads=2, attention_bias=True, mlp_bias=True),
    ),
    "qwen3-headdim32-tied": (
        Qwen3ForCausalLM,
        Qwen3Config,
        dict(num_key_value_heads=2, head_dim=32, tie_word_embeddings=True),
    ),
    "qwen3-headdim8-untied": (
        Qwen3ForCausalLM,
        Qwen3Config,
        dict(num_key_value_heads=1, head_dim=8, tie_word_embeddings=False),
    ),
    "qwen3-window-every-layer": (
        Qwen3ForCausalLM,
        Qwen3Config,
        dict(
            num_key_value_heads=2,
            use_sliding_window=True,
            sliding_window=WINDOW,
            max_window_layers=0,
        ),
    ),  # fmt: skip
    "mistral-window": (
        MistralForCausalLM,
        MistralConfig,
        dict(num_key_value_heads=2, sliding_window=WINDOW),
    ),
}
MODEL_TYPE = {LlamaForCausalLM: "llama", Qwen3ForCausalLM: "qwen3", MistralForCausalLM: "mistral"}


def _build(case: str, seed: int):
    """A random HF model of CASES[case] (configs get copies: transformers edits the dicts)."""
    cls, cfg_cls, extra = CASES[case]
    torch.manual_seed(seed)
    return cls(cfg_cls(**copy.deepcopy({**BASE, **extra}))).eval()
