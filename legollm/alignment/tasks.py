"""Tasks with verifiable rewards: prompts a program makes, answers a program checks.

GRPO needs no reward model when a program can tell a right answer from a wrong one.
A task here is a generator of records and the exact-match reward that grades them:

    record = task.sample(rng)   # {"instruction": "Reverse the letters: kdqe", "input": "",
                                #  "answer": "eqdk"}
    reward = exact_match("eqdk", record)   # 1.0; anything else 0.0

A record is an instruction record (the prompt formats of :mod:`legollm.finetuning.formats`
render it), so the same task feeds a short SFT (``sft_records``: the answer becomes the
``output``) that teaches the model the format, and then GRPO, which samples several
answers per prompt and rewards the right ones.

Rewards are plain functions ``reward(completion: str, record: dict) -> float``; a
config names them as ``module:function`` (:func:`resolve_function`), so a user's own
reward is a function in a module on the path, nothing to register.
"""

from __future__ import annotations

import importlib
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from legollm.core.exceptions import ConfigError

Record = dict[str, str]
CHAR_VOCAB = " \n" + "".join(chr(c) for c in range(33, 127))
"""The characters of the task tokenizer (:func:`task_tokenizer`): printable ASCII."""


@dataclass
class ReverseTask:
    """Reversal, "Reverse the letters: kdqe" -> "eqdk": a word of ``min_len``..``max_len`` random
    lowercase letters. Easy to check, impossible to answer by memorising."""

    min_len: int = 3
    max_len: int = 6

    def __post_init__(self) -> None:
        if not 1 <= self.min_len <= self.max_len:
            raise ConfigError(f"reverse needs 1 <= min_len <= max_len, got {self.min_len}, "
                              f"{self.max_len}")  # fmt: skip

    def sample(self, rng: random.Random) -> Record:
        n = rng.randint(self.min_len, self.max_len)
        word = "".join(rng.choice(string.ascii_lowercase) for _ in range(n))
        return {"instruction": f"Reverse the letters: {word}", "input": "", "answer": word[::-1]}


@dataclass
class AdditionTask:
    """Addition, "What is 38 + 471?" -> "509": two numbers of up to ``digits`` digits each."""

    digits: int = 3

    def __post_init__(self) -> None:
        if self.digits < 1:
            raise ConfigError(f"addition needs digits >= 1, got {self.digits}")

    def sample(self, rng: random.Random) -> Record:
        top = 10**self.digits - 1
        a, b = rng.randint(0, top), rng.randint(0, top)
        return {"instruction": f"What is {a} + {b}?", "input": "", "answer": str(a + b)}


TASKS: dict[str, type] = {"reverse": ReverseTask, "addition": AdditionTask}


def get_task(name: str, args: dict[str, Any] | None = None):
    """A task by name (``reverse``, ``addition``) with its keyword arguments."""
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; use one of {sorted(TASKS)}")
    try:
        return TASKS[name](**(args or {}))
    except TypeError as e:
        raise ConfigError(f"task {name}: {e}") from None


def exact_match(completion: str, record: Record) -> float:
    """1.0 when the completion is the answer (surrounding whitespace ignored), else 0.0."""
    return float(completion.strip() == record["answer"])


def sft_records(task, n: int, seed: int = 0) -> list[Record]:
    """``n`` solved examples for ``legollm sft``: the task's records, answer as ``output``."""
    rng = random.Random(seed)
    return [{**r, "output": r["answer"]} for r in (task.sample(rng) for _ in range(n))]


def task_tokenizer():
    """A character tokenizer over printable ASCII plus ``<|endoftext|>``: every task prompt,
    the plain and dialogue formats, and their answers, in a vocabulary of 97."""
    from legollm.core.tokenization.specs import CharTokenizer

    return CharTokenizer.from_text([CHAR_VOCAB])


def resolve_function(spec: str, what: str = "reward") -> Callable:
    """The function a config names as ``package.module:function``."""
    module_name, sep, attr = str(spec).partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{what} {spec!r} must name a function as module:function, e.g. "
                          "legollm.alignment.tasks:exact_match")  # fmt: skip
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"{what} {spec!r}: cannot import {module_name!r} ({e})") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"{what} {spec!r}: {module_name} has no function {attr!r}")
    return fn


__all__ = [
    "CHAR_VOCAB",
    "TASKS",
    "AdditionTask",
    "ReverseTask",
    "exact_match",
    "get_task",
    "resolve_function",
    "sft_records",
    "task_tokenizer",
]
