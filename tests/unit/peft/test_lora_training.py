"""LoRA on the project's Trainer: only adapters get optimizer state, a checkpoint resumes
exactly (adapter dropout included), and load_model_from_checkpoint gives the merged model."""

import pytest
import torch

from legollm.core.exceptions import TrainingError
from legollm.finetuning.dataset import InstructionLoader
from legollm.models import DecoderLM, ModelConfig
from legollm.peft import LoRAConfig, apply_lora, trainable_parameters
from legollm.training import TrainConfig, Trainer
from legollm.training.checkpoint import load_model_from_checkpoint

LORA = LoRAConfig(r=4, alpha=8, dropout=0.1, targets=["attn", "mlp"])


def examples(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        T = int(torch.randint(4, 20, (1,), generator=g))
        ids = torch.randint(0, 61, (T + 1,), generator=g).tolist()
        k = T // 2  # the first half is "prompt"
        out.append((ids[:-1], [-100] * k + ids[k + 1 :]))
    return out


def trainer(run_dir, lora=LORA, **kw):
    torch.manual_seed(0)
    model = DecoderLM(ModelConfig(vocab_size=61, context_length=32, n_layer=2, n_head=2, n_embd=16))
    if lora is not None:
        apply_lora(model, lora)
    cfg = TrainConfig(**{**dict(batch_size=4, grad_accum_steps=2, block_size=32, max_iters=6, lr_decay_iters=6,
                               lr=1e-2, min_lr=1e-3, warmup_iters=1, eval_interval=3,
                               eval_iters=2, log_interval=1, progress=False, plot=False,
                               device="cpu", precision="fp32"), **kw})  # fmt: skip
    train = InstructionLoader(examples(), 4, pad_id=0, seed=5, sort_by_length=True)
    val = InstructionLoader(examples(8, seed=1), 4, pad_id=0, shuffle=False)
    return Trainer(model, cfg, train, val, run_dir=run_dir)


def losses(t):
    return {r["step"]: r["loss"] for r in t.history if "loss" in r}


def test_optimizer_state_is_only_the_adapters(tmp_path):
    t = trainer(tmp_path)
    t.fit()
    n_train, _ = trainable_parameters(t.raw_model)
    state = t.optimizer.state_dict()["state"]
    numel = sum(v.numel() for s in state.values() for k, v in s.items() if k != "step")
    assert numel == 2 * n_train  # AdamW: exp_avg and exp_avg_sq per trainable number


def test_resume_with_lora_is_exact_and_loads_merged(tmp_path):
    full = trainer(tmp_path / "full")
    full.fit()
    part = trainer(tmp_path / "part", max_iters=3)
    part.fit()
    resumed = trainer(tmp_path / "part")
    resumed.resume(tmp_path / "part" / "latest.pt")
    resumed.fit()
    a, b = losses(full), losses(resumed)
    for step in range(4, 7):
        assert a[step] == pytest.approx(b[step], abs=1e-6)
    # the checkpoint loads as a plain model whose logits equal the trained LoRA model's
    model, ckpt = load_model_from_checkpoint(tmp_path / "full" / "latest.pt")
    assert ckpt["lora"] == LORA.to_dict()
    assert not any("lora" in k for k in model.state_dict())
    x = torch.randint(0, 61, (2, 10))
    full.raw_model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x), full.raw_model(x), atol=1e-5)


def test_resume_with_other_lora_settings_is_refused(tmp_path):
    t = trainer(tmp_path, max_iters=3)
    t.fit()
    with pytest.raises(TrainingError, match="LoRA"):
        trainer(tmp_path, lora=None).resume(tmp_path / "latest.pt")
