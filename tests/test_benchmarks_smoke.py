"""Every benchmark still runs: ``benchmarks/bench_*.py --smoke`` exits 0 and prints its ratio.

A benchmark that only runs before a release rots unnoticed (bench_train_gpt2_124m.py
crashed on a tokenizer-spec change for weeks). Each script runs here at tiny sizes in
its own process, as a user would start it; a new ``bench_*.py`` is picked up by the
glob, so it must have a ``--smoke`` mode too. The smoke figures themselves mean nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("bench_*.py"))
# the line each benchmark ends on: "... ratio ... 1.23x", or "ratio ...: skipped" when
# its anchor is not installed (then a "skipped ANCHOR: why" line must say why)
RATIO = re.compile(r"ratio\b[^\n]*\b\d+(\.\d+)?x\b")
SKIPPED_RATIO = re.compile(r"ratio\b[^\n]*\bskipped\b")
SKIP_REASON = re.compile(r"^skipped [^:\n]+: \S", re.MULTILINE)

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


def test_the_benchmarks_are_found():
    assert len(SCRIPTS) >= 15, [p.name for p in SCRIPTS]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_benchmark_smoke_run(script, shared_data, tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), "--smoke"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{script.name} --smoke failed:\n{out[-4000:]}"
    if not RATIO.search(out):
        assert SKIPPED_RATIO.search(out) and SKIP_REASON.search(out), (
            f"{script.name} --smoke printed no ratio line:\n{out[-4000:]}"
        )
