"""Each Lego piece against a reference, and the Lego promise: one field, one swap."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from legollm.components.attention import CausalSelfAttention
from legollm.components.normalization import LayerNorm, RMSNorm
from legollm.components.position import apply_rope, rope_table
from legollm.core.exceptions import ConfigError
from legollm.models import DecoderLM, ModelConfig
from legollm.models.loss import lm_loss

TINY = ModelConfig(vocab_size=97, context_length=32, n_layer=2, n_head=4, n_embd=32)


def test_layernorm_and_rmsnorm_match_torch():
    x = torch.randn(2, 5, 16)
    ln = LayerNorm(16)
    torch.nn.init.normal_(ln.weight)
    torch.nn.init.normal_(ln.bias)
    assert torch.allclose(ln(x), F.layer_norm(x, (16,), ln.weight, ln.bias, 1e-5), atol=1e-6)
    rms = RMSNorm(16, eps=1e-6)
    torch.nn.init.normal_(rms.weight)
    assert torch.allclose(rms(x), F.rms_norm(x, (16,), rms.weight, 1e-6), atol=1e-6)


@pytest.mark.parametrize("scaling", [None, "llama3"])
def test_rope_matches_transformers(scaling):
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    rope_scaling = None
    if scaling:
        rope_scaling = {
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16,
        }
    cfg = LlamaConfig(
        hidden_size=64,
        num_attention_heads=4,
        max_position_embeddings=64,
        rope_theta=500000.0,
        rope_scaling=rope_scaling,
    )
    q, k = torch.randn(2, 4, 64, 16), torch.randn(2, 4, 64, 16)
    pos = torch.arange(64)[None].expand(2, -1)
    cos_hf, sin_hf = LlamaRotaryEmbedding(cfg)(q, pos)
    q_hf, k_hf = apply_rotary_pos_emb(q, k, cos_hf, sin_hf)
    cos, sin = rope_table(64, 16, 500000.0, rope_scaling)
    assert torch.allclose(apply_rope(q, cos, sin), q_hf, atol=1e-4)
    assert torch.allclose(apply_rope(k, cos, sin), k_hf, atol=1e-4)


def _pair(**changes):
    torch.manual_seed(0)
    a = DecoderLM(dataclasses.replace(TINY, **changes)).eval()
    b = DecoderLM(dataclasses.replace(TINY, **changes, attn_impl="manual")).eval()
    b.load_state_dict(a.state_dict())
    return a, b


@pytest.mark.parametrize(
    "changes", [{}, {"n_kv_heads": 2}, {"sliding_window": 5}, {"position": "rope", "qk_norm": True}]
)
def test_sdpa_path_equals_manual_path(changes):
    sdpa, manual = _pair(**changes)
    ids = torch.randint(0, 97, (2, 32))
    assert torch.allclose(sdpa(ids), manual(ids), atol=1e-5)


def test_gqa_with_all_heads_is_mha():
    """n_kv_heads == n_head must be exactly multi-head attention written out by hand."""
    torch.manual_seed(0)
    model = DecoderLM(dataclasses.replace(TINY, n_kv_heads=4)).eval()
    attn = model.blocks[0].attn
    x = torch.randn(1, 7, 32)
    q = attn.q_proj(x).view(1, 7, 4, 8).transpose(1, 2)
    k = attn.k_proj(x).view(1, 7, 4, 8).transpose(1, 2)
    v = attn.v_proj(x).view(1, 7, 4, 8).transpose(1, 2)
    scores = (q @ k.transpose(-1, -2)) / 8**0.5
    scores = scores.masked_fill(torch.ones(7, 7).triu(1).bool(), float("-inf"))
    y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(1, 7, 32)
    assert torch.allclose(attn(x), attn.o_proj(y), atol=1e-5)


@pytest.mark.parametrize(
    "changes", [{}, {"position": "rope", "n_kv_heads": 1}, {"sliding_window": 6}]
)
def test_cached_decoding_equals_full_forward(changes):
    torch.manual_seed(0)
    model = DecoderLM(dataclasses.replace(TINY, **changes)).eval()
    ids = torch.randint(0, 97, (2, 20))
    with torch.no_grad():
        full = model(ids)
        model.setup_kv_cache(2, 32)
        steps = [model(ids[:, :12], input_pos=torch.arange(12))]
        for t in range(12, 20):
            steps.append(model(ids[:, t : t + 1], input_pos=torch.tensor([t])))
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)


@pytest.mark.parametrize("window", [None, 4])
def test_attention_decodes_from_its_own_cache_as_it_computes_without_one(window):
    """Attention alone sets up its cache (a ring of 4 slots with a window of 4); a
    prefill of 6 then one token at a time gives its uncached forward's outputs."""
    torch.manual_seed(0)
    attn = CausalSelfAttention(dataclasses.replace(TINY, n_kv_heads=2, sliding_window=window))
    x = torch.randn(2, 10, 32)
    with torch.no_grad():
        full = attn(x)
        attn.setup_cache(2, 10, torch.float32, "cpu")
        steps = [attn(x[:, :6], input_pos=torch.arange(6))]
        steps += [attn(x[:, t : t + 1], input_pos=torch.tensor([t])) for t in range(6, 10)]
    assert attn.kv_cache.k.shape[2] == (window or 10)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-5, atol=1e-5)
    attn.remove_cache()
    assert attn.kv_cache is None


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"n_kv_heads": 2},
        {"norm": "rmsnorm"},
        {"position": "rope"},
        {"position": "none"},
        {"ffn": "swiglu"},
    ],
)
def test_each_lego_variant_trains(changes):
    torch.manual_seed(0)
    model = DecoderLM(dataclasses.replace(TINY, **changes))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x = torch.randint(0, 97, (4, 16))
    losses = []
    for _ in range(8):
        loss = lm_loss(model(x[:, :-1]), x[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.5


def test_bad_input_is_a_clear_error():
    model = DecoderLM(TINY)
    with pytest.raises(ConfigError, match="context_length"):
        model(torch.zeros(1, 33, dtype=torch.long))
    with pytest.raises(ConfigError, match="vocab_size"):
        model(torch.full((1, 4), 97))
    with pytest.raises(ConfigError, match="divisible by n_head"):
        ModelConfig(n_embd=30, n_head=4)
    with pytest.raises(ConfigError, match="norm="):
        ModelConfig(norm="batchnorm")


def test_config_round_trips_through_dict():
    cfg = dataclasses.replace(
        TINY, position="rope", rope_scaling={"rope_type": "llama3", "factor": 8.0}
    )
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_replace_rederives_head_dim_kv_heads_and_ffn_size():
    """Changing one field must not carry derived numbers from the old config."""
    cfg = dataclasses.replace(TINY, n_embd=64, n_head=8)
    assert (cfg.head_size, cfg.kv_heads, cfg.ffn_size) == (8, 8, 256)
    DecoderLM(dataclasses.replace(cfg, n_kv_heads=2))(torch.randint(0, 97, (1, 4)))
