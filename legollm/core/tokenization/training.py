"""Fast byte-level BPE training.

The textbook loop (count every pair in the corpus, merge the best, repeat) costs
O(merges x corpus). Real text repeats itself, so we do the work once per
*distinct* pre-split chunk, weighted by how often it occurs, and after each
merge we touch only the chunks that contain the merged pair:

- ``pair_counts``: pair -> weighted count over all chunks;
- ``where``: pair -> indices of the chunks that (may) hold it (stale entries are
  harmless: such a chunk is rewritten to itself);
- a max-heap of ``(-count, pair)`` with lazy deletion: counts only ever go down
  for pairs that do not contain the new token, so a popped entry whose count is
  out of date is pushed back with its current count, and pairs that do contain
  the new token are pushed when they appear.

Ties go to the smallest pair ``(left id, right id)``, so the same input gives
the same merges on every machine.
"""

from __future__ import annotations

import heapq
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable

Pair = tuple[int, int]


def merge_pair(ids: list[int], pair: Pair, new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of ``pair`` in ``ids``, left to right."""
    a, b = pair
    out: list[int] = []
    i, n = 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def train_merges(
    chunk_counts: Iterable[tuple[bytes, int]],
    num_merges: int,
    first_id: int = 256,
    on_progress: Callable[[int, float], None] | None = None,
) -> list[tuple[Pair, int]]:
    """Learn ``num_merges`` merges from ``(chunk bytes, count)`` pairs.

    Returns ``[((left, right), new_id), ...]`` in merge order. Stops early when no
    pair occurs any more (every chunk is a single token).
    """
    words: list[list[int]] = []
    freqs: list[int] = []
    for chunk, count in chunk_counts:
        if len(chunk) > 1:
            words.append(list(chunk))
            freqs.append(count)

    pair_counts: Counter[Pair] = Counter()
    where: dict[Pair, set[int]] = {}
    for wi, w in enumerate(words):
        f = freqs[wi]
        for p in zip(w, w[1:], strict=False):
            pair_counts[p] += f
            where.setdefault(p, set()).add(wi)
    heap = [(-c, p) for p, c in pair_counts.items()]
    heapq.heapify(heap)

    merges: list[tuple[Pair, int]] = []
    start = time.perf_counter()
    while len(merges) < num_merges and heap:
        neg, pair = heapq.heappop(heap)
        count = pair_counts.get(pair, 0)
        if count != -neg:  # stale entry: put it back with its true count
            if count > 0:
                heapq.heappush(heap, (-count, pair))
            continue
        new_id = first_id + len(merges)
        merges.append((pair, new_id))
        fresh: set[Pair] = set()
        for wi in where.pop(pair, ()):
            w, f = words[wi], freqs[wi]
            for p in zip(w, w[1:], strict=False):
                pair_counts[p] -= f
            w = words[wi] = merge_pair(w, pair, new_id)
            for p in zip(w, w[1:], strict=False):
                pair_counts[p] += f
                if new_id in p:
                    where.setdefault(p, set()).add(wi)
                    fresh.add(p)
        del pair_counts[pair]
        for p in fresh:
            heapq.heappush(heap, (-pair_counts[p], p))
        if on_progress is not None:
            on_progress(len(merges), time.perf_counter() - start)
    return merges


class VocabularyShortWarning(UserWarning):
    """Training ran out of pairs to merge before reaching the vocab size asked for."""


def warn_if_short(requested: int, reached: int, what: str) -> None:
    """Say, always, when training stopped short of ``requested`` tokens, and why.

    BPE can only merge a pair it still sees: once ``what`` (each pre-split chunk,
    or the whole text) is a single token there is nothing left to merge.
    """
    if reached < requested:
        warnings.warn(
            f"the tokenizer has {reached:,} tokens, not the {requested:,} asked for: after "
            f"{reached - 256:,} merges {what} is a single token, so no pair is left to merge; "
            f"train on more text or ask for a vocab_size of at most {reached:,}",
            VocabularyShortWarning,
            stacklevel=3,
        )


def reference_train_merges(
    chunk_counts: Iterable[tuple[bytes, int]], num_merges: int, first_id: int = 256
) -> list[tuple[Pair, int]]:
    """The textbook O(merges x corpus) trainer, same tie-break; the oracle for tests."""
    words = [(list(c), n) for c, n in chunk_counts]
    merges = []
    for k in range(num_merges):
        stats: Counter[Pair] = Counter()
        for w, n in words:
            for p in zip(w, w[1:], strict=False):
                stats[p] += n
        if not stats:
            break
        best = min(stats, key=lambda p: (-stats[p], p))
        new_id = first_id + k
        merges.append((best, new_id))
        words = [(merge_pair(w, best, new_id), n) for w, n in words]
    return merges
