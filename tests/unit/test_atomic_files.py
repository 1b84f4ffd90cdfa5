"""Atomic writes: the mode a plain open() gives, nothing left behind on failure,
and stale temp files of our own naming cleaned up (other files left alone)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from legollm.core.utils import atomic_path, atomic_write, remove_stale_temps
from legollm.data.summary import plot_lengths
from legollm.training.checkpoint import save_checkpoint
from legollm.training.logging import plot_metrics


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def temps(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.endswith(".tmp"))


@pytest.fixture(params=[0o022, 0o027, 0o002])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_atomic_files_get_the_mode_plain_open_gives(tmp_path, umask):
    with open(tmp_path / "plain.txt", "w") as f:  # the oracle: what open() makes
        f.write("x")
    with atomic_write(tmp_path / "a.txt") as f:
        f.write("x")
    with atomic_path(tmp_path / "b.bin") as tmp:
        tmp.write_bytes(b"x")
    save_checkpoint(tmp_path / "latest.pt", {"w": torch.zeros(2)})
    expected = mode(tmp_path / "plain.txt")
    assert expected == 0o666 & ~umask
    for name in ["a.txt", "b.bin", "latest.pt"]:
        assert mode(tmp_path / name) == expected, name


class Boom(RuntimeError):
    pass


def _half_written_savefig(self, fname, *args, **kwargs):
    Path(fname).write_bytes(b"\x89PNG half")  # some bytes land, then the writer dies
    raise Boom("disk full")


@pytest.mark.parametrize("writer", ["summary", "logging"])
def test_a_failing_plot_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch, writer):
    from matplotlib.figure import Figure

    out = tmp_path / "plot.png"
    out.write_bytes(b"the old plot")
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text('{"step": 1, "loss": 2.0, "lr": 0.1}\n')
    monkeypatch.setattr(Figure, "savefig", _half_written_savefig)
    with pytest.raises(Boom):
        if writer == "summary":
            plot_lengths([3, 5, 8], out)
        else:
            plot_metrics(metrics, out)
    assert out.read_bytes() == b"the old plot"
    assert temps(tmp_path) == []


def test_a_failing_checkpoint_keeps_the_old_one_and_leaves_no_temp(tmp_path):
    path = save_checkpoint(tmp_path / "latest.pt", {"step": 1})
    before = path.read_bytes()
    with pytest.raises(Exception):  # noqa: B017 - pickling a lambda fails inside torch.save
        save_checkpoint(path, {"step": 2, "fn": lambda: None})
    assert path.read_bytes() == before
    assert temps(tmp_path) == []


def test_remove_stale_temps_takes_only_ours(tmp_path):
    with atomic_path(tmp_path / "latest.pt") as tmp:
        ours = tmp.name  # a save killed here leaves exactly this name behind
    (tmp_path / ours).write_bytes(b"half a checkpoint")
    keep = ["notes.tmp", ".notes.tmp", ".latest.pt.tmp", "latest.pt"]
    for name in keep:
        (tmp_path / name).write_text("user data")
    removed = remove_stale_temps(tmp_path)
    assert [p.name for p in removed] == [ours]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)
