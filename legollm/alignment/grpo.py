"""GRPO: group-relative policy optimisation with rewards a program computes.

For each prompt q the policy samples a *group* of G answers o_1..o_G and a plain
Python function scores each one, r_i = reward(o_i). No value model: the group is the
baseline. Each answer's advantage is its reward standardised within its group

    A_i = (r_i - mean(r_1..r_G)) / (std(r_1..r_G) + eps)               group_advantages

and every token of o_i gets A_i. The policy then climbs the clipped objective of
PPO (legollm.alignment.losses.ppo_policy_loss), per token t of every answer,

    rho_t = pi(o_t | q, o_<t) / pi_old(o_t | q, o_<t)
    L     = -mean_t min(rho_t A, clip(rho_t, 1 - eps, 1 + eps) A) + beta * mean_t k3_t

where pi_old is the policy that sampled the group (so rho is exactly 1 on the first
update of a rollout) and the optional KL term keeps it near the reference policy
(the starting model) with DeepSeekMath's estimator, ``k3 = exp(-d) - 1 + d`` with
``d = log pi - log ref`` (losses.kl_estimate; always >= 0, unbiased). The mean runs
over every response token of the batch (the Trainer's ``loss_units``), so a long answer
weighs as much per token as a short one.

A group whose rewards are all equal (every answer right, or every one wrong) carries
no signal: its advantages are set to exactly 0, so it adds no gradient and never
divides by a zero standard deviation.

The pieces are the project's own: answers come from the KV-cached batched generator
(legollm.generation), prompts from a task (legollm.alignment.tasks) rendered with an
SFT prompt format, and training runs on the Trainer through its ``batch_loss`` /
``loss_units`` hooks. The rollout loader stands where a data loader stands: each
``next_batch`` samples prompts with its own seeded RNG, generates, scores and returns
``(x, y, extra)``; its ``state_dict`` (that RNG, and a rollout being reused) travels in
every checkpoint, so a resumed run replays exactly. With LoRA the reference is the
same model with its adapters switched off (no second copy); with full tuning and
``kl_coef > 0`` it is a frozen copy of the start.

``legollm grpo --config FILE.yaml`` runs it (configs/grpo/).
"""

from __future__ import annotations

import copy
import math
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from legollm.alignment.losses import (
    KL_ESTIMATORS,
    kl_estimate,
    masked_mean,
    ppo_policy_loss,
    token_logps,
)
from legollm.alignment.tasks import get_task, resolve_function
from legollm.core.exceptions import ConfigError, TrainingError
from legollm.core.runtime import resolve_device
from legollm.core.tokenization.specs import max_token_id
from legollm.finetuning.formats import IGNORE_INDEX, PromptFormat, get_format
from legollm.finetuning.runner import (
    FinetuneConfig,
    FinetuneRun,
    FinetuneTrainer,
    finish_trainer,
    generate_responses,
    write_run_files,
)
from legollm.generation import generate
from legollm.models.loading import load_model
from legollm.peft import adapters_disabled, apply_lora, trainable_parameters
from legollm.training.distributed import cleanup_distributed, init_distributed
from legollm.training.logging import plot_metrics

PLOTTED = ("reward", "eval_reward", "kl", "clip_fraction")


@dataclass
class GRPOConfig(FinetuneConfig):
    """A GRPO run. From :class:`FinetuneConfig` it takes ``init`` (the SFT run), ``tokenizer``,
    ``system``, ``lora``, ``max_new_tokens`` and ``train`` (``batch_size`` = prompts per
    micro-batch, each sampled ``group_size`` times); the data fields do not apply: the
    prompts come from ``task``."""

    kind: ClassVar[str] = "grpo"

    format: str | None = None  # None: the format ``init`` was fine-tuned with (else alpaca)
    task: str = "reverse"  # a task of legollm.alignment.tasks
    task_args: dict[str, Any] = field(default_factory=dict)
    rewards: list[str] = field(default_factory=lambda: ["legollm.alignment.tasks:exact_match"])
    reward_weights: list[float] | None = None  # None: every reward weighs 1
    group_size: int = 8  # G answers per prompt
    max_new_tokens: int = 16
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    clip: float = 0.2  # eps of the clipped ratio
    kl_coef: float = 0.0  # beta; 0 skips the reference entirely
    kl_estimator: str = "k3"
    updates_per_rollout: int = 1  # optimiser steps on each rollout batch (mu)
    eval_prompts: int = 64  # held-out prompts answered greedily at each eval point
    eval_seed: int = 2**31 - 1  # their RNG, apart from the rollouts'

    def __post_init__(self) -> None:
        if self.group_size < 2:
            raise ConfigError(
                f"group_size must be >= 2, got {self.group_size}: advantages compare the "
                "answers within a group"
            )
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0 to sample a group, got {self.temperature}")
        if not 0 < self.clip < 1:
            raise ConfigError(f"clip must be in (0, 1), got {self.clip}")
        if self.kl_coef < 0:
            raise ConfigError(f"kl_coef must be >= 0, got {self.kl_coef}")
        if self.kl_estimator not in KL_ESTIMATORS:
            raise ConfigError(f"kl_estimator must be one of {KL_ESTIMATORS}, got "
                              f"{self.kl_estimator!r}")  # fmt: skip
        if self.updates_per_rollout < 1:
            raise ConfigError(f"updates_per_rollout must be >= 1, got {self.updates_per_rollout}")
        if not self.rewards:
            raise ConfigError("rewards must name at least one function (module:function)")
        if self.reward_weights is not None and len(self.reward_weights) != len(self.rewards):
            raise ConfigError(f"reward_weights has {len(self.reward_weights)} entries for "
                              f"{len(self.rewards)} rewards")  # fmt: skip
        if self.data:
            raise ConfigError("grpo takes its prompts from task:, not data:")
        Rewards(self.rewards, self.reward_weights)  # each name must import now
        get_task(self.task, self.task_args)  # a bad task fails here, before any model loads
        super().__post_init__()


# ------------------------------------------------------------------------------ the math
def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4) -> torch.Tensor:
    """(N,) rewards, groups of ``group_size`` consecutive answers -> (N,) advantages.

    ``(r - group mean) / (group std + eps)`` (std with Bessel's correction, as
    DeepSeekMath and TRL); a group whose rewards are all equal gets exactly 0.
    """
    r = rewards.float().view(-1, group_size)
    adv = (r - r.mean(dim=1, keepdim=True)) / (r.std(dim=1, keepdim=True) + eps)
    flat = r.amax(dim=1, keepdim=True) == r.amin(dim=1, keepdim=True)
    return torch.where(flat, torch.zeros_like(adv), adv).view(-1)


def grpo_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip: float,
    ref_logps: torch.Tensor | None = None,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The mean over response tokens of the clipped surrogate plus ``kl_coef`` times the KL
    estimate; ``logps`` etc. (B, T), ``advantages`` (B,), ``mask`` (B, T) the response
    tokens. Metrics (detached): ``kl``, ``clip_fraction``, ``ratio``."""
    per_token = advantages[:, None].expand_as(logps)
    loss, metrics = ppo_policy_loss(logps, old_logps, per_token, mask, clip)
    if ref_logps is not None:
        kl = masked_mean(kl_estimate(logps, ref_logps, kl_estimator), mask)
        metrics["kl"] = kl.detach()
        if kl_coef:
            loss = loss + kl_coef * kl
    return loss, metrics


# ------------------------------------------------------------------------------ rewards
class Rewards:
    """The config's reward functions, called on every answer and summed with weights.

    A function that raises, or returns anything but a finite number, stops the run
    with one line that names it and shows the answer and its record.
    """

    def __init__(self, specs: list[str], weights: list[float] | None = None):
        self.specs = list(specs)
        self.fns = [resolve_function(s) for s in self.specs]
        self.weights = list(weights) if weights is not None else [1.0] * len(self.fns)

    def score(self, completion: str, record: dict[str, str]) -> list[float]:
        """Each function's reward for one answer."""
        out = []
        for spec, fn in zip(self.specs, self.fns, strict=True):
            sample = {"completion": completion, **record}
            try:
                value = fn(completion, record)
            except Exception as e:
                raise TrainingError(f"reward function {spec} raised {type(e).__name__}: {e} "
                                    f"on the sample {sample!r}") from e  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TrainingError(f"reward function {spec} returned {value!r} "
                                    f"({type(value).__name__}), not a number, for the sample "
                                    f"{sample!r}")  # fmt: skip
            if not math.isfinite(value):
                raise TrainingError(f"reward function {spec} returned {value} for the sample "
                                    f"{sample!r}; a reward must be finite")  # fmt: skip
            out.append(float(value))
        return out

    def total(self, scores: list[float]) -> float:
        return sum(w * s for w, s in zip(self.weights, scores, strict=True))


# ------------------------------------------------------------------------------ rollouts
def left_pad(prompts: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, mask)`` (B, T): every prompt ends at column T, as the generator wants."""
    T = max(map(len, prompts))
    ids = torch.full((len(prompts), T), pad_id, dtype=torch.long)
    mask = torch.zeros(len(prompts), T, dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, T - len(p) :] = torch.tensor(p)
        mask[i, T - len(p) :] = 1
    return ids, mask


def training_rows(
    prompts: list[list[int]], responses: list[list[int]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)`` (B, T): prompt + response per row, right-padded; ``y`` is ``x`` shifted by
    one with ``-100`` everywhere but the response tokens (as SFT's labels)."""
    rows = [p + r for p, r in zip(prompts, responses, strict=True)]
    T = max(map(len, rows)) - 1
    x = torch.full((len(rows), T), pad_id, dtype=torch.long)
    y = torch.full((len(rows), T), IGNORE_INDEX, dtype=torch.long)
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        row = p + r
        x[i, : len(row) - 1] = torch.tensor(row[:-1])
        y[i, len(p) - 1 : len(row) - 1] = torch.tensor(r)
    return x, y


class RolloutLoader:
    """Stands where a data loader stands: ``next_batch()`` samples ``batch_size`` prompts
    from the task, ``group_size`` answers each from the current policy, scores them and
    returns ``(x, y, {"advantages", "old_logps"?, "ref_logps"?})``.

    With ``updates_per_rollout`` mu > 1, a rollout of ``accum`` micro-batches is served
    mu times (the old log-probabilities are computed once, when it is sampled). Call
    :meth:`bind` with the trainer before the first batch.
    """

    def __init__(self, cfg: GRPOConfig, fmt: PromptFormat, tokenizer, rewards: Rewards,
                 batch_size: int, accum: int, seed: int, rank: int, device,
                 reference: nn.Module | None = None):  # fmt: skip
        self.cfg, self.fmt, self.tokenizer, self.rewards = cfg, fmt, tokenizer, rewards
        self.task = get_task(cfg.task, cfg.task_args)
        self.batch_size, self.accum, self.device = batch_size, accum, device
        self.rng = random.Random(seed * 1_000_003 + rank)  # each rank its own prompts
        self.stops = fmt.stop_ids(tokenizer)
        self.pad_id = self.stops[0]
        self.vocab_limit = max_token_id(tokenizer) + 1
        self.reference = reference  # a frozen copy; None: adapters off, or no KL
        self.trainer = None
        self.served = 0
        self.cache: list[tuple] = []
        self.stats: list[dict[str, float]] = []  # one per sampled micro-batch, drained by logs

    def bind(self, trainer) -> None:
        self.trainer = trainer

    # the loader protocol of the Trainer
    def next_batch(self) -> tuple:
        cycle = self.accum * self.cfg.updates_per_rollout
        k = self.served % cycle
        if k == 0:
            self.cache = [self.sample() for _ in range(self.accum)]
        self.served += 1
        return self.cache[k % self.accum]

    def state_dict(self) -> dict[str, Any]:
        version, internal, gauss = self.rng.getstate()
        cache = [(x.cpu(), y.cpu(), {k: v.cpu() for k, v in e.items()}) for x, y, e in self.cache]
        return {"rng": [version, list(internal), gauss], "served": self.served, "cache": cache}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self.served = int(state["served"])
        self.cache = [(x.to(self.device), y.to(self.device),
                       {k: v.to(self.device) for k, v in e.items()})
                      for x, y, e in state["cache"]]  # fmt: skip

    # one micro-batch of rollouts
    @torch.no_grad()
    def sample(self) -> tuple:
        cfg, G, tok = self.cfg, self.cfg.group_size, self.tokenizer
        policy = self.trainer.raw_model
        records = [self.task.sample(self.rng) for _ in range(self.batch_size)]
        unique = [self.fmt.prompt_ids(r, tok) for r in records]
        ids, mask = left_pad(unique, self.pad_id)
        T = ids.shape[1]
        # each prompt is prefilled once and its cache copied to the G rows of its group
        seq = generate(policy, ids.to(self.device), cfg.max_new_tokens, cfg.temperature,
                       cfg.top_k, cfg.top_p, eos_token_id=self.stops,
                       seed=self.rng.getrandbits(63), attention_mask=mask.to(self.device),
                       vocab_limit=self.vocab_limit, num_return_sequences=G)  # fmt: skip
        prompts = [p for p in unique for _ in range(G)]
        responses, scores = [], []
        for i, row in enumerate(seq[:, T:].tolist()):
            stop = next((j for j, t in enumerate(row) if t in self.stops), None)
            answer = row if stop is None else row[:stop]
            responses.append(row if stop is None else row[: stop + 1])  # the stop is learned
            scores.append(self.rewards.score(tok.decode(answer).strip(), records[i // G]))
        rewards = torch.tensor([self.rewards.total(s) for s in scores])
        advantages = group_advantages(rewards, G)
        x, y = training_rows(prompts, responses, self.pad_id)
        x, y = x.to(self.device), y.to(self.device)
        extra = {"advantages": advantages.to(self.device)}
        if cfg.updates_per_rollout > 1:  # else pi_old is the policy itself, detached
            extra["old_logps"] = self.trainer.token_logps(policy, x, y)
        if cfg.kl_coef > 0:
            extra["ref_logps"] = self.reference_logps(x, y)
        self.stats.append(self._rollout_stats(rewards, scores, y))
        return x, y, extra

    def reference_logps(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        policy = self.trainer.raw_model
        if self.reference is not None:
            return self.trainer.token_logps(self.reference, x, y)
        with adapters_disabled(policy):
            return self.trainer.token_logps(policy, x, y)

    def _rollout_stats(self, rewards: torch.Tensor, scores: list[list[float]],
                       y: torch.Tensor) -> dict[str, float]:  # fmt: skip
        groups = rewards.view(-1, self.cfg.group_size)
        out = {
            "reward": rewards.mean().item(),
            "reward_std": groups.std(dim=1).mean().item(),
            "flat_groups": (groups.amax(1) == groups.amin(1)).float().mean().item(),
            "completion_tokens": (y != IGNORE_INDEX).sum(1).float().mean().item(),
        }
        if len(self.rewards.specs) > 1:
            for j, spec in enumerate(self.rewards.specs):
                out[f"reward/{spec.rpartition(':')[2]}"] = sum(s[j] for s in scores) / len(scores)
        return out


# ------------------------------------------------------------------------------ the trainer
def no_dropout(model: nn.Module) -> nn.Module:
    """Zero every dropout rate: the ratio compares two forward passes of one policy, which
    dropout would make differ (TRL's ``disable_dropout`` does the same)."""
    for m in model.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
        elif isinstance(getattr(m, "dropout", None), float):  # attention passes a rate
            m.dropout = 0.0
    return model


class GRPOTrainer(FinetuneTrainer):
    """The fine-tuning trainer with GRPO's loss; logs the rollouts' rewards, the KL and the
    clip fraction with each loss record, and a greedy held-out reward at each eval point."""

    val_loss_is_token_nll: ClassVar[bool] = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.train_loader.bind(self)
        self.loss_stats: list[dict[str, torch.Tensor]] = []
        self.eval_records: list[dict[str, str]] = []

    def token_logps(self, model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """(B, T) log-probabilities of the labelled tokens (0 where ``y`` is -100).

        Only positions from the batch's first answer token on reach the vocabulary
        projection (``logits_from``): the prompts' logits would only be multiplied by 0.
        """
        labelled = y != IGNORE_INDEX
        k = int(labelled.any(dim=0).int().argmax())  # the first column with an answer token
        with self._autocast():
            logits = model(x, logits_from=k)  # (B, T - k, vocab)
        logps = token_logps(logits, y[:, k:].clamp(min=0)) * labelled[:, k:]
        return torch.nn.functional.pad(logps, (k, 0))  # zeros for the prompt-only columns

    def batch_loss(self, model, batch: tuple, reduction: str) -> torch.Tensor:
        x, y, extra = batch
        cfg: GRPOConfig = self.finetune
        mask = y != IGNORE_INDEX
        logps = self.token_logps(model, x, y)
        old = extra.get("old_logps", logps.detach())
        loss, metrics = grpo_loss(logps, old, extra["advantages"], mask, cfg.clip,
                                  extra.get("ref_logps"), cfg.kl_coef, cfg.kl_estimator)  # fmt: skip
        self.loss_stats.append(metrics)
        return loss * mask.sum() if reduction == "sum" else loss

    def loss_units(self, batch: tuple) -> torch.Tensor:
        return (batch[1] != IGNORE_INDEX).sum()  # response tokens

    # ---------------------------------------------------------------- logging
    def _log(self, record: dict[str, Any]) -> None:
        if "loss" in record:  # a train record: the rollouts and losses since the last one
            record.update(self._drain_stats())
        super()._log(record)

    def _drain_stats(self) -> dict[str, float]:
        rows = [*self.train_loader.stats, *({k: float(v) for k, v in m.items()}
                                            for m in self.loss_stats)]  # fmt: skip
        self.train_loader.stats, self.loss_stats = [], []
        keys = sorted({k for r in rows for k in r})
        sums = torch.tensor([[r.get(k, 0.0) for k in keys] for r in rows] or [[0.0] * len(keys)])
        counts = torch.tensor([[float(k in r) for k in keys] for r in rows] or [[0.0] * len(keys)])
        both = torch.stack([sums.sum(0), counts.sum(0)]).to(self.device, torch.float64)
        both = self._all_reduce(both)  # every rank's rollouts, under torchrun
        return {k: (s / max(c, 1.0)) for k, s, c in zip(keys, *both.tolist(), strict=True)}

    @torch.no_grad()
    def eval_reward(self) -> float:
        """The mean reward of greedy answers to the held-out prompts."""
        if not self.eval_records:
            return float("nan")
        loader: RolloutLoader = self.train_loader
        answers = generate_responses(self.raw_model, loader.fmt, loader.tokenizer,
                                     self.eval_records, self.finetune.max_new_tokens,
                                     batch_size=64, device=self.device)  # fmt: skip
        rewards = loader.rewards
        return sum(rewards.total(rewards.score(a.pop("response"), a)) for a in answers) / len(
            answers
        )

    def _checkpoint_point(self, bar) -> None:
        if self.eval_records:
            value = self.eval_reward()
            self._log({"step": self.step, "eval_reward": value})
            if self.is_main:
                bar.write(f"step {self.step}: eval reward {value:.4f}")
        super()._checkpoint_point(bar)

    def final_metrics(self) -> dict[str, Any]:
        last = [r["eval_reward"] for r in self.history if "eval_reward" in r]
        first = [r["reward"] for r in self.history if "reward" in r]
        return {"eval_reward": last[-1] if last else None,
                "first_reward": first[0] if first else None,
                "last_reward": first[-1] if first else None}  # fmt: skip

    def plot(self) -> Path:
        return plot_metrics(self.run_dir / "metrics.jsonl", self.run_dir / "loss.png",
                            extra=PLOTTED)  # fmt: skip


# ------------------------------------------------------------------------------ the run
def build_grpo_trainer(cfg: GRPOConfig, *, resume: bool = False) -> GRPOTrainer:
    """The policy (``init``, LoRA on request), its reference, the rollout loader, the Trainer."""
    rewards = Rewards(cfg.rewards, cfg.reward_weights)  # a bad name fails before loading
    info = init_distributed()
    tcfg = cfg.train_config()
    torch.manual_seed(tcfg.seed)
    if not cfg.init:
        raise ConfigError("set init: the SFT run (a LegoLLM checkpoint or run dir) or an HF dir")
    base = load_model(cfg.init, cfg.tokenizer)
    if cfg.format is None:  # prompt the policy as its SFT run did
        cfg = replace(cfg, format=base.prompt_format or "alpaca",
                      system=cfg.system if cfg.system is not None else base.system)  # fmt: skip
    fmt = get_format(cfg.format, system=cfg.system)
    model = no_dropout(base.model).train()
    device = resolve_device(tcfg.device, info.local_rank)
    reference = None
    lora = cfg.lora_config() if cfg.lora is not None else None
    if lora is not None:
        apply_lora(model, lora)
    elif cfg.kl_coef > 0:  # the start, frozen: a second copy only when full tuning needs it
        reference = copy.deepcopy(model).requires_grad_(False).eval().to(device)
    loader = RolloutLoader(cfg, fmt, base.tokenizer, rewards, tcfg.batch_size,
                           tcfg.grad_accum_steps, tcfg.seed, info.rank, device,
                           reference)  # fmt: skip
    ctx = model.config.context_length
    eval_rng = random.Random(cfg.eval_seed)
    eval_records = [loader.task.sample(eval_rng) for _ in range(cfg.eval_prompts)]
    prompt_len = sum(len(fmt.prompt_ids(r, base.tokenizer)) for r in eval_records[:16])
    prompt_len /= max(1, min(16, len(eval_records)))
    if prompt_len + cfg.max_new_tokens > ctx:
        raise ConfigError(f"prompts (~{prompt_len:.0f} tokens) plus max_new_tokens "
                          f"{cfg.max_new_tokens} exceed the model's context of {ctx}")  # fmt: skip
    run = FinetuneRun(config=cfg, dist=info, model=model, tokenizer=base.tokenizer,
                      tokenizer_spec=base.tokenizer_spec, format=fmt, train=[], val=[],
                      test=eval_records, lora=lora, train_config=replace(tcfg, block_size=ctx),
                      device=device, max_length=ctx, pad_id=loader.pad_id)  # fmt: skip
    trainer = finish_trainer(GRPOTrainer, run, loader, None, resume,
                             cfg.group_size * (prompt_len + cfg.max_new_tokens))  # fmt: skip
    trainer.eval_records = eval_records
    return trainer


def run_grpo(cfg: GRPOConfig, *, resume: bool = False) -> dict[str, Any]:
    """Train with GRPO as ``cfg`` says; the Trainer's summary, rewards, paths and counts."""
    try:
        trainer = build_grpo_trainer(cfg, resume=resume)
        n_train, n_total = trainable_parameters(trainer.raw_model)
        trainer._print(
            f"grpo: task {cfg.task}, {trainer.config.batch_size} prompts x {cfg.group_size} "
            f"answers per micro-batch, format {trainer.run.format.name}, rewards "
            f"{', '.join(cfg.rewards)}; training {n_train:,} of {n_total:,} parameters"
            + (" (LoRA)" if trainer.run.lora is not None else "")
        )
        summary = trainer.fit()
        summary.update(trainer.final_metrics())
        summary.update(write_run_files(trainer))
    finally:
        cleanup_distributed()
    summary.update(trainable=n_train, total=n_total, is_main=trainer.is_main)
    return summary


__all__ = [
    "PLOTTED",
    "GRPOConfig",
    "GRPOTrainer",
    "Rewards",
    "RolloutLoader",
    "build_grpo_trainer",
    "group_advantages",
    "grpo_loss",
    "left_pad",
    "no_dropout",
    "run_grpo",
    "training_rows",
]
