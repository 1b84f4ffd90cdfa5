"""A prepared dataset stays whole: a killed re-prepare, a swapped tokenizer file, a val
split too small to validate on, and a corpus of one document."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from legollm.core import tokenization
from legollm.core.exceptions import DataError
from legollm.data import load_tokenizer, prepare_dataset, read_meta
from legollm.data.meta import verify_tokenizer
from legollm.training.config import TrainConfig
from legollm.training.run import build_trainer

ROOT = Path(__file__).resolve().parents[3]
PARAS = ["hello world", "hello tokens", "world of tokens", "tokens of the world", "a last one"]


def _tokenizer_file(folder: Path, merges: int) -> Path:
    """A trained LegoLLM tokenizer saved as ``folder/tok.model`` (same name, other bytes)."""
    tok = tokenization.RegexBPETokenizer()
    tok.train("hello world, hello tokens of the world. " * 20, 256 + merges)
    tok.register_special_tokens({"<|endoftext|>": 256 + merges})
    folder.mkdir()
    return Path(tok.save(folder / "tok.model"))


@pytest.fixture
def two_tokenizers(tmp_path):
    a, b = _tokenizer_file(tmp_path / "a", 4), _tokenizer_file(tmp_path / "b", 24)
    assert a.name == b.name and a.read_bytes() != b.read_bytes()
    (tmp_path / "in.txt").write_text("\n\n".join(PARAS))
    return tmp_path / "in.txt", a, b


def _prepare_kw(text: Path, tok: Path, out: Path) -> dict:
    return dict(inputs=[str(text)], output_dir=str(out), tokenizer="legollm",
                tokenizer_path=str(tok), split="paragraph", val_fraction=0.4, num_workers=1)  # fmt: skip


def _prepare_killed(kw: dict, kill_at: str) -> None:
    """Run a prepare in a child process that dies (os._exit: no cleanup runs) at a step."""
    script = f"""
        import os
        from legollm.data import prepare as P
        if {kill_at!r} == "tokenize":
            P._tokenize_to = lambda *a, **k: os._exit(9)
        else:  # the commit: die once the new tokenizer/ has moved in, before the bins
            real, calls = os.replace, []
            def replace(src, dst):
                calls.append(dst)
                if len(calls) == 3:
                    os._exit(9)
                real(src, dst)
            P.os.replace = replace
        P.prepare_dataset(**{kw!r})
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT)
    assert proc.returncode == 9


def _documents(out: Path) -> list[str]:
    """Every document of both splits, decoded with the tokenizer meta.json names."""
    meta = read_meta(out)
    tok = load_tokenizer(meta["tokenizer"])
    docs = []
    for split in ("train", "val"):
        ids = np.fromfile(out / f"{split}.bin", dtype=meta["dtype"])
        cuts = np.flatnonzero(ids == meta["eot_token_id"])
        docs += [tok.decode(d[:-1].tolist()) for d in np.split(ids, cuts + 1)[:-1]]
    return sorted(docs)


@pytest.mark.parametrize("kill_at", ["tokenize", "commit"])
def test_killed_reprepare_never_mixes_old_bins_and_new_tokenizer(two_tokenizers, tmp_path, kill_at):
    text, tok_a, tok_b = two_tokenizers
    out = tmp_path / "out"
    prepare_dataset(**_prepare_kw(text, tok_a, out))
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}

    _prepare_killed(_prepare_kw(text, tok_b, out), kill_at)
    if (out / "meta.json").exists():  # whatever meta.json says must be what is there
        meta = read_meta(out)
        verify_tokenizer(meta, out)
        assert (out / "tokenizer" / "tok.model").read_bytes() == tok_a.read_bytes()
        assert _documents(out) == sorted(PARAS)
        after = {p.name: p.read_bytes() for p in out.glob("*") if p.is_file()}
        assert after == {k: v for k, v in before.items() if k in after}
    else:  # killed mid-commit: no dataset at all, and train says so
        with pytest.raises(DataError, match="no meta.json"):
            read_meta(out)
    # the next prepare cleans up the leftovers and commits the new dataset whole
    prepare_dataset(**_prepare_kw(text, tok_b, out))
    assert (out / "tokenizer" / "tok.model").read_bytes() == tok_b.read_bytes()
    verify_tokenizer(read_meta(out), out)
    assert _documents(out) == sorted(PARAS)
    assert sorted(p.name for p in out.iterdir()) == [
        "meta.json",
        "tokenizer",
        "train.bin",
        "val.bin",
    ]


def _train_config(data: Path, run: Path, **kw) -> TrainConfig:
    model = {"n_layer": 1, "n_head": 2, "n_embd": 16}
    return TrainConfig.from_dict({"data_dir": str(data), "run_dir": str(run), "model": model,
                                  "batch_size": 2, "block_size": 8, "device": "cpu",
                                  "eval_iters": 2, **kw})  # fmt: skip


def test_train_refuses_a_tokenizer_that_did_not_write_the_data(two_tokenizers, tmp_path):
    """The state an interrupted prepare used to leave: old bins, a new tokenizer file."""
    text, tok_a, tok_b = two_tokenizers
    out = prepare_dataset(**_prepare_kw(text, tok_a, tmp_path / "out"))
    build_trainer(_train_config(out, tmp_path / "ok"))  # the intact dataset is accepted
    (out / "tokenizer" / "tok.model").write_bytes(tok_b.read_bytes())
    with pytest.raises(DataError, match="do not match meta.json's tokenizer_sha256.*data-prepare"):
        build_trainer(_train_config(out, tmp_path / "run"))
    assert not (tmp_path / "run" / "tokenizer").exists()  # the wrong file was not copied


def test_one_document_is_split_by_tokens(shared_data, tmp_path):
    """One file, default split: val gets the last tenth of the tokens, not nothing."""
    src = shared_data / "text" / "the_verdict.txt"
    out = prepare_dataset(inputs=[str(src)], output_dir=str(tmp_path / "o"))
    meta = read_meta(out)
    tok = load_tokenizer(meta["tokenizer"])
    train = np.fromfile(out / "train.bin", dtype=meta["dtype"])
    val = np.fromfile(out / "val.bin", dtype=meta["dtype"])
    eot = meta["eot_token_id"]
    assert train[-1] == eot and val[-1] == eot  # both end a document
    assert (train[:-1] != eot).all() and (val[:-1] != eot).all()
    text = src.read_text()
    assert tok.decode(train[:-1].tolist()) + tok.decode(val[:-1].tolist()) == text
    assert len(val) - 1 == round(len(text) * 0.1)  # char tokens: one per character
    assert meta["num_documents"] == {"val": 1, "train": 1} and meta["split_unit"] == "tokens"


def test_val_split_too_small_for_one_block_is_an_error(tmp_path):
    out = prepare_dataset(inputs=[str(_write(tmp_path / "t.txt", "x" * 200))],
                          output_dir=str(tmp_path / "o"), val_fraction=0.05)  # fmt: skip
    n_val = read_meta(out)["num_tokens"]["val"]
    assert n_val == 11  # 10 characters + the end-of-text id
    with pytest.raises(DataError) as e:
        build_trainer(_train_config(out, tmp_path / "run", block_size=32))
    msg = str(e.value)
    assert "val.bin holds 11 tokens" in msg and "block_size + 1 = 33" in msg
    assert "block_size to at most 10" in msg and "val_fraction" in msg and "eval_iters=0" in msg
    trainer = build_trainer(_train_config(out, tmp_path / "run", block_size=32, eval_iters=0))
    assert trainer.val_loader is None  # asked for explicitly: train without validation
    assert build_trainer(_train_config(out, tmp_path / "r2", block_size=10)).val_loader is not None


def test_unset_data_dir_is_named_not_dot(tmp_path):
    with pytest.raises(DataError, match="data_dir is not set"):
        build_trainer(_train_config(Path(), tmp_path / "run", data_dir=""))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
