"""Linear: ``nn.Linear`` whose few-row float32 CPU products use every core.

Decoding one token multiplies a single row by every weight matrix, so its speed
is how fast the weights stream out of memory. PyTorch's CPU float32
matrix-vector product runs on one core: on the 2-core EPYC these figures come
from it reads about 19 GB/s, while the same memory gives a two-threaded
``sum`` about 50 GB/s. Cutting the weight's output rows into one slab per
thread and handing the slabs to ``torch.bmm``, which runs the batch in parallel,
reads about 32 GB/s (llama.cpp splits its matrix-vector products across threads
the same way). Nothing is copied: the slabs are a view of the weight, and each
output is the same dot product as before.

The split only pays where streaming the weight dominates: float32 on CPU (bf16
already runs threaded), at most ``SPLIT_MAX_ROWS`` input rows, a weight of at
least ``SPLIT_MIN_NUMEL`` elements, and more than one thread. Everything else,
training included, is plain ``F.linear``. ``benchmarks/bench_generate.py``
measures the effect on decoding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SPLIT_MAX_ROWS = 32  # measured: the gain fades by 64 rows, where the product is a real GEMM
# 1 MiB of float32; below it the extra bmm launch costs more than it saves
SPLIT_MIN_NUMEL = 1 << 18


def split_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, parts: int
) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` as ``parts`` slabs of output rows, multiplied in parallel.

    ``weight`` (out, in) is stored by rows or by columns; a remainder of
    ``out % parts`` rows is multiplied on its own and appended.
    """
    out_features, in_features = weight.shape
    rows = x.reshape(-1, in_features)
    even = out_features - out_features % parts
    # (parts, in, out/parts): slab i holds output rows i*out/parts ... (i+1)*out/parts - 1.
    # Splitting one dimension is a view whatever the strides, so a weight stored
    # transposed (GPT-2's Conv1D layout, loaded as ``.t()``) splits without a copy too.
    slabs = weight[:even].unflatten(0, (parts, even // parts)).transpose(1, 2)
    xs = rows.expand(parts, *rows.shape)  # the same rows for every slab, no copy
    if bias is None:
        y = torch.bmm(xs, slabs)
    else:
        y = torch.baddbmm(bias[:even].view(parts, 1, -1), xs, slabs)
    y = y.transpose(0, 1).reshape(rows.shape[0], even)  # (rows, parts, out/parts) -> (rows, out)
    if even < out_features:
        rest = F.linear(rows, weight[even:], None if bias is None else bias[even:])
        y = torch.cat([y, rest], dim=1)
    return y.view(*x.shape[:-1], out_features)


def use_split(x: torch.Tensor, weight: torch.Tensor) -> int:
    """How many slabs to split this product into (0: use plain ``F.linear``)."""
    if torch.compiler.is_compiling():  # the compiler picks its own kernels
        return 0
    threads = torch.get_num_threads()
    if (
        threads < 2
        or x.device.type != "cpu"
        or weight.dtype != torch.float32
        or weight.numel() < SPLIT_MIN_NUMEL
        or x.numel() > SPLIT_MAX_ROWS * weight.shape[1]
        or 1 not in weight.stride()  # neither by rows nor by columns: BLAS would copy it
    ):
        return 0
    return threads


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters, state dict and init) with the threaded few-row path."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = use_split(x, self.weight)
        if parts:
            return split_linear(x, self.weight, self.bias, parts)
        return F.linear(x, self.weight, self.bias)


@torch.no_grad()
def store_by_columns(model: nn.Module) -> nn.Module:
    """Re-store each large float32 CPU ``Linear`` weight column by column, in place.

    Values, shapes and parameter identity (tied embeddings included) stay the
    same; only the memory order changes, to the one the threaded few-row product
    streams fastest (on the figures' CPU, GPT-2 124M decodes about 14% faster).
    It is for a model loaded to generate: the numbers are the same, but training
    from column-stored weights is slower (a Mixtral-shaped training step in
    ``benchmarks/bench_moe.py`` ran at 0.6x its speed from row-stored weights).
    A weight already stored that way is left alone. Returns ``model``.
    """
    for module in model.modules():
        w = module.weight if isinstance(module, nn.Linear) else None
        if (
            w is not None
            and w.device.type == "cpu"
            and w.dtype == torch.float32
            and w.numel() >= SPLIT_MIN_NUMEL
            and w.stride() != (1, w.shape[0])
        ):
            w.data = w.t().contiguous().t()
    return model
