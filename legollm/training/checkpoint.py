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
    tokenizer      a spec for legollm.data.tokenizer_spec.load_tokenizer, or None; relative
                   file paths in it are relative to the checkpoint's folder (an SFT run
                   copies its tokenizer files into run_dir/tokenizer/)
    lora           None, or the LoRAConfig dict of the adapters inside ``model``

Only tensors, numbers, strings, lists and dicts: it loads with ``weights_only=True``,
so opening a checkpoint never runs code. It is written to a temp file and renamed.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import torch
from torch import nn

from legollm.core.exceptions import ModelLoadError
from legollm.core.utils import atomic_path

_PREFIXES = ("_orig_mod.", "module.")
REQUIRED_KEYS = ("model", "model_config")


def unwrap_model(model: nn.Module) -> nn.Module:
    """Peel DDP (``.module``) and ``torch.compile`` (``._orig_mod``) wrappers off a model."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel):
            model = model.module
        else:
            return model


def clean_state_dict(state: dict[str, Any]) -> dict[str, Any]:
    """Strip wrapper prefixes from keys (for state dicts saved by other tools)."""
    out = {}
    for k, v in state.items():
        changed = True
        while changed:
            changed = False
            for p in _PREFIXES:
                if k.startswith(p):
                    k, changed = k[len(p) :], True
        out[k] = v
    return out


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
    tmp, final = atomic_path(path)
    try:
        torch.save(checkpoint, tmp)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


def load_checkpoint(path: str | os.PathLike[str], map_location: str = "cpu") -> dict[str, Any]:
    """Load a checkpoint file (or ``latest.pt`` inside a run dir) with ``weights_only=True``."""
    p = Path(path)
    if p.is_dir():
        p = p / "latest.pt"
    if not p.is_file():
        raise ModelLoadError(f"checkpoint not found: {p} (give a .pt file or a run directory)")
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as e:  # torch's own text would suggest unpickling: never do that
        raise ModelLoadError(
            f"{p} is not a readable LegoLLM checkpoint: torch cannot read it as tensors and "
            "plain values (a damaged, truncated or foreign file); give a LegoLLM run's "
            "latest.pt or best.pt, or a Hugging Face model directory"
        ) from e
    if not isinstance(ckpt, dict) or any(k not in ckpt for k in REQUIRED_KEYS):
        raise ModelLoadError(f"{p} lacks {list(REQUIRED_KEYS)}; not a LegoLLM checkpoint")
    ckpt["model"] = clean_state_dict(ckpt["model"])
    if isinstance(ckpt.get("tokenizer"), dict):  # loadable from any working directory
        from legollm.data.tokenizer_spec import resolve_spec_paths

        ckpt["tokenizer"] = resolve_spec_paths(ckpt["tokenizer"], p.parent)
    return ckpt


def load_model_from_checkpoint(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a checkpoint was trained as, with its weights, in eval mode.

    Returns ``(model, ckpt)``; ``ckpt["tokenizer"]`` rebuilds the tokenizer with
    ``legollm.data.tokenizer_spec.load_tokenizer``.
    """
    from legollm.models import DecoderLM, ModelConfig

    ckpt = load_checkpoint(path, map_location="cpu")
    model = DecoderLM(ModelConfig.from_dict(ckpt["model_config"]))
    if ckpt.get("lora"):  # trained with LoRA adapters: rebuild them, then merge them in
        from legollm.peft import LoRAConfig, apply_lora

        apply_lora(model, LoRAConfig.from_dict(ckpt["lora"]))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise ModelLoadError(f"checkpoint weights do not fit its model_config: {e}") from e
    if ckpt.get("lora"):
        from legollm.peft import remove_lora

        remove_lora(model)  # a plain model with W + (alpha / r) B A
    return model.to(device).eval(), ckpt


__all__ = [
    "clean_state_dict",
    "load_checkpoint",
    "load_model_from_checkpoint",
    "rng_state",
    "save_checkpoint",
    "set_rng_state",
    "unwrap_model",
]
