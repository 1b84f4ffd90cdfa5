"""From token ids to text while they are being generated.

A token is a run of bytes, and one UTF-8 character can be split across two
tokens (GPT-2 spells many emoji and CJK characters that way). Printing each
token's bytes as soon as it arrives would show half characters, so
``TextStreamer`` feeds them through an incremental UTF-8 decoder that holds back
an incomplete character until its last byte arrives. The pieces it returns join
to exactly ``tokenizer.decode(ids)``.

Stop strings ("\\nUser:", "###") are matched on that decoded text, so they are
found however the tokens happen to split them. While a stop string might still
be forming, the streamer holds back the last ``len(longest stop) - 1``
characters; when one appears it releases the text before it and reports
``stopped``. The stop string itself is never shown.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable

from legollm.core.exceptions import GenerationError


def check_stop_strings(stop_strings: Iterable[str] | str | None) -> tuple[str, ...]:
    if stop_strings is None:
        return ()
    if isinstance(stop_strings, str):
        stop_strings = [stop_strings]
    stops = tuple(stop_strings)
    if any(not isinstance(s, str) or not s for s in stops):
        raise GenerationError(f"stop strings must be non-empty strings, got {stops!r}")
    return stops


class TextStreamer:
    """Incremental detokenizer: ``put(id)`` returns the text that is now safe to show.

    >>> streamer = TextStreamer(tokenizer, stop_strings=["\\n\\n"])
    >>> for tok in stream(model, ids, 100):
    ...     print(streamer.put(int(tok)), end="", flush=True)
    ...     if streamer.stopped:
    ...         break
    >>> print(streamer.end())
    """

    def __init__(self, tokenizer, stop_strings: Iterable[str] | str | None = None) -> None:
        self.tokenizer = tokenizer
        self.stop_strings = check_stop_strings(stop_strings)
        self._holdback = max((len(s) for s in self.stop_strings), default=1) - 1
        # Tokenizers that expose raw bytes go through an incremental UTF-8 decoder;
        # others (character-level) are decoded whole and diffed.
        self._token_bytes = getattr(tokenizer, "decode_bytes", None)
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._ids: list[int] = []
        self._decoded = 0  # characters of decode(self._ids) already taken (fallback path)
        self._pending = ""  # decoded text not yet released (may hold a partial stop string)
        self.text = ""  # everything released so far
        self.stopped = False

    def put(self, token_id: int) -> str:
        """Add one token; return the text it completes (often "", never half a character)."""
        if self.stopped:
            return ""
        self._pending += self._decode(int(token_id))
        return self._release(final=False)

    def end(self) -> str:
        """Flush what was held back (a dangling partial character becomes U+FFFD)."""
        if not self.stopped:
            if self._token_bytes is not None:
                self._pending += self._utf8.decode(b"", final=True)
            else:
                self._pending += self._fallback_text(final=True)
        return self._release(final=True)

    # -- internals -------------------------------------------------------------
    def _decode(self, token_id: int) -> str:
        if self._token_bytes is not None:
            return self._utf8.decode(self._token_bytes([token_id]))
        self._ids.append(token_id)
        return self._fallback_text(final=False)

    def _fallback_text(self, final: bool) -> str:
        text = self.tokenizer.decode(self._ids)
        if not final and text.endswith("\ufffd"):
            return ""  # maybe an unfinished character: wait for the next token
        piece, self._decoded = text[self._decoded :], len(text)
        return piece

    def _release(self, final: bool) -> str:
        pending = self._pending
        hits = [i for i in (pending.find(s) for s in self.stop_strings) if i >= 0]
        if hits:
            out, self._pending, self.stopped = pending[: min(hits)], "", True
        else:
            cut = len(pending) if final else max(len(pending) - self._holdback, 0)
            out, self._pending = pending[:cut], pending[cut:]
        self.text += out
        return out
