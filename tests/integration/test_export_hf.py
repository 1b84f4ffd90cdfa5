"""`legollm export --format hf`: transformers loads what we write and computes our logits."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM

from legollm.cli.main import main
from legollm.models.loading import load_model
from tests.integration._hf_dirs import make_llama_dir
from tests.integration._run_dirs import make_run_dir


def _logits_match(ours, exported_dir, ids):
    hf = AutoModelForCausalLM.from_pretrained(exported_dir).eval()
    with torch.no_grad():
        theirs = hf(torch.tensor([ids])).logits
        mine = ours(torch.tensor([ids]))
    mine = mine[0] if isinstance(mine, tuple) else mine
    torch.testing.assert_close(theirs, mine, rtol=1e-4, atol=1e-4)


def test_a_checkpoint_exports_to_a_directory_transformers_loads(tmp_path, capsys):
    model, tok = make_run_dir(tmp_path / "run", "hello world " * 50, 260, 261, 64)
    out = tmp_path / "hf"
    assert main(["export", str(tmp_path / "run"), "--format", "hf", "--output", str(out)]) == 0
    assert "has no Hugging Face form" in capsys.readouterr().out
    _logits_match(model, out, tok.encode("hello world hello"))


def test_an_hf_directory_round_trips_with_its_tokenizer(tmp_path, capsys):
    make_llama_dir(tmp_path / "src")
    out = tmp_path / "hf"
    argv = ["export", str(tmp_path / "src"), "--format", "hf", "--output", str(out)]
    assert main(argv) == 0
    assert (out / "tokenizer.json").read_bytes() == (tmp_path / "src/tokenizer.json").read_bytes()
    loaded = load_model(tmp_path / "src")
    _logits_match(loaded.model, out, loaded.tokenizer.encode("hello world, how are you"))
    assert main(argv) == 1  # not over an existing export without --force
    assert "--force" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0
