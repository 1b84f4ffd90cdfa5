"""What a run says and tidies before its first step: a banner whose facts are true,
and no temp file left over from a save that was killed."""

from __future__ import annotations

import pytest
import torch

from legollm.data.loader import TokenDataLoader
from legollm.models import DecoderLM, ModelConfig, count_parameters
from legollm.training import TrainConfig, Trainer


def tiny_trainer(dataset, run_dir, **overrides):
    kw = dict(batch_size=4, block_size=8, grad_accum_steps=3, max_iters=2, eval_interval=2,
              eval_iters=1, log_interval=1, plot=False, device="cpu", precision="fp32")  # fmt: skip
    kw.update(overrides)
    cfg = TrainConfig(**kw)
    torch.manual_seed(0)
    model = DecoderLM(ModelConfig(vocab_size=32, context_length=16, n_layer=1, n_head=2,
                                  n_embd=16))  # fmt: skip
    train = TokenDataLoader(dataset, cfg.batch_size, cfg.block_size, split="train", seed=0)
    val = TokenDataLoader(dataset, cfg.batch_size, cfg.block_size, split="val", mode="sequential")
    return Trainer(model, cfg, train, val, run_dir=run_dir)


@pytest.mark.parametrize(("precision", "said"), [("fp32", "fp32"), ("bf16", "bf16 autocast")])
def test_banner_states_the_run_before_the_first_step(dataset, tmp_path, capsys, precision, said):
    t = tiny_trainer(dataset, tmp_path / "run", precision=precision)
    t.fit()
    out = capsys.readouterr().out
    banner = out[: out.index("step 0: val loss")]  # printed before anything else happens
    assert f"{count_parameters(t.raw_model):,} parameters" in banner
    assert "device cpu" in banner
    assert f"precision {said} " in banner
    assert f"{4 * 8 * 3} tokens per step" in banner  # batch x block x accumulation
    assert f"writing to {(tmp_path / 'run').resolve()}" in banner


def test_no_banner_without_progress(dataset, tmp_path, capsys):
    tiny_trainer(dataset, tmp_path / "run", progress=False).fit()
    assert "parameters" not in capsys.readouterr().out


def test_a_killed_saves_temp_file_is_removed_when_a_run_starts(dataset, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    orphan = run / ".latest.pt.k3x_9q2a.tmp"  # what a save killed mid-write leaves
    orphan.write_bytes(b"half a checkpoint")
    mine = run / "notes.tmp"  # not our naming: the user's
    mine.write_text("keep me")
    tiny_trainer(dataset, run, progress=False).fit()
    assert not orphan.exists()
    assert mine.read_text() == "keep me"
    assert sorted(p.name for p in run.glob(".*.tmp")) == []
