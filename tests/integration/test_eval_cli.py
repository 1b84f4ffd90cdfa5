"""`legollm eval`: the figures it prints are the model's own losses, token by token."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from legollm.cli.main import main
from tests.integration._run_dirs import make_run_dir

TEXT = "the cat sat on the mat. the dog sat on the log. " * 20
CONTEXT = 64


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    model, tok = make_run_dir(d, TEXT, vocab_size=273, model_vocab=288, context_length=CONTEXT)
    return d, model, tok


def nll_with_full_context(model, ids: list[int]) -> list[float]:
    """Each token's NLL given the (up to) CONTEXT tokens before it, one forward per token:
    what a stride of 1 must give."""
    out = []
    with torch.no_grad():
        for t in range(1, len(ids)):
            x = torch.tensor([ids[max(0, t - CONTEXT) : t]])
            out.append(F.cross_entropy(model(x)[0, -1], torch.tensor(ids[t])).item())
    return out


def eval_json(capsys, *args) -> dict:
    assert main(["eval", *args, "--device", "cpu", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_figures_equal_the_losses_by_hand(run_dir, tmp_path, capsys):
    d, model, tok = run_dir
    text = TEXT[:700]
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    ids = tok.encode(text)
    assert len(ids) > 2 * CONTEXT
    nll = nll_with_full_context(model, ids)
    got = eval_json(capsys, str(d), "--text", str(tmp_path / "t.txt"), "--stride", "1",
                    "--batch-size", "5")  # fmt: skip
    mean = sum(nll) / len(nll)
    assert got["tokens"] == len(ids) and got["bytes"] == len(text.encode())
    assert got["nll"] == pytest.approx(mean, rel=1e-4)
    assert got["perplexity"] == pytest.approx(math.exp(mean), rel=1e-4)
    assert got["bits_per_token"] == pytest.approx(mean / math.log(2), rel=1e-4)
    assert got["bits_per_byte"] == pytest.approx(sum(nll) / math.log(2) / len(text), rel=1e-4)


def test_data_dir_split_is_read_as_its_ids(run_dir, tmp_path, capsys):
    d, model, tok = run_dir
    ids = tok.encode(TEXT[:100]) + [tok.eot_token_id] + tok.encode(TEXT[:60])
    np.asarray(ids, dtype=np.uint16).tofile(tmp_path / "val.bin")
    meta = {"vocab_size": 288, "dtype": "uint16", "num_tokens": {"val": len(ids)},
            "tokenizer": {"type": "legollm", "path": str(d / "tok.json")}}  # fmt: skip
    (tmp_path / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    got = eval_json(capsys, str(d), "--data-dir", str(tmp_path), "--stride", "1")
    nll = nll_with_full_context(model, ids)
    assert got["tokens"] == len(ids)
    assert got["bytes"] == len(tok.decode(ids).encode())
    assert got["nll"] == pytest.approx(sum(nll) / len(nll), rel=1e-4)


def test_readable_table(run_dir, tmp_path, capsys):
    d, _, _ = run_dir
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    assert main(["eval", str(d), "--text", str(tmp_path / "t.txt"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    for name in ("tokens", "perplexity", "bits / byte"):
        assert name in out


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        (None, [], "text not found"),
        ("", [], "is empty"),
        ("t", [], "at least two"),
        (TEXT, ["--stride", "0"], "stride must be between 1 and"),
        (TEXT, ["--stride", str(CONTEXT + 1)], "stride must be between 1 and"),
        (TEXT, ["--batch-size", "0"], "batch_size must be >= 1"),
    ],
)
def test_bad_input_is_one_line(run_dir, tmp_path, capsys, content, extra, message):
    d, _, _ = run_dir
    path = tmp_path / "t.txt"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    assert main(["eval", str(d), "--text", str(path), "--device", "cpu", *extra]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_a_model_that_cannot_be_loaded_is_one_line(tmp_path, capsys):
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    assert main(["eval", str(tmp_path / "nowhere"), "--text", str(tmp_path / "t.txt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: model") and "not found" in err and err.count("\n") == 1


def test_a_data_dir_without_the_split_is_one_line(run_dir, tmp_path, capsys):
    d, _, _ = run_dir
    meta = {"vocab_size": 288, "dtype": "uint16", "num_tokens": {"val": 0},
            "tokenizer": {"type": "legollm", "path": str(d / "tok.json")}}  # fmt: skip
    (tmp_path / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    assert main(["eval", str(d), "--data-dir", str(tmp_path), "--split", "test"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no 'test' split") and err.count("\n") == 1


def test_choices_json_and_per_question_file(run_dir, tmp_path, capsys):
    from legollm.evaluation import loglikelihood

    d, model, tok = run_dir
    questions = [{"context": "the cat sat on", "choices": ["the mat.", "the log.", "dog"],
                  "gold": 0}, {"context": "the dog", "choices": ["sat", "on"], "gold": 1},
                 {"ctx": "the", "endings": ["cat", "dog"], "label": "1"}]  # fmt: skip
    path = tmp_path / "q.jsonl"
    path.write_text("".join(json.dumps(q) + "\n" for q in questions), encoding="utf-8")
    out = tmp_path / "results.jsonl"
    got = eval_json(capsys, str(d), "--choices", str(path), "--limit", "2", "--output", str(out))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert got["n"] == 2 and len(rows) == 2
    for q, row in zip(questions, rows, strict=False):
        lls = [lp for lp, _ in loglikelihood(model, tok, [(q["context"], " " + c)
                                                         for c in q["choices"]])]  # fmt: skip
        assert row["loglikelihoods"] == pytest.approx(lls, abs=1e-5)
        assert row["acc"] == float(lls.index(max(lls)) == q["gold"])
    assert got["acc"] == sum(r["acc"] for r in rows) / 2
    assert set(got) >= {"acc_stderr", "acc_norm", "acc_norm_stderr"}


def test_default_text_is_the_shipped_held_out_text(run_dir, capsys):
    from legollm.evaluation.data import HELD_OUT_TEXT

    d, _, _ = run_dir
    got = eval_json(capsys, str(d), "--batch-size", "32", "--stride", str(CONTEXT))
    assert got["bytes"] == len(HELD_OUT_TEXT.read_bytes())


@pytest.mark.parametrize(
    ("content", "extra", "message"),
    [
        ('{"context": "a"}\n', [], "q.jsonl:1: missing field 'choices'"),
        ('{"context": "a", "choices": ["b"], "gold": 3}\n', [], "gold index 3 is out of range"),
        ('{"context": "a", "choices": [], "gold": 0}\n', [], "the choice list is empty"),
        ('{"context": "a", "choices": ["b"], "gold": 0}\n', ["--limit", "0"], "--limit must"),
    ],
)
def test_bad_choices_are_one_line(run_dir, tmp_path, capsys, content, extra, message):
    d, _, _ = run_dir
    (tmp_path / "q.jsonl").write_text(content, encoding="utf-8")
    argv = ["eval", str(d), "--choices", str(tmp_path / "q.jsonl"), "--device", "cpu", *extra]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
