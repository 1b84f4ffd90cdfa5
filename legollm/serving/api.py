"""The HTTP side: an OpenAI-compatible API and a chat page, on FastAPI.

Endpoints (request and response shapes follow OpenAI's, so its clients work):

- ``GET /v1/models``, ``GET /health``
- ``POST /v1/completions``: ``prompt`` -> text; ``POST /v1/chat/completions``:
  ``messages`` rendered with the model's chat format (``legollm.finetuning.chat``,
  the one ``legollm chat`` uses) -> the assistant's answer. Both take ``max_tokens``,
  ``temperature``, ``top_p``, ``seed``, ``stop`` and ``stream``.
- ``GET /``: the chat page (``static/chat.html``, one file, no build step, no CDN).

Client text is encoded as plain text: ``<|endoftext|>`` typed in a prompt is those
13 characters, never the control token, so no one can inject a turn into a template.

Handlers never run the model: they encode, submit a :class:`Request` to the
scheduler's worker thread, and await its events, which the worker hands to the
event loop with ``call_soon_threadsafe``. ``stream=true`` sends each piece as a
Server-Sent Event in OpenAI's chunk format, then ``data: [DONE]``; a client that
leaves mid-stream cancels its request and the worker frees its row.

Errors are OpenAI-shaped, ``{"error": {"message", "type", "param", "code"}}``:
400 malformed JSON or a prompt / ``max_tokens`` past the context, 422 a field of
the wrong type or range (named in ``param``), 413 a body over ``max_body_bytes``,
429 a full queue, 401 a missing or wrong API key (the same words either way),
503 when the model worker is not running.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, Literal

from fastapi import FastAPI
from fastapi import Request as HTTPRequest
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException

from legollm.core.exceptions import LegoLLMError
from legollm.finetuning.chat import chat_renderer, pick_format, usable_format
from legollm.finetuning.formats import text_ids
from legollm.serving.scheduler import Done, Failed, Piece, QueueFull, Request, Scheduler


class APIError(Exception):
    """An error the client gets as ``{"error": {...}}`` with an HTTP status."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = (
            status, message, type, param, code
        )  # fmt: skip

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type,
                          "param": self.param, "code": self.code}}  # fmt: skip


# -- request bodies ---------------------------------------------------------------------
class _Sampling(BaseModel):
    """Fields both endpoints share. Strict: ``"0.5"`` is not a number (a 422 naming it)."""

    model_config = ConfigDict(strict=True, extra="ignore")
    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: dict[str, bool] | None = None


class CompletionBody(_Sampling):
    prompt: str


class Message(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")
    role: Literal["system", "user", "assistant"]
    content: str


class ChatBody(_Sampling):
    messages: list[Message] = Field(min_length=1)


# a body over the limit but under this many times it is read (and dropped) before the 413
DRAIN_FACTOR = 16


# -- the app ------------------------------------------------------------------------------
class Server:
    """What the handlers share: the scheduler, the tokenizer, the chat format, settings."""

    def __init__(
        self,
        scheduler: Scheduler,
        model_name: str,
        *,
        chat_format: str | None = None,
        chat_error: str | None = None,
        api_key: str | None = None,
        default_max_tokens: int = 256,
        max_body_bytes: int = 1 << 20,
    ) -> None:
        self.scheduler, self.tokenizer = scheduler, scheduler.tokenizer
        self.model_name, self.created = model_name, int(time.time())
        self.chat_format, self.chat_error = chat_format, chat_error
        # (render(messages) -> prompt ids, the ids that end the assistant's turn)
        self.chat = chat_renderer(chat_format, self.tokenizer) if chat_format else None
        self.api_key = api_key
        self.default_max_tokens, self.max_body_bytes = default_max_tokens, max_body_bytes
        eot = getattr(self.tokenizer, "eot_token_id", None)
        self.text_eos = frozenset() if eot is None else frozenset({eot})

    # -- checks ----------------------------------------------------------------------------
    def authorize(self, request: HTTPRequest) -> None:
        if self.api_key is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {self.api_key}".encode()):
            raise APIError(401, "invalid or missing API key", code="invalid_api_key")

    async def parse(self, request: HTTPRequest, schema: type[BaseModel]) -> Any:
        self.authorize(request)
        raw = await self.read_body(request)
        try:
            return schema.model_validate_json(raw)
        except ValidationError as e:
            raise _validation_error(e) from None

    async def read_body(self, request: HTTPRequest) -> bytes:
        """The body, or a 413 the client can read.

        Answering before the body is read makes the server close the connection
        while the client is still sending, and the client sees a broken pipe, not
        the 413. So a body up to ``DRAIN_FACTOR`` times the limit is read to its
        end (keeping only the first ``max_body_bytes``); only a larger one is cut off.
        """
        too_large = APIError(413, f"the request body is over {self.max_body_bytes} bytes",
                             code="request_too_large")  # fmt: skip
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > DRAIN_FACTOR * self.max_body_bytes:
            raise too_large
        kept, seen = bytearray(), 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > DRAIN_FACTOR * self.max_body_bytes:
                raise too_large
            if seen <= self.max_body_bytes:
                kept += chunk
        if seen > self.max_body_bytes:
            raise too_large
        return bytes(kept)

    # -- generation -----------------------------------------------------------------------
    def submit(self, ids: list[int], body: _Sampling, eos: frozenset[int], param: str):
        """Hand the request to the worker; ``(request, events queue)``."""
        room = self.scheduler.max_seq_len - len(ids)
        if room < 1:
            raise APIError(400, f"the {param} is {len(ids)} tokens; the context holds "
                           f"{self.scheduler.max_seq_len} with room for an answer", param=param,
                           code="context_length_exceeded")  # fmt: skip
        if body.max_tokens is not None and body.max_tokens > room:
            raise APIError(400, f"max_tokens is {body.max_tokens}, but the {param} "
                           f"({len(ids)} tokens) leaves room for {room} in the context of "
                           f"{self.scheduler.max_seq_len}", param="max_tokens",
                           code="context_length_exceeded")  # fmt: skip
        stops = [body.stop] if isinstance(body.stop, str) else list(body.stop or [])
        if any(not s for s in stops):
            raise APIError(422, "stop strings must not be empty", param="stop")
        loop = asyncio.get_running_loop()
        events: asyncio.Queue = asyncio.Queue()

        def emit(event) -> None:  # on the worker thread
            try:
                loop.call_soon_threadsafe(events.put_nowait, event)
            except RuntimeError:  # the event loop has closed: nobody is listening
                request.cancel()

        request = Request(
            ids,
            body.max_tokens or min(self.default_max_tokens, room),
            emit,
            temperature=body.temperature,
            top_p=body.top_p if body.top_p < 1 else None,
            seed=body.seed,
            stop=tuple(stops),
            eos_ids=eos,
        )
        try:
            self.scheduler.submit(request)
        except QueueFull as e:
            raise APIError(429, str(e), type="rate_limit_error", code="queue_full") from None
        except LegoLLMError as e:
            raise APIError(503, str(e), type="server_error", code="unavailable") from None
        return request, events

    def encode(self, text_or_messages, param: str) -> list[int]:
        try:
            if param == "prompt":
                return text_ids(self.tokenizer, text_or_messages)
            render, _ = self.chat
            return render(text_or_messages)
        except LegoLLMError as e:  # a character the tokenizer lacks, a system turn mid-way
            raise APIError(400, str(e), param=param) from None


def build_server(
    loaded,
    *,
    name: str,
    template: str = "auto",
    max_batch_size: int = 8,
    max_queue: int = 64,
    max_tokens: int = 256,
    max_seq_len: int | None = None,
    api_key: str | None = None,
) -> Server:
    """A :class:`Server` for a :class:`~legollm.models.loading.LoadedModel`.

    The chat format is picked as ``legollm chat`` picks it; a model whose tokenizer
    cannot write any still serves completions, and chat requests get a 400 saying why.
    """
    picked = pick_format(template, kind=loaded.kind, model_type=loaded.model_type,
                         prompt_format=loaded.prompt_format)  # fmt: skip
    chat_format, chat_error = None, None
    try:
        chat_format = usable_format(picked, loaded.tokenizer, fallback=template == "auto")
    except LegoLLMError as e:
        chat_error = str(e)
    scheduler = Scheduler(loaded.model, loaded.tokenizer, max_batch_size=max_batch_size,
                          max_queue=max_queue, max_seq_len=max_seq_len)  # fmt: skip
    return Server(scheduler, name, chat_format=chat_format, chat_error=chat_error,
                  api_key=api_key, default_max_tokens=max_tokens)  # fmt: skip


def _validation_error(e: ValidationError) -> APIError:
    first = e.errors()[0]
    if first["type"] == "json_invalid":
        return APIError(400, f"the body is not valid JSON: {first['msg']}", code="invalid_json")
    field = ".".join(str(p) for p in first["loc"]) or None
    return APIError(422, f"{field}: {first['msg']}", param=field, code="invalid_value")


def create_app(server: Server) -> FastAPI:
    """The FastAPI app; it starts the scheduler's worker with the app and stops it after."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not server.scheduler.is_alive:
            server.scheduler.start()
        yield
        server.scheduler.stop()

    app = FastAPI(title="LegoLLM", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.server = server

    @app.exception_handler(APIError)
    async def api_error(_request, e: APIError) -> JSONResponse:
        return JSONResponse(e.body(), status_code=e.status)

    @app.exception_handler(HTTPException)
    async def http_error(_request, e: HTTPException) -> JSONResponse:
        return JSONResponse(
            APIError(e.status_code, str(e.detail)).body(), status_code=e.status_code
        )

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return resources.files("legollm.serving").joinpath("static/chat.html").read_text("utf-8")

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok" if server.scheduler.is_alive else "stopped",
                "running": server.scheduler.running}  # fmt: skip

    @app.get("/v1/models")
    async def models(request: HTTPRequest) -> dict:
        server.authorize(request)
        return {"object": "list", "data": [{"id": server.model_name, "object": "model",
                                            "created": server.created, "owned_by": "legollm"}]}  # fmt: skip

    @app.post("/v1/completions")
    async def completions(request: HTTPRequest):
        body = await server.parse(request, CompletionBody)
        ids = server.encode(body.prompt, "prompt")
        job, events = server.submit(ids, body, server.text_eos, "prompt")
        return await _answer(server, job, events, body, chat=False)

    @app.post("/v1/chat/completions")
    async def chat_completions(request: HTTPRequest):
        body = await server.parse(request, ChatBody)
        if server.chat is None:
            raise APIError(400, server.chat_error or "this model cannot chat", param="messages")
        ids = server.encode([m.model_dump() for m in body.messages], "messages")
        job, events = server.submit(ids, body, frozenset(server.chat[1]), "messages")
        return await _answer(server, job, events, body, chat=True)

    return app


# -- responses ---------------------------------------------------------------------------
async def _answer(server: Server, job: Request, events: asyncio.Queue, body: _Sampling, chat: bool):
    shape = _Shape(server, chat)
    if body.stream:
        usage = bool((body.stream_options or {}).get("include_usage"))
        return StreamingResponse(
            _sse(shape, job, events, usage),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    text = ""
    try:
        while True:
            event = await events.get()
            if isinstance(event, Piece):
                text += event.text
            elif isinstance(event, Done):
                return shape.whole(text, event)
            else:
                raise APIError(500, event.message, type="server_error")
    finally:
        job.cancel()  # a no-op once done; frees the row if this handler was cancelled


async def _sse(shape: _Shape, job: Request, events: asyncio.Queue, usage: bool):
    """Server-Sent Events until ``[DONE]``; leaving early (client gone) cancels the job."""
    try:
        if shape.chat:
            yield _data(shape.chunk({"role": "assistant", "content": ""}))
        while True:
            event = await events.get()
            if isinstance(event, Piece):
                yield _data(shape.chunk(event.text))
            elif isinstance(event, Done):
                yield _data(shape.chunk({} if shape.chat else "", event.finish_reason))
                if usage:
                    yield _data(dict(shape.chunk(""), choices=[], usage=_usage(event)))
                break
            elif isinstance(event, Failed):
                yield _data(APIError(500, event.message, type="server_error").body())
                break
        yield "data: [DONE]\n\n"
    finally:
        job.cancel()


def _data(obj: dict) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def _usage(done: Done) -> dict[str, int]:
    return {"prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens,
            "total_tokens": done.prompt_tokens + done.completion_tokens}  # fmt: skip


class _Shape:
    """One response's id and OpenAI object layout (text completion or chat)."""

    def __init__(self, server: Server, chat: bool) -> None:
        self.chat, self.model, self.created = chat, server.model_name, int(time.time())
        self.id = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]

    def _head(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model}

    def chunk(self, piece: str | dict, finish_reason: str | None = None) -> dict[str, Any]:
        if self.chat:
            delta = piece if isinstance(piece, dict) else {"content": piece}
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            return dict(self._head("chat.completion.chunk"), choices=[choice])
        choice = {"index": 0, "text": piece, "logprobs": None, "finish_reason": finish_reason}
        return dict(self._head("text_completion"), choices=[choice])

    def whole(self, text: str, done: Done) -> dict[str, Any]:
        if self.chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": text},
                      "finish_reason": done.finish_reason}  # fmt: skip
            return dict(self._head("chat.completion"), choices=[choice], usage=_usage(done))
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": done.finish_reason}
        return dict(self._head("text_completion"), choices=[choice], usage=_usage(done))
