"""Entry point of the ``legollm`` command.

Each area of the project owns one module here with a ``register(subparsers)``
function that adds its subcommand and sets ``func`` on the parsed arguments.
Modules import their heavy dependencies (torch) inside the handlers, so
``legollm --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from legollm import __version__
from legollm.core.exceptions import LegoLLMError

DEBUG_ENV = "LEGOLLM_DEBUG"

# Subcommand modules, in the order they appear in ``legollm --help``.
SUBCOMMAND_MODULES = [
    "legollm.cli.demo",
    "legollm.cli.tokenizer",
    "legollm.cli.data",
    "legollm.cli.train",
    "legollm.cli.estimate",
    "legollm.cli.consolidate",
    "legollm.cli.generate",
    "legollm.cli.chat",
    "legollm.cli.serve",
    "legollm.cli.eval",
    "legollm.cli.sft",
    "legollm.cli.dpo",
    "legollm.cli.reward_model",
    "legollm.cli.ppo",
    "legollm.cli.grpo",
    "legollm.cli.export",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="legollm",
        description="LegoLLM: build language models one swappable piece at a time.",
    )
    parser.add_argument("--version", action="version", version=f"legollm {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the full traceback of an error instead of one line (or set {DEBUG_ENV}=1)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def run(handler, args) -> int:
    """Call a subcommand handler, turning project errors into one line on stderr.

    An OSError that escaped the up-front checks (a disk that filled up, a folder made
    read-only mid-run) is reported the same way, naming the file. ``--debug`` (or
    ``LEGOLLM_DEBUG=1``) lets every error through with its traceback.
    """
    debug = getattr(args, "debug", False) or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        result = handler(args)
    except (LegoLLMError, OSError) as e:
        if debug:
            raise
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


def _one_line(e: Exception) -> str:
    if isinstance(e, LegoLLMError) or not e.strerror:
        return str(e)
    where = f"{e.filename} -> {e.filename2}" if e.filename2 else e.filename
    return (
        f"{e.strerror}" + (f": {where}" if where else "")
        + f" (check the path and its permissions; {DEBUG_ENV}=1 shows the traceback)"
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0 if args.command is None else 2
    return run(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
