"""DPO's pieces against their definitions (Rafailov et al. 2023, eq. 7; the conservative
variant with label smoothing) computed by hand, and the training step on tiny models."""

from __future__ import annotations

import math

import pytest
import torch

from legollm.finetuning.dataset import Example
from legollm.finetuning.dpo import (
    DPOConfig,
    PreferenceLoader,
    PreferencePair,
    dpo_loss,
    reference_logps,
    sequence_logps,
)
from legollm.finetuning.formats import IGNORE_INDEX
from legollm.models import DecoderLM, ModelConfig

TINY = ModelConfig(vocab_size=50, context_length=32, n_layer=2, n_head=2, n_embd=16)


def test_loss_rewards_and_accuracy_follow_the_formula():
    policy = torch.tensor([[-3.0, -5.0], [-4.0, -2.0], [-1.5, -1.5]])
    reference = torch.tensor([[-3.5, -4.0], [-4.0, -3.0], [-2.0, -1.0]])
    beta, eps = 0.1, 0.2
    losses, m = dpo_loss(policy, reference, beta, eps)
    for i, ((pc, pr), (rc, rr)) in enumerate(zip(policy.tolist(), reference.tolist(), strict=True)):
        z = beta * ((pc - rc) - (pr - rr))
        sig = 1 / (1 + math.exp(-z))
        assert float(losses[i]) == pytest.approx(
            -(1 - eps) * math.log(sig) - eps * math.log(1 - sig)
        )
        assert float(m["reward_chosen"][i]) == pytest.approx(beta * (pc - rc))
        assert float(m["reward_rejected"][i]) == pytest.approx(beta * (pr - rr))
        assert float(m["accuracy"][i]) == (z > 0)


def test_sequence_logps_sum_only_the_labelled_tokens():
    torch.manual_seed(0)
    model = DecoderLM(TINY).eval()
    x = torch.randint(0, 50, (2, 7))
    y = torch.randint(0, 50, (2, 7))
    y[0, :3] = IGNORE_INDEX  # the prompt
    y[1, 5:] = IGNORE_INDEX  # padding
    with torch.no_grad():
        logp = model(x).log_softmax(-1)
        want = [sum(float(logp[r, t, y[r, t]]) for t in range(7) if y[r, t] != IGNORE_INDEX)
                for r in range(2)]  # fmt: skip
        got = sequence_logps(model, x, y)
    assert got.tolist() == pytest.approx(want, rel=1e-5)


def pairs(n: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        prompt = torch.randint(0, 50, (3 + i % 3,), generator=g).tolist()
        chosen = torch.randint(0, 50, (2 + i % 2,), generator=g).tolist()
        rejected = torch.randint(0, 50, (4 - i % 2,), generator=g).tolist()
        ex = []
        for resp in (chosen, rejected):
            ids = prompt + resp
            ex.append(Example(ids[:-1], [IGNORE_INDEX] * (len(prompt) - 1) + resp))
        out.append(PreferencePair(*ex))
    return out


def trainer_for(model, examples, tmp_path, batch_size, accum=1, **train):
    from legollm.finetuning.dpo import DPOTrainer
    from legollm.training import TrainConfig

    cfg = DPOConfig(init="x", data="x", beta=0.5)
    tcfg = TrainConfig(batch_size=batch_size, grad_accum_steps=accum, block_size=16,
                       grad_clip=0, progress=False, plot=False, device="cpu", **train)  # fmt: skip
    loader = PreferenceLoader(reference_logps(model, examples, 4, 0, "cpu"), batch_size,
                              pad_id=0, shuffle=False, max_length=16)  # fmt: skip
    return DPOTrainer(model, tcfg, loader, loader, run_dir=tmp_path, finetune=cfg)


def test_at_the_first_step_the_loss_is_log_2_and_the_margin_zero(tmp_path):
    torch.manual_seed(0)
    trainer = trainer_for(DecoderLM(TINY), pairs(6), tmp_path, batch_size=3)
    m = trainer.preference_metrics()
    assert m["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert m["margin"] == pytest.approx(0.0, abs=1e-6)
    assert trainer.evaluate(None) == pytest.approx(math.log(2), abs=1e-6)


def test_accumulated_micro_batches_give_the_full_batch_gradient(tmp_path):
    """Two micro-batches of 2 pairs == one batch of 4: the mean is over pairs."""
    grads = []
    for batch_size, accum in ((4, 1), (2, 2)):
        torch.manual_seed(0)
        model = DecoderLM(TINY)
        trainer = trainer_for(model, pairs(4), tmp_path / str(accum), batch_size, accum)
        got = {}
        trainer.optimizer.step = lambda *a, got=got, m=model, **k: got.update(
            {n: p.grad.clone() for n, p in m.named_parameters()}
        )
        torch.manual_seed(1)  # the same nudge away from the reference for both
        with torch.no_grad():
            model.lm_head.weight.add_(0.05 * torch.randn_like(model.lm_head.weight))
        trainer.train_step()
        grads.append(got)
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-7)


def test_training_raises_the_chosen_reward(tmp_path):
    torch.manual_seed(0)
    trainer = trainer_for(DecoderLM(TINY), pairs(8), tmp_path, batch_size=8, lr=1e-2,
                          min_lr=1e-2, warmup_iters=0)  # fmt: skip
    for _ in range(20):
        trainer.train_step()
    m = trainer.preference_metrics()
    assert m["accuracy"] == 1.0 and m["margin"] > 0.5 and m["loss"] < math.log(2) / 2


def test_bad_dpo_settings_are_refused():
    from legollm.core.exceptions import ConfigError

    with pytest.raises(ConfigError, match="beta"):
        DPOConfig(beta=0)
    with pytest.raises(ConfigError, match="label_smoothing"):
        DPOConfig(label_smoothing=0.5)
    with pytest.raises(ConfigError, match="pack=false"):
        DPOConfig(pack=True)
