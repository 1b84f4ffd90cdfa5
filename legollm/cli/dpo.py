"""``legollm dpo --config FILE.yaml [key=value ...] [--lora SPEC] [--resume]``.

Direct Preference Optimization (full or LoRA) from a LegoLLM checkpoint or an HF
model directory, on chosen/rejected preference data; see
legollm/finetuning/dpo.py and configs/dpo/.
"""

from __future__ import annotations

import argparse

from legollm.cli.sft import add_finetuning_parser, run_finetuning_command


def register(sub: argparse._SubParsersAction) -> None:
    add_finetuning_parser(
        sub, "dpo", "preference tuning with DPO (full or LoRA) from a YAML config (key=value "
        "overrides)", "configs/dpo/", run,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from legollm.finetuning.dpo import DPOConfig, run_dpo

    return run_finetuning_command(args, DPOConfig, run_dpo)
