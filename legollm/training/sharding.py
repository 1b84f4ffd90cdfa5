"""FSDP2: shard parameters, gradients and optimizer state across ranks, and checkpoint them.

DDP keeps a whole model, its gradients and AdamW's two moments on every rank: 16 bytes
per parameter in fp32 before any activation. ``strategy: fsdp`` splits each of those
tensors into ``world_size`` shards instead (PyTorch's ``fully_shard``, a ``DTensor``
per parameter), so each rank holds ``1 / world_size`` of them and gathers a block's
full weights only while that block runs:

- forward: all-gather block ``i``'s parameters, run it, free the gathered copy;
- backward: all-gather again, compute the block's gradients, reduce-scatter them so
  each rank keeps (and its AdamW updates) only its shard.

Each transformer block is its own unit (one all-gather each, overlapped with the
previous block's compute), then the root takes what is left (embeddings, final norm,
LM head). With gradient accumulation, every micro-step reduce-scatters its gradients
into the sharded ``.grad`` (they add up there), which keeps the memory saving; the
loss scale is the same as DDP's because the reduce-scatter averages over ranks.

On CUDA with ``precision: bf16`` a :class:`MixedPrecisionPolicy` replaces autocast:
parameters are all-gathered and computed in bf16, gradients reduced in fp32, and the
sharded master weights AdamW updates stay fp32. ``fsdp_cpu_offload: true`` keeps the
shards, their gradients and the optimizer state in host memory (the optimizer steps on
the CPU), trading speed for GPU memory.

Checkpoints of a sharded run are directories written with ``torch.distributed.checkpoint``
(DCP): every rank writes its own shards in parallel, plus ``trainer_state.pt``, the
plain-data rest (step, RNG, loader, configs) from rank 0::

    run_dir/latest.dcp/.metadata  __0_0.distcp  __1_0.distcp  trainer_state.pt

DCP stores where every shard sits in the full tensor, so a checkpoint loads into any
number of ranks (it reshards); :func:`consolidate_checkpoint` turns one into the single
``.pt`` file every other command reads. Only tensors go into DCP's files (it unpickles
non-tensor values on load); the rest is read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

from legollm.core.exceptions import ModelLoadError, TrainingError
from legollm.core.tokenization.specs import resolve_spec_paths
from legollm.models.config import ModelConfig
from legollm.models.decoder import DecoderLM
from legollm.peft import LoRAConfig, apply_lora
from legollm.training.checkpoint import save_checkpoint
from legollm.training.distributed import env_dist_info
from legollm.training.optim import build_optimizer

SHARDED_SUFFIX = ".dcp"
STATE_NAME = "trainer_state.pt"


# ---------------------------------------------------------------------- process group
def require_process_group(device: torch.device) -> None:
    """FSDP needs a process group; one process (``python ...``) gets a group of one.

    Launched by ``torchrun``, the group must already exist (``init_distributed``, which
    ``legollm train`` / ``sft`` / ``dpo`` call first): making a group of one here would
    have every rank train the whole batch alone.
    """
    if dist.is_initialized():
        return
    world = env_dist_info().world_size
    if world > 1:
        raise TrainingError(
            f"strategy fsdp: WORLD_SIZE={world} in the environment but no process group "
            "was started; call legollm.training.distributed.init_distributed() before "
            "building the Trainer (legollm train/sft/dpo do), or run without torchrun"
        )
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)


# ---------------------------------------------------------------------- wrapping
def shard_model(
    model: nn.Module,
    *,
    param_dtype: torch.dtype | None = None,
    cpu_offload: bool = False,
) -> nn.Module:
    """``fully_shard`` every block of ``model.blocks``, then the root; returns ``model``.

    ``param_dtype`` (CUDA bf16): compute in that dtype, reduce gradients in fp32.
    The module is changed in place (its class becomes an FSDP subclass and its
    parameters DTensor shards), so build the optimizer after this.
    """
    kwargs: dict[str, Any] = {}
    if param_dtype is not None:
        kwargs["mp_policy"] = MixedPrecisionPolicy(
            param_dtype=param_dtype, reduce_dtype=torch.float32
        )
    if cpu_offload:
        kwargs["offload_policy"] = CPUOffloadPolicy()
    for param in model.parameters():  # FSDP splits storage: views (e.g. of an HF
        if not param.is_contiguous():  # checkpoint's fused qkv) need their own copy
            param.data = param.data.contiguous()
    for block in getattr(model, "blocks", ()):
        fully_shard(block, **kwargs)
    # The root would by default keep its parameters gathered from forward to backward.
    # A forward without one (evaluation, generation) would then leave them gathered, and
    # the optimizer and checkpoints would no longer see the shards: reshard always.
    fully_shard(model, reshard_after_forward=True, **kwargs)
    return model


def fsdp_model_and_optimizer(model: nn.Module, config, device: torch.device):
    """``(sharded model, AdamW over its shards)`` as ``strategy: fsdp`` trains them.

    ``config`` is a TrainConfig (lr, betas, weight decay, precision, offload). Needs a
    process group (:func:`require_process_group` makes one for a single process).
    Memory benchmarks build DDP's and FSDP's per-rank state with this and ``Trainer``.
    """
    require_process_group(device)
    param_dtype = fsdp_param_dtype(config.precision, device)
    model = shard_model(model.to(device), param_dtype=param_dtype,
                        cpu_offload=config.fsdp_cpu_offload)  # fmt: skip
    optimizer = build_optimizer(
        model,
        lr=config.lr,
        weight_decay=config.weight_decay,
        betas=(config.beta1, config.beta2),
        eps=config.eps,
        device_type="cpu" if config.fsdp_cpu_offload else device.type,
        fused=config.fused_optimizer,
        decay=config.weight_decay_params,
    )
    return model, optimizer


def fsdp_param_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 compute through FSDP's mixed-precision policy: on CUDA when bf16 is asked
    for (or ``auto``, which is bf16 there). Elsewhere autocast does it, as under DDP."""
    if device.type == "cuda" and precision in ("auto", "bf16"):
        return torch.bfloat16
    return None


def gather_full_model(model: nn.Module, device: torch.device) -> DecoderLM | None:
    """A plain (unsharded) copy of a sharded DecoderLM on rank 0, with its LoRA adapters
    if it has them; None on the other ranks. Collective: every rank gathers."""
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    weights = get_model_state_dict(model, options=options)  # only rank 0 keeps the tensors
    if dist.get_rank() != 0:
        return None
    plain = _plain_model(model.config.to_dict(), getattr(model, "lora_config", None))
    plain.load_state_dict(weights)
    return plain.to(device)


def _plain_model(model_config: dict[str, Any], lora: LoRAConfig | None) -> DecoderLM:
    model = DecoderLM(ModelConfig.from_dict(model_config))
    if lora is not None:
        apply_lora(model, lora)
    return model


# ---------------------------------------------------------------------- checkpoints
def sharded_path(run_dir: str | os.PathLike[str], stem: str) -> Path:
    """``run_dir/latest.dcp``: where a sharded checkpoint named ``stem`` lives."""
    return Path(run_dir) / f"{stem}{SHARDED_SUFFIX}"


def is_sharded_checkpoint(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / STATE_NAME).is_file() and (Path(path) / ".metadata").is_file()


def save_sharded(
    path: str | os.PathLike[str], model: nn.Module, optimizer, state: dict[str, Any]
) -> Path:
    """Every rank writes its shards of ``model`` and ``optimizer``; rank 0 adds ``state``
    (plain data). Collective: all ranks call it. Written beside ``path`` and renamed, so
    a run killed while saving keeps the previous checkpoint."""
    final = Path(path)
    tmp = final.with_name(f".{final.name}.tmp")
    old = final.with_name(f".{final.name}.old")
    rank0 = dist.get_rank() == 0
    if rank0:
        shutil.rmtree(tmp, ignore_errors=True)  # a save that was killed midway
    dist.barrier()
    osd = get_optimizer_state_dict(model, optimizer)
    dcp.save({"model": get_model_state_dict(model), "optim": osd["state"]}, checkpoint_id=tmp)
    if rank0:
        torch.save({**state, "optimizer_param_groups": osd["param_groups"]}, tmp / STATE_NAME)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    dist.barrier()
    return final


def read_sharded_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The plain-data part of a sharded checkpoint (step, RNG, loader, configs)."""
    path = Path(path)
    if not is_sharded_checkpoint(path):
        raise ModelLoadError(
            f"{path} is not a sharded LegoLLM checkpoint (a directory with .metadata and "
            f"{STATE_NAME}, written by a strategy: fsdp run)"
        )
    return torch.load(path / STATE_NAME, map_location="cpu", weights_only=True)


def load_sharded(path: str | os.PathLike[str], model: nn.Module, optimizer) -> None:
    """Load a sharded checkpoint's weights and optimizer state into this (sharded) model
    and optimizer, resharding when the world size changed. Collective."""
    state = read_sharded_state(path)
    msd = get_model_state_dict(model)
    osd = get_optimizer_state_dict(model, optimizer)  # creates AdamW's state to fill in
    dcp.load({"model": msd, "optim": osd["state"]}, checkpoint_id=Path(path))
    set_model_state_dict(model, msd)
    groups = state["optimizer_param_groups"]
    set_optimizer_state_dict(model, optimizer, {"state": osd["state"], "param_groups": groups})


def consolidate_checkpoint(
    sharded_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None
) -> Path:
    """Turn a sharded checkpoint into one ``.pt`` file that ``load_model`` reads.

    ``out`` defaults to the same name with ``.pt`` (``run_dir/latest.dcp`` ->
    ``run_dir/latest.pt``). The file holds the full weights and the run's metadata
    (configs, tokenizer, step), not the optimizer state: resume from the sharded
    directory, which keeps it. Runs in one process, no process group needed.
    """
    src = Path(sharded_dir)
    state = read_sharded_state(src)
    dst = Path(out) if out is not None else src.with_suffix(".pt")
    lora = LoRAConfig.from_dict(state["lora"]) if state.get("lora") else None
    with torch.device("meta"):  # shapes only; DCP fills real tensors in below
        model = _plain_model(state["model_config"], lora)
    weights = {k: torch.empty_like(v, device="cpu") for k, v in model.state_dict().items()}
    try:
        with warnings.catch_warnings():  # DCP warns that it reads in one process: we ask it to
            warnings.filterwarnings("ignore", "torch.distributed is disabled", UserWarning)
            dcp.load({"model": weights}, checkpoint_id=src, no_dist=True)
    except Exception as e:  # DCP's own errors list every missing key on every rank
        raise ModelLoadError(f"{src}: the shards do not fit its model_config ({e})") from e
    ckpt = {k: v for k, v in state.items() if k != "optimizer_param_groups"}
    ckpt.update(model=weights, optimizer=None)
    if isinstance(ckpt.get("tokenizer"), dict) and dst.parent.resolve() != src.parent.resolve():
        ckpt["tokenizer"] = resolve_spec_paths(ckpt["tokenizer"], src.parent)
    return save_checkpoint(dst, ckpt)


__all__ = [
    "SHARDED_SUFFIX",
    "STATE_NAME",
    "consolidate_checkpoint",
    "fsdp_model_and_optimizer",
    "fsdp_param_dtype",
    "is_sharded_checkpoint",
    "load_sharded",
    "read_sharded_state",
    "require_process_group",
    "save_sharded",
    "shard_model",
    "sharded_path",
]
