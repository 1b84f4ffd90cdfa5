"""Architectures as data: HF config mapping plus a weight map, registered by model_type.

Direction: ``legollm.architectures`` imports this module and registers its specs;
this module never imports an architecture. The lookups find the built-in ones by
importing that package by name, in one place (``discover_architectures``), the way
a plugin would be found, so the static import graph keeps models below architectures.

A weight-map entry says how one Hugging Face tensor becomes ours:
``WeightRule(hf="transformer.h.{i}.attn.c_attn.weight", ours=("blocks.{i}.attn.q_proj.weight",
...), transpose=True)`` means: transpose it (GPT-2 stores Conv1D weights as
(in, out)), then split it along dim 0 into as many equal parts as there are
names. Export runs the same rule backwards (concatenate, transpose).
``{i}`` stands for every layer and ``{e}`` for every expert of a mixture.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from legollm.core.exceptions import ModelLoadError
from legollm.models.config import ModelConfig


@dataclass(frozen=True)
class WeightRule:
    hf: str
    ours: tuple[str, ...]
    transpose: bool = False
    per_layer: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "per_layer", "{i}" in self.hf)


@dataclass(frozen=True)
class ArchitectureSpec:
    model_type: str
    config_from_hf: Callable[[dict], ModelConfig]
    config_to_hf: Callable[[ModelConfig], dict]
    weight_rules: tuple[WeightRule, ...]
    ignored_hf_keys: tuple[str, ...] = ()  # suffixes of HF buffers that are not weights

    def expand(self, n_layer: int, n_experts: int = 0) -> list[WeightRule]:
        """The rules with ``{i}`` filled in for every layer and ``{e}`` for every expert."""
        out = []
        for r in self.weight_rules:
            layers = range(n_layer) if r.per_layer else [None]
            experts = range(n_experts) if "{e}" in r.hf else [None]
            for i in layers:
                for e in experts:
                    fmt = {k: v for k, v in (("i", i), ("e", e)) if v is not None}
                    out.append(
                        WeightRule(
                            r.hf.format(**fmt), tuple(o.format(**fmt) for o in r.ours), r.transpose
                        )
                    )
        return out


ARCHITECTURES: dict[str, ArchitectureSpec] = {}

# the package whose modules register the built-in architectures and their presets
BUILTIN_ARCHITECTURES = "legollm.architectures"


def discover_architectures() -> None:
    """Import the built-in architectures so they register themselves (once; then a no-op).

    The one place models reaches up to architectures, by name at run time: an import
    statement here would close a cycle, since every architecture imports this module.
    """
    importlib.import_module(BUILTIN_ARCHITECTURES)


def register_architecture(spec: ArchitectureSpec) -> None:
    ARCHITECTURES[spec.model_type] = spec


def get_architecture(model_type: str | None) -> ArchitectureSpec:
    discover_architectures()
    if model_type not in ARCHITECTURES:
        raise ModelLoadError(
            f"unsupported model_type {model_type!r}; supported: {sorted(ARCHITECTURES)}"
        )
    return ARCHITECTURES[model_type]
