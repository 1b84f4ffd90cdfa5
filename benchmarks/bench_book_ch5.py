"""LegoLLM against LLMs-from-scratch's own chapter-5 code: loss curves and tokens/s.

Both sides train the book's GPT on The Verdict with the book's recipe
(configs/train/book_ch5_verdict.yaml): the book's ``GPTModel`` and ``GPTDatasetV1``,
imported from a checkout of rasbt/LLMs-from-scratch (``--book-path``), in a plain loop
(AdamW over ``model.parameters()``, cross-entropy); and LegoLLM's ``DecoderLM``
(``init: pytorch``) on its Trainer with the ``epochs`` loader. Built from the same seed,
the two models start from identical weights (checked and printed), and both walk the same
batches: the book's windows go through ``DataLoader(shuffle=True, drop_last=True)`` with
a seeded generator, whose order LegoLLM's epochs loader draws too. Text is split as the
book splits it (the first 90% of the characters train), tokenised with GPT-2's files
from ../shared/data/gpt2. Dropout masks come from different kernels, so with
``--dropout 0`` the curves agree to float precision and with the book's 0.1 in shape.

    git clone https://github.com/rasbt/LLMs-from-scratch /tmp/LLMs-from-scratch
    flock /tmp/legollm-bench.lock uv run python benchmarks/bench_book_ch5.py \\
        --book-path /tmp/LLMs-from-scratch --epochs 1
    uv run python benchmarks/bench_book_ch5.py --smoke   # tiny and quick; no book: LegoLLM only
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
BOOK_CODE = Path("ch05") / "01_main-chapter-code"  # previous_chapters.py: GPTModel, GPTDatasetV1
SMOKE_MODEL = dict(n_layer=2, n_head=2, n_embd=64)


def gpt2_encoding():
    """tiktoken's "gpt2" built from OpenAI's files on disk (no download)."""
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext.openai_public import r50k_pat_str

    gpt2 = SHARED / "gpt2"
    ranks = data_gym_to_mergeable_bpe_ranks(str(gpt2 / "vocab.bpe"), str(gpt2 / "encoder.json"))
    specials = {"<|endoftext|>": 50256}
    return tiktoken.Encoding("gpt2", pat_str=r50k_pat_str, mergeable_ranks=ranks,
                             special_tokens=specials)  # fmt: skip


def recipe(args):
    """The book config, shrunk for --smoke, with this run's length and dropout."""
    from legollm.training.config import TrainConfig

    cfg = TrainConfig.from_yaml(ROOT / "configs/train/book_ch5_verdict.yaml")
    model = {**cfg.model, "dropout": args.dropout}
    block = cfg.block_size
    if args.smoke:
        model, block = {**model, **SMOKE_MODEL}, 32
    return cfg, model, block


def lego_run(cfg, model_fields, block, train_ids, steps, args, run_dir):
    """LegoLLM's Trainer on the epochs loader; returns (initial weights, losses, seconds)."""
    from dataclasses import replace

    from legollm.data.loader import TokenDataLoader
    from legollm.models import DecoderLM, ModelConfig
    from legollm.training.trainer import Trainer

    path = Path(run_dir) / "train.bin"
    np.asarray(train_ids, dtype=np.uint16).tofile(path)
    cfg = replace(cfg, block_size=block, loader_stride=block, epochs=None, max_iters=steps,
                  eval_iters=0, log_interval=1, progress=False, plot=False,
                  save_checkpoints=False, device=args.device, run_dir=str(run_dir))  # fmt: skip
    torch.manual_seed(cfg.seed)
    model = DecoderLM(ModelConfig(**{**model_fields, "context_length": block}))
    initial = [p.detach().clone() for n, p in model.named_parameters() if "norm" not in n]
    loader = TokenDataLoader(path, cfg.batch_size, block, mode="epochs", stride=block,
                             seed=cfg.seed, dtype="uint16", device=args.device)  # fmt: skip
    trainer = Trainer(model, cfg, loader, run_dir=run_dir)
    torch.manual_seed(cfg.seed + 1)  # the dropout masks
    t0 = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - t0
    return initial, [r["loss"] for r in trainer.history if "loss" in r], seconds


def book_run(cfg, model_fields, block, train_text, enc, steps, args):
    """The book's model and dataset in a plain loop; returns (initial weights, losses, s)."""
    sys.path.insert(0, str(Path(args.book_path) / BOOK_CODE))
    from previous_chapters import GPTDatasetV1, GPTModel

    m = model_fields
    book_cfg = {"vocab_size": m["vocab_size"], "context_length": block, "emb_dim": m["n_embd"],
                "n_heads": m["n_head"], "n_layers": m["n_layer"], "drop_rate": m["dropout"],
                "qkv_bias": m["qkv_bias"]}  # fmt: skip
    torch.manual_seed(cfg.seed)
    model = GPTModel(book_cfg).to(args.device)
    initial = [p.detach().clone() for n, p in model.named_parameters() if "norm" not in n]
    windows = GPTDatasetV1(train_text, enc, block, block)
    g = torch.Generator().manual_seed(cfg.seed)
    loader = torch.utils.data.DataLoader(windows, batch_size=cfg.batch_size, shuffle=True,
                                         drop_last=True, generator=g)  # fmt: skip
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay,
                                  betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)  # fmt: skip
    model.train()
    losses: list[float] = []
    torch.manual_seed(cfg.seed + 1)
    t0 = time.perf_counter()
    while len(losses) < steps:
        for x, y in loader:
            x, y = x.to(args.device), y.to(args.device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            if len(losses) == steps:
                break
    return initial, losses, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--book-path", help="a checkout of rasbt/LLMs-from-scratch")
    ap.add_argument("--epochs", type=float, default=1.0, help="how long to train (may be < 1)")
    ap.add_argument("--dropout", type=float, default=0.1, help="the book's is 0.1")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--smoke", action="store_true", help="a tiny model on a slice, 4 steps")
    args = ap.parse_args(argv)
    if not (SHARED / "text" / "the_verdict.txt").is_file() or not (SHARED / "gpt2").is_dir():
        print(f"skipped: The Verdict or the GPT-2 files are not under {SHARED}")
        return 0
    book = args.book_path and (Path(args.book_path) / BOOK_CODE / "previous_chapters.py")
    if not (book and book.is_file()):
        where = f"under {args.book_path}" if args.book_path else "(no --book-path given)"
        print(f"book side skipped: no {BOOK_CODE}/previous_chapters.py {where}")
        args.book_path = None

    cfg, model_fields, block = recipe(args)
    text = (SHARED / "text" / "the_verdict.txt").read_text(encoding="utf-8")
    if args.smoke:
        text = text[:4000]
    train_text = text[: int(0.9 * len(text))]  # the book's split, by characters
    enc = gpt2_encoding()
    train_ids = enc.encode(train_text, allowed_special={"<|endoftext|>"})
    per_epoch = len(range(0, len(train_ids) - block, block)) // cfg.batch_size
    steps = 4 if args.smoke else max(1, round(args.epochs * per_epoch))
    tokens = steps * cfg.batch_size * block
    print(f"{steps} steps of {cfg.batch_size} x {block} tokens ({per_epoch} per epoch), "
          f"dropout {args.dropout}, {args.device}")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="legollm_book_") as tmp:
        lego_init, lego, lego_s = lego_run(cfg, model_fields, block, train_ids, steps, args, tmp)
    book_losses, book_s = None, None
    if args.book_path:
        book_init, book_losses, book_s = book_run(
            cfg, model_fields, block, train_text, enc, steps, args
        )
        same = len(book_init) == len(lego_init) and all(
            a.shape == b.shape and torch.equal(a.cpu(), b.cpu())
            for a, b in zip(book_init, lego_init, strict=False)
        )
        print(f"initial weights identical: {same}")

    print("\n| step | LegoLLM loss | book loss | difference |\n|---:|---:|---:|---:|")
    for i, loss in enumerate(lego):
        ref = book_losses[i] if book_losses else None
        cells = ("-", "-") if ref is None else (f"{ref:.5f}", f"{loss - ref:+.2e}")
        print(f"| {i + 1} | {loss:.5f} | {cells[0]} | {cells[1]} |")
    print(f"\nLegoLLM: {tokens / lego_s:,.0f} tokens/s")
    if book_s is not None:
        print(f"book:    {tokens / book_s:,.0f} tokens/s (LegoLLM / book = {book_s / lego_s:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
