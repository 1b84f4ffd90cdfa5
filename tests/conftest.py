"""Shared fixtures.

``shared_data`` points at ../shared/data (or $LEGOLLM_SHARED_DATA). Outside CI a
missing folder skips the test with a message; in CI (CI set) it fails, so the
parity tests can never vanish silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# `precision: auto` picks bf16 on CPUs that compute it natively; the tests' fp32 oracles
# must hold on any CPU, so the verdict is pinned to "not native" here (and in the CLI
# subprocesses, which inherit it). tests/unit/test_runtime.py covers both verdicts.
os.environ.setdefault("LEGOLLM_CPU_BF16", "0")


def _shared_data_dir() -> Path:
    env = os.environ.get("LEGOLLM_SHARED_DATA")
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = _shared_data_dir()
    if not path.is_dir():
        msg = f"shared data not found at {path} (set LEGOLLM_SHARED_DATA)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(autouse=True, scope="session")
def _few_threads():
    """Keep torch to the cores we have; an oversubscribed core stalls every op."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(min(2, os.cpu_count() or 1))
