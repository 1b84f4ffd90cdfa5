"""Shared pieces of the training benchmarks: a nanoGPT-style loop written from its
train.py's description, and the same evaluation for both models.

nanoGPT is not on PyPI and is not vendored: fetch karpathy/nanoGPT, copy its
``model.py`` somewhere (e.g. /tmp/nanogpt/model.py) and pass ``--nanogpt-path``.
Without it, transformers' GPT2LMHeadModel (the same architecture) stands in for
nanoGPT's model in the same loop, and the script says so.
"""

from __future__ import annotations

import importlib.util
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def import_nanogpt(path: str):
    """Import nanoGPT's model.py from a folder (or the file itself)."""
    p = Path(path)
    if p.is_dir():
        p = p / "model.py"
    if not p.is_file():
        sys.exit(f"nanoGPT model.py not found at {p}; fetch karpathy/nanoGPT and copy model.py")
    spec = importlib.util.spec_from_file_location("nanogpt_model", p)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class HFGPT2(nn.Module):
    """transformers' GPT2LMHeadModel behind nanoGPT's interface: ``model(x, y)`` returns
    ``(logits, loss)`` and ``configure_optimizers`` decays only the >= 2-D weights."""

    def __init__(self, block_size: int, vocab_size: int, n_layer: int, n_head: int, n_embd: int):
        super().__init__()
        from transformers import GPT2Config, GPT2LMHeadModel

        cfg = GPT2Config(n_positions=block_size, vocab_size=vocab_size, n_layer=n_layer,
                         n_head=n_head, n_embd=n_embd, resid_pdrop=0.0, embd_pdrop=0.0,
                         attn_pdrop=0.0, bos_token_id=None, eos_token_id=None)  # fmt: skip
        self.hf = GPT2LMHeadModel(cfg)

    def forward(self, x, y=None):
        logits = self.hf(input_ids=x).logits
        loss = None if y is None else F.cross_entropy(logits.flatten(0, 1), y.flatten())
        return logits, loss

    def configure_optimizers(self, weight_decay, lr, betas, device_type):
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
                  {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]  # fmt: skip
        return torch.optim.AdamW(groups, lr=lr, betas=betas)


def anchor_gpt(nanogpt_path: str | None, **shape) -> tuple[nn.Module, str]:
    """nanoGPT's GPT from ``nanogpt_path`` with ``shape`` (block_size, vocab_size, n_layer,
    n_head, n_embd), or transformers' GPT-2 of that shape when no path is given;
    returns (model, its name for the printout)."""
    if nanogpt_path:
        ng = import_nanogpt(nanogpt_path)
        return ng.GPT(ng.GPTConfig(dropout=0.0, bias=True, **shape)), "nanoGPT"
    print("skipped nanoGPT: no --nanogpt-path given; transformers' GPT2LMHeadModel stands in "
          "for its model in the same loop", flush=True)  # fmt: skip
    return HFGPT2(**shape), "transformers GPT-2"


def nanogpt_lr(it: int, lr: float, min_lr: float, warmup: int, decay_iters: int) -> float:
    # nanoGPT's get_lr: linear warmup, cosine to min_lr, then flat
    if it < warmup:
        return lr * (it + 1) / (warmup + 1)
    if it > decay_iters:
        return min_lr
    ratio = (it - warmup) / (decay_iters - warmup)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (lr - min_lr)


def nanogpt_train(
    model,
    train_bin: Path,
    *,
    iters,
    batch_size,
    block_size,
    lr,
    min_lr,
    warmup,
    weight_decay,
    beta1,
    beta2,
    grad_clip,
    device="cpu",
    ctx=None,
    accum=1,
    seed=1337,
    next_batch=None,
):
    """nanoGPT's train.py inner loop: memmap get_batch, AdamW from configure_optimizers,
    clip, step. Returns (seconds, last loss).

    ``next_batch`` (a callable returning (x, y)) replaces nanoGPT's ``torch.randint``
    sampling, e.g. to train on exactly the batches another run saw."""
    import contextlib

    ctx = ctx or contextlib.nullcontext()
    torch.manual_seed(seed)
    dev_type = "cuda" if "cuda" in str(device) else "cpu"
    opt = model.configure_optimizers(weight_decay, lr, (beta1, beta2), dev_type)

    def get_batch():
        data = np.memmap(train_bin, dtype=np.uint16, mode="r")
        ix = torch.randint(len(data) - block_size, (batch_size,))
        x = torch.stack([torch.from_numpy(data[i : i + block_size].astype(np.int64)) for i in ix])
        y = torch.stack(
            [torch.from_numpy(data[i + 1 : i + 1 + block_size].astype(np.int64)) for i in ix]
        )
        if dev_type == "cuda":
            return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(
                device, non_blocking=True
            )
        return x, y

    if next_batch is not None:
        get_batch = next_batch
    model.train()
    x, y = get_batch()
    t0 = time.perf_counter()
    for it in range(iters):
        for g in opt.param_groups:
            g["lr"] = nanogpt_lr(it, lr, min_lr, warmup, iters)
        for _ in range(accum):
            with ctx:
                _, loss = model(x, y)
                loss = loss / accum
            x, y = get_batch()
            loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
    last = loss.item() * accum
    if dev_type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, last


@torch.no_grad()
def val_loss(forward_loss, loader, n_batches: int) -> float:
    """Mean token loss over the same ``n_batches`` fixed val batches for any model."""
    total = 0.0
    for x, y in loader.eval_batches(n_batches):
        total += forward_loss(x, y)
    return total / n_batches
