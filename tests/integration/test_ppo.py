"""PPO end to end on tiny models: the first step's ratio and KL, exact resume, LoRA and
full tuning, and the reward model / policy mismatches as one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

from legollm.alignment.ppo import PPOConfig, build_ppo_trainer
from legollm.alignment.reward import RewardConfig, build_reward_trainer
from legollm.cli.main import main
from tests.integration._finetune import ROOT, write_config
from tests.unit.alignment.conftest import case_pairs, make_char_checkpoint
from tests.unit.finetuning.conftest import _one_thread  # noqa: F401

PPO_ARGS = ["train.max_iters=4", "train.eval_interval=4", "train.batch_size=4",
            "rollout_size=8", "ppo_epochs=1", "max_new_tokens=6", "train.lr=1e-2"]  # fmt: skip


@pytest.fixture(scope="module")
def reward_run(tmp_path_factory):
    """A reward model trained for two steps from the same char model (shared by the tests:
    PPO only reads it)."""
    d = tmp_path_factory.mktemp("rm")
    (d / "data.json").write_text(json.dumps(case_pairs(24)))
    cfg = write_config(d, init=str(make_char_checkpoint(d / "base.pt")), test_fraction=0.0)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    build_reward_trainer(RewardConfig.from_yaml(cfg, ["train.max_iters=2"])).fit()
    torch.set_num_threads(n)
    return d / "run"


def ppo_config(tmp_path, init, reward, *extra, **kw):
    prompts = [{"instruction": "Write the word.", "input": p["input"]} for p in case_pairs(16)]
    (tmp_path / "data.json").write_text(json.dumps(prompts))
    path = write_config(tmp_path, init=str(init), reward_model=str(reward), **kw)
    return path, [*PPO_ARGS, *extra]


@pytest.mark.parametrize("lora", [None, {"r": 2, "alpha": 4, "targets": ["attn"]}],
                         ids=["full", "lora"])  # fmt: skip
def test_first_step_has_ratio_one_and_no_kl(tmp_path, char_checkpoint, reward_run, lora):
    path, args = ppo_config(tmp_path, char_checkpoint, reward_run, lora=lora)
    trainer = build_ppo_trainer(PPOConfig.from_yaml(path, args))
    trainer.train_step()
    s = trainer.step_stats
    assert s["ratio"].item() == 1.0 and s["clip_fraction"].item() == 0.0
    assert s["kl_ref"].item() == 0.0
    assert trainer.train_loader.stats["kl"] == 0.0
    trainer.train_step()  # the weights moved: the policy is no longer the reference
    assert trainer.step_stats["ratio"].item() != 1.0


def test_resume_mid_rollout_equals_the_uninterrupted_run(tmp_path, char_checkpoint, reward_run):
    runs = {}
    for name in ("a", "b"):
        d = tmp_path / name
        d.mkdir()
        path, args = ppo_config(d, char_checkpoint, reward_run)
        args = [*args, "train.eval_interval=3", "train.max_iters=6"]
        if name == "a":
            assert main(["ppo", "--config", str(path), *args]) == 0
        else:  # stop at step 3 (mid-rollout: 2 minibatches per rollout), resume to 6
            assert main(["ppo", "--config", str(path), *args[:-1], "train.max_iters=3"]) == 0
            assert main(["ppo", "--config", str(path), *args, "--resume"]) == 0
        recs = [json.loads(x) for x in (d / "run" / "metrics.jsonl").read_text().splitlines()]
        runs[name] = {r["step"]: r for r in recs if "loss" in r}
    for step in (4, 5, 6):
        for key in ("loss", "reward", "kl", "value_loss", "clip_fraction"):
            assert runs["b"][step][key] == runs["a"][step][key], (step, key)


def test_policy_checkpoint_loads_and_logs_have_every_statistic(
    tmp_path,
    char_checkpoint,
    reward_run,
    capsys,
):
    from legollm.models.loading import load_model

    path, args = ppo_config(tmp_path, char_checkpoint, reward_run, lora={"r": 2, "alpha": 4})
    assert main(["ppo", "--config", str(path), *args, "train.plot=true"]) == 0
    out = capsys.readouterr().out
    assert "last rollout: reward" in out and "policy:" in out
    run = tmp_path / "run"
    rec = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()][-1]
    for key in ("reward", "kl", "entropy", "clip_fraction", "value_loss", "explained_variance"):
        assert key in rec
    assert (run / "loss.png").is_file() and (run / "adapter").is_dir()
    loaded = load_model(run / "policy.pt")
    assert loaded.prompt_format == "alpaca"
    assert loaded.model(torch.tensor([[1, 2, 3]])).shape[-1] == loaded.model.config.vocab_size


def test_reward_model_with_another_tokenizer_is_a_one_line_error(
    tmp_path, reward_run, hf_gpt2_dir, capsys
):
    path, args = ppo_config(tmp_path, hf_gpt2_dir, reward_run)
    assert main(["ppo", "--config", str(path), *args]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and "tokenizer" in err and err.count("\n") == 1
    assert main(["ppo", "--config", str(path), *args, f"reward_model={hf_gpt2_dir}"]) == 1
    assert "reward model" in capsys.readouterr().err  # an HF dir is not one


CONFIGS = {"ppo": PPOConfig, "reward_model": RewardConfig}


@pytest.mark.parametrize(
    "path", sorted(p for d in CONFIGS for p in (ROOT / "configs" / d).glob("*.yaml")), ids=str
)
def test_shipped_alignment_configs_parse(path):
    cfg = CONFIGS[path.parent.name].from_yaml(path)
    cfg.train_config()
    if cfg.lora:
        cfg.lora_config()
