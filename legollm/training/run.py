"""From a TrainConfig to a ready Trainer: data, model, loaders, distributed, resume.

Used by ``legollm train``, ``scripts/train.py`` and ``legollm demo``. Every check that
can fail (missing data, vocab or block size mismatch, a checkpoint from another
config) runs here, before the first step.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from legollm.core.exceptions import ConfigError, DataError, TrainingError
from legollm.core.runtime import resolve_device
from legollm.core.tokenization.specs import copy_spec_files
from legollm.core.utils import check_writable_dir
from legollm.data.loader import TokenDataLoader
from legollm.data.meta import read_meta, verify_tokenizer
from legollm.models import DecoderLM, ModelConfig
from legollm.peft.io import CONFIG_NAME as ADAPTER_CONFIG
from legollm.peft.io import WEIGHTS_NAME as ADAPTER_WEIGHTS
from legollm.training.config import TrainConfig
from legollm.training.distributed import init_distributed
from legollm.training.presets import model_preset
from legollm.training.trainer import Trainer

RUN_FILES = ("latest.pt", "best.pt", "latest.dcp", "best.dcp", "metrics.jsonl")
"""The files that make a directory a run: a fresh run there would replace them."""
RUN_OUTPUTS = (*RUN_FILES, "loss.png", "test_responses.json",
               f"adapter/{ADAPTER_CONFIG}", f"adapter/{ADAPTER_WEIGHTS}")  # fmt: skip
"""What ``--overwrite`` removes: only files a run writes, never anything else there."""


def claim_run_dir(run_dir: str | Path, *, resume: bool = False, overwrite: bool = False) -> Path:
    """Check ``run_dir`` before a run writes into it, so no run silently replaces another.

    A fresh run refuses a directory that already holds one, unless ``overwrite`` (then the
    old run's files go: :data:`RUN_OUTPUTS`, nothing else); ``resume`` continues it. Every
    command that trains (train, sft, dpo) calls this before it loads anything.
    """
    path = Path(run_dir)
    if resume and overwrite:
        raise ConfigError(
            f"--resume continues the run in {path}, --overwrite replaces it: give one"
        )
    check_writable_dir(path, "run_dir")
    found = [name for name in RUN_FILES if (path / name).exists()]
    if resume or not found:
        return path
    if not overwrite:
        raise TrainingError(
            f"{path} already holds a run ({', '.join(found)}); continue it with --resume, "
            "replace it with --overwrite, or set another run_dir"
        )
    for name in RUN_OUTPUTS:
        if (path / name).is_dir():  # a sharded checkpoint (strategy: fsdp)
            shutil.rmtree(path / name)
        else:
            (path / name).unlink(missing_ok=True)
    if (path / "adapter").is_dir() and not any((path / "adapter").iterdir()):
        (path / "adapter").rmdir()
    return path


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
    mcfg = ModelConfig.from_dict(model_config_dict(cfg, meta))
    device = resolve_device(cfg.device, info.local_rank)
    check_step_memory(cfg, mcfg, device)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank and every run
    model = DecoderLM(mcfg)
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
    """``--resume``: continue from ``run_dir/latest.pt`` (``latest.dcp`` under fsdp)."""
    ckpt = Path(run_dir) / trainer.checkpoint_path("latest").name
    if not ckpt.exists():
        other = ckpt.with_suffix(".pt" if ckpt.suffix == ".dcp" else ".dcp")
        hint = f" (there is {other.name}: set strategy to the run's)" if other.exists() else ""
        raise TrainingError(
            f"--resume: no checkpoint at {ckpt}{hint}; train without --resume first"
        )
    trainer.resume(ckpt)
    if trainer.step >= trainer.config.max_iters:
        raise TrainingError(
            f"--resume: {ckpt} is at step {trainer.step} and max_iters is "
            f"{trainer.config.max_iters}, so there is nothing to train; raise max_iters "
            f"(e.g. max_iters={max(2 * trainer.step, 1)}) to continue"
        )


def check_step_memory(cfg: TrainConfig, model_config, device: torch.device) -> None:
    """Refuse a step that cannot fit before allocating it (``block_size=100000`` would
    otherwise ask the allocator for terabytes in the first forward and die there).

    The estimate is a floor, so it never refuses a run that fits: the logits of one micro
    batch, plus, for the written-out attention, every layer's (T, T) scores kept for the
    backward pass (the sdpa kernels do not store them).
    """
    B, T, elt = cfg.batch_size, cfg.block_size, 2 if cfg.precision in ("bf16", "fp16") else 4
    parts = {"logits": B * T * model_config.vocab_size * elt}
    if model_config.attn_impl == "manual":
        parts["attention scores"] = model_config.n_layer * B * model_config.n_head * T * T * elt
    need, have = sum(parts.values()), device_memory(device)
    if have is not None and need > have:
        what = " + ".join(f"{name} {_size(n)}" for name, n in parts.items())
        raise TrainingError(
            f"batch_size={B} x block_size={T} needs at least {_size(need)} per step ({what}) "
            f"but this {device.type} has {_size(have)}; lower block_size or batch_size"
            + (" (or use model.attn_impl=sdpa)" if "attention scores" in parts else "")
        )


def device_memory(device: torch.device) -> int | None:
    """Bytes of memory on ``device`` (the machine's RAM for cpu and mps), None if unknown."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows)
        return None


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


__all__ = [
    "RUN_FILES",
    "RUN_OUTPUTS",
    "build_trainer",
    "check_step_memory",
    "check_val_split",
    "claim_run_dir",
    "device_memory",
    "model_config_dict",
    "resume_latest",
    "with_epoch_length",
]
