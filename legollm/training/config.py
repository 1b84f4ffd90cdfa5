"""TrainConfig: every knob of a training run, as one plain dataclass.

Loaded from YAML, overridden from the command line with ``key=value`` pairs (values
parsed as YAML, so ``lr=3e-4``, ``compile=true`` and ``model.n_layer=2`` all work),
and stored as a plain dict in every checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

import yaml

from legollm.core.config import config_from_dict
from legollm.core.exceptions import ConfigError
from legollm.core.utils import read_yaml_mapping
from legollm.training.presets import model_preset
from legollm.training.schedule import SCHEDULES

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
LOSS_NORMS = ("tokens", "micro_steps")
LOADER_MODES = ("random", "sequential", "epochs")  # see legollm.data.loader
DECAY_PARAMS = ("matrices", "all")  # see legollm.training.optim
STRATEGIES = ("ddp", "fsdp")  # see legollm.training.distributed / legollm.training.sharding


@dataclass
class TrainConfig:
    """A training run. Sizes are per process: the global batch is
    ``batch_size * grad_accum_steps * world_size`` sequences of ``block_size`` tokens."""

    # data and output
    data_dir: str = ""
    run_dir: str = "runs/train"
    # the model: a preset name (see legollm.training.presets) or a dict of ModelConfig
    # fields; vocab_size defaults to the data's, context_length to block_size
    model: str | dict[str, Any] = "tiny"
    # batch
    batch_size: int = 12
    block_size: int = 64
    grad_accum_steps: int = 1
    loss_normalization: str = "tokens"  # tokens (non-ignored count) | micro_steps
    # optimisation
    max_iters: int = 2000
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int | None = None  # None = max_iters
    schedule: str = "cosine"  # cosine | wsd | constant
    decay_frac: float = 0.2  # wsd: fraction of training spent decaying
    weight_decay: float = 0.1
    weight_decay_params: str = "matrices"  # matrices (>= 2-D) | all (as AdamW(model.parameters()))
    beta1: float = 0.9
    beta2: float = 0.99
    eps: float = 1e-8
    grad_clip: float = 1.0  # 0 disables clipping
    fused_optimizer: bool | None = None  # None = when available
    # evaluation, checkpoints, logging
    eval_interval: int = 250
    eval_iters: int = 20
    log_interval: int = 10
    save_checkpoints: bool = True  # latest.pt / best.pt at each eval and at the end
    progress: bool = True
    plot: bool = True
    tensorboard: bool = False
    wandb: bool = False
    wandb_project: str = "legollm"
    # device and speed
    device: str = "auto"  # auto | cpu | cuda | mps
    precision: str = "auto"  # auto (bf16 where native: CUDA, AVX512-BF16/AMX) | fp32 | bf16 | fp16
    compile: bool = False
    # ddp: every rank holds the whole model, gradients and optimizer state (gradients
    # averaged); fsdp: each holds 1/world_size of them (legollm.training.sharding)
    strategy: str = "ddp"
    fsdp_cpu_offload: bool = False  # fsdp on CUDA: shards and optimizer state in host memory
    threads: int | None = None  # torch intra-op threads on CPU; None = torch's default
    seed: int = 1337
    loader_mode: str = "random"  # random | sequential | epochs (stride windows, shuffled passes)
    loader_stride: int | None = None  # epochs mode: tokens between window starts; None = block_size
    # epochs mode: train this many whole passes; sets max_iters from the data
    # (epochs * batches per epoch // grad_accum_steps), so give one or the other
    epochs: int | None = None
    # memory: recompute each block in the backward pass instead of keeping its activations
    activation_checkpointing: bool = False
    # memory: head + cross-entropy this many tokens at a time, never the whole logits
    loss_chunk_size: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes kept with the run

    def __post_init__(self) -> None:
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ConfigError(f"train config: {msg}")

        need(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        need(self.block_size >= 1, f"block_size must be >= 1, got {self.block_size}")
        need(self.grad_accum_steps >= 1, "grad_accum_steps must be >= 1")
        need(self.max_iters >= 0, "max_iters must be >= 0")
        need(self.lr > 0 and self.min_lr >= 0, "lr must be > 0 and min_lr >= 0")
        need(self.min_lr <= self.lr, f"min_lr ({self.min_lr}) must be <= lr ({self.lr})")
        need(self.warmup_iters >= 0, "warmup_iters must be >= 0")
        need(0.0 <= self.decay_frac <= 1.0, "decay_frac must be in [0, 1]")
        need(self.eval_interval >= 1 and self.log_interval >= 1, "intervals must be >= 1")
        need(self.eval_iters >= 0, "eval_iters must be >= 0")
        need(self.grad_clip >= 0, "grad_clip must be >= 0 (0 disables it)")
        need(self.device in DEVICES, f"device must be one of {DEVICES}, got {self.device!r}")
        need(self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}")
        need(self.loss_normalization in LOSS_NORMS, f"loss_normalization: one of {LOSS_NORMS}")
        need(isinstance(self.model, (str, dict)), "model must be a preset name or a mapping")
        need(self.loader_mode in LOADER_MODES, f"loader_mode must be one of {LOADER_MODES}")
        need(
            self.weight_decay_params in DECAY_PARAMS,
            f"weight_decay_params must be one of {DECAY_PARAMS}, got {self.weight_decay_params!r}",
        )
        for name in ("epochs", "loader_stride"):
            value = getattr(self, name)
            need(value is None or value >= 1, f"{name} must be >= 1 (or null), got {value}")
            need(
                value is None or self.loader_mode == "epochs",
                f"{name} needs loader_mode: epochs (it is {self.loader_mode!r})",
            )
        need(
            self.loss_chunk_size is None or self.loss_chunk_size >= 1,
            f"loss_chunk_size must be >= 1 (or null for the whole batch), got {self.loss_chunk_size}",
        )
        need(self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}")
        need(
            self.strategy in STRATEGIES,
            f"strategy must be one of {STRATEGIES}, got {self.strategy!r}",
        )
        need(
            not self.fsdp_cpu_offload or self.strategy == "fsdp",
            "fsdp_cpu_offload needs strategy: fsdp",
        )
        need(
            not self.fsdp_cpu_offload or self.device != "cpu",
            "fsdp_cpu_offload moves GPU memory to the host; it needs a CUDA device",
        )
        need(
            self.strategy != "fsdp" or self.precision != "fp16",
            "strategy fsdp trains in fp32 or bf16 (fp16's loss scaler would have to see "
            "every rank's shards); use precision: bf16",
        )

    # -- (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return config_from_dict(cls, d, "train config")

    @classmethod
    def from_yaml(
        cls, path: str | os.PathLike[str], overrides: list[str] | None = None
    ) -> TrainConfig:
        """Read a YAML file, then apply ``key=value`` overrides (see :func:`apply_overrides`)."""
        d = apply_overrides(read_yaml_mapping(path, "train config fields"), overrides or [])
        if d.get("epochs") is not None and d.get("max_iters") is not None:
            raise ConfigError(
                f"train config: epochs ({d['epochs']}) and max_iters ({d['max_iters']}) both "
                "say how long to train; give one (e.g. epochs=null max_iters=5 for a short run)"
            )
        return cls.from_dict(d)


def apply_overrides(d: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key=value`` strings to a config dict; dotted keys reach into ``model``.

    >>> apply_overrides({"lr": 1.0, "model": {"n_layer": 4}}, ["lr=3e-4", "model.n_layer=2"])
    {'lr': 0.0003, 'model': {'n_layer': 2}}
    """
    d = dict(d)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not key=value (e.g. lr=3e-4)")
        value = yaml.safe_load(raw) if raw else None
        if isinstance(value, str) and _is_float(raw):  # YAML reads "3e-4" as a string
            value = float(raw)
        parts = key.split(".")
        target = d
        for part in parts[:-1]:
            sub = target.get(part)
            if isinstance(sub, str) and part == "model":
                sub = model_preset(sub)
            target[part] = dict(sub or {})
            target = target[part]
        target[parts[-1]] = value
    return d


def _is_float(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


__all__ = [
    "DECAY_PARAMS",
    "DEVICES",
    "LOADER_MODES",
    "LOSS_NORMS",
    "PRECISIONS",
    "STRATEGIES",
    "TrainConfig",
    "apply_overrides",
]
