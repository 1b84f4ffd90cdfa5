"""Prompt formats: how an instruction record becomes token ids plus a loss mask.

A format renders one record ``{"instruction", "input", "output"}`` to ``Rendered``:
the ids of the whole conversation and, per id, whether it is a *response* token
(one the model should learn to produce). The mask is built while rendering, piece
by piece, never recovered afterwards by searching the ids for the response: a
response whose text also occurs in the prompt, or a BPE merge across the boundary,
cannot move it. Each piece is encoded on its own, so the prompt's ids are exactly
the ids the model is later prompted with at generation time.

Formats:
- ``alpaca``: Stanford Alpaca's two preambles (with and without an ``input``),
  the response, then the end-of-text id (trained, so the model learns to stop).
- ``llama3``, ``chatml``, ``qwen2``, ``plain`` ... : every chat template of
  :mod:`legollm.finetuning.templates`: the record becomes a conversation
  ``[system?, user, assistant]`` and the template renders it with its own special
  tokens; its assistant mask is the loss mask.

``to_features`` turns a rendering into the model's ``(input_ids, labels)``: labels
are the ids shifted by one, with ``-100`` wherever the predicted token is not
trained (the prompt, unless ``train_on="all"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from legollm.core.exceptions import ConfigError, DataError
from legollm.finetuning.templates import chat_template_names, get_chat_template

IGNORE_INDEX = -100
TRAIN_ON = ("response", "all")

ALPACA_PREAMBLE_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides "
    "further context. Write a response that appropriately completes the request."
)
ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)


@dataclass
class Rendered:
    """Token ids of one example and, per id, True where it is a trained response token."""

    ids: list[int]
    mask: list[bool]

    def __post_init__(self) -> None:
        if len(self.ids) != len(self.mask):
            raise DataError(f"rendered ids ({len(self.ids)}) and mask ({len(self.mask)}) differ")


class PromptFormat(Protocol):
    name: str

    def render(self, record: dict[str, str], tokenizer: Any) -> Rendered: ...

    def prompt_ids(self, record: dict[str, str], tokenizer: Any) -> list[int]: ...

    def stop_ids(self, tokenizer: Any) -> list[int]: ...


def text_ids(tokenizer: Any, text: str) -> list[int]:
    """User text is plain text: a literal "<|endoftext|>" in it must not become the EOS id."""
    enc = getattr(tokenizer, "encode_ordinary", None)
    return list(enc(text)) if enc is not None else list(tokenizer.encode(text))


@dataclass
class AlpacaFormat:
    """Alpaca: preamble, ``### Instruction:``, optional ``### Input:``, ``### Response:``.

    >>> AlpacaFormat().prompt_text({"instruction": "Add 2 and 3.", "input": ""})[-45:]
    '### Instruction:\\nAdd 2 and 3.\\n\\n### Response:\\n'
    """

    name: str = "alpaca"
    eos_token_id: int | None = None  # None: the tokenizer's <|endoftext|>

    def prompt_text(self, record: dict[str, str]) -> str:
        instruction, inp = record["instruction"], record.get("input") or ""
        if inp.strip():
            return (
                f"{ALPACA_PREAMBLE_INPUT}\n\n### Instruction:\n{instruction}\n\n"
                f"### Input:\n{inp}\n\n### Response:\n"
            )
        return f"{ALPACA_PREAMBLE}\n\n### Instruction:\n{instruction}\n\n### Response:\n"

    def _eos(self, tokenizer: Any) -> int:
        eos = self.eos_token_id
        if eos is None:
            eos = getattr(tokenizer, "eot_token_id", None)
        if eos is None:
            raise ConfigError(
                "the alpaca format ends each response with an end-of-text id, but the "
                "tokenizer has no <|endoftext|>; register one or set eos_token_id"
            )
        return int(eos)

    def render(self, record: dict[str, str], tokenizer: Any) -> Rendered:
        prompt = text_ids(tokenizer, self.prompt_text(record))
        response = text_ids(tokenizer, record["output"]) + [self._eos(tokenizer)]
        return Rendered(prompt + response, [False] * len(prompt) + [True] * len(response))

    def prompt_ids(self, record: dict[str, str], tokenizer: Any) -> list[int]:
        return text_ids(tokenizer, self.prompt_text(record))

    def stop_ids(self, tokenizer: Any) -> list[int]:
        return [self._eos(tokenizer)]


@dataclass
class ChatFormat:
    """A record as a one-turn conversation, rendered by a chat template.

    ``template.render(messages, tokenizer, add_generation_prompt) -> (ids, assistant_mask)``
    and ``template.stop_tokens(tokenizer)`` (see :mod:`legollm.finetuning.templates`). The user turn is the instruction, then a
    blank line and the input when there is one.
    """

    template: Any
    name: str = "chat"
    system: str | None = None

    def messages(self, record: dict[str, str], with_response: bool = True) -> list[dict]:
        user = record["instruction"]
        if (record.get("input") or "").strip():
            user = f"{user}\n\n{record['input']}"
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        msgs.append({"role": "user", "content": user})
        if with_response:
            msgs.append({"role": "assistant", "content": record["output"]})
        return msgs

    def render(self, record: dict[str, str], tokenizer: Any) -> Rendered:
        ids, mask = self.template.render(self.messages(record), tokenizer, False)
        return Rendered(list(map(int, ids)), [bool(m) for m in mask])

    def prompt_ids(self, record: dict[str, str], tokenizer: Any) -> list[int]:
        ids, _ = self.template.render(self.messages(record, False), tokenizer, True)
        return list(map(int, ids))

    def stop_ids(self, tokenizer: Any) -> list[int]:
        """The template's end-of-turn ids."""
        return list(self.template.stop_tokens(tokenizer))


def format_names() -> list[str]:
    return ["alpaca", *chat_template_names()]


def get_format(name: str, system: str | None = None, **kwargs: Any) -> PromptFormat:
    """A prompt format by exact name: ``alpaca``, or any chat template of
    :func:`legollm.finetuning.templates.get_chat_template` (``llama3``, ``chatml``,
    ``qwen2``, ``qwen3``, ``plain``/``gpt2``, ...)."""
    if name == "alpaca":
        return AlpacaFormat(**kwargs)
    if str(name).lower() not in chat_template_names():
        raise ConfigError(f"unknown prompt format {name!r}; use one of {format_names()}")
    return ChatFormat(get_chat_template(name), name=name, system=system)


def to_features(rendered: Rendered, train_on: str = "response") -> tuple[list[int], list[int]]:
    """``(input_ids, labels)``: position t predicts id t+1; untrained targets are -100.

    >>> to_features(Rendered([5, 6, 7, 8], [False, False, True, True]))
    ([5, 6, 7], [-100, 7, 8])
    """
    if train_on not in TRAIN_ON:
        raise ConfigError(f"train_on must be one of {TRAIN_ON}, got {train_on!r}")
    ids, mask = rendered.ids, rendered.mask
    if train_on == "all":
        return ids[:-1], ids[1:]
    labels = [t if m else IGNORE_INDEX for t, m in zip(ids[1:], mask[1:], strict=True)]
    return ids[:-1], labels


__all__ = [
    "ALPACA_PREAMBLE",
    "ALPACA_PREAMBLE_INPUT",
    "IGNORE_INDEX",
    "TRAIN_ON",
    "AlpacaFormat",
    "ChatFormat",
    "PromptFormat",
    "Rendered",
    "format_names",
    "get_format",
    "to_features",
]
