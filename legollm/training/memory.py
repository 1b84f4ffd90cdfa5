"""Will it fit? The memory a training run needs per rank, before any weight exists.

Training memory has two parts. What stays for the whole run:

- **weights**: float32 master copies, 4 bytes per parameter (autocast computes in
  bf16 from them; it does not store the model in bf16);
- **optimizer state**: AdamW's two moments, 8 bytes per parameter;
- under DDP with more than one rank, **gradient buckets**: DDP all-reduces
  gradients through flat buffers as large as the gradients themselves.

And what one step adds and gives back:

- **gradients**, 4 bytes per parameter, made by the backward pass and freed after
  the optimizer step (``zero_grad(set_to_none=True)``);
- **activations**: what the forward pass keeps for the backward pass, per
  micro-batch. Per layer that is a handful of (tokens x n_embd) tensors (norm
  inputs, the attention's queries, keys, values and output) and a few (tokens x
  ffn_hidden) ones (the feed-forward's intermediates); see :func:`layer_activations`.
  The loss adds three (tokens x vocab) float32 tensors at the start of the backward
  pass: the log-probabilities, their gradient and the logits' gradient.

The backward pass frees activations layer by layer while it makes gradients, so
the step's peak is the larger of the two, not their sum, when there is one
micro-batch per step; with gradient accumulation the gradients of the earlier
micro-batches wait while the next one's activations are made, so the two add up.

FSDP shards weights, gradients and optimizer state over the ranks (1 / world_size
each) and gathers whole only what it computes with: the root (embeddings, final
norm, head) and about two blocks at a time (the one running and the one prefetched),
with their unsharded gradients in the backward pass.

Activation checkpointing keeps only each block's input (one tokens x n_embd
tensor per layer) and recomputes one block at a time in the backward pass; the
chunked loss makes only ``loss_chunk_size`` tokens' logits at once.

What is not counted: the CUDA context and allocator cache (~0.5-2 GB per GPU), the
data loader, dropout masks (dropout is 0 in LLM training), and the transient
buffers of a compiled or fused kernel. So the verdict keeps 10% of the device free.
"""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass, field

import torch

from legollm.models.config import ModelConfig
from legollm.models.decoder import DecoderLM
from legollm.training.config import TrainConfig

DTYPE_BYTES = {"fp32": 4, "bf16": 2, "fp16": 2}
WEIGHT, GRAD, ADAM = 4, 4, 8  # bytes per parameter: fp32 weight, fp32 gradient, two fp32 moments
HEADROOM = 0.9  # the share of a device's memory a run may plan to use
INDEX_BYTES = 8  # token ids (int64) kept by the embedding lookups


@dataclass(frozen=True)
class ParamCounts:
    total: int  # every distinct parameter (a tied head counts once)
    per_block: int  # one transformer block
    root: int  # outside the blocks: embeddings, final norm, head
    matmul: int  # the weights of linear layers (autocast keeps bf16 copies of these)


def count_params(config: ModelConfig) -> ParamCounts:
    """Parameter counts of ``DecoderLM(config)``, built on the meta device (no memory)."""
    with torch.device("meta"):
        model = DecoderLM(config)
    total = sum(p.numel() for p in model.parameters())
    per_block = sum(p.numel() for p in model.blocks[0].parameters())
    matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return ParamCounts(total, per_block, total - config.n_layer * per_block, matmul)


def layer_activations(c: ModelConfig, tokens: int, seq: int, dtype: str = "fp32") -> int:
    """Bytes one block keeps for the backward pass, for ``tokens`` = batch x seq tokens.

    Counted tensor by tensor, in units of one (tokens x n_embd) tensor. The residual
    stream and the norms run in float32 (s = 4 bytes); matmul outputs in the compute
    dtype (a = 4, or 2 under bf16 autocast). Each of the two norms keeps its input, an
    RMSNorm also its normalised x, and the next linear layer keeps the norm's output
    (cast to the compute dtype). The attention keeps queries (1), keys and values
    (n_kv_heads / n_head each) and its output (1); the fused kernel keeps one
    log-sum-exp per query and head, the written-out one its (seq x seq) probabilities.
    A GELU MLP keeps its hidden layer before and after the GELU (2 x ffn_hidden), a
    SwiGLU the gate, its SiLU, the up projection and their product (4 x ffn_hidden).
    """
    s, a = 4, DTYPE_BYTES[dtype]
    C, H, F = c.n_embd, c.n_head, c.ffn_size
    q = H * c.head_size / C  # queries, in units of n_embd
    kv = c.kv_heads * c.head_size / C  # keys (and values)
    norm = (2 * s if c.norm == "rmsnorm" else s) + a  # input (+ normalised x) + its output
    attn = (2 * q + 2 * kv) * a  # queries, output, keys, values
    if c.qk_norm:  # each norm keeps its input and normalised x
        attn += 2 * (q + kv) * s
    if c.attn_impl == "manual":  # (seq x seq) probabilities per head
        attn += H * seq / C * a
    else:  # the fused kernel's log-sum-exp, one float per query and head
        attn += H / C * 4
    if c.ffn == "gelu_mlp":
        ffn = 2 * F / C * a
    elif c.ffn == "swiglu":
        ffn = 4 * F / C * a
    else:  # moe: each token through k experts, gathered in and scattered out (approximate)
        k = c.n_experts_per_token
        ffn = k * (4 * F / C + 2) * a + (c.n_experts or 0) / C * 4
    return int(tokens * C * (2 * norm + attn + ffn))


def loss_activations(c: ModelConfig, tokens: int, chunk: int | None) -> int:
    """The loss's peak: three float32 (n x vocab) tensors, n = all tokens or one chunk.

    Chunked, the head's weight gradient is made by the first chunk's backward and
    waits beside the next chunks' logits.
    """
    if not chunk:
        return 3 * tokens * c.vocab_size * 4
    return 3 * min(chunk, tokens) * c.vocab_size * 4 + c.vocab_size * c.n_embd * GRAD


@dataclass
class ActivationEstimate:
    """The backward pass's peak: everything kept, plus the larger of the loss's peak
    (at its start) and one block's recomputed insides (later, when checkpointing)."""

    blocks: int  # what the n_layer blocks keep for the backward pass
    recompute: int  # checkpointing: one block's activations, made again in the backward
    head: int  # embeddings' ids, final norm, the head's input
    loss: int  # the loss's peak (logits-sized float32 tensors)
    weight_copies: int  # bf16 autocast: the cast weights kept for the backward pass

    @property
    def total(self) -> int:
        return self.blocks + self.head + self.weight_copies + max(self.loss, self.recompute)


def activations(
    c: ModelConfig, params: ParamCounts, batch: int, seq: int, dtype: str = "fp32",
    checkpointing: bool = False, chunk: int | None = None,
) -> ActivationEstimate:  # fmt: skip
    """What one micro-batch of ``batch`` x ``seq`` tokens keeps for its backward pass."""
    tokens, s, a = batch * seq, 4, DTYPE_BYTES[dtype]
    layer = layer_activations(c, tokens, seq, dtype)
    if checkpointing:  # each block's input; one block's insides again in its backward
        blocks, recompute = c.n_layer * tokens * c.n_embd * s, layer
    else:
        blocks, recompute = c.n_layer * layer, 0
    final_norm = (2 * s if c.norm == "rmsnorm" else s) + a
    head = tokens * (c.n_embd * final_norm + INDEX_BYTES * (2 if c.position == "learned" else 1))
    copies = 0
    if a < 4:  # autocast casts each weight once per forward and keeps the copy
        kept = params.matmul if not checkpointing else params.matmul - c.n_layer * _block_matmul(c)
        copies = kept * a
    return ActivationEstimate(blocks, recompute, head, loss_activations(c, tokens, chunk), copies)


def _block_matmul(c: ModelConfig) -> int:
    """Linear-layer weights of one block (for the weight copies checkpointing recomputes)."""
    C, F, hd = c.n_embd, c.ffn_size, c.head_size
    attn = C * hd * (2 * c.n_head + 2 * c.kv_heads)
    n_mats = 2 if c.ffn == "gelu_mlp" else 3
    experts = c.n_experts or 1
    return attn + experts * n_mats * C * F + (C * experts if c.ffn == "moe" else 0)


@dataclass
class StrategyEstimate:
    """Bytes per rank under one strategy; ``peak`` is what the run needs."""

    name: str
    weights: int
    grads: int
    optimizer: int
    buffers: int  # DDP: gradient buckets; FSDP: gathered weights and gradients
    activations: int
    accumulating: bool  # grads of earlier micro-batches wait beside the activations

    @property
    def persistent(self) -> int:
        return self.weights + self.optimizer + self.buffers

    @property
    def step(self) -> int:
        """What a step adds on top: gradients and activations (peak, not sum, unless
        accumulating; see the module docstring)."""
        if self.accumulating:
            return self.grads + self.activations
        return max(self.grads, self.activations)

    @property
    def peak(self) -> int:
        return self.persistent + self.step


@dataclass
class MemoryEstimate:
    config: ModelConfig
    params: ParamCounts
    batch: int
    seq: int
    dtype: str
    world_size: int
    checkpointing: bool
    chunk: int | None
    variants: dict[str, ActivationEstimate] = field(default_factory=dict)
    strategies: dict[str, StrategyEstimate] = field(default_factory=dict)


def estimate_memory(
    config: ModelConfig, train: TrainConfig, world_size: int = 1, dtype: str = "fp32"
) -> MemoryEstimate:
    """Every figure ``legollm estimate`` prints, for the run ``train`` describes."""
    p = count_params(config)
    B, T = train.batch_size, train.block_size
    ckpt, chunk = train.activation_checkpointing, train.loss_chunk_size
    est = MemoryEstimate(config, p, B, T, dtype, world_size, ckpt, chunk)
    k = chunk or 1024  # the saver's effect at a typical chunk when the config sets none
    for name, (recompute, size) in {
        "plain": (False, None),
        "activation checkpointing": (True, None),
        f"chunked loss ({k})": (False, k),
        f"both ({k})": (True, k),
    }.items():
        est.variants[name] = activations(config, p, B, T, dtype, recompute, size)
    act = activations(config, p, B, T, dtype, ckpt, chunk).total
    accumulating = train.grad_accum_steps > 1
    n = p.total
    buckets = n * GRAD if world_size > 1 else 0
    est.strategies["ddp"] = StrategyEstimate("ddp", n * WEIGHT, n * GRAD, n * ADAM, buckets,
                                             act, accumulating)  # fmt: skip
    gathered = p.root + 2 * p.per_block  # unsharded at once: the root and two blocks
    est.strategies["fsdp"] = StrategyEstimate(
        "fsdp",
        weights=-(-n * WEIGHT // world_size),
        grads=-(-n * GRAD // world_size),
        optimizer=-(-n * ADAM // world_size),
        buffers=gathered * (DTYPE_BYTES[dtype] + GRAD),
        activations=act,
        accumulating=accumulating,
    )
    return est


def format_estimate(est: MemoryEstimate, device_memory: int | None, device_name: str) -> str:
    """The report ``legollm estimate`` prints: sizes, activations, per-rank totals, verdict."""
    c, p = est.config, est.params
    lines = [
        f"model: {p.total:,} parameters ({c.n_layer} layers, n_embd {c.n_embd}, "
        f"vocab {c.vocab_size:,}); micro-batch {est.batch} x {est.seq} tokens, "
        f"{est.dtype}, {est.world_size} rank(s)",
        "",
        "activations per micro-batch:",
    ]
    chosen = _variant_index(est)
    for i, (name, a) in enumerate(est.variants.items()):
        mark = "  <- this config" if i == chosen else ""
        lines.append(f"  {name:<26}{gb(a.total):>10}  (blocks {gb(a.blocks + a.recompute)}, "
                     f"loss {gb(a.loss)}){mark}")  # fmt: skip
    lines += ["", f"per rank ({'with' if est.checkpointing else 'no'} checkpointing, "
              f"loss chunk {est.chunk or 'none'}):",
              f"  {'':<22}{'DDP':>10}{'FSDP':>10}"]  # fmt: skip
    ddp, fsdp = est.strategies["ddp"], est.strategies["fsdp"]
    for label, attr in (("weights (fp32)", "weights"), ("gradients (fp32)", "grads"),
                        ("AdamW state (fp32)", "optimizer"), ("buffers", "buffers"),
                        ("activations", "activations"), ("peak", "peak")):  # fmt: skip
        lines.append(f"  {label:<22}{gb(getattr(ddp, attr)):>10}{gb(getattr(fsdp, attr)):>10}")
    if device_memory is None:
        lines.append("verdict: device memory unknown; pass --device-memory GB")
        return "\n".join(lines)
    lines.append("")
    budget = device_memory * HEADROOM
    for s in (ddp, fsdp):
        fits = "fits" if s.peak <= budget else "does NOT fit"
        lines.append(f"verdict {s.name.upper()}: {fits} in {gb(device_memory)} ({device_name}; "
                     f"{gb(s.peak)} of {gb(budget)} usable)")  # fmt: skip
    return "\n".join(lines)


def _variant_index(est: MemoryEstimate) -> int:
    """Which of the four variants the config itself runs (its row is marked)."""
    return est.checkpointing + 2 * (est.chunk is not None)


def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def peak_memory(device: torch.device) -> int | None:
    """Peak bytes so far: CUDA's max allocated, or the process's peak RSS on a CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    if device.type != "cpu":
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # macOS: bytes, Linux: KiB


__all__ = [
    "ActivationEstimate",
    "MemoryEstimate",
    "ParamCounts",
    "StrategyEstimate",
    "activations",
    "count_params",
    "estimate_memory",
    "format_estimate",
    "layer_activations",
    "loss_activations",
    "peak_memory",
]
