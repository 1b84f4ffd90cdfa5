"""Find a model and its tokenizer from one path, for the generate and chat commands.

A path is either
- a LegoLLM checkpoint (``best.pt``/``latest.pt``, or a run directory holding one):
  the checkpoint names its tokenizer (the spec from the data's meta.json); or
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

from legollm.core.exceptions import ModelLoadError, TokenizerError

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
        return model, load_tokenizer(ckpt["tokenizer"]), info
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
    """A tokenizer from a file or a model directory, by the files it holds."""
    from legollm.core.tokenization import RegexBPETokenizer

    p = Path(path)
    if p.is_dir():
        for name in ("tokenizer.json", "tokenizer.model"):
            if (p / name).is_file():
                return load_tokenizer_file(p / name)
        for encoder, merges in (("vocab.json", "merges.txt"), ("encoder.json", "vocab.bpe")):
            if (p / encoder).is_file() and (p / merges).is_file():
                tok = RegexBPETokenizer.from_gpt2_files(p / encoder, p / merges)
                if "<|endoftext|>" not in tok.special_tokens:
                    tok.register_special_tokens({"<|endoftext|>": 50256})
                return tok
        raise TokenizerError(
            f"no tokenizer in {p}: expected tokenizer.json, tokenizer.model, or "
            "vocab.json + merges.txt; pass one with --tokenizer PATH"
        )
    if not p.is_file():
        raise TokenizerError(f"tokenizer file not found: {p}")
    if p.name == "tokenizer.model":  # Llama 3's tiktoken rank file
        return RegexBPETokenizer.from_llama3(p)
    if p.name.endswith("tokenizer.json"):
        return RegexBPETokenizer.from_tokenizer_json(p)
    return RegexBPETokenizer.load(p)  # a tokenizer saved by LegoLLM
