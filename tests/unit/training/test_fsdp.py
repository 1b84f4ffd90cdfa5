"""FSDP2 on CPU (gloo): 2 sharded ranks == one process on the same global batch; a sharded
checkpoint resumes exactly, on 2 ranks and on 1; it consolidates into a file load_model
reads; bad settings fail in one line."""

import json
import os
import shutil
import socket

import pytest
import torch
import torch.multiprocessing as mp

from legollm.core.exceptions import ConfigError, TrainingError
from legollm.data.loader import TokenDataLoader
from legollm.data.meta import read_meta
from legollm.models import DecoderLM, ModelConfig
from legollm.models.loading import load_model
from legollm.training import TrainConfig, Trainer
from legollm.training.distributed import cleanup_distributed, init_distributed
from legollm.training.sharding import consolidate_checkpoint

STEPS, HALF = 10, 5
# qkv_bias off: a key bias adds the same q.b to every score of a row, which softmax
# ignores, so its true gradient is 0 and AdamW would turn rounding noise (different in
# any other summation order) into full-size steps.
MODEL = dict(vocab_size=32, context_length=8, n_layer=2, n_head=2, n_embd=32, dropout=0.0,
             qkv_bias=False)  # fmt: skip


def _trainer(dataset, run_dir, batch_size, rank=0, world_size=1, max_iters=STEPS, **kw):
    cfg = TrainConfig(
        batch_size=batch_size,
        block_size=8,
        grad_accum_steps=2,  # accumulation over sharded gradients
        max_iters=max_iters,
        lr=1e-2,
        min_lr=1e-3,
        warmup_iters=1,
        lr_decay_iters=STEPS,  # the same schedule whether a run stops at HALF or not
        eval_interval=HALF,
        eval_iters=2,
        log_interval=1,
        grad_clip=0.5,  # low enough to clip: the norm must be the global one
        progress=False,
        plot=False,
        device="cpu",
        **kw,
    )
    torch.manual_seed(0)
    model = DecoderLM(ModelConfig.from_dict(MODEL))
    common = dict(rank=rank, world_size=world_size)
    train = TokenDataLoader(dataset, batch_size, 8, split="train", seed=0, **common)
    val = TokenDataLoader(dataset, batch_size, 8, split="val", mode="sequential", **common)
    tokenizer = read_meta(dataset)["tokenizer"]  # so the consolidated file loads whole
    return Trainer(model, cfg, train, val, run_dir=run_dir, tokenizer=tokenizer)


def _losses(history, after=0):
    """``(step, train loss or None, val loss or None)`` of each record past step ``after``."""
    return [(r["step"], r.get("loss"), r.get("val_loss")) for r in history if r["step"] > after]


def _assert_same_curve(got, ref):
    assert [r[0] for r in got] == [r[0] for r in ref]
    for (_, loss, val), (_, ref_loss, ref_val) in zip(got, ref, strict=True):
        assert (loss, val) == pytest.approx((ref_loss, ref_val), abs=1e-5, nan_ok=True)


def _worker(rank, world_size, port, dataset, tmp):
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))  # fmt: skip
    init_distributed(backend="gloo")
    try:
        torch.set_num_threads(1)
        whole = _trainer(dataset, f"{tmp}/whole", 2, rank, world_size, strategy="fsdp")
        whole.fit()
        _trainer(dataset, f"{tmp}/cut", 2, rank, world_size, HALF, strategy="fsdp").fit()
        if rank == 0:  # the step-HALF checkpoint, kept for the 1-process resume
            shutil.copytree(f"{tmp}/cut/latest.dcp", f"{tmp}/one/latest.dcp")
        resumed = _trainer(dataset, f"{tmp}/cut", 2, rank, world_size, strategy="fsdp")
        resumed.resume(f"{tmp}/cut/latest.dcp").fit()  # a fresh model and optimizer
        with open(f"{tmp}/hist.{rank}", "w") as f:
            json.dump({"whole": whole.history, "resumed": resumed.history}, f)
    finally:
        cleanup_distributed()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_fsdp_two_ranks_match_one_process_and_resume_exactly(dataset, tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(dataset), str(tmp_path)), nprocs=2, join=True)
    single = _trainer(dataset, tmp_path / "single", batch_size=4)  # plain, unsharded
    single.fit()
    ref = _losses(single.history)
    assert sum(r[1] is not None for r in ref) == STEPS
    for rank in range(2):
        hist = json.loads((tmp_path / f"hist.{rank}").read_text())
        _assert_same_curve(_losses(hist["whole"]), ref)
        # the resumed run replays steps HALF+1.. exactly (its eval at HALF is skipped)
        _assert_same_curve(_losses(hist["resumed"], after=HALF), _losses(single.history, HALF))

    # the shards gather into one file the one loader reads: the single run's weights
    path = consolidate_checkpoint(tmp_path / "whole" / "latest.dcp")
    assert path == tmp_path / "whole" / "latest.pt"
    merged = load_model(path).model.state_dict()
    expected = single.raw_model.state_dict()
    assert merged.keys() == expected.keys()
    for k, v in expected.items():
        torch.testing.assert_close(merged[k], v, rtol=0, atol=1e-5, msg=k)

    # the same step-HALF shards resume on 1 process (DCP reshards; 1 x 4 == 2 x 2 rows)
    try:
        one = _trainer(dataset, tmp_path / "one", batch_size=4, strategy="fsdp")
        one.resume(tmp_path / "one" / "latest.dcp").fit()
    finally:
        cleanup_distributed()
    _assert_same_curve(_losses(one.history, after=HALF), _losses(single.history, HALF))


# ---------------------------------------------------------------- bad input
def test_unknown_strategy_is_a_config_error():
    with pytest.raises(ConfigError, match=r"strategy must be one of \('ddp', 'fsdp'\)"):
        TrainConfig(strategy="zero3")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"strategy": "fsdp", "precision": "fp16"}, "use precision: bf16"),
        ({"strategy": "fsdp", "fsdp_cpu_offload": True, "device": "cpu"}, "needs a CUDA"),
        ({"fsdp_cpu_offload": True}, "needs strategy: fsdp"),
    ],
)
def test_settings_fsdp_cannot_honour_fail_early(fields, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**fields)


def test_fsdp_under_torchrun_without_a_process_group_says_so(dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it; nobody called init
    with pytest.raises(TrainingError, match="WORLD_SIZE=2 .* no process group"):
        _trainer(dataset, tmp_path, 2, strategy="fsdp")


def test_sharded_checkpoint_refuses_another_model_and_another_strategy(dataset, tmp_path):
    try:
        first = _trainer(dataset, tmp_path / "run", 2, max_iters=1, strategy="fsdp")
        first.fit()
        ckpt = tmp_path / "run" / "latest.dcp"
        bigger = _trainer(dataset, tmp_path / "b", 2, strategy="fsdp")
        wider = DecoderLM(ModelConfig.from_dict({**MODEL, "n_embd": 64}))
        other = Trainer(wider, bigger.config, bigger.train_loader, run_dir=tmp_path / "b")
        with pytest.raises(TrainingError, match=r"different model config .*n_embd"):
            other.resume(tmp_path / "run")  # a run dir: its latest.dcp
    finally:
        cleanup_distributed()
    ddp = _trainer(dataset, tmp_path / "c", 2)
    with pytest.raises(TrainingError, match="strategy fsdp run and this one is ddp"):
        ddp.resume(ckpt)


def test_bf16_policy_computes_in_bf16_over_fp32_master_shards():
    """CUDA's bf16 policy (it runs on gloo too): bf16 compute, fp32 weights and grads."""
    from legollm.training.sharding import fsdp_param_dtype, require_process_group, shard_model

    assert fsdp_param_dtype("bf16", torch.device("cuda")) is torch.bfloat16
    assert fsdp_param_dtype("auto", torch.device("cuda")) is torch.bfloat16
    assert fsdp_param_dtype("fp32", torch.device("cuda")) is None
    assert fsdp_param_dtype("bf16", torch.device("cpu")) is None  # autocast, as under DDP
    torch.manual_seed(0)
    plain = DecoderLM(ModelConfig.from_dict(MODEL))
    sharded = DecoderLM(ModelConfig.from_dict(MODEL))
    sharded.load_state_dict(plain.state_dict())
    x = torch.randint(0, 32, (2, 8))
    try:
        require_process_group(torch.device("cpu"))
        shard_model(sharded, param_dtype=torch.bfloat16)
        logits = sharded(x)
        logits.float().sum().backward()
    finally:
        cleanup_distributed()
    assert logits.dtype == torch.bfloat16
    torch.testing.assert_close(logits.float(), plain(x), rtol=0.05, atol=0.05)  # bf16: 8 bits
    assert all(p.dtype == p.grad.dtype == torch.float32 for p in sharded.parameters())
