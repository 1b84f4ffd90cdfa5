"""``--smoke``: every benchmark runs end to end at tiny sizes in a few seconds.

A benchmark that is only run before a release rots: a renamed function or a new
required field breaks it, and nobody notices until the figures are wanted.
tests/test_benchmarks_smoke.py runs each ``benchmarks/bench_*.py --smoke`` in CI
(one after another as ``__main__`` in one subprocess, see ``main``) and checks that
it exits 0 and prints its ratio line. The figures of a smoke run
mean nothing; anchors that are not installed (a nanoGPT or minbpe checkout, trl)
are skipped with a line that says so.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import importlib.util
import io
import json
import os
import runpy
import sys
import time
import traceback
from pathlib import Path

THREADS = min(2, os.cpu_count() or 1)  # what each script starts with


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


def run_in_process(script: Path) -> dict:
    """Run ``script --smoke`` as ``__main__`` in this process; its exit code and output.

    One process for every script pays for importing torch and transformers once (on
    a small CPU that import costs more than most smoke runs themselves).
    """
    out = io.StringIO()
    code, t0 = 0, time.perf_counter()
    argv, path = sys.argv, list(sys.path)
    sys.argv, sys.path[:0] = [str(script), "--smoke"], [str(script.parent)]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            runpy.run_path(str(script), run_name="__main__")
    except SystemExit as e:  # argparse errors, sys.exit("message"), raise SystemExit(main())
        if isinstance(e.code, int):
            code = e.code
        elif e.code is not None:
            code = 1
            out.write(f"\n{e.code}\n")
    except BaseException:  # reported as the script's failure, as a crash would be
        code = 1
        out.write(traceback.format_exc())
    finally:
        sys.argv, sys.path[:] = argv, path
        if "torch" in sys.modules:  # the next script starts as a fresh process would
            sys.modules["torch"].set_num_threads(THREADS)
    seconds = time.perf_counter() - t0
    return {"script": script.name, "returncode": code, "output": out.getvalue(), "seconds": seconds}


def main() -> None:
    """``python benchmarks/_smoke.py RESULTS.json SCRIPT...``: smoke-run each script.

    Each script's name goes to stderr before it runs, and a crash in native code (a
    segfault in a compiled anchor) dumps the Python stack there, so the test's failure
    message names the script that took the process down.
    """
    faulthandler.enable()
    results = []
    for p in sys.argv[2:]:
        print(f"smoke: {Path(p).name}", file=sys.stderr, flush=True)
        results.append(run_in_process(Path(p).resolve()))
    Path(sys.argv[1]).write_text(json.dumps(results))


if __name__ == "__main__":
    main()
