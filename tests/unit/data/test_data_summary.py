"""Summary counts from first principles, on text and JSONL, with and without a tokenizer."""

from __future__ import annotations

import json
from collections import Counter

from legollm.cli.data import summary_main
from legollm.core.tokenization.specs import CharTokenizer
from legollm.data.summary import summarize_text

DOCS = ["héllo wörld\nsecond line", "naïve café", "zzz zz z"]


def test_summary_of_jsonl_with_char_tokenizer(tmp_path):
    src = tmp_path / "d.jsonl"
    src.write_text("".join(json.dumps({"text": d}) + "\n" for d in DOCS))
    tok = CharTokenizer.from_text(DOCS)
    s = summarize_text([str(src)], tokenizer=tok, top_k=2)
    joined = "".join(DOCS)
    assert s["documents"] == 3 and s["characters"] == len(joined)
    assert s["bytes"] == len(joined.encode("utf-8")) > s["characters"]
    assert s["words"] == sum(len(d.split()) for d in DOCS)
    assert s["lines"] == 4 and s["distinct_characters"] == len(set(joined))
    assert s["tokens"] == len(joined)  # one token per character
    assert s["bytes_per_token"] == len(joined.encode()) / len(joined)
    top = Counter(joined).most_common(2)
    assert [(t, n) for _, t, n in s["top_tokens"]] == top


def test_summary_cli_plot_and_missing_file(tmp_path, capsys):
    src = tmp_path / "a.txt"
    src.write_text("one two\n\nthree\n\nfour five six")
    png = tmp_path / "h.png"
    assert summary_main([str(src), "--split", "paragraph", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "documents: 3" in out and "words: 6" in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert summary_main([str(tmp_path / "nope.txt")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: input not found") and "\n" not in err
