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

Qwen 3 and Mistral are Llama with one change each (per-head q/k norm; a sliding
attention window), so the HF config and weight helpers here are shared by them.
"""

from __future__ import annotations

from typing import Any

from legollm.core.exceptions import ConfigError, ModelLoadError
from legollm.models.config import ModelConfig
from legollm.models.registry import ArchitectureSpec, WeightRule, register_architecture

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

# Llama 3.1 / 3.2's frequency scaling; 3.2 stretches by 32 instead of 8
_LLAMA31_ROPE = dict(
    rope_type="llama3",
    factor=8.0,
    low_freq_factor=1.0,
    high_freq_factor=4.0,
    original_max_position_embeddings=8192,
)


def llama_style(**fields: Any) -> ModelConfig:
    """A ModelConfig with Llama's component choices; ``fields`` sets sizes and overrides."""
    return ModelConfig(**{**_LLAMA_STYLE, **fields})


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


def config_from_hf(hf: dict, **fields: Any) -> ModelConfig:
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


def hf_config(
    c: ModelConfig,
    model_type: str,
    architecture: str,
    *,
    supports: tuple[str, ...] = (),
) -> dict:
    """The HF config.json keys every Llama-style model shares (Qwen 3 and Mistral add theirs).

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


def config_to_hf(c: ModelConfig) -> dict:
    return {
        **hf_config(c, "llama", "LlamaForCausalLM", supports=("attention_bias", "mlp_bias")),
        "mlp_bias": c.mlp_bias,
    }


# -- weights: HF names map one to one onto ours ------------------------------------
_H = "model.layers.{i}."
_B = "blocks.{i}."


def weight_rules(qk_norm: bool = False) -> tuple[WeightRule, ...]:
    """Llama's weight map; biases are listed so checkpoints that have them load too."""
    rules = [WeightRule("model.embed_tokens.weight", ("tok_emb.weight",))]
    rules.append(WeightRule(_H + "input_layernorm.weight", (_B + "attn_norm.weight",)))
    for p in "qkvo":
        rules.append(WeightRule(_H + f"self_attn.{p}_proj.weight", (_B + f"attn.{p}_proj.weight",)))
        rules.append(WeightRule(_H + f"self_attn.{p}_proj.bias", (_B + f"attn.{p}_proj.bias",)))
    if qk_norm:
        for p in "qk":
            rules.append(
                WeightRule(_H + f"self_attn.{p}_norm.weight", (_B + f"attn.{p}_norm.weight",))
            )
    rules.append(WeightRule(_H + "post_attention_layernorm.weight", (_B + "ffn_norm.weight",)))
    for p in ("gate", "up", "down"):
        rules.append(WeightRule(_H + f"mlp.{p}_proj.weight", (_B + f"ffn.{p}_proj.weight",)))
        rules.append(WeightRule(_H + f"mlp.{p}_proj.bias", (_B + f"ffn.{p}_proj.bias",)))
    rules.append(WeightRule("model.norm.weight", ("norm.weight",)))
    rules.append(WeightRule("lm_head.weight", ("lm_head.weight",)))
    return tuple(rules)


def moe_weight_rules(
    dense: tuple[WeightRule, ...], block: str, router: str, experts: dict[str, str]
) -> tuple[WeightRule, ...]:
    """A dense map with the feed-forward's rules replaced by a mixture of experts'.

    ``block`` is the HF name of a layer's MoE block (``block_sparse_moe``, ``mlp``),
    ``router`` its router's name inside it, ``experts`` each expert matrix's HF name
    -> ours (``{"w1": "gate_proj", ...}``); ``{e}`` runs over the experts.
    """
    hf, ours = _H + block + ".", _B + "ffn."
    rules = [r for r in dense if ".mlp." not in r.hf]
    rules.append(WeightRule(hf + f"{router}.weight", (ours + "router.weight",)))
    for name, our_name in experts.items():
        rules.append(
            WeightRule(
                hf + f"experts.{{e}}.{name}.weight", (ours + f"experts.{{e}}.{our_name}.weight",)
            )
        )
    return tuple(rules)


def router_loss_from_hf(hf: dict) -> float:
    """transformers adds the router's load-balancing loss only with output_router_logits."""
    return float(hf.get("router_aux_loss_coef", 0.0)) if hf.get("output_router_logits") else 0.0


WEIGHT_RULES = weight_rules()

SPEC = ArchitectureSpec(
    model_type="llama",
    config_from_hf=config_from_hf,
    config_to_hf=config_to_hf,
    weight_rules=WEIGHT_RULES,
    ignored_hf_keys=(".rotary_emb.inv_freq",),  # a buffer some older checkpoints saved
)
register_architecture(SPEC)
