"""``legollm sft --config FILE.yaml [key=value ...] [--lora r=16,alpha=32,targets=attn] [--resume]``.

Instruction fine-tuning (full or LoRA) from a LegoLLM checkpoint or an HF model
directory; see legollm/finetuning/sft.py and configs/sft/.
"""

from __future__ import annotations

import argparse

from legollm.cli.train import add_overwrite_flag


def register(sub: argparse._SubParsersAction) -> None:
    add_finetuning_parser(
        sub, "sft", "instruction fine-tuning (full or LoRA) from a YAML config (key=value "
        "overrides)", "configs/sft/", run,
    )  # fmt: skip


def add_finetuning_parser(sub, name: str, help: str, configs: str, func) -> None:
    """``legollm NAME --config FILE [key=value ...] [--lora SPEC] [--resume]`` (sft, dpo)."""
    p = sub.add_parser(name, help=help)
    p.add_argument("--config", required=True, help=f"a YAML {name} config (see {configs})")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="override fields, e.g. train.lr=1e-4 train.max_iters=100 format=alpaca",
    )
    p.add_argument(
        "--lora",
        metavar="SPEC",
        help="train LoRA adapters instead of every weight: r=16,alpha=32,dropout=0.05,"
        "targets=attn (presets attn, qv, mlp, all; join with +; or name patterns)",
    )
    p.add_argument("--resume", action="store_true", help="continue from train.run_dir/latest.pt")
    add_overwrite_flag(p, "train.run_dir")
    p.set_defaults(func=func)


def run(args: argparse.Namespace) -> int:
    from legollm.finetuning.sft import SFTConfig, run_sft

    return run_finetuning_command(args, SFTConfig, run_sft)


def run_finetuning_command(args: argparse.Namespace, config_cls, runner) -> int:
    from legollm.training.run import claim_run_dir

    cfg = config_cls.from_yaml(args.config, args.overrides)
    if args.lora:
        from legollm.peft import LoRAConfig

        base = cfg.lora or {}
        cfg.lora = {**base, **_explicit(LoRAConfig.parse(args.lora), args.lora)}
        cfg.lora_config()  # validate the merged settings
    claim_run_dir(cfg.train_config().run_dir, resume=args.resume, overwrite=args.overwrite)
    summary = runner(cfg, resume=args.resume)
    if summary["is_main"]:
        val, loss = summary["val_loss"], summary["train_loss"]
        print(
            f"done: step {summary['step']}"
            + (f", train loss {loss:.4f}" if loss is not None else "")
            + (f", val loss {val:.4f}" if val is not None else "")
            + f"; trained {summary['trainable']:,} of {summary['total']:,} parameters"
        )
        if summary.get("rollout"):  # ppo
            m = summary["rollout"]
            print(f"last rollout: reward {m['reward']:.4f}, KL to the start {m['kl']:.4f}, "
                  f"response length {m['response_length']:.1f}")  # fmt: skip
            print(f"policy:     {summary['policy']}")
        if summary.get("preference"):
            m = summary["preference"]
            print(
                f"val pairs: accuracy {m['accuracy']:.3f}, reward margin {m['margin']:.4f} "
                f"(chosen {m['reward_chosen']:.4f}, rejected {m['reward_rejected']:.4f})"
            )
        if summary.get("eval_reward") is not None:  # grpo
            print(
                f"reward: rollouts {summary['first_reward']:.3f} (first logged steps) -> "
                f"{summary['last_reward']:.3f} (last); greedy on held-out prompts "
                f"{summary['eval_reward']:.3f}"
            )
        print(f"checkpoint: {summary['checkpoint']}")
        for key in ("adapter", "responses", "plot"):
            if summary.get(key):
                print(f"{key + ':':<11} {summary[key]}")
    return 0


def _explicit(parsed, text: str) -> dict:
    """Only the keys the flag names, so it overrides the config's lora: key by key."""
    given = {item.partition("=")[0].strip() for item in text.split(",") if "=" in item}
    return {k: v for k, v in parsed.to_dict().items() if k in given}
