"""Training: the Trainer loop, LR schedules, optimizer groups, checkpoints, DDP, logging."""

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
