"""The Llama family's shared pieces: its component choices, config.json mapping and weight map.

Llama 3, Qwen 3, Mistral and their mixture-of-experts siblings are one Llama with a
change or two, so each architecture file assembles these pieces and adds its change:
``llama_style`` (RMSNorm, RoPE, SwiGLU, no biases) for presets, ``llama_config_from_hf``
and ``llama_hf_config`` for config.json, ``llama_weight_rules`` for the tensors, whose
Hugging Face names map one to one onto ours.
"""

from __future__ import annotations

from typing import Any

from legollm.core.exceptions import ConfigError, ModelLoadError
from legollm.models.config import ModelConfig
from legollm.models.registry import WeightRule

_LLAMA_STYLE: dict[str, Any] = dict(
    norm="rmsnorm",
    position="rope",
    ffn="swiglu",
    qkv_bias=False,
    attn_out_bias=False,
    mlp_bias=False,
    norm_bias=False,
    dropout=0.0,
)


def llama_style(**fields: Any) -> ModelConfig:
    """A ModelConfig with Llama's component choices; ``fields`` sets sizes and overrides."""
    return ModelConfig(**{**_LLAMA_STYLE, **fields})


# -- Hugging Face config.json <-> ModelConfig ------------------------------------
def rope_from_hf(hf: dict) -> tuple[float, dict | None]:
    """(rope_theta, rope_scaling) from an HF config of either generation.

    transformers 5 writes one ``rope_parameters`` dict holding rope_theta and the
    scaling; 4.x wrote ``rope_theta`` at the top level and ``rope_scaling`` beside it.
    """
    params = dict(hf.get("rope_scaling") or hf.get("rope_parameters") or {})
    theta = float(params.pop("rope_theta", hf.get("rope_theta", 10000.0)))
    kind = params.get("rope_type", params.get("type", "default"))
    if kind == "default":
        return theta, None
    if kind != "llama3":
        raise ModelLoadError(
            f"RoPE scaling {kind!r} is not supported (only 'default' and 'llama3'); "
            "remove rope_scaling from config.json to load without it"
        )
    try:
        scaling = {
            "rope_type": "llama3",
            "factor": float(params["factor"]),
            "low_freq_factor": float(params["low_freq_factor"]),
            "high_freq_factor": float(params["high_freq_factor"]),
            "original_max_position_embeddings": int(
                params.get("original_max_position_embeddings", hf["max_position_embeddings"])
            ),
        }
    except KeyError as e:
        raise ModelLoadError(f"llama3 rope scaling in config.json lacks {e.args[0]!r}") from e
    return theta, scaling


def rope_to_hf(c: ModelConfig) -> dict:
    """Both spellings, so transformers 4.x and 5.x read the same RoPE."""
    scaling = dict(c.rope_scaling) if c.rope_scaling else None
    params = {"rope_type": "default", **(scaling or {}), "rope_theta": c.rope_theta}
    return {"rope_theta": c.rope_theta, "rope_scaling": scaling, "rope_parameters": params}


def llama_config_from_hf(hf: dict, **fields: Any) -> ModelConfig:
    """A Llama-family config.json as a ModelConfig; ``fields`` adds what a sibling changes."""
    act = hf.get("hidden_act", "silu")
    if act != "silu":
        raise ModelLoadError(f"hidden_act {act!r} is not supported: SwiGLU needs 'silu'")
    try:
        n_embd, n_head = hf["hidden_size"], hf["num_attention_heads"]
        theta, scaling = rope_from_hf(hf)
        bias = bool(hf.get("attention_bias", False))
        return llama_style(
            vocab_size=hf["vocab_size"],
            context_length=hf["max_position_embeddings"],
            n_layer=hf["num_hidden_layers"],
            n_head=n_head,
            n_kv_heads=hf.get("num_key_value_heads") or n_head,
            n_embd=n_embd,
            head_dim=hf.get("head_dim") or n_embd // n_head,
            ffn_hidden=hf["intermediate_size"],
            norm_eps=hf.get("rms_norm_eps", 1e-6),
            rope_theta=theta,
            rope_scaling=scaling,
            qkv_bias=bias,
            attn_out_bias=bias,
            mlp_bias=bool(hf.get("mlp_bias", False)),
            tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
            **fields,
        )
    except KeyError as e:
        raise ModelLoadError(
            f"config.json lacks {e.args[0]!r}, which a Llama-style model needs"
        ) from e


def llama_hf_config(
    c: ModelConfig,
    model_type: str,
    architecture: str,
    *,
    supports: tuple[str, ...] = (),
) -> dict:
    """The HF config.json keys every Llama-style model shares (each sibling adds its own).

    ``supports`` names the optional features the target class has ("qk_norm",
    "sliding_window", "attention_bias", "mlp_bias"); a model using one it lacks would load wrong in
    transformers, so that is an error here.
    """
    if (c.norm, c.position, c.ffn) != ("rmsnorm", "rope", "swiglu"):
        raise ConfigError(
            f"{model_type} needs norm=rmsnorm, position=rope, ffn=swiglu; this model has "
            f"{c.norm}, {c.position}, {c.ffn}: save it as the architecture it is (e.g. gpt2)"
        )
    if c.qkv_bias != c.attn_out_bias:
        raise ConfigError(
            f"{model_type} has one attention_bias flag for q, k, v and o: set qkv_bias and "
            f"attn_out_bias alike (now {c.qkv_bias} and {c.attn_out_bias})"
        )
    used = {"qk_norm": c.qk_norm, "sliding_window": c.sliding_window is not None,
            "attention_bias": c.qkv_bias, "mlp_bias": c.mlp_bias}  # fmt: skip
    for feature, on in used.items():
        if on and feature not in supports:
            raise ConfigError(
                f"{model_type} has no {feature}: save this model as an architecture that has it "
                "(qk_norm: 'qwen3'; sliding_window: 'mistral'; biases: 'llama')"
            )
    return {
        "model_type": model_type,
        "architectures": [architecture],
        "vocab_size": c.vocab_size,
        "max_position_embeddings": c.context_length,
        "hidden_size": c.n_embd,
        "intermediate_size": c.ffn_size,
        "num_hidden_layers": c.n_layer,
        "num_attention_heads": c.n_head,
        "num_key_value_heads": c.kv_heads,
        "head_dim": c.head_size,
        "hidden_act": "silu",
        "rms_norm_eps": c.norm_eps,
        "attention_bias": c.qkv_bias,
        "attention_dropout": 0.0,
        "tie_word_embeddings": c.tie_embeddings,
        **rope_to_hf(c),
    }


# -- weights: HF names map one to one onto ours ------------------------------------
HF_LAYER = "model.layers.{i}."
OUR_LAYER = "blocks.{i}."


def _layer_rule(hf: str, ours: str) -> WeightRule:
    """One tensor of every layer: ``model.layers.{i}.<hf>`` -> ``blocks.{i}.<ours>``."""
    return WeightRule(HF_LAYER + hf, (OUR_LAYER + ours,))


def llama_weight_rules(qk_norm: bool = False) -> tuple[WeightRule, ...]:
    """Llama's weight map; biases are listed so checkpoints that have them load too."""
    rules = [WeightRule("model.embed_tokens.weight", ("tok_emb.weight",))]
    rules.append(_layer_rule("input_layernorm.weight", "attn_norm.weight"))
    for p in "qkvo":
        for kind in ("weight", "bias"):
            rules.append(_layer_rule(f"self_attn.{p}_proj.{kind}", f"attn.{p}_proj.{kind}"))
    if qk_norm:
        for p in "qk":
            rules.append(_layer_rule(f"self_attn.{p}_norm.weight", f"attn.{p}_norm.weight"))
    rules.append(_layer_rule("post_attention_layernorm.weight", "ffn_norm.weight"))
    for p in ("gate", "up", "down"):
        for kind in ("weight", "bias"):
            rules.append(_layer_rule(f"mlp.{p}_proj.{kind}", f"ffn.{p}_proj.{kind}"))
    rules.append(WeightRule("model.norm.weight", ("norm.weight",)))
    rules.append(WeightRule("lm_head.weight", ("lm_head.weight",)))
    return tuple(rules)


__all__ = [
    "HF_LAYER",
    "OUR_LAYER",
    "llama_config_from_hf",
    "llama_hf_config",
    "llama_style",
    "llama_weight_rules",
    "rope_from_hf",
    "rope_to_hf",
]
