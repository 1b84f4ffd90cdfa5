"""PPO for RLHF on the project's Trainer: sample, score, compute advantages, clip.

One *rollout* is a batch of prompts answered by the current policy with the
KV-cached batched generator. Each response token ``a_t`` is an action; its reward is

    r_t = -kl_coef * k(log pi_old(a_t) - log ref(a_t))      (+ RM(prompt, response) on the last token)

where ``ref`` is the starting model (with LoRA: the same weights with the adapters
switched off, see :func:`legollm.peft.adapters_disabled`; in full tuning a frozen
copy) and ``k`` one of the KL estimators of :mod:`legollm.alignment.losses`. A value
head on the policy's hidden states predicts ``V_t``; GAE turns rewards and values
into advantages (whitened over the batch) and value targets. Then ``ppo_epochs``
passes over the rollout in shuffled minibatches of ``train.batch_size`` responses,
each an ordinary Trainer step whose loss is

    loss = L_clip(policy) + vf_coef * L_clip(value)

The Trainer's loader *is* the rollout buffer (:class:`RolloutLoader`): when its
minibatches run out it samples the next rollout with the weights of that moment.
Rollout ``k`` draws its prompts and its sampling seed from ``(seed, k)`` alone, and
the buffer travels in the checkpoint, so a resumed run continues exactly. The
policy always runs in eval mode (no dropout) and the rollout's log-probabilities
are computed over the very minibatches the first update pass will see, so the first
step's ratio is exactly 1 (and its KL to the reference 0: the policy still is it).

``legollm ppo --config FILE.yaml`` runs it; the tuned policy is written as
``policy.pt`` beside the run's ``latest.pt``, loadable by ``legollm chat``.
"""

from __future__ import annotations

import contextlib
import copy
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import torch
from torch import nn

from legollm.alignment.losses import (
    KL_ESTIMATORS,
    entropy,
    explained_variance,
    gae,
    kl_estimate,
    masked_mean,
    ppo_policy_loss,
    ppo_value_loss,
    token_logps,
    whiten,
)
from legollm.alignment.reward import RewardModel
from legollm.components.linear import Linear
from legollm.core.exceptions import ConfigError, DataError
from legollm.core.runtime import unwrap_model
from legollm.finetuning.dataset import load_records
from legollm.finetuning.formats import PromptFormat
from legollm.finetuning.runner import (
    FinetuneConfig,
    FinetuneTrainer,
    finish_trainer,
    run_finetuning,
    setup_finetuning,
)
from legollm.generation import generate
from legollm.peft import adapters_disabled, lora_layers, save_adapter
from legollm.training.checkpoint import save_checkpoint
from legollm.training.logging import plot_metrics

POLICY_NAME = "policy.pt"
PLOTTED = ("reward", "kl", "entropy", "clip_fraction", "value_loss", "explained_variance")


@dataclass
class PPOConfig(FinetuneConfig):
    """A fine-tuning config whose ``data`` holds prompts (``instruction``, optional
    ``input``), plus the reward model and PPO's knobs. ``train.batch_size`` is the
    minibatch (responses per optimizer step)."""

    kind: ClassVar[str] = "ppo"

    reward_model: str = ""  # a `legollm reward-model` run dir or checkpoint
    rollout_size: int = 16  # prompts answered per rollout (shared out among DDP ranks)
    ppo_epochs: int = 2  # passes over each rollout
    max_new_tokens: int = 32  # response length cap
    temperature: float = 1.0
    kl_coef: float = 0.05
    kl_estimator: str = "k1"
    gamma: float = 1.0
    lam: float = 0.95
    clip: float = 0.2
    clip_value: float = 0.2
    vf_coef: float = 0.1
    whiten_advantages: bool = True
    val_fraction: float = 0.0
    test_fraction: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.reward_model:
            raise ConfigError("set reward_model: the run dir of `legollm reward-model`")
        if self.kl_estimator not in KL_ESTIMATORS:
            raise ConfigError(f"kl_estimator must be one of {KL_ESTIMATORS}")
        for name in ("rollout_size", "ppo_epochs", "max_new_tokens"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.temperature <= 0 or self.kl_coef < 0 or not 0 < self.clip < 1:
            raise ConfigError("need temperature > 0, kl_coef >= 0 and 0 < clip < 1")


class Prompt(NamedTuple):
    """One prompt: its record and token ids (``inputs()``: for the vocabulary check)."""

    record: dict[str, str]
    ids: list[int]

    def inputs(self) -> tuple[list[int], ...]:
        return (self.ids,)


def prepare_prompts(cfg: PPOConfig, fmt: PromptFormat, tokenizer: Any, max_length: int):
    """Every record's prompt, cut from the left to leave room for the response."""
    room = max_length - cfg.max_new_tokens
    if room < 1:
        raise ConfigError(f"max_new_tokens {cfg.max_new_tokens} leaves no room for a prompt "
                          f"in max_length {max_length}")  # fmt: skip
    records = load_records(cfg.data, cfg.fields or None, cfg.on_bad_record, ("instruction",))
    prompts = [Prompt(r, fmt.prompt_ids(r, tokenizer)[-room:]) for r in records]
    if not prompts:
        raise DataError(f"{cfg.data} holds no prompts")
    return prompts, [], []


# ------------------------------------------------------------------------------ the model
class PolicyWithValue(nn.Module):
    """The policy (a DecoderLM, LoRA or not) and a value head on its hidden states.

    ``forward(seq, ...)`` returns, for the response positions from ``start`` on, the
    next-token logits (B, R, vocab) and the values V (B, R) of the states before each
    response token. One module, so DDP and the optimizer see both parts.
    """

    def __init__(self, policy: nn.Module):
        super().__init__()
        self.policy = policy
        w = policy.lm_head.weight
        self.value_head = Linear(policy.config.n_embd, 1, device=w.device, dtype=w.dtype)
        nn.init.zeros_(self.value_head.weight)  # V = 0 at first: no made-up baseline
        nn.init.zeros_(self.value_head.bias)
        self.train()  # puts the policy in eval mode, see train()

    @property
    def config(self):
        return self.policy.config

    def train(self, mode: bool = True) -> PolicyWithValue:
        """Only the value head ever trains in mode: the policy runs without dropout, so
        the update computes the very function that sampled the rollout."""
        super().train(mode)
        self.policy.eval()
        return self

    @property
    def lora_config(self):
        return getattr(self.policy, "lora_config", None)

    def forward(self, seq, position_ids, attention_mask, start: int):
        h = self.policy.features(seq, position_ids=position_ids, attention_mask=attention_mask)
        h = h[:, start - 1 : -1]  # the states that chose response tokens start, start+1, ...
        return self.policy.lm_head(h), self.value_head(h).squeeze(-1).float()


# ------------------------------------------------------------------------------ rollouts
class RolloutLoader:
    """The Trainer's loader: minibatches of the current rollout, sampling a new one
    when they run out. State: the rollout counter, the position in its minibatch
    plan, and the buffer itself (so a resume mid-rollout replays nothing)."""

    def __init__(self, model: PolicyWithValue, reference, reward: RewardModel, prompts,
                 fmt: PromptFormat, tokenizer, cfg: PPOConfig, seed: int, device,
                 rank: int = 0, world_size: int = 1):  # fmt: skip
        self.model, self.reference, self.reward = model, reference, reward
        self.rank, self.world_size = rank, world_size  # each rank answers its share
        self.prompts, self.cfg, self.seed, self.device = prompts, cfg, seed, device
        self.stops = fmt.stop_ids(tokenizer)
        self.batch_size = cfg.train_config().batch_size
        self.rollouts = 0  # how many have been sampled
        self.pos = 0  # minibatches of the current one already handed out
        self.buffer: dict[str, torch.Tensor] | None = None
        self.stats: dict[str, float] = {}

    # -- the plan: which prompts, which rows in which minibatch
    def _prompt_indices(self, k: int) -> list[int]:
        n, size = len(self.prompts), self.cfg.rollout_size
        out = []
        for j in range(k * size, (k + 1) * size):
            epoch, i = divmod(j, n)
            order = list(range(n))
            random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
            out.append(order[i])
        return out

    def _plan(self, k: int, rows: int) -> list[torch.Tensor]:
        """Rollout ``k``'s minibatches: ``ppo_epochs`` shuffled passes over its rows."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + k)
        return [chunk for _ in range(self.cfg.ppo_epochs)
                for chunk in torch.randperm(rows, generator=g).split(self.batch_size)]  # fmt: skip

    def next_batch(self) -> dict[str, Any]:
        k = self.rollouts - 1  # the rollout in the buffer
        if self.buffer is None or self.pos >= len(self._plan(k, len(self.buffer["seq"]))):
            k = self.rollouts
            self.buffer, self.stats = self.rollout(k)
            self.rollouts += 1
            self.pos = 0
        idx = self._plan(k, len(self.buffer["seq"]))[self.pos]
        self.pos += 1
        batch = {name: t[idx] for name, t in self.buffer.items() if name != "start"}
        return {**batch, "start": int(self.buffer["start"])}

    # -- one rollout
    @torch.no_grad()
    def rollout(self, k: int) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
        """Sample, score and compute advantages for rollout ``k`` (this rank's share)."""
        cfg, dev = self.cfg, self.device
        policy = self.model.policy
        indices = self._prompt_indices(k)[self.rank :: self.world_size]
        prompts = [self.prompts[i].ids for i in indices]
        T = max(map(len, prompts))
        ids = torch.full((len(prompts), T), self.stops[0], dtype=torch.long)
        attn = torch.zeros_like(ids)
        for i, p in enumerate(prompts):  # left padding: every prompt ends at column T
            ids[i, T - len(p) :] = torch.tensor(p)
            attn[i, T - len(p) :] = 1
        seq = generate(policy, ids.to(dev), cfg.max_new_tokens, cfg.temperature,
                       eos_token_id=self.stops, attention_mask=attn.to(dev),
                       seed=(self.seed * 1_000_003 + k) * 64 + self.rank).cpu()  # fmt: skip
        response = seq[:, T:]
        is_stop = torch.isin(response, torch.tensor(self.stops))
        # real tokens: up to and including the first stop token (the policy chose to stop)
        mask = ((is_stop.cumsum(-1) - is_stop.long()) == 0).float()
        lengths = mask.sum(-1).long()
        attn = torch.cat([attn, torch.ones_like(response)], dim=1)
        pos = (attn.cumsum(-1) - 1).clamp(min=0)
        logps, values, ref_logps = self._evaluate(k, seq, pos, attn, T)
        values = values * mask

        # the reward model reads prompt + response without the stop token
        rows = [p + response[i, : n - int(is_stop[i, n - 1])].tolist()
                for i, (p, n) in enumerate(zip(prompts, lengths.tolist(), strict=True))]  # fmt: skip
        scores = self.reward.score_ids(rows)
        kl = kl_estimate(logps, ref_logps, cfg.kl_estimator) * mask
        rewards = -cfg.kl_coef * kl
        rewards[torch.arange(len(rows)), lengths - 1] += scores
        advantages, returns = gae(rewards, values, mask, cfg.gamma, cfg.lam)
        if cfg.whiten_advantages:
            advantages = whiten(advantages, mask)
        buffer = {"seq": seq, "pos": pos, "attn": attn, "mask": mask, "logps": logps,
                  "ref_logps": ref_logps, "values": values, "advantages": advantages,
                  "returns": returns, "start": torch.tensor(T)}  # fmt: skip
        stats = {
            "reward": scores.mean().item(),
            "kl": kl.sum(-1).mean().item(),  # per response, summed over its tokens
            "response_length": lengths.float().mean().item(),
            "explained_variance": explained_variance(values, returns, mask).item(),
        }
        return buffer, stats

    def _evaluate(self, k: int, seq, pos, attn, T: int) -> tuple[torch.Tensor, ...]:
        """(B, R) log pi_old and log ref of the response tokens, and the values V_old.

        Computed over the very minibatches the first update pass will use: the same
        inputs give bit-identical outputs, so that pass starts from a ratio of exactly 1.
        """
        cfg, dev, response = self.cfg, self.device, seq[:, T:]
        logps, values, ref_logps = (torch.zeros(response.shape) for _ in range(3))
        for idx in self._plan(k, len(seq))[: -(-len(seq) // self.batch_size)]:
            x, p, a, r = (t[idx].to(dev) for t in (seq, pos, attn, response))
            logits, v = self.model(x, p, a, T)
            logps[idx] = token_logps(logits / cfg.temperature, r).cpu()
            values[idx] = v.cpu()
            with self._reference() as ref:
                ref_logits = ref(x, position_ids=p, attention_mask=a)[:, T - 1 : -1]
            ref_logps[idx] = token_logps(ref_logits / cfg.temperature, r).cpu()
        return logps, values, ref_logps

    @contextlib.contextmanager
    def _reference(self):
        """The starting policy: adapters off (LoRA), or the frozen copy (full tuning)."""
        if self.reference is None:
            with adapters_disabled(self.model.policy) as ref:
                yield ref
        else:
            yield self.reference

    # -- the loader contract
    def state_dict(self) -> dict[str, Any]:
        return {"rollouts": self.rollouts, "pos": self.pos, "buffer": self.buffer,
                "stats": self.stats, "n": len(self.prompts)}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["n"] != len(self.prompts):
            raise DataError(f"the checkpoint's run had {state['n']} prompts, this data has "
                            f"{len(self.prompts)}; resume with the same prompts")  # fmt: skip
        self.rollouts, self.pos = int(state["rollouts"]), int(state["pos"])
        self.buffer, self.stats = state["buffer"], dict(state["stats"])


# ------------------------------------------------------------------------------ the trainer
class PPOTrainer(FinetuneTrainer):
    """The fine-tuning trainer whose batches are rollout minibatches and whose loss is
    PPO's; logs the rollout's and the step's statistics with every loss record."""

    unit: ClassVar[str] = "prompts"
    val_loss_is_token_nll: ClassVar[bool] = False
    saves_adapter: ClassVar[bool] = False  # the policy's own, without the value head: below

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.step_stats: dict[str, torch.Tensor] = {}

    def batch_loss(self, model, batch: dict[str, Any], reduction: str) -> torch.Tensor:
        cfg: PPOConfig = self.finetune
        mask = batch["mask"]
        logits, values = model(batch["seq"], batch["pos"], batch["attn"], batch["start"])
        logps = token_logps(logits / cfg.temperature, batch["seq"][:, batch["start"] :])
        pg_loss, m = ppo_policy_loss(logps, batch["logps"], batch["advantages"], mask, cfg.clip)
        vf_loss = ppo_value_loss(values, batch["values"], batch["returns"], mask, cfg.clip_value)
        self.step_stats = {
            **m, "policy_loss": pg_loss.detach(), "value_loss": vf_loss.detach(),
            "entropy": masked_mean(entropy(logits.detach() / cfg.temperature), mask),
            "kl_ref": masked_mean(kl_estimate(logps.detach(), batch["ref_logps"],
                                              cfg.kl_estimator), mask),
        }  # fmt: skip
        return pg_loss + cfg.vf_coef * vf_loss  # one unit: the minibatch

    def loss_units(self, batch: dict[str, Any]) -> torch.Tensor:
        return torch.ones((), device=batch["seq"].device)

    def _log(self, record: dict[str, Any]) -> None:
        if "loss" in record:
            record.update(self.train_loader.stats)
            record.update({k: float(v) for k, v in self.step_stats.items()})
        super()._log(record)

    def plot(self) -> Path:
        """``loss.png``: loss and lr, then reward, KL, entropy, clip fraction, value loss
        and explained variance against step."""
        return plot_metrics(self.run_dir / "metrics.jsonl", self.run_dir / "loss.png", PLOTTED)

    def save_policy(self) -> Path:
        """The tuned policy alone, as a checkpoint ``legollm chat`` / ``generate`` load."""
        policy = unwrap_model(self.raw_model).policy
        lora = getattr(policy, "lora_config", None)
        return save_checkpoint(self.run_dir / POLICY_NAME, {
            "model": policy.state_dict(), "model_config": policy.config.to_dict(),
            "lora": lora.to_dict() if lora is not None else None,
            "tokenizer": self.tokenizer, "sft": self.meta().to_dict(),
        })  # fmt: skip

    def final_metrics(self) -> dict[str, Any]:
        out: dict[str, Any] = {"rollout": dict(self.train_loader.stats)}
        if self.is_main:
            out["policy"] = str(self.save_policy())
        if self.is_main and self.run is not None and self.run.lora is not None:
            policy = unwrap_model(self.raw_model).policy
            out["adapter"] = str(save_adapter(policy, self.run_dir / "adapter"))
        return out


def build_ppo_trainer(cfg: PPOConfig, *, resume: bool = False) -> PPOTrainer:
    """Policy (+ value head), reference, reward model, rollout loader and Trainer."""
    run = setup_finetuning(cfg, prepare_prompts)
    reward = RewardModel.load(cfg.reward_model, run.device)
    check_same_tokenizer(reward, run.tokenizer, run.train[0], run.format)
    run.model = PolicyWithValue(run.model).to(run.device)
    reference = None
    if not lora_layers(run.model.policy):  # full tuning keeps the starting weights
        reference = copy.deepcopy(run.model.policy).requires_grad_(False).eval()
    loader = RolloutLoader(run.model, reference, reward, run.train, run.format, run.tokenizer,
                           cfg, run.train_config.seed, run.device, run.dist.rank,
                           run.dist.world_size)  # fmt: skip
    mean_prompt = sum(len(p.ids) for p in run.train) / len(run.train)
    return finish_trainer(PPOTrainer, run, loader, None, resume, mean_prompt + cfg.max_new_tokens)


def check_same_tokenizer(reward: RewardModel, tokenizer, prompt: Prompt, fmt: PromptFormat) -> None:
    """The reward model reads the policy's token ids directly: same tokenizer, same format."""
    text = tokenizer.decode(prompt.ids)
    mine, theirs = tokenizer.encode(text), reward.tokenizer.encode(text)
    if reward.tokenizer.vocab_size != tokenizer.vocab_size or mine != theirs:
        raise ConfigError(
            f"the reward model's tokenizer (vocab {reward.tokenizer.vocab_size}) differs from "
            f"the policy's (vocab {tokenizer.vocab_size}): train the reward model from the "
            "policy's base so both read the same token ids"
        )
    if reward.format != fmt.name:
        raise ConfigError(f"the reward model was trained on format {reward.format!r}, this "
                          f"run prompts in {fmt.name!r}: use the same format")  # fmt: skip


def run_ppo(cfg: PPOConfig, *, resume: bool = False) -> dict[str, Any]:
    """Tune the policy with PPO as ``cfg`` says; the summary, the last rollout's
    statistics and the path of ``policy.pt``."""
    return run_finetuning(cfg, build_ppo_trainer, resume=resume)


__all__ = [
    "POLICY_NAME",
    "PPOConfig",
    "PPOTrainer",
    "PolicyWithValue",
    "RolloutLoader",
    "build_ppo_trainer",
    "check_same_tokenizer",
    "prepare_prompts",
    "run_ppo",
]
