"""DDP on CPU (gloo, 2 processes) == one process with the same global batch."""

import json
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from legollm.data.loader import TokenDataLoader
from legollm.training import TrainConfig, Trainer
from legollm.training.checkpoint import load_checkpoint
from legollm.training.distributed import cleanup_distributed, init_distributed
from tests.unit.training.conftest import BigramConfig, BigramLM

STEPS = 4


def _train(dataset, run_dir, batch_size, rank=0, world_size=1):
    cfg = TrainConfig(
        batch_size=batch_size,
        block_size=8,
        grad_accum_steps=2,  # exercises no_sync on the first micro-step
        max_iters=STEPS,
        lr=1e-2,
        min_lr=1e-3,
        warmup_iters=1,
        eval_interval=STEPS,
        eval_iters=2,
        log_interval=1,
        progress=False,
        plot=False,
        device="cpu",
    )
    torch.manual_seed(0)
    model = BigramLM(BigramConfig(dropout=0.0))
    common = dict(rank=rank, world_size=world_size)
    train = TokenDataLoader(dataset, batch_size, 8, split="train", seed=0, **common)
    val = TokenDataLoader(dataset, batch_size, 8, split="val", mode="sequential", **common)
    t = Trainer(model, cfg, train, val, run_dir=run_dir)
    t.fit()
    return t


def _worker(rank, world_size, port, dataset, run_dir, out):
    # the environment torchrun would set; init_distributed reads it
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    info = init_distributed(backend="gloo")
    assert (info.rank, info.world_size, dist.get_backend()) == (rank, world_size, "gloo")
    try:
        torch.set_num_threads(1)
        t = _train(dataset, run_dir, batch_size=2, rank=rank, world_size=world_size)
        with open(f"{out}.{rank}", "w") as f:
            json.dump(t.history, f)
    finally:
        cleanup_distributed()
    assert not dist.is_initialized()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_processes_match_one(dataset, tmp_path):
    out = str(tmp_path / "hist")
    mp.spawn(
        _worker,
        args=(2, _free_port(), str(dataset), str(tmp_path / "ddp"), out),
        nprocs=2,
        join=True,
    )
    single = _train(dataset, tmp_path / "single", batch_size=4).history
    ranks = [json.loads((tmp_path / f"hist.{r}").read_text()) for r in range(2)]
    for key in ("loss", "val_loss"):
        ref = [r[key] for r in single if key in r]
        assert len(ref) == (STEPS if key == "loss" else 2)
        for hist in ranks:  # every rank reports the global (all-reduced) figure
            got = [r[key] for r in hist if key in r]
            assert got == pytest.approx(ref, abs=1e-5)
    # only rank 0 wrote, and from the unwrapped model
    ckpt = load_checkpoint(tmp_path / "ddp" / "latest.pt")
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in ckpt["model"])
    assert set(ckpt["model"]) == set(BigramLM(BigramConfig()).state_dict())
    single_ckpt = load_checkpoint(tmp_path / "single" / "latest.pt")
    for k, v in single_ckpt["model"].items():
        torch.testing.assert_close(ckpt["model"][k], v, rtol=1e-5, atol=1e-6)
