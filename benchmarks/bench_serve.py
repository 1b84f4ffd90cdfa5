"""Serving throughput: continuous batching against the same requests one at a time.

    uv run python benchmarks/bench_serve.py            # GPT-2 124M shape, about 2 minutes
    uv run python benchmarks/bench_serve.py --smoke    # a 2-layer, 64-wide model, seconds

The real server (the FastAPI app on uvicorn, in this process, loopback only)
serves a DecoderLM with GPT-2 124M's shape and random weights (fp32, CPU,
``store_by_columns`` as ``legollm serve`` loads it). Clients stream greedy
completions over HTTP, ``--requests`` of them with ``--new`` tokens each, at
concurrency 1, 4, 8 and 16. For each level it prints total generated tokens/s,
time to first token p50/p95 and the time between tokens p50/p95. The anchor is
concurrency 1 (the same requests sent one at a time, which is what a server
without batching does); the last line is the ratio of concurrency 8 to it
(target >= 3x). Every request's text must be the same at every level: batching
must not change an answer.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import torch
import uvicorn
from _smoke import parse_args

from legollm.components.linear import store_by_columns
from legollm.core.tokenization.specs import CharTokenizer
from legollm.models import DecoderLM, ModelConfig
from legollm.serving.api import Server, create_app
from legollm.serving.scheduler import Scheduler

WORDS = [
    "the",
    "cat",
    "dog",
    "sun",
    "moon",
    "tree",
    "river",
    "stone",
    "bird",
    "fish",
    "cloud",
    "wind",
    "rain",
    "snow",
    "fire",
    "sea",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(server: Server, port: int) -> uvicorn.Server:
    app = uvicorn.Server(uvicorn.Config(create_app(server), host="127.0.0.1", port=port,
                                        log_level="warning"))  # fmt: skip
    threading.Thread(target=app.run, daemon=True).start()
    while not app.started:
        time.sleep(0.05)
    return app


def one_request(url: str, prompt: str, new: int) -> tuple[str, float, list[float]]:
    """(text, time to first token, times between tokens) of one streamed completion."""
    body = {"prompt": prompt, "max_tokens": new, "temperature": 0, "stream": True}
    t0 = time.perf_counter()
    arrivals, text = [], ""
    request = urllib.request.Request(f"{url}/v1/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=600) as r:
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            piece = json.loads(line[6:])["choices"][0]["text"]
            if piece:
                arrivals.append(time.perf_counter())
                text += piece
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    return text, arrivals[0] - t0, gaps


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


def run_level(url: str, prompts: list[str], new: int, concurrency: int) -> dict:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(lambda p: one_request(url, p, new), prompts))
    wall = time.perf_counter() - t0
    ttft = [r[1] for r in results]
    gaps = [g for r in results for g in r[2]]
    return dict(texts=[r[0] for r in results], tok_s=len(prompts) * new / wall,
                ttft=(pct(ttft, 50), pct(ttft, 95)), gap=(pct(gaps, 50), pct(gaps, 95)))  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-layer", type=int, default=12)
    p.add_argument("--n-head", type=int, default=12)
    p.add_argument("--n-embd", type=int, default=768)
    p.add_argument("--requests", type=int, default=16)
    p.add_argument("--new", type=int, default=24)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--port", type=int, default=0, help="default: a free one")
    args = parse_args(p, dict(n_layer=2, n_head=2, n_embd=64, requests=8, new=8))
    torch.set_num_threads(args.threads)
    tok = CharTokenizer.from_text(["abcdefghijklmnopqrstuvwxyz ,.\n"])
    torch.manual_seed(0)
    cfg = ModelConfig(n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd)  # GPT-2 vocab
    model = store_by_columns(DecoderLM(cfg).eval())
    scheduler = Scheduler(model, tok, max_batch_size=16, max_queue=64, max_seq_len=128)
    port = args.port or free_port()
    app = start_server(Server(scheduler, "bench"), port)
    url = f"http://127.0.0.1:{port}"
    prompts = [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(3 + i % 5))
               for i in range(args.requests)]  # fmt: skip
    print(f"GPT-2 shape {args.n_layer}x{args.n_embd}, random weights, fp32, {args.threads} "
          f"threads; {args.requests} requests x {args.new} greedy tokens, streamed over HTTP")  # fmt: skip
    print(
        f"{'concurrency':>11} {'tok/s':>8} {'TTFT p50':>9} {'p95':>7} {'tok gap p50':>12} {'p95':>7}"
    )
    one_request(url, "warm up", 2)  # first-call costs (allocations, lazy init) stay out
    levels = {}
    for c in (1, 4, 8, 16):
        r = levels[c] = run_level(url, prompts, args.new, c)
        print(f"{c:>11} {r['tok_s']:>8.1f} {r['ttft'][0]:>8.3f}s {r['ttft'][1]:>6.3f}s "
              f"{r['gap'][0] * 1e3:>10.1f}ms {r['gap'][1] * 1e3:>5.1f}ms", flush=True)  # fmt: skip
    app.should_exit = True
    same = all(levels[c]["texts"] == levels[1]["texts"] for c in levels)
    print(f"every request's text unchanged at every concurrency: {same}")
    ratio = levels[8]["tok_s"] / levels[1]["tok_s"]
    print(f"ratio concurrency 8 / sequential throughput: {ratio:.2f}x (target >= 3x)")
    if not same:
        raise SystemExit("batching changed a request's text")


if __name__ == "__main__":
    main()
