"""Shakespeare-char on CPU, nanoGPT's recipe: val loss at the end and training tokens/s,
LegoLLM's Trainer vs a nanoGPT-style loop around nanoGPT's own model, same process,
same prepared data, same evaluation batches, and by default the same training batches
(``--batches shared``): which windows a run happens to draw moves the final val loss by
~0.01, as much as anything being compared (``--batches own`` lets nanoGPT draw its own).

Recipe (nanoGPT README, CPU): 4 layers, 4 heads, 128 dim, block 64, batch 12,
2000 iters, lr 1e-3 -> 1e-4 cosine, warmup 100, beta2 0.99, no dropout. The anchor
runs at the precision ours resolves to (the config's ``auto``: bf16 autocast on CPUs
with native bf16, fp32 elsewhere), so the ratio compares like with like;
``--anchor-precision fp32`` keeps the anchor in fp32 as nanoGPT's CPU recipe runs.
Without ``--nanogpt-path``, transformers' GPT-2 stands in for nanoGPT's model.

    flock /tmp/legollm-bench.lock uv run python benchmarks/bench_train_shakespeare.py \
        --nanogpt-path /tmp/nanogpt
    uv run python benchmarks/bench_train_shakespeare.py --nanogpt-path /tmp/nanogpt --iters 50
    # the val loss of one seed is noisy: compare means over a few
    uv run python benchmarks/bench_train_shakespeare.py --nanogpt-path /tmp/nanogpt \
        --seeds 1337,1,2,3
    uv run python benchmarks/bench_train_shakespeare.py --smoke   # 5 steps, seconds
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _smoke import parse_args  # noqa: E402
from _train_common import anchor_gpt, nanogpt_train, val_loss  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
B, T = 12, 64  # the recipe's batch and block


def prepared(data: str | None) -> Path:
    if data and Path(data).is_dir():
        return Path(data)
    from legollm.data.prepare import PrepareConfig, prepare_dataset

    cfg = PrepareConfig.from_yaml(ROOT / "configs/data/shakespeare_char.yaml").to_dict()
    cfg["inputs"] = [str(ROOT / "../shared/data/text/tiny_shakespeare.txt")]
    cfg["output_dir"] = data or str(Path(tempfile.gettempdir()) / "legollm_bench_shakespeare")
    return prepare_dataset(cfg)


def run_ours(args, data: Path, val, seed: int) -> tuple[float, float, torch.dtype | None]:
    """The shipped config with the bench's overrides; returns (val loss, tokens/s, the
    autocast dtype it ran at)."""
    import yaml

    from legollm.models.loss import lm_loss
    from legollm.training.config import TrainConfig, apply_overrides
    from legollm.training.run import build_trainer

    d = yaml.safe_load((ROOT / "configs/train/shakespeare_char_cpu.yaml").read_text())
    over = [f"data_dir={data}", f"max_iters={args.iters}", f"lr_decay_iters={args.iters}"]
    over += [f"eval_interval={args.iters + 1}", "eval_iters=0", "progress=false", "plot=false"]
    over += ["save_checkpoints=false"] + ([f"precision={args.precision}"] if args.precision else [])
    over += [f"log_interval={max(1, args.iters // 10)}", f"compile={args.compile}"]
    over += [f"run_dir={tempfile.mkdtemp(prefix='legollm_bench_')}", f"seed={seed}", *args.set]
    cfg = TrainConfig.from_dict(apply_overrides(d, over))
    trainer = build_trainer(cfg)
    t0 = time.perf_counter()
    trainer.fit()  # timed from the first step: compilation, if any, is inside
    seconds = time.perf_counter() - t0
    model = trainer.raw_model.eval()
    loss = val_loss(lambda x, y: lm_loss(model(x), y).item(), val, args.eval_batches)
    tps = args.iters * B * T / seconds
    # the median of the logged intervals after the first: tokens/s once warm (compiled)
    warm = sorted(r["tokens_per_s"] for r in trainer.history[1:] if "tokens_per_s" in r)
    steady = f"  (after warm-up {warm[len(warm) // 2]:,.0f})" if warm else ""
    m = cfg.model if isinstance(cfg.model, dict) else {}
    dtype = trainer.autocast_dtype
    print(
        f"legollm settings: precision={cfg.precision} ({dtype or torch.float32}) "
        f"attn_impl={m.get('attn_impl', 'sdpa')} compile={cfg.compile} threads={args.threads}"
    )
    print(f"legollm: val loss {loss:.4f}  {seconds:.1f} s  {tps:,.0f} tokens/s{steady}", flush=True)
    return loss, tps, dtype


def run_nanogpt(args, data: Path, val, seed: int, dtype: torch.dtype | None):
    """nanoGPT's model in a nanoGPT-style loop, under ``dtype`` autocast (None: fp32);
    returns (val loss, tokens/s)."""
    from legollm.data.meta import read_meta

    torch.manual_seed(seed)
    shape = dict(block_size=T, vocab_size=read_meta(data)["vocab_size"], n_layer=4, n_head=4)
    gmodel, name = anchor_gpt(args.nanogpt_path, n_embd=128, **shape)
    ctx = torch.autocast("cpu", dtype=dtype) if dtype else contextlib.nullcontext()
    print(f"{name} settings: {dtype or torch.float32}, its sdpa, eager, {args.batches} batches")
    shared = None
    if args.batches == "shared":  # the windows our Trainer's loader draws for this seed
        from legollm.data.loader import TokenDataLoader

        shared = TokenDataLoader(data, B, T, split="train", mode="random", seed=seed).next_batch
    seconds, _ = nanogpt_train(
        gmodel,
        data / "train.bin",
        iters=args.iters,
        batch_size=B,
        block_size=T,
        lr=1e-3,
        min_lr=1e-4,
        warmup=100,
        weight_decay=0.1,
        beta1=0.9,
        beta2=0.99,
        grad_clip=1.0,
        seed=seed,
        next_batch=shared,
        ctx=ctx,
    )
    gmodel.eval()
    with ctx:
        loss = val_loss(lambda x, y: gmodel(x, y)[1].item(), val, args.eval_batches)
    tps = args.iters * B * T / seconds
    print(f"{name}: val loss {loss:.4f}  {seconds:.1f} s  {tps:,.0f} tokens/s", flush=True)
    return loss, tps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nanogpt-path", help="folder holding nanoGPT's model.py (else transformers')")
    ap.add_argument("--data", help="prepared shakespeare_char dir (prepared to /tmp if absent)")
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--eval-batches", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--seeds",
        default="1337",
        help="comma-separated; each seeds both runs (init and batch order); means are printed",
    )
    ap.add_argument(
        "--batches",
        choices=("shared", "own"),
        default="shared",
        help="nanoGPT trains on the same batch sequence as ours (shared: a paired comparison, "
        "batch-order luck cancels) or draws its own with torch.randint (own)",
    )
    ap.add_argument("--compile", action="store_true", help="torch.compile ours (CPU inductor)")
    ap.add_argument("--skip-nanogpt", action="store_true")
    ap.add_argument("--skip-ours", action="store_true", help="only the anchor")
    ap.add_argument("--precision", help="ours: fp32 | bf16 (CPU autocast); default: the config's")
    ap.add_argument(
        "--anchor-precision",
        choices=("same", "fp32"),
        default="same",
        help="the anchor at the precision ours ran at (same), or fp32 as nanoGPT's CPU recipe",
    )
    ap.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="extra config override"
    )
    args = parse_args(ap, dict(iters=5, eval_batches=2, threads=1))
    if args.smoke and not args.data:  # a fresh dir: never race another run's preparation
        args.data = str(Path(tempfile.mkdtemp(prefix="legollm_smoke_")) / "data")
    torch.set_num_threads(args.threads)

    from legollm.data.loader import TokenDataLoader

    data = prepared(args.data)
    val = TokenDataLoader(data, B, T, split="val", mode="sequential")
    seeds = [int(s) for s in args.seeds.split(",")]
    ours, anchor = [], []
    for seed in seeds:
        if len(seeds) > 1:
            print(f"-- seed {seed}")
        dtype = None
        if not args.skip_ours:
            *result, dtype = run_ours(args, data, val, seed)
            ours.append(result)
        if not args.skip_nanogpt:
            same = dtype if args.anchor_precision == "same" else None
            anchor.append(run_nanogpt(args, data, val, seed, same))
    if not ours or not anchor:
        return
    o_loss, o_tps = (sum(v) / len(v) for v in zip(*ours, strict=True))
    a_loss, a_tps = (sum(v) / len(v) for v in zip(*anchor, strict=True))
    if len(seeds) > 1:
        print(f"means over {len(seeds)} seeds: legollm val {o_loss:.4f}, anchor val {a_loss:.4f}")
    print(f"val loss: legollm - anchor = {o_loss - a_loss:+.4f} (<= 0 is the goal)")
    print(f"tokens/s ratio legollm / anchor = {o_tps / a_tps:.2f}x (goal >= 1.3x)")


if __name__ == "__main__":
    main()
