"""Run logging: metrics.jsonl, a progress bar, a loss/lr plot, MFU, optional TB / W&B.

Only rank 0 logs; the Trainer simply does not build a logger on other ranks.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from legollm.core.utils import atomic_path

# Dense bf16 peak FLOP/s by device name fragment (vendor data sheets). Used for MFU
# only; unknown devices (CPUs included) report no MFU rather than a made-up one.
PEAK_FLOPS = {
    "H200": 989e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40S": 362e12,
    "A10G": 125e12,
    "RTX 4090": 165e12,
    "RTX 3090": 71e12,
}


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, value in PEAK_FLOPS.items():
        if key in name:
            return value
    return None


def flops_per_token(n_params: int, n_layer: int, n_head: int, head_dim: int, seq: int) -> float:
    """Training FLOPs per token (PaLM appendix B): 6N for the matmuls plus attention scores."""
    return 6 * n_params + 12 * n_layer * n_head * head_dim * seq


class RunLogger:
    """Appends one JSON object per event to ``metrics.jsonl``; mirrors to TB / W&B if asked."""

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        tensorboard: bool = False,
        wandb: bool = False,
        wandb_project: str = "legollm",
        config: dict | None = None,
    ):
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / "metrics.jsonl"
        self._tb = self._wandb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._tb = SummaryWriter(str(self.run_dir / "tb"))
            except ImportError:
                print("tensorboard is not installed; skipping it (pip install tensorboard)")
        if wandb:
            try:
                import wandb as _wandb

                self._wandb = _wandb.init(project=wandb_project, config=config or {})
            except ImportError:
                print("wandb is not installed; skipping it (pip install wandb)")

    def log(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        step = record.get("step", 0)
        for key, value in record.items():
            if key == "step" or not isinstance(value, (int, float)):
                continue
            if self._tb is not None:
                self._tb.add_scalar(key, value, step)
        if self._wandb is not None:
            self._wandb.log(record, step=step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.is_file():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line]


def plot_metrics(
    metrics_path: str | os.PathLike[str],
    png_path: str | os.PathLike[str],
    extra: tuple[str, ...] = (),
) -> Path:
    """Loss (train and val, and val bits per byte when logged) and learning rate against
    step, as a PNG (written atomically); one more panel per ``extra`` key that the
    records hold (an RL run's reward, KL).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
    bpb = [(r["step"], r["val_bpb"]) for r in records if "val_bpb" in r]
    lrs = [(r["step"], r["lr"]) for r in records if "lr" in r]
    more = {k: [(r["step"], r[k]) for r in records if k in r] for k in extra}
    more = {k: points for k, points in more.items() if points}
    fig, (ax1, ax2, *axes) = plt.subplots(
        2 + len(more), 1, figsize=(7, 6 + 2 * len(more)), sharex=True, squeeze=True
    )
    if train:
        ax1.plot(*zip(*train, strict=True), label="train")
    if val:
        ax1.plot(*zip(*val, strict=True), "o-", label="val")
    ax1.set_ylabel("loss")
    ax1.legend(loc="upper left")
    if bpb:  # bits per byte: its own scale, on the right
        right = ax1.twinx()
        right.plot(*zip(*bpb, strict=True), "s--", color="tab:red", label="val bits/byte")
        right.set_ylabel("val bits per byte")
        right.legend(loc="upper right")
    ax1.grid(alpha=0.3)
    if lrs:
        ax2.plot(*zip(*lrs, strict=True), color="tab:green")
    ax2.set_ylabel("learning rate")
    for ax, (key, points) in zip(axes, more.items(), strict=True):
        ax.plot(*zip(*points, strict=True), ".-" if len(points) < 30 else "-")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
    (axes[-1] if axes else ax2).set_xlabel("step")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    try:
        with atomic_path(png_path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
    return Path(png_path)


class ProgressBar:
    """A tqdm bar over optimizer steps with loss, lr, tokens/s and MFU in its postfix."""

    def __init__(self, total: int, initial: int = 0, enabled: bool = True):
        self._bar = None
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)

    def update(self, n: int = 1, **postfix: Any) -> None:
        if self._bar is None:
            return
        if postfix:
            self._bar.set_postfix(postfix, refresh=False)
        self._bar.update(n)

    def write(self, msg: str) -> None:
        if self._bar is not None:
            self._bar.write(msg)
        else:
            print(msg)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


__all__ = [
    "PEAK_FLOPS",
    "ProgressBar",
    "RunLogger",
    "flops_per_token",
    "peak_flops",
    "plot_metrics",
    "read_metrics",
]
