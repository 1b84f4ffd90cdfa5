"""`legollm generate` / `chat` on a Hugging Face Llama directory with a tokenizer.json.

The oracle is transformers' greedy `generate` on the same directory, decoded by the
`tokenizers` library that wrote the tokenizer.json.
"""

from __future__ import annotations

import pytest
import torch

from legollm.cli.main import main
from legollm.core.tokenization.specs import load_tokenizer_file
from legollm.finetuning.templates import get_chat_template
from tests.integration._hf_dirs import make_llama_dir


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("llama")
    hf, tok = make_llama_dir(d)
    return d, hf, tok


def hf_greedy(hf, ids, n, eos=None):
    x = torch.tensor([ids])
    out = hf.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=n, do_sample=False,
                      eos_token_id=eos, pad_token_id=0)[0, len(ids) :].tolist()  # fmt: skip
    return out[: out.index(eos)] if eos is not None and eos in out else out


def test_generate_streams_what_transformers_generates(hf_dir, capsys):
    d, hf, tok = hf_dir
    prompt = "hello world"
    ids = tok.encode(prompt).ids
    hf.generation_config.eos_token_id = None  # our CLI stops only at the tokenizer's EOT
    want = tok.decode(hf_greedy(hf, ids, 20), skip_special_tokens=False)
    assert main(["generate", str(d), "--prompt", prompt, "--strategy", "greedy",
                 "--max-new-tokens", "20"]) == 0  # fmt: skip
    assert capsys.readouterr().out == prompt + want + "\n"


def test_chat_picks_the_llama3_template_and_stops_at_eot(hf_dir, capsys, monkeypatch):
    d, hf, tok = hf_dir
    ours = load_tokenizer_file(d)
    ids, _ = get_chat_template("llama3").render([{"role": "user", "content": "hello"}], ours, True)
    eot = tok.token_to_id("<|eot_id|>")
    want = tok.decode(hf_greedy(hf, ids, 12, eos=eot), skip_special_tokens=False)
    assert len(want) > 5  # a real answer to compare, not an immediate end of turn
    lines = iter(["hello", "/exit"])
    monkeypatch.setattr("builtins.input", lambda _prompt: next(lines))
    argv = ["chat", str(d), "--strategy", "greedy", "--max-new-tokens", "12"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "(llama format)" in out
    assert want + "\n" in out
