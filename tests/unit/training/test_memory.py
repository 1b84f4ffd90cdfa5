"""legollm/training/memory.py against what PyTorch really keeps and what a step really uses.

Two oracles. Autograd's own ``saved_tensors_hooks`` sees every tensor the forward
keeps for the backward pass: ``layer_activations`` must count those bytes. And the
operating system: a real Trainer step's peak RSS growth (VmHWM, reset through
/proc/self/clear_refs, in a fresh process with glibc returning every freed block)
must be within 25% of the estimate of what a step adds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from legollm.models import DecoderLM, ModelConfig
from legollm.training.config import TrainConfig
from legollm.training.memory import count_params, estimate_memory, layer_activations

GPT2 = dict(vocab_size=512, context_length=64, n_head=4, n_embd=64)
LLAMA = dict(GPT2, norm="rmsnorm", position="rope", ffn="swiglu", n_kv_heads=2, qkv_bias=False,
             attn_out_bias=False, mlp_bias=False, norm_bias=False, ffn_hidden=160,
             tie_embeddings=False)  # fmt: skip


def saved_bytes(fields: dict, n_layer: int, B: int, T: int) -> int:
    """Distinct bytes autograd keeps from a forward (parameters excluded)."""
    torch.manual_seed(0)
    model = DecoderLM(ModelConfig(**{**fields, "n_layer": n_layer}))
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    kept: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            kept[storage.data_ptr()] = storage.nbytes()
        return t

    x = torch.randint(0, fields["vocab_size"], (B, T))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x, return_hidden=True)
    return sum(kept.values())


@pytest.mark.parametrize(
    "fields",
    [GPT2, LLAMA, dict(LLAMA, n_kv_heads=1, qk_norm=True), dict(GPT2, attn_impl="manual")],
    ids=["gpt2", "llama_gqa", "mqa_qk_norm", "manual_attention"],
)
def test_layer_activations_count_what_autograd_keeps(fields):
    B, T = 2, 64
    per_layer = saved_bytes(fields, 2, B, T) - saved_bytes(fields, 1, B, T)
    estimate = layer_activations(ModelConfig(**{**fields, "n_layer": 1}), B * T, T)
    assert estimate == pytest.approx(per_layer, rel=0.02)


def test_parameter_counts_match_a_built_model():
    cfg = ModelConfig(**{**LLAMA, "n_layer": 3})
    model = DecoderLM(cfg)
    counts = count_params(cfg)
    assert counts.total == sum(p.numel() for p in model.parameters())
    assert counts.per_block == sum(p.numel() for p in model.blocks[1].parameters())
    assert counts.root == counts.total - 3 * counts.per_block


def test_fsdp_shards_the_states_and_ddp_adds_buckets():
    cfg, train = ModelConfig(**{**LLAMA, "n_layer": 4}), TrainConfig(batch_size=2, block_size=64)
    one, four = estimate_memory(cfg, train, 1), estimate_memory(cfg, train, 4)
    n = one.params.total
    assert one.strategies["ddp"].buffers == 0  # one process: no DDP wrapper
    assert four.strategies["ddp"].buffers == 4 * n
    assert four.strategies["fsdp"].optimizer == pytest.approx(8 * n / 4, abs=1)
    assert four.strategies["fsdp"].weights == pytest.approx(4 * n / 4, abs=1)


# A fresh process (one for all cases: importing torch is the slow part) trains one
# step of each case, then measures the peak RSS growth of the next one (the optimizer
# state exists by then, the gradients were freed).
PROBE = textwrap.dedent("""
    import ctypes, gc, json, sys, torch
    from legollm.models import DecoderLM, ModelConfig
    from legollm.training.config import TrainConfig
    from legollm.training.memory import estimate_memory
    from legollm.training.trainer import Trainer

    torch.set_num_threads(1)
    libc = ctypes.CDLL("libc.so.6")

    def status(key):
        line = next(l for l in open("/proc/self/status") if l.startswith(key))
        return int(line.split()[1]) * 1024

    def measure(fields, train):
        cfg, tcfg = ModelConfig(**fields), TrainConfig(**train, device="cpu", precision="fp32",
                                                        progress=False, run_dir=sys.argv[2])

        class Batches:
            def next_batch(self):
                x = torch.randint(0, cfg.vocab_size, (tcfg.batch_size, tcfg.block_size + 1))
                return x[:, :-1].contiguous(), x[:, 1:].contiguous()

        torch.manual_seed(0)
        trainer = Trainer(DecoderLM(cfg), tcfg, Batches())
        trainer.train_step()
        gc.collect()
        libc.malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # the peak RSS (VmHWM) starts again from the current RSS
        before = status("VmRSS:")
        trainer.train_step()
        return status("VmHWM:") - before, estimate_memory(cfg, tcfg).strategies["ddp"].step

    print(json.dumps([measure(*case) for case in json.loads(sys.argv[1])]))
""")

SMALL_LLAMA = dict(LLAMA, vocab_size=8192, context_length=256, n_layer=4, n_embd=256,
                   ffn_hidden=688)  # fmt: skip
CASES = {
    "gpt2_plain": (dict(GPT2, vocab_size=8192, context_length=256, n_layer=4, n_embd=256),
                   dict(batch_size=8, block_size=256)),  # activations and the logits dominate
    "llama_both_savers": (SMALL_LLAMA, dict(batch_size=8, block_size=256, loss_chunk_size=512,
                                            activation_checkpointing=True)),
    "llama_accumulating": (SMALL_LLAMA, dict(batch_size=4, block_size=256, grad_accum_steps=2)),
}  # fmt: skip


@pytest.fixture(scope="module")
def measured_steps(tmp_path_factory) -> dict[str, tuple[int, int]]:
    """Each case's (measured, estimated) bytes a step adds."""
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}
    run_dir = tmp_path_factory.mktemp("memory_probe")
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(CASES.values())), str(run_dir)],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(zip(CASES, json.loads(proc.stdout.splitlines()[-1]), strict=True))


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("case", CASES)
def test_estimate_is_within_a_quarter_of_the_measured_step(case, measured_steps):
    measured, estimated = measured_steps[case]
    assert estimated == pytest.approx(measured, rel=0.25), (measured, estimated)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_trainer_with_both_savers_trains_the_same_and_logs_peak_memory(dataset, tmp_path):
    """The config switches reach the model and the loss: the same losses step for step
    (the savers are exact), and every logged step carries the process's peak memory."""
    from legollm.data.loader import TokenDataLoader
    from legollm.training.trainer import Trainer

    def status(key):
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))

    before = {}

    def run(name, **savers):
        cfg = TrainConfig(batch_size=4, block_size=16, max_iters=3, eval_iters=0, log_interval=1,
                          progress=False, plot=False, device="cpu", precision="fp32",
                          save_checkpoints=False, **savers)  # fmt: skip
        torch.manual_seed(0)
        model = DecoderLM(ModelConfig(**{**LLAMA, "vocab_size": 32, "n_layer": 2}))
        loader = TokenDataLoader(dataset, cfg.batch_size, cfg.block_size, split="train", seed=0)
        trainer = Trainer(model, cfg, loader, run_dir=tmp_path / name)
        before[name] = status("VmRSS:")
        trainer.fit()
        return [json.loads(line) for line in (tmp_path / name / "metrics.jsonl").open()]

    plain = run("plain")
    saved = run("savers", activation_checkpointing=True, loss_chunk_size=10)
    for a, b in zip(plain, saved, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], abs=1e-6)
    # the peak RSS so far: at least what was held before the run, at most the peak now
    # (give or take 1 MB: the kernel's per-thread RSS counters catch up in batches)
    peaks = [r["peak_memory_gb"] * 1e9 for r in saved]
    slack = 2**20
    assert before["savers"] - slack <= peaks[0] <= peaks[-1] <= status("VmHWM:") + slack


def test_estimate_command_gives_a_verdict_and_one_line_errors(capsys):
    from legollm.cli.main import main

    argv = ["estimate", "model=llama3:llama-3.2-1b", "batch_size=1", "block_size=4096",
            "--dtype", "bf16", "--world-size", "8", "--device-memory", "24"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "1,235,814,400 parameters" in out  # Llama 3.2 1B, tied head counted once
    # DDP on 8 ranks: 20 bytes per parameter (weight, gradient, bucket, two moments)
    # = 24.7 GB before any activation, over 90% of 24 GB; FSDP holds an eighth of 16
    assert "verdict DDP: does NOT fit" in out and "verdict FSDP: fits" in out
    assert main(["estimate", "model={n_layer: 2}"]) == 1
    assert "vocabulary size is unknown" in capsys.readouterr().err
    assert main(["estimate", "model=llama3:llama-3.2-1b", "--world-size", "0"]) == 1
    assert "--world-size must be >= 1" in capsys.readouterr().err
