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
from typing import Any, ClassVar, NamedTuple

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from legollm.core.exceptions import ConfigError
from legollm.finetuning.dataset import (
    Example,
    InstructionLoader,
    collate,
    load_records,
    split_records,
    tokenize_record,
)
from legollm.finetuning.formats import PromptFormat
from legollm.finetuning.runner import (
    FinetuneConfig,
    FinetuneMeta,
    FinetuneTrainer,
    finish_trainer,
    run_finetuning,
    setup_finetuning,
)
from legollm.models.loss import lm_loss

PREFERENCE_FIELDS = ("instruction", "chosen", "rejected")  # input is optional


class PreferencePair(NamedTuple):
    """A prompt's chosen and rejected responses, tokenized, and (once computed) the
    reference model's log-probabilities of each: ``(chosen, rejected)``."""

    chosen: Example
    rejected: Example
    reference: tuple[float, float] | None = None

    def inputs(self) -> tuple[list[int], ...]:
        return (self.chosen.input_ids, self.rejected.input_ids)


@dataclass
class DPOConfig(FinetuneConfig):
    """A fine-tuning config plus DPO's ``beta`` and ``label_smoothing``; ``fields`` may
    map ``chosen`` / ``rejected`` to the file's names."""

    kind: ClassVar[str] = "dpo"

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
def prepare_preferences(
    cfg: DPOConfig, fmt: PromptFormat, tokenizer: Any, max_length: int
) -> tuple[list[PreferencePair], list[PreferencePair], list[dict[str, str]]]:
    """``(train, val, test_records)``: the pairs whose both responses keep a trained token
    within ``max_length``; the test records are answered after training."""
    records = load_records(cfg.data, cfg.fields or None, cfg.on_bad_record, PREFERENCE_FIELDS)
    train_r, val_r, test_r = split_records(
        records, cfg.val_fraction, cfg.test_fraction, cfg.split_seed
    )

    def tokenize(rs: list[dict[str, str]]) -> list[PreferencePair]:
        out = []
        for r in rs:
            chosen, _ = tokenize_record({**r, "output": r["chosen"]}, fmt, tokenizer,
                                        max_length, "response")  # fmt: skip
            rejected, _ = tokenize_record({**r, "output": r["rejected"]}, fmt, tokenizer,
                                          max_length, "response")  # fmt: skip
            if chosen is not None and rejected is not None:  # both need a trained token
                out.append(PreferencePair(chosen, rejected))
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
        pairs: list[PreferencePair] = [self.examples[i] for i in mine]
        rows = [p.chosen for p in pairs] + [p.rejected for p in pairs]
        x, y = collate(rows, self.pad_id, self.pad_to_multiple_of)
        ref = torch.tensor([p.reference for p in pairs], dtype=torch.float32)
        return self._to_device(x), self._to_device(y), {"reference": self._to_device(ref)}


@torch.no_grad()
def reference_logps(
    model,
    pairs: list[PreferencePair],
    batch_size: int,
    pad_id: int,
    device,
    progress: bool = False,
    desc: str = "",
) -> list[PreferencePair]:
    """The pairs with the model's (reference) log-probabilities of both responses.

    A forward pass over every pair before the first step: minutes on a CPU, so
    ``progress`` shows a bar (``desc`` names the split) instead of a silent wait.
    """
    was_training = model.training
    model.eval()
    out = []
    label = f"reference log-probs{f' ({desc})' if desc else ''}"
    with tqdm(total=len(pairs), desc=label, unit="pair", disable=not progress) as bar:
        for s in range(0, len(pairs), batch_size):
            batch = pairs[s : s + batch_size]
            rows = [p.chosen for p in batch] + [p.rejected for p in batch]
            x, y = collate(rows, pad_id)
            logps = sequence_logps(model, x.to(device), y.to(device)).view(2, -1).t().tolist()
            out.extend(p._replace(reference=(c, r)) for p, (c, r) in zip(batch, logps, strict=True))
            bar.update(len(batch))
    model.train(was_training)
    return out


class DPOTrainer(FinetuneTrainer):
    """The fine-tuning trainer with DPO's loss: averaged over preference pairs, not tokens."""

    unit: ClassVar[str] = "pairs"
    val_loss_is_token_nll: ClassVar[bool] = False

    def batch_loss(self, model, batch: tuple, reduction: str) -> torch.Tensor:
        x, y, extra = batch
        policy = sequence_logps(model, x, y).view(2, -1).t()  # (B, 2)
        cfg: DPOConfig = self.finetune
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
        cfg: DPOConfig = self.finetune
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

    def final_metrics(self) -> dict[str, Any]:
        """Reward margin, accuracy and loss on the validation pairs, after training."""
        return {"preference": self.preference_metrics()} if self.val_loader is not None else {}

    def meta(self) -> FinetuneMeta:
        cfg: DPOConfig = self.finetune
        meta = super().meta()
        meta.objective_args = {"beta": cfg.beta, "label_smoothing": cfg.label_smoothing}
        return meta


def build_dpo_trainer(cfg: DPOConfig, *, resume: bool = False) -> DPOTrainer:
    """Model, tokenizer, preference pairs with their reference log-probabilities, Trainer."""
    run = setup_finetuning(cfg, prepare_preferences)
    model = run.model.to(run.device)
    bs = run.train_config.batch_size
    show = run.train_config.progress and run.dist.is_main  # one bar, from rank 0
    run.train = reference_logps(model, run.train, bs, run.pad_id, run.device, show, "train")
    run.val = reference_logps(model, run.val, bs, run.pad_id, run.device, show, "val")
    args = run.loader_args()
    train_loader = PreferenceLoader(run.train, bs, shuffle=True, seed=run.train_config.seed,
                                    sort_by_length=cfg.sort_by_length, **args)  # fmt: skip
    val_loader = PreferenceLoader(run.val, bs, shuffle=False, **args) if run.val else None
    mean_len = sum(len(p.chosen.input_ids) + len(p.rejected.input_ids) for p in run.train)
    return finish_trainer(DPOTrainer, run, train_loader, val_loader, resume,
                          mean_len / len(run.train))  # fmt: skip


def run_dpo(cfg: DPOConfig, *, resume: bool = False) -> dict[str, Any]:
    """Train with DPO as ``cfg`` says; the Trainer's summary plus paths and val metrics."""
    return run_finetuning(cfg, build_dpo_trainer, resume=resume)


__all__ = [
    "DPOConfig",
    "DPOTrainer",
    "PreferenceLoader",
    "PreferencePair",
    "build_dpo_trainer",
    "dpo_loss",
    "prepare_preferences",
    "reference_logps",
    "run_dpo",
    "sequence_logps",
]
