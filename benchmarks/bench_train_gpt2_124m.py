"""GPT-2 124M training tokens/s at batch 4 x 256: LegoLLM's Trainer vs a nanoGPT-style
loop around nanoGPT's model, same process, same random-token data.

On a GPU it also reports MFU (bf16 autocast; ``--compile`` for torch.compile).
Without ``--nanogpt-path``, transformers' GPT-2 stands in for nanoGPT's model.

    flock /tmp/legollm-bench.lock uv run python benchmarks/bench_train_gpt2_124m.py \
        --nanogpt-path /tmp/nanogpt
    uv run python benchmarks/bench_train_gpt2_124m.py --nanogpt-path /tmp/nanogpt --iters 3
    uv run python benchmarks/bench_train_gpt2_124m.py --smoke   # a 2-layer model, seconds
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
from _smoke import parse_args  # noqa: E402
from _train_common import anchor_gpt, nanogpt_train  # noqa: E402

VOCAB = 50257
GPT2_FILES = Path(__file__).resolve().parents[2] / "shared" / "data" / "gpt2"


def random_dataset(root: Path, tokens: int) -> Path:
    """A prepared dir of uniform random GPT-2 ids: speed does not depend on the text.

    Its meta.json names the GPT-2 tokenizer files, as a real prepare does (the Trainer
    copies them into the run)."""
    root.mkdir(parents=True, exist_ok=True)
    ids = np.random.default_rng(0).integers(0, VOCAB, size=tokens, dtype=np.uint16)
    for split in ("train", "val"):
        ids.tofile(root / f"{split}.bin")
    meta = {
        "vocab_size": VOCAB,
        "dtype": "uint16",
        "tokenizer": {
            "type": "gpt2",
            "encoder_json": str(GPT2_FILES / "encoder.json"),
            "vocab_bpe": str(GPT2_FILES / "vocab.bpe"),
        },
        "num_tokens": {"train": tokens, "val": tokens},
        "eot_token_id": 50256,
    }
    (root / "meta.json").write_text(json.dumps(meta))
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nanogpt-path", help="nanoGPT's model.py folder (else transformers')")
    ap.add_argument("--n-layer", type=int, default=12)
    ap.add_argument("--n-head", type=int, default=12)
    ap.add_argument("--n-embd", type=int, default=768)
    ap.add_argument("--tokens", type=int, default=2_000_000, help="size of the random data")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--block-size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=20, help="timed steps (after --warmup)")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps (compile, allocator)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument(
        "--precision", default="auto", help="auto | fp32 | bf16; the anchor runs the same"
    )
    ap.add_argument("--skip-nanogpt", action="store_true")
    smoke = dict(n_layer=2, n_head=2, n_embd=64, batch_size=2, block_size=32, iters=2,
                 warmup=1, tokens=20_000, threads=1)  # fmt: skip
    args = parse_args(ap, smoke)
    torch.set_num_threads(args.threads)
    B, T = args.batch_size, args.block_size
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    from legollm.training.config import TrainConfig
    from legollm.training.logging import flops_per_token, peak_flops
    from legollm.training.presets import model_preset
    from legollm.training.run import build_trainer

    data = random_dataset(Path(tempfile.mkdtemp(prefix="legollm_gpt2bench_")), args.tokens)
    shape = dict(n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd)

    def make_cfg(steps: int) -> TrainConfig:
        return TrainConfig(
            data_dir=str(data),
            run_dir=tempfile.mkdtemp(prefix="legollm_bench_"),
            model={**model_preset("gpt2-124m"), **shape},
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
            precision=args.precision,
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
    dtype, dev = trainer.autocast_dtype, trainer.device
    del trainer
    if args.skip_nanogpt:
        return

    torch.manual_seed(1337)
    gmodel, anchor = anchor_gpt(args.nanogpt_path, block_size=T, vocab_size=VOCAB, **shape)
    gmodel = gmodel.to(args.device)
    if args.compile:
        gmodel = torch.compile(gmodel)
    # the anchor runs at the precision ours ran at (auto: bf16 where the hardware has it)
    ctx = torch.autocast(dev.type, dtype=dtype) if dtype else contextlib.nullcontext()
    print(f"both at {dtype or torch.float32}")
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
    print(f"{anchor}: {ng_tps:,.0f} tokens/s{mfu}")
    print(f"tokens/s ratio legollm / {anchor} = {ours_tps / ng_tps:.2f}x (goal >= 1.0x)")


if __name__ == "__main__":
    main()
