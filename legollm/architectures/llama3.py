"""Llama 3, 3.1 and 3.2: presets and the map from Hugging Face's weights.

Llama is the DecoderLM with RMSNorm, RoPE, a SwiGLU feed-forward, no biases and
grouped-query attention (8 key/value heads). 3.1 and 3.2 add Llama 3 RoPE
frequency scaling (``rope_scaling`` with rope_type "llama3") for a 128K context;
3.2's small models tie the output head to the token embedding.

Hugging Face's Llama checkpoints already store q_proj/k_proj rows in the
rotate-half layout (the conversion script permuted Meta's interleaved
``consolidated.pth`` weights), which is the layout ``apply_rope`` uses, so every
tensor maps by name alone: no transposes, no permutations. Meta's original
checkpoints are interleaved and are not loaded here.

The pieces every Llama-family file shares (``llama_style``, the config.json
mapping, the weight map) live in ``_llama_family.py``; this file assembles them.
"""

from __future__ import annotations

from typing import Any

from legollm.architectures._llama_family import (
    llama_config_from_hf,
    llama_hf_config,
    llama_style,
    llama_weight_rules,
)
from legollm.models.config import ModelConfig
from legollm.models.presets import register_presets
from legollm.models.registry import ArchitectureSpec, register_architecture

# Llama 3.1 / 3.2's frequency scaling; 3.2 stretches by 32 instead of 8
_LLAMA31_ROPE = dict(
    rope_type="llama3",
    factor=8.0,
    low_freq_factor=1.0,
    high_freq_factor=4.0,
    original_max_position_embeddings=8192,
)


def _llama3(**fields: Any) -> ModelConfig:
    return llama_style(vocab_size=128256, norm_eps=1e-5, rope_theta=500000.0, **fields)


# Published configs (meta-llama/* config.json); parameter counts in the tests
PRESETS: dict[str, ModelConfig] = {
    "llama-3-8b": _llama3(
        context_length=8192, n_layer=32, n_head=32, n_kv_heads=8, n_embd=4096,
        ffn_hidden=14336, tie_embeddings=False,
    ),
    "llama-3.1-8b": _llama3(
        context_length=131072, n_layer=32, n_head=32, n_kv_heads=8, n_embd=4096,
        ffn_hidden=14336, tie_embeddings=False, rope_scaling=dict(_LLAMA31_ROPE),
    ),
    "llama-3.2-1b": _llama3(
        context_length=131072, n_layer=16, n_head=32, n_kv_heads=8, n_embd=2048,
        head_dim=64, ffn_hidden=8192, tie_embeddings=True,
        rope_scaling={**_LLAMA31_ROPE, "factor": 32.0},
    ),
    "llama-3.2-3b": _llama3(
        context_length=131072, n_layer=28, n_head=24, n_kv_heads=8, n_embd=3072,
        head_dim=128, ffn_hidden=8192, tie_embeddings=True,
        rope_scaling={**_LLAMA31_ROPE, "factor": 32.0},
    ),
    # trains on a 2-core CPU in seconds; vocab and context come from the data when training
    "tiny": llama_style(
        vocab_size=256, context_length=256, n_layer=2, n_head=4, n_kv_heads=2, n_embd=64,
        ffn_hidden=176, norm_eps=1e-5, rope_theta=10000.0, tie_embeddings=True,
    ),
}  # fmt: skip
register_presets("llama3", PRESETS)

# Llama is the family's plain member: nothing to add to the shared mapping
config_from_hf = llama_config_from_hf


def config_to_hf(c: ModelConfig) -> dict:
    return {
        **llama_hf_config(c, "llama", "LlamaForCausalLM", supports=("attention_bias", "mlp_bias")),
        "mlp_bias": c.mlp_bias,
    }


WEIGHT_RULES = llama_weight_rules()

SPEC = ArchitectureSpec(
    model_type="llama",
    config_from_hf=config_from_hf,
    config_to_hf=config_to_hf,
    weight_rules=WEIGHT_RULES,
    ignored_hf_keys=(".rotary_emb.inv_freq",),  # a buffer some older checkpoints saved
)
register_architecture(SPEC)
