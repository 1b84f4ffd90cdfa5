"""What every fine-tuning objective shares, so SFT and DPO read as one small pattern.

An objective is three things: a way to turn records into examples (``prepare``), a
loss over a batch (its trainer's ``batch_loss`` / ``loss_units``), and the metrics
it reports at the end (``final_metrics``). Everything else is here, once:

1. :func:`setup_finetuning`: distributed info, the base model and its tokenizer (the
   one loader, :func:`legollm.models.loading.load_model`), the prompt format, the
   data, the vocabulary check, LoRA, the TrainConfig and the device, as a
   :class:`FinetuneRun`.
2. :func:`finish_trainer`: the objective's trainer over its loaders, the tokenizer
   files copied into the run dir, resumed on request.
3. :func:`run_finetuning`: train, then write the adapter (LoRA) and the greedy
   answers to the test split, beside the checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from legollm.core.config import config_from_dict
from legollm.core.exceptions import ConfigError, DataError
from legollm.core.runtime import resolve_device
from legollm.core.tokenization.specs import copy_spec_files
from legollm.core.utils import atomic_write, read_yaml_mapping
from legollm.finetuning.dataset import ON_BAD
from legollm.finetuning.formats import TRAIN_ON, PromptFormat, get_format
from legollm.generation import generate
from legollm.models.loading import load_model
from legollm.peft import LoRAConfig, apply_lora, save_adapter, trainable_parameters
from legollm.training.config import TrainConfig, apply_overrides
from legollm.training.distributed import DistInfo, cleanup_distributed, init_distributed
from legollm.training.run import resume_latest
from legollm.training.trainer import Trainer

RESPONSES_NAME = "test_responses.json"


@dataclass
class FinetuneConfig:
    """One fine-tuning run. ``train`` holds TrainConfig fields (lr, max_iters, run_dir, ...)."""

    kind: ClassVar[str] = "finetune"  # the objective's name in messages and run dirs

    init: str = ""  # LegoLLM checkpoint (.pt / run dir) or HF model directory
    data: str = ""  # a JSON list or JSONL file of records
    fields: dict[str, str] = field(default_factory=dict)  # canonical name -> file's name
    on_bad_record: str = "error"  # error | skip
    format: str = "alpaca"  # alpaca | chatml | llama3
    system: str | None = None  # system prompt for chat formats
    train_on: str = "response"  # response (prompt masked) | all
    val_fraction: float = 0.05
    test_fraction: float = 0.1
    split_seed: int = 123
    max_length: int | None = None  # positions per example; None = the model's context_length
    sort_by_length: bool = True
    pack: bool = False  # several examples per sequence, each attending only to itself
    pad_to_multiple_of: int = 1
    tokenizer: dict[str, Any] | None = None  # a tokenizer spec; None = from init
    lora: dict[str, Any] | None = None  # LoRAConfig fields; None = full fine-tuning
    max_new_tokens: int = 256  # for the test responses
    max_test_responses: int | None = None  # None = the whole test split; 0 = none
    train: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.on_bad_record not in ON_BAD:
            raise ConfigError(f"on_bad_record must be one of {ON_BAD}")
        if self.train_on not in TRAIN_ON:
            raise ConfigError(f"train_on must be one of {TRAIN_ON}, got {self.train_on!r}")
        if self.max_length is not None and self.max_length < 2:
            raise ConfigError(f"max_length must be >= 2, got {self.max_length}")
        if not isinstance(self.train, dict):
            raise ConfigError("train must be a mapping of TrainConfig fields")
        self.train_config()  # validate the train fields now, not after loading a model
        if self.lora is not None:
            self.lora_config()

    def train_config(self, block_size: int | None = None) -> TrainConfig:
        d = {"run_dir": f"runs/{self.kind}", **self.train}
        if "data_dir" in d:
            raise ConfigError(f"train.data_dir is not used by {self.kind}; set data: FILE.json")
        if block_size is not None:
            d["block_size"] = block_size
        return TrainConfig.from_dict(d)

    def lora_config(self) -> LoRAConfig:
        if not isinstance(self.lora, dict):
            raise ConfigError("lora must be a mapping: {r: 16, alpha: 32, targets: [attn]}")
        return LoRAConfig.from_dict(self.lora)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]):
        return config_from_dict(cls, d, f"{cls.kind} config")

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], overrides: list[str] | None = None):
        """YAML, then ``key=value`` overrides; dotted keys reach in (``train.lr=1e-4``)."""
        d = read_yaml_mapping(path, f"{cls.kind} config fields")
        return cls.from_dict(apply_overrides(d, overrides or []))


@dataclass
class FinetuneMeta:
    """What a fine-tuning checkpoint records beside the weights (under ``"sft"``), so
    ``legollm chat`` prompts the model the way it was trained."""

    format: str
    system: str | None
    train_on: str
    init: str
    data: str
    objective: str = "sft"
    objective_args: dict[str, Any] = field(default_factory=dict)  # e.g. DPO's beta

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the checkpoint; the objective's arguments under its name."""
        d = {k: v for k, v in dataclasses.asdict(self).items() if k != "objective_args"}
        if self.objective_args:
            d[self.objective] = dict(self.objective_args)
        return d


@dataclass
class FinetuneRun:
    """Everything set up before the loaders: the run's state, typed."""

    config: FinetuneConfig
    dist: DistInfo
    model: torch.nn.Module
    tokenizer: Any
    tokenizer_spec: dict[str, Any]
    format: PromptFormat
    train: list  # the objective's examples
    val: list
    test: list[dict[str, str]]  # raw records, answered after training
    lora: LoRAConfig | None
    train_config: TrainConfig
    device: torch.device
    max_length: int
    pad_id: int
    n_train: int = 0  # examples (or pairs) before packing
    n_sequences: int = 0  # rows the train loader holds (packing merges examples)

    def loader_args(self) -> dict[str, Any]:
        """The keyword arguments every loader of this run shares."""
        return dict(pad_id=self.pad_id, max_length=self.max_length, rank=self.dist.rank,
                    world_size=self.dist.world_size, device=self.device,
                    pad_to_multiple_of=self.config.pad_to_multiple_of)  # fmt: skip


Prepare = Callable[[Any, PromptFormat, Any, int], tuple[list, list, list]]


def setup_finetuning(cfg: FinetuneConfig, prepare: Prepare) -> FinetuneRun:
    """Load the base, render the data with ``prepare(cfg, fmt, tokenizer, max_length) ->
    (train, val, test_records)``, inject LoRA: all that happens before the loaders."""
    info = init_distributed()
    torch.manual_seed(cfg.train_config().seed)  # LoRA's A init and dropout: the same every run
    if not cfg.init:
        raise ConfigError("set init: a LegoLLM checkpoint (.pt or run dir) or an HF model dir")
    base = load_model(cfg.init, cfg.tokenizer)
    model, tokenizer = base.model.train(), base.tokenizer
    ctx = model.config.context_length
    max_length = cfg.max_length or ctx
    if max_length > ctx:
        raise ConfigError(f"max_length {max_length} exceeds the model's context_length {ctx}")
    fmt = get_format(cfg.format, system=cfg.system)
    train, val, test = prepare(cfg, fmt, tokenizer, max_length)
    top = max(max(ids) for ex in train + val for ids in ex.inputs())
    if top >= model.config.vocab_size:
        raise ConfigError(
            f"the tokenizer emits id {top} but the model's vocab_size is "
            f"{model.config.vocab_size}: this tokenizer does not belong to this model"
        )
    lora = cfg.lora_config() if cfg.lora is not None else None
    if lora is not None:
        apply_lora(model, lora)
    tcfg = cfg.train_config(block_size=max_length)
    return FinetuneRun(
        config=cfg, dist=info, model=model, tokenizer=tokenizer, tokenizer_spec=base.tokenizer_spec,
        format=fmt, train=train, val=val, test=test, lora=lora, train_config=tcfg,
        device=resolve_device(tcfg.device, info.local_rank), max_length=max_length,
        pad_id=getattr(tokenizer, "eot_token_id", None) or 0,
        n_train=len(train), n_sequences=len(train),
    )  # fmt: skip


class FinetuneTrainer(Trainer):
    """The Trainer, plus what fine-tuning knows: its config (recorded in every checkpoint
    as :class:`FinetuneMeta`) and, when built by :func:`finish_trainer`, the run (format,
    tokenizer, test records, LoRA) that :func:`write_run_files` needs."""

    unit: ClassVar[str] = "examples"  # what the loss is averaged over, for messages
    # whether the LoRA adapters alone make the result (False: the run adds weights of its
    # own, e.g. a reward model's scalar head, so only the checkpoint holds it all)
    saves_adapter: ClassVar[bool] = True

    def __init__(self, *args, finetune: FinetuneConfig, run: FinetuneRun | None = None,
                 **kwargs):  # fmt: skip
        super().__init__(*args, **kwargs)
        self.finetune, self.run = finetune, run

    def meta(self) -> FinetuneMeta:
        cfg = self.finetune
        return FinetuneMeta(format=cfg.format, system=cfg.system, train_on=cfg.train_on,
                            init=str(cfg.init), data=str(cfg.data), objective=cfg.kind)  # fmt: skip

    def run_state(self) -> dict[str, Any]:
        state = super().run_state()
        state["sft"] = self.meta().to_dict()
        return state

    def final_metrics(self) -> dict[str, Any]:
        """Metrics this objective reports after training (merged into the summary)."""
        return {}


def finish_trainer(trainer_cls: type[FinetuneTrainer], run: FinetuneRun, train_loader,
                   val_loader, resume: bool, tokens_per_example: float) -> FinetuneTrainer:  # fmt: skip
    """The objective's trainer over the run's loaders, its tokenizer files copied into the
    run dir; resumed from ``latest.pt`` with ``resume``. ``tokens_per_example`` (the mean
    of real input tokens) turns steps into the tokens/s of the logs."""
    tcfg, spec = run.train_config, run.tokenizer_spec
    if run.dist.rank == 0:  # the rank that writes checkpoints; they name these copies
        spec = copy_spec_files(spec, tcfg.run_dir)
    trainer = trainer_cls(run.model, tcfg, train_loader, val_loader, run_dir=tcfg.run_dir,
                          tokenizer=spec, finetune=run.config, run=run)  # fmt: skip
    per_step = tcfg.batch_size * tcfg.grad_accum_steps * run.dist.world_size
    trainer.tokens_per_step = round(tokens_per_example * per_step)
    if resume:
        resume_latest(trainer, tcfg.run_dir)
    return trainer


@torch.no_grad()
def generate_responses(
    model, fmt: PromptFormat, tokenizer, records, max_new_tokens: int = 256,
    batch_size: int = 8, device=None,
) -> list[dict[str, str]]:  # fmt: skip
    """Greedy answers to ``records`` (left-padded batches, stopping at the format's stop ids)."""
    device = device or next(model.parameters()).device
    stops = fmt.stop_ids(tokenizer)
    ctx = model.config.context_length
    out = []
    for s in range(0, len(records), batch_size):
        batch = records[s : s + batch_size]
        prompts = [fmt.prompt_ids(r, tokenizer)[-(ctx - 1) :] for r in batch]
        T = max(map(len, prompts))
        new = max(1, min(max_new_tokens, ctx - T))  # a learned context cannot grow
        ids = torch.full((len(batch), T), stops[0], dtype=torch.long)
        mask = torch.zeros(len(batch), T, dtype=torch.long)
        for i, p in enumerate(prompts):  # left padding: every prompt ends at column T
            ids[i, T - len(p) :] = torch.tensor(p)
            mask[i, T - len(p) :] = 1
        seq = generate(model, ids.to(device), new, eos_token_id=stops,
                       attention_mask=mask.to(device))  # fmt: skip
        for rec, row in zip(batch, seq[:, T:].tolist(), strict=True):
            cut = next((i for i, t in enumerate(row) if t in stops), len(row))
            out.append({**rec, "response": tokenizer.decode(row[:cut]).strip()})
    return out


def write_run_files(trainer: FinetuneTrainer) -> dict[str, str]:
    """After ``fit``: the adapter files and the test split's responses, beside the checkpoint."""
    run, run_dir = trainer.run, Path(trainer.run_dir)
    paths: dict[str, str] = {}
    model = trainer.full_model()  # gathered from every rank's shards under fsdp
    if not trainer.is_main or run is None:
        return paths
    if run.lora is not None and trainer.saves_adapter:
        paths["adapter"] = str(save_adapter(model, run_dir / "adapter"))
    test, limit = run.test, run.config.max_test_responses
    if limit is not None:
        test = test[:limit]
    if test:
        responses = generate_responses(model, run.format, run.tokenizer, test,
                                       run.config.max_new_tokens, device=trainer.device)  # fmt: skip
        with atomic_write(run_dir / RESPONSES_NAME) as f:
            json.dump(responses, f, indent=2, ensure_ascii=False)
        paths["responses"] = str(run_dir / RESPONSES_NAME)
    return paths


def run_finetuning(cfg: FinetuneConfig, build, *, resume: bool = False) -> dict[str, Any]:
    """Build the trainer with ``build(cfg, resume=...)``, train, write the run's files.

    Returns the Trainer's summary, the objective's ``final_metrics``, the written paths
    and the trainable / total parameter counts.
    """
    if not cfg.data:
        raise DataError("set data: the instruction file (.json list or .jsonl)")
    try:
        trainer: FinetuneTrainer = build(cfg, resume=resume)
        run = trainer.run
        n_train, n_total = trainable_parameters(trainer.raw_model)
        packed = f" (train packed into {run.n_sequences} sequences)" if cfg.pack else ""
        trainer._print(
            f"{cfg.kind}: {run.n_train} train / {len(run.val)} val / {len(run.test)} test "
            f"{trainer.unit}{packed}; training {n_train:,} of {n_total:,} parameters"
            + (" (LoRA)" if run.lora is not None else "")
        )
        summary = trainer.fit()
        summary.update(trainer.final_metrics())
        summary.update(write_run_files(trainer))
    finally:
        cleanup_distributed()
    summary.update(trainable=n_train, total=n_total, is_main=trainer.is_main)
    return summary


__all__ = [
    "RESPONSES_NAME",
    "FinetuneConfig",
    "FinetuneMeta",
    "FinetuneRun",
    "FinetuneTrainer",
    "finish_trainer",
    "generate_responses",
    "run_finetuning",
    "setup_finetuning",
    "write_run_files",
]
