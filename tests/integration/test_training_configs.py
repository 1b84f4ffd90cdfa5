"""Every shipped config under configs/ parses, and train configs build a valid ModelConfig."""

from pathlib import Path

import pytest
import yaml

from legollm.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").rglob("*.yaml"))
TRAIN = [p for p in CONFIGS if p.parent.name == "train"]


def test_the_required_train_configs_ship():
    names = {p.stem for p in TRAIN}
    assert {"the_verdict_cpu", "shakespeare_char_cpu", "shakespeare_char_gpu", "gpt2_124m"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_config_parses(path):
    if path.parent.name == "train":
        TrainConfig.from_yaml(path)
    elif path.parent.name == "data":
        from legollm.data.prepare import PrepareConfig

        PrepareConfig.from_yaml(path)
    else:
        assert isinstance(yaml.safe_load(path.read_text()), dict)


@pytest.mark.parametrize("path", TRAIN, ids=lambda p: p.name)
def test_train_config_model_is_valid(path):
    from legollm import models
    from legollm.training.run import model_config_dict

    cfg = TrainConfig.from_yaml(path)
    mc = models.ModelConfig.from_dict(model_config_dict(cfg, {"vocab_size": 50257}))
    assert mc.context_length >= cfg.block_size


def test_shakespeare_cpu_is_nanogpts_recipe():
    cfg = TrainConfig.from_yaml(ROOT / "configs/train/shakespeare_char_cpu.yaml")
    m = cfg.model
    assert (m["n_layer"], m["n_head"], m["n_embd"], m["dropout"]) == (4, 4, 128, 0.0)
    assert (cfg.block_size, cfg.batch_size, cfg.max_iters, cfg.lr) == (64, 12, 2000, 1e-3)


def test_cli_lists_train_and_demo(capsys):
    from legollm.cli.main import main

    assert main([]) == 0
    out = capsys.readouterr().out
    assert "train" in out and "demo" in out


def test_missing_data_dir_is_a_one_line_error(tmp_path, capsys):
    from legollm.cli.main import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'nope'}\nrun_dir: {tmp_path / 'run'}\n")
    assert main(["train", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: data dir") and "data-prepare" in err
    assert not (tmp_path / "run").exists()


def test_plot_on_demand(tmp_path, capsys):
    import json

    from legollm.cli.main import main

    recs = [{"step": s, "loss": 4.0 - s / 10, "lr": 1e-3} for s in range(1, 11)]
    recs.append({"step": 10, "val_loss": 3.5})
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    assert main(["train", "--plot", str(tmp_path)]) == 0
    assert (tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["train", "--plot", str(tmp_path / "nope")]) == 1
    assert "metrics.jsonl" in capsys.readouterr().err
