"""GRPO: the group advantages and objective against hand-worked cases, the first update
(ratio exactly 1, KL exactly 0), zero gradient from flat groups, a short deterministic
run whose reward rises, exact resume, and bad input."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

from legollm.alignment.grpo import (
    GRPOConfig,
    Rewards,
    build_grpo_trainer,
    group_advantages,
    grpo_loss,
    training_rows,
)
from legollm.alignment.tasks import (
    AdditionTask,
    ReverseTask,
    exact_match,
    sft_records,
    task_tokenizer,
)
from legollm.core.exceptions import ConfigError, TrainingError
from legollm.models import DecoderLM, ModelConfig
from legollm.training.checkpoint import save_checkpoint
from tests.unit.finetuning.conftest import _one_thread  # noqa: F401

HERE = "tests.unit.alignment.test_grpo"


# ---------------------------------------------------------------- rewards used by the runs
def vowels(completion: str, record: dict) -> float:
    """A dense reward a fresh model can climb in a few steps: the share of vowels."""
    return sum(c in "aeiou" for c in completion) / max(len(completion), 1)


def boom(completion: str, record: dict) -> float:
    raise ValueError("no answer today")


def text_reward(completion: str, record: dict):
    return "high"


# ---------------------------------------------------------------- the math, by hand
def test_group_advantages_standardise_within_each_group():
    # group 1: mean 0.25; sample std sqrt((0.75^2 + 3 * 0.25^2) / 3) = sqrt(0.25) = 0.5
    # -> (0.75 / 0.5, -0.25 / 0.5, ...) = (1.5, -0.5, -0.5, -0.5)
    # group 2: mean 2, std sqrt((1 + 0 + 0 + 1) / 3) = sqrt(2/3) -> (-1, 0, 0, 1) / sqrt(2/3)
    r = torch.tensor([1.0, 0, 0, 0, 1, 2, 2, 3])
    s = math.sqrt(2 / 3)
    want = torch.tensor([1.5, -0.5, -0.5, -0.5, -1 / s, 0, 0, 1 / s])
    assert torch.allclose(group_advantages(r, 4, eps=0.0), want, atol=1e-6)
    assert torch.allclose(group_advantages(r, 4), want * torch.tensor([0.5] * 4 + [s] * 4)
                          / torch.tensor([0.5 + 1e-4] * 4 + [s + 1e-4] * 4), atol=1e-6)  # fmt: skip


def test_flat_groups_get_exactly_zero_advantage_never_nan():
    # 0.1 * 3 / 3 is not 0.1 in floating point: the mean alone would leave a residue
    r = torch.tensor([0.1, 0.1, 0.1, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    adv = group_advantages(r, 3, eps=0.0)
    assert adv[:6].eq(0).all() and torch.isfinite(adv).all()
    assert adv[6:].abs().sum() > 0


def test_grpo_loss_inside_and_outside_the_clip_range():
    # one token per row, clip 0.2:
    # row 0: A=+1, rho=1.5 -> min(1.5, 1.2) = 1.2      row 1: A=-1, rho=0.5 -> min(-0.5, -0.8) = -0.8
    # row 2: A=+1, rho=1.1 -> min(1.1, 1.1) = 1.1      (inside: unclipped)
    # loss = -(1.2 - 0.8 + 1.1) / 3 = -0.5; clipped on rows 0 and 1 -> clip fraction 2/3
    old = torch.log(torch.tensor([[0.2], [0.4], [0.5]]))
    logps = old + torch.log(torch.tensor([[1.5], [0.5], [1.1]]))
    adv = torch.tensor([1.0, -1.0, 1.0])
    mask = torch.ones(3, 1)
    loss, m = grpo_loss(logps, old, adv, mask, clip=0.2)
    assert loss.item() == pytest.approx(-0.5, abs=1e-6)
    assert m["clip_fraction"].item() == pytest.approx(2 / 3)
    assert "kl" not in m


def test_grpo_loss_adds_beta_times_k3_over_response_tokens_only():
    # pi = 0.5, ref = 0.25 on the one real token: d = log 2, k3 = exp(-d) - 1 + d = 0.5 - 1 + log 2
    # ratio 1 (old = pi), A = 2: policy term -2; the padded token counts for nothing
    logps = torch.log(torch.tensor([[0.5, 0.9]]))
    ref = torch.log(torch.tensor([[0.25, 0.1]]))
    mask = torch.tensor([[1.0, 0.0]])
    loss, m = grpo_loss(logps, logps, torch.tensor([2.0]), mask, 0.2, ref, 0.1, "k3")
    k3 = 0.5 - 1 + math.log(2)
    assert m["kl"].item() == pytest.approx(k3, abs=1e-6)
    assert loss.item() == pytest.approx(-2 + 0.1 * k3, abs=1e-6)


def test_training_rows_label_only_the_response():
    x, y = training_rows([[1, 2, 3], [4]], [[7, 8], [9, 5, 6]], pad_id=0)
    # row 0: 1 2 3 7 8 -> x = 1 2 3 7, y = _ _ 7 8; row 1: 4 9 5 6 -> x = 4 9 5 0, y = 9 5 6 _
    assert x.tolist() == [[1, 2, 3, 7], [4, 9, 5, 0]]
    assert y.tolist() == [[-100, -100, 7, 8], [9, 5, 6, -100]]


def test_tasks_are_exactly_checkable():
    rng = random.Random(0)
    r = ReverseTask(3, 3).sample(rng)
    word = r["instruction"].rsplit(" ", 1)[1]
    assert len(word) == 3 and r["answer"] == word[::-1]
    a = AdditionTask(2).sample(rng)
    x, y = (int(t) for t in a["instruction"][len("What is ") : -1].split(" + "))
    assert a["answer"] == str(x + y)
    assert exact_match(f" {a['answer']}\n", a) == 1.0 and exact_match("0" + a["answer"], a) == 0
    recs = sft_records(ReverseTask(), 5, seed=1)
    assert recs == sft_records(ReverseTask(), 5, seed=1) and all(
        r["output"] == r["answer"] for r in recs
    )
    tok = task_tokenizer()
    assert tok.decode(tok.encode("User:\nWhat is 12 + 30?")) == "User:\nWhat is 12 + 30?"


# ---------------------------------------------------------------- runs on a tiny model
@pytest.fixture
def base(tmp_path):
    tok = task_tokenizer()
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=tok.vocab_size, context_length=64, n_layer=1, n_head=2,
                      n_embd=32, dropout=0.1)  # fmt: skip
    path = tmp_path / "base.pt"
    save_checkpoint(path, {"model": DecoderLM(cfg).state_dict(), "model_config": cfg.to_dict(),
                           "tokenizer": tok.spec()})  # fmt: skip
    return path


def config(base, run_dir, **kw) -> GRPOConfig:
    train = {"run_dir": str(run_dir), "batch_size": 4, "max_iters": 6, "lr": 1e-2,
             "min_lr": 1e-2, "schedule": "constant", "warmup_iters": 0, "weight_decay": 0.0,
             "eval_interval": 3, "log_interval": 1, "progress": False, "plot": False,
             "device": "cpu", "precision": "fp32", "seed": 7, **kw.pop("train", {})}  # fmt: skip
    d = {"init": str(base), "format": "dialogue", "task": "reverse",
         "task_args": {"min_len": 2, "max_len": 3}, "rewards": [f"{HERE}:vowels"],
         "group_size": 4, "max_new_tokens": 6, "eval_prompts": 8, "train": train, **kw}  # fmt: skip
    return GRPOConfig.from_dict(d)


def records(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines]


@pytest.mark.parametrize("setup", [{"lora": {"r": 4, "alpha": 8, "targets": ["attn", "mlp"]}},
                                   {"updates_per_rollout": 2}])  # fmt: skip
def test_first_update_has_ratio_exactly_one_and_kl_exactly_zero(base, tmp_path, setup):
    trainer = build_grpo_trainer(config(base, tmp_path / "run", kl_coef=0.1, **setup))
    batch = trainer.train_loader.next_batch()
    assert "ref_logps" in batch[2]
    trainer.batch_loss(trainer.model, batch, "sum")
    m = trainer.loss_stats[-1]
    assert m["ratio"].item() == 1.0 and m["kl"].item() == 0.0 and m["clip_fraction"] == 0


def test_flat_groups_give_zero_gradient(base, tmp_path):
    trainer = build_grpo_trainer(config(base, tmp_path / "run", rewards=[f"{HERE}:text_zero"]))
    x, y, extra = trainer.train_loader.next_batch()
    assert extra["advantages"].eq(0).all()
    loss = trainer.batch_loss(trainer.model, (x, y, extra), "sum")
    loss.backward()
    assert torch.isfinite(loss) and loss.item() == 0.0
    grads = [p.grad for p in trainer.raw_model.parameters() if p.grad is not None]
    assert grads and all(g.eq(0).all() for g in grads)


def text_zero(completion: str, record: dict) -> float:
    return 0.0


def test_answer_log_probs_equal_those_of_the_full_forward(base, tmp_path):
    """Only the answer columns reach the head; the log-probs are those of every column's."""
    trainer = build_grpo_trainer(config(base, tmp_path / "run"))
    x, y, _ = trainer.train_loader.next_batch()
    model = trainer.raw_model.eval()  # no dropout: both forwards see the same weights alone
    labelled = y != -100
    assert not labelled[:, :5].any()  # the prompts come first, so columns are skipped
    with torch.no_grad():
        full = torch.log_softmax(model(x), -1).gather(-1, y.clamp(min=0)[..., None])[..., 0]
        ours = trainer.token_logps(model, x, y)
    assert ours.shape == y.shape
    torch.testing.assert_close(ours, full * labelled, rtol=0, atol=1e-5)


def test_a_short_run_raises_the_reward(base, tmp_path):
    build_grpo_trainer(config(base, tmp_path / "run", train={"max_iters": 12})).fit()
    a = [r for r in records(tmp_path / "run") if "reward" in r]
    first, last = sum(r["reward"] for r in a[:3]) / 3, sum(r["reward"] for r in a[-3:]) / 3
    assert last > first + 0.1, (first, last)
    assert all(math.isfinite(r["loss"]) and "kl" not in r for r in a)


def test_resume_equals_the_uninterrupted_run(base, tmp_path):
    """Also the determinism check: two runs from one seed log the same numbers."""

    def strip(rs):
        return [{k: v for k, v in r.items() if k != "tokens_per_s"} for r in rs]

    build_grpo_trainer(config(base, tmp_path / "full", updates_per_rollout=2,
                              train={"grad_accum_steps": 2})).fit()  # fmt: skip
    half = config(base, tmp_path / "half", updates_per_rollout=2,
                  train={"grad_accum_steps": 2, "max_iters": 3})  # fmt: skip
    build_grpo_trainer(half).fit()  # 3 steps: mid-rollout (mu = 2), then resume to 6
    resumed = config(base, tmp_path / "half", updates_per_rollout=2,
                     train={"grad_accum_steps": 2})  # fmt: skip
    build_grpo_trainer(resumed, resume=True).fit()
    assert strip(records(tmp_path / "half")) == strip(records(tmp_path / "full"))
    a = torch.load(tmp_path / "full" / "latest.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "half" / "latest.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------- bad input
def test_a_reward_that_raises_names_itself_and_the_sample(base, tmp_path):
    trainer = build_grpo_trainer(config(base, tmp_path / "run", rewards=[f"{HERE}:boom"]))
    with pytest.raises(TrainingError) as e:
        trainer.train_loader.next_batch()
    msg = str(e.value)
    assert f"{HERE}:boom raised ValueError: no answer today" in msg
    assert "'completion':" in msg and "Reverse the letters" in msg and "\n" not in msg


def test_a_reward_that_is_not_a_number_is_refused():
    rewards = Rewards([f"{HERE}:text_reward"])
    with pytest.raises(TrainingError, match=r"text_reward returned 'high' \(str\), not a number"):
        rewards.score("abc", {"instruction": "x", "answer": "cba"})


@pytest.mark.parametrize(("kw", "msg"), [
    ({"group_size": 1}, "group_size must be >= 2"),
    ({"rewards": ["nomodule"]}, "module:function"),
    ({"task": "sudoku"}, "unknown task 'sudoku'"),
    ({"kl_estimator": "k9"}, "kl_estimator must be one of"),
])  # fmt: skip
def test_bad_config_is_one_line(kw, msg):
    with pytest.raises(ConfigError, match=msg) as e:
        GRPOConfig.from_dict({"init": "x", **kw})
    assert "\n" not in str(e.value)


def test_the_cli_reports_bad_input_in_one_line(base, tmp_path, capsys):
    import yaml

    from legollm.cli.main import main

    cfg = config(base, tmp_path / "run", rewards=[f"{HERE}:boom"]).to_dict()
    path = tmp_path / "grpo.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["grpo", "--config", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: reward function") and "\n" not in err
    assert main(["grpo", "--config", str(path), "group_size=1", "--overwrite"]) == 1
    assert "group_size must be >= 2" in capsys.readouterr().err


def test_grpo_task_writes_sft_data_and_a_fresh_base(tmp_path, capsys):
    from legollm.cli.main import main
    from legollm.models.loading import load_model

    assert main(["grpo-task", "addition", "digits=2", "--out", str(tmp_path), "--records", "5",
                 "--n-layer", "1", "--n-embd", "16", "--n-head", "2"]) == 0  # fmt: skip
    recs = json.loads((tmp_path / "sft.json").read_text())
    assert len(recs) == 5 and all(r["output"] == r["answer"] for r in recs)
    loaded = load_model(tmp_path / "base.pt")
    assert loaded.model.config.n_layer == 1 and loaded.tokenizer.vocab_size == 97
    assert main(["grpo-task", "addition", "digits=two", "--out", str(tmp_path)]) == 1
    assert "key=INTEGER" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["grpo", "sft"])
def test_shipped_cpu_configs_parse(kind):
    from legollm.finetuning.sft import SFTConfig
    from tests.conftest import REPO_ROOT

    path = REPO_ROOT / "configs" / kind / "addition_cpu.yaml"
    cfg = (GRPOConfig if kind == "grpo" else SFTConfig).from_yaml(path)
    cfg.train_config()
