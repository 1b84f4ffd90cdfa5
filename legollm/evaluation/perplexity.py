"""Perplexity and bits per byte of a model on a text, with sliding windows.

A text longer than the model's context is read in windows of ``context_length``
input tokens that start every ``stride`` tokens (Hugging Face's "perplexity of
fixed-length models" guide). A window predicts the token after each of its
inputs, but scores only the targets the previous window did not reach (the
others are set to -100), so every token is scored exactly once, with as much
left context as its window gives: at least ``context_length - stride`` tokens
once the first window is past. A smaller stride gives more context per token and
costs more forwards (``stride = context_length``: non-overlapping windows).

One difference from the guide's loop: its windows hold ``context_length`` tokens and
score the last ones, so the first token of each window is scored by none when the
stride equals the context. Here a window feeds ``context_length`` tokens and scores
the token after each, so no token is skipped at any stride up to the context.

The first token of the text is never scored: nothing precedes it to predict it
from. A result over N tokens therefore averages N - 1 losses.

Bits per byte (total NLL / (ln 2 x UTF-8 bytes of the text)) does not depend on
how the tokenizer cuts the text, so it compares models with different vocabularies.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from legollm.core.exceptions import ConfigError, DataError
from legollm.data.meta import DTYPES, check_split_file, read_meta
from legollm.models.decoder import context_limit
from legollm.models.loss import IGNORE_INDEX, lm_loss


@dataclass(frozen=True)
class PerplexityResult:
    """What one evaluation measured.

    ``tokens``: tokens in the text (``tokens - 1`` of them are scored); ``bytes``:
    UTF-8 bytes of the text; ``nll``: mean negative log-likelihood per scored token
    (nats); ``total_nll``: their sum.
    """

    tokens: int
    bytes: int
    nll: float
    perplexity: float
    bits_per_token: float
    bits_per_byte: float
    total_nll: float

    @classmethod
    def from_total(cls, total_nll: float, tokens: int, n_bytes: int) -> PerplexityResult:
        scored = tokens - 1
        nll = total_nll / scored
        return cls(tokens=tokens, bytes=n_bytes, nll=nll, perplexity=math.exp(nll),
                   bits_per_token=nll / math.log(2),
                   bits_per_byte=total_nll / (math.log(2) * n_bytes) if n_bytes else math.nan,
                   total_nll=total_nll)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def window_length(model: nn.Module) -> int:
    """Input tokens per window: the model's context (a sliding-window model, which has
    no hard limit, is read in windows of the context it was configured with)."""
    config = model.config
    return context_limit(config) or config.context_length


def windows(n_tokens: int, context: int, stride: int) -> Iterator[tuple[int, int, int]]:
    """``(start, first_target, end)`` of each window over ``n_tokens`` ids.

    The window feeds ids ``[start, end)`` and predicts ids ``[start + 1, end + 1)``;
    it scores targets from ``first_target`` on (those the previous window did not).

    >>> list(windows(10, context=4, stride=2))
    [(0, 1, 4), (2, 5, 6), (4, 7, 8), (6, 9, 9)]
    """
    scored_to, start = 1, 0  # targets before scored_to are scored already
    last = n_tokens - 1  # the last target
    while scored_to <= last:
        end = min(start + context, last)
        yield start, scored_to, end
        scored_to, start = end + 1, start + stride


def check_stride(stride: int | None, context: int) -> int:
    """The stride to use: ``context // 2`` by default, else ``1 <= stride <= context``."""
    if stride is None:
        return max(1, context // 2)
    if not 1 <= stride <= context:
        raise ConfigError(
            f"stride must be between 1 and the model's context ({context}), got {stride}: a "
            "larger stride would leave tokens between windows unscored"
        )
    return stride


@torch.inference_mode()
def token_nll(
    model: nn.Module,
    ids: Sequence[int] | np.ndarray | torch.Tensor,
    *,
    stride: int | None = None,
    batch_size: int = 8,
    progress: bool = False,
) -> torch.Tensor:
    """Negative log-likelihood (nats, float32) of each of ``ids[1:]`` given what precedes
    it within its window: a (len(ids) - 1,) tensor, entry i for token i + 1.

    ``model(x, logits_from=k)`` returns the logits of positions k.. (as ``DecoderLM``).

    Windows are batched ``batch_size`` at a time; a shorter window is padded and its
    padding targets set to -100 (the model is causal, so padding on the right changes
    nothing before it). Only scored positions are projected onto the vocabulary
    (``logits_from``): after the first window, the ``context - stride`` positions
    that give context only never reach the largest matrix multiply.
    """
    context = window_length(model)
    stride = check_stride(stride, context)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1 (windows per forward), got {batch_size}")
    ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
    if ids.numel() < 2:
        raise DataError(
            f"the text is {ids.numel()} token(s) long: at least two are needed to score one "
            "(the first token has nothing before it to predict it from); give a longer text"
        )
    model.eval()
    device = next(model.parameters()).device
    spans = list(windows(ids.numel(), context, stride))
    out = torch.empty(ids.numel() - 1, dtype=torch.float32)
    bar = _progress(len(spans), progress)
    for i in range(0, len(spans), batch_size):
        batch = spans[i : i + batch_size]
        x, y = _batch(ids, batch)
        skip = min(first - 1 - start for start, first, _ in batch)  # no row scores these
        logits = model(x.to(device), logits_from=skip) if skip else model(x.to(device))
        nll = lm_loss(logits, y[:, skip:].to(device), reduction="none").view(len(batch), -1)
        for row, (start, first, end) in zip(nll.cpu(), batch, strict=True):
            out[first - 1 : end] = row[first - 1 - start - skip : end - start - skip]
        bar.update(len(batch))
    bar.close()
    return out


def _batch(ids: torch.Tensor, spans: list[tuple[int, int, int]]):
    """Inputs (B, T) and targets (B, T) for windows, the unscored targets at -100."""
    T = max(end - start for start, _, end in spans)
    x = torch.zeros(len(spans), T, dtype=torch.long)
    y = torch.full((len(spans), T), IGNORE_INDEX, dtype=torch.long)
    for row, (start, first, end) in enumerate(spans):
        x[row, : end - start] = ids[start:end]
        y[row, first - 1 - start : end - start] = ids[first : end + 1]
    return x, y


def _progress(total: int, show: bool) -> tqdm:
    return tqdm(total=total, unit="window", desc="perplexity", disable=not show)


def perplexity_of_ids(
    model: nn.Module,
    ids: Sequence[int] | np.ndarray | torch.Tensor,
    n_bytes: int,
    *,
    stride: int | None = None,
    batch_size: int = 8,
    progress: bool = False,
) -> PerplexityResult:
    """Perplexity of token ids standing for ``n_bytes`` UTF-8 bytes of text."""
    nll = token_nll(model, ids, stride=stride, batch_size=batch_size, progress=progress)
    return PerplexityResult.from_total(float(nll.double().sum()), nll.numel() + 1, n_bytes)


def read_text_ids(tokenizer: Any, source: str | os.PathLike[str]) -> tuple[list[int], int]:
    """``(ids, bytes)`` of a text, a ``.txt`` file or a folder of ``.txt`` files.

    A ``str`` is the text itself; a path is read as UTF-8. A folder's files (sorted
    by name, searched recursively) are tokenized one by one and joined by the
    tokenizer's end-of-text token when it has one, the way data-prepare separates
    documents; the separators add no bytes. Special-token strings in the text are
    read as plain text.
    """
    encode = getattr(tokenizer, "encode_ordinary", None) or tokenizer.encode
    if isinstance(source, str):
        texts, where = [source], "the text"
    else:
        path = Path(source)
        files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
        if not path.exists():
            raise DataError(f"text not found: {path} (give a .txt file or a folder of them)")
        if not files:
            raise DataError(f"{path} holds no .txt files")
        texts, where = [f.read_text(encoding="utf-8") for f in files], str(path)
    if not any(t.strip() for t in texts):
        raise DataError(f"{where} is empty: give text to evaluate on")
    eot = getattr(tokenizer, "eot_token_id", None)
    ids: list[int] = []
    for k, text in enumerate(texts):
        if k and eot is not None:
            ids.append(eot)
        ids.extend(encode(text))
    return ids, sum(len(t.encode("utf-8")) for t in texts)


def perplexity(
    model: nn.Module,
    tokenizer: Any,
    text: str | os.PathLike[str],
    stride: int | None = None,
    batch_size: int = 8,
    progress: bool = False,
) -> PerplexityResult:
    """Perplexity and bits per byte of ``model`` on ``text`` (see the module docstring).

    ``text``: the text itself (``str``), or a path to a ``.txt`` file or a folder of
    them (see :func:`read_text_ids`). ``stride``: tokens between window starts
    (default: half the context).
    """
    ids, n_bytes = read_text_ids(tokenizer, text)
    return perplexity_of_ids(model, ids, n_bytes, stride=stride, batch_size=batch_size,
                             progress=progress)  # fmt: skip


def perplexity_of_split(
    model: nn.Module,
    tokenizer: Any,
    data_dir: str | os.PathLike[str],
    split: str = "val",
    stride: int | None = None,
    batch_size: int = 8,
    progress: bool = False,
) -> PerplexityResult:
    """Perplexity on a prepared data dir's split (its ``.bin`` ids, read as they are).

    The bytes are those of the ids decoded by ``tokenizer``, which must be the one
    that prepared the data (an end-of-text separator counts as its written form).
    """
    meta = read_meta(data_dir)
    path = Path(data_dir) / f"{split}.bin"
    if not path.is_file():
        raise DataError(f"no {split!r} split in {data_dir}: {path} not found")
    check_split_file(path, meta["dtype"], meta)
    ids = np.fromfile(path, dtype=DTYPES[meta["dtype"]]).astype(np.int64)
    n_bytes = len(tokenizer.decode(ids.tolist()).encode("utf-8"))
    return perplexity_of_ids(model, ids, n_bytes, stride=stride, batch_size=batch_size,
                             progress=progress)  # fmt: skip
