"""``legollm serve MODEL``: an OpenAI-compatible HTTP server with a chat page.

MODEL is anything ``legollm generate`` takes (a checkpoint, a run directory, a
Hugging Face directory; LoRA runs are merged on load). Concurrent requests share
decode steps (continuous batching, see legollm/serving/scheduler.py), answers
stream as Server-Sent Events, and http://HOST:PORT/ is a chat page.

    legollm serve runs/demo/run                       # then open http://127.0.0.1:8000
    legollm serve path/to/Qwen3-0.6B --port 8080 --api-key secret --max-batch-size 16

Any OpenAI client talks to it with ``base_url="http://127.0.0.1:8000/v1"``. The
server listens on 127.0.0.1 only, unless --host says otherwise.
"""

from __future__ import annotations

import argparse
import os

API_KEY_ENV = "LEGOLLM_API_KEY"


def register(sub: argparse._SubParsersAction) -> None:
    from legollm.cli.generate import add_model_args

    p = sub.add_parser(
        "serve",
        help="serve a model over an OpenAI-compatible HTTP API, with a chat page at /",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_args(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", default=os.environ.get(API_KEY_ENV),
                   help=f"require 'Authorization: Bearer KEY' (default: ${API_KEY_ENV})")  # fmt: skip
    p.add_argument("--max-batch-size", type=int, default=8, help="requests decoded together")
    p.add_argument("--max-queue", type=int, default=64, help="requests waiting; more get 429")
    p.add_argument("--max-tokens", type=int, default=256,
                   help="answer length when a request does not set max_tokens")  # fmt: skip
    p.add_argument("--max-seq-len", type=int, default=None,
                   help="positions per request (default: the model's context; less saves memory)")  # fmt: skip
    p.add_argument("--template", default="auto",
                   help="chat format: llama3, chatml, plain, dialogue, alpaca, or auto")  # fmt: skip
    p.add_argument("--name", help="the model's name in the API and the page (default: MODEL)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from legollm.cli.generate import load_from_args
    from legollm.core.exceptions import ConfigError
    from legollm.serving.api import build_server, create_app

    for flag in ("port", "max_batch_size", "max_tokens"):
        if getattr(args, flag) < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} must be at least 1")
    loaded, _ = load_from_args(args)
    server = build_server(loaded, name=args.name or str(args.model), template=args.template,
                          api_key=args.api_key, max_batch_size=args.max_batch_size,
                          max_queue=args.max_queue, max_tokens=args.max_tokens,
                          max_seq_len=args.max_seq_len)  # fmt: skip
    print(f"serving {server.model_name} at http://{args.host}:{args.port}/ "
          f"(chat format: {server.chat_format or 'none'})", flush=True)  # fmt: skip
    uvicorn.run(create_app(server), host=args.host, port=args.port, log_level="warning")
    return 0
