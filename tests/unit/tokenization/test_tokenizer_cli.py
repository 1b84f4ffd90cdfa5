"""The tokenizer commands as a user runs them."""

from __future__ import annotations

from legollm.cli.main import main
from legollm.core.tokenization import RegexBPETokenizer


def test_train_encode_decode_round_trip(tmp_path, shared_data, capsys):
    out = tmp_path / "tok.json"
    src = shared_data / "text" / "the_verdict.txt"
    assert main(["tokenizer", "train", "--input", str(src), "--vocab-size", "300", "--output", str(out), "--pattern", "gpt2"]) == 0  # fmt: skip
    assert "merges" in capsys.readouterr().out  # progress is shown
    tok = RegexBPETokenizer.load(out)
    assert tok.vocab_size == 301 and tok.eot_token_id == 300
    assert main(["tokenizer", "encode", "--tokenizer", str(out), "Hello there"]) == 0
    ids = capsys.readouterr().out.split()
    assert [int(i) for i in ids] == tok.encode("Hello there")
    assert main(["tokenizer", "decode", "--tokenizer", str(out), *ids]) == 0
    assert capsys.readouterr().out == "Hello there\n"


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["tokenizer", "decode", "--tokenizer", str(tmp_path / "missing.json"), "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.json" in err
    src = tmp_path / "a.txt"
    src.write_text("abc")
    assert main(["tokenizer", "train", "--input", str(src), "--vocab-size", "100", "--output", str(tmp_path / "t")]) == 1  # fmt: skip
    assert "at least 256" in capsys.readouterr().err
