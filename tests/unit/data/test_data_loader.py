"""TokenDataLoader: windows from first principles, determinism, resume, sharding, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from legollm.core.exceptions import ConfigError, DataError
from legollm.data import TokenDataLoader

N = 10_000


@pytest.fixture
def prepared(tmp_path):
    """A prepared-style folder whose token at position i is i % 50_000 (so x tells y)."""
    ids = (np.arange(N) % 50_000).astype(np.uint16)
    ids.tofile(tmp_path / "train.bin")
    ids[:3000].tofile(tmp_path / "val.bin")
    meta = {
        "vocab_size": 50_000,
        "dtype": "uint16",
        "tokenizer": {"type": "char", "chars": "a"},
        "num_tokens": {"train": N, "val": 3000},
        "eot_token_id": 0,
    }
    (tmp_path / "meta.json").write_text(json.dumps(meta))
    return tmp_path


def test_random_windows_are_slices_shifted_by_one(prepared):
    dl = TokenDataLoader(prepared, batch_size=4, block_size=32, seed=1)
    for _ in range(5):
        x, y = dl.next_batch()
        assert x.shape == y.shape == (4, 32) and x.dtype == y.dtype == torch.int64
        assert x.is_contiguous() and y.is_contiguous()
        start = x[:, :1]
        assert (x == start + torch.arange(32)).all()  # a contiguous slice of the file
        assert (y == x + 1).all() and (y[:, -1] <= N - 1).all()
    assert dl.num_tokens == N and dl.vocab_size == 50_000


def test_same_seed_same_batches_other_seed_differs(prepared):
    a = TokenDataLoader(prepared, 4, 16, seed=3).next_batch()[0]
    b = TokenDataLoader(prepared, 4, 16, seed=3).next_batch()[0]
    c = TokenDataLoader(prepared, 4, 16, seed=4).next_batch()[0]
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("mode", ["random", "sequential"])
def test_resume_gives_identical_subsequent_batches(prepared, mode):
    ref = TokenDataLoader(prepared, 4, 64, seed=9, mode=mode)
    expected = [ref.next_batch() for _ in range(12)]
    run = TokenDataLoader(prepared, 4, 64, seed=9, mode=mode)
    for _ in range(5):
        run.next_batch()
    state = json.loads(json.dumps(run.state_dict()))  # plain data, survives a checkpoint
    resumed = TokenDataLoader(prepared, 4, 64, seed=9, mode=mode)
    resumed.load_state_dict(state)
    for x, y in expected[5:]:
        rx, ry = resumed.next_batch()
        assert torch.equal(rx, x) and torch.equal(ry, y)


def test_resume_with_other_settings_is_refused(prepared):
    state = TokenDataLoader(prepared, 4, 64, seed=9).state_dict()
    with pytest.raises(ConfigError, match="batch_size"):
        TokenDataLoader(prepared, 8, 64, seed=9).load_state_dict(state)


@pytest.mark.parametrize("mode", ["random", "sequential", "epochs"])
def test_state_moves_to_another_world_size_with_the_same_global_batch(prepared, mode):
    """2 ranks x 2 rows resumed as 1 rank x 4 rows: the same windows, rank 0's then 1's
    (what a sharded checkpoint resumed on fewer ranks needs)."""
    ranks = [TokenDataLoader(prepared, 2, 8, seed=5, rank=r, world_size=2, mode=mode)
             for r in range(2)]  # fmt: skip
    for _ in range(3):
        for dl in ranks:
            dl.next_batch()
    one = TokenDataLoader(prepared, 4, 8, seed=5, mode=mode)
    one.load_state_dict(ranks[0].state_dict())
    for _ in range(2):
        assert torch.equal(one.next_batch()[0], torch.cat([dl.next_batch()[0] for dl in ranks]))
    with pytest.raises(ConfigError, match=r"global batch of 4 \(2 x 2 ranks\)"):
        TokenDataLoader(prepared, 2, 8, seed=5, mode=mode).load_state_dict(ranks[0].state_dict())


def test_sequential_pass_covers_the_file_in_order(prepared):
    dl = TokenDataLoader(prepared, 3, 100, split="val", mode="sequential")
    starts = [int(x[i, 0]) for x, _ in dl.eval_batches() for i in range(3)]
    assert starts == list(range(0, len(dl) * 300, 100))
    assert len(dl) == (3000 - 1) // 100 // 3
    # eval_batches does not move the training state and is the same every time
    first = next(iter(dl.eval_batches(1)))[0]
    dl.next_batch()
    assert torch.equal(next(iter(dl.eval_batches(1)))[0], first)
    assert sum(1 for _ in TokenDataLoader(prepared, 3, 100, split="val", mode="sequential")) == len(
        dl
    )


@pytest.mark.parametrize("mode", ["random", "sequential"])
def test_ranks_get_distinct_windows(prepared, mode):
    world = 4
    loaders = [
        TokenDataLoader(prepared, 2, 8, seed=5, rank=r, world_size=world, mode=mode)
        for r in range(world)
    ]
    for _ in range(3):
        starts = [tuple(dl.next_batch()[0][:, 0].tolist()) for dl in loaders]
        flat = [s for rank in starts for s in rank]
        assert len(set(flat)) == len(flat)  # a random clash would be 1 in ~10^4; seed fixed


def test_bin_file_path_uses_meta_beside_it(prepared):
    x, _ = TokenDataLoader(prepared / "val.bin", 2, 8, mode="sequential").next_batch()
    assert x[0, :3].tolist() == [0, 1, 2]


def test_never_reads_the_whole_file(prepared):
    dl = TokenDataLoader(prepared, 2, 8)
    assert isinstance(dl.data, np.memmap)


def test_bad_inputs_have_clear_errors(prepared, tmp_path):
    with pytest.raises(DataError, match="run data-prepare"):
        TokenDataLoader(tmp_path / "nope.bin", 2, 8)
    with pytest.raises(DataError, match="fewer than block_size"):
        TokenDataLoader(prepared, 2, N)
    with pytest.raises(ConfigError, match="mode"):
        TokenDataLoader(prepared, 2, 8, mode="shuffled")
    with pytest.raises(ConfigError, match="rank"):
        TokenDataLoader(prepared, 2, 8, rank=2, world_size=2)
    (tmp_path / "odd.bin").write_bytes(b"\x00" * 7)
    with pytest.raises(DataError, match="multiple of uint16"):
        TokenDataLoader(tmp_path / "odd.bin", 1, 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_batches_land_on_the_device(prepared):
    x, y = TokenDataLoader(prepared, 2, 8, device="cuda").next_batch()
    assert x.is_cuda and y.is_cuda and (y == x + 1).all()


def test_truncated_split_is_refused_with_both_sizes(prepared):
    """A .bin shorter than meta.json says (a cut copy) must not train silently."""
    with open(prepared / "train.bin", "r+b") as f:
        f.truncate(2 * 9_000)  # whole uint16 tokens: only meta.json can tell
    with pytest.raises(DataError) as e:
        TokenDataLoader(prepared, 2, 8)
    msg = str(e.value)
    assert "train.bin" in msg and "18,000 bytes" in msg and "20,000 bytes" in msg
    assert "re-run data-prepare" in msg
    with pytest.raises(DataError, match="18,000 bytes"):
        TokenDataLoader(prepared / "train.bin", 2, 8)  # the same check via the file path
    TokenDataLoader(prepared, 2, 8, split="val")  # the intact split still loads


def test_empty_split_says_why_not_mmap(prepared, tmp_path):
    (prepared / "val.bin").write_bytes(b"")
    meta = json.loads((prepared / "meta.json").read_text())
    meta["num_tokens"]["val"] = 0
    (prepared / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="no documents in the 'val' split.*val_fraction"):
        TokenDataLoader(prepared, 2, 8, split="val")
    (tmp_path / "bare.bin").write_bytes(b"")  # no meta.json beside it
    with pytest.raises(DataError, match="bare.bin is empty; re-run data-prepare"):
        TokenDataLoader(tmp_path / "bare.bin", 2, 8)
