"""Autoregressive decoding with a pre-allocated KV cache.

One prefill pass runs the whole prompt and fills the cache; every later step
feeds only the newest token at its slot (``input_pos``) and its position. A
sliding-window model's cache holds only its window (a ring, see KVCache), so
its memory stays the same however many tokens are generated. Rows of
a left-padded batch carry an attention mask, and their positions count only real
tokens, so each row decodes exactly as it would alone. A row that emits an EOS
id is finished: it keeps receiving EOS while the others go on.

When the sequence would outgrow the model's context, decoding crops to the
context (``crop_to_context``): each step re-runs the last ``context_length``
tokens without a cache. With learned positions a cached window cannot be
shifted (the cached keys carry absolute positions). RoPE only encodes relative distances, so a rolling
cache would keep the scores right, but each kept key was still computed while
seeing tokens that have since left the window; re-running the window is what the
model computes for that text, so both kinds take the same (exact) path.

A sliding-window model with RoPE (Mistral) is the exception: it has no context
edge (``DecoderLM.context_limit`` is None), so it keeps decoding from its ring
past ``context_length``, and without a cache it re-runs the whole sequence;
both are what transformers computes for the same text. (A cropped window would
be exact only while it covers the model's reach: through n_layer layers of
window w, a token depends on the last n_layer * (w - 1) + 1.)
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator

import torch

from legollm.core.exceptions import GenerationError
from legollm.core.tokenization.specs import max_token_id
from legollm.generation.sampling import check_sampling_args, next_token
from legollm.generation.text import TextStreamer, check_stop_strings
from legollm.models.decoder import context_limit


def stream(
    model,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_token_id: int | list[int] | None = None,
    seed: int | None = None,
    *,
    min_p: float | None = None,
    repetition_penalty: float | None = None,
    attention_mask: torch.Tensor | None = None,
    stop_strings: list[str] | str | None = None,
    tokenizer=None,
    pad_token_id: int | None = None,
    use_cache: bool = True,
    crop_to_context: bool = True,
    compile: bool = False,
    vocab_limit: int | None = None,
    num_return_sequences: int = 1,
    slide_window: bool | None = None,
) -> Iterator[torch.Tensor]:
    """Yield the next token of every row, (B,), one step at a time.

    A row stops growing at an ``eos_token_id`` or once its generated text contains
    one of ``stop_strings`` (decoded with ``tokenizer``); from then on it receives
    ``pad_token_id`` (default: the first EOS id, else 0) until every row is done.
    With ``crop_to_context=False`` a prompt plus ``max_new_tokens`` that does not fit
    the context is an error instead of re-running the last ``context_length`` tokens
    (``slide_window``, its old name, is deprecated). ``compile=True`` runs the
    one-token decode step through ``torch.compile`` (for GPUs: on a CPU the eager
    step's threaded products are faster; the first call pays the compilation). ``vocab_limit=n`` only lets ids below n be chosen:
    models whose vocabulary was padded (50257 -> 50304) never emit an id the
    tokenizer cannot decode. ``num_return_sequences=n`` continues every prompt ``n``
    ways (rows i*n .. i*n + n - 1 belong to prompt i, as if each prompt were repeated
    ``n`` times) from one prefill of the prompt, whose cache is then copied to its rows.
    """
    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    if num_return_sequences < 1:
        raise GenerationError(f"num_return_sequences must be >= 1, got {num_return_sequences}")
    n = num_return_sequences
    if n > 1:
        input_ids = input_ids.repeat_interleave(n, dim=0)
        if attention_mask is not None:
            attention_mask = attention_mask.repeat_interleave(n, dim=0)
    B, T = input_ids.shape
    if T == 0:
        raise GenerationError("the prompt is empty: give at least one token")
    if max_new_tokens < 0:
        raise GenerationError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    check_sampling_args(temperature, top_k, top_p, min_p, repetition_penalty)
    if slide_window is not None:
        warnings.warn(
            "stream/generate(slide_window=...) is deprecated: use crop_to_context=...",
            DeprecationWarning,
            stacklevel=2,
        )
        crop_to_context = slide_window
    ctx = context_limit(model.config)  # None: a sliding-window model reads any length
    if not crop_to_context and ctx is not None and T + max_new_tokens > ctx:
        raise GenerationError(
            f"the prompt ({T} tokens) plus max_new_tokens ({max_new_tokens}) exceeds the "
            f"model's context of {ctx} tokens: shorten the prompt, lower max_new_tokens, "
            "or allow cropping to the context"
        )
    stops = check_stop_strings(stop_strings)
    if stops and tokenizer is None:
        raise GenerationError("stop_strings need the tokenizer to decode the generated text")
    device = input_ids.device
    generator = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    eos_ids = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id or [])
    eos = torch.tensor(eos_ids, dtype=torch.long, device=device)
    fill = pad_token_id if pad_token_id is not None else (eos_ids[0] if eos_ids else 0)
    streamers = [TextStreamer(tokenizer, stops) for _ in range(B)] if stops else []

    # Token ids and the padding mask live in buffers sized once for the whole run.
    total = T + max_new_tokens
    ids = torch.empty(B, total, dtype=torch.long, device=device)
    ids[:, :T] = input_ids
    mask = torch.ones(B, total, dtype=torch.long, device=device)
    if attention_mask is not None:
        mask[:, :T] = attention_mask
    # Slots past the prompt are real tokens, and unwritten ones are hidden by causality,
    # so the cached steps can always pass the full-length mask (a static shape).
    pad_mask = mask if attention_mask is not None else None
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    cached = use_cache and (ctx is None or total <= ctx)
    sample = dict(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                  repetition_penalty=repetition_penalty, generator=generator)  # fmt: skip
    step_fn = _compiled_step(model) if compile and cached else model
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            if cached:
                model.setup_kv_cache(B // n, total)
                # each prompt once (rows 0, n, 2n, ...), its cache then copied to its n rows
                pos = (mask[::n, :T].cumsum(-1) - 1).clamp(min=0)  # real-token positions per row
                first = pad_mask[::n] if pad_mask is not None else None
                logits = model(ids[::n, :T], input_pos=torch.arange(T, device=device), position_ids=pos,
                               attention_mask=first, last_only=True)[:, -1]  # fmt: skip
                if n > 1:
                    model.repeat_kv_cache(n)
                    logits, pos = logits.repeat_interleave(n, 0), pos.repeat_interleave(n, 0)
            for step in range(max_new_tokens):
                t = T + step  # the slot this step's token goes to
                if not cached:
                    lo = max(t - ctx, 0) if ctx is not None else 0
                    window, wmask = ids[:, lo:t], mask[:, lo:t]
                    wpos = (wmask.cumsum(-1) - 1).clamp(min=0)
                    logits = model(window, position_ids=wpos, attention_mask=wmask,
                                   last_only=True)[:, -1]  # fmt: skip
                if vocab_limit is not None:
                    logits = logits[:, :vocab_limit]
                tok = next_token(logits, seen=ids[:, :t], **sample)
                if B > 1 or eos_ids or stops:
                    tok = torch.where(finished, fill, tok)
                    if eos_ids:
                        finished |= torch.isin(tok, eos)
                    for row, streamer in enumerate(streamers):
                        streamer.put(int(tok[row]))
                        finished[row] |= streamer.stopped
                ids[:, t] = tok
                yield tok
                if step == max_new_tokens - 1 or bool(finished.all()):
                    break
                if cached:
                    pos = pos[:, -1:] + 1
                    logits = step_fn(tok[:, None], input_pos=torch.tensor([t], device=device),
                                     position_ids=pos, attention_mask=pad_mask)[:, -1]  # fmt: skip
    finally:
        if cached:
            model.remove_kv_cache()
        model.train(was_training)


def _compiled_step(model):
    """The model's forward compiled once per model for one-token steps (static shapes)."""
    fn = getattr(model, "_legollm_compiled_step", None)
    if fn is None:
        fn = torch.compile(model, dynamic=False, fullgraph=False)
        object.__setattr__(model, "_legollm_compiled_step", fn)
    return fn


def generate(
    model,
    input_ids: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    eos_token_id: int | list[int] | None = None,
    seed: int | None = None,
    **kwargs,
) -> torch.Tensor:
    """The prompt followed by up to ``max_new_tokens`` new tokens: LongTensor[B, T + new]."""
    steps = list(
        stream(
            model,
            input_ids,
            max_new_tokens,
            temperature,
            top_k,
            top_p,
            eos_token_id,
            seed,
            **kwargs,
        )
    )
    prompt = input_ids if input_ids.dim() == 2 else input_ids[None]
    prompt = prompt.repeat_interleave(kwargs.get("num_return_sequences", 1), dim=0)
    return torch.cat([prompt, torch.stack(steps, dim=1)], dim=1) if steps else prompt


def stream_text(
    model,
    tokenizer,
    prompt: str | list[int],
    max_new_tokens: int,
    *,
    stop_strings: Iterable[str] | str | None = None,
    eos_token_id: int | list[int] | None = None,
    device: str | None = None,
    **sampling,
) -> Iterator[str]:
    """Generate from one prompt and yield text pieces as they become printable.

    ``prompt`` is text (special tokens in it are recognised) or token ids. Stops at
    an EOS id (default: the tokenizer's end-of-text token, not shown) or a stop
    string (not shown); ``sampling`` takes ``stream``'s keyword arguments. Ids the
    tokenizer cannot decode (a padded model vocabulary) are never chosen.
    Closing the generator early (``break``, Ctrl-C) frees the KV cache.
    """
    ids = tokenizer.encode(prompt, allowed_special="all") if isinstance(prompt, str) else prompt
    if not ids:
        raise GenerationError("the prompt is empty: give some text to continue")
    if eos_token_id is None:
        eos_token_id = getattr(tokenizer, "eot_token_id", None)
    eos = {eos_token_id} if isinstance(eos_token_id, int) else set(eos_token_id or ())
    device = device or next(model.parameters()).device
    streamer = TextStreamer(tokenizer, stop_strings)
    sampling.setdefault("vocab_limit", max_token_id(tokenizer) + 1)
    input_ids = torch.tensor([ids], dtype=torch.long, device=device)
    for tok in stream(
        model, input_ids, max_new_tokens, eos_token_id=sorted(eos) or None, **sampling
    ):
        t = int(tok[0])
        if t in eos:
            break
        piece = streamer.put(t)
        if piece:
            yield piece
        if streamer.stopped:
            return
    tail = streamer.end()
    if tail:
        yield tail
