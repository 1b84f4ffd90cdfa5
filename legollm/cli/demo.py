"""``legollm demo``: the main job on the embedded default corpus, offline.

For now it trains a byte-level BPE tokenizer on Python's own reference docs and
shows what it learned; as the training and generation layers land it grows into
the whole pipeline (tokenizer -> prepared data -> trained model -> sample).
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline offline on the embedded default corpus")
    p.add_argument(
        "--out", default="runs/demo", help="where to write the results (default: runs/demo)"
    )
    p.add_argument("--vocab-size", type=int, default=1024, help="tokenizer vocabulary size")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from legollm.data.corpus import default_corpus

    text = default_corpus()
    print(f"default corpus: Python reference docs, {len(text):,} characters")
    print("(the tokenizer, model and training layers are being built)")
    return 0
