"""Qwen 3 (dense): Llama with per-head RMSNorm on queries and keys.

The one change from Llama: after projecting, each head's query and key vectors
are RMS-normalised (``q_norm``/``k_norm``, one weight of size head_dim shared by
all heads) before RoPE, which keeps attention logits bounded and training stable
without QKV biases. Qwen 3 also decouples head_dim from hidden_size / n_head
(0.6B: 1024 wide, 16 heads of 128) and ties embeddings on the small models.
The mixture-of-experts models (model_type qwen3_moe) are in qwen3_moe.py.
"""

from __future__ import annotations

from typing import Any

from legollm.architectures._llama_family import (
    llama_config_from_hf,
    llama_hf_config,
    llama_style,
    llama_weight_rules,
)
from legollm.core.exceptions import ModelLoadError
from legollm.models.config import ModelConfig
from legollm.models.presets import register_presets
from legollm.models.registry import ArchitectureSpec, register_architecture


def _qwen3(**fields: Any) -> ModelConfig:
    return llama_style(
        vocab_size=151936, context_length=40960, n_head=16, n_kv_heads=8, head_dim=128,
        norm_eps=1e-6, rope_theta=1000000.0, qk_norm=True, tie_embeddings=True, **fields,
    )  # fmt: skip


# Published configs (Qwen/Qwen3-*/config.json); parameter counts in the tests
PRESETS: dict[str, ModelConfig] = {
    "qwen3-0.6b": _qwen3(n_layer=28, n_embd=1024, ffn_hidden=3072),
    "qwen3-1.7b": _qwen3(n_layer=28, n_embd=2048, ffn_hidden=6144),
    # trains on a 2-core CPU in seconds; head_dim 32 != 64 / 4, as in the real models
    "tiny": llama_style(
        vocab_size=256, context_length=256, n_layer=2, n_head=4, n_kv_heads=2, n_embd=64,
        head_dim=32, ffn_hidden=176, norm_eps=1e-6, rope_theta=10000.0, qk_norm=True,
        tie_embeddings=True,
    ),
}  # fmt: skip
register_presets("qwen3", PRESETS)


def config_from_hf(hf: dict) -> ModelConfig:
    window = None
    if hf.get("use_sliding_window"):
        kinds = set(hf.get("layer_types") or [])
        if not kinds:  # transformers' rule: layers from max_window_layers on slide
            n, first = hf["num_hidden_layers"], hf.get("max_window_layers", 0)
            kinds = {"sliding_attention" if i >= first else "full_attention" for i in range(n)}
        if len(kinds) > 1:
            raise ModelLoadError(
                "this Qwen 3 config mixes sliding-window and full-attention layers, which one "
                "ModelConfig cannot express; set use_sliding_window to false to load it"
            )
        if kinds == {"sliding_attention"}:
            window = hf["sliding_window"]
    return llama_config_from_hf(hf, qk_norm=True, sliding_window=window)


def config_to_hf(c: ModelConfig) -> dict:
    hf = llama_hf_config(
        c, "qwen3", "Qwen3ForCausalLM", supports=("qk_norm", "sliding_window", "attention_bias")
    )
    windowed = c.sliding_window is not None
    hf.update(
        use_sliding_window=windowed,
        sliding_window=c.sliding_window,
        max_window_layers=0 if windowed else c.n_layer,  # every layer or none
    )
    return hf


SPEC = ArchitectureSpec(
    model_type="qwen3",
    config_from_hf=config_from_hf,
    config_to_hf=config_to_hf,
    weight_rules=llama_weight_rules(qk_norm=True),
)
register_architecture(SPEC)
