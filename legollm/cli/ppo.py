"""``legollm ppo --config FILE.yaml [key=value ...] [--lora SPEC] [--resume]``.

RLHF with PPO: the policy answers prompts from an instruction file, a reward model
(``legollm reward-model``) scores the answers, and clipped policy and value losses
move the policy towards higher reward while a KL penalty keeps it near where it
started; see legollm/alignment/ppo.py and configs/ppo/.
"""

from __future__ import annotations

import argparse

from legollm.cli.sft import add_finetuning_parser, run_finetuning_command


def register(sub: argparse._SubParsersAction) -> None:
    add_finetuning_parser(
        sub, "ppo", "RLHF with PPO against a reward model (full or LoRA) from a YAML config "
        "(key=value overrides)", "configs/ppo/", run,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from legollm.alignment.ppo import PPOConfig, run_ppo

    return run_finetuning_command(args, PPOConfig, run_ppo)
