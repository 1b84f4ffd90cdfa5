"""``legollm grpo --config FILE.yaml [key=value ...] [--lora SPEC] [--resume]`` and
``legollm grpo-task NAME --out DIR``.

GRPO with rewards a program computes (legollm/alignment/grpo.py, configs/grpo/).
``grpo-task`` writes what a run on a shipped task starts from: the task's solved
examples for ``legollm sft`` (``sft.json``) and a freshly initialised small
character-level model (``base.pt``) for that SFT to teach the format.
"""

from __future__ import annotations

import argparse

from legollm.cli.sft import add_finetuning_parser, run_finetuning_command


def register(sub: argparse._SubParsersAction) -> None:
    add_finetuning_parser(
        sub, "grpo", "reinforcement learning with GRPO and programmatic rewards from a YAML "
        "config (key=value overrides)", "configs/grpo/", run,
    )  # fmt: skip
    p = sub.add_parser(
        "grpo-task",
        help="write a GRPO task's SFT data and a fresh char-level base model to start from",
    )
    p.add_argument("name", help="the task: reverse or addition")
    p.add_argument(
        "args",
        nargs="*",
        metavar="key=value",
        help="the task's settings, e.g. digits=2 (addition), max_len=5 (reverse)",
    )
    p.add_argument("--out", required=True, help="folder for sft.json and base.pt")
    p.add_argument("--records", type=int, default=2000, help="solved examples in sft.json")
    p.add_argument("--seed", type=int, default=0, help="of the examples and the weights")
    p.add_argument("--n-layer", type=int, default=2)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--context", type=int, default=64, help="the model's context_length")
    p.set_defaults(func=run_task)


def run(args: argparse.Namespace) -> int:
    from legollm.alignment.grpo import GRPOConfig, run_grpo

    return run_finetuning_command(args, GRPOConfig, run_grpo)


def task_args(items: list[str]) -> dict[str, int]:
    """``["digits=2"]`` -> ``{"digits": 2}`` (every task setting is a whole number)."""
    from legollm.core.exceptions import ConfigError

    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not value.strip().lstrip("-").isdigit():
            raise ConfigError(f"task setting {item!r} must be key=INTEGER, e.g. digits=2")
        out[key.strip()] = int(value)
    return out


def run_task(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import torch

    from legollm.alignment.tasks import get_task, sft_records, task_tokenizer
    from legollm.core.utils import atomic_write
    from legollm.models import DecoderLM, ModelConfig
    from legollm.training.checkpoint import save_checkpoint

    task = get_task(args.name, task_args(args.args))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "sft.json") as f:
        json.dump(sft_records(task, args.records, args.seed), f, indent=1)
    tok = task_tokenizer()
    torch.manual_seed(args.seed)
    cfg = ModelConfig(vocab_size=tok.vocab_size, context_length=args.context,
                      n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd,
                      dropout=0.0)  # fmt: skip
    model = DecoderLM(cfg)
    save_checkpoint(out / "base.pt", {"model": model.state_dict(), "model_config": cfg.to_dict(),
                                      "tokenizer": tok.spec()})  # fmt: skip
    print(f"wrote {out / 'sft.json'} ({args.records} {args.name} examples) and {out / 'base.pt'} "
          f"({sum(p.numel() for p in model.parameters()):,} parameters, fresh)")  # fmt: skip
    return 0
