"""``legollm consolidate RUN_DIR|CKPT.dcp [--out FILE.pt]``: one file from a sharded run.

A ``strategy: fsdp`` run saves ``latest.dcp`` / ``best.dcp``: directories holding each
rank's shards (see legollm/training/sharding.py). This joins them into the ``.pt`` file
that ``generate``, ``chat``, ``eval``, ``sft`` and ``dpo`` read, beside the directory:

    legollm consolidate runs/fsdp            # latest.dcp -> latest.pt, best.dcp -> best.pt
    legollm consolidate runs/fsdp/best.dcp --out model.pt

The file has the weights and the run's configs and tokenizer, not the optimizer state:
keep the .dcp directory to resume training.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "consolidate",
        help="join a sharded (strategy: fsdp) checkpoint into one .pt file",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("path", help="a run directory, or one of its .dcp checkpoint directories")
    p.add_argument("--out", help="the .pt file to write (only with a .dcp path)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from legollm.core.exceptions import ConfigError, ModelLoadError
    from legollm.training.sharding import (
        SHARDED_SUFFIX,
        consolidate_checkpoint,
        is_sharded_checkpoint,
    )

    path = Path(args.path)
    if is_sharded_checkpoint(path):
        sources = [path]
    else:
        sources = [p for p in sorted(path.glob(f"*{SHARDED_SUFFIX}")) if is_sharded_checkpoint(p)]
        if not sources:
            raise ModelLoadError(
                f"{path} holds no sharded checkpoint (latest.dcp / best.dcp, written by a "
                "strategy: fsdp run); give a run directory or a .dcp directory"
            )
        if args.out:
            raise ConfigError("--out names one file: give the .dcp directory to consolidate")
    for src in sources:
        print(consolidate_checkpoint(src, args.out))
    return 0
