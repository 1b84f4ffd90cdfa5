"""From a TrainConfig to a ready Trainer: data, model, loaders, distributed, resume.

Used by ``legollm train``, ``scripts/train.py`` and ``legollm demo``. Every check that
can fail (missing data, vocab or block size mismatch, a checkpoint from another
config) runs here, before the first step.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from legollm.core.exceptions import ConfigError, DataError, TrainingError
from legollm.core.runtime import resolve_device
from legollm.core.tokenization.specs import copy_spec_files
from legollm.data.loader import TokenDataLoader
from legollm.data.meta import read_meta, verify_tokenizer
from legollm.models import DecoderLM, ModelConfig
from legollm.training.config import TrainConfig
from legollm.training.distributed import init_distributed
from legollm.training.presets import model_preset
from legollm.training.trainer import Trainer


def model_config_dict(cfg: TrainConfig, meta: dict[str, Any]) -> dict[str, Any]:
    """The ModelConfig fields for this run: the preset or dict, sized from the data."""
    d = model_preset(cfg.model) if isinstance(cfg.model, str) else dict(cfg.model)
    d.setdefault("vocab_size", int(meta["vocab_size"]))
    d.setdefault("context_length", cfg.block_size)
    return d


def build_trainer(cfg: TrainConfig, *, resume: bool = False) -> Trainer:
    """Build the model and loaders described by ``cfg`` (and resume from its run_dir)."""
    info = init_distributed()
    if not cfg.data_dir:
        raise DataError(
            "data_dir is not set; prepare a dataset (legollm data prepare / data-prepare "
            "--config ...) and pass data_dir=FOLDER"
        )
    data = Path(cfg.data_dir)
    if not data.is_dir():
        raise DataError(
            f"data dir {str(data)!r} not found; prepare one first "
            "(legollm data prepare / data-prepare --config ...) and set data_dir"
        )
    meta = read_meta(data)
    if not (data / "train.bin").is_file():
        raise DataError(f"{data} has no train.bin; re-run data-prepare")
    verify_tokenizer(meta, data)  # the files copied into the run must be the ones that wrote it
    if cfg.eval_iters > 0:
        check_val_split(data, meta, cfg.block_size)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank and every run
    model = DecoderLM(ModelConfig.from_dict(model_config_dict(cfg, meta)))
    device = resolve_device(cfg.device, info.local_rank)
    common = dict(
        batch_size=cfg.batch_size,
        block_size=cfg.block_size,
        seed=cfg.seed,
        rank=info.rank,
        world_size=info.world_size,
        device=device,
    )
    train = TokenDataLoader(
        data, split="train", mode=cfg.loader_mode, stride=cfg.loader_stride, **common
    )
    cfg = with_epoch_length(cfg, len(train))
    val = None
    if cfg.eval_iters > 0:
        val = TokenDataLoader(data, split="val", mode="sequential", **common)
    trainer = Trainer(model, cfg, train, val, run_dir=cfg.run_dir, tokenizer=meta["tokenizer"])
    if info.rank == 0:  # checkpoints name these copies, so the run outlives the data dir
        trainer.tokenizer = copy_spec_files(meta["tokenizer"], cfg.run_dir)
    if resume:
        resume_latest(trainer, cfg.run_dir)
    return trainer


def check_val_split(data: Path, meta: dict[str, Any], block_size: int) -> None:
    """Validation needs one window of ``block_size + 1`` val tokens: without it the run
    would skip every eval and never write best.pt, so say what to change instead."""
    n = int(meta["num_tokens"].get("val", 0)) if (data / "val.bin").is_file() else 0
    if n < block_size + 1:
        lower = f"lower block_size to at most {n - 1:,}, " if n >= 2 else ""
        raise DataError(
            f"{data / 'val.bin'} holds {n:,} tokens, fewer than block_size + 1 = "
            f"{block_size + 1:,}, so validation cannot run: {lower}re-run data-prepare with "
            "a larger val_fraction, or set eval_iters=0 to train without validation"
        )


def with_epoch_length(cfg: TrainConfig, batches_per_epoch: int) -> TrainConfig:
    """``epochs: N`` becomes max_iters: N passes of ``batches_per_epoch`` micro-batches."""
    if cfg.epochs is None:
        return cfg
    steps = cfg.epochs * batches_per_epoch // cfg.grad_accum_steps
    if steps < 1:
        raise ConfigError(
            f"epochs={cfg.epochs} of {batches_per_epoch} batch(es) is less than one step of "
            f"grad_accum_steps={cfg.grad_accum_steps}; train more epochs or accumulate less"
        )
    return dataclasses.replace(cfg, max_iters=steps)


def resume_latest(trainer, run_dir) -> None:
    """``--resume``: continue from ``run_dir/latest.pt``, which must exist."""
    ckpt = Path(run_dir) / "latest.pt"
    if not ckpt.is_file():
        raise TrainingError(f"--resume: no checkpoint at {ckpt}; train without --resume first")
    trainer.resume(ckpt)


__all__ = [
    "build_trainer",
    "check_val_split",
    "model_config_dict",
    "resume_latest",
    "with_epoch_length",
]
