"""GPT-2 (124M, 355M, 774M, 1558M): presets and the map from Hugging Face's weights.

GPT-2 is the DecoderLM with LayerNorm, learned positions, a GELU MLP, biases
everywhere and tied embeddings. Its checkpoints use Conv1D layers, whose
weights are stored (in, out), the transpose of nn.Linear's, and one fused
``c_attn`` matrix for queries, keys and values, which we split into three.

The ``gpt2`` presets also hold the small GPT-2-style models trained from scratch
(``gpt2:tiny``, ``gpt2:small``, ``gpt2:shakespeare-gpu``; training configs name them
``tiny``, ``small``, ... and ``gpt2-124m`` / ``gpt2-350m`` for the first two releases).
"""

from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import Any

from legollm.core.exceptions import ModelLoadError
from legollm.models.config import ModelConfig
from legollm.models.decoder import DecoderLM
from legollm.models.presets import register_presets
from legollm.models.pretrained import load_weights
from legollm.models.registry import ArchitectureSpec, WeightRule, register_architecture


class GPT2Variant(StrEnum):
    GPT2 = "gpt2"
    MEDIUM = "gpt2-medium"
    LARGE = "gpt2-large"
    XL = "gpt2-xl"


_GPT2_STYLE: dict[str, Any] = dict(
    norm="layernorm",
    position="learned",
    ffn="gelu_mlp",
    gelu_approximate="tanh",
    qkv_bias=True,
    attn_out_bias=True,
    mlp_bias=True,
    norm_bias=True,
    tie_embeddings=True,
    dropout=0.0,
)


def gpt2_style(**fields: Any) -> ModelConfig:
    """A ModelConfig with GPT-2's component choices; ``fields`` sets sizes and overrides."""
    return ModelConfig(**{**_GPT2_STYLE, **fields})


def _gpt2(n_layer: int, n_head: int, n_embd: int) -> ModelConfig:
    return gpt2_style(
        vocab_size=50257, context_length=1024, n_layer=n_layer, n_head=n_head, n_embd=n_embd
    )


PRESETS: dict[str, ModelConfig] = {
    # OpenAI's releases (openai-community/gpt2*/config.json); parameter counts in the tests
    GPT2Variant.GPT2.value: _gpt2(12, 12, 768),
    GPT2Variant.MEDIUM.value: _gpt2(24, 16, 1024),
    GPT2Variant.LARGE.value: _gpt2(36, 20, 1280),
    GPT2Variant.XL.value: _gpt2(48, 25, 1600),
    # to train from scratch; a run takes vocab_size and context_length from its data.
    # A few seconds on a laptop CPU: tests and the demo
    "tiny": gpt2_style(vocab_size=256, context_length=256, n_layer=2, n_head=2, n_embd=64),
    # nanoGPT's Shakespeare-char recipes (65 characters): CPU, block 64; GPU, block 256
    "small": gpt2_style(vocab_size=65, context_length=64, n_layer=4, n_head=4, n_embd=128),
    "shakespeare-gpu": gpt2_style(
        vocab_size=65, context_length=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2
    ),
}
register_presets("gpt2", PRESETS)

# the seed's API, a view of the same configs: GPT2(MODEL_CONFIGS[GPT2Variant.GPT2])
MODEL_CONFIGS: dict[GPT2Variant, ModelConfig] = {v: PRESETS[v.value] for v in GPT2Variant}


class GPT2(DecoderLM):
    """A DecoderLM built from a GPT-2 config (nothing else differs)."""


# transformers' activation names -> our GELU form (tanh approximation or exact)
GELU_FROM_HF = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu": "none"}


def config_from_hf(hf: dict) -> ModelConfig:
    act = hf.get("activation_function", "gelu_new")
    if act not in GELU_FROM_HF:
        raise ModelLoadError(
            f"unsupported GPT-2 activation {act!r}; supported: {sorted(GELU_FROM_HF)}"
        )
    return ModelConfig(
        vocab_size=hf["vocab_size"],
        context_length=hf["n_positions"],
        n_layer=hf["n_layer"],
        n_head=hf["n_head"],
        n_embd=hf["n_embd"],
        ffn_hidden=hf.get("n_inner") or 4 * hf["n_embd"],
        norm_eps=hf.get("layer_norm_epsilon", 1e-5),
        tie_embeddings=hf.get("tie_word_embeddings", True),
        gelu_approximate=GELU_FROM_HF[act],
    )


def config_to_hf(c: ModelConfig) -> dict:
    return {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": c.vocab_size,
        "n_positions": c.context_length,
        "n_ctx": c.context_length,
        "n_embd": c.n_embd,
        "n_layer": c.n_layer,
        "n_head": c.n_head,
        "n_inner": c.ffn_size,
        "layer_norm_epsilon": c.norm_eps,
        "activation_function": "gelu_new" if c.gelu_approximate == "tanh" else "gelu",
        "tie_word_embeddings": c.tie_embeddings,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
        # GPT-2's <|endoftext|>, only when the vocab has it (tiny test models may not)
        **({"bos_token_id": 50256, "eos_token_id": 50256} if c.vocab_size > 50256 else {}),
    }


_H = "transformer.h.{i}."
_B = "blocks.{i}."
WEIGHT_RULES = (
    WeightRule("transformer.wte.weight", ("tok_emb.weight",)),
    WeightRule("transformer.wpe.weight", ("pos_emb.weight",)),
    WeightRule(_H + "ln_1.weight", (_B + "attn_norm.weight",)),
    WeightRule(_H + "ln_1.bias", (_B + "attn_norm.bias",)),
    WeightRule(
        _H + "attn.c_attn.weight",
        tuple(_B + f"attn.{p}_proj.weight" for p in "qkv"),
        transpose=True,
    ),
    WeightRule(_H + "attn.c_attn.bias", tuple(_B + f"attn.{p}_proj.bias" for p in "qkv")),
    WeightRule(_H + "attn.c_proj.weight", (_B + "attn.o_proj.weight",), transpose=True),
    WeightRule(_H + "attn.c_proj.bias", (_B + "attn.o_proj.bias",)),
    WeightRule(_H + "ln_2.weight", (_B + "ffn_norm.weight",)),
    WeightRule(_H + "ln_2.bias", (_B + "ffn_norm.bias",)),
    WeightRule(_H + "mlp.c_fc.weight", (_B + "ffn.up_proj.weight",), transpose=True),
    WeightRule(_H + "mlp.c_fc.bias", (_B + "ffn.up_proj.bias",)),
    WeightRule(_H + "mlp.c_proj.weight", (_B + "ffn.down_proj.weight",), transpose=True),
    WeightRule(_H + "mlp.c_proj.bias", (_B + "ffn.down_proj.bias",)),
    WeightRule("transformer.ln_f.weight", ("norm.weight",)),
    WeightRule("transformer.ln_f.bias", ("norm.bias",)),
    WeightRule("lm_head.weight", ("lm_head.weight",)),
)

SPEC = ArchitectureSpec(
    model_type="gpt2",
    config_from_hf=config_from_hf,
    config_to_hf=config_to_hf,
    weight_rules=WEIGHT_RULES,
    ignored_hf_keys=(".attn.bias", ".attn.masked_bias"),  # causal-mask buffers of old checkpoints
)
register_architecture(SPEC)


def load_gpt2_weights(model: DecoderLM, source: GPT2Variant | str | os.PathLike[str]) -> DecoderLM:
    """Load GPT-2 weights from a local HF dir / .safetensors file, or a variant from the hub."""
    if isinstance(source, GPT2Variant) or (
        isinstance(source, str)
        and source in {v.value for v in GPT2Variant}
        and not Path(source).exists()
    ):
        source = _download(GPT2Variant(source))
    path = Path(source)
    if not path.exists():
        raise ModelLoadError(f"no such checkpoint: {path}")
    return load_weights(model, SPEC, path)


def _download(variant: GPT2Variant) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(
            snapshot_download(variant.value, allow_patterns=["config.json", "model.safetensors"])
        )
    except Exception as e:  # offline, hub down, no such repo
        raise ModelLoadError(
            f"could not download {variant.value!r} from the Hugging Face hub ({_root_cause(e)}); "
            "offline, pass a local path instead: load_gpt2_weights(model, 'path/to/hf_dir') "
            "with config.json + model.safetensors"
        ) from e


def _root_cause(e: BaseException) -> str:
    """The innermost cause in one line, e.g. "HfHubHTTPError: Server error '500 ...' for url ...":
    huggingface_hub wraps a hub outage in LocalEntryNotFoundError, whose name alone hides it."""
    for _ in range(8):  # a chain is short; the bound guards against a cycle
        if e.__cause__ is None:
            break
        e = e.__cause__
    first = str(e).strip().splitlines()
    return f"{type(e).__name__}: {first[0]}" if first else type(e).__name__
