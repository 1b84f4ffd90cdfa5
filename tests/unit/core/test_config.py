"""config_from_dict: every config class checks each field against its annotation and names it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from legollm.core.config import config_from_dict
from legollm.core.exceptions import ConfigError
from legollm.data.prepare import PrepareConfig
from legollm.finetuning.dpo import DPOConfig
from legollm.finetuning.sft import SFTConfig
from legollm.models import ModelConfig
from legollm.peft import LoRAConfig
from legollm.training.config import TrainConfig


@dataclass
class Example:
    steps: int = 1
    rate: float = 0.5
    flag: bool = False
    name: str = "x"
    limit: int | None = None
    model: str | dict[str, Any] = "tiny"
    tags: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)


@pytest.mark.parametrize(
    "d, message",
    [
        ({"steps": "ten"}, "example: steps must be an int, got 'ten' (str)"),
        ({"steps": 2.5}, "example: steps must be an int, got 2.5 (float)"),
        ({"steps": True}, "example: steps must be an int, got True (bool)"),
        ({"rate": False}, "example: rate must be a number, got False (bool)"),
        ({"rate": "fast"}, "example: rate must be a number, got 'fast' (str)"),
        ({"flag": 1}, "example: flag must be a bool (true/false), got 1 (int)"),
        ({"name": 3}, "example: name must be a string, got 3 (int)"),
        ({"limit": "none"}, "example: limit must be an int or null, got 'none' (str)"),
        ({"model": 7}, "example: model must be a string or a mapping, got 7 (int)"),
        ({"tags": "a"}, "example: tags must be a list of strings, got 'a' (str)"),
        ({"tags": ["a", 2]}, "example: tags[1] must be a string, got 2 (int)"),
        ({"sizes": {"a": "big"}}, "example: sizes['a'] must be an int, got 'big' (str)"),
    ],
)
def test_a_wrong_type_names_the_field_what_it_must_be_and_what_it_got(d, message):
    with pytest.raises(ConfigError) as e:
        config_from_dict(Example, d, "example")
    assert str(e.value) == message


def test_numbers_convert_only_where_nothing_is_lost():
    c = config_from_dict(Example, {"steps": 1e4, "rate": 2, "limit": 3.0}, "example")
    assert (c.steps, c.limit) == (10000, 3) and type(c.steps) is int and type(c.limit) is int
    assert c.rate == 2.0 and type(c.rate) is float
    # YAML 1.1 reads `rate: 3e-4` (no dot) as a string
    assert config_from_dict(Example, {"rate": "3e-4"}, "example").rate == 3e-4


def test_unknown_fields_are_listed_with_the_known_ones():
    with pytest.raises(
        ConfigError, match=r"unknown example field\(s\) \['step'\]; known: .*'steps'"
    ):
        config_from_dict(Example, {"step": 3}, "example")
    with pytest.raises(ConfigError, match="example must be a mapping"):
        config_from_dict(Example, ["steps"], "example")


@pytest.mark.parametrize(
    "cls, d, message",
    [
        (TrainConfig, {"max_iters": "ten"}, "train config: max_iters must be an int, got 'ten'"),
        (TrainConfig, {"max_iters": 2.5}, "train config: max_iters must be an int, got 2.5"),
        (TrainConfig, {"compile": "yes"}, "train config: compile must be a bool"),
        (TrainConfig, {"model": ["tiny"]}, "train config: model must be a string or a mapping"),
        (ModelConfig, {"n_layer": "2"}, "model config: n_layer must be an int, got '2'"),
        (ModelConfig, {"qkv_bias": "no"}, "model config: qkv_bias must be a bool"),
        (LoRAConfig, {"r": 2.5}, "LoRA config: r must be an int, got 2.5"),
        (LoRAConfig, {"targets": ["attn", 1]}, "LoRA config: targets[1] must be a string"),
        (SFTConfig, {"val_fraction": "a lot"}, "sft config: val_fraction must be a number"),
        (SFTConfig, {"train": {"max_iters": "ten"}}, "train config: max_iters must be an int"),
        (DPOConfig, {"beta": "high"}, "dpo config: beta must be a number"),
        (PrepareConfig, {"inputs": ["a"], "output_dir": "o", "seed": "s"}, "prepare config: seed"),
    ],
)
def test_every_config_class_checks_its_types(cls, d, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[")):
        cls.from_dict(d)


def test_the_shipped_shapes_still_load():
    """Strings for LoRA targets and prepare inputs, ints where floats go, as YAML writes them."""
    assert LoRAConfig.from_dict({"targets": "attn+mlp", "alpha": 32}).targets == ["attn", "mlp"]
    p = PrepareConfig.from_dict({"inputs": "a.txt", "output_dir": "o"})
    assert p.inputs == ["a.txt"]
    with pytest.raises(ConfigError, match=r"prepare config needs \['output_dir'\]"):
        PrepareConfig.from_dict({"inputs": "a.txt"})
    t = TrainConfig.from_dict({"lr": 1, "min_lr": 0, "max_iters": 1e3})
    assert t.max_iters == 1000 and t == TrainConfig.from_dict(t.to_dict())
