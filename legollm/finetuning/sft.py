"""Supervised fine-tuning on instruction data, on the project's Trainer.

The flow of ``legollm sft --config FILE.yaml``:

1. Load the starting model: a LegoLLM checkpoint (``.pt`` or a run dir) or a
   Hugging Face model directory, and its tokenizer (the checkpoint's spec, the
   ``tokenizer.json`` / ``tokenizer.model`` / ``vocab.json`` + ``merges.txt`` beside the
   HF weights, or ``tokenizer:`` in the config). Its files are copied into
   ``run_dir/tokenizer/``, so ``legollm generate RUN_DIR`` works without the base.
2. Read the records, split them train/val/test with a fixed seed, render them with
   the prompt format, truncate to the context (``max_length``).
3. Optionally inject LoRA adapters (``lora:`` or ``--lora r=16,alpha=32,targets=attn``):
   the base is frozen, so the optimizer only holds the adapters.
4. Train with :class:`~legollm.training.trainer.Trainer`: dynamically padded batches,
   loss summed over response tokens and divided by the real token count of the whole
   accumulated step. Checkpoints (``latest.pt``/``best.pt``) resume exactly, LoRA included.
5. Write ``adapter/`` (LoRA only) and ``test_responses.json``: the model's greedy answer
   to every test record, next to the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from legollm.finetuning.dataset import (
    Example,
    InstructionLoader,
    load_records,
    pack_examples,
    split_records,
    tokenize_records,
)
from legollm.finetuning.formats import PromptFormat
from legollm.finetuning.runner import (
    RESPONSES_NAME,
    FinetuneConfig,
    FinetuneTrainer,
    finish_trainer,
    generate_responses,
    run_finetuning,
    setup_finetuning,
)


@dataclass
class SFTConfig(FinetuneConfig):
    """An SFT run: the fields of :class:`~legollm.finetuning.runner.FinetuneConfig`."""

    kind: ClassVar[str] = "sft"


def prepare_data(
    cfg: SFTConfig, fmt: PromptFormat, tokenizer: Any, max_length: int
) -> tuple[list[Example], list[Example], list[dict[str, str]]]:
    """``(train, val, test_records)``: tokenized train/val examples and the raw test records."""
    records = load_records(cfg.data, cfg.fields or None, cfg.on_bad_record)
    train_r, val_r, test_r = split_records(
        records, cfg.val_fraction, cfg.test_fraction, cfg.split_seed
    )
    train, _ = tokenize_records(train_r, fmt, tokenizer, max_length, cfg.train_on)
    val = tokenize_records(val_r, fmt, tokenizer, max_length, cfg.train_on)[0] if val_r else []
    return train, val, test_r


class SFTTrainer(FinetuneTrainer):
    """SFT's loss is the Trainer's own: next-token cross-entropy over the trained
    (response) tokens, averaged over the real tokens of the whole accumulated step."""


def build_sft_trainer(cfg: SFTConfig, *, resume: bool = False) -> SFTTrainer:
    """Everything before the first step: model, tokenizer, data, LoRA, Trainer."""
    run = setup_finetuning(cfg, prepare_data)
    train = pack_examples(run.train, run.max_length) if cfg.pack else run.train
    run.n_sequences = len(train)
    bs = run.train_config.batch_size
    train_loader = InstructionLoader(train, bs, shuffle=True, seed=run.train_config.seed,
                                     sort_by_length=cfg.sort_by_length, **run.loader_args())  # fmt: skip
    val_loader = (
        InstructionLoader(run.val, bs, shuffle=False, **run.loader_args()) if run.val else None
    )
    mean_len = sum(len(ex.input_ids) for ex in train) / len(train)  # real tokens, not block_size
    return finish_trainer(SFTTrainer, run, train_loader, val_loader, resume, mean_len)


def run_sft(cfg: SFTConfig, *, resume: bool = False) -> dict[str, Any]:
    """Fine-tune as ``cfg`` says; returns the Trainer's summary plus the written paths."""
    return run_finetuning(cfg, build_sft_trainer, resume=resume)


__all__ = [
    "RESPONSES_NAME",
    "SFTConfig",
    "SFTTrainer",
    "build_sft_trainer",
    "generate_responses",
    "prepare_data",
    "run_sft",
]
