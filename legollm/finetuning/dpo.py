"""Direct Preference Optimization (DPO) on the project's Trainer.

Preference data gives, for a prompt, a ``chosen`` and a ``rejected`` response.
DPO trains the policy to raise the chosen response's log-probability relative to
a frozen reference model (the starting point) more than the rejected one's:

    z    = beta * ((log pi(chosen) - log ref(chosen)) - (log pi(rejected) - log ref(rejected)))
    loss = -log sigmoid(z)

where ``log pi(y)`` is the sum of the response tokens' log-probabilities (the
prompt is masked with -100, as in SFT). ``beta * (log pi - log ref)`` is each
response's implicit reward; accuracy is how often the chosen reward is higher.
``label_smoothing`` e assumes labels flip with probability e (conservative DPO):
loss = -(1 - e) log sigmoid(z) - e log sigmoid(-z).

The reference is never kept in memory: it is the model before the first step,
so its log-probabilities are computed once per example when the run starts and
travel with the examples. That works the same for full fine-tuning and LoRA
(whose adapters start at zero), and a resumed run gets the same numbers: it
computes them from ``init`` before loading the checkpoint's weights.

``legollm dpo --config FILE.yaml`` runs it as ``legollm sft`` runs SFT (same
starting points, formats, LoRA, checkpoints and test responses).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from legollm.core.exceptions import ConfigError
from legollm.finetuning.dataset import InstructionLoader, collate
from legollm.finetuning.sft import SFTConfig, SFTTrainer, finish_trainer, setup_finetuning
from legollm.models.loss import lm_loss

PREFERENCE_FIELDS = ("instruction", "chosen", "rejected")  # input is optional


@dataclass
class DPOConfig(SFTConfig):
    """An SFT config plus DPO's ``beta`` and ``label_smoothing``; ``fields`` may map
    ``chosen`` / ``rejected`` to the file's names."""

    beta: float = 0.1
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.beta <= 0:
            raise ConfigError(f"beta must be > 0, got {self.beta}")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ConfigError(f"label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if self.train_on != "response" or self.pack:
            raise ConfigError("dpo compares responses: keep train_on=response and pack=false")

    def train_config(self, block_size: int | None = None):
        if "run_dir" not in self.train:
            self.train = {**self.train, "run_dir": "runs/dpo"}
        return super().train_config(block_size)


# ------------------------------------------------------------------------------ the math
def sequence_logps(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(rows,): the summed log-probability of each row's labelled tokens (-100 skipped)."""
    nll = lm_loss(model(x), y, reduction="none")  # 0 where the target is -100
    return -nll.view(y.shape).sum(dim=-1)


def dpo_loss(
    policy: torch.Tensor, reference: torch.Tensor, beta: float, label_smoothing: float = 0.0
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Per-pair losses (B,) from (B, 2) log-probabilities [chosen, rejected], and metrics."""
    rewards = beta * (policy - reference)  # (B, 2): the implicit rewards
    z = rewards[:, 0] - rewards[:, 1]
    losses = -(1 - label_smoothing) * F.logsigmoid(z) - label_smoothing * F.logsigmoid(-z)
    metrics = {
        "reward_chosen": rewards[:, 0].detach(),
        "reward_rejected": rewards[:, 1].detach(),
        "margin": z.detach(),
        "accuracy": (z > 0).float().detach(),
    }
    return losses, metrics


# ------------------------------------------------------------------------------ the data
def prepare_preferences(cfg: DPOConfig, fmt, tokenizer, max_length: int):
    """``(train, val, test_records)``: examples ``(x_chosen, y_chosen, x_rejected, y_rejected)``."""
    from legollm.finetuning.dataset import load_records, split_records, tokenize_record

    records = load_records(cfg.data, cfg.fields or None, cfg.on_bad_record, PREFERENCE_FIELDS)
    train_r, val_r, test_r = split_records(
        records, cfg.val_fraction, cfg.test_fraction, cfg.split_seed
    )

    def tokenize(rs):
        out = []
        for r in rs:
            chosen = tokenize_record({**r, "output": r["chosen"]}, fmt, tokenizer, max_length,
                                     "response")  # fmt: skip
            rejected = tokenize_record({**r, "output": r["rejected"]}, fmt, tokenizer,
                                       max_length, "response")  # fmt: skip
            if chosen[0] and rejected[0]:  # a pair needs a trained token on both sides
                out.append((chosen[0], chosen[1], rejected[0], rejected[1]))
        return out

    train = tokenize(train_r)
    if not train:
        raise ConfigError(f"no preference pair fits max_length {max_length}; raise it")
    return train, tokenize(val_r), [{**r, "output": r["chosen"]} for r in test_r]


class PreferenceLoader(InstructionLoader):
    """Batches of B pairs as one padded block of 2B rows (chosen rows, then rejected),
    plus each pair's reference log-probabilities: ``(x, y, {"reference": (B, 2)})``."""

    def _batch(self, idx: list[int]) -> tuple:
        mine = idx[self.rank :: self.world_size] or idx[:1]
        pairs = [self.examples[i] for i in mine]
        rows = [(p[0], p[1]) for p in pairs] + [(p[2], p[3]) for p in pairs]
        x, y = collate(rows, self.pad_id, self.pad_to_multiple_of)
        ref = torch.tensor([[p[4], p[5]] for p in pairs], dtype=torch.float32)
        return self._to_device(x), self._to_device(y), {"reference": self._to_device(ref)}


@torch.no_grad()
def reference_logps(model, examples, batch_size: int, pad_id: int, device) -> list[tuple]:
    """The examples with the model's (reference) log-probabilities of both responses."""
    was_training = model.training
    model.eval()
    out = []
    for s in range(0, len(examples), batch_size):
        pairs = examples[s : s + batch_size]
        rows = [(p[0], p[1]) for p in pairs] + [(p[2], p[3]) for p in pairs]
        x, y = collate(rows, pad_id)
        logps = sequence_logps(model, x.to(device), y.to(device)).view(2, -1).t().tolist()
        out.extend((*p[:4], c, r) for p, (c, r) in zip(pairs, logps, strict=True))
    model.train(was_training)
    return out


class DPOTrainer(SFTTrainer):
    """The SFT trainer with DPO's loss: averaged over preference pairs, not tokens."""

    def batch_loss(self, model, batch: tuple, reduction: str) -> torch.Tensor:
        x, y, extra = batch
        policy = sequence_logps(model, x, y).view(2, -1).t()  # (B, 2)
        cfg: DPOConfig = self.sft["config"]
        losses, _ = dpo_loss(policy, extra["reference"], cfg.beta, cfg.label_smoothing)
        return losses.sum() if reduction == "sum" else losses.mean()

    def loss_units(self, batch: tuple) -> torch.Tensor:
        return torch.tensor(batch[0].shape[0] // 2, device=batch[0].device)  # pairs

    @torch.no_grad()
    def preference_metrics(self, loader=None, model=None) -> dict[str, float]:
        """Mean reward margin, accuracy and loss over every batch of ``loader`` (val), for
        ``model`` (the one training; another one, e.g. trained elsewhere, to compare)."""
        loader = loader or self.val_loader
        model = model or self.raw_model
        cfg: DPOConfig = self.sft["config"]
        was_training = model.training
        model.eval()
        sums: dict[str, float] = {}
        n = 0
        for x, y, extra in loader.eval_batches(None):
            policy = sequence_logps(model, x, y).view(2, -1).t()
            losses, m = dpo_loss(policy, extra["reference"], cfg.beta, cfg.label_smoothing)
            for k, v in {**m, "loss": losses}.items():
                sums[k] = sums.get(k, 0.0) + float(v.sum())
            n += len(losses)
        model.train(was_training)
        return {k: v / max(n, 1) for k, v in sums.items()}

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        cfg: DPOConfig = self.sft["config"]
        state["sft"]["dpo"] = {"beta": cfg.beta, "label_smoothing": cfg.label_smoothing}
        return state


def build_dpo_trainer(cfg: DPOConfig, *, resume: bool = False) -> DPOTrainer:
    """Model, tokenizer, preference pairs with their reference log-probabilities, Trainer."""
    run = setup_finetuning(cfg, prepare_preferences)
    args = run.loader_args
    model = run.model.to(run.device)
    ref_batch = max(1, run.tcfg.batch_size)
    train = reference_logps(model, run.train, ref_batch, args["pad_id"], run.device)
    val = reference_logps(model, run.val, ref_batch, args["pad_id"], run.device)
    bs = run.tcfg.batch_size
    train_loader = PreferenceLoader(train, bs, shuffle=True, seed=run.tcfg.seed,
                                    sort_by_length=cfg.sort_by_length, **args)  # fmt: skip
    val_loader = PreferenceLoader(val, bs, shuffle=False, **args) if val else None
    mean_len = sum(len(p[0]) + len(p[2]) for p in train) / len(train)
    run.val = val
    return finish_trainer(DPOTrainer, cfg, run, train_loader, val_loader, resume, mean_len,
                          n_train=len(train), n_sequences=len(train))  # fmt: skip


def run_dpo(cfg: DPOConfig, *, resume: bool = False) -> dict[str, Any]:
    """Train with DPO as ``cfg`` says; the Trainer's summary plus paths and val metrics."""
    from legollm.finetuning.sft import run_finetuning

    return run_finetuning(cfg, build_dpo_trainer, resume=resume)


__all__ = [
    "DPOConfig",
    "DPOTrainer",
    "PreferenceLoader",
    "build_dpo_trainer",
    "dpo_loss",
    "prepare_preferences",
    "reference_logps",
    "run_dpo",
    "sequence_logps",
]
