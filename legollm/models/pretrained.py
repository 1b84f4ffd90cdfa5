"""Hugging Face checkpoint directories in and out, with the weight map as data.

Loading builds the model on the ``meta`` device (no memory), reads tensors from
memory-mapped safetensors one at a time, converts each by its rule, checks its
shape, and installs it with ``load_state_dict(assign=True)``: the weights exist
once in memory, never twice.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import save_file

from legollm.core.exceptions import ModelLoadError
from legollm.core.utils import atomic_path, atomic_write
from legollm.models.decoder import DecoderLM
from legollm.models.registry import ArchitectureSpec, get_architecture


def _safetensors_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (ValueError, KeyError) as e:
            raise ModelLoadError(f"corrupt {index}: {e}") from e
        return [path / f for f in sorted(set(weight_map.values()))]
    single = path / "model.safetensors"
    if single.is_file():
        return [single]
    raise ModelLoadError(
        f"no model.safetensors or model.safetensors.index.json in {path} "
        "(save the model with save_pretrained(..., safe_serialization=True))"
    )


_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}  # fmt: skip


def _read_safetensors(file: Path):
    """Yield (name, tensor) reading each tensor straight from the file into its own buffer.

    The format is an 8-byte little-endian header size, a JSON header of
    ``name -> {dtype, shape, data_offsets}``, then the raw bytes. Reading with
    ``readinto`` (no mmap) keeps resident memory at the tensors we keep.
    """
    with open(file, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
        header.pop("__metadata__", None)
        base = 8 + size
        for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            start, end = info["data_offsets"]
            t = torch.empty(info["shape"], dtype=_DTYPES[info["dtype"]])
            f.seek(base + start)
            view = memoryview(t.view(-1).view(torch.uint8).numpy()) if t.numel() else b""
            if t.numel() and f.readinto(view) != end - start:
                raise ValueError(f"tensor {name} is truncated")
            yield name, t


def read_hf_state(path: str | os.PathLike[str]):
    """Yield (name, tensor) from the checkpoint's safetensors files, one tensor at a time."""
    for file in _safetensors_files(Path(path)):
        if not file.is_file():
            raise ModelLoadError(f"checkpoint shard missing: {file}")
        try:
            yield from _read_safetensors(file)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise ModelLoadError(f"cannot read {file}: {e}") from e


def convert_hf_state(spec: ArchitectureSpec, model: DecoderLM, hf_items, dtype=None) -> dict:
    """Map HF tensors to our names, with shape checks; raise listing every bad key."""
    rules = {r.hf: r for r in spec.expand(model.config.n_layer, model.config.n_experts or 0)}
    expected = {k: v.shape for k, v in model.state_dict().items()}
    tied = model.config.tie_embeddings
    ours: dict[str, torch.Tensor] = {}
    unexpected, mismatched = [], []
    for name, tensor in hf_items:
        rule = rules.get(name)
        if rule is None:
            if not name.endswith(spec.ignored_hf_keys or ("\0",)) and not (
                tied and name == "lm_head.weight"
            ):
                unexpected.append(name)
            continue
        t = tensor.t() if rule.transpose else tensor
        parts = t.chunk(len(rule.ours), dim=0) if len(rule.ours) > 1 else (t,)
        for our_name, part in zip(rule.ours, parts, strict=True):
            if our_name not in expected:
                continue  # e.g. lm_head when tied
            if part.shape != expected[our_name]:
                mismatched.append(
                    f"{name} -> {our_name}: {tuple(part.shape)} vs {tuple(expected[our_name])}"
                )
                continue
            # transposed/split parts stay views of the tensor read from disk: a copy per
            # tensor would leave freed buffers behind in the heap and raise resident memory
            ours[our_name] = part if dtype is None else part.to(dtype)
    if tied:
        expected.pop("lm_head.weight", None)
    missing = sorted(set(expected) - set(ours))
    if missing or unexpected or mismatched:
        raise ModelLoadError(
            "checkpoint does not fit the model: "
            + "; ".join(
                f"{label}: {items}"
                for label, items in (
                    ("missing keys", missing),
                    ("unexpected keys", unexpected),
                    ("shape mismatches", mismatched),
                )
                if items
            )
        )
    return ours


def load_weights(model: DecoderLM, spec: ArchitectureSpec, path, dtype=None) -> DecoderLM:
    state = convert_hf_state(spec, model, read_hf_state(path), dtype)
    if model.config.tie_embeddings:
        state["lm_head.weight"] = state["tok_emb.weight"]
    model.load_state_dict(state, strict=True, assign=True)
    if model.config.tie_embeddings:
        model.lm_head.weight = model.tok_emb.weight
    return model


def read_hf_config(path: str | os.PathLike[str]) -> dict:
    p = Path(path)
    cfg = p / "config.json" if p.is_dir() else p.parent / "config.json"
    if not cfg.is_file():
        raise ModelLoadError(f"no config.json in {cfg.parent}: is this a Hugging Face model dir?")
    try:
        return json.loads(cfg.read_text())
    except ValueError as e:
        raise ModelLoadError(f"corrupt {cfg}: {e}") from e


def load_pretrained(
    path: str | os.PathLike[str], dtype: torch.dtype | None = None, device: str = "cpu"
) -> DecoderLM:
    """Load an HF model dir (config.json + safetensors) into our model, in eval mode."""
    hf_config = read_hf_config(path)
    spec = get_architecture(hf_config.get("model_type"))
    config = spec.config_from_hf(hf_config)
    with torch.device("meta"):
        model = DecoderLM(config)
    load_weights(model, spec, path, dtype)
    model.init_rope()
    return model.to(device).eval()


def export_hf_state(spec: ArchitectureSpec, model: DecoderLM) -> dict[str, torch.Tensor]:
    state = model.state_dict()
    out, done = {}, set()
    for rule in spec.expand(model.config.n_layer, model.config.n_experts or 0):
        if model.config.tie_embeddings and rule.ours == ("lm_head.weight",):
            continue
        if not all(o in state for o in rule.ours):
            continue  # an optional weight this model does not have (e.g. a bias)
        t = torch.cat([state[o] for o in rule.ours], dim=0)
        out[rule.hf] = (t.t() if rule.transpose else t).contiguous()
        done.update(rule.ours)
    left = sorted(
        set(state) - done - ({"lm_head.weight"} if model.config.tie_embeddings else set())
    )
    if left:
        raise ModelLoadError(
            f"{spec.model_type} has no place for {left}: save this model as an architecture "
            "whose weight map covers them"
        )
    return out


def save_pretrained(model: DecoderLM, directory, model_type: str = "gpt2") -> Path:
    """Write an HF-compatible dir: config.json + model.safetensors, each atomically."""
    spec = get_architecture(model_type)
    # both are checked before anything is written: a model the architecture cannot hold
    # (say, q/k norms saved as llama) raises and leaves the directory as it was
    hf_config, state = spec.config_to_hf(model.config), export_hf_state(spec, model)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    with atomic_write(out / "config.json") as f:
        json.dump(hf_config, f, indent=2)
    return out
