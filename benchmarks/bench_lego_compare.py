"""GPT-2 pieces vs Llama pieces on Tiny Shakespeare (char level): the same data, sizes,
recipe, steps and evaluation batches; only the Lego choices differ.

Both shipped configs run on the same Trainer: configs/train/shakespeare_char_cpu.yaml
(LayerNorm, learned positions, GELU MLP, biases, MHA) and configs/train/tiny_llama_cpu.yaml
(RMSNorm, RoPE, SwiGLU, no biases, GQA 4:2), each 4 layers x 128 wide, block 64, batch 12.
Prints one Markdown table with parameters, val loss and training tokens/s.

    flock /tmp/legollm-bench.lock uv run python benchmarks/bench_lego_compare.py --steps 2000
    uv run python benchmarks/bench_lego_compare.py --smoke    # 5 steps each, seconds
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from _smoke import parse_args  # noqa: E402
from _train_common import val_loss  # noqa: E402
from bench_train_shakespeare import prepared  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = {
    "GPT-2 style": ROOT / "configs/train/shakespeare_char_cpu.yaml",
    "Llama style": ROOT / "configs/train/tiny_llama_cpu.yaml",
}


def run(config: Path, data: Path, steps: int, args) -> tuple[int, float, float, float]:
    """Train one config; return (parameters, val loss, seconds, tokens/s)."""
    from legollm.data.loader import TokenDataLoader
    from legollm.models import count_parameters
    from legollm.models.loss import lm_loss
    from legollm.training.config import TrainConfig, apply_overrides
    from legollm.training.run import build_trainer

    d = yaml.safe_load(config.read_text())
    over = [f"data_dir={data}", f"max_iters={steps}", f"lr_decay_iters={steps}"]
    over += [f"warmup_iters={min(100, steps // 10)}", f"eval_interval={steps + 1}", "eval_iters=0"]
    over += ["progress=false", "plot=false", "save_checkpoints=false", f"compile={args.compile}"]
    over += [f"log_interval={max(1, steps // 10)}", f"precision={args.precision}"]
    over += [f"run_dir={tempfile.mkdtemp(prefix='legollm_lego_')}"]
    cfg = TrainConfig.from_dict(apply_overrides(d, over))
    trainer = build_trainer(cfg)
    t0 = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - t0
    model = trainer.raw_model.eval()
    val = TokenDataLoader(data, cfg.batch_size, cfg.block_size, split="val", mode="sequential")
    with torch.no_grad():
        loss = val_loss(lambda x, y: lm_loss(model(x), y).item(), val, args.eval_batches)
    tokens = steps * cfg.batch_size * cfg.block_size * cfg.grad_accum_steps
    return count_parameters(model), loss, seconds, tokens / seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000, help="training steps for each model")
    ap.add_argument("--data", help="prepared shakespeare_char dir (prepared to /tmp if absent)")
    ap.add_argument("--eval-batches", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--compile", action="store_true", help="torch.compile both (CPU inductor)")
    ap.add_argument("--precision", default="fp32", help="fp32 | bf16 (CPU autocast)")
    args = parse_args(ap, dict(steps=5, eval_batches=2, threads=1))
    if args.smoke and not args.data:  # a fresh dir: never race another run's preparation
        args.data = str(Path(tempfile.mkdtemp(prefix="legollm_smoke_")) / "data")
    torch.set_num_threads(args.threads)

    data = prepared(args.data)
    rows = [(name, *run(path, data, args.steps, args)) for name, path in CONFIGS.items()]
    print(f"\nTiny Shakespeare (char), {args.steps} steps, batch 12 x 64 tokens, "
          f"{args.threads} threads, {args.precision}\n")  # fmt: skip
    print("| model | parameters | val loss | train time | tokens/s |")
    print("|---|---|---|---|---|")
    for name, n, loss, seconds, tps in rows:
        print(f"| {name} | {n / 1e6:.2f}M | {loss:.4f} | {seconds:.1f} s | {tps:,.0f} |")
    (gpt2, *_, gpt2_tps), (llama, *_, llama_tps) = rows
    print(f"\ntokens/s ratio {llama} / {gpt2}: {llama_tps / gpt2_tps:.2f}x")


if __name__ == "__main__":
    main()
