"""End to end through the commands: shipped configs, prepare -> summary -> loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from legollm.cli.main import main
from legollm.data import TokenDataLoader, load_tokenizer, read_meta
from legollm.data.prepare import PrepareConfig, iter_documents

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs" / "data").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_parses(path):
    cfg = PrepareConfig.from_yaml(path)
    assert cfg.inputs and cfg.output_dir.startswith("out/")


def test_shakespeare_char_through_the_cli(shared_data, tmp_path, capsys):
    src = shared_data / "text" / "tiny_shakespeare.txt"
    out = tmp_path / "shk"
    args = ["--config", str(CONFIGS[[p.name for p in CONFIGS].index("shakespeare_char.yaml")])]
    assert main(["data", "prepare", *args, "--inputs", str(src), "--output-dir", str(out)]) == 0
    meta = read_meta(out)
    assert meta["dtype"] == "uint16" and meta["vocab_size"] == 65 + 1  # 65 chars + <|endoftext|>
    # every token of the corpus is in the splits, plus one eot per document
    n_docs = sum(meta["num_documents"].values())
    assert sum(meta["num_tokens"].values()) == len(src.read_text()) - _dropped(src) + n_docs

    tok = load_tokenizer(meta["tokenizer"])
    docs = set(iter_documents(PrepareConfig.from_dict({**meta["config"], "inputs": [str(src)]})))
    val = np.fromfile(out / "val.bin", dtype=np.uint16)
    cuts = np.flatnonzero(val == meta["eot_token_id"])
    val_docs = [tok.decode(d[:-1].tolist()) for d in np.split(val, cuts + 1)[:-1]]
    assert len(val_docs) == meta["num_documents"]["val"] and set(val_docs) <= docs

    dl = TokenDataLoader(out, batch_size=4, block_size=64, seed=0)
    x, y = dl.next_batch()
    assert x.shape == (4, 64) and int(x.max()) < meta["vocab_size"]

    capsys.readouterr()
    png = tmp_path / "hist.png"
    assert main(["data", "summary", str(out), "--plot", str(png)]) == 0
    printed = capsys.readouterr().out
    assert f"train: {meta['num_tokens']['train']:,} tokens" in printed
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _dropped(src: Path) -> int:
    """Characters the paragraph split drops: the blank-line separators between groups."""
    import re

    text = src.read_text()
    cfg = PrepareConfig(inputs=[str(src)], output_dir="-", split="paragraph", max_doc_chars=2000)
    kept = sum(len(d) for d in iter_documents(cfg))
    assert kept <= len(text) and re.search(r"\n\s*\n", text)
    return len(text) - kept


def test_text_summary_counts_from_first_principles(shared_data, capsys):
    src = shared_data / "text" / "the_verdict.txt"
    text = src.read_text()
    assert main(["data", "summary", str(src)]) == 0
    out = capsys.readouterr().out
    assert f"characters: {len(text):,}" in out
    assert f"bytes: {len(text.encode()):,}" in out
    assert f"words: {len(text.split()):,}" in out
    assert f"distinct_characters: {len(set(text)):,}" in out
    assert f"lines: {len(text.splitlines()):,}" in out
