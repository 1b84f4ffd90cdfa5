"""Parameter-efficient fine-tuning: LoRA as a linear layer swapped in by name.

- ``lora``: LoRALinear, LoRAConfig, injection by target name, merge / unmerge / remove.
- ``io``: adapter directories (adapter_config.json + adapter weights) in and out.
"""

from legollm.peft.io import load_adapter, read_adapter_config, save_adapter
from legollm.peft.lora import (
    TARGET_PRESETS,
    LoRAConfig,
    LoRALinear,
    adapters_disabled,
    apply_lora,
    find_targets,
    load_lora_state,
    lora_layers,
    lora_state_dict,
    merge_lora,
    remove_lora,
    trainable_parameters,
    unmerge_lora,
)

__all__ = [
    "TARGET_PRESETS",
    "LoRAConfig",
    "LoRALinear",
    "adapters_disabled",
    "apply_lora",
    "find_targets",
    "load_adapter",
    "load_lora_state",
    "lora_layers",
    "lora_state_dict",
    "merge_lora",
    "read_adapter_config",
    "remove_lora",
    "save_adapter",
    "trainable_parameters",
    "unmerge_lora",
]
