"""Train a model on a prepared dataset: the seed's command line.

    python scripts/train.py --dataset out/data/shakespeare_char --model small
    python scripts/train.py --dataset DIR --model gpt2-124m --config configs/train/gpt2_124m.yaml
    python scripts/train.py --dataset DIR --model small --resume

Model presets: see legollm/training/presets.py (tiny, small, shakespeare-gpu, gpt2-124m, ...).
Extra ``key=value`` arguments override any TrainConfig field.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from legollm.training.presets import MODEL_PRESETS

    p = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    p.add_argument(
        "--dataset", required=True, help="a prepared dir (train.bin, val.bin, meta.json)"
    )
    p.add_argument(
        "--model", help=f"one of {sorted(MODEL_PRESETS)} (default: the config's, else small)"
    )
    p.add_argument("--config", help="a YAML train config to start from")
    p.add_argument("--out", help="run directory (default runs/<model>)")
    p.add_argument("--resume", action="store_true", help="continue from the run's latest.pt")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    args = p.parse_args(argv)

    from legollm.cli.main import run
    from legollm.cli.train import train_and_report
    from legollm.training.config import TrainConfig

    def handler(a: argparse.Namespace) -> int:
        base = [
            f"data_dir={a.dataset}",
            f"model={a.model}",
            f"run_dir={a.out or 'runs/' + a.model}",
        ]
        if a.config:
            cfg = TrainConfig.from_yaml(a.config, base + a.overrides)
        else:
            from legollm.training.config import apply_overrides

            cfg = TrainConfig.from_dict(apply_overrides({}, base + a.overrides))
        return train_and_report(cfg, resume=a.resume)

    return run(handler, args)


if __name__ == "__main__":
    sys.exit(main())
