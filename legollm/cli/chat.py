"""``legollm chat MODEL``: a multi-turn conversation in the terminal.

Each turn renders the whole conversation with the model's chat format and
streams the answer until the format's end-of-turn token. Commands: ``/reset``
forgets the conversation, ``/exit`` (or Ctrl-D) quits, Ctrl-C stops the answer
being written and keeps the chat going.

Formats: a chat template (``llama3``, ``chatml``, ``plain``, ``dialogue``, or a
model_type such as ``qwen3``) or ``alpaca`` (instruction-tuned GPT-2 style). ``auto``
picks from the model: the HF ``model_type``, or the format a LegoLLM SFT checkpoint
was trained with, else ``plain`` (``dialogue``, with no ``#``, for a character-level
model whose vocabulary lacks it). A model that can write neither is told at start-up.

    legollm chat path/to/Llama-3.2-1B-Instruct
    legollm chat runs/sft_the_verdict_cpu --max-new-tokens 64   # see configs/sft/
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator

from legollm.core.exceptions import GenerationError, LegoLLMError

HELP = "commands: /reset (forget the conversation), /exit (quit); Ctrl-C stops an answer"


class ChatSession:
    """The conversation so far and how to turn it into the model's next prompt."""

    def __init__(self, model, tokenizer, fmt: str, system: str | None = None,
                 max_new_tokens: int = 256, device=None, **sampling) -> None:  # fmt: skip
        self.model, self.tokenizer = model, tokenizer
        self.system = system
        self.max_new_tokens = max_new_tokens
        self.device = device
        self.sampling = sampling
        self.messages: list[dict[str, str]] = []
        from legollm.finetuning.chat import chat_renderer

        self._render, self.stop_ids = chat_renderer(fmt, tokenizer)
        self.reset()

    def reset(self) -> None:
        self.messages = [{"role": "system", "content": self.system}] if self.system else []

    def prompt_ids(self) -> list[int]:
        """The rendered conversation, dropping the oldest exchanges until the answer fits.

        A message too long to fit even alone raises and leaves the history as it was.
        """
        budget = self.model.config.context_length - self.max_new_tokens
        messages = list(self.messages)
        first = 1 if self.system else 0
        while True:
            ids = self._render(messages)
            if len(ids) <= budget:
                self.messages = messages
                return ids
            last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
            if last_user - first < 2:  # nothing older than the latest exchange is left
                raise GenerationError(
                    f"this message is {len(ids)} tokens with its template; the model's context "
                    f"leaves {budget} for it after max_new_tokens={self.max_new_tokens}: "
                    "send something shorter or lower --max-new-tokens"
                )
            del messages[first : first + 2]  # the oldest user/assistant exchange

    def reply(self, text: str) -> Iterator[str]:
        """Add the user's message and stream the assistant's answer (recorded as it goes)."""
        from legollm.generation import stream_text

        self.messages.append({"role": "user", "content": text})
        try:
            ids = self.prompt_ids()
        except GenerationError:
            self.messages.pop()
            raise
        answer = {"role": "assistant", "content": ""}
        self.messages.append(answer)
        for piece in stream_text(self.model, self.tokenizer, ids, self.max_new_tokens,
                                 eos_token_id=self.stop_ids, device=self.device,
                                 **self.sampling):  # fmt: skip
            answer["content"] += piece
            yield piece


def chat_loop(session: ChatSession, read: Callable[[str], str] | None = None, out=None) -> int:
    """Read a line, answer it, repeat; returns at /exit or end of input."""
    read = read or input
    out = out or sys.stdout
    out.write(HELP + "\n")
    while True:
        try:
            line = read(">>> ")
        except EOFError:
            out.write("\n")
            return 0
        except KeyboardInterrupt:
            out.write("\n(type /exit to quit)\n")
            continue
        command = line.strip()
        if not command:
            continue
        if command == "/exit":
            return 0
        if command == "/reset":
            session.reset()
            out.write("(conversation cleared)\n")
            continue
        if command.startswith("/"):
            out.write(f"unknown command {command!r}; {HELP}\n")
            continue
        try:
            for piece in session.reply(line):
                out.write(piece)
                out.flush()
        except KeyboardInterrupt:
            out.write(" [stopped]")
        except LegoLLMError as e:
            out.write(f"error: {e}")
        out.write("\n")


def register(sub: argparse._SubParsersAction) -> None:
    from legollm.cli.generate import add_model_args, add_sampling_args

    p = sub.add_parser(
        "chat",
        help="multi-turn chat in the terminal (/reset, /exit; Ctrl-C stops an answer)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_args(p)
    p.add_argument(
        "--template", default="auto", help="llama3, chatml, plain, dialogue, alpaca, or auto"
    )
    p.add_argument("--system", help="a system prompt")
    add_sampling_args(p, max_new_tokens=256)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from legollm.cli.generate import load_from_args, sampling_kwargs
    from legollm.finetuning.chat import pick_format, usable_format

    loaded, device = load_from_args(args)
    model, tokenizer = loaded.model, loaded.tokenizer
    picked = pick_format(args.template, kind=loaded.kind, model_type=loaded.model_type,
                         prompt_format=loaded.prompt_format)  # fmt: skip
    fmt = usable_format(picked, tokenizer, args.system, fallback=args.template == "auto")
    session = ChatSession(model, tokenizer, fmt, args.system, args.max_new_tokens, device,
                          **sampling_kwargs(args))  # fmt: skip
    why = "" if fmt == picked else f": the {picked} template's text is not in its vocabulary"
    print(f"chatting with {args.model} ({fmt} format{why})")
    return chat_loop(session)
