"""Prompt formats: the rendered text is the documented format, and the mask covers exactly
the response (plus the trained stop id), per format and per role."""

import pytest

from legollm.core.exceptions import ConfigError
from legollm.finetuning.formats import (
    ALPACA_PREAMBLE,
    ALPACA_PREAMBLE_INPUT,
    IGNORE_INDEX,
    AlpacaFormat,
    Rendered,
    format_names,
    get_format,
    to_features,
)
from tests.unit.finetuning.conftest import RECORDS

EOT = "<|endoftext|>"


def _split(r: Rendered):
    prompt = [i for i, m in zip(r.ids, r.mask, strict=True) if not m]
    response = [i for i, m in zip(r.ids, r.mask, strict=True) if m]
    return prompt, response


@pytest.mark.parametrize("rec", RECORDS, ids=["no_input", "with_input", "long_output"])
def test_alpaca_text_and_mask(gpt2_tokenizer, rec):
    tok = gpt2_tokenizer
    r = AlpacaFormat().render(rec, tok)
    # the exact Alpaca layout, written out independently of the implementation
    if rec["input"]:
        prompt = (
            f"{ALPACA_PREAMBLE_INPUT}\n\n### Instruction:\n{rec['instruction']}\n\n"
            f"### Input:\n{rec['input']}\n\n### Response:\n"
        )
    else:
        prompt = f"{ALPACA_PREAMBLE}\n\n### Instruction:\n{rec['instruction']}\n\n### Response:\n"
    assert tok.decode(r.ids) == prompt + rec["output"] + EOT
    p, resp = _split(r)
    # the mask is one contiguous block at the end: prompt then response
    assert r.mask == [False] * len(p) + [True] * len(resp)
    assert tok.decode(p) == prompt
    assert tok.decode(resp) == rec["output"] + EOT
    assert resp[-1] == 50256  # the trained stop id
    assert AlpacaFormat().prompt_ids(rec, tok) == p


def test_alpaca_preambles_differ_with_and_without_input():
    fmt = AlpacaFormat()
    a = fmt.prompt_text({"instruction": "x", "input": ""})
    b = fmt.prompt_text({"instruction": "x", "input": "y"})
    assert "### Input:" not in a and "paired with an input" not in a
    assert "### Input:\ny\n\n" in b and "paired with an input" in b
    # whitespace-only input counts as no input
    assert fmt.prompt_text({"instruction": "x", "input": "  "}) == a


def test_literal_eot_text_in_data_is_not_the_eos_id(gpt2_tokenizer):
    rec = {"instruction": "Say <|endoftext|> please", "input": "", "output": "ok"}
    r = AlpacaFormat().render(rec, gpt2_tokenizer)
    assert r.ids.count(50256) == 1 and r.ids[-1] == 50256


def test_to_features_response_only_and_all():
    r = Rendered([10, 11, 12, 13, 14], [False, False, False, True, True])
    x, y = to_features(r, "response")
    assert x == [10, 11, 12, 13]
    # position t predicts id t+1; only predictions of masked ids are trained
    assert y == [IGNORE_INDEX, IGNORE_INDEX, 13, 14]
    x, y = to_features(r, "all")
    assert y == [11, 12, 13, 14]
    with pytest.raises(ConfigError, match="train_on"):
        to_features(r, "prompt")


def test_unknown_format_lists_the_choices():
    with pytest.raises(ConfigError, match="alpaca"):
        get_format("vicuna")
    assert {"alpaca", "llama3", "chatml", "plain"} <= set(format_names())


class _FakeTemplate:
    """A stand-in chat template with the render contract, for the adapter alone."""

    def render(self, messages, tokenizer, add_generation_prompt=False):
        ids, mask = [], []
        for m in messages:
            head = tokenizer.encode_ordinary(f"[{m['role']}]")
            body = tokenizer.encode_ordinary(m["content"]) + [tokenizer.eot_token_id]
            ids += head + body
            mask += [False] * len(head) + [m["role"] == "assistant"] * len(body)
        if add_generation_prompt:
            head = tokenizer.encode_ordinary("[assistant]")
            ids += head
            mask += [False] * len(head)
        return ids, mask

    def stop_tokens(self, tokenizer):
        return [tokenizer.eot_token_id]


def test_chat_adapter_roles(char_tokenizer):
    from legollm.finetuning.formats import ChatFormat

    tok = char_tokenizer
    fmt = ChatFormat(_FakeTemplate(), system="Be brief.")
    rec = RECORDS[1]
    r = fmt.render(rec, tok)
    p, resp = _split(r)
    assert tok.decode(resp) == "cba" + EOT  # only the assistant turn is trained
    assert (
        tok.decode(p)
        == "[system]Be brief." + EOT + "[user]Reverse the word.\n\nabc" + EOT + "[assistant]"
    )
    prompt = fmt.prompt_ids(rec, tok)
    assert tok.decode(prompt).endswith("[assistant]") and "cba" not in tok.decode(prompt)
    assert fmt.stop_ids(tok) == [tok.eot_token_id]


def _chat_templates():
    from legollm.finetuning.templates import chat_template_names

    return chat_template_names()


@pytest.mark.parametrize("name", _chat_templates())
def test_real_chat_templates_train_only_the_assistant(name, gpt2_tokenizer):
    """Per role: the user and system text is never trained, the assistant text always is."""
    fmt = get_format(name, system="You are terse.")
    rec = {"instruction": "Spell cat.", "input": "", "output": "C A T"}
    tok = _with_specials(gpt2_tokenizer, fmt.template.required_specials)
    r = fmt.render(rec, tok)
    p, resp = _split(r)
    assert tok.decode(resp).startswith("C A T")  # the content, then only its end-of-turn
    assert tok.decode(resp)[len("C A T") :].strip() in {tok.decode([i]) for i in fmt.stop_ids(tok)}
    assert "Spell cat." in tok.decode(p) and "You are terse." in tok.decode(p)
    prompt = fmt.prompt_ids(rec, tok)
    assert r.ids[: len(prompt)] == prompt  # generation sees exactly the trained prefix
    assert r.mask[: len(prompt)] == [False] * len(prompt)


def _with_specials(gpt2, names):
    """GPT-2's BPE with the template's special tokens registered past its vocabulary."""
    import copy

    tok = copy.deepcopy(gpt2)
    new = [n for n in names if n not in tok.special_tokens]
    tok.register_special_tokens({s: 50257 + i for i, s in enumerate(new)})
    return tok
