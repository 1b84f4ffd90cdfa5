"""Multiple-choice scoring: which of a question's choices does the model find most likely?

Each choice is scored by the summed log-likelihood of its tokens after the context
(:func:`~legollm.evaluation.loglikelihood.loglikelihood`), joined to it by one
space as lm-evaluation-harness does. Two accuracies, as the harness reports them:

- ``acc``: the choice with the highest sum is the gold one;
- ``acc_norm``: the same after dividing each sum by the choice's length in
  characters, so a long choice is not penalised for having more tokens to pay for.

Each comes with its standard error: the sample standard deviation of the 0/1
scores over sqrt(n), the harness's ``mean_stderr``.

Records are JSON lines, read by :func:`read_records`. Four shapes are understood,
by their field names (HF dataset field names, so a dataset exported with
``to_json`` reads as it is):

=========  ==========================================================  ===============
shape      fields                                                      prompt
=========  ==========================================================  ===============
plain      ``context``, ``choices`` (strings), ``gold`` (index)        the context
HellaSwag  ``ctx`` or ``ctx_a`` + ``ctx_b``, ``endings``, ``label``    as the harness
ARC        ``question``, ``choices: {text, label}``, ``answerKey``     "Question: ...\\nAnswer:"
MMLU       ``question``, ``choices`` (strings), ``answer`` (index|A-D)  lettered options
=========  ==========================================================  ===============

Other field names map onto the plain shape (``field_map={"context": "prompt", ...}``,
``legollm eval --fields context=prompt,choices=options,gold=answer``).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from legollm.core.exceptions import DataError
from legollm.evaluation.loglikelihood import loglikelihood

PLAIN_FIELDS = ("context", "choices", "gold")
LETTERS = "ABCDEFGHIJ"


@dataclass(frozen=True)
class ChoiceRecord:
    """One question: the context, its choices (without the joining space), the gold index."""

    context: str
    choices: list[str]
    gold: int


@dataclass(frozen=True)
class ChoiceResult:
    """Scores over ``n`` questions; ``examples``: one dict per question (see
    :func:`evaluate_choices`). A standard error is None for a single question."""

    n: int
    acc: float
    acc_stderr: float | None
    acc_norm: float
    acc_norm_stderr: float | None
    examples: list[dict[str, Any]]

    def summary(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("n", "acc", "acc_stderr", "acc_norm",
                                              "acc_norm_stderr")}  # fmt: skip


# -- reading records ------------------------------------------------------------
def read_records(
    path: str | os.PathLike[str],
    field_map: dict[str, str] | None = None,
    limit: int | None = None,
) -> list[ChoiceRecord]:
    """Records from a JSONL file (the first ``limit`` if given); see the module docstring.

    A bad line is a :class:`DataError` naming the line and the field.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"choices file not found: {path} (give a .jsonl file)")
    records = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if limit is not None and len(records) >= limit:
                break
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{number}: not JSON ({e.msg})") from e
            if not isinstance(raw, dict):
                raise DataError(f"{path}:{number}: a record must be a JSON object")
            try:
                records.append(to_record(raw, field_map))
            except DataError as e:
                raise DataError(f"{path}:{number}: {e}") from e
    if not records:
        raise DataError(f"{path} holds no records")
    return records


def to_record(raw: dict[str, Any], field_map: dict[str, str] | None = None) -> ChoiceRecord:
    """One JSON object as a :class:`ChoiceRecord`, by its shape (module docstring)."""
    if field_map:
        raw = {ours: _field(raw, theirs) for ours, theirs in field_map.items()} | {
            k: v for k, v in raw.items() if k not in field_map.values()
        }
    if "endings" in raw:
        return _check(*_hellaswag(raw))
    if "answerKey" in raw:
        return _check(*_arc(raw))
    if "question" in raw and "answer" in raw:
        return _check(*_mmlu(raw))
    return _check(_field(raw, "context"), _field(raw, "choices"), _field(raw, "gold"))


def _field(raw: dict[str, Any], name: str) -> Any:
    if name not in raw:
        raise DataError(f"missing field {name!r} (fields: {', '.join(raw) or 'none'})")
    return raw[name]


def _hellaswag(raw: dict[str, Any]) -> tuple[str, list[str], Any]:
    """The harness's HellaSwag prompt: "activity: ctx_a Ctx_b", brackets tidied away."""
    if "ctx" in raw and "ctx_a" not in raw:
        context = raw["ctx"]
    else:
        context = f"{_field(raw, 'ctx_a')} {str(_field(raw, 'ctx_b')).capitalize()}"
    if raw.get("activity_label"):
        context = f"{raw['activity_label']}: {context}"
    endings = _field(raw, "endings")
    if isinstance(endings, list):
        endings = [_tidy(e) for e in endings]
    return _tidy(context), endings, _field(raw, "label")


def _tidy(text: Any) -> Any:
    """HellaSwag's WikiHow text has "[title]" and "[step]" markers; drop them."""
    if not isinstance(text, str):
        return text
    text = text.strip().replace(" [title]", ". ")
    return re.sub(r"\[.*?\]", "", text).replace("  ", " ")


def _arc(raw: dict[str, Any]) -> tuple[str, list[str], Any]:
    choices = _field(raw, "choices")
    if not isinstance(choices, dict) or "text" not in choices or "label" not in choices:
        raise DataError("field 'choices' must be {'text': [...], 'label': [...]} in ARC shape")
    key = _field(raw, "answerKey")
    if key not in choices["label"]:
        raise DataError(f"answerKey {key!r} is not one of the labels {choices['label']}")
    question = _field(raw, "question")
    return f"Question: {question}\nAnswer:", choices["text"], choices["label"].index(key)


def _mmlu(raw: dict[str, Any]) -> tuple[str, list[str], Any]:
    """The harness's MMLU prompt: the question, lettered options, "Answer:"; the choices
    are the letters."""
    question, options = _field(raw, "question"), _field(raw, "choices")
    if not isinstance(options, list) or not options or len(options) > len(LETTERS):
        raise DataError(f"field 'choices' must list 1 to {len(LETTERS)} options")
    lines = [str(question).strip()] + [f"{LETTERS[i]}. {o}" for i, o in enumerate(options)]
    answer = _field(raw, "answer")
    if isinstance(answer, str) and answer in LETTERS:
        answer = LETTERS.index(answer)
    return "\n".join(lines) + "\nAnswer:", list(LETTERS[: len(options)]), answer


def _check(context: Any, choices: Any, gold: Any) -> ChoiceRecord:
    if not isinstance(context, str):
        raise DataError(f"the context must be a string, got {type(context).__name__}")
    if not isinstance(choices, list) or not all(isinstance(c, str) for c in choices):
        raise DataError("field 'choices' must be a list of strings")
    if not choices:
        raise DataError("the choice list is empty")
    if isinstance(gold, str) and gold.strip().isdigit():
        gold = int(gold)  # HellaSwag's labels are strings
    if not isinstance(gold, int) or isinstance(gold, bool):
        raise DataError(f"the gold answer must be an index, got {gold!r}")
    if not 0 <= gold < len(choices):
        raise DataError(f"gold index {gold} is out of range for {len(choices)} choices")
    return ChoiceRecord(context, choices, gold)


# -- scoring ----------------------------------------------------------------------
def evaluate_choices(
    model: nn.Module,
    tokenizer,
    records: Sequence[ChoiceRecord | dict[str, Any]],
    batch_size: int = 16,
    progress: bool = False,
) -> ChoiceResult:
    """``acc`` and ``acc_norm`` (with standard errors) of ``model`` on ``records``.

    ``records``: :class:`ChoiceRecord` or dicts of any shape :func:`to_record` reads.
    Each of ``result.examples`` holds the question's ``gold``, ``pred`` (argmax of the
    sums), ``pred_norm`` (argmax per character), every choice's ``loglikelihood`` and
    ``is_greedy`` (whether greedy decoding from the context gives exactly that choice).
    """
    records = [r if isinstance(r, ChoiceRecord) else to_record(r) for r in records]
    if not records:
        raise DataError("no records to evaluate")
    pairs = [(r.context, " " + c) for r in records for c in r.choices]
    scores = iter(loglikelihood(model, tokenizer, pairs, batch_size=batch_size, progress=progress))
    examples = []
    for r in records:
        lls, greedy = zip(*(next(scores) for _ in r.choices), strict=True)
        per_char = [ll / max(len(c), 1) for ll, c in zip(lls, r.choices, strict=True)]
        pred, pred_norm = _argmax(lls), _argmax(per_char)
        examples.append({"gold": r.gold, "pred": pred, "pred_norm": pred_norm,
                         "acc": float(pred == r.gold), "acc_norm": float(pred_norm == r.gold),
                         "loglikelihoods": list(lls), "is_greedy": list(greedy)})  # fmt: skip
    acc = [e["acc"] for e in examples]
    acc_norm = [e["acc_norm"] for e in examples]
    return ChoiceResult(len(examples), _mean(acc), mean_stderr(acc), _mean(acc_norm),
                        mean_stderr(acc_norm), examples)  # fmt: skip


def _argmax(values: Sequence[float]) -> int:
    """The first index of the largest value (ties go to the earlier choice, as numpy's)."""
    return max(range(len(values)), key=values.__getitem__)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)


def mean_stderr(values: Sequence[float]) -> float | None:
    """Standard error of the mean: sample standard deviation (n - 1) / sqrt(n)."""
    n = len(values)
    if n < 2:
        return None
    mu = _mean(values)
    return math.sqrt(sum((v - mu) ** 2 for v in values) / (n - 1)) / math.sqrt(n)
