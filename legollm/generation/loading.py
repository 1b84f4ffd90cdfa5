"""Find a model and its tokenizer from one path, for the generate and chat commands.

A path is either
- a LegoLLM checkpoint (``best.pt``/``latest.pt``, or a run directory holding one):
  the checkpoint names its tokenizer (a spec: the data's, or the files an SFT run
  copied into its run directory); or
- a Hugging Face model directory (config.json + safetensors): the tokenizer is
  read from the same directory: ``tokenizer.json``, GPT-2's ``vocab.json`` +
  ``merges.txt``, or a tiktoken ``tokenizer.model`` (Llama 3).

``tokenizer=`` overrides what the model directory provides: a LegoLLM tokenizer
file, a ``tokenizer.json``, or a directory with one of the layouts above.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from legollm.core.exceptions import ConfigError, ModelLoadError, TokenizerError

CHECKPOINT_NAMES = ("best.pt", "latest.pt")


def find_checkpoint(path: Path) -> Path | None:
    if path.is_file() and path.suffix == ".pt":
        return path
    if path.is_dir():
        for name in CHECKPOINT_NAMES:
            if (path / name).is_file():
                return path / name
    return None


def load_model_tokenizer_info(
    source: str | os.PathLike[str],
    tokenizer: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
):
    """``(model, tokenizer, info)``; info says what was loaded, for picking a chat format:
    ``{"kind": "checkpoint" | "hf", "model_type": ..., "prompt_format": ...}``."""
    path = Path(source)
    ckpt_path = find_checkpoint(path)
    if ckpt_path is not None:
        from legollm.data.tokenizer_spec import load_tokenizer
        from legollm.training.checkpoint import load_model_from_checkpoint

        model, ckpt = load_model_from_checkpoint(ckpt_path, device=device)
        if dtype is not None:
            model = model.to(dtype)
        sft = ckpt.get("sft") if isinstance(ckpt.get("sft"), dict) else {}
        # an SFT run records its prompt format, which chat then uses
        info = {"kind": "checkpoint", "model_type": None, "prompt_format": sft.get("format")}
        if tokenizer is not None:
            return model, load_tokenizer_file(tokenizer), info
        if not ckpt.get("tokenizer"):
            raise TokenizerError(
                f"{ckpt_path} does not name its tokenizer; pass one with --tokenizer PATH"
            )
        try:
            tok = load_tokenizer(ckpt["tokenizer"])
        except (ConfigError, TokenizerError) as e:  # e.g. its tokenizer files were deleted
            raise TokenizerError(
                f"{ckpt_path}: cannot rebuild the tokenizer it names ({e}); restore the "
                "file or pass one with --tokenizer PATH"
            ) from e
        return model, tok, info
    if path.is_dir() and (path / "config.json").is_file():
        from legollm.models import load_pretrained
        from legollm.models.pretrained import read_hf_config

        model = load_pretrained(path, dtype=dtype).to(device)
        info = {"kind": "hf", "model_type": read_hf_config(path).get("model_type"),
                "prompt_format": None}  # fmt: skip
        return model, load_tokenizer_file(tokenizer if tokenizer is not None else path), info
    raise ModelLoadError(
        f"{path} is neither a LegoLLM checkpoint (a .pt file or a run directory with "
        f"{' or '.join(CHECKPOINT_NAMES)}) nor a Hugging Face model directory (config.json)"
    )


def load_tokenizer_file(path: str | os.PathLike[str]):
    """A tokenizer from a file or a model directory, by the files it holds
    (see :func:`~legollm.data.tokenizer_spec.spec_for_path`)."""
    from legollm.data.tokenizer_spec import load_tokenizer, spec_for_path

    return load_tokenizer(spec_for_path(path))
