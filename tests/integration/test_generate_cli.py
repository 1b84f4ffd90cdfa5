"""`legollm generate` and scripts/generate.py: what they print is what generate() decodes."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
import torch

from legollm.cli.main import main
from legollm.core.tokenization import RegexBPETokenizer
from legollm.generation import generate
from tests.integration._run_dirs import make_run_dir

ROOT = Path(__file__).resolve().parents[2]
TEXT = "the cat sat on the mat. the dog sat on the log. " * 20


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory as training leaves it: best.pt naming a LegoLLM tokenizer file."""
    d = tmp_path_factory.mktemp("run")
    model, tok = make_run_dir(d, TEXT, vocab_size=280, model_vocab=288, context_length=64)
    return d, model, tok


def expected_text(model, tok, prompt: str, n: int) -> str:
    ids = torch.tensor([tok.encode(prompt)])
    out = generate(model, ids, n, eos_token_id=tok.eot_token_id, vocab_limit=281)
    out = out[0, ids.shape[1] :].tolist()
    if tok.eot_token_id in out:
        out = out[: out.index(tok.eot_token_id)]
    return tok.decode(out)


def test_greedy_output_is_the_prompt_plus_the_decoded_generation(run_dir, capsys):
    d, model, tok = run_dir
    args = ["--prompt", "the cat", "--strategy", "greedy", "--max-new-tokens", "24"]
    assert main(["generate", str(d), *args]) == 0
    want = "the cat" + expected_text(model, tok, "the cat", 24) + "\n"
    assert capsys.readouterr().out == want

    spec = importlib.util.spec_from_file_location("gen_script", ROOT / "scripts" / "generate.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.main(["--checkpoint", str(d / "best.pt"), *args]) == 0
    assert capsys.readouterr().out == want


def test_stop_string_ends_the_output_before_it(run_dir, capsys):
    d, model, tok = run_dir
    full = expected_text(model, tok, "the dog", 24)
    stop = full[4:6]
    assert stop and full.find(stop) >= 0
    args = ["--prompt", "the dog", "--strategy", "greedy", "--max-new-tokens", "24"]
    assert main(["generate", str(d), *args, "--stop", stop]) == 0
    assert capsys.readouterr().out == "the dog" + full[: full.find(stop)] + "\n"


def test_seeded_sampling_repeats(run_dir, capsys):
    d, _, _ = run_dir
    args = ["generate", str(d), "--prompt", "the", "--seed", "3", "--top-k", "20"]
    main(args)
    first = capsys.readouterr().out
    main(args)
    assert capsys.readouterr().out == first


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--prompt", ""], "prompt is empty"),
        (["--prompt", "the", "--top-p", "1.5"], "top_p"),
        (["--prompt", "the", "--temperature", "-1"], "temperature"),
        (
            ["--prompt", "the", "--max-new-tokens", "100", "--no-window"],
            "exceeds the model's context",
        ),
    ],
)
def test_bad_input_is_one_error_line_and_no_output(run_dir, capsys, extra, message):
    d, _, _ = run_dir
    assert main(["generate", str(d), *extra]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error:") and message in err and err.count("\n") == 1


def test_not_a_model_path_is_a_clear_error(tmp_path, capsys):
    assert main(["generate", str(tmp_path), "--prompt", "x"]) == 1
    assert "neither a LegoLLM checkpoint" in capsys.readouterr().err


@pytest.mark.shared_data
def test_hf_directory_with_gpt2_tokenizer_files(tmp_path, shared_data, capsys):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=2, n_positions=128)).eval()
    hf.save_pretrained(tmp_path)
    shutil.copy(shared_data / "gpt2" / "encoder.json", tmp_path / "vocab.json")
    shutil.copy(shared_data / "gpt2" / "vocab.bpe", tmp_path / "merges.txt")
    tok = RegexBPETokenizer.from_gpt2_files(tmp_path / "vocab.json", tmp_path / "merges.txt")
    prompt = "Hello, world"
    ids = torch.tensor([tok.encode_ordinary(prompt)])
    want = hf.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=16,
                       do_sample=False, pad_token_id=50256, eos_token_id=50256)  # fmt: skip
    new = want[0, ids.shape[1] :].tolist()
    new = new[: new.index(50256)] if 50256 in new else new
    argv = ["generate", str(tmp_path), "--prompt", prompt, "--strategy", "greedy"]
    assert main([*argv, "--max-new-tokens", "16"]) == 0
    assert capsys.readouterr().out == prompt + tok.decode(new) + "\n"
