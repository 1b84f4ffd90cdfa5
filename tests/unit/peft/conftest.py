"""Tiny LoRA models run on one thread (see tests/unit/finetuning/conftest.py)."""

from tests.unit.finetuning.conftest import _one_thread  # noqa: F401
