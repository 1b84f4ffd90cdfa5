"""LoRA: train a low-rank update ``W + (alpha / r) * B @ A`` instead of ``W``.

A frozen ``nn.Linear`` (``out x in``) gets two small trainable matrices, ``A``
(``r x in``) and ``B`` (``out x r``). ``A`` starts random (as nn.Linear initialises
its weight) and ``B`` at zero, so at step 0 the wrapped model computes exactly what
the base model does, and training moves it away from there. Only ``A`` and ``B``
need gradients and optimizer state: ``r * (in + out)`` numbers per layer instead of
``in * out``.

:class:`LoRALinear` *is* an ``nn.Linear`` holding the base layer's own ``weight`` and
``bias`` parameters (shared, not copied), so state-dict names of the base weights do
not change: a base checkpoint loads into a LoRA model, and a merged model's state is
a plain model's state plus the ``lora_A`` / ``lora_B`` entries. Injection is a module
swap chosen by name pattern; nothing in the model class knows about LoRA.

Merging adds ``scaling * B @ A`` into ``W`` (and the layer then skips its LoRA path):
inference costs nothing extra, and :func:`remove_lora` turns the model back into
plain ``nn.Linear`` layers for ``save_pretrained``. Unmerging subtracts it again.
"""

from __future__ import annotations

import contextlib
import fnmatch
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from legollm.components.linear import Linear
from legollm.core.config import config_from_dict
from legollm.core.exceptions import ConfigError, ModelLoadError
from legollm.core.runtime import unwrap_model

# Target presets, as name patterns over our module names (see legollm/components):
# attention blocks.{i}.attn.{q,k,v,o}_proj, MLP blocks.{i}.ffn.{gate,up,down}_proj.
TARGET_PRESETS: dict[str, list[str]] = {
    "attn": ["blocks.*.attn.q_proj", "blocks.*.attn.k_proj", "blocks.*.attn.v_proj",
             "blocks.*.attn.o_proj"],
    "qv": ["blocks.*.attn.q_proj", "blocks.*.attn.v_proj"],
    "mlp": ["blocks.*.ffn.gate_proj", "blocks.*.ffn.up_proj", "blocks.*.ffn.down_proj"],
}  # fmt: skip
TARGET_PRESETS["all"] = TARGET_PRESETS["attn"] + TARGET_PRESETS["mlp"]


@dataclass
class LoRAConfig:
    """Which layers get adapters and how big they are.

    ``targets``: preset names (``attn``, ``qv``, ``mlp``, ``all``) and/or glob patterns
    over module names. A pattern without a dot matches the last name part
    (``"q_proj"``); with dots it matches the whole name (``"blocks.0.attn.*"``).
    """

    r: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: list[str] = field(default_factory=lambda: ["attn"])

    def __post_init__(self) -> None:
        if isinstance(self.targets, str):
            self.targets = _split_targets(self.targets)
        if not isinstance(self.r, int) or self.r < 1:
            raise ConfigError(f"LoRA rank r must be a positive integer, got {self.r!r}")
        if self.alpha <= 0:
            raise ConfigError(f"LoRA alpha must be > 0, got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"LoRA dropout must be in [0, 1), got {self.dropout}")
        if not self.targets:
            raise ConfigError(f"LoRA targets are empty; use presets {sorted(TARGET_PRESETS)}")

    @property
    def scaling(self) -> float:
        return self.alpha / self.r

    def patterns(self) -> list[str]:
        return [p for t in self.targets for p in TARGET_PRESETS.get(t, [t])]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LoRAConfig:
        if isinstance(d, dict) and isinstance(d.get("targets"), str):  # "attn+mlp"
            d = {**d, "targets": _split_targets(d["targets"])}
        return config_from_dict(cls, d, "LoRA config")

    @classmethod
    def parse(cls, text: str) -> LoRAConfig:
        """``"r=16,alpha=32,dropout=0.05,targets=attn+mlp"`` (the ``--lora`` flag)."""
        d: dict[str, Any] = {}
        for item in filter(None, (s.strip() for s in text.split(","))):
            key, sep, value = item.partition("=")
            if not sep:
                raise ConfigError(f"--lora item {item!r} is not key=value (e.g. r=16)")
            if key == "r":
                d[key] = int(value)
            elif key in ("alpha", "dropout"):
                d[key] = float(value)
            elif key == "targets":
                d[key] = [t for t in value.split("+") if t]
            else:
                raise ConfigError(f"--lora: unknown key {key!r}; use r, alpha, dropout, targets")
        return cls(**d)


def _split_targets(text: str) -> list[str]:
    """``"attn+mlp"`` or ``"attn,mlp"`` -> ``["attn", "mlp"]``."""
    return [t for t in text.replace("+", ",").split(",") if t]


class LoRALinear(Linear):
    """``y = x W^T + b + scaling * dropout(x) A^T B^T``; ``W`` and ``b`` frozen."""

    def __init__(
        self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0
    ) -> None:  # takes over base's parameters, no copy
        nn.Module.__init__(self)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight, self.bias = base.weight, base.bias
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        self.r, self.alpha, self.scaling = r, alpha, alpha / r
        kw = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Parameter(torch.empty(r, self.in_features, **kw))
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, r, **kw))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # nn.Linear's own init
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False
        self.enabled = True  # False: the base layer alone (see adapters_disabled)

    def delta_weight(self) -> torch.Tensor:
        return (self.lora_B @ self.lora_A) * self.scaling  # (out, in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)  # the frozen base, threaded where that pays
        if self.merged or not self.enabled:
            return y
        # (..., in) -> (..., r) -> (..., out): never materialises the (out, in) update
        return y + F.linear(F.linear(self.lora_dropout(x), self.lora_A), self.lora_B) * self.scaling

    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            self.weight += self.delta_weight().to(self.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.weight -= self.delta_weight().to(self.weight.dtype)
            self.merged = False

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, r={self.r}, alpha={self.alpha}, merged={self.merged}"


def _matches(name: str, pattern: str) -> bool:
    if "." not in pattern:
        return fnmatch.fnmatchcase(name.rsplit(".", 1)[-1], pattern)
    return fnmatch.fnmatchcase(name, pattern)


def find_targets(model: nn.Module, config: LoRAConfig) -> list[str]:
    """Names of the ``nn.Linear`` modules the config's patterns select (in model order)."""
    model = unwrap_model(model)
    linears = [n for n, m in model.named_modules() if type(m) in (nn.Linear, Linear)]
    patterns = config.patterns()
    chosen = [n for n in linears if any(_matches(n, p) for p in patterns)]
    if not chosen:
        sample = ", ".join(linears[:8]) + (" ..." if len(linears) > 8 else "")
        raise ConfigError(
            f"LoRA targets {config.targets} match no nn.Linear layer of this model; use a "
            f"preset ({', '.join(sorted(TARGET_PRESETS))}) or a pattern over its layer names: "
            f"{sample or 'none (the model has no nn.Linear)'}"
        )
    # a preset may name layers this architecture lacks (gate_proj in GELU MLPs); a pattern
    # the user wrote that matches nothing is a typo
    own = [t for t in config.targets if t not in TARGET_PRESETS]
    unused = [p for p in own if not any(_matches(n, p) for n in linears)]
    if unused:
        raise ConfigError(
            f"LoRA target pattern(s) {unused} match no nn.Linear layer; layer names look "
            f"like {linears[:3]}"
        )
    # merging into a weight that another module shares (a tied lm_head) would change both
    owners: dict[int, list[str]] = {}
    for n, m in model.named_modules():
        for p in m.parameters(recurse=False):
            owners.setdefault(id(p), []).append(n)
    for n in chosen:
        shared = [o for o in owners[id(model.get_submodule(n).weight)] if o != n]
        if shared:
            raise ConfigError(
                f"{n}.weight is tied to {shared[0]}; LoRA on a tied weight would change both "
                "when merged. Leave it out of targets (or untie the embeddings)"
            )
    return chosen


def apply_lora(model: nn.Module, config: LoRAConfig) -> list[str]:
    """Freeze the whole model and swap the targeted linears for :class:`LoRALinear`.

    Returns the replaced module names. Only the LoRA matrices stay trainable. Apply it
    before ``torch.compile`` (the Trainer compiles after it is given the model).
    """
    model = unwrap_model(model)
    if lora_layers(model):
        raise ConfigError("this model already has LoRA layers; remove_lora() it first")
    names = find_targets(model, config)
    for p in model.parameters():
        p.requires_grad_(False)
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(getattr(parent, child), config.r, config.alpha,
                                          config.dropout))  # fmt: skip
    model.lora_config = config  # type: ignore[assignment]  # for save_adapter / checkpoints
    return names


def lora_layers(model: nn.Module) -> dict[str, LoRALinear]:
    return {n: m for n, m in unwrap_model(model).named_modules() if isinstance(m, LoRALinear)}


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter weights: ``{name}.lora_A`` / ``{name}.lora_B`` of every layer."""
    out = {}
    for name, m in lora_layers(model).items():
        out[f"{name}.lora_A"] = m.lora_A.detach()
        out[f"{name}.lora_B"] = m.lora_B.detach()
    return out


def merge_lora(model: nn.Module) -> nn.Module:
    for m in lora_layers(model).values():
        m.merge()
    return model


def unmerge_lora(model: nn.Module) -> nn.Module:
    for m in lora_layers(model).values():
        m.unmerge()
    return model


@contextlib.contextmanager
def adapters_disabled(model: nn.Module) -> Iterator[nn.Module]:
    """Inside the block, the model computes what its base computes: every adapter is
    skipped. RL uses it for the reference policy (the starting model) without a second
    copy of the weights in memory. Merged adapters are in the weights: unmerge first."""
    layers = list(lora_layers(model).values())
    if any(m.merged for m in layers):
        raise ConfigError("adapters_disabled needs unmerged adapters; call unmerge_lora first")
    for m in layers:
        m.enabled = False
    try:
        yield model
    finally:
        for m in layers:
            m.enabled = True


def remove_lora(model: nn.Module, merge: bool = True) -> nn.Module:
    """Swap every LoRALinear back for a plain Linear (merged first unless ``merge=False``,
    which drops the adapters). The result is an ordinary model, trainable again."""
    model = unwrap_model(model)
    for name, m in lora_layers(model).items():
        if merge:
            m.merge()
        else:
            m.unmerge()
        plain = Linear(m.in_features, m.out_features, bias=m.bias is not None, device="meta")
        plain.weight, plain.bias = m.weight, m.bias
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, plain)
    for p in model.parameters():
        p.requires_grad_(True)
    if hasattr(model, "lora_config"):
        del model.lora_config
    return model


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts (a tied weight counts once)."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def load_lora_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy adapter tensors into the model's LoRA layers; every layer must be covered."""
    layers = lora_layers(model)
    expected = {f"{n}.lora_{ab}" for n in layers for ab in "AB"}
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ModelLoadError(
            f"adapter does not fit this model: missing {missing[:4]}, unexpected "
            f"{unexpected[:4]}; load it onto the base model it was trained on"
        )
    with torch.no_grad():
        for name, m in layers.items():
            for ab in "AB":
                src, dst = state[f"{name}.lora_{ab}"], getattr(m, f"lora_{ab}")
                if src.shape != dst.shape:
                    raise ModelLoadError(
                        f"adapter {name}.lora_{ab} has shape {tuple(src.shape)}, the model "
                        f"expects {tuple(dst.shape)}: a different base model or rank"
                    )
                dst.copy_(src)


__all__ = [
    "TARGET_PRESETS",
    "LoRAConfig",
    "LoRALinear",
    "adapters_disabled",
    "apply_lora",
    "find_targets",
    "load_lora_state",
    "lora_layers",
    "lora_state_dict",
    "merge_lora",
    "remove_lora",
    "trainable_parameters",
    "unmerge_lora",
]
