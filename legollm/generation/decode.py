"""Autoregressive decoding with a pre-allocated KV cache.

One prefill pass runs the whole prompt and fills the cache; every later step
feeds only the newest token at its slot (``input_pos``) and its position. Rows of
a left-padded batch carry an attention mask, and their positions count only real
tokens, so each row decodes exactly as it would alone. A row that emits an EOS
id is finished: it keeps receiving EOS while the others go on.

When the sequence would outgrow the model's context, decoding switches to the
sliding window: each step re-runs the last ``context_length`` tokens without a
cache (learned positions are absolute, so a cached window cannot be shifted).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from legollm.core.exceptions import GenerationError
from legollm.generation.sampling import check_sampling_args, next_token


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
    use_cache: bool = True,
) -> Iterator[torch.Tensor]:
    """Yield the next token of every row, (B,), one step at a time."""
    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    B, T = input_ids.shape
    if T == 0:
        raise GenerationError("the prompt is empty: give at least one token")
    if max_new_tokens < 0:
        raise GenerationError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    check_sampling_args(temperature, top_k, top_p, min_p, repetition_penalty)
    ctx = model.config.context_length
    device = input_ids.device
    generator = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    eos = torch.tensor(
        [eos_token_id] if isinstance(eos_token_id, int) else (eos_token_id or []), device=device
    )
    mask = (
        torch.ones(B, T, dtype=torch.long, device=device)
        if attention_mask is None
        else attention_mask.long()
    )
    ids = input_ids
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    cached = use_cache and T + max_new_tokens <= ctx
    sample = dict(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                  repetition_penalty=repetition_penalty, generator=generator)  # fmt: skip
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            if cached:
                model.setup_kv_cache(B, T + max_new_tokens)
                pos = (mask.cumsum(-1) - 1).clamp(min=0)  # real-token positions per row
                logits = model(ids, input_pos=torch.arange(T, device=device), position_ids=pos,
                               attention_mask=mask)[:, -1]  # fmt: skip
            for step in range(max_new_tokens):
                if not cached:
                    window, wmask = ids[:, -ctx:], mask[:, -ctx:]
                    pos = (wmask.cumsum(-1) - 1).clamp(min=0)
                    logits = model(window, position_ids=pos, attention_mask=wmask)[:, -1]
                tok = next_token(logits, seen=ids, **sample)
                if eos.numel():
                    tok = torch.where(finished, eos[0], tok)
                    finished |= torch.isin(tok, eos)
                yield tok
                if finished.all() or step == max_new_tokens - 1:
                    break
                ids = torch.cat([ids, tok[:, None]], dim=1)
                mask = torch.cat([mask, torch.ones(B, 1, dtype=mask.dtype, device=device)], dim=1)
                if cached:
                    t = ids.shape[1] - 1
                    logits = model(tok[:, None], input_pos=torch.tensor([t], device=device),
                                   position_ids=pos[:, -1:] + 1, attention_mask=mask)[:, -1]  # fmt: skip
                    pos = pos[:, -1:] + 1
    finally:
        if cached:
            model.remove_kv_cache()
        model.train(was_training)


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
    return torch.cat([prompt, torch.stack(steps, dim=1)], dim=1) if steps else prompt
