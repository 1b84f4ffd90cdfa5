"""Shakespeare-char on CPU, nanoGPT's recipe: val loss at the end and training tokens/s,
LegoLLM's Trainer vs a nanoGPT-style loop around nanoGPT's own model, same process,
same prepared data, same evaluation batches.

Recipe (nanoGPT README, CPU): 4 layers, 4 heads, 128 dim, block 64, batch 12,
2000 iters, lr 1e-3 -> 1e-4 cosine, warmup 100, beta2 0.99, no dropout.

    flock /tmp/legollm-bench.lock uv run python benchmarks/bench_train_shakespeare.py \
        --nanogpt-path /tmp/nanogpt
    uv run python benchmarks/bench_train_shakespeare.py --nanogpt-path /tmp/nanogpt --iters 50
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _train_common import import_nanogpt, nanogpt_train, val_loss  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def prepared(data: str | None) -> Path:
    if data and Path(data).is_dir():
        return Path(data)
    from legollm.data.prepare import PrepareConfig, prepare_dataset

    cfg = PrepareConfig.from_yaml(ROOT / "configs/data/shakespeare_char.yaml").to_dict()
    cfg["inputs"] = [str(ROOT / "../shared/data/text/tiny_shakespeare.txt")]
    cfg["output_dir"] = data or str(Path(tempfile.gettempdir()) / "legollm_bench_shakespeare")
    return prepare_dataset(cfg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nanogpt-path", required=True, help="folder holding nanoGPT's model.py")
    ap.add_argument("--data", help="prepared shakespeare_char dir (prepared to /tmp if absent)")
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--eval-batches", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compile", action="store_true", help="torch.compile ours (CPU inductor)")
    ap.add_argument("--skip-nanogpt", action="store_true")
    ap.add_argument("--skip-ours", action="store_true", help="only the anchor")
    ap.add_argument("--precision", default="fp32", help="ours: fp32 | bf16 (CPU autocast)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from legollm.data.loader import TokenDataLoader
    from legollm.data.meta import read_meta
    from legollm.training.config import TrainConfig, apply_overrides
    from legollm.training.run import build_trainer

    data = prepared(args.data)
    vocab = read_meta(data)["vocab_size"]
    B, T = 12, 64
    val = TokenDataLoader(data, B, T, split="val", mode="sequential")

    # ---- ours: the shipped config, eval only at the end
    import yaml

    d = yaml.safe_load((ROOT / "configs/train/shakespeare_char_cpu.yaml").read_text())
    over = [f"data_dir={data}", f"max_iters={args.iters}", f"lr_decay_iters={args.iters}"]
    over += [f"eval_interval={args.iters + 1}", "eval_iters=0", "progress=false", "plot=false"]
    over += ["save_checkpoints=false", f"precision={args.precision}"]
    over += [f"log_interval={max(1, args.iters // 10)}", f"compile={args.compile}"]
    over += [f"run_dir={tempfile.mkdtemp(prefix='legollm_bench_')}"]
    cfg = TrainConfig.from_dict(apply_overrides(d, over))
    ours_val = ours_tps = None
    if not args.skip_ours:
        trainer = build_trainer(cfg)
        t0 = time.perf_counter()
        trainer.fit()
        ours_s = time.perf_counter() - t0
        model = trainer.raw_model.eval()
        ours_val = val_loss(lambda x, y: model(x, targets=y)[1].item(), val, args.eval_batches)
        ours_tps = args.iters * B * T / ours_s
        print(f"legollm: val loss {ours_val:.4f}  {ours_s:.1f} s  {ours_tps:,.0f} tokens/s")
    if args.skip_nanogpt:
        return

    # ---- anchor: nanoGPT's model in a nanoGPT-style loop
    ng = import_nanogpt(args.nanogpt_path)
    torch.manual_seed(1337)
    gcfg = ng.GPTConfig(
        block_size=T, vocab_size=vocab, n_layer=4, n_head=4, n_embd=128, dropout=0.0, bias=True
    )
    gmodel = ng.GPT(gcfg)
    ng_s, _ = nanogpt_train(
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
    )
    gmodel.eval()
    ng_val = val_loss(lambda x, y: gmodel(x, y)[1].item(), val, args.eval_batches)
    ng_tps = args.iters * B * T / ng_s
    print(f"nanoGPT: val loss {ng_val:.4f}  {ng_s:.1f} s  {ng_tps:,.0f} tokens/s")
    if ours_val is None:
        return
    print(f"val loss: legollm - nanoGPT = {ours_val - ng_val:+.4f} (<= 0 is the goal)")
    print(f"tokens/s ratio legollm / nanoGPT = {ours_tps / ng_tps:.2f}x (goal >= 1.3x)")


if __name__ == "__main__":
    main()
