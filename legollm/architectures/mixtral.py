"""Mixtral 8x7B: Mistral with a sparse mixture of experts in place of the feed-forward.

Every layer holds 8 SwiGLU experts and a router; each token goes through its top
2 (``legollm.components.moe``), so a forward pass uses about 13B of the 46.7B
parameters. Attention is Mistral's (grouped-query, RoPE; the released models
set no sliding window).

Published checkpoints name each expert's matrices w1 (gate), w2 (down) and w3
(up) under ``block_sparse_moe``, with the router as ``block_sparse_moe.gate``;
transformers 5 fuses them in memory but still saves these names, so they map
one to one onto ours.
"""

from __future__ import annotations

from legollm.architectures._llama_family import (
    llama_config_from_hf,
    llama_hf_config,
    llama_style,
    llama_weight_rules,
)
from legollm.architectures._moe import dense_twin, moe_weight_rules, router_loss_from_hf
from legollm.core.exceptions import ConfigError
from legollm.models.config import ModelConfig
from legollm.models.presets import register_presets
from legollm.models.registry import ArchitectureSpec, register_architecture

# Published config (mistralai/Mixtral-8x7B-v0.1/config.json); parameter count in the tests
PRESETS: dict[str, ModelConfig] = {
    "mixtral-8x7b-v0.1": llama_style(
        vocab_size=32000, context_length=32768, n_layer=32, n_head=32, n_kv_heads=8,
        n_embd=4096, ffn_hidden=14336, norm_eps=1e-5, rope_theta=1e6, tie_embeddings=False,
        ffn="moe", n_experts=8, n_experts_per_token=2,
    ),
    # trains on a 2-core CPU in seconds
    "tiny": llama_style(
        vocab_size=256, context_length=256, n_layer=2, n_head=4, n_kv_heads=2, n_embd=64,
        ffn_hidden=96, norm_eps=1e-5, rope_theta=10000.0, tie_embeddings=True,
        ffn="moe", n_experts=4, n_experts_per_token=2, router_aux_loss_coef=0.02,
    ),
}  # fmt: skip
register_presets("mixtral", PRESETS)


def config_from_hf(hf: dict) -> ModelConfig:
    return llama_config_from_hf(
        hf,
        sliding_window=hf.get("sliding_window"),
        ffn="moe",
        n_experts=hf.get("num_local_experts", 8),
        n_experts_per_token=hf.get("num_experts_per_tok", 2),
        router_aux_loss_coef=router_loss_from_hf(hf),
    )


def config_to_hf(c: ModelConfig) -> dict:
    dense = dense_twin(c, "mixtral")  # for the shared Llama keys
    if not c.moe_normalize_topk:
        raise ConfigError("mixtral always renormalises the top-k weights: save as qwen3_moe")
    hf = llama_hf_config(dense, "mixtral", "MixtralForCausalLM", supports=("sliding_window",))
    hf.update(
        sliding_window=c.sliding_window,
        num_local_experts=c.n_experts,
        num_experts_per_tok=c.n_experts_per_token,
        router_aux_loss_coef=c.router_aux_loss_coef,
        output_router_logits=c.router_aux_loss_coef > 0,
    )
    return hf


WEIGHT_RULES = moe_weight_rules(
    llama_weight_rules(),
    "block_sparse_moe",
    "gate",
    {"w1": "gate_proj", "w2": "down_proj", "w3": "up_proj"},
)


SPEC = ArchitectureSpec(
    model_type="mixtral",
    config_from_hf=config_from_hf,
    config_to_hf=config_to_hf,
    weight_rules=WEIGHT_RULES,
)
register_architecture(SPEC)
