"""The one model config: every Lego choice is a field, so a variant is a field change.

Choices are stored as strings ("rmsnorm", "rope", "swiglu") so the config
round-trips through JSON/YAML and is saved beside the weights in every
checkpoint. Derived fields (head_dim, n_kv_heads, ffn_hidden) are filled in once
in ``__post_init__``, which also rejects inconsistent configs with the reason.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from legollm.core.exceptions import ConfigError

NORMS = ("layernorm", "rmsnorm")
POSITIONS = ("learned", "rope", "none")
FFNS = ("gelu_mlp", "swiglu")
ATTN_IMPLS = ("sdpa", "manual")


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
    qkv_bias: bool = True
    attn_out_bias: bool = True
    mlp_bias: bool = True
    norm_bias: bool = True
    qk_norm: bool = False
    sliding_window: int | None = None
    dropout: float = 0.0
    tie_embeddings: bool = True
    attn_impl: str = "sdpa"
    init_std: float = 0.02

    def __post_init__(self) -> None:
        for name, allowed in (
            ("norm", NORMS),
            ("position", POSITIONS),
            ("ffn", FFNS),
            ("attn_impl", ATTN_IMPLS),
        ):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name}={getattr(self, name)!r} is not one of {allowed}")
        for name in ("vocab_size", "context_length", "n_layer", "n_head", "n_embd"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.head_dim is None:
            if self.n_embd % self.n_head:
                raise ConfigError(
                    f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}) so each "
                    "head gets n_embd // n_head dimensions (or set head_dim explicitly)"
                )
            self.head_dim = self.n_embd // self.n_head
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_head
        if self.n_head % self.n_kv_heads:
            raise ConfigError(
                f"n_head ({self.n_head}) must be a multiple of n_kv_heads ({self.n_kv_heads}): "
                "each key/value head serves a whole group of query heads"
            )
        if self.position == "rope" and self.head_dim % 2:
            raise ConfigError(f"RoPE rotates pairs of dimensions: head_dim {self.head_dim} is odd")
        if self.ffn_hidden is None:
            self.ffn_hidden = 4 * self.n_embd
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"unknown model config fields: {sorted(unknown)}")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)
