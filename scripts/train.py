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
    p.add_argument("--overwrite", action="store_true", help="start afresh where a run already is")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    args = p.parse_args(argv)

    from legollm.cli.main import run
    from legollm.cli.train import train_and_report

    def handler(a: argparse.Namespace) -> int:
        cfg = config_from_args(a)
        return train_and_report(cfg, resume=a.resume, overwrite=a.overwrite)

    return run(handler, args)


def config_from_args(a: argparse.Namespace):
    """The TrainConfig the flags describe: --model, else the config's model, else small;
    the run goes to --out, else runs/<model name> (a config's own run_dir for a custom model)."""
    from legollm.core.utils import read_yaml_mapping
    from legollm.training.config import TrainConfig, apply_overrides

    d = read_yaml_mapping(a.config, "train config fields") if a.config else {}
    d["data_dir"] = a.dataset
    if a.model or "model" not in d:
        d["model"] = a.model or "small"
    if a.out or isinstance(d["model"], str):
        d["run_dir"] = a.out or f"runs/{d['model']}"
    return TrainConfig.from_dict(apply_overrides(d, a.overrides))


if __name__ == "__main__":
    sys.exit(main())
