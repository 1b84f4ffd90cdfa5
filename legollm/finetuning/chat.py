"""A chat model's prompt: which format to render a conversation with, and how.

``legollm chat`` and ``legollm serve`` both talk to a model through these, so a
conversation reaches the model exactly as it was laid out when it was fine-tuned.

Formats: a chat template (``llama3``, ``chatml``, ``plain``, ``dialogue``, or a
model_type such as ``qwen3``) or ``alpaca`` (instruction-tuned GPT-2 style).
:func:`pick_format` chooses from the model (its fine-tuning format, else its HF
family's template, else ``plain``); :func:`usable_format` checks at start-up that
the tokenizer can write it (a character-level model falls back to ``dialogue``).
Message text is always encoded as plain text: a user who types ``<|eot_id|>``
gets those characters, never the control token.
"""

from __future__ import annotations

from collections.abc import Callable

from legollm.core.exceptions import GenerationError, TokenizerError
from legollm.finetuning.formats import get_format
from legollm.finetuning.templates import get_chat_template

Renderer = Callable[[list[dict]], list[int]]

# when the default template's text is not in the vocabulary, the one to try next
FALLBACK_FORMATS = {"plain": "dialogue"}


def chat_renderer(fmt: str, tokenizer) -> tuple[Renderer, list[int]]:
    """``(render(messages) -> prompt ids ending where the assistant speaks, stop ids)``."""
    if fmt == "alpaca":
        alpaca = get_format("alpaca")

        def render(messages: list[dict]) -> list[int]:
            # earlier exchanges as whole records (each ends with EOS), then the new instruction
            ids: list[int] = []
            turns = [m for m in messages if m["role"] != "system"]
            for user, assistant in zip(turns[:-1:2], turns[1::2], strict=False):
                record = {
                    "instruction": user["content"],
                    "input": "",
                    "output": assistant["content"],
                }
                ids += alpaca.render(record, tokenizer).ids
            return ids + alpaca.prompt_ids(
                {"instruction": turns[-1]["content"], "input": ""}, tokenizer
            )

        return render, alpaca.stop_ids(tokenizer)
    template = get_chat_template(fmt)
    stops = template.stop_tokens(tokenizer)
    return (lambda messages: template.render(messages, tokenizer, True)[0]), stops


def usable_format(fmt: str, tokenizer, system: str | None = None, fallback: bool = True) -> str:
    """``fmt`` if the tokenizer can write its text and stop tokens, else its fallback.

    A character-level model knows only the characters of its data: Shakespeare has no
    ``#``, so the plain template's ``### User:`` cannot be encoded and every turn would
    fail. This finds out at start-up, with an empty conversation, and says why.
    """
    probe = [{"role": "system", "content": system}] if system else []
    probe.append({"role": "user", "content": ""})
    tried = [fmt, FALLBACK_FORMATS[fmt]] if fallback and fmt in FALLBACK_FORMATS else [fmt]
    reasons = []
    for name in tried:
        try:
            render, _ = chat_renderer(name, tokenizer)
            render(probe)
            return name
        except TokenizerError as e:
            reasons.append(f"{name}: {e}")
    raise GenerationError(
        "this model cannot chat: its tokenizer cannot write the chat template ("
        + "; ".join(reasons)
        + "); use a model whose vocabulary has the template's characters and an "
        "end-of-text token, or `legollm generate` to continue plain text"
    )


def pick_format(
    requested: str, *, kind: str, model_type: str | None = None, prompt_format: str | None = None
) -> str:
    """The prompt format: the one asked for, else the one the model was fine-tuned with,
    else its HF family's chat template, else the plain layout (see ``LoadedModel``)."""
    if requested != "auto":
        return requested
    if prompt_format:
        return prompt_format
    if kind == "hf" and model_type and model_type != "gpt2":
        return model_type
    return "plain"
