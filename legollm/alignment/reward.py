"""A reward model: a ``DecoderLM`` whose vocabulary head is swapped for a scalar one.

The model reads prompt + response and its one output at the response's *last real
token* (causal attention: the only position that has seen everything) is the reward
``r``. Trained on the preference pairs DPO uses (same files, fields and prompt
formats) with the Bradley-Terry loss::

    P(chosen preferred) = sigmoid(r_c - r_r)          loss = -log sigmoid(r_c - r_r)

A pair counts as *right* when ``r_c > r_r``; the held-out accuracy is reported after
training. The scored sequence is exactly what SFT and DPO train on: the prompt in
its format, then the response tokens (the stop token is left out, so a response
that ran out of tokens before stopping is scored the same way).

The checkpoint is an ordinary fine-tuning run (``latest.pt``, resumable, LoRA or
full) whose head has one output; :meth:`RewardModel.load` reads it back, and
:meth:`RewardModel.score` turns texts into rewards (PPO calls ``score_ids``).
``legollm reward-model --config FILE.yaml`` runs it like ``legollm dpo``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from legollm.alignment.losses import bradley_terry_loss
from legollm.components.linear import Linear
from legollm.core.exceptions import ConfigError, ModelLoadError
from legollm.core.tokenization.specs import load_tokenizer
from legollm.finetuning.dataset import InstructionLoader, collate
from legollm.finetuning.dpo import PreferencePair, prepare_preferences
from legollm.finetuning.formats import PromptFormat
from legollm.finetuning.runner import (
    FinetuneConfig,
    FinetuneTrainer,
    finish_trainer,
    run_finetuning,
    setup_finetuning,
)
from legollm.models.config import ModelConfig
from legollm.models.decoder import DecoderLM
from legollm.models.loading import find_checkpoint, load_checkpoint
from legollm.peft import LoRAConfig, apply_lora, remove_lora

OBJECTIVE = "reward_model"


@dataclass
class RewardConfig(FinetuneConfig):
    """A fine-tuning config over preference data (``instruction``, ``chosen``,
    ``rejected``; ``fields`` maps other names)."""

    kind: ClassVar[str] = OBJECTIVE

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.train_on != "response" or self.pack:
            raise ConfigError("a reward model scores whole responses: keep train_on=response "
                              "and pack=false")  # fmt: skip


# ------------------------------------------------------------------------------ the model
def add_score_head(model: DecoderLM) -> DecoderLM:
    """Replace ``lm_head`` (C -> vocab) by a fresh scalar head (C -> 1), in place.

    Small random init (std ``1/sqrt(C + 1)``): every pair starts near a margin of 0
    (loss log 2) yet the backbone gets gradient from the first step. No bias: the
    Bradley-Terry loss only sees differences of rewards, so a bias would never move.
    """
    C = model.config.n_embd
    w = model.lm_head.weight
    head = Linear(C, 1, bias=False, device=w.device, dtype=w.dtype)
    torch.nn.init.normal_(head.weight, std=1 / math.sqrt(C + 1))
    model.lm_head = head
    return model


def last_token_scores(model, x: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
    """(B,) rewards: the scalar head at each row's last real position ``last`` (B,).
    Right padding after it cannot change it (causal attention)."""
    out = model(x)  # (B, T, 1)
    return out[torch.arange(x.shape[0], device=x.device), last, 0].float()


class PairLoader(InstructionLoader):
    """Batches of B pairs as one right-padded block of 2B rows (chosen rows, then
    rejected) and each row's last real position: ``(x, last)``."""

    def _batch(self, idx: list[int]) -> tuple:
        mine = idx[self.rank :: self.world_size] or idx[:1]
        pairs: list[PreferencePair] = [self.examples[i] for i in mine]
        rows = [p.chosen for p in pairs] + [p.rejected for p in pairs]
        x, _ = collate(rows, self.pad_id, self.pad_to_multiple_of)
        last = torch.tensor([len(r.input_ids) - 1 for r in rows])
        return self._to_device(x), self._to_device(last)


def prepare_pairs(cfg: RewardConfig, fmt: PromptFormat, tokenizer: Any, max_length: int):
    """DPO's pairs, but no test split to answer: a reward model does not write text."""
    train, val, _ = prepare_preferences(cfg, fmt, tokenizer, max_length)
    return train, val, []


class RewardTrainer(FinetuneTrainer):
    """The fine-tuning trainer with the Bradley-Terry loss, averaged over pairs."""

    unit: ClassVar[str] = "pairs"
    val_loss_is_token_nll: ClassVar[bool] = False
    saves_adapter: ClassVar[bool] = False  # adapters without the scalar head score nothing

    def batch_loss(self, model, batch: tuple, reduction: str) -> torch.Tensor:
        x, last = batch
        r = last_token_scores(model, x, last).view(2, -1)  # [chosen; rejected]
        losses = bradley_terry_loss(r[0], r[1])
        return losses.sum() if reduction == "sum" else losses.mean()

    def loss_units(self, batch: tuple) -> torch.Tensor:
        return torch.tensor(batch[0].shape[0] // 2, device=batch[0].device)  # pairs

    @torch.no_grad()
    def pair_metrics(self, loader=None) -> dict[str, float]:
        """Accuracy (``r_c > r_r``), mean margin, rewards and loss over every pair of
        ``loader`` (the validation pairs by default)."""
        loader = loader or self.val_loader
        model = self.raw_model
        was_training = model.training
        model.eval()
        sums = dict.fromkeys(("accuracy", "margin", "reward_chosen", "reward_rejected", "loss"),
                             0.0)  # fmt: skip
        n = 0
        for x, last in loader.eval_batches(None):
            c, r = last_token_scores(model, x, last).view(2, -1)
            sums["accuracy"] += float((c > r).sum())
            sums["margin"] += float((c - r).sum())
            sums["reward_chosen"] += float(c.sum())
            sums["reward_rejected"] += float(r.sum())
            sums["loss"] += float(bradley_terry_loss(c, r).sum())
            n += len(c)
        model.train(was_training)
        return {k: v / max(n, 1) for k, v in sums.items()}

    def final_metrics(self) -> dict[str, Any]:
        """Held-out pair accuracy, margin and loss after training."""
        return {"preference": self.pair_metrics()} if self.val_loader is not None else {}


def build_reward_trainer(cfg: RewardConfig, *, resume: bool = False) -> RewardTrainer:
    """The base model with a scalar head, the pairs, their loaders and the Trainer."""
    run = setup_finetuning(cfg, prepare_pairs)
    add_score_head(run.model)  # after LoRA: the new head is always trained in full
    bs = run.train_config.batch_size
    args = run.loader_args()
    train_loader = PairLoader(run.train, bs, shuffle=True, seed=run.train_config.seed,
                              sort_by_length=cfg.sort_by_length, **args)  # fmt: skip
    val_loader = PairLoader(run.val, bs, shuffle=False, **args) if run.val else None
    mean_len = sum(len(p.chosen.input_ids) + len(p.rejected.input_ids) for p in run.train)
    return finish_trainer(RewardTrainer, run, train_loader, val_loader, resume,
                          mean_len / len(run.train))  # fmt: skip


def run_reward_model(cfg: RewardConfig, *, resume: bool = False) -> dict[str, Any]:
    """Train a reward model as ``cfg`` says; the summary plus held-out pair metrics."""
    return run_finetuning(cfg, build_reward_trainer, resume=resume)


# ------------------------------------------------------------------------------ using one
@dataclass
class RewardModel:
    """A trained reward model, ready to score: the model (scalar head), its tokenizer
    and the prompt format it was trained with."""

    model: DecoderLM
    tokenizer: Any
    tokenizer_spec: dict[str, Any]
    format: str
    system: str | None = None

    @classmethod
    def load(cls, path: str | os.PathLike[str], device: str | torch.device = "cpu"):
        """From a ``legollm reward-model`` run dir or checkpoint file (LoRA merged in)."""
        ckpt_path = find_checkpoint(path)
        if ckpt_path is None:
            raise ModelLoadError(f"reward model {str(path)!r}: no checkpoint there; give the "
                                 "run dir or latest.pt of `legollm reward-model`")  # fmt: skip
        ckpt = load_checkpoint(ckpt_path)
        meta = ckpt.get("sft") if isinstance(ckpt.get("sft"), dict) else {}
        if meta.get("objective") != OBJECTIVE:
            raise ModelLoadError(f"{ckpt_path} is not a reward model (it was trained with "
                                 f"{meta.get('objective', 'pretraining')!r}); train one with "
                                 "`legollm reward-model`")  # fmt: skip
        model = add_score_head(DecoderLM(ModelConfig.from_dict(ckpt["model_config"])))
        if ckpt.get("lora"):
            apply_lora(model, LoRAConfig.from_dict(ckpt["lora"]))
        model.load_state_dict(ckpt["model"])
        if ckpt.get("lora"):
            remove_lora(model)
        model.requires_grad_(False)
        return cls(model.to(device).eval(), load_tokenizer(ckpt["tokenizer"]), ckpt["tokenizer"],
                   meta["format"], meta.get("system"))  # fmt: skip

    @torch.no_grad()
    def score_ids(self, rows: list[list[int]], batch_size: int = 16) -> torch.Tensor:
        """(N,) float32 rewards of token-id sequences (prompt + response, no stop token)."""
        device = next(self.model.parameters()).device
        out = []
        for s in range(0, len(rows), batch_size):
            chunk = rows[s : s + batch_size]
            x = torch.zeros(len(chunk), max(map(len, chunk)), dtype=torch.long)
            for i, r in enumerate(chunk):
                x[i, : len(r)] = torch.tensor(r)
            last = torch.tensor([len(r) - 1 for r in chunk], device=device)
            out.append(last_token_scores(self.model, x.to(device), last))
        return torch.cat(out).cpu()

    def score(self, texts: list[str], batch_size: int = 16) -> list[float]:
        """Rewards of whole texts (prompt and response, rendered in :attr:`format`)."""
        rows = [self.tokenizer.encode(t, allowed_special="all") for t in texts]
        if any(not r for r in rows):
            raise ConfigError("score() got an empty text; give prompt and response")
        return self.score_ids(rows, batch_size).tolist()


__all__ = [
    "OBJECTIVE",
    "PairLoader",
    "RewardConfig",
    "RewardModel",
    "RewardTrainer",
    "add_score_head",
    "build_reward_trainer",
    "last_token_scores",
    "run_reward_model",
]
