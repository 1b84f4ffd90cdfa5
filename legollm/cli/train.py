"""``legollm train --config FILE.yaml [key=value ...] [--resume]``.

Multi-GPU: ``torchrun --standalone --nproc_per_node=N -m legollm train --config ...``
(see legollm/training/distributed.py for multi-node).
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config (key=value overrides)")
    p.add_argument("--config", help="a YAML train config (see configs/train/)")
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help="override fields, e.g. lr=3e-4"
    )
    p.add_argument("--resume", action="store_true", help="continue from run_dir/latest.pt")
    add_overwrite_flag(p, "run_dir")
    p.add_argument("--plot", metavar="RUN_DIR", help="only (re)draw RUN_DIR/loss.png, e.g. mid-run")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from legollm.core.exceptions import ConfigError
    from legollm.training.config import TrainConfig

    if args.plot:
        return plot_run(args.plot)
    if not args.config:
        raise ConfigError("give --config FILE.yaml (see configs/train/) or --plot RUN_DIR")
    cfg = TrainConfig.from_yaml(args.config, args.overrides)
    return train_and_report(cfg, resume=args.resume, overwrite=args.overwrite)


def add_overwrite_flag(p: argparse.ArgumentParser, where: str) -> None:
    """``--overwrite``: the explicit way to start a new run where one already is."""
    p.add_argument(
        "--overwrite",
        action="store_true",
        help=f"start afresh in a {where} that holds a run, deleting its checkpoints and metrics",
    )


def train_and_report(cfg, resume: bool = False, overwrite: bool = False) -> int:
    """Build, train, print where things went (rank 0), always leave the process group."""
    from legollm.core.exceptions import ConfigError
    from legollm.training.distributed import cleanup_distributed
    from legollm.training.run import build_trainer, claim_run_dir

    if cfg.max_iters == 0 and not resume:
        raise ConfigError(
            "max_iters=0 trains nothing and saves no checkpoint; set max_iters to the number "
            "of steps to train (e.g. max_iters=100)"
        )
    claim_run_dir(cfg.run_dir, resume=resume, overwrite=overwrite)
    try:
        trainer = build_trainer(cfg, resume=resume)
        summary = trainer.fit()
    finally:
        cleanup_distributed()
    if trainer.is_main:
        val, loss = summary["val_loss"], summary["train_loss"]
        print(
            f"done: step {summary['step']}"
            + (f", train loss {loss:.4f}" if loss is not None else "")
            + (f", val loss {val:.4f}" if val is not None else "")
            + f", {summary['tokens_per_s']:,.0f} tokens/s"
        )
        print(f"checkpoint: {trainer.checkpoint_path('latest')}")
        if summary["plot"]:
            print(f"loss plot:  {summary['plot']}")
    return 0


def plot_run(run_dir: str) -> int:
    """Draw ``loss.png`` from a run's ``metrics.jsonl`` (works while it is training)."""
    from pathlib import Path

    from legollm.core.exceptions import DataError
    from legollm.training.logging import plot_metrics

    metrics = Path(run_dir) / "metrics.jsonl"
    if not metrics.is_file():
        raise DataError(f"no metrics.jsonl in {run_dir}; is it a training run directory?")
    print(plot_metrics(metrics, Path(run_dir) / "loss.png"))
    return 0
