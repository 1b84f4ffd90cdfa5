"""The one decoder model, its config, and Hugging Face checkpoint I/O."""

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
    "save_pretrained",
]
