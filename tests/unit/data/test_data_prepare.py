"""prepare_dataset: round trip, split by documents, dtype rule, streaming, bad configs."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from legollm.cli.data import prepare_main
from legollm.core.exceptions import ConfigError, DataError
from legollm.data import TokenDataLoader, load_tokenizer, prepare_dataset, read_meta
from legollm.data.prepare import PrepareConfig, iter_documents

DOCS = [f"Document {i}: " + "the quick brown fox jumps. " * (i % 7 + 1) for i in range(40)]


@pytest.fixture
def corpus(tmp_path):
    """Two text files of blank-line separated paragraphs, and a JSONL file."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.txt").write_text("\n\n".join(DOCS[:15]) + "\n")
    (tmp_path / "in" / "b.md").write_text("\n\n\n".join(DOCS[15:30]))
    with open(tmp_path / "in" / "c.jsonl", "w") as f:
        for d in DOCS[30:]:
            f.write(json.dumps({"text": d, "id": 1}) + "\n")
    return tmp_path / "in"


def _docs_of(out, split):
    """Decode a split straight from its .bin and cut it at the end-of-text id."""
    meta = read_meta(out)
    tok = load_tokenizer(meta["tokenizer"])
    ids = np.fromfile(out / f"{split}.bin", dtype=meta["dtype"])
    assert ids[-1] == meta["eot_token_id"]
    cuts = np.flatnonzero(ids == meta["eot_token_id"])
    return [tok.decode(d[:-1].tolist()) for d in np.split(ids, cuts + 1)[:-1]], cuts


def test_round_trip_documents_and_no_leakage(corpus, tmp_path):
    out = prepare_dataset(
        inputs=[str(corpus)],
        output_dir=str(tmp_path / "out"),
        split="paragraph",
        val_fraction=0.25,
        seed=7,
    )
    train, _ = _docs_of(out, "train")
    val, _ = _docs_of(out, "val")
    strip = [d.rstrip("\n") for d in train + val]  # a.txt ends in one newline
    assert sorted(strip) == sorted(DOCS)  # every document back, exactly once
    assert not set(train) & set(val)  # no document in both splits
    assert len(val) == 10 and len(train) == 30
    meta = read_meta(out)
    assert meta["num_documents"] == {"val": 10, "train": 30}
    assert meta["num_tokens"]["train"] == len(np.fromfile(out / "train.bin", dtype=np.uint16))
    assert {s["path"].rsplit("/", 1)[1] for s in meta["sources"]} == {"a.txt", "b.md", "c.jsonl"}
    assert all(len(s["sha256"]) == 64 for s in meta["sources"])


def test_loader_windows_decode_to_the_file(corpus, tmp_path):
    out = prepare_dataset(inputs=[str(corpus)], output_dir=str(tmp_path / "out"), split="paragraph")
    meta = read_meta(out)
    tok = load_tokenizer(meta["tokenizer"])
    ids = np.fromfile(out / "train.bin", dtype=meta["dtype"])
    dl = TokenDataLoader(out, batch_size=2, block_size=16, mode="sequential")
    text = ""
    for x, y in dl.eval_batches():
        assert (x[:, 1:] == y[:, :-1]).all()
        text += "".join(tok.decode(row.tolist()) for row in x)
    n = len(dl) * 2 * 16
    assert text == tok.decode(ids[:n].tolist())


def test_seeded_shuffle_is_reproducible(corpus, tmp_path):
    kw = dict(inputs=[str(corpus)], split="paragraph")
    a = prepare_dataset(output_dir=str(tmp_path / "a"), seed=1, **kw)
    b = prepare_dataset(output_dir=str(tmp_path / "b"), seed=1, **kw)
    c = prepare_dataset(output_dir=str(tmp_path / "c"), seed=2, **kw)
    assert (a / "train.bin").read_bytes() == (b / "train.bin").read_bytes()
    assert (a / "train.bin").read_bytes() != (c / "train.bin").read_bytes()


def test_small_chunks_give_the_same_bytes(corpus, tmp_path):
    """Streaming in tiny chunks must not change a single token."""
    kw = dict(inputs=[str(corpus)], split="paragraph")
    a = prepare_dataset(output_dir=str(tmp_path / "a"), **kw)
    b = prepare_dataset(output_dir=str(tmp_path / "b"), chunk_chars=50, **kw)
    for split in ("train", "val"):
        assert (a / f"{split}.bin").read_bytes() == (b / f"{split}.bin").read_bytes()


def test_paragraph_split_across_read_blocks(tmp_path):
    """A separator straddling the read block must still split documents correctly."""
    from legollm.data.prepare import READ_BLOCK

    para = "x" * (READ_BLOCK - 1)
    (tmp_path / "big.txt").write_text(para + "\n\n" + "tail paragraph\n\n\nlast")
    cfg = PrepareConfig(inputs=[str(tmp_path / "big.txt")], output_dir="-", split="paragraph")
    assert list(iter_documents(cfg)) == [para, "tail paragraph", "last"]


def test_max_doc_chars_groups_paragraphs(tmp_path):
    (tmp_path / "p.txt").write_text("aaaa\n\nbbbb\n\ncccc\n\ndddd")
    cfg = PrepareConfig(
        inputs=[str(tmp_path / "p.txt")], output_dir="-", split="paragraph", max_doc_chars=10
    )
    assert list(iter_documents(cfg)) == ["aaaa\n\nbbbb", "cccc\n\ndddd"]


@pytest.mark.parametrize(("special_id", "dtype"), [(65535, "uint16"), (65536, "uint32")])
def test_dtype_rule_at_the_uint16_boundary(corpus, tmp_path, special_id, dtype):
    out = prepare_dataset(
        inputs=[str(corpus)], output_dir=str(tmp_path / "o"), special_tokens={"<|pad|>": special_id}
    )
    meta = read_meta(out)
    assert meta["dtype"] == dtype and meta["vocab_size"] == special_id + 1
    itemsize = np.dtype(dtype).itemsize
    assert (out / "train.bin").stat().st_size == meta["num_tokens"]["train"] * itemsize
    x, _ = TokenDataLoader(out, 1, 8, mode="sequential").next_batch()
    assert x.max() < special_id  # ids read back as ids, not as byte garbage


def test_vocab_larger_than_dtype_is_rejected_before_work(corpus, tmp_path):
    with pytest.raises(ConfigError, match="uint16 holds ids up to 65535"):
        prepare_dataset(
            inputs=[str(corpus)],
            output_dir=str(tmp_path / "o"),
            dtype="uint16",
            special_tokens={"<|pad|>": 70000},
        )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--inputs", "no/such/file.txt"], "input not found: no/such/file.txt"),
        (["--tokenizer", "sentencepiece"], "unknown tokenizer type 'sentencepiece'"),
        (["--tokenizer", "gpt2"], "tokenizer gpt2 needs encoder_json"),
        (["--tokenizer", "tiktoken", "--tokenizer-path", "x.tiktoken"], "tokenizer file not found"),
        (["--dtype", "uint16", "--special-tokens", '{"<|x|>": 65536}'], "use dtype 'auto'"),
        (["--val-fraction", "1.5"], "val_fraction must be in [0, 1)"),
        (["--split", "sentences"], "unknown split 'sentences'"),
        (["--config", "missing.yaml"], "config file not found"),
        (["--config", "."], "--config . is a folder; give a YAML file"),
        (["--output-dir", "/proc/legollm/o"], "cannot write to output_dir /proc/legollm/o"),
        (["--tokenizer", "legollm", "--tokenizer-path", "."], "tokenizer_path=. is a folder"),
    ],
)
def test_cli_bad_config_is_one_clear_line(corpus, tmp_path, capsys, args, message):
    base = ["--inputs", str(corpus), "--output-dir", str(tmp_path / "o")]
    rc = prepare_main(base + args)
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err.startswith("error: ") and "\n" not in err
    assert message in err
    assert not (tmp_path / "o").exists()


def test_read_file_names_a_folder_as_a_folder(tmp_path):
    from legollm.core.utils import read_file

    with pytest.raises(DataError, match="is a folder, not a file"):
        read_file(tmp_path)
    with pytest.raises(DataError, match="file not found"):
        read_file(tmp_path / "nope.txt")


def test_yaml_config_with_flag_override(corpus, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"inputs: [{corpus}]\noutput_dir: {tmp_path / 'o'}\nsplit: paragraph\nseed: 3\n")
    assert prepare_main(["--config", str(cfg), "--val-fraction", "0.5"]) == 0
    meta = read_meta(tmp_path / "o")
    assert meta["config"]["seed"] == 3 and meta["num_documents"]["val"] == 20
    cfg.write_text("inputs: [x]\noutput_dir: y\nbogus: 1\n")
    assert prepare_main(["--config", str(cfg)]) == 1
    assert "unknown prepare config field(s) ['bogus']" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--verbose", "-v"])
def test_config_with_verbose_prints_each_step(corpus, tmp_path, capsys, flag):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"inputs: [{corpus}]\noutput_dir: {tmp_path / 'o'}\nsplit: paragraph\n")
    assert prepare_main(["--config", str(cfg), flag]) == 0
    err = capsys.readouterr().err
    assert "3 input file(s)" in err and "tokenized 40 document(s)" in err  # a.txt, b.md, c.jsonl
    meta = read_meta(tmp_path / "o")
    assert f"train {meta['num_tokens']['train']:,} tokens" in err


def test_failed_prepare_leaves_the_previous_dataset_untouched(corpus, tmp_path):
    out = prepare_dataset(inputs=[str(corpus)], output_dir=str(tmp_path / "o"), split="paragraph")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with open(corpus / "c.jsonl", "a") as f:
        f.write('{"text": "fine"}\n{"body": "no text field"}\n')
    with pytest.raises(DataError, match=r"c.jsonl:12 has no string field 'text'"):
        prepare_dataset(inputs=[str(corpus)], output_dir=str(out), split="paragraph")
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before  # same files, same bytes, no temp files left


def test_memory_stays_bounded_by_the_chunk_not_the_corpus(tmp_path):
    """A 12 MB corpus prepared in 64 K-character chunks must not hold the corpus in RAM."""
    import tracemalloc

    para = "All the world's a stage, and all the men and women merely players. " * 3
    n = 12_000_000 // (len(para) + 2)
    (tmp_path / "big.txt").write_text("\n\n".join([para] * n))
    cfg = dict(inputs=[str(tmp_path / "big.txt")], output_dir=str(tmp_path / "o"),
               split="paragraph", max_doc_chars=20_000, chunk_chars=64_000)  # fmt: skip
    tracemalloc.start()
    try:
        out = prepare_dataset(**cfg)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sum(read_meta(out)["num_tokens"].values()) > 11_000_000
    assert (
        peak < 4_000_000
    )  # a third of the text, a sixth of the .bin, f"peak {peak / 1e6:.1f} MB for a 12 MB corpus"


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="ab \n\t", max_size=80), block=st.integers(1, 9))
def test_streamed_split_equals_splitting_the_whole_text(text, block):
    """Reading in blocks of any size gives the pieces re.split gives on the whole string."""
    from legollm.data.prepare import SPLIT_MODES, _pieces

    sep = re.compile(SPLIT_MODES["paragraph"])
    got = [t for t, _ in _pieces(io.StringIO(text), sep, block=block)]
    want = sep.split(text)
    assert [g for g in got if g] == [w for w in want if w]
