"""Checkpoints: everything needed to continue a run, as plain data.

A checkpoint is ``torch.save`` of one dict::

    model          state_dict of the unwrapped model (no ``module.`` / ``_orig_mod.``)
    model_config   ModelConfig.to_dict()
    optimizer      optimizer.state_dict()
    step           optimizer steps done (the schedule is a pure function of it)
    rng            torch / cuda / python RNG states (dropout must replay exactly)
    loader         the train loader's state_dict()
    best_val_loss  float
    train_config   TrainConfig.to_dict()
    tokenizer      a spec for legollm.core.tokenization.specs.load_tokenizer, or None; relative
                   file paths in it are relative to the checkpoint's folder (an SFT run
                   copies its tokenizer files into run_dir/tokenizer/)
    lora           None, or the LoRAConfig dict of the adapters inside ``model``

Only tensors, numbers, strings, lists and dicts: it loads with ``weights_only=True``,
so opening a checkpoint never runs code. It is written to a temp file and renamed.
Reading one (``load_checkpoint``, and the model in it) is the one loader's job:
:mod:`legollm.models.loading`.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import torch

from legollm.core.utils import atomic_path
from legollm.models.loading import clean_state_dict, load_checkpoint, load_model_from_checkpoint


def rng_state() -> dict[str, Any]:
    """The RNG states a training step consumes (dropout, init), as plain data."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": _py_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _py_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def save_checkpoint(path: str | os.PathLike[str], checkpoint: dict[str, Any]) -> Path:
    """``torch.save`` to a temp file beside ``path``, then rename: never a half-written file."""
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
    return Path(path)


__all__ = [
    "clean_state_dict",
    "load_checkpoint",
    "load_model_from_checkpoint",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
]
