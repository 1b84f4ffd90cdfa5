"""GPT-2 124M training tokens/s at batch 4 x 256: LegoLLM's Trainer vs a nanoGPT-style
loop around nanoGPT's model, same process, same random-token data.

On a GPU it also reports MFU (bf16 autocast; ``--compile`` for torch.compile).

    flock /tmp/legollm-bench.lock uv run python benchmarks/bench_train_gpt2_124m.py \
        --nanogpt-path /tmp/nanogpt
    uv run python benchmarks/bench_train_gpt2_124m.py --nanogpt-path /tmp/nanogpt --iters 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _train_common import import_nanogpt, nanogpt_train  # noqa: E402

VOCAB = 50257


def random_dataset(root: Path, tokens: int) -> Path:
    """A prepared dir of uniform random GPT-2 ids: speed does not depend on the text."""
    root.mkdir(parents=True, exist_ok=True)
    ids = np.random.default_rng(0).integers(0, VOCAB, size=tokens, dtype=np.uint16)
    for split in ("train", "val"):
        ids.tofile(root / f"{split}.bin")
    meta = {
        "vocab_size": VOCAB,
        "dtype": "uint16",
        "tokenizer": {"type": "gpt2"},
        "num_tokens": {"train": tokens, "val": tokens},
        "eot_token_id": 50256,
    }
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nanogpt-path", required=True)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--block-size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=20, help="timed steps (after --warmup)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps (compile, allocator)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--skip-nanogpt", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    B, T = args.batch_size, args.block_size
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    from legollm.training.config import TrainConfig
    from legollm.training.logging import flops_per_token, peak_flops
    from legollm.training.run import build_trainer

    data = random_dataset(Path(tempfile.mkdtemp(prefix="legollm_gpt2bench_")), 2_000_000)

    def make_cfg(steps: int) -> TrainConfig:
        return TrainConfig(
            data_dir=str(data),
            run_dir=tempfile.mkdtemp(prefix="legollm_bench_"),
            model="gpt2-124m",
            batch_size=B,
            block_size=T,
            max_iters=steps,
            lr=6e-4,
            min_lr=6e-5,
            warmup_iters=0,
            beta2=0.95,
            eval_interval=10**9,
            eval_iters=0,
            log_interval=10**9,
            save_checkpoints=False,
            progress=False,
            plot=False,
            device="cuda" if cuda else "cpu",
            precision="auto",
            compile=args.compile,
        )

    # ours: warm up (compile), then time a second fit of the same trainer
    trainer = build_trainer(make_cfg(args.warmup))
    trainer.fit()
    trainer.config.max_iters = args.warmup + args.iters
    if cuda:
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    trainer.fit()
    if cuda:
        torch.cuda.synchronize()
    ours_tps = args.iters * B * T / (time.perf_counter() - t0)
    mc = trainer.raw_model.config
    n_params = sum(p.numel() for p in trainer.raw_model.parameters())
    fpt = flops_per_token(n_params, mc.n_layer, mc.n_head, mc.n_embd // mc.n_head, T)
    peak = peak_flops(torch.device(args.device))
    mfu = f"  MFU {100 * fpt * ours_tps / peak:.1f}%" if peak else ""
    print(f"legollm: {ours_tps:,.0f} tokens/s{mfu}")
    del trainer
    if args.skip_nanogpt:
        return

    ng = import_nanogpt(args.nanogpt_path)
    torch.manual_seed(1337)
    gmodel = ng.GPT(
        ng.GPTConfig(
            block_size=T,
            vocab_size=VOCAB,
            n_layer=12,
            n_head=12,
            n_embd=768,
            dropout=0.0,
            bias=True,
        )
    ).to(args.device)
    if args.compile:
        gmodel = torch.compile(gmodel)
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else contextlib.nullcontext()
    kw = dict(
        batch_size=B,
        block_size=T,
        lr=6e-4,
        min_lr=6e-5,
        warmup=0,
        weight_decay=0.1,
        beta1=0.9,
        beta2=0.95,
        grad_clip=1.0,
        device=args.device,
        ctx=ctx,
    )
    nanogpt_train(gmodel, data / "train.bin", iters=args.warmup, **kw)
    secs, _ = nanogpt_train(gmodel, data / "train.bin", iters=args.iters, **kw)
    ng_tps = args.iters * B * T / secs
    mfu = f"  MFU {100 * fpt * ng_tps / peak:.1f}%" if peak else ""
    print(f"nanoGPT: {ng_tps:,.0f} tokens/s{mfu}")
    print(f"tokens/s ratio legollm / nanoGPT = {ours_tps / ng_tps:.2f}x (goal >= 1.0x)")


if __name__ == "__main__":
    main()
