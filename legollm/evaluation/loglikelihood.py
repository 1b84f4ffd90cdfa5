"""How likely a model finds a continuation of a context: the score behind multiple choice.

``loglikelihood(model, tokenizer, [(context, continuation), ...])`` gives, per pair,
the summed log-probability of the continuation's tokens given the context, and
whether greedy decoding from the context would have produced exactly those tokens.
A multiple-choice question is then a set of pairs sharing one context.

The pairs are tokenised the way lm-evaluation-harness does, so scores match it:

- Spaces at the end of the context move to the start of the continuation
  (``"Answer: " + "Paris"`` is scored as ``"Answer:" + " Paris"``): BPE tokenizers
  glue a space to the word after it, so this keeps the word one token.
- The continuation's tokens are those of ``tokenize(context + continuation)`` that
  follow the first ``len(tokenize(context))`` tokens. The input is the context's own
  tokens followed by those.
- An empty context is replaced by one end-of-text token, so the first token of the
  continuation has something to be predicted from.
- A context too long for the model loses tokens from the left: the input is the
  last ``context_length + 1`` tokens of context + continuation, less the last.

Two ways to run the pairs, chosen per question:

- **Shared context** (several continuations of a long context that fit the
  window): the context runs once, batch of one, filling a KV cache; the cache is
  copied to one row per continuation and the continuations run together on top of
  it. The context's tokens are computed once instead of once per choice, at the
  price of one more forward, so this is used when it saves at least
  ``SHARE_MIN_SAVED`` token positions (a few-shot prompt with four choices).
- **Rows**: each pair is one padded row of a batch, longest first. The positions
  before the first continuation token of any row are not projected onto the
  vocabulary (``logits_from``), so the context costs the blocks only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from tqdm import tqdm

from legollm.core.exceptions import DataError
from legollm.evaluation.perplexity import window_length

TokenPair = tuple[list[int], list[int]]
# A shared context costs one more forward per question: on a CPU a small batch's
# forward is mostly reading the weights, so it pays only when it saves this many
# positions of context (few-shot prompts, not a zero-shot HellaSwag question).
SHARE_MIN_SAVED = 512


def encode_pair(tokenizer, context: str, continuation: str) -> TokenPair:
    """``(context_ids, continuation_ids)`` of a pair, as lm-evaluation-harness cuts them."""
    if not context:
        eot = getattr(tokenizer, "eot_token_id", None)
        if eot is None:
            raise DataError(
                "an empty context needs an end-of-text token to start from, and this "
                "tokenizer has none: give every record a context"
            )
        return [eot], tokenizer.encode(continuation)
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = tokenizer.encode(context + continuation)
    context_ids = tokenizer.encode(context)
    return context_ids, whole[len(context_ids) :]


def loglikelihood(
    model: nn.Module,
    tokenizer,
    pairs: Sequence[tuple[str, str]],
    batch_size: int = 16,
    progress: bool = False,
) -> list[tuple[float, bool]]:
    """``(sum log-prob, is_greedy)`` of each ``(context, continuation)`` pair, in order.

    See the module docstring for how pairs are tokenised and batched.
    ``batch_size``: rows per forward when pairs run as rows.
    """
    encoded = [encode_pair(tokenizer, c, x) for c, x in pairs]
    return loglikelihood_tokens(model, encoded, batch_size=batch_size, progress=progress)


@dataclass
class _Group:
    """The pairs (by index) that share one context's tokens."""

    context: list[int]
    members: list[int]


@torch.inference_mode()
def loglikelihood_tokens(
    model: nn.Module,
    requests: Sequence[TokenPair],
    batch_size: int = 16,
    progress: bool = False,
    share_min_saved: int = SHARE_MIN_SAVED,
) -> list[tuple[float, bool]]:
    """``loglikelihood`` on token ids: ``(context_ids, continuation_ids)`` per request.

    A context shared by several requests runs once when that saves at least
    ``share_min_saved`` token positions (0: whenever it is shared).
    """
    limit = window_length(model)
    for k, (context, continuation) in enumerate(requests):
        if not context or not continuation:
            raise DataError(f"request {k}: the context and the continuation need a token each")
        if len(continuation) > limit:
            raise DataError(
                f"request {k}: a continuation of {len(continuation)} tokens does not fit "
                f"the model's context of {limit}"
            )
    model.eval()
    results: list[tuple[float, bool] | None] = [None] * len(requests)
    shared, rows = _plan(requests, limit, share_min_saved)
    bar = tqdm(total=len(requests), unit="choice", desc="loglikelihood", disable=not progress)
    for group in shared:
        conts = [requests[i][1] for i in group.members]
        for i, r in zip(group.members, _score_shared(model, group.context, conts), strict=True):
            results[i] = r
        bar.update(len(conts))
    rows.sort(key=lambda i: -len(requests[i][0]) - len(requests[i][1]))
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        for i, r in zip(
            batch, _score_rows(model, [requests[i] for i in batch], limit), strict=True
        ):
            results[i] = r
        bar.update(len(batch))
    bar.close()
    return results  # type: ignore[return-value]


def _plan(
    requests: Sequence[TokenPair], limit: int, min_saved: int
) -> tuple[list[_Group], list[int]]:
    """Split requests into shared-context groups (those that fit the window and save
    enough context positions) and single rows."""
    groups: dict[tuple[int, ...], _Group] = {}
    for i, (context, _) in enumerate(requests):
        groups.setdefault(tuple(context), _Group(context, [])).members.append(i)
    shared, rows = [], []
    for group in groups.values():
        longest = max(len(requests[i][1]) for i in group.members)
        saved = (len(group.members) - 1) * len(group.context)
        if (
            len(group.members) > 1
            and saved >= min_saved
            and len(group.context) + longest - 1 <= limit
        ):
            shared.append(group)
        else:
            rows.extend(group.members)
    return shared, rows


def _score(logits: torch.Tensor, targets: Sequence[int]) -> tuple[float, bool]:
    """Sum of log-softmax at ``targets`` for logits (len(targets), vocab); greedy match."""
    logprobs = torch.log_softmax(logits.float(), dim=-1)
    t = torch.tensor(targets, device=logits.device)
    total = float(logprobs.gather(-1, t[:, None]).sum())
    return total, bool((logprobs.argmax(-1) == t).all())


def _score_rows(model: nn.Module, pairs: list[TokenPair], limit: int) -> Iterator:
    """Each pair as one right-padded row (the model is causal: padding after a row's
    tokens changes nothing before them)."""
    inputs = [(c + x)[-(limit + 1) :][:-1] for c, x in pairs]
    device = next(model.parameters()).device
    batch = torch.zeros(len(inputs), max(map(len, inputs)), dtype=torch.long)
    for row, ids in enumerate(inputs):
        batch[row, : len(ids)] = torch.tensor(ids)
    skip = min(len(ids) - len(x) for ids, (_, x) in zip(inputs, pairs, strict=True))
    batch = batch.to(device)  # positions before `skip` give context only: no logits
    logits = model(batch, logits_from=skip) if skip else model(batch)
    for row, (ids, (_, continuation)) in enumerate(zip(inputs, pairs, strict=True)):
        end = len(ids) - skip
        yield _score(logits[row, end - len(continuation) : end], continuation)


def _score_shared(model: nn.Module, context: list[int], continuations: list[list[int]]):
    """Run ``context`` once into a KV cache, then every continuation on a copy of it."""
    device = next(model.parameters()).device
    n, C = len(continuations), len(context)
    longest = max(map(len, continuations))
    model.setup_kv_cache(1, C + longest - 1)
    try:
        ctx = torch.tensor([context], device=device)
        last = model(ctx, input_pos=torch.arange(C, device=device), last_only=True)[0]  # (1, V)
        rest = None
        if longest > 1:  # feed every continuation but its last token, right-padded
            model.repeat_kv_cache(n)
            feed = torch.zeros(n, longest - 1, dtype=torch.long)
            for row, cont in enumerate(continuations):
                feed[row, : len(cont) - 1] = torch.tensor(cont[:-1])
            pos = torch.arange(C, C + longest - 1, device=device)
            rest = model(feed.to(device), input_pos=pos)
    finally:
        model.remove_kv_cache()
    for row, cont in enumerate(continuations):
        logits = last if rest is None else torch.cat([last, rest[row, : len(cont) - 1]])
        yield _score(logits, cont)
