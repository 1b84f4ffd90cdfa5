"""`legollm demo` end to end, shrunk: every artefact it promises is written."""

import json

import pytest

from legollm.cli.main import main


@pytest.mark.slow
def test_demo_writes_everything(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--max-iters", "6", "--vocab-size", "300"]
    argv += ["--tokenizer-chars", "20000", "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    run = out / "run"
    for f in ("latest.pt", "loss.png", "metrics.jsonl"):
        assert (run / f).is_file(), f
    assert (out / "data" / "meta.json").is_file()
    # the run's tokenizer copy decodes, so validation is also reported in bits per byte
    # (a tokenizer spec relative to the run dir once gave none)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    val = [r for r in records if "val_loss" in r]
    assert val and all(r["val_bpb"] > 0 for r in val)
    assert str(run / "latest.pt") in printed
    # the sample is decoded text between the two rules, starting with the prompt
    sample = printed.split("-" * 60)[1].strip()
    assert sample.startswith("The") and len(sample) > len("The ")
