"""The memory savers under FSDP: 2 sharded ranks with activation checkpointing and the
chunked loss train exactly as one plain process on the same global batch.

The chunked loss runs the head outside the model's forward, where FSDP has already
resharded the root's weights (the head's among them): the Trainer gathers them again
for the loss, and their gradients must still reach the shards.
"""

import json
import os

import pytest
import torch
import torch.multiprocessing as mp

from legollm.training.distributed import cleanup_distributed, init_distributed
from tests.unit.training.test_fsdp import _assert_same_curve, _free_port, _losses, _trainer

SAVERS = dict(activation_checkpointing=True, loss_chunk_size=5)  # 5: slices across rows


def _worker(rank, world_size, port, dataset, tmp):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))  # fmt: skip
    init_distributed(backend="gloo")
    try:
        torch.set_num_threads(1)
        trainer = _trainer(dataset, f"{tmp}/fsdp", 2, rank, world_size, strategy="fsdp",
                           save_checkpoints=False, **SAVERS)  # fmt: skip
        trainer.fit()
        with open(f"{tmp}/hist.{rank}", "w") as f:
            json.dump(trainer.history, f)
    finally:
        cleanup_distributed()


@pytest.mark.slow
def test_fsdp_with_both_savers_matches_one_plain_process(dataset, tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(dataset), str(tmp_path)), nprocs=2, join=True)
    single = _trainer(dataset, tmp_path / "single", batch_size=4, save_checkpoints=False)
    single.fit()
    for rank in range(2):
        hist = json.loads((tmp_path / f"hist.{rank}").read_text())
        _assert_same_curve(_losses(hist), _losses(single.history))
