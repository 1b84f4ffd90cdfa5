"""Named model configs, one registry for all of them: ``family:name`` -> ModelConfig.

Each architecture module registers its presets (published sizes and a tiny one for
tests) under its family name: ``llama3:llama-3.2-1b``, ``qwen3:tiny``,
``gpt2:gpt2-medium``, ``gpt2:shakespeare-gpu``. Names are looked up exactly; a
lookup returns a fresh copy, so changing it never changes the preset. Like
``get_architecture``, a lookup first lets the built-in architectures register
(``discover_architectures``), so this module imports none of them.
"""

from __future__ import annotations

from collections.abc import Mapping

from legollm.core.exceptions import ConfigError
from legollm.models.config import ModelConfig
from legollm.models.registry import discover_architectures

# family -> name -> config; it fills as architectures import, so read it through the lookups
PRESETS: dict[str, dict[str, ModelConfig]] = {}


def register_presets(family: str, presets: Mapping[str, ModelConfig]) -> None:
    """Add ``family:name`` for every name in ``presets`` (the configs are shared, not copied)."""
    PRESETS.setdefault(family, {}).update(presets)


def preset_names() -> list[str]:
    """Every registered ``family:name``, sorted."""
    discover_architectures()
    return sorted(f"{family}:{name}" for family, named in PRESETS.items() for name in named)


def get_preset(name: str) -> ModelConfig:
    """The ModelConfig of ``family:name`` (a fresh copy, safe to modify)."""
    discover_architectures()
    family, _, preset = name.partition(":")
    config = PRESETS.get(family, {}).get(preset)
    if config is None:
        raise ConfigError(f"unknown architecture preset {name!r}; use one of {preset_names()}")
    return ModelConfig.from_dict(config.to_dict())


__all__ = ["PRESETS", "get_preset", "preset_names", "register_presets"]
