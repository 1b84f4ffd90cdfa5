"""Serving: one model, many concurrent users, over an OpenAI-compatible HTTP API.

- scheduler.py: continuous batching on a worker thread (one KV cache, a row per request).
- api.py: the FastAPI app: /v1/completions, /v1/chat/completions (SSE streaming),
  /v1/models, /health, and the chat page at / (static/chat.html).

``legollm serve MODEL`` (legollm/cli/serve.py) loads the model and runs the app on uvicorn.
"""

from legollm.serving.scheduler import Done, Failed, Piece, QueueFull, Request, Scheduler

__all__ = ["Done", "Failed", "Piece", "QueueFull", "Request", "Scheduler"]
