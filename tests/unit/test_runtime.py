"""The device and precision policy: what ``precision: auto`` picks, and the slow-bf16 warning.

The hardware verdict (does this CPU compute bf16 natively?) is monkeypatched both ways;
one test checks the real verdict against a measurement on the machine running it.
"""

from pathlib import Path

import pytest
import torch
import yaml

from legollm.core import runtime
from legollm.core.exceptions import ConfigError
from legollm.core.runtime import resolve_precision
from legollm.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")


@pytest.fixture
def verdict(monkeypatch):
    """Set this CPU's bf16 verdict (and a measured slowdown of 9.3x) for one test."""

    def set_verdict(native: bool) -> None:
        monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: native)
        monkeypatch.setattr(runtime, "cpu_bf16_slowdown", lambda: 9.3)

    return set_verdict


@pytest.fixture
def detect(monkeypatch):
    """Run the real detection (not the test suite's pinned verdict), uncached."""
    monkeypatch.delenv(runtime.CPU_BF16_ENV, raising=False)
    runtime.cpu_has_native_bf16.cache_clear()
    yield
    runtime.cpu_has_native_bf16.cache_clear()


@pytest.mark.parametrize(("native", "want"), [(True, torch.bfloat16), (False, None)])
def test_auto_on_cpu_is_bf16_only_where_native(verdict, native, want):
    verdict(native)
    assert resolve_precision("auto", CPU) is want


@pytest.mark.parametrize(("supported", "want"), [(True, torch.bfloat16), (False, None)])
def test_auto_on_cuda_is_bf16_where_supported(verdict, monkeypatch, supported, want):
    verdict(False)  # the CPU's verdict must not matter for a GPU
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: supported)
    assert resolve_precision("auto", torch.device("cuda", 0)) is want


def test_explicit_bf16_on_a_cpu_without_it_warns_with_the_cost(verdict, capsys):
    verdict(False)
    assert resolve_precision("bf16", CPU) is torch.bfloat16  # honoured, but not silently
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("warning: ")
    assert "9.3x slower than fp32" in err and "precision: auto or fp32" in err


@pytest.mark.parametrize("precision", ["bf16", "auto", "fp32"])
def test_no_warning_where_bf16_is_native_or_not_asked_for(verdict, capsys, precision):
    verdict(precision == "bf16")
    resolve_precision(precision, CPU)
    assert capsys.readouterr().err == ""


def test_fp16_needs_cuda():
    with pytest.raises(ConfigError, match="needs CUDA"):
        resolve_precision("fp16", CPU)


@pytest.mark.parametrize(
    ("flags", "native"),
    [({"fpu", "avx2", "fma"}, False), ({"avx2", "avx512f", "avx512_bf16"}, True),
     ({"avx2", "amx_tile", "amx_bf16"}, True), ({"fp", "asimd", "bf16"}, True)],
)  # fmt: skip
def test_cpu_flags_decide_the_verdict(detect, monkeypatch, flags, native):
    monkeypatch.setattr(runtime, "_cpu_feature_flags", lambda: flags)
    monkeypatch.setattr(runtime, "cpu_bf16_slowdown", lambda: pytest.fail("flags suffice"))
    assert runtime.cpu_has_native_bf16() is native


@pytest.mark.parametrize(("slowdown", "native"), [(0.4, True), (9.3, False)])
def test_without_flags_a_timing_decides(detect, monkeypatch, slowdown, native):
    monkeypatch.setattr(runtime, "_cpu_feature_flags", lambda: None)
    monkeypatch.setattr(runtime, "cpu_bf16_slowdown", lambda: slowdown)
    assert runtime.cpu_has_native_bf16() is native


@pytest.mark.parametrize("value", ["0", "1"])
def test_the_environment_can_pin_the_verdict(detect, monkeypatch, value):
    monkeypatch.setenv(runtime.CPU_BF16_ENV, value)
    monkeypatch.setattr(runtime, "_cpu_feature_flags", lambda: pytest.fail("pinned"))
    assert runtime.cpu_has_native_bf16() is (value == "1")


@pytest.mark.slow
def test_the_real_verdict_agrees_with_a_measurement(detect):
    """Where /proc/cpuinfo lists no bf16 flag (e.g. an AVX2-only CPU), bf16 autocast
    must really be slower; where it lists one, it must not be several times slower."""
    flags = runtime._cpu_feature_flags()
    if flags is None:
        pytest.skip("no /proc/cpuinfo flags on this platform")
    slowdown = runtime.cpu_bf16_slowdown.__wrapped__()
    if runtime.cpu_has_native_bf16():
        assert slowdown < 2.0
    else:
        assert slowdown > 1.5


def _train_section(path: Path) -> dict:
    d = yaml.safe_load(path.read_text())
    return d.get("train", d) if path.parent.name in ("sft", "dpo", "grpo") else d


def test_every_shipped_cpu_config_lets_auto_pick_the_precision():
    """A CPU recipe must not force bf16: on CPUs without native bf16 it is ~10x slower."""
    configs = [
        p
        for kind in ("train", "sft", "dpo", "grpo")
        for p in (ROOT / "configs" / kind).glob("*.yaml")
    ]
    cpu = [p for p in configs if _train_section(p).get("device") == "cpu" or "cpu" in p.stem]
    assert "shakespeare_char_cpu" in {p.stem for p in cpu}
    assert TrainConfig().precision == "auto"  # what a config without the line gets
    for path in cpu:
        assert _train_section(path).get("precision", "auto") == "auto", path.name
