"""GPT-2 against Hugging Face transformers on tiny random models (no download)."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from legollm.architectures.gpt2 import GPT2, MODEL_CONFIGS, GPT2Variant, load_gpt2_weights
from legollm.core.exceptions import ModelLoadError
from legollm.models import count_parameters, load_pretrained, save_pretrained

CONFIGS = [
    dict(vocab_size=101, n_positions=32, n_embd=48, n_layer=1, n_head=4),
    dict(vocab_size=257, n_positions=64, n_embd=64, n_layer=2, n_head=2),
    dict(vocab_size=333, n_positions=40, n_embd=96, n_layer=4, n_head=8, n_inner=200),
]


def _hf_dir(tmp_path, **kw):
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(**kw)).eval()
    hf.save_pretrained(tmp_path / "hf")
    return hf, tmp_path / "hf"


@pytest.mark.parametrize("kw", CONFIGS)
def test_logits_equal_transformers_at_full_context(tmp_path, kw):
    hf, path = _hf_dir(tmp_path, **kw)
    ours = load_pretrained(path)
    ids = torch.randint(0, kw["vocab_size"], (3, kw["n_positions"]))
    with torch.no_grad():
        assert (ours(ids) - hf(ids).logits).abs().max() <= 1e-4


def test_export_loads_in_transformers_with_identical_logits(tmp_path):
    hf, path = _hf_dir(tmp_path, **CONFIGS[1])
    ours = load_pretrained(path)
    save_pretrained(ours, tmp_path / "export")
    back = GPT2LMHeadModel.from_pretrained(tmp_path / "export").eval()
    ids = torch.randint(0, 257, (2, 64))
    with torch.no_grad():
        assert (back(ids).logits - ours(ids)).abs().max() <= 1e-5


def test_load_gpt2_weights_from_dir_and_safetensors_file(tmp_path):
    hf, path = _hf_dir(tmp_path, **CONFIGS[0])
    from legollm.architectures.gpt2 import config_from_hf

    for source in (path, path / "model.safetensors"):
        model = GPT2(config_from_hf(hf.config.to_dict())).eval()
        load_gpt2_weights(model, source)
        ids = torch.randint(0, 101, (1, 16))
        with torch.no_grad():
            assert (model(ids) - hf(ids).logits).abs().max() <= 1e-4


def test_wrong_shapes_and_missing_keys_are_listed(tmp_path):
    _, path = _hf_dir(tmp_path, **CONFIGS[0])
    from legollm.models import ModelConfig

    wrong = GPT2(ModelConfig(vocab_size=101, context_length=32, n_layer=2, n_head=4, n_embd=48))
    with pytest.raises(ModelLoadError, match=r"missing keys: \['blocks.1"):
        load_gpt2_weights(wrong, path)
    wide = GPT2(ModelConfig(vocab_size=101, context_length=32, n_layer=1, n_head=4, n_embd=64))
    with pytest.raises(ModelLoadError, match="shape mismatches"):
        load_gpt2_weights(wide, path)


def test_unknown_model_type_lists_supported(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ModelLoadError, match="supported.*gpt2"):
        load_pretrained(tmp_path)


@pytest.mark.parametrize(
    ("variant", "published"),
    [
        (GPT2Variant.GPT2, 124_439_808),
        (GPT2Variant.MEDIUM, 354_823_168),
        (GPT2Variant.LARGE, 774_030_080),
        (GPT2Variant.XL, 1_557_611_200),
    ],
)
def test_parameter_counts_match_published_sizes(variant, published):
    with torch.device("meta"):
        assert count_parameters(GPT2(MODEL_CONFIGS[variant])) == published


@pytest.mark.parametrize("activation", ["gelu", "gelu_new"])
def test_exact_and_tanh_gelu_follow_the_checkpoint(tmp_path, activation):
    kw = dict(vocab_size=101, n_positions=32, n_embd=64, n_layer=2, n_head=2)
    hf, path = _hf_dir(tmp_path, activation_function=activation, initializer_range=0.3, **kw)
    ours = load_pretrained(path)
    ids = torch.randint(0, 101, (2, 32))
    with torch.no_grad():
        want = hf(ids).logits
        assert (ours(ids) - want).abs().max() <= 1e-4
        for block in ours.blocks:  # the other GELU form is visibly different here
            block.ffn.approximate = "none" if block.ffn.approximate == "tanh" else "tanh"
        assert (ours(ids) - want).abs().max() > 1e-3
    save_pretrained(load_pretrained(path), tmp_path / "export")
    back = GPT2LMHeadModel.from_pretrained(tmp_path / "export").eval()
    assert back.config.activation_function == activation
