"""Multiple-choice records and scores: shapes read by hand-written prompts, accuracies
by argmax over the oracle-checked log-likelihoods, standard errors by lm-eval's own."""

from __future__ import annotations

import json

import pytest
import torch

from legollm.core.exceptions import DataError
from legollm.core.tokenization.specs import CharTokenizer
from legollm.evaluation import evaluate_choices, loglikelihood, read_records, to_record
from legollm.evaluation.choices import mean_stderr
from legollm.evaluation.data import CHOICES
from legollm.models import DecoderLM, ModelConfig

QUESTIONS = [
    {"context": "the cat sat on the", "choices": ["mat", "moon and the stars", "dog"], "gold": 0},
    {"context": "one two three", "choices": ["four", "five six"], "gold": 1},
    {"context": "abc", "choices": ["d", "de", "def", "x"], "gold": 2},
    {"context": "to be or not", "choices": ["to be", "ok"], "gold": 0},
]


def test_plain_record():
    r = to_record({"context": "2 + 2 =", "choices": ["4", "5"], "gold": 0})
    assert (r.context, r.choices, r.gold) == ("2 + 2 =", ["4", "5"], 0)


def test_hellaswag_record_is_the_harness_prompt():
    raw = {"activity_label": "Baking", "ctx_a": "She mixes flour.", "ctx_b": "then she",
           "endings": ["bakes it [step] well.", " eats it."], "label": "1"}  # fmt: skip
    r = to_record(raw)
    assert r.context == "Baking: She mixes flour. Then she"
    assert r.choices == ["bakes it well.", "eats it."] and r.gold == 1


def test_arc_record():
    raw = {"question": "Which is a gas?", "answerKey": "B",
           "choices": {"text": ["ice", "steam"], "label": ["A", "B"]}}  # fmt: skip
    r = to_record(raw)
    assert (r.context, r.choices, r.gold) == (
        "Question: Which is a gas?\nAnswer:",
        ["ice", "steam"],
        1,
    )


def test_mmlu_record():
    r = to_record({"question": " 1 + 1? ", "choices": ["1", "2", "3", "4"], "answer": 1})
    assert r.context == "1 + 1?\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer:"
    assert r.choices == ["A", "B", "C", "D"] and r.gold == 1


def test_field_map_reads_other_names():
    raw = {"prompt": "x", "options": ["a", "b"], "answer_idx": 1}
    r = to_record(raw, {"context": "prompt", "choices": "options", "gold": "answer_idx"})
    assert (r.context, r.choices, r.gold) == ("x", ["a", "b"], 1)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "t.jsonl:2: not JSON"),
        ('{"context": "a", "choices": ["b"]}', "t.jsonl:2: missing field 'gold'"),
        ('{"context": "a", "choices": ["b"], "gold": 1}', "gold index 1 is out of range"),
        ('{"context": "a", "choices": [], "gold": 0}', "the choice list is empty"),
        ('{"context": "a", "choices": "b", "gold": 0}', "must be a list of strings"),
    ],
)
def test_bad_lines_name_the_line_and_field(tmp_path, line, message):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(QUESTIONS[0]) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message.replace("+", r"\+")):
        read_records(path)


def test_limit_and_the_shipped_set(tmp_path):
    records = read_records(CHOICES)
    assert len(records) == 200 and all(len(r.choices) == 4 for r in records)
    assert len(read_records(CHOICES, limit=5)) == 5


def test_accuracies_are_argmaxes_of_the_loglikelihoods():
    tok = CharTokenizer.from_text(["abcdefghijklmnopqrstuvwxyz +=0123456789"])
    torch.manual_seed(0)
    model = DecoderLM(ModelConfig(vocab_size=tok.vocab_size, context_length=32, n_layer=1,
                                  n_head=2, n_embd=16)).eval()  # fmt: skip
    result = evaluate_choices(model, tok, QUESTIONS, batch_size=3)
    acc, acc_norm = [], []
    for q, example in zip(QUESTIONS, result.examples, strict=True):
        got = loglikelihood(model, tok, [(q["context"], " " + c) for c in q["choices"]])
        lls = [lp for lp, _ in got]
        assert example["loglikelihoods"] == pytest.approx(lls, abs=1e-5)
        assert example["is_greedy"] == [g for _, g in got]
        per_char = [lp / len(c) for lp, c in zip(lls, q["choices"], strict=True)]
        acc.append(float(lls.index(max(lls)) == q["gold"]))
        acc_norm.append(float(per_char.index(max(per_char)) == q["gold"]))
    assert result.n == 4
    assert result.acc == sum(acc) / 4 and result.acc_norm == sum(acc_norm) / 4
    assert [e["acc"] for e in result.examples] == acc


def test_stderr_is_the_harness_mean_stderr():
    metrics = pytest.importorskip("lm_eval.api.metrics")
    for values in ([1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 1.0, 1.0], [1.0, 1.0]):
        assert mean_stderr(values) == pytest.approx(metrics.mean_stderr(values))
    assert mean_stderr([1.0]) is None
