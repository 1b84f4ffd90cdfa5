"""The one way to load a model for use: from a path to (model, tokenizer, what it is).

A path is either

- a LegoLLM checkpoint (``best.pt``/``latest.pt``, or a run directory holding one).
  The checkpoint names its tokenizer as a spec (the prepared data's files, or the
  copies a run keeps in ``run_dir/tokenizer/``); a run trained with LoRA adapters is
  rebuilt with them and merged, so the result is a plain ``DecoderLM``; a quantized
  model (:func:`save_model` after :func:`~legollm.components.quantized.quantize`)
  comes back with its int8 layers; or
- a Hugging Face model directory (config.json + safetensors). The tokenizer is read
  from the same directory: ``tokenizer.json``, GPT-2's ``vocab.json`` +
  ``merges.txt``, or a tiktoken ``tokenizer.model`` (Llama 3).

A ``tokenizer`` argument overrides what the model provides: a file or directory as
above, or a spec dict. ``generate``, ``chat``, ``sft``, ``dpo`` and every command that
starts from a model use :func:`load_model`, so they all accept the same paths.

Checkpoints are read with ``torch.load(weights_only=True)``: opening one never runs
code. Their layout is described in :mod:`legollm.training.checkpoint`, which writes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from legollm.components.quantized import QUANTIZATIONS, quantization_of, quantize
from legollm.core.exceptions import ConfigError, ModelLoadError, TokenizerError
from legollm.core.tokenization.specs import load_tokenizer, resolve_spec_paths, spec_for_path
from legollm.core.utils import atomic_path
from legollm.models.config import ModelConfig
from legollm.models.decoder import DecoderLM
from legollm.models.pretrained import load_pretrained, read_hf_config
from legollm.peft import LoRAConfig, apply_lora, remove_lora

CHECKPOINT_NAMES = ("best.pt", "latest.pt")
REQUIRED_KEYS = ("model", "model_config")
_WRAPPER_PREFIXES = ("_orig_mod.", "module.")


@dataclass
class LoadedModel:
    """A model ready to use, its tokenizer, and what was loaded.

    ``tokenizer_spec`` rebuilds the tokenizer (absolute paths); ``prompt_format`` is the
    format a fine-tuning run trained with (chat prompts the model the same way);
    ``model_type`` is the Hugging Face ``model_type`` of an HF directory.
    """

    model: DecoderLM
    tokenizer: Any
    tokenizer_spec: dict[str, Any]
    kind: str  # "checkpoint" | "hf"
    path: Path  # the checkpoint file or the HF directory
    model_type: str | None = None
    prompt_format: str | None = None
    system: str | None = None


def find_checkpoint(path: str | os.PathLike[str]) -> Path | None:
    """The checkpoint a path names: a ``.pt`` file, or a run dir's best.pt, else latest.pt."""
    path = Path(path)
    if path.is_file() and path.suffix == ".pt":
        return path
    if path.is_dir():
        for name in CHECKPOINT_NAMES:
            if (path / name).is_file():
                return path / name
    return None


def clean_state_dict(state: dict[str, Any]) -> dict[str, Any]:
    """Strip wrapper prefixes (DDP's ``module.``, torch.compile's ``_orig_mod.``) from keys."""
    out = {}
    for key, value in state.items():
        changed = True
        while changed:
            changed = False
            for prefix in _WRAPPER_PREFIXES:
                if key.startswith(prefix):
                    key, changed = key[len(prefix) :], True
        out[key] = value
    return out


def load_checkpoint(path: str | os.PathLike[str], map_location: str = "cpu") -> dict[str, Any]:
    """Read a checkpoint file (or ``latest.pt`` inside a run dir) with ``weights_only=True``.

    Relative tokenizer paths in it are resolved against the checkpoint's folder, so a
    run directory that holds its tokenizer files can be moved.
    """
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
    if isinstance(ckpt.get("tokenizer"), dict):
        ckpt["tokenizer"] = resolve_spec_paths(ckpt["tokenizer"], p.parent)
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any]) -> DecoderLM:
    """The model a checkpoint dict was trained as, with its weights, in eval mode.

    LoRA adapters are rebuilt, loaded, then merged in (W + (alpha / r) B A): a plain model.
    A quantized checkpoint (``"quantization"``) is rebuilt with its int8 layers.
    """
    if ckpt.get("quantization"):
        return _quantized_from_checkpoint(ckpt)
    model = DecoderLM(ModelConfig.from_dict(ckpt["model_config"]))
    if ckpt.get("lora"):
        apply_lora(model, LoRAConfig.from_dict(ckpt["lora"]))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise ModelLoadError(f"checkpoint weights do not fit its model_config: {e}") from e
    if ckpt.get("lora"):
        remove_lora(model)
    return model.eval()


def _quantized_from_checkpoint(ckpt: dict[str, Any]) -> DecoderLM:
    """Build the model on the meta device, quantize that empty shell, then install the
    saved int8 weights and scales in place of its (unallocated) ones."""
    kind = ckpt["quantization"]
    if kind not in QUANTIZATIONS:
        raise ModelLoadError(
            f"checkpoint quantized as {kind!r}, which this version cannot read "
            f"(it reads: {', '.join(QUANTIZATIONS)})"
        )
    with torch.device("meta"):
        model = quantize(DecoderLM(ModelConfig.from_dict(ckpt["model_config"])), kind)
    try:
        model.load_state_dict(ckpt["model"], assign=True)
    except RuntimeError as e:
        raise ModelLoadError(f"quantized checkpoint does not fit its model_config: {e}") from e
    model.init_rope()
    return model.eval()


def save_model(loaded: LoadedModel, path: str | os.PathLike[str]) -> Path:
    """Write ``loaded`` (quantized or not) as a checkpoint file that :func:`load_model` reads.

    It holds the weights, the model config, the tokenizer spec and the prompt format,
    not a training state: it is for use, not for resuming. Written atomically.
    """
    model = loaded.model
    ckpt: dict[str, Any] = {
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_config": model.config.to_dict(),
        "tokenizer": loaded.tokenizer_spec,
        "quantization": quantization_of(model),
    }
    if loaded.prompt_format:
        ckpt["sft"] = {"format": loaded.prompt_format, "system": loaded.system}
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return Path(path)


def load_model_from_checkpoint(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[DecoderLM, dict[str, Any]]:
    """``(model, ckpt)`` from a checkpoint file or run dir; see :func:`model_from_checkpoint`."""
    ckpt = load_checkpoint(path, map_location="cpu")
    return model_from_checkpoint(ckpt).to(device), ckpt


def load_model(
    source: str | os.PathLike[str],
    tokenizer: str | os.PathLike[str] | dict[str, Any] | None = None,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
) -> LoadedModel:
    """Load a checkpoint, a run directory or an HF model directory, with its tokenizer."""
    path = Path(source)
    if not str(source) or not path.exists():
        raise ModelLoadError(
            f"model {str(source)!r} not found: give a LegoLLM checkpoint (.pt or a run dir) "
            "or a Hugging Face model directory (e.g. huggingface-cli download "
            "openai-community/gpt2 --local-dir checkpoints/gpt2)"
        )
    override = _override_spec(tokenizer)
    ckpt_path = find_checkpoint(path)
    if ckpt_path is not None:
        ckpt = load_checkpoint(ckpt_path)
        model = model_from_checkpoint(ckpt)
        spec = override or ckpt.get("tokenizer")
        if not spec:
            raise TokenizerError(
                f"{ckpt_path} does not name its tokenizer; pass one (--tokenizer PATH)"
            )
        finetune = ckpt.get("sft") if isinstance(ckpt.get("sft"), dict) else {}
        loaded = LoadedModel(model, None, spec, "checkpoint", ckpt_path,
                             prompt_format=finetune.get("format"),
                             system=finetune.get("system"))  # fmt: skip
    elif path.is_dir() and (path / "config.json").is_file():
        model = load_pretrained(path, dtype=dtype)
        spec = override or spec_for_path(path)
        loaded = LoadedModel(model, None, spec, "hf", path,
                             model_type=read_hf_config(path).get("model_type"))  # fmt: skip
    elif path.suffix == ".dcp" or (path / "latest.dcp").is_dir():
        raise ModelLoadError(
            f"{path} holds a sharded checkpoint (a strategy: fsdp run); join its shards "
            f"into one file first: legollm consolidate {path}"
        )
    else:
        raise ModelLoadError(
            f"{path} is neither a LegoLLM checkpoint (a .pt file or a run directory with "
            f"{' or '.join(CHECKPOINT_NAMES)}) nor a Hugging Face model directory (config.json)"
        )
    loaded.tokenizer = _rebuild_tokenizer(spec, loaded.path, given=override is not None)
    if dtype is not None:
        loaded.model = loaded.model.to(dtype)
    loaded.model = loaded.model.to(device)
    return loaded


def _override_spec(tokenizer: str | os.PathLike[str] | dict[str, Any] | None):
    """A tokenizer given by the user as a spec with absolute paths (None: the model's)."""
    if tokenizer is None:
        return None
    if isinstance(tokenizer, dict):  # relative paths in a config are relative to the cwd
        return resolve_spec_paths(tokenizer, Path.cwd())
    return spec_for_path(tokenizer)


def _rebuild_tokenizer(spec: dict[str, Any], source: Path, given: bool):
    try:
        return load_tokenizer(spec)
    except (ConfigError, TokenizerError) as e:
        if given:
            raise
        raise TokenizerError(
            f"{source}: cannot rebuild the tokenizer it names ({e}); restore the file or "
            "pass one (--tokenizer PATH)"
        ) from e


__all__ = [
    "CHECKPOINT_NAMES",
    "LoadedModel",
    "clean_state_dict",
    "find_checkpoint",
    "load_checkpoint",
    "load_model",
    "load_model_from_checkpoint",
    "model_from_checkpoint",
    "save_model",
]
