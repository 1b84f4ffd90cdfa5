"""Mistral 7B: Llama with sliding-window attention.

The one change from Llama: each token attends to at most the ``sliding_window``
most recent positions (itself included), not the whole prefix, so attention
cost and the useful KV cache stop growing past the window; information from
further back still flows in through the layers below. v0.1 slides over 4096
tokens; later versions (v0.2, v0.3) set sliding_window to null and are plain
GQA Llamas with a larger rope_theta.
"""

from __future__ import annotations

from legollm.architectures._llama_family import (
    llama_config_from_hf,
    llama_hf_config,
    llama_style,
    llama_weight_rules,
)
from legollm.models.config import ModelConfig
from legollm.models.presets import register_presets
from legollm.models.registry import ArchitectureSpec, register_architecture

# Published config (mistralai/Mistral-7B-v0.1/config.json); parameter count in the tests
PRESETS: dict[str, ModelConfig] = {
    "mistral-7b-v0.1": llama_style(
        vocab_size=32000, context_length=32768, n_layer=32, n_head=32, n_kv_heads=8,
        n_embd=4096, ffn_hidden=14336, norm_eps=1e-5, rope_theta=10000.0,
        sliding_window=4096, tie_embeddings=False,
    ),
    # trains on a 2-core CPU in seconds; the window is shorter than a training block
    "tiny": llama_style(
        vocab_size=256, context_length=256, n_layer=2, n_head=4, n_kv_heads=2, n_embd=64,
        ffn_hidden=176, norm_eps=1e-5, rope_theta=10000.0, sliding_window=32,
        tie_embeddings=True,
    ),
}  # fmt: skip
register_presets("mistral", PRESETS)


def config_from_hf(hf: dict) -> ModelConfig:
    return llama_config_from_hf(hf, sliding_window=hf.get("sliding_window"))


def config_to_hf(c: ModelConfig) -> dict:
    hf = llama_hf_config(c, "mistral", "MistralForCausalLM", supports=("sliding_window",))
    hf["sliding_window"] = c.sliding_window
    return hf


SPEC = ArchitectureSpec(
    model_type="mistral",
    config_from_hf=config_from_hf,
    config_to_hf=config_to_hf,
    weight_rules=llama_weight_rules(),
)
register_architecture(SPEC)
