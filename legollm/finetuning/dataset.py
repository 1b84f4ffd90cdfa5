"""Instruction data: read records, split them, tokenize, and batch with dynamic padding.

- :func:`load_records` reads a JSON list or JSON Lines file; field names are mapped
  to the canonical ``instruction`` / ``input`` / ``output``. A record missing a
  required field is reported by its index, then skipped or fatal (``on_bad_record``).
- :func:`split_records`: a seeded permutation cut into train/val/test, so the same
  seed and data always give the same split (the test split is what the model answers
  after training).
- :func:`tokenize_records`: render with a prompt format, truncate to the model's
  context (counting how many were cut), drop examples left with no trained token.
- :func:`pack_examples` (optional): several short examples per sequence, each
  attending only to itself (the batch carries their ``document_ids``).
- :func:`collate`: pad a batch to *its own* longest sequence (not the context):
  inputs with ``pad_id``, labels with -100, so padding never enters the loss.
- :class:`InstructionLoader`: the Trainer's loader contract (``next_batch``,
  ``eval_batches``, ``state_dict``). The batch of step ``s`` is a pure function of
  the seed and ``s`` (a seeded permutation per epoch), so the state is just the step
  and a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import json
import os
import random
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch

from legollm.core.exceptions import ConfigError, DataError
from legollm.finetuning.formats import IGNORE_INDEX, PromptFormat, to_features

REQUIRED = ("instruction", "output")
OPTIONAL = ("input",)
DEFAULT_FIELDS = {"instruction": "instruction", "input": "input", "output": "output"}
ON_BAD = ("skip", "error")


class Example(NamedTuple):
    """One tokenized example: the model's inputs and their labels (-100: not trained)."""

    input_ids: list[int]
    labels: list[int]

    def inputs(self) -> tuple[list[int], ...]:
        """Every id list the model reads (for checking ids against the vocabulary)."""
        return (self.input_ids,)


class PackedRow(NamedTuple):
    """Several examples in one sequence; ``document_ids`` says whose each position is."""

    input_ids: list[int]
    labels: list[int]
    document_ids: list[int]

    def inputs(self) -> tuple[list[int], ...]:
        return (self.input_ids,)


def _read_jsonl(p: Path, text: str) -> list[Any]:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError as e:
            raise DataError(f"{p}:{n} is not valid JSON ({e}); one record per line") from e
    return rows


def _read_json_or_jsonl(p: Path) -> list[Any]:
    """A JSON list (or ``{"key": [...]}``), or JSON Lines (by suffix, or when the file is
    not one JSON document but its lines are)."""
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"{p} is not UTF-8 text (byte {e.start} is {e.object[e.start : e.start + 1]!r}); "
            "give a JSON list or a .jsonl file of records"
        ) from None
    if p.suffix == ".jsonl":
        return _read_jsonl(p, text)
    try:
        data = json.loads(text)
    except ValueError as e:
        first = next((ln for ln in text.splitlines() if ln.strip()), "")
        try:
            is_lines = isinstance(json.loads(first), dict)
        except ValueError:
            is_lines = False
        if is_lines:
            return _read_jsonl(p, text)
        raise DataError(f"{p} is not valid JSON ({e}); give a JSON list or a .jsonl file") from e
    if isinstance(data, dict):  # {"data": [...]}-style wrappers
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            return lists[0]
    if not isinstance(data, list):
        raise DataError(f"{p} must hold a JSON list of records, got {type(data).__name__}")
    return data


def load_records(
    path: str | os.PathLike[str],
    fields: dict[str, str] | None = None,
    on_bad_record: str = "error",
    required: Sequence[str] = REQUIRED,
) -> list[dict[str, str]]:
    """Read ``path`` (JSON list or JSONL) into records with canonical field names.

    ``fields`` maps canonical names to the file's, e.g. ``{"output": "response"}``.
    ``required`` names the fields every record must have as strings (preference data
    for DPO asks for ``("instruction", "chosen", "rejected")``); ``input`` is optional.
    """
    if on_bad_record not in ON_BAD:
        raise ConfigError(f"on_bad_record must be one of {ON_BAD}, got {on_bad_record!r}")
    canonical = list(dict.fromkeys([required[0], *OPTIONAL, *required[1:]]))  # input 2nd
    names = {**{k: k for k in canonical}, **(fields or {})}
    unknown = sorted(set(names) - set(canonical))
    if unknown:
        raise ConfigError(f"unknown field(s) {unknown}; map only {sorted(canonical)}")
    p = Path(path)
    if not p.is_file():
        raise DataError(f"instruction data not found: {p} (a .json list or .jsonl file)")
    rows = _read_json_or_jsonl(p)
    if not rows:
        raise DataError(f"{p} holds no records; an instruction dataset needs at least one")
    records, bad = [], []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            bad.append((i, "not a JSON object"))
            continue
        missing = [names[k] for k in required if not isinstance(row.get(names[k]), str)]
        extra = row.get(names["input"])
        if extra is not None and not isinstance(extra, str):
            missing.append(f"{names['input']} (not a string)")
        if missing:
            bad.append((i, "missing or non-string " + ", ".join(repr(m) for m in missing)))
            continue
        records.append({k: row.get(names[k]) or "" for k in canonical})
    if bad:
        shown = "; ".join(f"record {i}: {why}" for i, why in bad[:5])
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        if on_bad_record == "error":
            raise DataError(
                f"{p}: {len(bad)} bad record(s): {shown}{more}. Fix the data, map field names "
                f"with fields (now {names}), or set on_bad_record=skip to drop them"
            )
        warnings.warn(f"{p}: skipped {len(bad)} bad record(s): {shown}{more}", stacklevel=2)
    if not records:
        raise DataError(f"{p}: no usable records left (all {len(rows)} were bad)")
    return records


def split_records(
    records: Sequence[Any], val_fraction: float = 0.05, test_fraction: float = 0.1, seed: int = 0
) -> tuple[list[Any], list[Any], list[Any]]:
    """Deterministic ``(train, val, test)``: a seeded permutation, test first, then val."""
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(
            f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must be in "
            "[0, 1) with a sum below 1"
        )
    n = len(records)
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_test, n_val = round(n * test_fraction), round(n * val_fraction)
    if n - n_test - n_val < 1:
        raise DataError(f"{n} record(s) leave nothing to train on after the val/test split")
    test = [records[i] for i in order[:n_test]]
    val = [records[i] for i in order[n_test : n_test + n_val]]
    train = [records[i] for i in order[n_test + n_val :]]
    return train, val, test


@dataclass
class TokenizeStats:
    total: int = 0
    truncated: int = 0  # cut to the context, still with trained tokens
    dropped: int = 0  # nothing trained left after the cut (the prompt fills the context)


def tokenize_record(
    record: dict[str, str], fmt: PromptFormat, tokenizer: Any, max_length: int, train_on: str
) -> tuple[Example | None, bool]:
    """``(example, truncated)`` of one record; the example is None when no trained
    label is left within ``max_length`` positions."""
    x, y = to_features(fmt.render(record, tokenizer), train_on)
    cut = len(x) > max_length
    x, y = x[:max_length], y[:max_length]
    if all(t == IGNORE_INDEX for t in y):
        return None, cut
    return Example(x, y), cut


def tokenize_records(
    records: Sequence[dict[str, str]],
    fmt: PromptFormat,
    tokenizer: Any,
    max_length: int,
    train_on: str = "response",
    warn: bool = True,
) -> tuple[list[Example], TokenizeStats]:
    """Render every record to ``(input_ids, labels)`` of at most ``max_length`` positions."""
    if max_length < 1:
        raise ConfigError(f"max_length must be >= 1, got {max_length}")
    out, stats = [], TokenizeStats(total=len(records))
    for rec in records:
        example, cut = tokenize_record(rec, fmt, tokenizer, max_length, train_on)
        if example is None:
            stats.dropped += 1
            continue
        stats.truncated += cut
        out.append(example)
    if warn and (stats.truncated or stats.dropped):
        warnings.warn(
            f"{stats.truncated} of {stats.total} example(s) were truncated to {max_length} "
            f"tokens and {stats.dropped} dropped (no response token fit); raise max_length "
            "(up to the model's context_length) to keep them whole",
            stacklevel=2,
        )
    if not out:
        raise DataError(
            f"none of the {stats.total} record(s) has a response token within "
            f"{max_length} tokens; raise max_length or shorten the prompts"
        )
    return out, stats


def pack_examples(examples: Sequence[Example], max_length: int) -> list[PackedRow]:
    """Concatenate consecutive examples into sequences of at most ``max_length`` positions.

    Each packed sequence is a :class:`PackedRow`: its ``document_ids`` say
    which of the sequence's examples each position belongs to. The loader hands it
    to the model, which then lets each example attend only to itself and restarts
    its positions at 0, so an example trains exactly as it would in a row of its own
    while padding nearly vanishes. Every label is trained exactly once.

    >>> rows = pack_examples([Example([1, 2], [2, 3]), Example([4], [5]), Example([6, 7], [7, 8])], 3)
    >>> [row.document_ids for row in rows]
    [[0, 0, 1], [0, 0]]
    """
    packed: list[PackedRow] = []
    xs: list[int] = []
    ys: list[int] = []
    docs: list[int] = []
    for x, y in examples:
        if len(x) > max_length:
            raise DataError(f"an example of {len(x)} positions exceeds max_length {max_length}")
        if len(xs) + len(x) > max_length:
            packed.append(PackedRow(xs, ys, docs))
            xs, ys, docs = [], [], []
        doc = docs[-1] + 1 if docs else 0
        xs, ys, docs = xs + list(x), ys + list(y), docs + [doc] * len(x)
    if xs:
        packed.append(PackedRow(xs, ys, docs))
    return packed


def collate(
    examples: Sequence[Example | PackedRow], pad_id: int, pad_to_multiple_of: int = 1
) -> tuple[torch.Tensor, ...]:
    """Right-pad to the batch's longest example: ``(x, y)`` LongTensors ``[B, T]``.

    Packed examples (with document ids) give ``(x, y, document_ids)``; padding is
    document -1, which no real token attends to.

    >>> x, y = collate([Example([1, 2, 3], [2, 3, 4]), Example([5], [6])], pad_id=0)
    >>> x.tolist(), y.tolist()
    ([[1, 2, 3], [5, 0, 0]], [[2, 3, 4], [6, -100, -100]])
    """
    if not examples:
        raise DataError("collate got an empty batch")
    longest = max(len(ex[0]) for ex in examples)
    m = max(1, pad_to_multiple_of)
    T = -(-longest // m) * m
    fills = (pad_id, IGNORE_INDEX, -1)[: len(examples[0])]
    out = tuple(torch.full((len(examples), T), f, dtype=torch.long) for f in fills)
    for i, ex in enumerate(examples):
        for tensor, values in zip(out, ex, strict=True):
            tensor[i, : len(values)] = torch.as_tensor(values, dtype=torch.long)
    return out


class InstructionLoader:
    """Dynamically padded batches of tokenized examples, for the Trainer.

    A batch is ``(x, y)``, or ``(x, y, {"document_ids": ...})`` for packed
    examples: the Trainer passes that dict to the model as keyword arguments.

    ``sort_by_length`` groups examples of similar length (sorted within windows of
    ``64 * batch_size`` of the shuffled order, then the batches are shuffled), so a
    batch wastes little on padding while batches still come in random order.
    """

    def __init__(
        self,
        examples: Sequence[Example | PackedRow],
        batch_size: int,
        pad_id: int,
        *,
        shuffle: bool = True,
        sort_by_length: bool = False,
        seed: int = 0,
        max_length: int | None = None,
        pad_to_multiple_of: int = 1,
        rank: int = 0,
        world_size: int = 1,
        device: str | torch.device = "cpu",
    ):
        if not examples:
            raise DataError("the instruction loader got no examples")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.examples = list(examples)
        self.batch_size, self.pad_id = batch_size, pad_id
        self.shuffle, self.sort_by_length, self.seed = shuffle, sort_by_length, seed
        self.pad_to_multiple_of = pad_to_multiple_of
        self.rank, self.world_size = rank, world_size
        self.device = torch.device(device)
        self.block_size = max_length or max(len(ex[0]) for ex in self.examples)
        self.step = 0
        self._plan: tuple[int, list[list[int]]] | None = None

    def __len__(self) -> int:
        """Batches (optimizer micro-steps) per epoch."""
        return len(self._epoch_batches(0))

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        if self._plan is not None and self._plan[0] == epoch:
            return self._plan[1]
        n, per_step = len(self.examples), self.batch_size * self.world_size
        order = list(range(n))
        rng = random.Random(self.seed * 1_000_003 + epoch)
        if self.shuffle:
            rng.shuffle(order)
        if self.sort_by_length:
            window = 64 * per_step
            lens = [len(ex[0]) for ex in self.examples]
            order = [
                i
                for s in range(0, n, window)
                for i in sorted(order[s : s + window], key=lens.__getitem__)
            ]
        batches = [order[s : s + per_step] for s in range(0, n, per_step)]
        if self.sort_by_length and self.shuffle:
            rng.shuffle(batches)
        self._plan = (epoch, batches)
        return batches

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t.to(self.device)

    def _batch(self, idx: list[int]) -> tuple:
        mine = idx[self.rank :: self.world_size] or idx[:1]  # ranks never share an example
        x, y, *docs = (
            self._to_device(t)
            for t in collate([self.examples[i] for i in mine], self.pad_id, self.pad_to_multiple_of)
        )
        return (x, y, {"document_ids": docs[0]}) if docs else (x, y)

    def next_batch(self) -> tuple:
        per_epoch = len(self._epoch_batches(0))
        epoch, b = divmod(self.step, per_epoch)
        self.step += 1
        return self._batch(self._epoch_batches(epoch)[b])

    def eval_batches(self, n: int | None = None) -> Iterator[tuple]:
        """The first ``n`` batches in file order (all when ``n`` is None or too large)."""
        per_step = self.batch_size * self.world_size
        starts = range(0, len(self.examples), per_step)
        for b, s in enumerate(starts):
            if n is not None and b >= n:
                return
            yield self._batch(list(range(s, min(s + per_step, len(self.examples)))))

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "seed": self.seed, "n": len(self.examples)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("n", len(self.examples)) != len(self.examples):
            raise DataError(
                f"the checkpoint's loader saw {state['n']} examples, this data has "
                f"{len(self.examples)}; resume with the same data and split settings"
            )
        self.step = int(state["step"])


__all__ = [
    "DEFAULT_FIELDS",
    "Example",
    "InstructionLoader",
    "PackedRow",
    "TokenizeStats",
    "collate",
    "load_records",
    "pack_examples",
    "split_records",
    "tokenize_records",
]
