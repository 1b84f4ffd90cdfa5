"""The Llama family's mixture-of-experts pieces, shared by Mixtral and Qwen 3 MoE.

Both replace every layer's SwiGLU with a router and a set of SwiGLU experts
(``legollm.components.moe``) and keep the rest of their dense sibling, so each
writes its config.json from the dense twin (``dense_twin``), maps its weights by
swapping the feed-forward rules (``moe_weight_rules``) and reads the router loss
the way transformers applies it (``router_loss_from_hf``).
"""

from __future__ import annotations

import dataclasses

from legollm.architectures._llama_family import HF_LAYER, OUR_LAYER
from legollm.core.exceptions import ConfigError
from legollm.models.config import ModelConfig
from legollm.models.registry import WeightRule


def dense_twin(c: ModelConfig, model_type: str) -> ModelConfig:
    """``c`` with one SwiGLU in place of the experts, for the config keys a dense sibling writes."""
    if c.ffn != "moe":
        raise ConfigError(f"{model_type} is a mixture of experts; this model has ffn={c.ffn!r}")
    return dataclasses.replace(c, ffn="swiglu", n_experts=None)


def moe_weight_rules(
    dense: tuple[WeightRule, ...], block: str, router: str, experts: dict[str, str]
) -> tuple[WeightRule, ...]:
    """A dense map with the feed-forward's rules replaced by a mixture of experts'.

    ``block`` is the HF name of a layer's MoE block (``block_sparse_moe``, ``mlp``),
    ``router`` its router's name inside it, ``experts`` each expert matrix's HF name
    -> ours (``{"w1": "gate_proj", ...}``); ``{e}`` runs over the experts.
    """
    hf, ours = HF_LAYER + block + ".", OUR_LAYER + "ffn."
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


__all__ = ["dense_twin", "moe_weight_rules", "router_loss_from_hf"]
