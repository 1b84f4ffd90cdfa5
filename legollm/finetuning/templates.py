"""Chat templates as code: a conversation -> token ids + which of them the assistant wrote.

Hugging Face ships chat templates as Jinja strings that render *text*, which is then
tokenized as a whole. Here a template is a short Python class that yields *pieces*:
special tokens (looked up by name in the tokenizer) and plain text (encoded with
``encode_ordinary``, so a user typing ``<|eot_id|>`` gets text, not a control token).
Both the text (:meth:`ChatTemplate.render_text`) and the ids (:meth:`ChatTemplate.render`)
come from the same pieces, and each piece knows whether the assistant wrote it: the
loss mask is built while rendering, never searched for afterwards.

Encoding piece by piece is what Meta's own Llama 3 ``ChatFormat`` does; it equals
tokenizing the whole text except where a turn's content starts with whitespace
that would have merged with the header's trailing newline.

Example::

    >>> tpl = get_chat_template("llama3")
    >>> tpl.render_text([{"role": "user", "content": "Hi"}], add_generation_prompt=True)
    '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\\n\\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\\n\\n'
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from legollm.core.exceptions import ConfigError, TokenizerError

ROLES = ("system", "user", "assistant")

# one rendered piece: (is_special, text or special-token name, written by the assistant)
Piece = tuple[bool, str, bool]


def _special(name: str, trained: bool = False) -> Piece:
    return (True, name, trained)


def _text(text: str, trained: bool = False) -> Piece:
    return (False, text, trained)


def check_messages(messages: Sequence[Mapping[str, Any]]) -> None:
    """A conversation is a non-empty list of {role, content}; system only comes first."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise ConfigError(
            f"messages must be a list of {{'role', 'content'}} dicts, got {type(messages).__name__}"
        )
    if not messages:
        raise ConfigError("messages is empty: a conversation needs at least one message")
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping) or "role" not in m or "content" not in m:
            raise ConfigError(f"messages[{i}] must be a dict with 'role' and 'content', got {m!r}")
        if m["role"] not in ROLES:
            raise ConfigError(
                f"messages[{i}] has unknown role {m['role']!r}; use one of {', '.join(ROLES)}"
            )
        if not isinstance(m["content"], str):
            raise ConfigError(
                f"messages[{i}] ({m['role']}) content must be a string, "
                f"got {type(m['content']).__name__}"
            )
        if m["role"] == "system" and i != 0:
            raise ConfigError(
                f"messages[{i}] is a system message; only the first message may be one"
            )


class ChatTemplate:
    """Base class: subclasses say which pieces a conversation is made of."""

    name = "base"
    required_specials: tuple[str, ...] = ()

    def pieces(
        self, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool
    ) -> Iterator[Piece]:
        raise NotImplementedError

    def _stop_names(self) -> tuple[str, ...]:
        raise NotImplementedError

    # -- rendering --------------------------------------------------------------
    def render_text(
        self, messages: Sequence[Mapping[str, Any]], add_generation_prompt: bool = False
    ) -> str:
        """The conversation as text, special tokens written out (what HF's Jinja renders)."""
        check_messages(messages)
        return "".join(text for _, text, _ in self.pieces(messages, add_generation_prompt))

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        tokenizer: Any,
        add_generation_prompt: bool = False,
    ) -> tuple[list[int], list[bool]]:
        """``(ids, assistant_mask)``: mask[i] is True where the assistant wrote ids[i].

        The assistant's content and its end-of-turn token are marked; headers, other
        roles and the generation prompt are not. With ``add_generation_prompt`` the ids
        end with the assistant header, ready for the model to continue.
        """
        check_messages(messages)
        specials = self._specials(tokenizer)
        encode = getattr(tokenizer, "encode_ordinary", None) or tokenizer.encode
        ids: list[int] = []
        mask: list[bool] = []
        for is_special, text, trained in self.pieces(messages, add_generation_prompt):
            part = [specials[text]] if is_special else list(encode(text)) if text else []
            ids += part
            mask += [trained] * len(part)
        return ids, mask

    def stop_tokens(self, tokenizer: Any) -> list[int]:
        """Ids that end the assistant's turn: generation stops at any of them."""
        specials = getattr(tokenizer, "special_tokens", None) or {}
        stops = [specials[n] for n in self._stop_names() if n in specials]
        if not stops:
            raise TokenizerError(
                f"the {self.name} chat template stops at {' or '.join(self._stop_names())}, "
                "but the tokenizer has none of them"
            )
        return stops

    def _specials(self, tokenizer: Any) -> dict[str, int]:
        specials = getattr(tokenizer, "special_tokens", None) or {}
        missing = [n for n in self.required_specials if n not in specials]
        if missing:
            raise TokenizerError(
                f"the {self.name} chat template needs the special tokens {missing}, which this "
                f"tokenizer lacks; use the model's own tokenizer (or register them), or pick "
                "the 'plain' template for a tokenizer without chat tokens"
            )
        return specials

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Llama3ChatTemplate(ChatTemplate):
    """Meta Llama 3 Instruct::

        <|begin_of_text|><|start_header_id|>{role}<|end_header_id|>\\n\\n{content.strip()}<|eot_id|>...

    Content is stripped (Meta's ``ChatFormat`` and the HF template both do). Llama 3.1's
    HF template also writes a default system message with dates and tool text; this
    class renders the plain Llama 3 form, which 3.1+ models read as well.
    """

    name = "llama3"
    required_specials = ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")  # fmt: skip

    def _header(self, role: str) -> Iterator[Piece]:
        yield _special("<|start_header_id|>")
        yield _text(role)
        yield _special("<|end_header_id|>")
        yield _text("\n\n")

    def pieces(self, messages, add_generation_prompt):
        yield _special("<|begin_of_text|>")
        for m in messages:
            mine = m["role"] == "assistant"
            yield from self._header(m["role"])
            yield _text(m["content"].strip(), mine)
            yield _special("<|eot_id|>", mine)
        if add_generation_prompt:
            yield from self._header("assistant")

    def _stop_names(self):
        return ("<|eot_id|>", "<|eom_id|>", "<|end_of_text|>")


class ChatMLTemplate(ChatTemplate):
    """ChatML (Qwen)::

        <|im_start|>{role}\\n{content}<|im_end|>\\n...

    ``default_system`` is written first when the conversation has no system message,
    as Qwen2's template does ("You are a helpful assistant.").
    """

    name = "chatml"
    required_specials = ("<|im_start|>", "<|im_end|>")

    def __init__(self, default_system: str | None = None) -> None:
        self.default_system = default_system

    def _turn(self, role: str, content: str) -> Iterator[Piece]:
        mine = role == "assistant"
        yield _special("<|im_start|>")
        yield _text(f"{role}\n")
        yield _text(content, mine)
        yield _special("<|im_end|>", mine)
        yield _text("\n")

    def pieces(self, messages, add_generation_prompt):
        if self.default_system is not None and messages[0]["role"] != "system":
            yield from self._turn("system", self.default_system)
        for m in messages:
            yield from self._turn(m["role"], m["content"])
        if add_generation_prompt:
            yield _special("<|im_start|>")
            yield _text("assistant\n")

    def _stop_names(self):
        return ("<|im_end|>", "<|endoftext|>")

    def __repr__(self) -> str:
        return f"ChatMLTemplate(default_system={self.default_system!r})"


class PlainChatTemplate(ChatTemplate):
    """For tokenizers without chat tokens (a GPT-2 we trained): markdown-ish headers::

        ### System:\\n{content}\\n\\n### User:\\n{content}\\n\\n### Assistant:\\n{content}<eos>\\n\\n

    The assistant's turn ends with ``eos_token`` (default ``<|endoftext|>``), the one
    special token such tokenizers have, so the model learns where to stop.
    """

    name = "plain"
    header = "### {role}:\n"

    def __init__(self, eos_token: str = "<|endoftext|>") -> None:
        self.eos_token = eos_token
        self.required_specials = (eos_token,)

    def pieces(self, messages, add_generation_prompt):
        for m in messages:
            role, content = m["role"], m["content"]
            if role == "assistant":
                yield _text(self.header.format(role="Assistant"))
                yield _text(content, True)
                yield _special(self.eos_token, True)
                yield _text("\n\n")
            else:
                yield _text(f"{self.header.format(role=role.capitalize())}{content}\n\n")
        if add_generation_prompt:
            yield _text(self.header.format(role="Assistant"))

    def _stop_names(self):
        return (self.eos_token,)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(eos_token={self.eos_token!r})"


class DialogueChatTemplate(PlainChatTemplate):
    """The plain template with bare speaker names, as a play is written::

        User:\n{content}\n\nAssistant:\n{content}<eos>\n\n

    Only letters, ``:`` and newlines: a character-level model (Shakespeare's
    characters have no ``#``) can write every piece of it.
    """

    name = "dialogue"
    header = "{role}:\n"


QWEN2_DEFAULT_SYSTEM = "You are a helpful assistant."
QWEN25_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

_TEMPLATES = {
    # names, and HF config.json model_type values
    "llama3": Llama3ChatTemplate,
    "llama": Llama3ChatTemplate,  # model_type of every Llama 3.x checkpoint
    "chatml": ChatMLTemplate,
    "qwen2": lambda: ChatMLTemplate(QWEN2_DEFAULT_SYSTEM),
    "qwen2.5": lambda: ChatMLTemplate(QWEN25_DEFAULT_SYSTEM),
    "qwen3": ChatMLTemplate,  # no default system; <think> blocks are not rendered
    "qwen3_moe": ChatMLTemplate,
    "plain": PlainChatTemplate,
    "gpt2": PlainChatTemplate,
    "dialogue": DialogueChatTemplate,
}


def chat_template_names() -> list[str]:
    return sorted(_TEMPLATES)


def get_chat_template(name: str) -> ChatTemplate:
    """A template by name or by a checkpoint's ``model_type`` (exact, case-insensitive)."""
    factory = _TEMPLATES.get(str(name).lower())
    if factory is None:
        raise ConfigError(
            f"no chat template for {name!r}; use one of {', '.join(chat_template_names())}"
        )
    return factory()


__all__ = [
    "ROLES",
    "ChatMLTemplate",
    "ChatTemplate",
    "DialogueChatTemplate",
    "Llama3ChatTemplate",
    "PlainChatTemplate",
    "check_messages",
    "chat_template_names",
    "get_chat_template",
]
