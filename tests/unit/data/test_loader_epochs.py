"""The ``epochs`` loader mode against its oracle: torch's DataLoader over stride windows.

The reference is written from first principles, as LLMs-from-scratch builds it: a
dataset of (tokens[i : i + T], tokens[i + 1 : i + T + 1]) for i = 0, stride, 2 * stride,
... while a whole target fits, and ``DataLoader(shuffle=True, drop_last=True)`` with a
seeded generator, iterated once per epoch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from legollm.core.exceptions import ConfigError, DataError
from legollm.data.loader import TokenDataLoader


@pytest.fixture
def tokens(tmp_path):
    ids = np.random.default_rng(0).integers(0, 1000, size=1000).astype(np.uint16)
    path = tmp_path / "train.bin"
    ids.tofile(path)
    return path, torch.from_numpy(ids.astype(np.int64))


def reference_epochs(ids, block_size, stride, batch_size, seed, epochs):
    """Every (x, y) batch of ``epochs`` passes of the book's windows through a DataLoader."""
    starts = range(0, len(ids) - block_size, stride)
    windows = [(ids[i : i + block_size], ids[i + 1 : i + block_size + 1]) for i in starts]
    g = torch.Generator().manual_seed(seed)
    loader = DataLoader(windows, batch_size=batch_size, shuffle=True, drop_last=True, generator=g)
    return [batch for _ in range(epochs) for batch in loader]


@pytest.mark.parametrize("stride", [32, 20, 45], ids=["stride=block", "overlap", "gaps"])
def test_epochs_are_torch_dataloader_batches_over_stride_windows(tokens, stride):
    path, ids = tokens
    loader = TokenDataLoader(path, 4, 32, mode="epochs", stride=stride, seed=123)
    expected = reference_epochs(ids, 32, stride, 4, seed=123, epochs=3)
    assert len(expected) == 3 * len(loader)
    for want_x, want_y in expected:
        x, y = loader.next_batch()
        assert torch.equal(x, want_x) and torch.equal(y, want_y)
    assert loader.epoch == 3


def test_each_epoch_is_a_new_order_of_every_window_but_the_dropped_rest(tokens):
    path, _ = tokens
    loader = TokenDataLoader(path, 4, 32, mode="epochs", seed=1)
    n = (1000 - 1) // 32  # 31 windows: 7 batches of 4, 3 dropped each epoch
    assert loader.num_stride_windows == n and len(loader) == 7
    orders = [loader.epoch_order(e) for e in range(3)]
    for order in orders:
        assert sorted(order.tolist()) == list(range(n))
    assert not np.array_equal(orders[0], orders[1])
    starts = [loader.next_batch()[0][:, 0] for _ in range(7)]
    first_tokens = torch.cat(starts)  # the epoch's 28 windows, none twice
    assert len(set(first_tokens.tolist())) == len(first_tokens)


def test_resume_mid_epoch_continues_exactly_across_epochs(tokens):
    path, _ = tokens
    loader = TokenDataLoader(path, 4, 32, mode="epochs", stride=16, seed=7)
    for _ in range(len(loader) + 5):  # into the second epoch
        loader.next_batch()
    state = loader.state_dict()
    assert state["epoch"] == 1 and state["stride"] == 16
    rest = [loader.next_batch() for _ in range(2 * len(loader))]

    resumed = TokenDataLoader(path, 4, 32, mode="epochs", stride=16, seed=7)
    resumed.load_state_dict(state)
    for x, y in rest:
        rx, ry = resumed.next_batch()
        assert torch.equal(rx, x) and torch.equal(ry, y)


def test_bad_strides_and_too_little_data_are_clear_errors(tokens):
    path, _ = tokens
    with pytest.raises(ConfigError, match="applies to mode='epochs' only"):
        TokenDataLoader(path, 4, 32, mode="random", stride=16)
    with pytest.raises(ConfigError, match="stride must be >= 1"):
        TokenDataLoader(path, 4, 32, mode="epochs", stride=0)
    with pytest.raises(DataError, match="fewer than one batch of 64"):
        TokenDataLoader(path, 64, 32, mode="epochs")
    state = TokenDataLoader(path, 4, 32, mode="epochs", stride=16).state_dict()
    with pytest.raises(ConfigError, match="stride=16"):
        TokenDataLoader(path, 4, 32, mode="epochs").load_state_dict(state)
