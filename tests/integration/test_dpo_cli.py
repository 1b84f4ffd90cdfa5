"""`legollm dpo` end to end on the shared preference data and tiny models: LoRA from an HF
GPT-2 dir, full tuning from a LegoLLM checkpoint with exact resume, and bad input."""

import json

import pytest

from legollm.cli.main import main
from tests.integration._finetune import ROOT, _ascii, _losses, write_config
from tests.unit.finetuning.conftest import _one_thread  # noqa: F401


@pytest.fixture(scope="module")
def preferences(shared_data):
    return json.loads((shared_data / "instruct" / "preference_data.json").read_text())[:40]


def test_lora_dpo_from_hf_dir_reports_preferences_and_stores_its_settings(
    tmp_path, preferences, hf_gpt2_dir, capsys
):
    from legollm.training.checkpoint import load_checkpoint

    (tmp_path / "data.json").write_text(json.dumps(preferences))
    cfg = write_config(tmp_path, init=str(hf_gpt2_dir), beta=0.2)
    assert main(["dpo", "--config", str(cfg), "--lora", "r=4,alpha=8,targets=attn"]) == 0
    out = capsys.readouterr().out
    assert "dpo: 32 train / 4 val / 4 test pairs" in out and "(LoRA)" in out
    assert "val pairs: accuracy" in out and "adapter:" in out
    run = tmp_path / "run"
    ckpt = load_checkpoint(run / "latest.pt")
    assert ckpt["sft"]["dpo"] == {"beta": 0.2, "label_smoothing": 0.0}
    assert ckpt["sft"]["format"] == "alpaca" and ckpt["lora"]["r"] == 4
    assert len(json.loads((run / "test_responses.json").read_text())) == 3
    losses = _losses(run)
    assert losses[min(losses)] == pytest.approx(0.6931, abs=1e-3)  # log 2: policy == reference


def test_full_dpo_from_a_checkpoint_resumes_exactly(tmp_path, preferences, char_checkpoint):
    data = json.dumps(_ascii(preferences))
    runs = {}
    for name, argv_tail in (("a", ["train.max_iters=8"]), ("b", None)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "data.json").write_text(data)
        cfg = write_config(tmp_path / name, init=str(char_checkpoint), max_length=256)
        if argv_tail:
            assert main(["dpo", "--config", str(cfg), *argv_tail]) == 0
        else:  # 4 steps, then resume to 8
            assert main(["dpo", "--config", str(cfg)]) == 0
            assert main(["dpo", "--config", str(cfg), "train.max_iters=8", "--resume"]) == 0
        runs[name] = _losses(tmp_path / name / "run")
    for step in range(5, 9):
        assert runs["b"][step] == pytest.approx(runs["a"][step], abs=1e-6)


def test_bad_preference_data_is_a_one_line_error(tmp_path, preferences, char_checkpoint, capsys):
    bad = _ascii(preferences[:10])
    del bad[2]["rejected"]
    (tmp_path / "data.json").write_text(json.dumps(bad))
    cfg = write_config(tmp_path, init=str(char_checkpoint))
    assert main(["dpo", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "record 2" in err and "'rejected'" in err
    assert main(["dpo", "--config", str(cfg), "beta=0"]) == 1
    assert "beta must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "dpo").glob("*.yaml")), ids=str)
def test_shipped_dpo_configs_parse(path):
    from legollm.finetuning.dpo import DPOConfig

    cfg = DPOConfig.from_yaml(path)
    assert (ROOT / cfg.data).name == "preference_data.json"
    cfg.train_config()
    if cfg.lora:
        cfg.lora_config()
