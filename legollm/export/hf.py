"""Write a model as a Hugging Face directory: config.json, model.safetensors, tokenizer.

The weights go through :func:`legollm.models.save_pretrained` (the architecture's
weight map, read backwards). The tokenizer files are copied under the names
transformers looks for when the tokenizer already is a Hugging Face one
(``tokenizer.json``, or GPT-2's ``vocab.json`` + ``merges.txt``), with the source
directory's tokenizer_config.json and chat template beside them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from legollm.core.exceptions import ConfigError
from legollm.core.utils import atomic_path
from legollm.models.config import ModelConfig
from legollm.models.loading import LoadedModel
from legollm.models.pretrained import save_pretrained

# spec type -> (spec key, file name transformers reads)
_HF_TOKENIZER_FILES = {
    "hf_json": (("path", "tokenizer.json"),),
    "gpt2": (("encoder_json", "vocab.json"), ("vocab_bpe", "merges.txt")),
}
_BESIDE = ("tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


def hf_model_type(c: ModelConfig) -> str:
    """The Hugging Face model_type that holds a model of this config."""
    if c.norm == "layernorm":
        return "gpt2"
    if c.ffn == "moe":
        return "qwen3_moe" if c.qk_norm else "mixtral"
    if c.qk_norm:
        return "qwen3"
    return "mistral" if c.sliding_window is not None else "llama"


def export_hf(
    loaded: LoadedModel, directory: str | os.PathLike[str], *, force: bool = False
) -> tuple[Path, list[str]]:
    """Save ``loaded`` to ``directory``; returns it and the tokenizer files written.

    A non-empty directory is an error unless ``force``. An empty list of tokenizer
    files means the tokenizer has no Hugging Face form (a LegoLLM-trained or char
    tokenizer): the directory then holds the model only.
    """
    out = Path(directory)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise FileExistsError(f"{out} exists and is not empty; pass --force to write into it")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file; an HF export is a directory")
    model_type = loaded.model_type or hf_model_type(loaded.model.config)
    save_pretrained(loaded.model, out, model_type=model_type)
    return out, _copy_tokenizer(loaded, out)


def _copy_tokenizer(loaded: LoadedModel, out: Path) -> list[str]:
    spec = loaded.tokenizer_spec or {}
    pairs = [(Path(spec[key]), name) for key, name in _HF_TOKENIZER_FILES.get(spec.get("type"), ())]
    if pairs and loaded.kind == "hf":
        pairs += [(loaded.path / n, n) for n in _BESIDE if (loaded.path / n).is_file()]
    for src, name in pairs:
        with atomic_path(out / name) as tmp:
            shutil.copy(src, tmp)
    return [name for _, name in pairs]


__all__ = ["export_hf", "hf_model_type"]
