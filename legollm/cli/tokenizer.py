"""``legollm tokenizer train|encode|decode``: train a BPE tokenizer and inspect it."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from legollm.core.exceptions import TokenizerError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tokenizer", help="train, encode and decode with BPE tokenizers")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    t = actions.add_parser("train", help="train a byte-level BPE tokenizer on text files")
    t.add_argument("--input", nargs="+", required=True, metavar="FILE", help="UTF-8 text files")
    t.add_argument("--vocab-size", type=int, required=True, help="256 bytes + number of merges")
    t.add_argument(
        "--output", required=True, help="output path (.json; a .vocab file is written beside it)"
    )
    t.add_argument("--pattern", default="gpt4", help="split pattern: gpt2, gpt4 or a regex")
    t.add_argument(
        "--special",
        nargs="*",
        default=["<|endoftext|>"],
        metavar="TOKEN",
        help="special tokens, given ids after the merges (default: <|endoftext|>)",
    )
    t.set_defaults(func=train)

    for name, helptext in (("encode", "text -> ids"), ("decode", "ids -> text")):
        e = actions.add_parser(name, help=helptext)
        src = e.add_mutually_exclusive_group(required=True)
        src.add_argument("--tokenizer", help="a tokenizer .json saved by LegoLLM")
        src.add_argument(
            "--gpt2", metavar="DIR", help="a folder with GPT-2's encoder.json and vocab.bpe"
        )
        e.add_argument("text", nargs="*", help="text (encode) or ids (decode); default: stdin")
        e.set_defaults(func=encode if name == "encode" else decode)


def _load(args):
    from legollm.core.tokenization import RegexBPETokenizer

    if args.gpt2:
        d = Path(args.gpt2)
        return RegexBPETokenizer.from_gpt2_files(d / "encoder.json", d / "vocab.bpe")
    return RegexBPETokenizer.load(args.tokenizer)


def train(args) -> int:
    from legollm.core.tokenization import RegexBPETokenizer
    from legollm.core.tokenization.patterns import PATTERNS
    from legollm.core.tokenization.training import VocabularyShortWarning
    from legollm.core.utils import check_writable_dir, read_file

    check_writable_dir(Path(args.output).parent, "the folder of --output")  # before training
    text = "\n\n".join(read_file(f) for f in args.input)
    tok = RegexBPETokenizer(pattern=PATTERNS.get(args.pattern, args.pattern))
    print(f"training on {len(text):,} characters from {len(args.input)} file(s)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", VocabularyShortWarning)
        tok.train(text, args.vocab_size, verbose=True)
    for w in caught:  # a vocabulary short of the one asked for, said on one line
        print(f"warning: {w.message}", file=sys.stderr)
    # special tokens follow the learned ones: no unused ids when the vocab came up short
    tok.register_special_tokens({s: tok.vocab_size + i for i, s in enumerate(args.special)})
    path = tok.save(args.output)
    longest = sorted(tok.vocab.values(), key=len, reverse=True)[:8]
    print("longest tokens:", ", ".join(repr(b.decode("utf-8", "replace")) for b in longest))
    sample = text[:2000]
    print(
        f"compression on the first 2,000 chars: {len(sample.encode()) / len(tok.encode(sample)):.2f} bytes/token"
    )
    print(f"wrote {path} and {path.with_suffix('.vocab')}")
    return 0


def encode(args) -> int:
    text = " ".join(args.text) if args.text else sys.stdin.read()
    print(" ".join(map(str, _load(args).encode(text))))
    return 0


def decode(args) -> int:
    raw = args.text if args.text else sys.stdin.read().split()
    try:
        ids = [int(x) for x in raw]
    except ValueError as e:
        raise TokenizerError(f"decode takes integer ids, got {e}") from e
    print(_load(args).decode(ids))
    return 0
