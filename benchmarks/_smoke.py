"""``--smoke``: every benchmark runs end to end at tiny sizes in a few seconds.

A benchmark that is only run before a release rots: a renamed function or a new
required field breaks it, and nobody notices until the figures are wanted.
tests/test_benchmarks_smoke.py runs each ``benchmarks/bench_*.py --smoke`` in CI
and checks that it exits 0 and prints its ratio line. The figures of a smoke run
mean nothing; anchors that are not installed (a nanoGPT or minbpe checkout, trl)
are skipped with a line that says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys


def parse_args(ap: argparse.ArgumentParser, smoke: dict, argv: list[str] | None = None):
    """Add ``--smoke`` to ``ap`` and parse; with it, ``smoke`` replaces the defaults.

    Flags given on the command line still win over the smoke sizes.
    """
    ap.add_argument(
        "--smoke", action="store_true", help="tiny sizes, a few seconds: checks the script runs"
    )
    argv = sys.argv[1:] if argv is None else argv
    if "--smoke" in argv:
        ap.set_defaults(**smoke)
    return ap.parse_args(argv)


def skipped(anchor: str, why: str) -> None:
    """Say that an anchor was left out, and why."""
    print(f"skipped {anchor}: {why}", flush=True)


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None
