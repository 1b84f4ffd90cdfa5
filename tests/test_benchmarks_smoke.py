"""Every benchmark still runs: ``benchmarks/bench_*.py --smoke`` exits 0 and prints its ratio.

A benchmark that only runs before a release rots unnoticed (bench_train_gpt2_124m.py
crashed on a tokenizer-spec change for weeks). Each script runs here at tiny sizes; a
new ``bench_*.py`` is picked up by the glob, so it must have a ``--smoke`` mode too.
The scripts run one after another as ``__main__`` in one subprocess
(``benchmarks/_smoke.py``): importing torch and transformers once instead of once
per script is most of the time saved. The smoke figures themselves mean nothing.
"""

from __future__ import annotations

import json
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


@pytest.fixture(scope="module")
def smoke_runs(shared_data, tmp_path_factory) -> dict[str, dict]:
    """Each script's exit code and output from one ``benchmarks/_smoke.py`` run."""
    tmp = tmp_path_factory.mktemp("bench_smoke")
    results = tmp / "results.json"
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "_smoke.py"), str(results), *map(str, SCRIPTS)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0 and results.is_file(), proc.stderr[-4000:]
    return {r["script"]: r for r in json.loads(results.read_text())}


def test_the_benchmarks_are_found():
    assert len(SCRIPTS) >= 15, [p.name for p in SCRIPTS]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_benchmark_smoke_run(script, smoke_runs):
    run = smoke_runs[script.name]
    out = run["output"]
    assert run["returncode"] == 0, f"{script.name} --smoke failed:\n{out[-4000:]}"
    if not RATIO.search(out):
        assert SKIPPED_RATIO.search(out) and SKIP_REASON.search(out), (
            f"{script.name} --smoke printed no ratio line:\n{out[-4000:]}"
        )
