"""The one decoder model, its config, the registries and Hugging Face checkpoint I/O.

- ``config``: ModelConfig, every Lego choice as a field.
- ``decoder``: DecoderLM, the one model, assembled from components by the config.
- ``loss``: the training loss from a forward's logits (cross-entropy + a MoE's router term).
- ``registry``: ArchitectureSpec and WeightRule (an architecture as data), looked up by model_type.
- ``presets``: named ModelConfigs (``family:name``), registered by the architectures.
- ``pretrained``: load and save Hugging Face checkpoint dirs through an architecture's weight map.
- ``loading``: the one loader: a checkpoint, a run dir or an HF dir -> model + tokenizer.

``quantize(model, "int8")`` (from ``legollm.components.quantized``) is exported here
beside the loaders, as the step between loading a model and decoding with it.

Architectures sit above this package: they register themselves here, and the
lookups find the built-in ones by importing ``legollm.architectures`` by name.
"""

from legollm.components.quantized import quantize
from legollm.models.config import ModelConfig
from legollm.models.decoder import DecoderLM, count_parameters
from legollm.models.pretrained import load_pretrained, save_pretrained


def build_model(config: ModelConfig | dict) -> DecoderLM:
    """A freshly initialised DecoderLM from a config or its dict form."""
    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    return DecoderLM(config)


__all__ = [
    "DecoderLM",
    "ModelConfig",
    "build_model",
    "count_parameters",
    "load_pretrained",
    "quantize",
    "save_pretrained",
]
