"""Continuous batching: one worker thread, one KV cache with a row per running request.

Requests arrive whenever clients send them, each with its own prompt, length and
sampling settings. Decoding them one after another leaves the hardware idle (one
token's matrix-vector products are memory-bound); decoding them together costs
little more per step than decoding one. The scheduler keeps a *running batch*:

- The cache has ``max_batch_size`` rows. A new request takes the lowest free row,
  its prompt is run (the *prefill*) into that row alone, and it joins the batch
  between two decode steps; it never waits for the others to finish.
- Each decode step feeds every running row its newest token at once. A row that
  finishes (end-of-turn token, stop string, ``max_tokens``, client gone) leaves,
  and its row is free for the next request at once.

All rows share one *timeline*: step after step writes slot ``t`` of every row. A
row's tokens are the last ``length`` slots before ``t``; the slots before them
(what its row's previous owner left) are hidden by the row's attention mask, and
its tokens carry their own positions (0, 1, ...) through ``position_ids``. So
each request is computed exactly as it would be alone: the same keys, positions
and mask, in a wider batch. A newcomer whose prompt is longer than ``t`` moves
the timeline right; when ``t`` reaches the cache's end the timeline moves left
so the longest running row starts at slot 0 (a copy of the cache, needed only
once every ``max_seq_len - longest`` steps).

Sampling is per row, with each request's temperature, top-p and its own seeded
``torch.Generator``: a seeded request draws the same tokens batched or alone.
Only rows 0 .. n-1 (n = the highest row in use + 1) are fed, so one request
alone costs what a batch of one does.

The worker thread owns the model; other threads talk to it through
:meth:`Scheduler.submit` and a request's ``cancel``. Events go back through the
request's ``emit`` callback (the server hands each to its event loop).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from legollm.components.kv_cache import KVCache
from legollm.core.exceptions import GenerationError
from legollm.core.tokenization.specs import max_token_id
from legollm.generation import TextStreamer, next_token
from legollm.models.decoder import context_limit


class QueueFull(GenerationError):
    """More requests are waiting than the server accepts."""


@dataclass
class Piece:
    """Text that is now safe to show (whole characters, no part of a stop string)."""

    text: str


@dataclass
class Done:
    """The request finished: ``finish_reason`` is ``stop`` or ``length``."""

    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Failed:
    """The model raised while working on this request."""

    message: str


Event = Piece | Done | Failed


@dataclass
class Request:
    """One generation: prompt ids in, events out through ``emit`` (called on the worker)."""

    prompt_ids: list[int]
    max_tokens: int
    emit: Callable[[Event], None]
    temperature: float = 0.0
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    eos_ids: frozenset[int] = frozenset()
    _cancelled: threading.Event = field(default_factory=threading.Event, repr=False)

    def cancel(self) -> None:
        """Stop generating (the client left); the worker frees the row before its next step."""
        self._cancelled.set()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()


class _Row:
    """A running request: its cache length, next token to feed, text so far."""

    def __init__(self, request: Request, tokenizer, device) -> None:
        self.request = request
        self.length = len(request.prompt_ids)  # tokens in the cache
        self.generated = 0
        self.next_id = 0  # the last sampled token, fed at the next step
        self.streamer = TextStreamer(tokenizer, request.stop)
        seed = request.seed
        self.generator = torch.Generator(device).manual_seed(seed) if seed is not None else None


class Scheduler:
    """Runs requests in a continuously batched KV cache on a worker thread.

    >>> scheduler = Scheduler(model, tokenizer, max_batch_size=8).start()
    >>> scheduler.submit(Request(ids, 32, emit=print))
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        max_batch_size: int = 8,
        max_queue: int = 64,
        max_seq_len: int | None = None,
    ) -> None:
        if max_batch_size < 1 or max_queue < 0:
            raise GenerationError(
                f"max_batch_size must be >= 1 and max_queue >= 0, got {max_batch_size}, {max_queue}"
            )
        self.model, self.tokenizer = model, tokenizer
        self.max_batch_size, self.max_queue = max_batch_size, max_queue
        limit = context_limit(model.config) or model.config.context_length
        self.max_seq_len = min(max_seq_len or limit, limit)
        self.vocab_limit = max_token_id(tokenizer) + 1
        self.device = next(model.parameters()).device
        self._waiting: queue.Queue[Request | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="legollm-scheduler", daemon=True)
        self._rows: list[_Row | None] = [None] * max_batch_size
        self._t = 0  # the timeline: the slot the next decode step writes
        self._stopping = threading.Event()
        self.steps = 0  # decode steps run (for tests and benchmarks)

    # -- the other threads' side ---------------------------------------------------
    def start(self) -> Scheduler:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 10.0) -> None:
        """Finish the step under way, fail the requests still running, end the worker."""
        self._stopping.set()
        self._waiting.put(None)  # wakes a worker waiting for work
        self._thread.join(timeout)

    def submit(self, request: Request) -> None:
        """Queue a request; raises :class:`QueueFull` when ``max_queue`` are waiting."""
        n = len(request.prompt_ids)
        if n == 0:
            raise GenerationError("the prompt is empty: give some text to continue")
        if n + request.max_tokens > self.max_seq_len:
            raise GenerationError(
                f"the prompt ({n} tokens) plus max_tokens ({request.max_tokens}) exceeds the "
                f"context of {self.max_seq_len} tokens"
            )
        if not self.is_alive:
            raise GenerationError("the model worker is not running")
        if self._waiting.qsize() >= self.max_queue:
            raise QueueFull(f"{self.max_queue} requests are already waiting: try again soon")
        self._waiting.put(request)

    @property
    def is_alive(self) -> bool:
        """Whether the worker thread is running (it stops only when told to)."""
        return self._thread.is_alive()

    @property
    def running(self) -> int:
        return sum(row is not None for row in self._rows)

    # -- the worker ------------------------------------------------------------------
    def _run(self) -> None:
        model = self.model
        model.eval()
        model.setup_kv_cache(self.max_batch_size, self.max_seq_len, ring=False)
        self._caches = [m for m in model.modules() if isinstance(m, KVCache)]
        self._mask = torch.zeros(
            self.max_batch_size, self.max_seq_len, dtype=torch.long, device=self.device
        )
        try:
            with torch.inference_mode():
                while not self._stopping.is_set() and self._admit(block=self.running == 0):
                    self._drop_cancelled()
                    if self.running:
                        self._step()
        finally:
            model.remove_kv_cache()
            for row in self._rows:
                if row is not None:
                    row.request.emit(Failed("the server is shutting down"))

    def _admit(self, block: bool) -> bool:
        """Prefill every waiting request that has a free row; False once stopped."""
        while None in self._rows:
            try:
                request = self._waiting.get(block=block)
            except queue.Empty:
                return True
            if request is None:
                return False
            block = False
            if not request.cancelled:
                self._guarded([request], lambda r=request: self._prefill(r))
        return True

    def _guarded(self, requests: list[Request], work: Callable[[], None]) -> None:
        """Run ``work``; if the model raises, fail these requests and free their rows."""
        try:
            work()
        except Exception as e:  # one bad request must not stop the server
            for i, row in enumerate(self._rows):
                if row is not None and row.request in requests:
                    self._rows[i] = None
            for request in requests:
                request.emit(Failed(f"{type(e).__name__}: {e}"))

    def _prefill(self, request: Request) -> None:
        n = len(request.prompt_ids)
        if self._t < n:
            self._move_timeline(n)
        r = self._rows.index(None)
        self._rows[r] = _Row(request, self.tokenizer, self.device)
        t = self._t
        self._mask[r] = 0
        self._mask[r, t - n : t] = 1
        ids = torch.tensor([request.prompt_ids], dtype=torch.long, device=self.device)
        with self.model.kv_cache_rows(slice(r, r + 1)):
            logits = self.model(
                ids,
                input_pos=torch.arange(t - n, t, device=self.device),
                position_ids=torch.arange(n, device=self.device)[None],
                attention_mask=self._mask[r : r + 1],
                last_only=True,
            )[:, -1]
        self._take(r, logits)

    def _step(self) -> None:
        """One decode step for rows 0 .. n-1 (free rows among them compute and are ignored)."""
        n = max(i for i, row in enumerate(self._rows) if row is not None) + 1
        if self._t == self.max_seq_len:
            self._move_timeline(max(row.length for row in self._rows if row is not None))
        rows = self._rows[:n]
        t = self._t
        tokens = torch.tensor([[row.next_id if row else 0] for row in rows], device=self.device)
        positions = torch.tensor([[row.length if row else 0] for row in rows], device=self.device)
        self._mask[:n, t] = 1

        def step() -> None:
            with self.model.kv_cache_rows(slice(0, n)):
                logits = self.model(
                    tokens,
                    input_pos=torch.tensor([t], device=self.device),
                    position_ids=positions,
                    attention_mask=self._mask[:n],
                )[:, -1]
            self._t += 1
            self.steps += 1
            for i, row in enumerate(rows):
                if row is not None:
                    row.length += 1
                    self._take(i, logits[i : i + 1])

        self._guarded([row.request for row in rows if row is not None], step)

    def _take(self, r: int, logits: torch.Tensor) -> None:
        """Sample row r's next token, send its text, and free the row if it is done."""
        row = self._rows[r]
        request = row.request
        tok = int(
            next_token(
                logits[:, : self.vocab_limit],
                temperature=request.temperature,
                top_p=request.top_p,
                generator=row.generator,
            )
        )
        row.generated += 1
        row.next_id = tok
        finish = None
        if tok in request.eos_ids:
            finish = "stop"
        else:
            piece = row.streamer.put(tok)
            if piece:
                request.emit(Piece(piece))
            if row.streamer.stopped:
                finish = "stop"
            elif row.generated == request.max_tokens:
                finish = "length"
        if finish is None:
            return
        tail = row.streamer.end()
        if tail:
            request.emit(Piece(tail))
        request.emit(Done(finish, len(request.prompt_ids), row.generated))
        self._rows[r] = None

    def _drop_cancelled(self) -> None:
        for i, row in enumerate(self._rows):
            if row is not None and row.request.cancelled:
                self._rows[i] = None

    def _move_timeline(self, new_t: int) -> None:
        """Slide every row's last ``longest`` slots so they end at ``new_t`` instead of ``t``."""
        t = self._t
        keep = max((row.length for row in self._rows if row is not None), default=0)
        src, dst = slice(t - keep, t), slice(new_t - keep, new_t)
        for cache in self._caches:
            cache.k[:, :, dst] = cache.k[:, :, src].clone()
            cache.v[:, :, dst] = cache.v[:, :, src].clone()
        kept = self._mask[:, src].clone()
        self._mask.zero_()
        self._mask[:, dst] = kept
        self._t = new_t
