"""Llama 3, Qwen 3 and Mistral against Hugging Face transformers on tiny random models.

Each case builds a random HF model, saves it (safetensors) to a temp dir, loads it
with ``load_pretrained`` and compares logits (fp32, max abs diff <= 1e-4) and
greedy generations (identical). Weights are drawn with std 0.2 instead of 0.02 so
the tiny models give context-dependent, non-repeating greedy tokens: a wrong
mask, window or RoPE then changes the output instead of hiding in the noise.
"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    LlamaConfig,
    Qwen3Config,
)

from legollm.architectures import llama3, mistral, qwen3
from legollm.core.exceptions import ConfigError, ModelLoadError
from legollm.generation import generate
from legollm.models import load_pretrained, save_pretrained
from tests.integration._llama_family import (
    BASE,
    CASES,
    LLAMA3_ROPE,
    MODEL_TYPE,
    VOCAB,
    WINDOW,
    _build,
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny matmuls: a second thread only adds sync cost, and much more on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _init_biases(model, std: float = 0.2) -> None:
    for name, p in model.named_parameters():
        if name.endswith(".bias"):  # HF zeroes them: random ones prove they are mapped
            torch.nn.init.normal_(p, std=std)


@pytest.fixture(scope="module", params=list(CASES))
def pair(request, tmp_path_factory):
    """(HF model, HF dir, our model loaded from it, the HF class)."""
    hf = _build(request.param, seed=0)
    _init_biases(hf)
    path = tmp_path_factory.mktemp(request.param)
    hf.save_pretrained(path)
    return hf, path, load_pretrained(path), type(hf)


def _max_diff(ours, hf, ids) -> float:
    with torch.no_grad():
        return (ours(ids) - hf(ids).logits).abs().max().item()


def test_logits_equal_transformers(pair):
    hf, _, ours, _ = pair
    torch.manual_seed(1)
    ids = torch.randint(0, VOCAB, (3, 40))
    assert _max_diff(ours, hf, ids) <= 1e-4


def test_greedy_generation_equals_transformers(pair):
    hf, _, ours, _ = pair
    torch.manual_seed(2)
    for prompt_len in (5, 13):  # Mistral: a prompt inside and one past the window
        prompt = torch.randint(0, VOCAB, (1, prompt_len))
        want = hf.generate(prompt, max_new_tokens=32, do_sample=False)
        got = generate(ours, prompt, 32)
        assert torch.equal(got, want)
        assert len(set(got[0, prompt_len:].tolist())) > 4  # a real sequence, not one token


def test_export_reloads_in_transformers_with_the_same_logits(pair, tmp_path):
    hf, _, ours, cls = pair
    save_pretrained(ours, tmp_path, model_type=MODEL_TYPE[cls])
    back = AutoModelForCausalLM.from_pretrained(tmp_path).eval()
    assert type(back) is cls
    ids = torch.randint(0, VOCAB, (2, 40))
    assert _max_diff(ours, back, ids) <= 1e-5
    assert back.config.tie_word_embeddings == hf.config.tie_word_embeddings
    assert back.config.rope_parameters == hf.config.rope_parameters
    assert getattr(back.config, "sliding_window", None) == getattr(
        hf.config, "sliding_window", None
    )


def test_mistral_left_padded_batch_past_the_window(tmp_path):
    hf = _build("mistral-window", seed=3)
    hf.save_pretrained(tmp_path)
    ours = load_pretrained(tmp_path)
    lengths = (11, 4)
    ids = torch.zeros(2, max(lengths), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, n in enumerate(lengths):
        ids[i, -n:], mask[i, -n:] = torch.randint(1, VOCAB, (n,)), 1
    want = hf.generate(ids, attention_mask=mask, max_new_tokens=32, do_sample=False, pad_token_id=0)
    assert torch.equal(generate(ours, ids, 32, attention_mask=mask), want)


def test_sharded_checkpoint_loads(tmp_path):
    hf = _build("llama-gqa2-tied-llama3rope", seed=4)
    hf.save_pretrained(tmp_path, max_shard_size="100KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    assert len(list(tmp_path.glob("model-*.safetensors"))) > 2
    ours = load_pretrained(tmp_path)
    assert _max_diff(ours, hf, torch.randint(0, VOCAB, (2, 30))) <= 1e-4


def test_bf16_checkpoint_loads_in_bf16(tmp_path):
    hf = _build("qwen3-headdim32-tied", seed=5)
    hf.to(torch.bfloat16).save_pretrained(tmp_path)
    ours = load_pretrained(tmp_path, dtype=torch.bfloat16)
    assert {p.dtype for p in ours.parameters()} == {torch.bfloat16}
    ids = torch.randint(0, VOCAB, (1, 24))
    with torch.no_grad():
        want, got = hf(ids).logits.float(), ours(ids).float()
    # bf16 rounding differs in order of operations; the same weights agree on the ranking
    assert (got - want).abs().max() <= 0.05 * want.abs().max()
    assert (got.argmax(-1) == want.argmax(-1)).float().mean() >= 0.9


def test_legacy_rope_keys_read_like_rope_parameters():
    """transformers 4.x wrote rope_theta and rope_scaling; 5.x writes rope_parameters."""
    hf = LlamaConfig(**BASE, rope_theta=500000.0, rope_scaling=dict(LLAMA3_ROPE)).to_dict()
    new = llama3.config_from_hf(hf)
    legacy = {k: v for k, v in hf.items() if k != "rope_parameters"}
    legacy |= {"rope_theta": 500000.0, "rope_scaling": {**LLAMA3_ROPE, "type": "llama3"}}
    del legacy["rope_scaling"]["rope_type"]  # the oldest spelling: "type"
    assert llama3.config_from_hf(legacy) == new
    assert new.rope_theta == 500000.0 and new.rope_scaling["factor"] == 4.0


def test_unsupported_rope_scaling_is_refused(tmp_path):
    hf = LlamaConfig(**BASE, rope_scaling={"rope_type": "linear", "factor": 2.0}).to_dict()
    (tmp_path / "config.json").write_text(json.dumps(hf))
    with pytest.raises(ModelLoadError, match="'linear' is not supported"):
        load_pretrained(tmp_path)


def test_qwen3_mixed_sliding_layers_are_refused():
    base = {**BASE, "num_key_value_heads": 2}
    hf = Qwen3Config(
        **base, use_sliding_window=True, sliding_window=WINDOW, max_window_layers=1
    ).to_dict()
    with pytest.raises(ModelLoadError, match="mixes sliding-window and full-attention"):
        qwen3.config_from_hf(hf)
    hf = Qwen3Config(**base, use_sliding_window=True, sliding_window=WINDOW, max_window_layers=0)
    assert qwen3.config_from_hf(hf.to_dict()).sliding_window == WINDOW


def test_saving_under_an_architecture_that_lacks_a_feature_is_refused(tmp_path):
    from legollm.models import build_model

    with pytest.raises(ConfigError, match="llama has no qk_norm"):
        save_pretrained(build_model(qwen3.PRESETS["tiny"]), tmp_path, model_type="llama")
    with pytest.raises(ConfigError, match="llama has no sliding_window"):
        save_pretrained(build_model(mistral.PRESETS["tiny"]), tmp_path, model_type="llama")
    assert not (tmp_path / "model.safetensors").exists()
