"""Training: from a TrainConfig to a trained checkpoint.

- ``config``: TrainConfig, every knob of a run, from YAML with ``key=value`` overrides.
- ``presets``: the plain names (tiny, small, gpt2-124m, ...) of from-scratch model sizes.
- ``run``: build a Trainer from a TrainConfig (data, model, loaders, checks, resume).
- ``trainer``: the loop (accumulation, clipping, evaluation, checkpoints, metrics).
- ``schedule``: warmup + cosine / WSD / constant learning rates.
- ``optim``: AdamW with decayed and non-decayed parameter groups.
- ``checkpoint``: the checkpoint layout, atomic saves and RNG state.
- ``distributed``: DDP set-up from torchrun's environment.
- ``logging``: metrics.jsonl, progress bar, loss plot, MFU.
"""

from legollm.training.checkpoint import load_checkpoint, load_model_from_checkpoint
from legollm.training.config import TrainConfig
from legollm.training.schedule import cosine_lr, lr_at, wsd_lr
from legollm.training.trainer import Trainer

__all__ = [
    "TrainConfig",
    "Trainer",
    "cosine_lr",
    "load_checkpoint",
    "load_model_from_checkpoint",
    "lr_at",
    "wsd_lr",
]
