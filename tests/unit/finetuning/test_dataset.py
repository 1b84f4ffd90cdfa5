"""Instruction data: reading, bad records, splits, truncation, dynamic padding, the loader."""

import json

import pytest
import torch

from legollm.core.exceptions import ConfigError, DataError
from legollm.finetuning.dataset import (
    InstructionLoader,
    collate,
    load_records,
    pack_examples,
    split_records,
    tokenize_records,
)
from legollm.finetuning.formats import IGNORE_INDEX, AlpacaFormat
from tests.unit.finetuning.conftest import RECORDS


def test_json_and_jsonl_with_mapped_field_names(tmp_path):
    rows = [{"q": r["instruction"], "ctx": r["input"], "a": r["output"]} for r in RECORDS]
    (tmp_path / "d.json").write_text(json.dumps(rows))
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    fields = {"instruction": "q", "input": "ctx", "output": "a"}
    assert load_records(tmp_path / "d.json", fields) == RECORDS
    assert load_records(tmp_path / "d.jsonl", fields) == RECORDS
    # JSON Lines under another suffix, and a pretty-printed {"data": [...]} wrapper
    (tmp_path / "lines.txt").write_text("\n".join(json.dumps(r) for r in rows))
    (tmp_path / "wrapped.json").write_text(json.dumps({"data": rows}, indent=1))
    assert load_records(tmp_path / "lines.txt", fields) == RECORDS
    assert load_records(tmp_path / "wrapped.json", fields) == RECORDS


def test_input_field_is_optional(tmp_path):
    (tmp_path / "d.json").write_text(json.dumps([{"instruction": "i", "output": "o"}]))
    assert load_records(tmp_path / "d.json") == [{"instruction": "i", "input": "", "output": "o"}]


def test_bad_records_are_reported_by_index(tmp_path):
    rows = [RECORDS[0], {"instruction": "no output"}, RECORDS[1], ["not", "a", "dict"]]
    (tmp_path / "d.json").write_text(json.dumps(rows))
    with pytest.raises(DataError) as e:
        load_records(tmp_path / "d.json")
    msg = str(e.value)
    assert "record 1" in msg and "'output'" in msg and "record 3" in msg
    assert "on_bad_record=skip" in msg
    with pytest.warns(UserWarning, match="skipped 2 bad record"):
        kept = load_records(tmp_path / "d.json", on_bad_record="skip")
    assert kept == [RECORDS[0], RECORDS[1]]


def test_empty_and_broken_files(tmp_path):
    (tmp_path / "empty.json").write_text("[]")
    with pytest.raises(DataError, match="no records"):
        load_records(tmp_path / "empty.json")
    (tmp_path / "bad.jsonl").write_text('{"instruction": "a", "output": "b"}\n{oops\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2"):
        load_records(tmp_path / "bad.jsonl")
    with pytest.raises(DataError, match="not found"):
        load_records(tmp_path / "missing.json")
    (tmp_path / "all_bad.json").write_text(json.dumps([{"x": 1}]))
    with pytest.warns(UserWarning), pytest.raises(DataError, match="no usable records"):
        load_records(tmp_path / "all_bad.json", on_bad_record="skip")
    with pytest.raises(ConfigError, match="unknown field"):
        load_records(tmp_path / "empty.json", fields={"answer": "a"})


def test_split_is_deterministic_disjoint_and_complete():
    items = list(range(100))
    a = split_records(items, 0.1, 0.2, seed=3)
    assert a == split_records(items, 0.1, 0.2, seed=3)
    assert a != split_records(items, 0.1, 0.2, seed=4)
    train, val, test = a
    assert (len(train), len(val), len(test)) == (70, 10, 20)
    assert sorted(train + val + test) == items
    with pytest.raises(DataError, match="nothing to train"):
        split_records([1], 0.0, 0.9)
    with pytest.raises(ConfigError):
        split_records(items, 0.6, 0.5)


def test_truncation_counts_and_drops(char_tokenizer):
    fmt = AlpacaFormat()
    long_out = {"instruction": "x", "input": "", "output": "y" * 500}
    long_prompt = {"instruction": "x" * 500, "input": "", "output": "y"}
    plen = len(fmt.prompt_ids(long_out, char_tokenizer))
    with pytest.warns(UserWarning, match="1 of 3 example.*truncated.*1 dropped"):
        ex, stats = tokenize_records(
            [RECORDS[0], long_out, long_prompt], fmt, char_tokenizer, plen + 40
        )
    assert (stats.truncated, stats.dropped) == (1, 1)
    assert [len(x) for x, _ in ex][1] == plen + 40
    with pytest.raises(DataError, match="raise max_length"):
        tokenize_records([long_prompt], fmt, char_tokenizer, 50, warn=False)


def test_collate_pads_to_the_batch_longest_with_ignored_labels():
    ex = [([1, 2, 3, 4], [-100, 3, 4, 5]), ([7, 8], [8, 9])]
    x, y = collate(ex, pad_id=0)
    assert x.shape == (2, 4)  # the batch's longest, not a fixed context
    assert x.tolist() == [[1, 2, 3, 4], [7, 8, 0, 0]]
    assert y.tolist() == [[-100, 3, 4, 5], [8, 9, IGNORE_INDEX, IGNORE_INDEX]]
    x, _ = collate(ex, pad_id=0, pad_to_multiple_of=8)
    assert x.shape == (2, 8)


def _examples(n):
    return [([i] * (1 + i % 7), [i] * (1 + i % 7)) for i in range(n)]


def test_loader_epochs_cover_every_example_once_and_resume_exactly():
    loader = InstructionLoader(_examples(10), batch_size=3, pad_id=0, seed=1)
    assert len(loader) == 4
    seen = [int(x[i, 0]) for _ in range(4) for x, _ in [loader.next_batch()] for i in range(len(x))]
    assert sorted(seen) == list(range(10))
    a = InstructionLoader(_examples(10), batch_size=3, pad_id=0, seed=1)
    for _ in range(5):
        a.next_batch()
    b = InstructionLoader(_examples(10), batch_size=3, pad_id=0, seed=1)
    b.load_state_dict(a.state_dict())
    for _ in range(6):
        xa, ya = a.next_batch()
        xb, yb = b.next_batch()
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    with pytest.raises(DataError, match="same data"):
        InstructionLoader(_examples(9), 3, 0).load_state_dict(a.state_dict())


def test_sorted_by_length_batches_pad_less():
    ex = _examples(200)
    plain = InstructionLoader(ex, batch_size=8, pad_id=0, seed=0)
    grouped = InstructionLoader(ex, batch_size=8, pad_id=0, seed=0, sort_by_length=True)

    def padded(loader):
        return sum(int((loader.next_batch()[1] == IGNORE_INDEX).sum()) for _ in range(len(loader)))

    assert padded(grouped) < padded(plain) / 2


def test_eval_batches_are_fixed_and_complete():
    loader = InstructionLoader(_examples(10), batch_size=4, pad_id=0, shuffle=False)
    firsts = [x[:, 0].tolist() for x, _ in loader.eval_batches(None)]
    assert firsts == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(list(loader.eval_batches(2))) == 2


def test_packing_trains_every_label_once_with_less_padding():
    ex = _examples(50)
    packed = pack_examples(ex, max_length=16)
    assert all(len(x) == len(y) == len(docs) <= 16 for x, y, docs in packed)
    flat = [t for _, y, _ in packed for t in y]
    assert flat == [t for _, y in ex for t in y]  # same labels, same order, none lost
    assert len(packed) < len(ex) / 2
    with pytest.raises(DataError, match="exceeds max_length"):
        pack_examples([([1] * 5, [1] * 5)], max_length=4)
