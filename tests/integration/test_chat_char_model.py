"""`legollm chat` on a character-level model: Shakespeare's characters have no `#`,
so the plain template (`### User:`) cannot be written. Chat picks the dialogue
template (`User:`), whose characters it has, or says at start-up that it cannot chat."""

from __future__ import annotations

import io
import sys

import pytest
import torch

from legollm.cli.chat import HELP
from legollm.cli.main import main
from legollm.core.tokenization.specs import CharTokenizer
from legollm.finetuning.templates import get_chat_template
from legollm.generation import generate
from legollm.models import DecoderLM, ModelConfig
from legollm.training.checkpoint import save_checkpoint

PLAY = "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"
USER_TEXT = "User Assistant System"  # letters a user might type, and the roles' names


def char_run_dir(d, text: str, eot: bool = True):
    """``best.pt`` of a tiny model whose tokenizer knows only the characters of ``text``."""
    tok = CharTokenizer.from_text([text], eot="<|endoftext|>" if eot else None)
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=tok.vocab_size, context_length=64, n_layer=1, n_head=2,
                      n_embd=16)  # fmt: skip
    model = DecoderLM(cfg)
    save_checkpoint(d / "best.pt", {"model": model.state_dict(), "model_config": cfg.to_dict(),
                                    "tokenizer": tok.spec()})  # fmt: skip
    return model.eval(), tok


def chat(monkeypatch, run_dir, *lines: str, extra=()) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO("".join(line + "\n" for line in lines)))
    return main(["chat", str(run_dir), "--max-new-tokens", "6", "--temperature", "0", *extra])


def test_a_shakespeare_char_model_chats_in_the_dialogue_template(tmp_path, monkeypatch, capsys):
    model, tok = char_run_dir(tmp_path, PLAY + USER_TEXT)
    assert "#" not in tok.chars
    assert chat(monkeypatch, tmp_path, "Speak", "/exit") == 0
    out = capsys.readouterr().out
    assert "(dialogue format: the plain template's text is not in its vocabulary)" in out
    assert "error" not in out
    # the answer is the greedy continuation of the dialogue-rendered turn
    ids = get_chat_template("dialogue").render([{"role": "user", "content": "Speak"}], tok, True)[0]
    eot = tok.eot_token_id
    new = generate(model, torch.tensor([ids]), 6, eos_token_id=eot)[0, len(ids) :].tolist()
    answer = tok.decode(new[: new.index(eot)] if eot in new else new)
    assert f"{answer}\n" in out.split(HELP + "\n", 1)[1]


@pytest.mark.parametrize(
    ("text", "eot", "why"),
    [
        ("abc def", True, "is not in its vocabulary"),  # no ':' for either template
        (PLAY + USER_TEXT, False, "the tokenizer has none of them"),  # nothing to stop at
    ],
)
def test_a_model_that_cannot_chat_says_so_at_start_up(
    tmp_path, monkeypatch, capsys, text, eot, why
):
    char_run_dir(tmp_path, text, eot=eot)
    assert chat(monkeypatch, tmp_path, "hello", "/exit") == 1
    captured = capsys.readouterr()
    assert ">>>" not in captured.out  # refused before the first turn
    err = captured.err
    assert err.count("\n") == 1 and "this model cannot chat" in err
    assert "plain:" in err and "dialogue:" in err and why in err


def test_an_explicit_template_is_not_swapped(tmp_path, monkeypatch, capsys):
    char_run_dir(tmp_path, PLAY + USER_TEXT)
    assert chat(monkeypatch, tmp_path, "Speak", "/exit", extra=["--template", "plain"]) == 1
    err = capsys.readouterr().err
    assert "cannot chat" in err and "'#'" in err and "dialogue:" not in err


def test_the_dialogue_template_is_the_plain_one_without_hashes():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "yo"}]  # fmt: skip
    plain = get_chat_template("plain").render_text(messages, add_generation_prompt=False)
    dialogue = get_chat_template("dialogue").render_text(messages, add_generation_prompt=False)
    assert dialogue == "System:\nBe brief.\n\nUser:\nhi\n\nAssistant:\nyo<|endoftext|>\n\n"
    assert plain == dialogue.replace("System:", "### System:").replace(
        "User:", "### User:").replace("Assistant:", "### Assistant:")  # fmt: skip
