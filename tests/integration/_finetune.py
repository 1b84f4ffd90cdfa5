"""Helpers the fine-tuning command tests (sft, dpo) share."""

import json
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]  # the repository


def write_config(tmp_path, **kw):
    """A small fine-tuning config at tmp_path/sft.yaml (data.json, run/), ``kw`` on top."""
    d = {
        "data": str(tmp_path / "data.json"),
        "max_new_tokens": 6,
        "max_test_responses": 3,
        "test_fraction": 0.1,
        "val_fraction": 0.1,
        "train": {"run_dir": str(tmp_path / "run"), "batch_size": 4, "max_iters": 4,
                  "lr_decay_iters": 8, "lr": 1e-2, "min_lr": 1e-3, "warmup_iters": 1,
                  "eval_interval": 4, "eval_iters": 2, "log_interval": 1, "progress": False,
                  "plot": False, "device": "cpu", "precision": "fp32"},
    }  # fmt: skip
    d.update(kw)
    p = tmp_path / "sft.yaml"
    p.write_text(yaml.safe_dump(d))
    return p


def _ascii(records):
    return [{k: v.encode("ascii", "ignore").decode() for k, v in r.items()} for r in records]


def _losses(run):
    recs = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in recs if "loss" in r}
