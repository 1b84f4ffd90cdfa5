"""LLMs-from-scratch's chapter 5 recipe, run by LegoLLM's Trainer, against a plain loop.

The reference below is the book's training loop written from first principles: windows
of ``block_size`` tokens every ``stride`` tokens, ``DataLoader(shuffle=True,
drop_last=True)`` with a seeded generator iterated once per epoch, ``torch.optim.AdamW``
over ``model.parameters()``, cross-entropy, no clipping, a constant learning rate. Both
start from the same weights (a copied state dict) and the same global RNG state (for
dropout), so the Trainer, the epochs loader and the optimizer settings must reproduce
its losses step for step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from torch.utils.data import DataLoader

from legollm.core.exceptions import ConfigError
from legollm.data.prepare import prepare_dataset
from legollm.models import DecoderLM, ModelConfig
from legollm.training.config import TrainConfig
from legollm.training.run import build_trainer, with_epoch_length

ROOT = Path(__file__).resolve().parents[3]
BOOK_MODEL = dict(  # the book's GPT, shrunk: 2 layers, width 32, context 32
    n_layer=2, n_head=2, n_embd=32, dropout=0.1, qkv_bias=False, tie_embeddings=False,
    init="pytorch",
)  # fmt: skip


def reference_losses(model, ids, *, block_size, stride, batch_size, seed, epochs, lr, wd):
    """The book's loop (chapter 5's train_model_simple without its evaluation)."""
    starts = range(0, len(ids) - block_size, stride)
    windows = [(ids[i : i + block_size], ids[i + 1 : i + block_size + 1]) for i in starts]
    g = torch.Generator().manual_seed(seed)
    loader = DataLoader(windows, batch_size=batch_size, shuffle=True, drop_last=True, generator=g)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    model.train()
    losses = []
    for _ in range(epochs):
        for x, y in loader:
            optimizer.zero_grad()
            logits = model(x)
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
    return losses


@pytest.fixture(scope="module")
def verdict_slice(shared_data, tmp_path_factory):
    """The first 1,000 characters of The Verdict, character-level, 10% of paragraphs to val."""
    tmp = tmp_path_factory.mktemp("verdict")
    src = tmp / "verdict.txt"
    src.write_text((shared_data / "text" / "the_verdict.txt").read_text()[:1000])
    return prepare_dataset(inputs=[str(src)], output_dir=str(tmp / "data"), split="paragraph",
                           val_fraction=0.1, seed=0)  # fmt: skip


def book_config(data, run_dir, **over) -> TrainConfig:
    kw = dict(
        data_dir=str(data), run_dir=str(run_dir), model=BOOK_MODEL, batch_size=2,
        block_size=32, loader_mode="epochs", loader_stride=40, epochs=2, schedule="constant",
        lr=2e-3, min_lr=0.0, warmup_iters=0, weight_decay=0.1, weight_decay_params="all",
        beta1=0.9, beta2=0.999, grad_clip=0.0, precision="fp32", device="cpu", seed=123,
        eval_iters=0, log_interval=1, progress=False, plot=False, save_checkpoints=False,
    )  # fmt: skip
    return TrainConfig(**{**kw, **over})


def test_trainer_follows_the_books_loop_step_for_step(verdict_slice, tmp_path):
    cfg = book_config(verdict_slice, tmp_path / "run")
    trainer = build_trainer(cfg)
    model = trainer.raw_model
    ref_model = DecoderLM(model.config)
    ref_model.load_state_dict(model.state_dict())
    rng = torch.get_rng_state()  # both loops draw their dropout masks from here

    ids = np.fromfile(verdict_slice / "train.bin", dtype=np.uint16)
    ids = torch.from_numpy(ids.astype(np.int64))
    expected = reference_losses(ref_model, ids, block_size=32, stride=40, batch_size=2,
                                seed=123, epochs=2, lr=2e-3, wd=0.1)  # fmt: skip
    windows = len(range(0, len(ids) - 32, 40))
    assert trainer.config.max_iters == len(expected) == 2 * (windows // 2)

    torch.set_rng_state(rng)
    trainer.fit()
    got = [r["loss"] for r in trainer.history if "loss" in r]
    assert len(got) == len(expected)
    assert got == pytest.approx(expected, abs=1e-5)
    assert expected[-1] < expected[0] - 0.5  # it learned: the check is not of a flat curve


def test_epochs_set_the_run_length_and_need_the_epochs_loader(tmp_path):
    cfg = TrainConfig(loader_mode="epochs", epochs=3, grad_accum_steps=2)
    assert with_epoch_length(cfg, 9).max_iters == 13  # 27 batches, 2 per step
    with pytest.raises(ConfigError, match="less than one step"):
        with_epoch_length(TrainConfig(loader_mode="epochs", epochs=1, grad_accum_steps=4), 3)
    for bad in (dict(epochs=2), dict(loader_stride=16)):
        with pytest.raises(ConfigError, match="needs loader_mode: epochs"):
            TrainConfig(**bad)
    with pytest.raises(ConfigError, match="weight_decay_params"):
        TrainConfig(weight_decay_params="biases")
    path = tmp_path / "c.yaml"
    path.write_text("loader_mode: epochs\nepochs: 10\n")
    with pytest.raises(ConfigError, match="epochs=null max_iters=5"):
        TrainConfig.from_yaml(path, ["max_iters=5"])
    short = TrainConfig.from_yaml(path, ["epochs=null", "max_iters=5"])
    assert (short.epochs, short.max_iters) == (None, 5)


def test_the_shipped_book_config_is_the_books_model_and_recipe():
    path = ROOT / "configs" / "train" / "book_ch5_verdict.yaml"
    cfg = TrainConfig.from_yaml(path)
    assert (cfg.batch_size, cfg.block_size, cfg.loader_stride, cfg.epochs) == (2, 256, 256, 10)
    assert (cfg.lr, cfg.weight_decay, cfg.beta2, cfg.grad_clip, cfg.seed) == (
        4e-4,
        0.1,
        0.999,
        0,
        123,
    )
    assert cfg.schedule == "constant" and cfg.weight_decay_params == "all"
    mc = ModelConfig.from_dict({**cfg.model, "context_length": cfg.block_size})
    assert mc.init == "pytorch"
    with torch.device("meta"):
        n_params = sum(p.numel() for p in DecoderLM(mc).parameters())
    # the book's GPT_CONFIG_124M at context 256: 163,009,536 at context 1024 less 768 x 768
    assert n_params == 163_009_536 - 768 * 768
    data = yaml.safe_load((ROOT / "configs" / "data" / "the_verdict_gpt2_book.yaml").read_text())
    assert data["output_dir"] == cfg.data_dir and data["split"] == "file"
