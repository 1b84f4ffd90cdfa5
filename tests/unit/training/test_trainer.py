"""The loop: it learns, resumes exactly, normalises by real tokens, fails early on bad input."""

import json

import pytest
import torch
import torch.nn.functional as F

from legollm.core.exceptions import TrainingError
from legollm.data.loader import TokenDataLoader
from legollm.models import DecoderLM, ModelConfig
from legollm.training import TrainConfig, Trainer
from tests.unit.training.conftest import BigramConfig, BigramLM


def make_trainer(dataset, run_dir, seed=0, model_cfg=None, **overrides):
    kw = dict(
        batch_size=4,
        block_size=8,
        max_iters=12,
        lr=1e-2,
        min_lr=1e-3,
        warmup_iters=2,
        lr_decay_iters=12,
        eval_interval=6,
        eval_iters=2,
        log_interval=1,
        progress=False,
        plot=False,
        device="cpu",
    )
    kw.update(overrides)
    cfg = TrainConfig(**kw)
    torch.manual_seed(seed)
    model = BigramLM(model_cfg or BigramConfig())
    train = TokenDataLoader(dataset, cfg.batch_size, cfg.block_size, split="train", seed=0)
    val = TokenDataLoader(dataset, cfg.batch_size, cfg.block_size, split="val", mode="sequential")
    return Trainer(model, cfg, train, val, run_dir=run_dir)


def losses(trainer):
    return {r["step"]: r["loss"] for r in trainer.history if "loss" in r}


def test_loss_goes_down_and_files_are_written(dataset, tmp_path):
    t = make_trainer(dataset, tmp_path / "run", max_iters=40, eval_interval=20, plot=True)
    summary = t.fit()
    ls = losses(t)
    assert ls[40] < ls[1] - 0.5  # the count-up pattern is easy to learn
    run = tmp_path / "run"
    assert (run / "latest.pt").is_file() and (run / "best.pt").is_file()
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "val_loss" in r] == [0, 20, 40]
    assert summary["val_loss"] == records[-1]["val_loss"]
    assert all(r["tokens_per_s"] > 0 for r in records if "loss" in r)


def test_resume_is_exact(dataset, tmp_path):
    """Stopped at step 6 and resumed == never stopped, at every later step (dropout on)."""
    full = make_trainer(dataset, tmp_path / "full")
    full.fit()
    part = make_trainer(dataset, tmp_path / "part", max_iters=6)
    part.fit()
    resumed = make_trainer(dataset, tmp_path / "part", seed=123)  # other init and RNG
    resumed.resume(tmp_path / "part" / "latest.pt")
    assert resumed.step == 6
    resumed.fit()
    a, b = losses(full), losses(resumed)
    assert sorted(b) == list(range(7, 13))
    for step in b:
        assert abs(a[step] - b[step]) <= 1e-6, (step, a[step], b[step])
    for k, v in full.raw_model.state_dict().items():
        torch.testing.assert_close(resumed.raw_model.state_dict()[k], v, rtol=0, atol=1e-6)
    # the resumed run's metrics file holds each step once
    steps = [json.loads(x)["step"] for x in (tmp_path / "part" / "metrics.jsonl").open()]
    assert [s for s in steps if s] == sorted(s for s in steps if s)


class FixedLoader:
    """Yields given batches in turn (with padding), like TokenDataLoader's train side."""

    def __init__(self, batches):
        self.batches, self.step = batches, 0
        self.block_size = batches[0][0].shape[1]

    def next_batch(self):
        b = self.batches[self.step % len(self.batches)]
        self.step += 1
        return b

    def state_dict(self):
        return {"step": self.step}

    def load_state_dict(self, d):
        self.step = d["step"]


def _grads_of_one_step(trainer):
    got = {}

    def capture(*args, **kwargs):
        got.update({n: p.grad.clone() for n, p in trainer.raw_model.named_parameters()})

    trainer.optimizer.step = capture
    trainer.train_step()
    return got


def test_accumulation_normalises_by_real_tokens(tmp_path):
    """Two micro-batches with different padding == one batch, mean over real tokens."""
    g = torch.Generator().manual_seed(0)
    x1, x2 = torch.randint(0, 32, (2, 8), generator=g), torch.randint(0, 32, (3, 8), generator=g)
    y1, y2 = torch.randint(0, 32, (2, 8), generator=g), torch.randint(0, 32, (3, 8), generator=g)
    y1[:, 5:] = -100  # 10 real targets
    y2[0, 1:] = -100  # 17 real targets
    cfg = TrainConfig(
        batch_size=2, block_size=8, grad_accum_steps=2, grad_clip=0, progress=False, device="cpu"
    )
    torch.manual_seed(0)
    model = BigramLM(BigramConfig(dropout=0.0))
    ref = BigramLM(BigramConfig(dropout=0.0))
    ref.load_state_dict(model.state_dict())
    t = Trainer(model, cfg, FixedLoader([(x1, y1), (x2, y2)]), run_dir=tmp_path)
    got = _grads_of_one_step(t)
    # oracle: plain mean cross entropy over all 27 real targets of the two batches
    x, y = torch.cat([x1, x2]), torch.cat([y1, y2])
    loss = F.cross_entropy(ref(x).flatten(0, 1), y.flatten(), ignore_index=-100)
    loss.backward()
    for n, p in ref.named_parameters():
        torch.testing.assert_close(got[n], p.grad, rtol=1e-5, atol=1e-7)


def test_bad_input_fails_before_training(dataset, tmp_path):
    with pytest.raises(TrainingError, match="vocab_size"):
        make_trainer(dataset, tmp_path, model_cfg=BigramConfig(vocab_size=16))
    with pytest.raises(TrainingError, match="context_length"):
        make_trainer(dataset, tmp_path, model_cfg=BigramConfig(context_length=4))
    make_trainer(dataset, tmp_path / "a", max_iters=6).fit()
    other = make_trainer(dataset, tmp_path / "b", model_cfg=BigramConfig(n_embd=8))
    with pytest.raises(TrainingError, match="different model config.*n_embd"):
        other.resume(tmp_path / "a" / "latest.pt")
    assert other.step == 0


def test_compile_failure_falls_back_to_eager(dataset, tmp_path, monkeypatch):
    class Broken(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self._orig_mod = inner

        def forward(self, *a, **k):
            raise RuntimeError("inductor exploded")

    monkeypatch.setattr(torch, "compile", lambda m, **k: Broken(m))
    eager = make_trainer(dataset, tmp_path / "e", max_iters=3)
    eager.fit()
    comp = make_trainer(dataset, tmp_path / "c", max_iters=3, compile=True)
    comp.fit()
    assert losses(comp) == losses(eager)


def test_mfu_counts_the_experts_a_token_uses_not_all_of_them(tmp_path, monkeypatch):
    """A token goes through 2 of the 4 experts (and the router): MFU's 6N counts those.

    N is written out from the config (RMSNorm weights, GQA projections, no biases,
    an untied head); the FLOPs are PaLM's 6N + 12 * layers * heads * head_dim * T.
    """
    C, V, L, nh, nkv, hd, E, k, H, T = 32, 64, 2, 4, 2, 8, 4, 2, 48, 8
    config = ModelConfig(
        vocab_size=V, context_length=16, n_layer=L, n_head=nh, n_kv_heads=nkv, n_embd=C,
        norm="rmsnorm", position="rope", ffn="moe", n_experts=E, n_experts_per_token=k,
        ffn_hidden=H, qkv_bias=False, attn_out_bias=False, mlp_bias=False, norm_bias=False,
        tie_embeddings=False,
    )  # fmt: skip
    per_layer = 2 * C + 2 * C * nh * hd + 2 * C * nkv * hd + C * E + k * 3 * C * H
    active = 2 * V * C + C + L * per_layer
    x = torch.randint(0, V, (2, T))
    cfg = TrainConfig(batch_size=2, block_size=T, progress=False, device="cpu")
    trainer = Trainer(DecoderLM(config), cfg, FixedLoader([(x, x)]), run_dir=tmp_path)
    monkeypatch.setattr("legollm.training.trainer.peak_flops", lambda device: 1e12)
    want = (6 * active + 12 * L * nh * hd * T) * 5000.0 / 1e12
    assert trainer._mfu(5000.0) == pytest.approx(want, rel=1e-12)


def test_val_bits_per_byte_by_hand(dataset, tmp_path):
    """val_bpb = val_loss / (ln 2 x UTF-8 bytes per validation target), with a char
    tokenizer whose characters are 1, 2 and 3 bytes long."""
    import math

    chars = "".join(sorted("abcdefghijklmnopqrstuvwxyzéèà€£¥"))  # ids in sorted order
    assert len(set(chars)) == 32
    t = make_trainer(dataset, tmp_path / "run", max_iters=6)
    t.tokenizer = {"type": "char", "chars": chars}
    t.fit()
    targets = torch.cat([y.flatten() for _, y in t.val_loader.eval_batches(2)]).tolist()
    per_token = sum(len(chars[i].encode()) for i in targets) / len(targets)
    assert 1 < per_token < 3
    records = [r for r in t.history if "val_loss" in r]
    assert records
    for r in records:
        assert r["val_bpb"] == pytest.approx(r["val_loss"] / (math.log(2) * per_token))


def test_no_bits_per_byte_without_a_tokenizer(dataset, tmp_path):
    t = make_trainer(dataset, tmp_path / "run", max_iters=6)
    t.fit()
    assert all("val_bpb" not in r for r in t.history)
