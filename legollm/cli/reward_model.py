"""``legollm reward-model --config FILE.yaml [key=value ...] [--lora SPEC] [--resume]``.

A reward model (a scalar head on the last real token) trained with the Bradley-Terry
loss on chosen/rejected pairs, the same data as DPO; see
legollm/alignment/reward.py and configs/reward_model/.
"""

from __future__ import annotations

import argparse

from legollm.cli.sft import add_finetuning_parser, run_finetuning_command


def register(sub: argparse._SubParsersAction) -> None:
    add_finetuning_parser(
        sub, "reward-model", "train a reward model on preference pairs (full or LoRA) from a "
        "YAML config (key=value overrides)", "configs/reward_model/", run,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from legollm.alignment.reward import RewardConfig, run_reward_model

    return run_finetuning_command(args, RewardConfig, run_reward_model)
