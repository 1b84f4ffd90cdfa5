"""Entry point of the ``legollm`` command.

Each area of the project owns one module here with a ``register(subparsers)``
function that adds its subcommand and sets ``func`` on the parsed arguments.
Modules import their heavy dependencies (torch) inside the handlers, so
``legollm --help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from legollm import __version__
from legollm.core.exceptions import LegoLLMError

# Subcommand modules, in the order they appear in ``legollm --help``.
SUBCOMMAND_MODULES = [
    "legollm.cli.demo",
    "legollm.cli.tokenizer",
    "legollm.cli.data",
    "legollm.cli.train",
    "legollm.cli.generate",
    "legollm.cli.chat",
    "legollm.cli.sft",
    "legollm.cli.dpo",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="legollm",
        description="LegoLLM: build language models one swappable piece at a time.",
    )
    parser.add_argument("--version", action="version", version=f"legollm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that area has not landed yet
                continue
            raise
        module.register(sub)
    return parser


def run(handler, args) -> int:
    """Call a subcommand handler, turning project errors into one line on stderr."""
    try:
        result = handler(args)
    except LegoLLMError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0 if args.command is None else 2
    return run(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
