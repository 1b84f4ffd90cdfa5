"""Data-parallel setup: read what ``torchrun`` put in the environment, init, clean up.

Run on N GPUs of one machine::

    torchrun --standalone --nproc_per_node=N -m legollm train --config FILE.yaml

and on M machines with N GPUs each (run on every node, same master address)::

    torchrun --nnodes=M --node_rank=R --nproc_per_node=N \
        --master_addr=HOST --master_port=29500 -m legollm train --config FILE.yaml

Each process trains on its own slice of every global batch (the loader shards by
rank); DDP averages gradients, only on the last micro-step of an accumulation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_dist_info() -> DistInfo:
    """Rank, local rank and world size from torchrun's environment (1 process if unset)."""
    return DistInfo(
        rank=int(os.environ.get("RANK", 0)),
        local_rank=int(os.environ.get("LOCAL_RANK", 0)),
        world_size=int(os.environ.get("WORLD_SIZE", 1)),
    )


def init_distributed(backend: str | None = None) -> DistInfo:
    """Join the process group when launched by torchrun (nccl on CUDA, else gloo)."""
    info = env_dist_info()
    if not info.is_distributed or dist.is_initialized():
        return info
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(info.local_rank)
    dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)
    return info


def current_dist_info() -> DistInfo:
    """The running process group's view (single process when none is initialised)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), env_dist_info().local_rank, dist.get_world_size())
    return DistInfo()


def cleanup_distributed() -> None:
    """Leave the process group together: a rank that tears down while another is still
    writing its checkpoint makes gloo abort that peer, so wait for everyone first."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


__all__ = [
    "DistInfo",
    "cleanup_distributed",
    "current_dist_info",
    "env_dist_info",
    "init_distributed",
]
