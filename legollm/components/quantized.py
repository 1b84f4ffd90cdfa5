"""Int8Linear: a linear layer whose weight is stored as int8, one scale per output row.

Decoding one token reads every weight once, so its speed is set by how many bytes
the weights take. Storing each weight as a signed byte instead of a float32 cuts
those bytes by four. The quantisation is *symmetric* and *per output channel*: row
``o`` of the weight keeps ``scale[o] = max_i |W[o, i]| / 127`` and the integers
``q[o, i] = round(W[o, i] / scale[o])`` in [-127, 127], so ``W ~ q * scale[:, None]``
with an error of at most half a step, ``scale[o] / 2``, per weight. Only the weights
are quantised ("weight-only"): the activations stay floats, and everything outside
the products (norms, attention, the residual stream, the logits) runs in the model's
dtype as before.

The product is PyTorch's own int8 weight-only kernel, ``aten._weight_int8pack_mm``,
which converts each byte to a float inside its inner loop and accumulates in
float32; the float weight never exists in memory. On x86 that kernel is vectorised
(AVX2 / AVX-512) for bfloat16 inputs only, its float32 version being a scalar loop
ten to twenty times slower, so a float32 model hands it the activations rounded to
bfloat16 and gets the output back in bfloat16 (a relative error of at most 2^-9,
about a quarter of what the int8 weights already add) before returning to float32.
The scale is applied afterwards in the model's dtype, so it is not rounded.

:func:`quantize` swaps every ``nn.Linear`` of a model for an ``Int8Linear`` in
place; a tied output head gets its own int8 copy, and the embedding it was tied to
stays as it is (a lookup reads one row, not the whole matrix).
"""

from __future__ import annotations

import torch
from torch import nn

from legollm.core.exceptions import ConfigError

QUANTIZATIONS = ("int8",)
INT8_MAX = 127  # symmetric: -128 is never used, so q and -q are both representable
# The vectorised kernel loads 16 values at a time with aligned loads: each row of the
# activations and of the weight must start on a 32-byte boundary.
_KERNEL_K_MULTIPLE = 16
_KERNEL_ALIGN = 32


def quantize_weight(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(q, scale)``: int8 ``q`` (out, in) and ``scale`` (out,) with ``weight ~ q * scale[:, None]``.

    A row of zeros gets a scale of 1 (any scale reproduces it exactly).
    """
    w = weight.detach().float()
    absmax = w.abs().amax(dim=1)
    scale = torch.where(absmax > 0, absmax / INT8_MAX, torch.ones_like(absmax))
    q = torch.round(w / scale[:, None]).clamp(-INT8_MAX, INT8_MAX).to(torch.int8).contiguous()
    return q, scale.to(weight.dtype)


class Int8Linear(nn.Module):
    """``y = x @ (q * scale[:, None]).T + bias`` from int8 ``q``, without making the float weight.

    Buffers, as in the state dict: ``weight`` (out, in) int8, ``scale`` (out,) and
    ``bias`` (out,) or None in the model's dtype. Inference only: nothing here trains.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight", torch.zeros(out_features, in_features, dtype=torch.int8,
                                                   device=device))  # fmt: skip
        self.register_buffer("scale", torch.ones(out_features, dtype=dtype, device=device))
        self.register_buffer(
            "bias", torch.zeros(out_features, dtype=dtype, device=device) if bias else None
        )

    @classmethod
    @torch.no_grad()
    def from_linear(cls, linear: nn.Linear) -> Int8Linear:
        """The int8 version of ``linear`` (its weight quantised, its bias kept)."""
        w = linear.weight
        layer = cls(linear.in_features, linear.out_features, linear.bias is not None,
                    dtype=w.dtype, device=w.device)  # fmt: skip
        layer.weight, layer.scale = quantize_weight(w)
        if linear.bias is not None:
            layer.bias = linear.bias.detach().clone()
        return layer

    def dequantized_weight(self) -> torch.Tensor:
        """``q * scale[:, None]``: the float weight this layer stands for (tests, export)."""
        return self.weight.to(self.scale.dtype) * self.scale[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(-1, self.in_features)  # (N, in)
        y = int8_matmul(rows, self.weight).to(x.dtype) * self.scale  # (N, out)
        if self.bias is not None:
            y = y + self.bias
        return y.view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, " + (
            f"bias={self.bias is not None}, int8 per output channel"
        )


def int8_matmul(rows: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``rows @ q.T`` (N, out) for int8 ``q`` (out, in), through PyTorch's int8 kernel.

    The vectorised bfloat16 path when the shapes and memory allow it (see the
    module docstring), else the kernel's scalar loop in float32, which takes any
    shape (tiny test models with an odd width).
    """
    ones = torch.ones(q.shape[0], dtype=torch.bfloat16, device=q.device)
    if q.device.type == "cpu" and not _vectorisable(q):
        return torch.ops.aten._weight_int8pack_mm(rows.float(), q, ones.float())
    a = rows.to(torch.bfloat16).contiguous()
    if a.data_ptr() % _KERNEL_ALIGN:  # a view that starts mid-row of a larger tensor
        a = a.clone()
    return torch.ops.aten._weight_int8pack_mm(a, q, ones)


def _vectorisable(q: torch.Tensor) -> bool:
    return (
        q.shape[1] % _KERNEL_K_MULTIPLE == 0
        and q.is_contiguous()
        and q.data_ptr() % _KERNEL_ALIGN == 0
    )


@torch.no_grad()
def quantize(model: nn.Module, kind: str = "int8") -> nn.Module:
    """Replace every ``nn.Linear`` in ``model`` by its ``Int8Linear``, in place; returns ``model``.

    ``kind`` is the format (only ``"int8"``: symmetric, per output channel). Layers
    that are already quantised are left alone, so quantising twice is harmless.
    """
    if kind not in QUANTIZATIONS:
        raise ConfigError(
            f"unknown quantization {kind!r}; choose one of: {', '.join(QUANTIZATIONS)}"
        )
    targets = [(n, m) for n, m in model.named_modules() if n and isinstance(m, nn.Linear)]
    for name, linear in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, Int8Linear.from_linear(linear))
    return model


def quantization_of(model: nn.Module) -> str | None:
    """``"int8"`` if ``model`` holds int8 layers, else None (a plain float model)."""
    return "int8" if any(isinstance(m, Int8Linear) for m in model.modules()) else None
