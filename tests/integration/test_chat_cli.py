"""`legollm chat`: turns, /reset, /exit, Ctrl-C that stops an answer but not the chat."""

from __future__ import annotations

import io

import pytest
import torch

from legollm.cli.chat import ChatSession, chat_loop
from legollm.cli.main import main
from legollm.finetuning.chat import pick_format
from legollm.finetuning.formats import get_format
from legollm.finetuning.templates import get_chat_template
from legollm.generation import generate
from legollm.models import DecoderLM, ModelConfig
from tests.integration._run_dirs import make_run_dir

TEXT = "### User:\nhello there\n\n### Assistant:\nhi, how are you?\n\n" * 10


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    d = tmp_path_factory.mktemp("chat")
    model, tok = make_run_dir(d, TEXT, vocab_size=300, model_vocab=301, context_length=96)
    return d, model, tok


def scripted(lines):
    it = iter(lines)

    def read(_prompt):
        line = next(it)
        if isinstance(line, BaseException):
            raise line
        return line

    return read


def greedy_answer(model, tok, ids, n):
    out = generate(model, torch.tensor([ids]), n, eos_token_id=300)[0, len(ids) :].tolist()
    return tok.decode(out[: out.index(300)] if 300 in out else out)


def test_turns_follow_the_template_and_reset_forgets(parts):
    _, model, tok = parts
    session = ChatSession(model, tok, "plain", max_new_tokens=12, temperature=0.0)
    out = io.StringIO()
    assert chat_loop(session, scripted(["hello", "/reset", "hi there", "/exit"]), out) == 0
    template = get_chat_template("plain")
    first = template.render([{"role": "user", "content": "hello"}], tok, True)[0]
    second = template.render([{"role": "user", "content": "hi there"}], tok, True)[0]
    want = [greedy_answer(model, tok, first, 12), greedy_answer(model, tok, second, 12)]
    printed = out.getvalue()
    assert want[0] + "\n(conversation cleared)\n" + want[1] + "\n" in printed
    assert session.messages == [
        {"role": "user", "content": "hi there"},
        {"role": "assistant", "content": want[1]},
    ]


def test_second_turn_sees_the_first(parts):
    _, model, tok = parts
    session = ChatSession(model, tok, "plain", max_new_tokens=8, temperature=0.0)
    first = "".join(session.reply("hello"))
    list(session.reply("and again"))
    history = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": first},
               {"role": "user", "content": "and again"}]  # fmt: skip
    assert session.messages[:3] == history


def test_ctrl_c_stops_the_answer_not_the_chat(parts, monkeypatch):
    _, model, tok = parts
    session = ChatSession(model, tok, "plain", max_new_tokens=30, temperature=0.0)
    calls = {"n": 0}
    forward = model.forward

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:  # the prefill, two decode steps, then Ctrl-C
            raise KeyboardInterrupt
        return forward(*args, **kwargs)

    monkeypatch.setattr(model, "forward", interrupted)
    out = io.StringIO()
    lines = ["hello", KeyboardInterrupt(), "/nope", "/exit"]
    assert chat_loop(session, scripted(lines), out) == 0
    printed = out.getvalue()
    assert " [stopped]\n" in printed and "(type /exit to quit)" in printed
    assert "unknown command '/nope'" in printed
    assert not model.has_kv_cache  # the interrupted generation freed its cache
    assert session.messages[-1]["role"] == "assistant"  # the partial answer is kept


def test_old_turns_are_dropped_to_fit_and_a_too_long_message_is_an_error(parts):
    _, model, tok = parts
    session = ChatSession(model, tok, "plain", max_new_tokens=40, temperature=0.0)
    for _ in range(4):
        list(session.reply("hello there"))
    assert len(session.messages) < 8  # older exchanges were dropped
    session.messages.append({"role": "user", "content": "hello there"})
    assert len(session.prompt_ids()) <= 96 - 40
    session.messages.pop()
    before = [dict(m) for m in session.messages]
    out = io.StringIO()
    chat_loop(session, scripted(["hello " * 60, "/exit"]), out)
    assert "error: this message is" in out.getvalue()
    assert session.messages == before  # the refused message left the history untouched


def test_alpaca_format_prompts_like_sft(parts):
    _, _, tok = parts
    model = DecoderLM(
        ModelConfig(vocab_size=301, context_length=1024, n_layer=1, n_head=1, n_embd=8)
    )
    session = ChatSession(model, tok, "alpaca", max_new_tokens=4, temperature=0.0)
    alpaca = get_format("alpaca")
    session.messages = [{"role": "user", "content": "Name a colour."}]
    assert session.prompt_ids() == alpaca.prompt_ids(
        {"instruction": "Name a colour.", "input": ""}, tok
    )
    session.reset()
    answer = "".join(session.reply("Name a colour."))
    session.messages.append({"role": "user", "content": "Another?"})
    first = {"instruction": "Name a colour.", "input": "", "output": answer}
    second = alpaca.prompt_ids({"instruction": "Another?", "input": ""}, tok)
    assert session.prompt_ids() == alpaca.render(first, tok).ids + second


def test_auto_format():
    assert pick_format("auto", kind="hf", model_type="qwen3") == "qwen3"
    assert pick_format("auto", kind="hf", model_type="gpt2") == "plain"
    assert pick_format("auto", kind="checkpoint", prompt_format="alpaca") == "alpaca"
    assert pick_format("chatml", kind="hf", model_type="llama") == "chatml"


def test_command_end_to_end(parts, monkeypatch, capsys):
    d, _, _ = parts
    monkeypatch.setattr("builtins.input", scripted(["hello", "/exit"]))
    assert main(["chat", str(d), "--strategy", "greedy", "--max-new-tokens", "5"]) == 0
    assert "(plain format)" in capsys.readouterr().out
