"""DecoderLM: the one decoder-only language model, assembled from a ModelConfig.

token ids -> token embedding (+ learned positions) -> n_layer pre-norm blocks
-> final norm -> lm_head -> logits. GPT-2, Llama 3, Qwen 3 and Mistral are all
this class with different config fields; architectures only add presets and
weight maps.

``forward`` returns the logits, nothing else; the loss is computed from them
(``legollm.models.loss.training_loss``). ``return_hidden=True`` stops before the
head, returning the final norm's output instead: ``chunked_lm_loss`` projects it
onto the vocabulary a slice of tokens at a time, so the (tokens x vocab) logits
never exist whole.

Two memory savers for training, both exact (the same loss and gradients):
``activation_checkpointing = True`` keeps only each block's input for the
backward pass and recomputes the block's insides there (one more forward per
block, a fraction of the activations), and the chunked loss above.

For inference, ``setup_kv_cache`` has each layer's attention set up its cache
(only ``sliding_window`` slots for a sliding-window model); then every forward
passes ``input_pos`` (the positions of the tokens fed, 0, 1, 2, ... in order),
and each attention masks its keys so a query sees only earlier positions (and
the sliding window, and the ``attention_mask`` of left-padded batches).

For training on packed sequences (several short examples in one row),
``document_ids`` (B, T) says which example each token belongs to: a token then
attends only to earlier tokens of its own example, and positions restart at 0
at each example's first token, so each example is computed exactly as if it had
a row of its own.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from legollm.components.block import Block
from legollm.components.linear import Linear
from legollm.components.moe import MoE, load_balancing_loss
from legollm.components.normalization import LayerNorm, RMSNorm, build_norm
from legollm.components.position import rope_table
from legollm.core.exceptions import ConfigError
from legollm.models.config import ModelConfig
from legollm.models.loss import IGNORE_INDEX, training_loss


class DecoderLM(nn.Module):
    activation_checkpointing: bool = False
    """Recompute each block in the backward pass instead of keeping its activations
    (training only; a training switch, so not part of the saved ModelConfig)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = self.config = config
        self.tok_emb = nn.Embedding(c.vocab_size, c.n_embd)
        self.pos_emb = nn.Embedding(c.context_length, c.n_embd) if c.position == "learned" else None
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.norm = build_norm(c.norm, c.n_embd, c.norm_eps, c.norm_bias)
        self.lm_head = Linear(c.n_embd, c.vocab_size, bias=False)
        if c.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight
        self.max_seq_len = c.context_length
        self.init_rope()
        if c.init != "pytorch":  # "pytorch": keep what the modules drew when built
            self.init_weights()

    def init_weights(self) -> None:
        """(Re)initialise every weight by ``config.init``.

        ``gpt2``: N(0, init_std) for linear and embedding weights, zero biases, and the
        projections that write into the residual stream (o_proj, down_proj) at
        N(0, init_std / sqrt(2 n_layer)), so the stream's variance does not grow with
        depth. ``normal``: the same without that scaling. ``pytorch``: the modules' own
        defaults (nn.Linear's kaiming-uniform weight and uniform bias, nn.Embedding's
        N(0, 1)); a freshly built model keeps the numbers its modules drew, the same,
        from the same seed, as the equivalent ``torch.nn`` modules built in that order.
        Small models trained at a large learning rate (LLMs-from-scratch's chapter 5)
        learn from it, where GPT-2's init leaves them stuck near a unigram model.
        Norms start at one (gain) and zero (bias) in every scheme.
        """
        c = self.config
        self.apply(self._init_module)
        if c.init == "gpt2":
            for name, p in self.named_parameters():
                if name.endswith(("o_proj.weight", "down_proj.weight")):
                    nn.init.normal_(p, mean=0.0, std=c.init_std / math.sqrt(2 * c.n_layer))

    def init_rope(self, device: torch.device | str | None = None) -> None:
        """(Re)compute the RoPE cos/sin tables; needed after building on the meta device."""
        c = self.config
        if c.position != "rope":
            self.rope_cos = self.rope_sin = None
            return
        cos, sin = rope_table(self.max_seq_len, c.head_size, c.rope_theta, c.rope_scaling)
        self.register_buffer("rope_cos", cos.to(device), persistent=False)
        self.register_buffer("rope_sin", sin.to(device), persistent=False)

    def _init_module(self, module: nn.Module) -> None:
        """Initialise one module's own parameters by ``config.init``."""
        if isinstance(module, (LayerNorm, RMSNorm)):
            nn.init.ones_(module.weight)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
        elif self.config.init == "pytorch":
            tied_head = module is self.lm_head and self.config.tie_embeddings
            if isinstance(module, (nn.Linear, nn.Embedding)) and not tied_head:
                module.reset_parameters()  # a tied head keeps the embedding's N(0, 1)
        elif isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=self.config.init_std)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)

    # -- KV cache -------------------------------------------------------------
    _kv_cache_len: int | None = None  # the positions setup_kv_cache made room for

    def setup_kv_cache(
        self, batch_size: int, max_seq_len: int, dtype=None, device=None, ring: bool = True
    ) -> None:
        """Each layer's attention sets up a cache for positions 0 .. max_seq_len - 1.

        A sliding-window model gets a ring of min(sliding_window, max_seq_len) slots,
        unless ``ring=False`` (every position kept; see ``CausalSelfAttention.setup_cache``).
        """
        c = self.config
        if max_seq_len > c.context_length and c.position == "learned":
            raise ConfigError(
                f"max_seq_len {max_seq_len} exceeds the learned context of {c.context_length}"
            )
        dtype = dtype or self.tok_emb.weight.dtype
        device = device or self.tok_emb.weight.device
        for block in self.blocks:
            block.attn.setup_cache(batch_size, max_seq_len, dtype, device, ring)
        self._kv_cache_len = max_seq_len
        if c.position == "rope" and max_seq_len > self.max_seq_len:
            self.max_seq_len = max_seq_len
            self.init_rope(device)

    def repeat_kv_cache(self, n: int) -> None:
        """Repeat each row of the cache ``n`` times (row i becomes rows i*n .. i*n + n - 1),
        so one prefill serves ``n`` continuations of each prompt."""
        for block in self.blocks:
            block.attn.kv_cache.repeat_rows(n)

    @contextmanager
    def kv_cache_rows(self, rows: slice) -> Iterator[None]:
        """Within this block, forwards read and write only batch rows ``rows`` of the cache.

        A batch whose rows started at different times (a server's running requests)
        prefills one newcomer's prompt into its row with ``kv_cache_rows(slice(r, r + 1))``
        and feeds a step through the rows in use with ``kv_cache_rows(slice(0, n))``.
        """
        if not self.has_kv_cache:
            raise ConfigError("no KV cache is set up: call setup_kv_cache first")
        caches = [block.attn.kv_cache for block in self.blocks]
        try:
            for block, cache in zip(self.blocks, caches, strict=True):
                block.attn.kv_cache = cache.rows(rows)
            yield
        finally:
            for block, cache in zip(self.blocks, caches, strict=True):
                block.attn.kv_cache = cache

    def remove_kv_cache(self) -> None:
        for block in self.blocks:
            block.attn.remove_cache()
        self._kv_cache_len = None

    @property
    def has_kv_cache(self) -> bool:
        return self._kv_cache_len is not None

    @property
    def context_limit(self) -> int | None:
        """The most positions one sequence may hold (None: any); see :func:`context_limit`."""
        return context_limit(self.config)

    # -- forward --------------------------------------------------------------
    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        *,
        input_pos: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        document_ids: torch.Tensor | None = None,
        last_only: bool = False,
        return_hidden: bool = False,
        logits_from: int = 0,
        loss_reduction: str = "mean",
    ) -> torch.Tensor:
        """Logits (B, T, vocab) for token ids (B, T); the loss is ``training_loss`` of them.

        ``input_pos`` (T,): the positions being fed, required with a KV cache.
        ``position_ids`` (B|1, T): the positions to encode, when they differ (a
        left-padded row counts only its real tokens). ``attention_mask`` (B,
        positions so far): 0 marks padding. ``document_ids`` (B, T): packed
        examples, each seeing only itself (see the module docstring); without a
        cache only. ``last_only=True`` projects only the last position onto the
        vocabulary (logits (B, 1, vocab)): all that decoding needs from a prefill,
        and it skips the largest matrix multiply for every other prompt token.
        ``logits_from=k`` likewise projects only positions k.. (logits (B, T - k,
        vocab)): scoring that reads the model's predictions for the last tokens only.
        ``return_hidden=True`` returns the final norm's output (B, T, C), what the
        head would project: the input of ``legollm.models.loss.chunked_lm_loss``.

        ``targets`` (deprecated) returns ``(logits, training_loss(...))`` instead.
        """
        x = self.features(idx, input_pos=input_pos, position_ids=position_ids,
                          attention_mask=attention_mask, document_ids=document_ids)  # fmt: skip
        if last_only and targets is None:
            x = x[:, -1:]
        elif logits_from and targets is None:
            x = x[:, logits_from:]
        if return_hidden and targets is None:
            return x
        logits = self.lm_head(x)  # (B, T, vocab)
        if targets is None:
            return logits
        warnings.warn(
            "model(x, targets=y) is deprecated and will be removed: call logits = model(x), "
            "then legollm.models.loss.training_loss(model, logits, y)",
            DeprecationWarning,
            stacklevel=4,  # forward <- Module._call_impl <- Module.__call__ <- the caller
        )
        return logits, training_loss(self, logits, targets, loss_reduction)

    def features(
        self,
        idx: torch.Tensor,
        *,
        input_pos: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        document_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The final-norm hidden states (B, T, C) that ``lm_head`` projects onto the
        vocabulary; other heads (a reward model's or PPO's value head) read them too.
        Arguments as in :meth:`forward`."""
        self._check_inputs(idx, input_pos, position_ids, document_ids)
        if input_pos is None:
            input_pos = torch.arange(idx.shape[1], device=idx.device)
        if position_ids is None:
            position_ids = input_pos if document_ids is None else document_positions(document_ids)

        x = self.tok_emb(idx)  # (B, T, C)
        if self.pos_emb is not None:
            x = x + self.pos_emb(position_ids)
        x = self.drop(x)
        rope = self._rope(position_ids)
        recompute = self.activation_checkpointing and self.training and torch.is_grad_enabled()
        for block in self.blocks:
            if recompute:  # keep only x; the backward pass runs the block again
                x = checkpoint(block, x, rope, input_pos, attention_mask, document_ids,
                               use_reentrant=False)  # fmt: skip
            else:
                x = block(x, rope, input_pos, attention_mask, document_ids)
        return self.norm(x)

    def _check_inputs(self, idx, input_pos, position_ids, document_ids) -> None:
        """Refuse inputs this model cannot compute, saying what to do instead."""
        c = self.config
        T = idx.shape[1]
        cached = self.has_kv_cache
        if cached and input_pos is None:
            raise ConfigError("a KV cache is set up: pass input_pos (the positions being fed)")
        limit = self.context_limit
        if not cached and limit is not None and limit < T:
            raise ConfigError(
                f"sequence length {T} exceeds the model's context_length {limit}; "
                "crop the input to the last context_length tokens"
            )
        if document_ids is not None:
            if cached:
                raise ConfigError(
                    "document_ids are for training on packed rows, not KV-cached decoding"
                )
            if document_ids.shape != idx.shape:
                raise ConfigError(
                    f"document_ids has shape {tuple(document_ids.shape)}, the tokens "
                    f"{tuple(idx.shape)}: give one document id per token"
                )
        if torch.compiler.is_compiling():
            return  # the checks below read values on the host, which would break the graph
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= c.vocab_size):
            raise ConfigError(
                f"token ids must be in [0, {c.vocab_size}), got min {int(idx.min())} and max "
                f"{int(idx.max())}: the tokenizer does not match this model's vocab_size"
            )
        if cached and int(input_pos[-1]) >= self._kv_cache_len:
            raise ConfigError(
                f"position {int(input_pos[-1])} is past the {self._kv_cache_len} positions the "
                "KV cache was set up for: call setup_kv_cache with a larger max_seq_len"
            )
        # positions default to 0 .. T - 1 (or restart per document): within the T checked above
        pos = position_ids if position_ids is not None else input_pos
        if c.position == "learned" and pos is not None and int(pos.max()) >= c.context_length:
            raise ConfigError(
                f"position {int(pos.max())} is past the learned context "
                f"({c.context_length}); crop or slide the window"
            )

    def _rope(self, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The RoPE (cos, sin) tables at ``position_ids``, each (B|1, 1, T, head_size)."""
        c = self.config
        if c.position != "rope":
            return None
        T = position_ids.shape[-1]
        if not self.has_kv_cache and self.max_seq_len < T:
            self.max_seq_len = T  # a sliding-window model reading past context_length
            self.init_rope(position_ids.device)
        cos, sin = self.rope_cos[position_ids], self.rope_sin[position_ids]  # (B|T, T, hd)
        return cos.view(-1, 1, T, c.head_size), sin.view(-1, 1, T, c.head_size)

    def aux_loss(self, targets: torch.Tensor, reduction: str = "mean") -> torch.Tensor | None:
        """The experts' load-balancing loss of the last forward, weighted by
        ``router_aux_loss_coef``; None for a dense model (or a zero coefficient).

        It is a mean over tokens; a summed loss (token-normalised accumulation)
        gets it once per trained token, so both reductions weigh it alike.
        """
        c = self.config
        if c.ffn != "moe" or c.router_aux_loss_coef == 0:
            return None
        aux = load_balancing_loss([b.ffn.router_logits for b in self.blocks],
                                  c.n_experts_per_token)  # fmt: skip
        if reduction == "sum":
            aux = aux * (targets != IGNORE_INDEX).sum()
        return c.router_aux_loss_coef * aux


def document_positions(document_ids: torch.Tensor) -> torch.Tensor:
    """Each token's position within its document: 0 at every change of id along a row.

    >>> document_positions(torch.tensor([[0, 0, 0, 1, 1, 2]])).tolist()
    [[0, 1, 2, 0, 1, 0]]
    """
    t = torch.arange(document_ids.shape[-1], device=document_ids.device).expand_as(document_ids)
    starts = torch.ones_like(document_ids, dtype=torch.bool)
    starts[..., 1:] = document_ids[..., 1:] != document_ids[..., :-1]
    first = torch.where(starts, t, 0).cummax(dim=-1).values  # where the current document began
    return t - first


def context_limit(config: ModelConfig) -> int | None:
    """The most positions one sequence may hold; None for a sliding-window RoPE model.

    Learned positions end at ``context_length``, and full attention over more
    positions than the model was trained on is outside what it computes. A
    sliding-window model with RoPE (Mistral) has no such edge: every token sees
    only the last ``sliding_window`` positions and RoPE scores depend only on
    distances, so it reads text of any length, as transformers runs it.
    """
    c = config
    return None if c.sliding_window is not None and c.position == "rope" else c.context_length


def count_parameters(model: nn.Module) -> int:
    """Number of distinct parameters (a tied embedding counts once)."""
    return sum(p.numel() for p in model.parameters())


def count_active_parameters(model: nn.Module) -> int:
    """Parameters one token's forward multiplies by: all of them, except that a mixture
    of experts counts only the ``top_k`` experts a token goes through (and its router).

    This is the N of the 6N training FLOPs per token behind MFU: Mixtral 8x7B holds
    46.7B parameters, and a token uses 12.9B of them.
    """
    idle = sum(
        (m.n_experts - m.top_k) * count_parameters(m.experts[0])
        for m in model.modules()
        if isinstance(m, MoE)
    )
    return count_parameters(model) - idle
