"""Architectures: presets and weight maps over the one DecoderLM (importing registers them).

Presets are named ``family:name``, e.g. ``llama3:llama-3.2-1b``, ``qwen3:tiny``,
``mistral:mistral-7b-v0.1``, ``mixtral:mixtral-8x7b-v0.1``, ``gpt2:gpt2-medium``; ``architecture_preset`` looks
one up by exact name.
"""

from legollm.architectures import gpt2, llama3, mistral, mixtral, qwen3, qwen3_moe
from legollm.core.exceptions import ConfigError
from legollm.models.config import ModelConfig

ARCHITECTURE_PRESETS: dict[str, dict[str, ModelConfig]] = {
    "gpt2": {v.value: c for v, c in gpt2.MODEL_CONFIGS.items()},
    "llama3": llama3.PRESETS,
    "qwen3": qwen3.PRESETS,
    "mistral": mistral.PRESETS,
    "mixtral": mixtral.PRESETS,
    "qwen3_moe": qwen3_moe.PRESETS,
}


def architecture_preset(name: str) -> ModelConfig:
    """The ModelConfig of ``family:name`` (a fresh copy, safe to modify)."""
    family, sep, preset = name.partition(":")
    known = sorted(f"{f}:{p}" for f, ps in ARCHITECTURE_PRESETS.items() for p in ps)
    if not sep or preset not in ARCHITECTURE_PRESETS.get(family, {}):
        raise ConfigError(f"unknown architecture preset {name!r}; use one of {known}")
    return ModelConfig.from_dict(ARCHITECTURE_PRESETS[family][preset].to_dict())


__all__ = ["ARCHITECTURE_PRESETS", "architecture_preset"]
