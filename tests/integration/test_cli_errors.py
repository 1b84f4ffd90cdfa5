"""Bad input on purpose: each mistake is one `error:` line naming the input and the fix,
exit code 1, no traceback (unless --debug), and no run is ever replaced silently."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from legollm.cli.main import main, run
from legollm.core.exceptions import ConfigError

ROOT = Path(__file__).resolve().parents[2]
PRINTABLE = "".join(chr(c) for c in range(32, 127))  # every char a test record may use
TEXT = f"To be, or not to be, that is the question.\n{PRINTABLE}\n\n" * 60
MODEL = "{n_layer: 1, n_head: 2, n_embd: 32, context_length: 256, ffn: gelu_mlp}"
NEEDS_PROC = pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from legollm.data.prepare import prepare_dataset

    root = tmp_path_factory.mktemp("errors")
    (root / "t.txt").write_text(TEXT)
    return prepare_dataset(inputs=[str(root / "t.txt")], output_dir=str(root / "data"),
                           split="paragraph", val_fraction=0.2, num_workers=1)  # fmt: skip


def train_config(d: Path, data_dir: Path, **kw) -> Path:
    """A tiny train config writing to ``d/run``: 4 steps, an eval (and checkpoint) at 2 and 4."""
    fields = {"data_dir": str(data_dir), "run_dir": str(d / "run"), "model": MODEL,
              "batch_size": 4, "block_size": 16, "max_iters": 4, "warmup_iters": 1,
              "eval_interval": 2, "eval_iters": 2, "log_interval": 1, "progress": "false",
              "plot": "false", "device": "cpu", "precision": "fp32"}  # fmt: skip
    fields.update(kw)
    p = d / "train.yaml"
    p.write_text("".join(f"{k}: {v}\n" for k, v in fields.items()))
    return p


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_dir) -> Path:
    """A finished 4-step run directory (latest.pt, best.pt, metrics.jsonl)."""
    d = tmp_path_factory.mktemp("trained")
    assert main(["train", "--config", str(train_config(d, data_dir))]) == 0
    return d / "run"


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


def snapshot(run: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run.iterdir()) if p.is_file()}


def steps_logged(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


# ------------------------------------------------------------------ no silent replacement
def test_train_into_a_run_dir_that_holds_a_run_refuses_unless_told(tmp_path, data_dir, capsys):
    cfg = train_config(tmp_path, data_dir)
    run_dir = tmp_path / "run"
    assert main(["train", "--config", str(cfg)]) == 0
    before = snapshot(run_dir)
    assert {"latest.pt", "best.pt", "metrics.jsonl"} <= set(before)
    capsys.readouterr()

    assert main(["train", "--config", str(cfg), "max_iters=2"]) == 1
    err = one_line_error(capsys)
    assert str(run_dir) in err and "--resume" in err and "--overwrite" in err
    assert snapshot(run_dir) == before  # not a byte of the old run changed

    assert main(["train", "--config", str(cfg), "--resume", "--overwrite"]) == 1
    assert "give one" in one_line_error(capsys)

    (run_dir / "notes.txt").write_text("mine")
    # --overwrite: a 2-step run without evaluation writes no best.pt, so the old one must go
    assert main(["train", "--config", str(cfg), "max_iters=2", "eval_iters=0", "--overwrite"]) == 0
    assert torch.load(run_dir / "latest.pt", weights_only=True)["step"] == 2
    assert not (run_dir / "best.pt").exists()
    assert steps_logged(run_dir) == [1, 2]
    assert (run_dir / "notes.txt").read_text() == "mine"  # not a file a run writes: kept


@pytest.mark.parametrize("command", ["sft", "dpo"])
def test_sft_and_dpo_refuse_a_run_dir_that_holds_a_run(tmp_path, trained, command, capsys):
    import yaml

    record = {"instruction": "Say it.", "input": "", "output": "To be.", "chosen": "To be.",
              "rejected": "Not to be."}  # fmt: skip
    (tmp_path / "data.json").write_text(json.dumps([record] * 20))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')
    cfg = {"init": str(trained / "latest.pt"), "data": str(tmp_path / "data.json"),
           "max_test_responses": 0, "train": {"run_dir": str(run_dir), "batch_size": 2,
           "max_iters": 2, "eval_interval": 2, "eval_iters": 1, "progress": False,
           "plot": False, "device": "cpu", "precision": "fp32"}}  # fmt: skip
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main([command, "--config", str(tmp_path / "c.yaml")]) == 1
    err = one_line_error(capsys)
    assert "metrics.jsonl" in err and "--resume" in err and "--overwrite" in err
    assert (run_dir / "metrics.jsonl").read_text() == '{"step": 1, "loss": 1.0}\n'
    assert main([command, "--config", str(tmp_path / "c.yaml"), "--overwrite"]) == 0
    assert steps_logged(run_dir)[-1] == 2


# ------------------------------------------------------------ runs that would train nothing
def test_resuming_a_finished_run_and_max_iters_0_say_what_to_change(
    tmp_path, data_dir, trained, capsys
):
    run_dir = tmp_path / "run"
    shutil.copytree(trained, run_dir)
    before = snapshot(run_dir)
    cfg = train_config(tmp_path, data_dir)  # the finished run's own config: 4 steps
    assert main(["train", "--config", str(cfg), "--resume"]) == 1
    err = one_line_error(capsys)
    assert "step 4" in err and "nothing to train" in err and "max_iters=8" in err
    assert snapshot(run_dir) == before

    assert main(["train", "--config", str(cfg), "max_iters=0", f"run_dir={tmp_path / 'new'}"]) == 1
    assert "max_iters=0 trains nothing" in one_line_error(capsys)


@pytest.mark.parametrize(
    "override, message",
    [
        ("max_iters=ten", "train config: max_iters must be an int, got 'ten' (str)"),
        ("max_iters=2.5", "train config: max_iters must be an int, got 2.5 (float)"),
        ("lr=fast", "train config: lr must be a number, got 'fast' (str)"),
        ("model.n_layer=two", "model config: n_layer must be an int, got 'two' (str)"),
    ],
)
def test_a_field_of_the_wrong_type_is_named(tmp_path, data_dir, capsys, override, message):
    assert main(["train", "--config", str(train_config(tmp_path, data_dir)), override]) == 1
    assert message in one_line_error(capsys)
    assert not (tmp_path / "run" / "latest.pt").exists()


def test_a_block_size_that_cannot_fit_reports_the_memory_it_needs(tmp_path, data_dir, capsys):
    manual = MODEL[:-1] + ", attn_impl: manual}"
    cfg = train_config(tmp_path, data_dir, model=manual, batch_size=12, eval_iters=0)
    assert main(["train", "--config", str(cfg), "block_size=100000"]) == 1
    err = one_line_error(capsys)
    # 1 layer x 12 sequences x 2 heads x 100,000^2 fp32 scores = 960 GB at least
    assert "block_size=100000" in err and "960.0 GB" in err and "lower block_size" in err


# --------------------------------------------------------------------- files and paths
@NEEDS_PROC
def test_outputs_that_cannot_be_written_are_refused_up_front(tmp_path, data_dir, capsys):
    cfg = train_config(tmp_path, data_dir)
    assert main(["train", "--config", str(cfg), "run_dir=/proc/legollm/run"]) == 1
    assert "cannot write to run_dir /proc/legollm/run:" in one_line_error(capsys)
    (tmp_path / "a_file").write_text("x")
    assert main(["train", "--config", str(cfg), f"run_dir={tmp_path / 'a_file' / 'run'}"]) == 1
    assert "a_file is a file" in one_line_error(capsys)

    (tmp_path / "t.txt").write_text(TEXT)
    argv = ["data", "prepare", "--inputs", str(tmp_path / "t.txt"), "--output-dir", "/proc/x"]
    assert main(argv) == 1
    assert "cannot write to output_dir /proc/x:" in one_line_error(capsys)
    argv = ["tokenizer", "train", "--input", str(tmp_path / "t.txt"), "--vocab-size", "260",
            "--output", "/proc/x/t.json"]  # fmt: skip
    assert main(argv) == 1
    assert "cannot write to the folder of --output /proc/x:" in one_line_error(capsys)


def test_an_os_error_that_escapes_is_one_line_and_debug_shows_the_traceback(
    tmp_path, data_dir, capsys, monkeypatch
):
    def full_disk(args):
        raise OSError(28, "No space left on device", "/runs/x/latest.pt")

    assert run(full_disk, None) == 1
    assert "No space left on device: /runs/x/latest.pt" in one_line_error(capsys)

    cfg = str(train_config(tmp_path, data_dir))
    with pytest.raises(ConfigError, match="max_iters must be an int"):
        main(["--debug", "train", "--config", cfg, "max_iters=ten"])
    monkeypatch.setenv("LEGOLLM_DEBUG", "1")
    with pytest.raises(OSError):
        run(full_disk, None)


def test_a_tokenizer_json_that_is_a_list_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "list.json").write_text("[1, 2]")
    assert main(["tokenizer", "encode", "--tokenizer", str(tmp_path / "list.json"), "hi"]) == 1
    assert "list.json" in one_line_error(capsys)
    (tmp_path / "gpt2").mkdir()
    shutil.copy(tmp_path / "list.json", tmp_path / "gpt2" / "encoder.json")
    (tmp_path / "gpt2" / "vocab.bpe").write_text("#version: 0.2\n")
    assert main(["tokenizer", "encode", "--gpt2", str(tmp_path / "gpt2"), "hi"]) == 1
    assert "encoder.json" in one_line_error(capsys)


def test_a_random_bytes_checkpoint_is_named_and_never_suggests_unpickling(tmp_path, capsys):
    (tmp_path / "latest.pt").write_bytes(os.urandom(4096))
    assert main(["generate", str(tmp_path), "--prompt", "To"]) == 1
    err = one_line_error(capsys)
    assert "not a readable LegoLLM checkpoint" in err and "weights_only" not in err


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_non_finite_temperature_is_refused(trained, capsys, value):
    argv = ["generate", str(trained), "--prompt", "To", "--max-new-tokens", "3"]
    assert main([*argv, "--temperature", value]) == 1
    assert "temperature must be a finite number" in one_line_error(capsys)


def test_binary_sft_data_is_a_one_line_error(tmp_path, trained, capsys):
    import yaml

    (tmp_path / "data.json").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    cfg = {"init": str(trained / "latest.pt"), "data": str(tmp_path / "data.json"),
           "train": {"run_dir": str(tmp_path / "run"), "device": "cpu"}}  # fmt: skip
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["sft", "--config", str(tmp_path / "c.yaml")]) == 1
    assert "data.json is not UTF-8 text" in one_line_error(capsys)


# ------------------------------------------------------------------------ scripts/train.py
def _train_script():
    spec = importlib.util.spec_from_file_location("train_script", ROOT / "scripts" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_script_falls_back_to_the_configs_model_then_small(tmp_path, data_dir, capsys):
    script = _train_script()
    quick = ["max_iters=1", "eval_iters=1", "batch_size=2", "block_size=8", "progress=false",
             "plot=false", "device=cpu"]  # fmt: skip
    out = tmp_path / "small"
    assert script.main(["--dataset", str(data_dir), "--out", str(out), *quick]) == 0
    small = torch.load(out / "latest.pt", weights_only=True)["model_config"]
    assert (small["n_layer"], small["n_embd"]) == (4, 128)  # presets.py's "small"

    cfg = train_config(tmp_path, data_dir)  # its model: 1 layer of 32, its run_dir: tmp/run
    assert script.main(["--dataset", str(data_dir), "--config", str(cfg), *quick]) == 0
    own = torch.load(tmp_path / "run" / "latest.pt", weights_only=True)["model_config"]
    assert (own["n_layer"], own["n_embd"]) == (1, 32)
    assert "error" not in capsys.readouterr().err
