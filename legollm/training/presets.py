"""The model presets a training run names: any ``family:name`` preset, sized by the run.

Presets live in one registry (``legollm.models.presets``). A run takes a preset's
ModelConfig fields without ``vocab_size`` and ``context_length``, which come from the
data and the block size. The plain names below predate ``family:name`` and stay
valid in configs: each stands for one GPT-2 preset.
"""

from __future__ import annotations

from typing import Any

from legollm.core.exceptions import ConfigError
from legollm.models.presets import get_preset

MODEL_PRESETS: dict[str, str] = {
    "tiny": "gpt2:tiny",
    "small": "gpt2:small",
    "shakespeare-gpu": "gpt2:shakespeare-gpu",
    "gpt2-124m": "gpt2:gpt2",
    "gpt2-350m": "gpt2:gpt2-medium",
}


def model_preset(name: str) -> dict[str, Any]:
    """A copy of the preset's ModelConfig fields, less the two the run sets."""
    if ":" not in name and name not in MODEL_PRESETS:
        raise ConfigError(
            f"unknown model preset {name!r}; use one of {sorted(MODEL_PRESETS)} "
            "or an architecture preset such as 'llama3:tiny'"
        )
    fields = get_preset(MODEL_PRESETS.get(name, name)).to_dict()
    for sized_by_the_run in ("vocab_size", "context_length"):
        del fields[sized_by_the_run]
    return fields


__all__ = ["MODEL_PRESETS", "model_preset"]
