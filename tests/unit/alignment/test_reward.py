"""The reward model: Bradley-Terry training on pairs, held-out accuracy, save/load/score."""

from __future__ import annotations

import json

import pytest
import torch

from legollm.alignment.reward import RewardConfig, RewardModel, build_reward_trainer
from legollm.cli.main import main
from legollm.finetuning.formats import get_format
from tests.integration._finetune import write_config
from tests.unit.alignment.conftest import case_pairs


def reward_config(tmp_path, init, **kw) -> RewardConfig:
    (tmp_path / "data.json").write_text(json.dumps(case_pairs()))
    path = write_config(tmp_path, init=str(init), val_fraction=0.25, test_fraction=0.0, **kw)
    return RewardConfig.from_yaml(path, ["train.max_iters=30", "train.lr=3e-2",
                                         "train.eval_interval=30", "train.min_lr=3e-2"])  # fmt: skip


def test_short_run_raises_held_out_accuracy_and_scores_after_reload(tmp_path, char_checkpoint):
    trainer = build_reward_trainer(reward_config(tmp_path, char_checkpoint))
    before = trainer.pair_metrics()
    trainer.fit()
    after = trainer.pair_metrics()
    assert after["accuracy"] == 1.0 > before["accuracy"]
    assert after["loss"] < 0.2

    rm = RewardModel.load(tmp_path / "run")
    fmt = get_format(rm.format)
    rec = {"instruction": "Write the word.", "input": "cabbage"}
    prompt = fmt.prompt_ids(rec, rm.tokenizer)
    texts = [rm.tokenizer.decode(prompt) + r for r in ("cabbage", "CABBAGE")]
    good, bad = rm.score(texts)
    assert good > bad  # held out: the data has no 7-letter word
    # the trainer's scores and the reloaded model's agree on a validation pair
    x, last = next(trainer.val_loader.eval_batches(1))
    row = x[0, : int(last[0]) + 1].tolist()
    trainer.raw_model.eval()
    with torch.no_grad():
        live = trainer.raw_model(x[:1])[0, int(last[0]), 0]
    assert rm.score_ids([row])[0].item() == pytest.approx(live.item(), abs=1e-5)


def test_batch_loss_is_bradley_terry_of_the_two_scores(tmp_path, char_checkpoint):
    trainer = build_reward_trainer(reward_config(tmp_path, char_checkpoint))
    x, last = next(trainer.val_loader.eval_batches(1))
    trainer.raw_model.eval()
    with torch.no_grad():
        out = trainer.raw_model(x)[..., 0]  # (2B, T)
        r = out[torch.arange(len(x)), last].view(2, -1)
        expect = torch.log1p(torch.exp(-(r[0] - r[1]))).mean()  # -log sigmoid(m)
        got = trainer.batch_loss(trainer.raw_model, (x, last), "mean")
    assert got.item() == pytest.approx(expect.item(), rel=1e-5)


def test_lora_reward_model_trains_only_adapters_and_head(tmp_path, char_checkpoint):
    cfg = reward_config(tmp_path, char_checkpoint, lora={"r": 2, "alpha": 4, "targets": ["attn"]})
    trainer = build_reward_trainer(cfg)
    trained = {n for n, p in trainer.raw_model.named_parameters() if p.requires_grad}
    assert "lm_head.weight" in trained
    assert all("lora_" in n or n == "lm_head.weight" for n in trained)


def test_missing_fields_and_non_reward_checkpoints_are_one_line_errors(
    tmp_path, char_checkpoint, capsys
):
    bad = case_pairs(10)
    del bad[3]["chosen"]
    (tmp_path / "data.json").write_text(json.dumps(bad))
    cfg = write_config(tmp_path, init=str(char_checkpoint))
    assert main(["reward-model", "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "record 3" in err and "'chosen'" in err
    assert err.count("\n") == 1
    with pytest.raises(Exception, match="not a reward model"):
        RewardModel.load(char_checkpoint)


def test_lora_reward_run_writes_no_headless_adapter(tmp_path, char_checkpoint, capsys):
    (tmp_path / "data.json").write_text(json.dumps(case_pairs(24)))
    cfg = write_config(tmp_path, init=str(char_checkpoint), test_fraction=0.0)
    argv = ["reward-model", "--config", str(cfg), "train.max_iters=1", "--lora", "r=2,alpha=4"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "val pairs: accuracy" in out and "adapter:" not in out
    assert not (tmp_path / "run" / "adapter").exists()
    assert RewardModel.load(tmp_path / "run").score_ids([[1, 2, 3]]).shape == (1,)
