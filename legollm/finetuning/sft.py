"""Supervised fine-tuning on instruction data, on the project's Trainer.

The flow of ``legollm sft --config FILE.yaml``:

1. Load the starting model: a LegoLLM checkpoint (``.pt`` or a run dir) or a
   Hugging Face model directory, and its tokenizer (the checkpoint's spec, the
   ``tokenizer.json`` / ``tokenizer.model`` / ``vocab.json`` + ``merges.txt`` beside the
   HF weights, or ``tokenizer:`` in the config). Its files are copied into
   ``run_dir/tokenizer/``, so ``legollm generate RUN_DIR`` works without the base.
2. Read the records, split them train/val/test with a fixed seed, render them with
   the prompt format, truncate to the context (``max_length``).
3. Optionally inject LoRA adapters (``lora:`` or ``--lora r=16,alpha=32,targets=attn``):
   the base is frozen, so the optimizer only holds the adapters.
4. Train with :class:`~legollm.training.trainer.Trainer`: dynamically padded batches,
   loss summed over response tokens and divided by the real token count of the whole
   accumulated step. Checkpoints (``latest.pt``/``best.pt``) resume exactly, LoRA included.
5. Write ``adapter/`` (LoRA only) and ``test_responses.json``: the model's greedy answer
   to every test record, next to the checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from legollm.core.config import config_from_dict
from legollm.core.exceptions import ConfigError, DataError, ModelLoadError
from legollm.training.trainer import Trainer

RESPONSES_NAME = "test_responses.json"


@dataclass
class SFTConfig:
    """One fine-tuning run. ``train`` holds TrainConfig fields (lr, max_iters, run_dir, ...)."""

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
        from legollm.finetuning.dataset import ON_BAD
        from legollm.finetuning.formats import TRAIN_ON

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

    def train_config(self, block_size: int | None = None):
        from legollm.training.config import TrainConfig

        d = {"run_dir": "runs/sft", **self.train}
        if "data_dir" in d:
            raise ConfigError("train.data_dir is not used by sft; set data: FILE.json")
        if block_size is not None:
            d["block_size"] = block_size
        return TrainConfig.from_dict(d)

    def lora_config(self):
        from legollm.peft import LoRAConfig

        if not isinstance(self.lora, dict):
            raise ConfigError("lora must be a mapping: {r: 16, alpha: 32, targets: [attn]}")
        return LoRAConfig.from_dict(self.lora)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SFTConfig:
        return config_from_dict(cls, d, f"{cls.__name__.removesuffix('Config').lower()} config")

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str], overrides: list[str] | None = None):
        """YAML, then ``key=value`` overrides; dotted keys reach in (``train.lr=1e-4``)."""
        from legollm.core.utils import read_yaml_mapping
        from legollm.training.config import apply_overrides

        d = read_yaml_mapping(path, "sft config fields")
        return cls.from_dict(apply_overrides(d, overrides or []))


# ---------------------------------------------------------------------------- loading
def load_base(init: str, tokenizer_spec: dict[str, Any] | None = None):
    """``(model, tokenizer, spec)`` from a LegoLLM checkpoint or an HF model directory.

    ``spec`` (stored in the SFT checkpoints) has absolute paths: the config's
    ``tokenizer`` resolved against the working directory, the checkpoint's, or the one
    :func:`~legollm.data.tokenizer_spec.spec_for_path` finds in the HF directory.
    """
    from legollm.data.tokenizer_spec import load_tokenizer, resolve_spec_paths, spec_for_path

    path = Path(init)
    if not init or not path.exists():
        raise ConfigError(
            f"init {init!r} not found: give a LegoLLM checkpoint (.pt or run dir) or a "
            "Hugging Face model dir (e.g. huggingface-cli download openai-community/gpt2 "
            "--local-dir checkpoints/gpt2)"
        )
    spec = resolve_spec_paths(tokenizer_spec, Path.cwd()) if tokenizer_spec else None
    from legollm.generation.loading import find_checkpoint

    ckpt_file = path if path.is_file() else find_checkpoint(path)
    if ckpt_file is not None:
        from legollm.training.checkpoint import load_model_from_checkpoint

        model, ckpt = load_model_from_checkpoint(ckpt_file)
        spec = spec or ckpt.get("tokenizer")
    elif (path / "config.json").is_file():
        from legollm.models import load_pretrained

        model = load_pretrained(path)
        spec = spec or spec_for_path(path)
    else:
        raise ModelLoadError(f"{path} holds neither best.pt/latest.pt nor an HF config.json")
    if spec is None:
        raise ConfigError(
            f"cannot tell the tokenizer of {init}; set tokenizer: {{type: gpt2, encoder_json: "
            "..., vocab_bpe: ...}} (or another spec of legollm.data.tokenizer_spec)"
        )
    return model, load_tokenizer(spec), spec


# ---------------------------------------------------------------------------- the run
def prepare_data(cfg: SFTConfig, fmt, tokenizer, max_length: int):
    """``(train, val, test_records)``: tokenized train/val examples and the raw test records."""
    from legollm.finetuning.dataset import load_records, split_records, tokenize_records

    records = load_records(cfg.data, cfg.fields or None, cfg.on_bad_record)
    train_r, val_r, test_r = split_records(
        records, cfg.val_fraction, cfg.test_fraction, cfg.split_seed
    )
    train, _ = tokenize_records(train_r, fmt, tokenizer, max_length, cfg.train_on)
    val = tokenize_records(val_r, fmt, tokenizer, max_length, cfg.train_on)[0] if val_r else []
    return train, val, test_r


def setup_finetuning(cfg: SFTConfig, prepare) -> SimpleNamespace:
    """What every fine-tuning run (SFT, DPO) sets up before its loaders.

    Distributed info, the base model and tokenizer, the prompt format, the data
    (``prepare(cfg, fmt, tokenizer, max_length) -> (train, val, test_records)``, each
    example's input ids at its even places), LoRA, the TrainConfig and the device.
    """
    from legollm.finetuning.formats import get_format
    from legollm.training.distributed import init_distributed
    from legollm.training.trainer import resolve_device

    info = init_distributed()
    torch.manual_seed(cfg.train_config().seed)  # LoRA's A init and dropout: the same every run
    model, tokenizer, spec = load_base(cfg.init, cfg.tokenizer)
    ctx = model.config.context_length
    max_length = cfg.max_length or ctx
    if max_length > ctx:
        raise ConfigError(f"max_length {max_length} exceeds the model's context_length {ctx}")
    fmt = get_format(cfg.format, system=cfg.system)
    train, val, test = prepare(cfg, fmt, tokenizer, max_length)
    top = max(max(ex[j]) for ex in train + val for j in range(0, len(ex), 2))
    if top >= model.config.vocab_size:
        raise ConfigError(
            f"the tokenizer emits id {top} but the model's vocab_size is "
            f"{model.config.vocab_size}: this tokenizer does not belong to this model"
        )
    lora = None
    if cfg.lora is not None:
        from legollm.peft import apply_lora

        lora = cfg.lora_config()
        apply_lora(model, lora)
    tcfg = cfg.train_config(block_size=max_length)
    device = resolve_device(tcfg.device, info.local_rank)
    pad_id = getattr(tokenizer, "eot_token_id", None) or 0
    loader_args = dict(pad_id=pad_id, max_length=max_length, rank=info.rank,
                       world_size=info.world_size, device=device,
                       pad_to_multiple_of=cfg.pad_to_multiple_of)  # fmt: skip
    return SimpleNamespace(info=info, model=model, tokenizer=tokenizer, spec=spec, fmt=fmt,
                           train=train, val=val, test=test, lora=lora, tcfg=tcfg, device=device,
                           max_length=max_length, loader_args=loader_args)  # fmt: skip


def finish_trainer(trainer_cls, cfg: SFTConfig, run: SimpleNamespace, train_loader, val_loader,
                   resume: bool, tokens_per_example: float, **counts: int):  # fmt: skip
    """The fine-tuning trainer over the run's loaders, its tokenizer files copied into the
    run dir; resumed from ``latest.pt`` with ``resume``. ``tokens_per_example`` (the
    mean of real input tokens) turns steps into the tokens/s of the logs."""
    from legollm.training.run import resume_latest

    tcfg, spec = run.tcfg, run.spec
    if run.info.rank == 0:  # the rank that writes checkpoints; they name these copies
        from legollm.data.tokenizer_spec import copy_spec_files

        spec = copy_spec_files(spec, tcfg.run_dir)
    sft = {"config": cfg, "format": run.fmt, "tokenizer": run.tokenizer, "test": run.test,
           "lora": run.lora, "n_val": len(run.val), **counts}  # fmt: skip
    trainer = trainer_cls(run.model, tcfg, train_loader, val_loader, run_dir=tcfg.run_dir,
                          tokenizer=spec, sft=sft)  # fmt: skip
    per_step = tcfg.batch_size * tcfg.grad_accum_steps * run.info.world_size
    trainer.tokens_per_step = round(tokens_per_example * per_step)
    if resume:
        resume_latest(trainer, tcfg.run_dir)
    return trainer


def build_sft_trainer(cfg: SFTConfig, *, resume: bool = False):
    """Everything before the first step: model, tokenizer, data, LoRA, Trainer."""
    from legollm.finetuning.dataset import InstructionLoader, pack_examples

    run = setup_finetuning(cfg, prepare_data)
    train, n_train = run.train, len(run.train)
    if cfg.pack:
        train = pack_examples(train, run.max_length)
    bs = run.tcfg.batch_size
    train_loader = InstructionLoader(train, bs, shuffle=True, seed=run.tcfg.seed,
                                     sort_by_length=cfg.sort_by_length, **run.loader_args)  # fmt: skip
    val_loader = (
        InstructionLoader(run.val, bs, shuffle=False, **run.loader_args) if run.val else None
    )
    mean_len = sum(len(ex[0]) for ex in train) / len(train)  # real tokens, not block_size
    return finish_trainer(SFTTrainer, cfg, run, train_loader, val_loader, resume, mean_len,
                          n_train=n_train, n_sequences=len(train))  # fmt: skip


class SFTTrainer(Trainer):
    """The Trainer, plus what fine-tuning knows: the format (stored in every checkpoint,
    so ``legollm chat`` prompts the model the way it was trained), the tokenizer object
    and the test records."""

    def __init__(self, *args, sft: dict[str, Any], **kwargs):
        super().__init__(*args, **kwargs)
        self.sft = sft

    def state_dict(self) -> dict[str, Any]:
        cfg: SFTConfig = self.sft["config"]
        state = super().state_dict()
        state["sft"] = {"format": cfg.format, "system": cfg.system, "train_on": cfg.train_on,
                        "init": str(cfg.init), "data": str(cfg.data)}  # fmt: skip
        return state


@torch.no_grad()
def generate_responses(
    model, fmt, tokenizer, records, max_new_tokens: int = 256, batch_size: int = 8, device=None
) -> list[dict[str, str]]:
    """Greedy answers to ``records`` (left-padded batches, stopping at the format's stop ids)."""
    from legollm.generation import generate

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


def finish_run(trainer) -> dict[str, Any]:
    """After ``fit``: the adapter files and the test split's responses, beside the checkpoint."""
    from legollm.core.utils import atomic_write

    sft, run_dir = trainer.sft, Path(trainer.run_dir)
    paths: dict[str, Any] = {}
    if not trainer.is_main:
        return paths
    if sft["lora"] is not None:
        from legollm.peft import save_adapter

        paths["adapter"] = str(save_adapter(trainer.raw_model, run_dir / "adapter"))
    test, limit = sft["test"], sft["config"].max_test_responses
    if limit is not None:
        test = test[:limit]
    if test:
        responses = generate_responses(trainer.raw_model, sft["format"], sft["tokenizer"], test,
                                       sft["config"].max_new_tokens, device=trainer.device)  # fmt: skip
        with atomic_write(run_dir / RESPONSES_NAME) as f:
            json.dump(responses, f, indent=2, ensure_ascii=False)
        paths["responses"] = str(run_dir / RESPONSES_NAME)
    return paths


def run_sft(cfg: SFTConfig, *, resume: bool = False) -> dict[str, Any]:
    """Fine-tune as ``cfg`` says; returns the Trainer's summary plus the written paths."""
    return run_finetuning(cfg, build_sft_trainer, resume=resume)


def run_finetuning(cfg: SFTConfig, build, *, resume: bool = False) -> dict[str, Any]:
    """Build the trainer with ``build(cfg, resume=...)``, train, write the run's files.

    A trainer with ``preference_metrics`` (DPO) adds them, measured on the
    validation pairs after training, under ``"preference"``.
    """
    from legollm.peft import trainable_parameters
    from legollm.training.distributed import cleanup_distributed

    if not cfg.data:
        raise DataError("set data: the instruction file (.json list or .jsonl)")
    try:
        trainer = build(cfg, resume=resume)
        n_train, n_total = trainable_parameters(trainer.raw_model)
        unit = "pairs" if hasattr(trainer, "preference_metrics") else "examples"
        trainer._print(
            f"{type(trainer).__name__.removesuffix('Trainer').lower()}: "
            f"{trainer.sft['n_train']} train / {trainer.sft['n_val']} val / "
            f"{len(trainer.sft['test'])} test {unit}"
            + (f" (train packed into {trainer.sft['n_sequences']} sequences)" if cfg.pack else "")
            + f"; training {n_train:,} of {n_total:,} "
            "parameters" + (" (LoRA)" if trainer.sft["lora"] is not None else "")
        )
        summary = trainer.fit()
        if hasattr(trainer, "preference_metrics") and trainer.val_loader is not None:
            summary["preference"] = trainer.preference_metrics()
        summary.update(finish_run(trainer))
    finally:
        cleanup_distributed()
    summary.update(trainable=n_train, total=n_total, is_main=trainer.is_main)
    return summary


__all__ = [
    "RESPONSES_NAME",
    "SFTConfig",
    "SFTTrainer",
    "build_sft_trainer",
    "finish_run",
    "generate_responses",
    "load_base",
    "prepare_data",
    "run_sft",
]
