"""`legollm train` end to end on the real DecoderLM: train, resume, load, bad input."""

import pytest
import torch

from legollm.cli.main import main

TEXT = "To be, or not to be, that is the question.\n\n" * 200


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    from legollm.data.prepare import prepare_dataset

    root = tmp_path_factory.mktemp("tr")
    (root / "t.txt").write_text(TEXT)
    return prepare_dataset(
        inputs=[str(root / "t.txt")],
        output_dir=str(root / "data"),
        split="paragraph",
        max_doc_chars=400,
        val_fraction=0.2,
        num_workers=1,
    )


def _config(tmp_path, data_dir, **kw):
    lines = {
        "data_dir": str(data_dir),
        "run_dir": str(tmp_path / "run"),
        "model": "{n_layer: 1, n_head: 2, n_embd: 32, norm: layernorm, position: learned, "
        "ffn: gelu_mlp, dropout: 0.1}",
        "batch_size": 4,
        "block_size": 16,
        "max_iters": 8,
        "lr_decay_iters": 8,
        "warmup_iters": 2,
        "eval_interval": 4,
        "eval_iters": 2,
        "log_interval": 1,
        "progress": "false",
        "plot": "false",
        "device": "cpu",
    }
    lines.update(kw)
    p = tmp_path / "c.yaml"
    p.write_text("".join(f"{k}: {v}\n" for k, v in lines.items()))
    return p


def _losses(run_dir):
    import json

    recs = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in recs if "loss" in r}


def test_train_resume_and_load(tmp_path, data_dir, capsys):
    from legollm.training.checkpoint import load_checkpoint, load_model_from_checkpoint

    full = tmp_path / "full"
    full.mkdir()
    assert main(["train", "--config", str(_config(full, data_dir))]) == 0
    part = tmp_path / "part"
    part.mkdir()
    cfg = _config(part, data_dir)
    assert main(["train", "--config", str(cfg), "max_iters=4"]) == 0
    assert main(["train", "--config", str(cfg), "--resume"]) == 0
    a, b = _losses(full / "run"), _losses(part / "run")
    for step in range(5, 9):
        assert abs(a[step] - b[step]) <= 1e-6
    ckpt = load_checkpoint(part / "run" / "latest.pt")
    assert ckpt["step"] == 8 and ckpt["tokenizer"]["type"] == "char"
    assert not any(k.startswith(("module.", "_orig_mod.")) for k in ckpt["model"])
    model, _ = load_model_from_checkpoint(part / "run" / "latest.pt")
    x = torch.zeros(1, 4, dtype=torch.long)
    assert model(x).shape == (1, 4, ckpt["model_config"]["vocab_size"])
    assert "checkpoint:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["data_dir=/nonexistent/data"], "data dir"),
        (["model.context_length=8"], "context_length"),
        (["model.vocab_size=3"], "vocab_size"),
    ],
)
def test_bad_input_is_one_line_before_training(tmp_path, data_dir, capsys, overrides, words):
    cfg = _config(tmp_path, data_dir)
    assert main(["train", "--config", str(cfg), *overrides]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and words in err
    assert not (tmp_path / "run" / "latest.pt").exists()


def test_resume_with_other_model_config_fails(tmp_path, data_dir, capsys):
    cfg = _config(tmp_path, data_dir, max_iters=4)
    assert main(["train", "--config", str(cfg)]) == 0
    assert main(["train", "--config", str(cfg), "--resume", "model.n_embd=64"]) == 1
    assert "different model config" in capsys.readouterr().err


def test_run_dir_keeps_its_tokenizer_after_the_data_dir_moves(tmp_path, capsys):
    from legollm.core.tokenization import RegexBPETokenizer
    from legollm.data.prepare import prepare_dataset

    tok = RegexBPETokenizer()
    tok.train(TEXT, vocab_size=300)
    tok.register_special_tokens({"<|endoftext|>": 300})
    (tmp_path / "t.txt").write_text(TEXT)
    data = prepare_dataset(inputs=[str(tmp_path / "t.txt")], output_dir=str(tmp_path / "data"),
                           split="paragraph", max_doc_chars=400, val_fraction=0.2, num_workers=1,
                           tokenizer="legollm", tokenizer_path=str(tok.save(tmp_path / "tok")))  # fmt: skip
    assert main(["train", "--config", str(_config(tmp_path, data)), "max_iters=2"]) == 0
    data.rename(tmp_path / "moved")
    (tmp_path / "tok.model").unlink(missing_ok=True)
    capsys.readouterr()
    args = ["--prompt", "To be", "--max-new-tokens", "6", "--strategy", "greedy"]
    assert main(["generate", str(tmp_path / "run"), *args]) == 0
    out = capsys.readouterr().out
    assert out.startswith("To be") and len(out) > len("To be\n")


KILL_AT_STEP = """
import os, signal, sys
from legollm.training.trainer import Trainer
step = Trainer.train_step
def killed_after_six(self):  # kill -9 between the log of step 6 and the checkpoint at 8
    if self.step == 6:
        os.kill(os.getpid(), signal.SIGKILL)
    return step(self)
Trainer.train_step = killed_after_six
from legollm.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_metrics_hold_each_step_once_after_a_kill_between_log_and_checkpoint(tmp_path, data_dir):
    """Steps 5 and 6 were logged, then the process died before the step-8 checkpoint:
    resuming from step 4 replays them, and metrics.jsonl must not hold them twice."""
    import json
    import signal
    import subprocess
    import sys

    def records(run_dir):
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        return [json.loads(x) for x in lines]

    full = tmp_path / "full"
    full.mkdir()
    assert main(["train", "--config", str(_config(full, data_dir))]) == 0
    part = tmp_path / "part"
    part.mkdir()
    cfg = str(_config(part, data_dir))
    done = subprocess.run([sys.executable, "-c", KILL_AT_STEP, "train", "--config", cfg],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert [r["step"] for r in records(part / "run") if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert main(["train", "--config", cfg, "--resume"]) == 0
    want, got = records(full / "run"), records(part / "run")
    assert [(r["step"], sorted(r)) for r in got] == [(r["step"], sorted(r)) for r in want]
    for a, b in zip(want, got, strict=True):
        for key in ("loss", "val_loss"):
            if key in a:
                assert abs(a[key] - b[key]) <= 1e-6
