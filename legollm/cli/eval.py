"""``legollm eval MODEL --text FILE|DIR | --choices FILE.jsonl``: measure a model.

MODEL is anything ``legollm generate`` accepts: a checkpoint (.pt or run directory)
or a Hugging Face model directory.

--text / --data-dir: perplexity and bits per byte on a .txt file, a folder of them,
or the split of a prepared data dir. Every token after the first is scored once, in
windows of the model's context that start every ``--stride`` tokens.

--choices: multiple-choice accuracy (acc, acc_norm) on JSON lines of plain
(context, choices, gold), HellaSwag, ARC or MMLU shape (see
legollm.evaluation.choices); --fields maps other field names onto the plain ones.
Without a source, the text shipped with LegoLLM (legollm/evaluation/data) is read.

    legollm eval runs/demo/run
    legollm eval runs/demo/run --choices legollm/evaluation/data/choices.jsonl --json
    legollm eval path/to/gpt2 --data-dir data/prepared --split val --json
    legollm eval path/to/gpt2 --choices arc.jsonl --limit 100 --output arc_results.jsonl
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
    source = p.add_mutually_exclusive_group()
    source.add_argument("--text", help="a .txt file or a folder of .txt files "
                        "(default: the held-out text shipped with LegoLLM)")  # fmt: skip
    source.add_argument("--data-dir", help="a prepared data dir (data-prepare's output)")
    source.add_argument("--choices", help="a JSONL file of multiple-choice questions")
    p.add_argument("--limit", type=int, default=None, help="--choices: the first N questions")
    p.add_argument("--output", help="--choices: write per-question results here (JSONL)")
    p.add_argument("--fields", type=_field_map, default=None, metavar="OURS=THEIRS,...",
                   help="--choices: read field THEIRS as OURS (context, choices, gold)")  # fmt: skip
    p.add_argument("--split", default="val", help="the --data-dir split to read (default: val)")
    p.add_argument("--stride", type=int, default=None,
                   help="tokens between window starts (default: half the context)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=8, help="windows (or choices) per forward")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _field_map(text: str) -> dict[str, str]:
    """``context=prompt,gold=answer`` -> {"context": "prompt", "gold": "answer"}."""
    pairs = [item.partition("=") for item in text.split(",") if item]
    if not pairs or any(not ours or not sep or not theirs for ours, sep, theirs in pairs):
        raise argparse.ArgumentTypeError(f"expected OURS=THEIRS,... got {text!r}")
    unknown = {ours for ours, _, _ in pairs} - {"context", "choices", "gold"}
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown field(s) {sorted(unknown)}: "
                                         "map onto context, choices, gold")  # fmt: skip
    return {ours: theirs for ours, _, theirs in pairs}


def run(args: argparse.Namespace) -> int:
    from legollm.core.exceptions import ConfigError

    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {args.limit}")
    loaded, _ = load_from_args(args)
    if args.choices:
        return _run_choices(args, loaded)
    return _run_text(args, loaded)


def _run_text(args: argparse.Namespace, loaded) -> int:
    from legollm.evaluation import perplexity, perplexity_of_split
    from legollm.evaluation.data import HELD_OUT_TEXT

    opts = dict(stride=args.stride, batch_size=args.batch_size, progress=not args.json)
    if args.data_dir:
        result = perplexity_of_split(loaded.model, loaded.tokenizer, args.data_dir, args.split,
                                     **opts)  # fmt: skip
    else:
        text = Path(args.text) if args.text else HELD_OUT_TEXT
        result = perplexity(loaded.model, loaded.tokenizer, text, **opts)
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


def _run_choices(args: argparse.Namespace, loaded) -> int:
    from legollm.core.utils import atomic_write
    from legollm.evaluation import evaluate_choices, read_records

    records = read_records(args.choices, field_map=args.fields, limit=args.limit)
    result = evaluate_choices(loaded.model, loaded.tokenizer, records,
                              batch_size=args.batch_size, progress=not args.json)  # fmt: skip
    if args.output:
        with atomic_write(args.output, encoding="utf-8") as f:
            for i, example in enumerate(result.examples):
                f.write(json.dumps({"index": i, **example}) + "\n")
    if args.json:
        print(json.dumps(result.summary()))
        return 0

    def pm(stderr):
        return f" ± {stderr:.4f}" if stderr is not None else ""

    print(f"{'questions':<10}{result.n:>8}")
    print(f"{'acc':<10}{result.acc:>8.4f}{pm(result.acc_stderr)}")
    print(f"{'acc_norm':<10}{result.acc_norm:>8.4f}{pm(result.acc_norm_stderr)}")
    return 0
