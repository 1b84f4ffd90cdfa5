"""The one model config: every Lego choice is a field, so a variant is a field change.

Choices are stored as strings ("rmsnorm", "rope", "swiglu") so the config
round-trips through JSON/YAML and is saved beside the weights in every
checkpoint. Fields left as None (n_kv_heads, head_dim, ffn_hidden) are derived,
and read through ``kv_heads``, ``head_size`` and ``ffn_size``: the stored value
stays None, so ``dataclasses.replace(cfg, n_embd=...)`` re-derives them instead
of carrying stale numbers. ``__post_init__`` rejects inconsistent configs with
the reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from legollm.core.config import config_from_dict
from legollm.core.exceptions import ConfigError

NORMS = ("layernorm", "rmsnorm")
POSITIONS = ("learned", "rope", "none")
FFNS = ("gelu_mlp", "swiglu", "moe")  # moe: a sparse mixture of SwiGLU experts
GELU_APPROXIMATIONS = ("tanh", "none")  # GPT-2's tanh form; "none" is exact (erf)
ATTN_IMPLS = ("sdpa", "manual")
# How DecoderLM initialises its weights (see DecoderLM.init_weights):
# gpt2: N(0, init_std), biases 0, residual-stream projections N(0, init_std / sqrt(2 n_layer));
# normal: N(0, init_std) everywhere, biases 0 (transformers' Llama/Mistral/Qwen init);
# pytorch: the modules' own defaults (nn.Linear kaiming-uniform, nn.Embedding N(0, 1)),
#   as a model written with plain torch.nn gets (LLMs-from-scratch's GPT, for one).
INITS = ("gpt2", "normal", "pytorch")


@dataclass
class ModelConfig:
    vocab_size: int = 50257
    context_length: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    n_kv_heads: int | None = None  # None -> n_head (MHA); 1 -> MQA; else GQA
    head_dim: int | None = None  # None -> n_embd // n_head
    ffn_hidden: int | None = None  # None -> 4 * n_embd
    norm: str = "layernorm"
    norm_eps: float = 1e-5
    position: str = "learned"
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None
    ffn: str = "gelu_mlp"
    gelu_approximate: str = "tanh"
    qkv_bias: bool = True
    attn_out_bias: bool = True
    mlp_bias: bool = True
    norm_bias: bool = True
    qk_norm: bool = False
    sliding_window: int | None = None
    dropout: float = 0.0
    tie_embeddings: bool = True
    attn_impl: str = "sdpa"
    init: str = "gpt2"  # one of INITS: the weights a fresh model starts from
    init_std: float = 0.02  # the std of the gpt2 and normal inits
    n_experts: int | None = None  # ffn="moe": SwiGLU experts per layer (Mixtral: 8)
    n_experts_per_token: int = 2  # ffn="moe": experts each token goes through
    moe_normalize_topk: bool = True  # ffn="moe": mix the chosen k by renormalised probabilities
    router_aux_loss_coef: float = 0.0  # ffn="moe": weight of the load-balancing loss in training

    def __post_init__(self) -> None:
        for name, allowed in (
            ("norm", NORMS),
            ("position", POSITIONS),
            ("ffn", FFNS),
            ("attn_impl", ATTN_IMPLS),
            ("gelu_approximate", GELU_APPROXIMATIONS),
            ("init", INITS),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not one of {allowed}")
        for name in ("vocab_size", "context_length", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.head_dim is None and self.n_embd % self.n_head:
            raise ConfigError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}) so each "
                "head gets n_embd // n_head dimensions (or set head_dim explicitly)"
            )
        if self.n_head % self.kv_heads:
            raise ConfigError(
                f"n_head ({self.n_head}) must be a multiple of n_kv_heads ({self.kv_heads}): "
                "each key/value head serves a whole group of query heads"
            )
        if self.position == "rope" and self.head_size % 2:
            raise ConfigError(f"RoPE rotates pairs of dimensions: head_dim {self.head_size} is odd")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if (self.ffn == "moe") != (self.n_experts is not None):
            raise ConfigError(
                f"ffn={self.ffn!r} with n_experts={self.n_experts}: a mixture of experts is "
                "ffn='moe' with n_experts set; other feed-forwards leave n_experts None"
            )
        if self.n_experts is not None and not 1 <= self.n_experts_per_token <= self.n_experts:
            raise ConfigError(
                f"n_experts_per_token must be between 1 and n_experts ({self.n_experts}), "
                f"got {self.n_experts_per_token}"
            )
        if self.router_aux_loss_coef < 0:
            raise ConfigError(f"router_aux_loss_coef must be >= 0, got {self.router_aux_loss_coef}")
        if self.sliding_window is not None and self.sliding_window < 1:
            raise ConfigError(
                f"sliding_window must be a positive number of positions, got "
                f"{self.sliding_window}; use None for full attention"
            )

    @property
    def kv_heads(self) -> int:
        """Key/value heads: n_head (MHA) unless n_kv_heads says fewer (GQA, MQA)."""
        return self.n_head if self.n_kv_heads is None else self.n_kv_heads

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head if self.head_dim is None else self.head_dim

    @property
    def ffn_size(self) -> int:
        return 4 * self.n_embd if self.ffn_hidden is None else self.ffn_hidden

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return config_from_dict(cls, d, "model config")
