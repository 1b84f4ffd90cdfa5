"""Adapter files: only the LoRA matrices and their config, never the base weights.

An adapter directory holds ``adapter_config.json`` (the :class:`LoRAConfig`) and
``adapter_model.safetensors`` (``{layer}.lora_A`` / ``{layer}.lora_B``), each written
to a temp file and renamed. A few megabytes next to a base model of gigabytes;
:func:`load_adapter` re-injects the same layers into a freshly loaded base model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from legollm.core.exceptions import ConfigError, ModelLoadError
from legollm.core.runtime import unwrap_model
from legollm.core.utils import atomic_path, atomic_write
from legollm.peft.lora import (
    LoRAConfig,
    apply_lora,
    load_lora_state,
    lora_layers,
    lora_state_dict,
)

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"


def save_adapter(model: nn.Module, directory: str | os.PathLike[str]) -> Path:
    """Write the model's LoRA weights and config into ``directory``; returns it."""
    config = getattr(unwrap_model(model), "lora_config", None)
    state = lora_state_dict(model)
    if config is None or not state:
        raise ConfigError("the model has no LoRA layers to save; apply_lora() it first")
    if any(m.merged for m in lora_layers(model).values()):
        raise ConfigError("the adapters are merged into the weights; unmerge_lora() first")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous().cpu() for k, v in state.items()}
    with atomic_path(out / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})
    with atomic_write(out / CONFIG_NAME) as f:
        json.dump({"peft_type": "lora", **config.to_dict()}, f, indent=2)
    return out


def read_adapter_config(directory: str | os.PathLike[str]) -> LoRAConfig:
    p = Path(directory) / CONFIG_NAME
    if not p.is_file():
        raise ModelLoadError(f"no {CONFIG_NAME} in {directory}: not a LegoLLM adapter directory")
    try:
        d = json.loads(p.read_text())
    except ValueError as e:
        raise ModelLoadError(f"corrupt {p}: {e}") from e
    if d.pop("peft_type", "lora") != "lora":
        raise ModelLoadError(f"{p} is not a LoRA adapter")
    return LoRAConfig.from_dict(d)


def load_adapter(model: nn.Module, directory: str | os.PathLike[str]) -> nn.Module:
    """Inject LoRA layers as the adapter's config says and load its weights (in place)."""
    config = read_adapter_config(directory)
    weights = Path(directory) / WEIGHTS_NAME
    if not weights.is_file():
        raise ModelLoadError(f"no {WEIGHTS_NAME} in {directory}")
    try:
        state = load_file(str(weights))
    except Exception as e:  # safetensors raises its own error types
        raise ModelLoadError(f"cannot read {weights}: {e}") from e
    apply_lora(model, config)
    device = next(model.parameters()).device
    load_lora_state(model, {k: v.to(device) for k, v in state.items()})
    return model


__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "load_adapter", "read_adapter_config", "save_adapter"]
