"""``legollm demo``: the whole pipeline on the embedded default corpus, offline.

1. Train a byte-level BPE tokenizer on Python's own reference docs (pydoc_data).
2. Prepare train.bin / val.bin + meta.json with it.
3. Train a small GPT from scratch (progress bar, metrics.jsonl, loss plot, checkpoint).
4. Generate a sample from the trained model and say where everything was written.

Sized to finish in under 3 minutes on 2 CPU cores; ``--max-iters`` trades time for quality.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline offline on the embedded default corpus")
    p.add_argument(
        "--out", default="runs/demo", help="where to write the results (default: runs/demo)"
    )
    p.add_argument("--vocab-size", type=int, default=512, help="tokenizer vocabulary size")
    p.add_argument("--max-iters", type=int, default=600, help="training steps")
    p.add_argument(
        "--tokenizer-chars",
        type=int,
        default=150_000,
        help="corpus characters the tokenizer trains on",
    )
    p.add_argument("--prompt", default="The ", help="start of the generated sample")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(func=run)


def _write_corpus(folder: Path) -> list[str]:
    """One file per document, so prepare splits val/train by whole documents."""
    from legollm.core.utils import atomic_write
    from legollm.data.corpus import default_documents

    docs = default_documents()
    folder.mkdir(parents=True, exist_ok=True)
    for i, doc in enumerate(docs):
        with atomic_write(folder / f"{i:04d}.txt") as f:
            f.write(doc)
    return docs


def _train_tokenizer(docs: list[str], out: Path, vocab_size: int, chars: int) -> dict:
    """Train a byte-level BPE tokenizer and return the prepare fields that point at it."""
    from legollm.core.tokenization import GPT4_SPLIT_PATTERN, RegexBPETokenizer

    text = "\n\n".join(docs)[:chars]
    tok = RegexBPETokenizer(pattern=GPT4_SPLIT_PATTERN)
    tok.train(text, vocab_size)
    tok.register_special_tokens({"<|endoftext|>": vocab_size})
    prefix = out / "tokenizer" / "demo"
    prefix.parent.mkdir(parents=True, exist_ok=True)
    path = tok.save(prefix)
    return {"tokenizer": "legollm", "tokenizer_path": str(path)}


def _sample(model, tokenizer, prompt: str, new_tokens: int, seed: int = 0) -> str:
    import torch

    from legollm.generation import generate

    ids = torch.tensor([tokenizer.encode_ordinary(prompt) or [0]], dtype=torch.long)
    out = generate(model, ids, new_tokens, temperature=0.8, top_k=40, seed=seed)
    return tokenizer.decode(out[0].tolist())


def run(args: argparse.Namespace) -> int:
    import torch

    from legollm.core.tokenization.specs import load_tokenizer
    from legollm.data.meta import read_meta
    from legollm.data.prepare import prepare_dataset
    from legollm.training.config import TrainConfig
    from legollm.training.run import build_trainer

    t0 = time.perf_counter()
    out = Path(args.out)
    torch.set_num_threads(min(torch.get_num_threads(), 4))
    print("[1/4] tokenizer: byte-level BPE on the Python reference docs (pydoc_data)")
    docs = _write_corpus(out / "corpus")
    tok_fields = _train_tokenizer(docs, out, args.vocab_size, args.tokenizer_chars)
    print(f"      {len(docs)} documents, {sum(map(len, docs)):,} characters")

    print("[2/4] prepare: train.bin / val.bin + meta.json")
    data = prepare_dataset(
        inputs=[str(out / "corpus")],
        output_dir=str(out / "data"),
        val_fraction=0.05,
        seed=1337,
        num_workers=1,
        **tok_fields,
    )

    print("[3/4] train: a 4-layer GPT from scratch")
    cfg = TrainConfig(
        data_dir=str(data),
        run_dir=str(out / "run"),
        model={
            "n_layer": 4,
            "n_head": 4,
            "n_embd": 128,
            "norm": "layernorm",
            "position": "learned",
            "ffn": "gelu_mlp",
            "dropout": 0.0,
            "tie_embeddings": True,
        },
        batch_size=16,
        block_size=128,
        max_iters=args.max_iters,
        lr=2e-3,
        min_lr=2e-4,
        warmup_iters=50,
        beta2=0.99,
        eval_interval=max(1, args.max_iters // 3),
        eval_iters=10,
        log_interval=10,
        progress=not args.no_progress,
        device="cpu",
    )
    trainer = build_trainer(cfg)
    summary = trainer.fit()

    print("[4/4] sample:")
    tokenizer = load_tokenizer(read_meta(data)["tokenizer"])
    model = trainer.raw_model.eval()
    print("-" * 60)
    print(_sample(model, tokenizer, args.prompt, 120))
    print("-" * 60)
    print(
        f"val loss {summary['val_loss']:.3f} after {summary['step']} steps "
        f"({time.perf_counter() - t0:.0f} s in all)"
    )
    print(f"corpus:     {out / 'corpus'}")
    print(f"data:       {data}")
    print(f"checkpoint: {trainer.run_dir / 'latest.pt'} (best: best.pt)")
    print(f"metrics:    {trainer.run_dir / 'metrics.jsonl'}")
    print(f"loss plot:  {summary['plot']}")
    print(f"more text:  legollm generate {trainer.run_dir} --prompt {args.prompt!r}")
    return 0
