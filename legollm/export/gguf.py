"""Write a model as a GGUF file that llama.cpp (and Ollama, LM Studio, ...) runs.

A GGUF file is a header of typed key/value pairs (the architecture's hyperparameters,
the tokenizer) followed by named tensors. llama.cpp knows each architecture by name
and builds its graph from fixed tensor names, so exporting is a mapping from our
``ModelConfig`` and state dict to one of the architectures it implements:

- ``gpt2``: LayerNorm, learned positions, tanh-GELU MLP, biases everywhere. The q, k
  and v projections are one fused ``attn_qkv`` matrix, as in GPT-2's checkpoints.
- ``llama`` (Llama 3/3.1/3.2, Mistral): RMSNorm, RoPE, SwiGLU. llama.cpp's Llama
  rotates *adjacent* pairs of each head's dimensions (Meta's original layout), while
  our weights (like Hugging Face's) rotate the two *halves* of each head; the rows of
  the q and k projections are permuted back so both compute the same attention. Llama
  3.1's RoPE scaling becomes a ``rope_freqs`` tensor: the factor each frequency is
  divided by.
- ``qwen3``: Llama plus per-head RMSNorm of q and k, and llama.cpp rotates halves for
  it, so nothing is permuted.
- mixtures of experts (Mixtral as ``llama``, Qwen 3 MoE as ``qwen3moe``): the router is
  ``ffn_gate_inp`` and each projection of all experts is one stacked 3-D tensor.

llama.cpp's Llama has no sliding window: a model with one (Mistral v0.1) is written
with its context length cut to the window, where windowed and full attention agree.

Weights are stored as ``f32``, ``f16`` or ``q8_0`` (blocks of 32 int8 values sharing
one f16 scale, llama.cpp's own 8-bit format); vectors (norms, biases) always stay f32,
and a matrix whose rows are not a multiple of 32 long falls back to f16 under q8_0, as
llama.cpp's converter does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from legollm.components.position import rope_inv_freq
from legollm.core.exceptions import ConfigError
from legollm.core.utils import atomic_path
from legollm.export.gguf_vocab import GGUFVocab, gguf_vocab, hf_special_tokens
from legollm.models.config import ModelConfig
from legollm.models.decoder import DecoderLM
from legollm.models.loading import LoadedModel

DTYPES = ("f32", "f16", "q8_0")
ARCHITECTURES = ("gpt2", "llama", "qwen3", "qwen3moe")
SUPPORTED = (
    "GPT-2 (LayerNorm, learned positions, tanh GELU, biases) and the Llama family "
    "(Llama 3/3.1/3.2, Mistral, Mixtral, Qwen 3, Qwen 3 MoE: RMSNorm, RoPE, SwiGLU)"
)
_Q8_BLOCK = 32


@dataclass
class _Tensor:
    name: str
    data: torch.Tensor


def export_gguf(
    model: DecoderLM | LoadedModel,
    tokenizer: Any,
    path: str | os.PathLike[str],
    dtype: str = "f32",
    *,
    force: bool = False,
    name: str | None = None,
) -> Path:
    """Write ``model`` and ``tokenizer`` to ``path`` as GGUF; returns the path.

    ``model`` is a :class:`DecoderLM` or what :func:`~legollm.models.loading.load_model`
    returns; then ``tokenizer`` may be None (the loaded one is used) and a Hugging
    Face directory's bos/eos/pad tokens and chat template go into the file too. The
    file is written beside ``path`` and renamed into place; an existing file is an
    error unless ``force``. Everything is checked before anything is written.
    """
    special_ids, template = None, None
    if isinstance(model, LoadedModel):
        loaded, model = model, model.model
        tokenizer = tokenizer if tokenizer is not None else loaded.tokenizer
        if loaded.kind == "hf":
            special_ids, template = hf_special_tokens(loaded.path, tokenizer)
        run = loaded.path.parent if loaded.kind == "checkpoint" else loaded.path
        name = name or run.name
    if dtype not in DTYPES:
        raise ConfigError(f"GGUF dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    out = Path(path)
    if out.exists() and not force:
        raise FileExistsError(f"{out} exists; pass force=True (--force) to overwrite it")
    config = model.config
    arch = gguf_architecture(config)
    vocab = gguf_vocab(
        tokenizer, config.vocab_size, special_ids=special_ids, chat_template=template
    )
    tensors = list(_tensors(model, arch))
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        _write(tmp, arch, config, vocab, tensors, dtype, name or out.stem)
    return out


def gguf_architecture(c: ModelConfig) -> str:
    """The llama.cpp architecture that computes what ``c`` computes, or a ConfigError."""
    if (c.norm, c.position, c.ffn) == ("layernorm", "learned", "gelu_mlp"):
        _require(c.gelu_approximate == "tanh", "llama.cpp's gpt2 uses the tanh GELU")
        _require(
            c.qkv_bias and c.attn_out_bias and c.mlp_bias and c.norm_bias,
            "llama.cpp's gpt2 has biases on every linear layer and norm",
        )
        _require(c.kv_heads == c.n_head, "llama.cpp's gpt2 has no grouped-query attention")
        _require(c.head_size * c.n_head == c.n_embd, "llama.cpp's gpt2 has no head_dim")
        _require(not c.qk_norm, "llama.cpp's gpt2 has no q/k norms")
        return "gpt2"
    if (c.norm, c.position) == ("rmsnorm", "rope") and c.ffn in ("swiglu", "moe"):
        _require(not c.norm_bias, "llama.cpp's RMSNorm has no bias")
        moe = c.ffn == "moe"
        if moe:
            _require(
                c.moe_normalize_topk,
                "llama.cpp renormalises the chosen experts' weights (moe_normalize_topk)",
            )
        if c.qk_norm:
            _require(
                not (c.qkv_bias or c.attn_out_bias or c.mlp_bias),
                "llama.cpp's qwen3 has no biases",
            )
            return "qwen3moe" if moe else "qwen3"
        _require(c.qkv_bias == c.attn_out_bias, "llama.cpp's llama has q/k/v/o biases or none")
        _require(not (moe and c.mlp_bias), "llama.cpp's mixture of experts has no biases")
        return "llama"
    raise ConfigError(
        f"norm={c.norm}, position={c.position}, ffn={c.ffn} is not an architecture llama.cpp "
        f"has; GGUF export supports {SUPPORTED}"
    )


def _require(ok: bool, why: str) -> None:
    if not ok:
        raise ConfigError(f"this model cannot be written as GGUF: {why}; supported: {SUPPORTED}")


# -- tensors: our names and layouts -> llama.cpp's ----------------------------------
def _tensors(model: DecoderLM, arch: str) -> Iterator[_Tensor]:
    c = model.config
    s = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    yield _Tensor("token_embd.weight", s["tok_emb.weight"])
    if arch == "gpt2":
        yield _Tensor("position_embd.weight", s["pos_emb.weight"])
    if c.rope_scaling:
        plain = rope_inv_freq(c.head_size, c.rope_theta)
        scaled = rope_inv_freq(c.head_size, c.rope_theta, c.rope_scaling)
        yield _Tensor("rope_freqs.weight", plain / scaled)  # llama.cpp divides by these
    for i in range(c.n_layer):
        yield from _layer(s, f"blocks.{i}.", f"blk.{i}.", c, arch)
    yield from _maybe_bias(s, "norm", "output_norm")
    if not c.tie_embeddings:  # tied: llama.cpp reuses token_embd as the output head
        yield _Tensor("output.weight", s["lm_head.weight"])


def _layer(s: dict, ours: str, theirs: str, c: ModelConfig, arch: str) -> Iterator[_Tensor]:
    yield from _maybe_bias(s, ours + "attn_norm", theirs + "attn_norm")
    q, k, v = (s.get(f"{ours}attn.{p}_proj.weight") for p in "qkv")
    qb, kb, vb = (s.get(f"{ours}attn.{p}_proj.bias") for p in "qkv")
    if arch == "llama":  # rotate-halves rows -> adjacent-pairs rows
        q, k = _halves_to_pairs(q, c.n_head), _halves_to_pairs(k, c.kv_heads)
        if qb is not None:
            qb, kb = _halves_to_pairs(qb, c.n_head), _halves_to_pairs(kb, c.kv_heads)
    if arch == "gpt2":
        yield _Tensor(theirs + "attn_qkv.weight", torch.cat([q, k, v]))
        yield _Tensor(theirs + "attn_qkv.bias", torch.cat([qb, kb, vb]))
    else:
        for p, w, b in (("q", q, qb), ("k", k, kb), ("v", v, vb)):
            yield _Tensor(f"{theirs}attn_{p}.weight", w)
            if b is not None:
                yield _Tensor(f"{theirs}attn_{p}.bias", b)
    if c.qk_norm:
        yield _Tensor(theirs + "attn_q_norm.weight", s[ours + "attn.q_norm.weight"])
        yield _Tensor(theirs + "attn_k_norm.weight", s[ours + "attn.k_norm.weight"])
    yield from _maybe_bias(s, ours + "attn.o_proj", theirs + "attn_output")
    yield from _maybe_bias(s, ours + "ffn_norm", theirs + "ffn_norm")
    if c.ffn == "moe":
        yield from _experts(s, ours, theirs, c.n_experts)
        return
    projections = ("up", "down") if arch == "gpt2" else ("gate", "up", "down")
    for p in projections:
        yield from _maybe_bias(s, f"{ours}ffn.{p}_proj", f"{theirs}ffn_{p}")


def _experts(s: dict, ours: str, theirs: str, n: int) -> Iterator[_Tensor]:
    """The router, and each projection of every expert stacked into one 3-D tensor."""
    yield _Tensor(theirs + "ffn_gate_inp.weight", s[ours + "ffn.router.weight"])
    for p in ("gate", "up", "down"):
        stacked = torch.stack([s[f"{ours}ffn.experts.{e}.{p}_proj.weight"] for e in range(n)])
        yield _Tensor(f"{theirs}ffn_{p}_exps.weight", stacked)


def _maybe_bias(s: dict, ours: str, theirs: str) -> Iterator[_Tensor]:
    """``ours.weight`` as ``theirs.weight``, and the bias too when the model has one."""
    yield _Tensor(theirs + ".weight", s[ours + ".weight"])
    if ours + ".bias" in s:
        yield _Tensor(theirs + ".bias", s[ours + ".bias"])


def _halves_to_pairs(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Reorder each head's rows from (x_0..x_{d/2-1}, y_0..y_{d/2-1}) to (x_0, y_0, x_1, ...).

    RoPE rotates the pairs (x_j, y_j); we keep each pair half a head apart, llama.cpp's
    Llama wants them side by side. Works for a weight (rows, in) and a bias (rows,).
    """
    rows = w.shape[0]
    return (
        w.reshape(n_heads, 2, rows // n_heads // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)
    )


# -- the file ------------------------------------------------------------------------
def _write(
    path: Path,
    arch: str,
    c: ModelConfig,
    vocab: GGUFVocab,
    tensors: list[_Tensor],
    dtype: str,
    name: str,
) -> None:
    import gguf  # the format's own writer; imported here so `import legollm` stays light

    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_name(name)
    writer.add_file_type(_FILE_TYPES[dtype](gguf))
    _add_hyperparameters(writer, arch, c)
    _add_vocab(writer, vocab)
    for t in tensors:
        data, qtype = _encode(gguf, t.data, dtype)
        writer.add_tensor(t.name, data, raw_dtype=qtype)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()


_FILE_TYPES = {
    "f32": lambda g: g.LlamaFileType.ALL_F32,
    "f16": lambda g: g.LlamaFileType.MOSTLY_F16,
    "q8_0": lambda g: g.LlamaFileType.MOSTLY_Q8_0,
}


def _encode(gguf: Any, t: torch.Tensor, dtype: str):
    """(array, GGML type) for one tensor: vectors f32, matrices in the chosen dtype."""
    a = t.contiguous().numpy().astype(np.float32, copy=False)
    if a.ndim == 1 or dtype == "f32":
        return a, gguf.GGMLQuantizationType.F32
    if dtype == "q8_0" and a.shape[-1] % _Q8_BLOCK == 0:
        q8 = gguf.GGMLQuantizationType.Q8_0
        return gguf.quants.quantize(a, q8), q8
    return a.astype(np.float16), gguf.GGMLQuantizationType.F16


def _add_hyperparameters(w: Any, arch: str, c: ModelConfig) -> None:
    context = c.context_length
    if c.sliding_window is not None:  # windowed == full attention up to the window
        context = min(context, c.sliding_window)
    w.add_context_length(context)
    w.add_embedding_length(c.n_embd)
    w.add_block_count(c.n_layer)
    w.add_feed_forward_length(c.ffn_size)
    w.add_head_count(c.n_head)
    w.add_vocab_size(c.vocab_size)
    if arch == "gpt2":
        w.add_layer_norm_eps(c.norm_eps)
        return
    w.add_head_count_kv(c.kv_heads)
    w.add_layer_norm_rms_eps(c.norm_eps)
    w.add_rope_freq_base(c.rope_theta)
    w.add_rope_dimension_count(c.head_size)
    w.add_key_length(c.head_size)
    w.add_value_length(c.head_size)
    if c.ffn == "moe":
        w.add_expert_count(c.n_experts)
        w.add_expert_used_count(c.n_experts_per_token)
        w.add_expert_feed_forward_length(c.ffn_size)


def _add_vocab(w: Any, v: GGUFVocab) -> None:
    w.add_tokenizer_model("gpt2")  # llama.cpp's name for byte-level BPE
    w.add_tokenizer_pre(v.pre)
    w.add_token_list(v.tokens)
    w.add_token_types(v.types)
    w.add_token_merges(v.merges)
    adders = {"bos": w.add_bos_token_id, "eos": w.add_eos_token_id, "pad": w.add_pad_token_id}
    for kind, idx in v.special_ids.items():
        adders[kind](idx)
    w.add_add_bos_token(False)
    w.add_add_eos_token(False)
    if v.chat_template:
        w.add_chat_template(v.chat_template)


__all__ = ["ARCHITECTURES", "DTYPES", "export_gguf", "gguf_architecture"]
