"""Architectures: each a thin file of presets, HF config mapping and weight map over the one DecoderLM.

Importing this package registers every architecture (``legollm.models.registry``) and
its presets (``legollm.models.presets``); models finds them by importing it by name
(``discover_architectures``), never by an import statement.

- ``gpt2``: GPT-2 124M to 1.5B and the small GPT-2-style models trained from scratch.
- ``llama3``: Llama 3, 3.1 and 3.2 (RoPE frequency scaling, tied heads on 3.2).
- ``qwen3``: Qwen 3 dense, Llama with per-head q/k RMSNorm.
- ``mistral``: Mistral 7B, Llama with a sliding attention window.
- ``mixtral``: Mixtral 8x7B, Mistral with a sparse mixture of experts.
- ``qwen3_moe``: Qwen 3 MoE (30B-A3B), Qwen 3's attention over 128 experts.
- ``_llama_family``: the pieces the Llama-family files share (style, config.json mapping, weights).
- ``_moe``: the mixture-of-experts pieces Mixtral and Qwen 3 MoE share.

Presets are named ``family:name``, e.g. ``llama3:llama-3.2-1b``, ``qwen3:tiny``,
``mistral:mistral-7b-v0.1``, ``mixtral:mixtral-8x7b-v0.1``, ``gpt2:gpt2-medium``;
``architecture_preset`` looks one up by exact name.
"""

from legollm.architectures import gpt2, llama3, mistral, mixtral, qwen3, qwen3_moe
from legollm.models.presets import PRESETS as ARCHITECTURE_PRESETS
from legollm.models.presets import get_preset as architecture_preset

__all__ = [
    "ARCHITECTURE_PRESETS",
    "architecture_preset",
    "gpt2",
    "llama3",
    "mistral",
    "mixtral",
    "qwen3",
    "qwen3_moe",
]
