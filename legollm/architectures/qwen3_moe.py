"""Qwen 3 mixture of experts (Qwen3-30B-A3B): Qwen 3's attention, a sparse feed-forward.

Attention is dense Qwen 3's (grouped-query, per-head q/k RMSNorm, RoPE); every
layer's feed-forward is a mixture of many small SwiGLU experts
(``legollm.components.moe``): 30B-A3B has 128 experts of width 768 and sends each
token through 8 of them, about 3B of its 30.5B parameters per token.
``norm_topk_prob`` says whether the 8 weights are renormalised to sum to 1
(30B-A3B: yes; transformers' default: no); ``moe_normalize_topk`` carries it.

Names map one to one: ``mlp.gate`` is the router, ``mlp.experts.E.{gate,up,down}_proj``
the experts. Configs that keep some layers dense (``mlp_only_layers``,
``decoder_sparse_step`` > 1) are refused: the released models have none.
"""

from __future__ import annotations

import dataclasses

from legollm.architectures._llama_family import llama_style, llama_weight_rules
from legollm.architectures._moe import dense_twin, moe_weight_rules, router_loss_from_hf
from legollm.architectures.qwen3 import config_from_hf as qwen3_config_from_hf
from legollm.architectures.qwen3 import config_to_hf as qwen3_config_to_hf
from legollm.core.exceptions import ModelLoadError
from legollm.models.config import ModelConfig
from legollm.models.presets import register_presets
from legollm.models.registry import ArchitectureSpec, register_architecture

# Published config (Qwen/Qwen3-30B-A3B/config.json); parameter count in the tests
PRESETS: dict[str, ModelConfig] = {
    "qwen3-30b-a3b": llama_style(
        vocab_size=151936, context_length=40960, n_layer=48, n_head=32, n_kv_heads=4,
        head_dim=128, n_embd=2048, ffn_hidden=768, norm_eps=1e-6, rope_theta=1e6,
        qk_norm=True, tie_embeddings=False, ffn="moe", n_experts=128, n_experts_per_token=8,
    ),
    # trains on a 2-core CPU in seconds
    "tiny": llama_style(
        vocab_size=256, context_length=256, n_layer=2, n_head=4, n_kv_heads=2, n_embd=64,
        head_dim=32, ffn_hidden=48, norm_eps=1e-6, rope_theta=10000.0, qk_norm=True,
        tie_embeddings=True, ffn="moe", n_experts=8, n_experts_per_token=2,
        router_aux_loss_coef=0.01,
    ),
}  # fmt: skip
register_presets("qwen3_moe", PRESETS)


def config_from_hf(hf: dict) -> ModelConfig:
    if hf.get("mlp_only_layers") or hf.get("decoder_sparse_step", 1) != 1:
        raise ModelLoadError(
            "this Qwen 3 MoE config keeps some layers dense (mlp_only_layers / "
            "decoder_sparse_step), which one ModelConfig cannot express"
        )
    dense = qwen3_config_from_hf({**hf, "intermediate_size": hf["moe_intermediate_size"]})
    return dataclasses.replace(
        dense,
        ffn="moe",
        n_experts=hf.get("num_experts", hf.get("num_local_experts")),
        n_experts_per_token=hf.get("num_experts_per_tok", 8),
        moe_normalize_topk=bool(hf.get("norm_topk_prob", False)),
        router_aux_loss_coef=router_loss_from_hf(hf),
    )


def config_to_hf(c: ModelConfig) -> dict:
    hf = qwen3_config_to_hf(dense_twin(c, "qwen3_moe"))
    hf.update(
        model_type="qwen3_moe",
        architectures=["Qwen3MoeForCausalLM"],
        moe_intermediate_size=c.ffn_size,
        num_experts=c.n_experts,
        num_experts_per_tok=c.n_experts_per_token,
        norm_topk_prob=c.moe_normalize_topk,
        decoder_sparse_step=1,
        mlp_only_layers=[],
        router_aux_loss_coef=c.router_aux_loss_coef,
        output_router_logits=c.router_aux_loss_coef > 0,
    )
    return hf


WEIGHT_RULES = moe_weight_rules(
    llama_weight_rules(qk_norm=True),
    "mlp",
    "gate",
    {p: p for p in ("gate_proj", "up_proj", "down_proj")},
)


SPEC = ArchitectureSpec(
    model_type="qwen3_moe",
    config_from_hf=config_from_hf,
    config_to_hf=config_to_hf,
    weight_rules=WEIGHT_RULES,
)
register_architecture(SPEC)
