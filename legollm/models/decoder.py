"""DecoderLM: the one decoder-only language model, assembled from a ModelConfig.

token ids -> token embedding (+ learned positions) -> n_layer pre-norm blocks
-> final norm -> lm_head -> logits. GPT-2, Llama 3, Qwen 3 and Mistral are all
this class with different config fields; architectures only add presets and
weight maps.

For inference, ``setup_kv_cache`` allocates one cache per layer (only
``sliding_window`` slots per layer for a sliding-window model); then every
forward passes ``input_pos`` (the positions of the tokens fed, 0, 1, 2, ... in
order), and the mask lets each query see only earlier positions (and the
sliding window, and the ``attention_mask`` of left-padded batches).

For training on packed sequences (several short examples in one row),
``document_ids`` (B, T) says which example each token belongs to: a token then
attends only to earlier tokens of its own example, and positions restart at 0
at each example's first token, so each example is computed exactly as if it had
a row of its own.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from legollm.components.block import Block
from legollm.components.kv_cache import KVCache
from legollm.components.linear import Linear
from legollm.components.moe import load_balancing_loss
from legollm.components.normalization import LayerNorm, RMSNorm, build_norm
from legollm.components.position import rope_table
from legollm.core.exceptions import ConfigError
from legollm.models.config import ModelConfig


class DecoderLM(nn.Module):
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
    def setup_kv_cache(self, batch_size: int, max_seq_len: int, dtype=None, device=None) -> None:
        """One cache per layer for positions 0 .. max_seq_len - 1 of batch_size rows.

        A sliding-window model gets a ring of min(sliding_window, max_seq_len) slots.
        """
        c = self.config
        if max_seq_len > c.context_length and c.position == "learned":
            raise ConfigError(
                f"max_seq_len {max_seq_len} exceeds the learned context of {c.context_length}"
            )
        dtype = dtype or self.tok_emb.weight.dtype
        device = device or self.tok_emb.weight.device
        for block in self.blocks:
            block.attn.kv_cache = KVCache(
                batch_size, max_seq_len, c.kv_heads, c.head_size, dtype, device, c.sliding_window
            )
        if c.position == "rope" and max_seq_len > self.max_seq_len:
            self.max_seq_len = max_seq_len
            self.init_rope(device)

    def reset_kv_cache(self) -> None:
        for block in self.blocks:
            if block.attn.kv_cache is not None:
                block.attn.kv_cache.reset()

    def remove_kv_cache(self) -> None:
        for block in self.blocks:
            block.attn.kv_cache = None

    @property
    def context_limit(self) -> int | None:
        """The most positions one sequence may hold (None: any); see :func:`context_limit`."""
        return context_limit(self.config)

    @property
    def has_kv_cache(self) -> bool:
        return self.blocks[0].attn.kv_cache is not None if len(self.blocks) else False

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
        loss_reduction: str = "mean",
        last_only: bool = False,
    ):
        """Logits (B, T, vocab), or (logits, loss) with ``targets``.

        ``document_ids`` (B, T): packed examples, each seeing only itself (see the
        module docstring); without a cache only.

        ``last_only=True`` projects only the last position onto the vocabulary
        (logits (B, 1, vocab)): all that decoding needs from a prefill, and it skips
        the largest matrix multiply for every other prompt token.
        """
        c = self.config
        B, T = idx.shape
        cached = self.has_kv_cache
        if cached and input_pos is None:
            raise ConfigError("a KV cache is set up: pass input_pos (the positions being fed)")
        limit = self.context_limit
        if not cached and limit is not None and limit < T:
            raise ConfigError(
                f"sequence length {T} exceeds the model's context_length {limit}; "
                "crop the input to the last context_length tokens"
            )
        if not cached and c.position == "rope" and self.max_seq_len < T:
            self.max_seq_len = T  # a sliding-window model reading past context_length
            self.init_rope(idx.device)
        checking = not torch.compiler.is_compiling()  # host syncs would break the graph
        if checking and idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= c.vocab_size):
            raise ConfigError(
                f"token ids must be in [0, {c.vocab_size}), got min {int(idx.min())} and max "
                f"{int(idx.max())}: the tokenizer does not match this model's vocab_size"
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
            if position_ids is None:
                position_ids = document_positions(document_ids)
        if input_pos is None:
            input_pos = torch.arange(T, device=idx.device)
        if cached and checking:
            room = self.blocks[0].attn.kv_cache.max_seq_len
            if int(input_pos[-1]) >= room:
                raise ConfigError(
                    f"position {int(input_pos[-1])} is past the {room} positions the KV cache "
                    "was set up for: call setup_kv_cache with a larger max_seq_len"
                )
        if position_ids is None:
            position_ids = input_pos
        if checking and c.position == "learned" and int(position_ids.max()) >= c.context_length:
            raise ConfigError(
                f"position {int(position_ids.max())} is past the learned context "
                f"({c.context_length}); crop or slide the window"
            )

        x = self.tok_emb(idx)  # (B, T, C)
        if self.pos_emb is not None:
            x = x + self.pos_emb(position_ids)
        x = self.drop(x)
        rope = None
        if c.position == "rope":
            cos, sin = self.rope_cos[position_ids], self.rope_sin[position_ids]  # (B|T, T, hd)
            rope = (cos.view(-1, 1, T, c.head_size), sin.view(-1, 1, T, c.head_size))
        mask = self._mask(input_pos, attention_mask, cached, T, document_ids)
        for block in self.blocks:
            x = block(x, rope, mask, input_pos)
        if last_only and targets is None:
            x = x[:, -1:]
        x = self.norm(x)
        logits = self.lm_head(x)  # (B, T, vocab)
        if targets is None:
            return logits
        loss = F.cross_entropy(
            logits.flatten(0, 1).float(),
            targets.flatten(),
            ignore_index=-100,
            reduction=loss_reduction,
        )
        if c.ffn == "moe" and c.router_aux_loss_coef > 0:
            loss = loss + self._router_loss(targets, loss_reduction)
        return logits, loss

    def _router_loss(self, targets: torch.Tensor, loss_reduction: str) -> torch.Tensor:
        """The experts' load-balancing loss, weighted by ``router_aux_loss_coef``.

        It is a mean over tokens; a summed loss (token-normalised accumulation)
        gets it once per trained token, so both reductions weigh it alike.
        """
        aux = load_balancing_loss([b.ffn.router_logits for b in self.blocks],
                                  self.config.n_experts_per_token)  # fmt: skip
        if loss_reduction == "sum":
            aux = aux * (targets != -100).sum()
        return self.config.router_aux_loss_coef * aux

    def _mask(
        self, input_pos, attention_mask, cached: bool, T: int, document_ids=None
    ) -> torch.Tensor | None:
        """Boolean (B|1, 1, T, S) mask, True = may attend; None means plain causal (fast path).

        Each of the S keys is known by its position (``key_positions``: with a cache,
        the position its slot holds, negative for an empty one); a query at p sees
        the keys at positions in [0, p], and only (p - window, p] with a sliding window.
        With ``document_ids`` (no cache: S = T), a query sees only its own document.
        """
        window = self.config.sliding_window
        if not cached and attention_mask is None and window is None and document_ids is None:
            return None
        cache = self.blocks[0].attn.kv_cache if cached else None
        if cache is not None:
            key_pos = cache.key_positions(input_pos)  # (S,)
        else:
            key_pos = torch.arange(T, device=input_pos.device)
        q_pos, k_pos = input_pos[:, None], key_pos[None, :]
        allowed = (k_pos <= q_pos) & (k_pos >= 0)  # (T, S) causal, written slots only
        if window is not None:
            allowed &= k_pos > q_pos - window
        allowed = allowed[None, None]  # (1, 1, T, S)
        if attention_mask is not None:  # (B, positions so far): 0 = a padding token
            # look up each key's position; positions past the mask's end are real tokens
            n = cache.max_seq_len if cache is not None else T
            pad = F.pad(attention_mask.bool(), (0, max(n - attention_mask.shape[1], 0)), value=True)
            allowed = allowed & pad[:, key_pos.clamp(min=0)][:, None, None, :]  # (B, 1, T, S)
            # a padding query that sees nothing would give NaN: let it see itself
            allowed = allowed | (k_pos == q_pos)[None, None]
        if document_ids is not None:  # (B, T): keys of the query's own document only
            allowed = allowed & (document_ids[:, :, None] == document_ids[:, None, :])[:, None]
        return allowed


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
