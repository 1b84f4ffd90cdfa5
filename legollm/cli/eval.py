"""``legollm eval MODEL --text FILE|DIR``: perplexity and bits per byte of a model on text.

MODEL is anything ``legollm generate`` accepts: a checkpoint (.pt or run directory)
or a Hugging Face model directory. The text is a .txt file, a folder of them, or the
split of a prepared data dir (``--data-dir``). Every token after the first is scored
once, in windows of the model's context that start every ``--stride`` tokens.

    legollm eval runs/demo/run --text ../shared/data/text/the_verdict.txt
    legollm eval path/to/gpt2 --data-dir data/prepared --split val --json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from legollm.cli.generate import add_model_args, load_from_args


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="perplexity and bits per byte of a checkpoint or HF model on text",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_args(p)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="a .txt file or a folder of .txt files")
    source.add_argument("--data-dir", help="a prepared data dir (data-prepare's output)")
    p.add_argument("--split", default="val", help="the --data-dir split to read (default: val)")
    p.add_argument("--stride", type=int, default=None,
                   help="tokens between window starts (default: half the context)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=8, help="windows per forward")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from legollm.evaluation import perplexity, perplexity_of_split

    loaded, _ = load_from_args(args)
    opts = dict(stride=args.stride, batch_size=args.batch_size, progress=not args.json)
    if args.data_dir:
        result = perplexity_of_split(loaded.model, loaded.tokenizer, args.data_dir, args.split,
                                     **opts)  # fmt: skip
    else:
        result = perplexity(loaded.model, loaded.tokenizer, Path(args.text), **opts)
    if args.json:
        print(json.dumps(result.to_dict()))
        return 0
    rows = [("tokens", f"{result.tokens:,}"), ("bytes", f"{result.bytes:,}"),
            ("nll / token", f"{result.nll:.4f}"), ("perplexity", f"{result.perplexity:.3f}"),
            ("bits / token", f"{result.bits_per_token:.4f}"),
            ("bits / byte", f"{result.bits_per_byte:.4f}")]  # fmt: skip
    for name, value in rows:
        print(f"{name:<13}{value:>14}")
    return 0
