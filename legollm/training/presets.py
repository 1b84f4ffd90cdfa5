"""Named model sizes for training from scratch (GPT-2 style: LayerNorm, learned positions,
GELU MLP, biases, tied embeddings). Each is a dict of ModelConfig fields; ``vocab_size``
comes from the data and ``context_length`` from the block size unless given.

A ``family:name`` preset (``llama3:tiny``, ``qwen3:qwen3-0.6b``, ``mistral:tiny``) is an
architecture's published or small config from ``legollm.architectures``, with its
vocab_size and context_length dropped so the data and block size set them as here.
"""

from __future__ import annotations

from typing import Any

from legollm.core.exceptions import ConfigError

_GPT2_STYLE: dict[str, Any] = {
    "norm": "layernorm",
    "position": "learned",
    "ffn": "gelu_mlp",
    "qkv_bias": True,
    "attn_out_bias": True,
    "mlp_bias": True,
    "norm_bias": True,
    "tie_embeddings": True,
    "dropout": 0.0,
}

MODEL_PRESETS: dict[str, dict[str, Any]] = {
    # a few seconds on a laptop CPU: tests and the demo
    "tiny": {**_GPT2_STYLE, "n_layer": 2, "n_head": 2, "n_embd": 64},
    # nanoGPT's Shakespeare-char CPU recipe
    "small": {**_GPT2_STYLE, "n_layer": 4, "n_head": 4, "n_embd": 128},
    # nanoGPT's Shakespeare-char GPU recipe
    "shakespeare-gpu": {**_GPT2_STYLE, "n_layer": 6, "n_head": 6, "n_embd": 384, "dropout": 0.2},
    "gpt2-124m": {**_GPT2_STYLE, "n_layer": 12, "n_head": 12, "n_embd": 768},
    "gpt2-350m": {**_GPT2_STYLE, "n_layer": 24, "n_head": 16, "n_embd": 1024},
}


def model_preset(name: str) -> dict[str, Any]:
    """A copy of the preset's ModelConfig fields, looked up by exact name."""
    if ":" in name:
        from legollm.architectures import architecture_preset

        fields = architecture_preset(name).to_dict()
        for sized_by_the_run in ("vocab_size", "context_length"):
            del fields[sized_by_the_run]
        return fields
    if name not in MODEL_PRESETS:
        raise ConfigError(
            f"unknown model preset {name!r}; use one of {sorted(MODEL_PRESETS)} "
            "or an architecture preset such as 'llama3:tiny'"
        )
    return dict(MODEL_PRESETS[name])


__all__ = ["MODEL_PRESETS", "model_preset"]
