"""The scheduler's promise: each request's text is what it would be alone.

The oracle is ``stream_text`` (one prompt, its own KV cache, no batching). Requests
join while others are half-way through, leave early, and the cache is small enough
that the shared timeline must move both ways.
"""

from __future__ import annotations

import threading

import pytest
import torch

from legollm.components.kv_cache import KVCache
from legollm.core.exceptions import GenerationError
from legollm.core.tokenization.specs import CharTokenizer
from legollm.generation import stream_text
from legollm.models import DecoderLM, ModelConfig
from legollm.serving import Done, Piece, QueueFull, Request, Scheduler

TOK = CharTokenizer.from_text(["abcdefghijklmnopqrstuvwxyz .,\n"])
GPT2 = dict(
    vocab_size=TOK.vocab_size,
    context_length=48,
    n_layer=2,
    n_head=2,
    n_embd=32,
    tie_embeddings=False,
)
MISTRAL = dict(GPT2, position="rope", norm="rmsnorm", ffn="swiglu", n_kv_heads=1,
               sliding_window=6, qkv_bias=False, attn_out_bias=False, mlp_bias=False,
               norm_bias=False, tie_embeddings=False)  # fmt: skip
PROMPTS = ["the cat", "a", "hello there, friend", "zzz", "on and on and on", "x y", "qq", "hi"]


def _model(**cfg) -> DecoderLM:
    torch.manual_seed(0)
    model = DecoderLM(ModelConfig(**cfg)).eval()
    with torch.no_grad():  # sharper logits than the 0.02 init: argmax ties are not a risk
        model.lm_head.weight.mul_(20)
    return model


class Collect:
    """Gathers one request's events (called on the worker thread)."""

    def __init__(self) -> None:
        self.text, self.done, self.finished = "", None, threading.Event()

    def __call__(self, event) -> None:
        if isinstance(event, Piece):
            self.text += event.text
        else:
            self.done = event
            self.finished.set()


def _alone(model, prompt, n, **sampling) -> str:
    return "".join(stream_text(model, TOK, prompt, n, eos_token_id=[], **sampling))


def _run(scheduler, jobs, stagger=None):
    """Submit (prompt, max_tokens, sampling) jobs, some after others have started."""
    outs = []
    for i, (prompt, n, sampling) in enumerate(jobs):
        out = Collect()
        scheduler.submit(Request(TOK.encode(prompt), n, out, **sampling))
        outs.append(out)
        if stagger and i % 2:
            outs[0].finished.wait(stagger)  # let the batch run a little before the next joins
    for out in outs:
        assert out.finished.wait(30)
    return outs


@pytest.mark.parametrize("cfg", [GPT2, MISTRAL], ids=["learned", "rope-sliding-window"])
def test_batched_requests_equal_each_alone(cfg):
    model = _model(**cfg)
    lengths = [30, 5, 12, 40, 9, 25, 1, 17]  # 40 + 3-char prompt: the timeline must wrap
    jobs = [(p, n, {}) for p, n in zip(PROMPTS, lengths, strict=True)]
    scheduler = Scheduler(model, TOK, max_batch_size=3, max_queue=16).start()
    try:
        outs = _run(scheduler, jobs, stagger=0.05)
    finally:
        scheduler.stop()
    for (prompt, n, _), out in zip(jobs, outs, strict=True):
        assert out.text == _alone(model, prompt, n)
        assert out.done == Done("length", len(prompt), n)
    assert scheduler.steps < sum(lengths) - len(lengths)  # steps were shared


def test_seeded_sampling_and_stop_strings_equal_alone():
    model = _model(**GPT2)
    jobs = [(p, 20, dict(temperature=0.9, top_p=0.95, seed=i)) for i, p in enumerate(PROMPTS)]
    alone = [_alone(model, p, n, **s) for p, n, s in jobs]  # first: the scheduler owns the model
    # a stop string cut out of each sampled text, found across token boundaries
    stops = [(a[3:5] if len(a) > 5 else "") for a in alone]
    scheduler = Scheduler(model, TOK, max_batch_size=4).start()
    try:
        outs = _run(scheduler, jobs)
        stopped = _run(scheduler, [(p, 20, dict(s, stop=(st,) if st else ()))
                                   for (p, _, s), st in zip(jobs, stops, strict=True)])  # fmt: skip
    finally:
        scheduler.stop()
    assert [o.text for o in outs] == alone
    assert len(set(alone)) > 1
    for a, stop, out in zip(alone, stops, stopped, strict=True):
        if stop:
            assert out.text == a[: a.index(stop)]
            assert out.done.finish_reason == "stop"


def test_eos_ends_a_request_and_its_text_is_not_shown():
    model = _model(**GPT2)
    prompt, first = next((p, a) for p in PROMPTS if (a := _alone(model, p, 2))[0] != a[1])
    eos = TOK.encode(first[1])[0]  # pretend the second token ends the turn
    scheduler = Scheduler(model, TOK).start()
    try:
        (out,) = _run(scheduler, [(prompt, 10, dict(eos_ids=frozenset({eos})))])
    finally:
        scheduler.stop()
    assert out.text == first[0]
    assert out.done == Done("stop", len(prompt), 2)


def test_cancelled_request_frees_its_row_and_the_others_go_on():
    model = _model(**GPT2)
    scheduler = Scheduler(model, TOK, max_batch_size=2).start()
    try:
        gone = Request(TOK.encode("hello"), 40, lambda e: None)
        gone.cancel()
        scheduler.submit(gone)
        (out,) = _run(scheduler, [("the cat", 20, {})])
    finally:
        scheduler.stop()
    assert out.text == _alone(model, "the cat", 20)


def test_limits_are_refused_up_front():
    model = _model(**GPT2)
    scheduler = Scheduler(model, TOK, max_batch_size=1, max_queue=0).start()
    try:
        with pytest.raises(GenerationError, match="exceeds the context of 48"):
            scheduler.submit(Request([1] * 40, 9, lambda e: None))
        with pytest.raises(QueueFull):
            scheduler.submit(Request([1], 1, lambda e: None))
    finally:
        scheduler.stop()


def test_kv_cache_rows_are_views_of_one_cache():
    cache = KVCache(3, 8, 2, 4)
    k = torch.randn(1, 2, 2, 4)
    cache.rows(slice(1, 2)).update(torch.tensor([3, 4]), k, -k)
    assert torch.equal(cache.k[1, :, 3:5], k[0]) and torch.equal(cache.v[1, :, 3:5], -k[0])
    assert cache.k[[0, 2]].abs().sum() == 0  # the other rows are untouched
