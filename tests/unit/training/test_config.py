"""TrainConfig: YAML, key=value overrides, and clear errors for bad values."""

import pytest

from legollm.core.exceptions import ConfigError
from legollm.training.config import TrainConfig, apply_overrides


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("data_dir: d\nlr: 1.0e-3\nmodel: small\nmax_iters: 10\n")
    cfg = TrainConfig.from_yaml(
        p, ["lr=3e-4", "compile=true", "model.n_layer=2", "lr_decay_iters=null"]
    )
    assert cfg.lr == 3e-4 and isinstance(cfg.lr, float)
    assert cfg.compile is True
    assert cfg.lr_decay_iters is None
    # the preset name became its fields, with one changed
    assert cfg.model["n_layer"] == 2 and cfg.model["n_embd"] == 128
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    "d, words",
    [
        ({"lrr": 1.0}, "lrr"),
        ({"batch_size": 0}, "batch_size"),
        ({"min_lr": 1.0, "lr": 0.1}, "min_lr"),
        ({"schedule": "linear"}, "schedule"),
        ({"device": "tpu"}, "device"),
        ({"precision": "fp8"}, "precision"),
    ],
)
def test_bad_values_name_the_field(d, words):
    with pytest.raises(ConfigError, match=words):
        TrainConfig.from_dict(d)


def test_bad_override_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["lr"])
    with pytest.raises(ConfigError, match="not found"):
        TrainConfig.from_yaml(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="unknown model preset"):
        apply_overrides({"model": "gpt9"}, ["model.n_layer=2"])
