"""Architecture presets: parameter counts against transformers and the published sizes.

Both models are built on the ``meta`` device (shapes only, no memory), ours from
the preset and Hugging Face's from the config.json our ``config_to_hf`` writes, so
the count also checks that the exported config describes the same model.
"""

from __future__ import annotations

import functools

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from legollm.architectures import ARCHITECTURE_PRESETS, architecture_preset
from legollm.core.exceptions import ConfigError
from legollm.models import DecoderLM, count_parameters
from legollm.models.decoder import count_active_parameters
from legollm.models.registry import get_architecture

MODEL_TYPE = {"llama3": "llama", "qwen3": "qwen3", "mistral": "mistral", "mixtral": "mixtral",
              "qwen3_moe": "qwen3_moe"}  # fmt: skip
NAMES = [f"{f}:{p}" for f in MODEL_TYPE for p in ARCHITECTURE_PRESETS[f]]


@functools.cache  # built on meta, never modified: the 30B MoE's 18k modules take seconds
def _ours(name: str) -> DecoderLM:
    with torch.device("meta"):
        return DecoderLM(architecture_preset(name))


def _hf(name: str):
    family = name.partition(":")[0]
    hf = dict(get_architecture(MODEL_TYPE[family]).config_to_hf(architecture_preset(name)))
    config = AutoConfig.for_model(hf.pop("model_type"), **hf)
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_equals_transformers(name):
    hf = _hf(name)
    assert count_parameters(_ours(name)) == sum(p.numel() for p in hf.parameters())


# (preset, published size in billions, digits it is given to): model cards and papers
PUBLISHED = [
    ("llama3:llama-3-8b", 8.03, 2),
    ("llama3:llama-3.1-8b", 8.03, 2),
    ("llama3:llama-3.2-1b", 1.24, 2),
    ("llama3:llama-3.2-3b", 3.21, 2),
    ("qwen3:qwen3-0.6b", 0.6, 1),
    ("qwen3:qwen3-1.7b", 1.7, 1),
    ("mistral:mistral-7b-v0.1", 7.24, 2),
    ("mixtral:mixtral-8x7b-v0.1", 46.7, 1),
    ("qwen3_moe:qwen3-30b-a3b", 30.5, 1),
]


@pytest.mark.parametrize(("name", "billions", "digits"), PUBLISHED)
def test_parameter_count_matches_published_size(name, billions, digits):
    assert round(count_parameters(_ours(name)) / 1e9, digits) == billions


def test_mixtral_uses_its_published_active_parameters_per_token():
    """Mistral AI: Mixtral 8x7B has 46.7B parameters and uses 12.9B per token."""
    assert round(count_active_parameters(_ours("mixtral:mixtral-8x7b-v0.1")) / 1e9, 1) == 12.9


@pytest.mark.parametrize(
    ("name", "non_embedding", "with_separate_head"),
    [("qwen3:qwen3-0.6b", 0.44, 0.75), ("qwen3:qwen3-1.7b", 1.4, 2.0)],
)
def test_qwen3_sizes_as_qwen_counts_them(name, non_embedding, with_separate_head):
    """Qwen's cards give non-embedding sizes; 0.75B/2.0B count the tied head twice."""
    model = _ours(name)
    total, emb = count_parameters(model), model.tok_emb.weight.numel()
    assert round((total - emb) / 1e9, 2 if non_embedding < 1 else 1) == non_embedding
    assert round((total + emb) / 1e9, 2 if with_separate_head < 1 else 1) == with_separate_head


def test_presets_carry_the_published_architecture_choices():
    assert architecture_preset("llama3:llama-3.1-8b").rope_scaling["factor"] == 8.0
    assert architecture_preset("llama3:llama-3.2-1b").rope_scaling["factor"] == 32.0
    assert architecture_preset("llama3:llama-3-8b").rope_scaling is None
    assert architecture_preset("mistral:mistral-7b-v0.1").sliding_window == 4096
    q = architecture_preset("qwen3:qwen3-0.6b")
    assert q.qk_norm and q.head_size * q.n_head != q.n_embd


def test_presets_are_fresh_copies_and_unknown_names_list_the_known():
    a = architecture_preset("llama3:tiny")
    a.n_layer = 99
    assert architecture_preset("llama3:tiny").n_layer == 2
    with pytest.raises(ConfigError, match="llama3:llama-3-8b"):
        architecture_preset("llama3:nope")
    with pytest.raises(ConfigError, match="unknown architecture preset"):
        architecture_preset("tiny")
