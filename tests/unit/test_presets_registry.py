"""One preset registry: every ``family:name`` resolves, the training names keep their sizes,
the seed's ``MODEL_CONFIGS`` reads the same configs, and models never imports an architecture."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from legollm.architectures import architecture_preset
from legollm.architectures.gpt2 import MODEL_CONFIGS, GPT2Variant
from legollm.core.exceptions import ConfigError
from legollm.models import ModelConfig
from legollm.models.presets import get_preset, preset_names
from legollm.training.presets import model_preset

MODELS = Path(__file__).resolve().parents[2] / "legollm" / "models"


def test_every_family_is_registered():
    families = {name.partition(":")[0] for name in preset_names()}
    assert families == {"gpt2", "llama3", "qwen3", "mistral", "mixtral", "qwen3_moe"}


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_name_resolves_for_models_and_for_training(name):
    config = get_preset(name)
    assert isinstance(config, ModelConfig) and architecture_preset(name) == config
    fields = model_preset(name)
    assert "vocab_size" not in fields and "context_length" not in fields
    assert ModelConfig.from_dict({**fields, "vocab_size": 7, "context_length": 9}) == (
        ModelConfig(**{**config.to_dict(), "vocab_size": 7, "context_length": 9})
    )


def _gpt2_style(n_layer: int, n_head: int, n_embd: int, dropout: float = 0.0) -> ModelConfig:
    """GPT-2's choices spelled out: LayerNorm, learned positions, tanh-GELU MLP, biases
    everywhere, tied embeddings; sized as a run sizes it (vocab 65, block 64)."""
    return ModelConfig(
        vocab_size=65, context_length=64, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
        n_kv_heads=None, head_dim=None, ffn_hidden=None, norm="layernorm", norm_eps=1e-5,
        position="learned", ffn="gelu_mlp", gelu_approximate="tanh", qkv_bias=True,
        attn_out_bias=True, mlp_bias=True, norm_bias=True, qk_norm=False, sliding_window=None,
        tie_embeddings=True, dropout=dropout,
    )  # fmt: skip


# the plain names training configs use: GPT-2's published sizes and nanoGPT's recipes
FROM_SCRATCH = {
    "tiny": _gpt2_style(2, 2, 64),  # seconds on a laptop CPU
    "small": _gpt2_style(4, 4, 128),  # nanoGPT Shakespeare-char on a CPU
    "shakespeare-gpu": _gpt2_style(6, 6, 384, dropout=0.2),  # nanoGPT Shakespeare-char, GPU
    "gpt2-124m": _gpt2_style(12, 12, 768),  # GPT-2 small
    "gpt2-350m": _gpt2_style(24, 16, 1024),  # GPT-2 medium
}


@pytest.mark.parametrize("name", sorted(FROM_SCRATCH))
def test_training_names_keep_their_model(name):
    fields = {**model_preset(name), "vocab_size": 65, "context_length": 64}
    assert ModelConfig.from_dict(fields) == FROM_SCRATCH[name]


def test_the_seed_model_configs_are_the_gpt2_presets():
    for variant in GPT2Variant:
        assert MODEL_CONFIGS[variant] == architecture_preset(f"gpt2:{variant.value}")
    assert (MODEL_CONFIGS[GPT2Variant.GPT2].n_layer, MODEL_CONFIGS[GPT2Variant.XL].n_embd) == (
        12,
        1600,
    )


def test_unknown_names_list_every_registered_one():
    with pytest.raises(ConfigError, match="gpt2:shakespeare-gpu") as e:
        get_preset("gpt2:nope")
    assert all(name in str(e.value) for name in preset_names())


def _imported_modules(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("path", sorted(MODELS.glob("*.py")), ids=lambda p: p.name)
def test_models_never_imports_an_architecture(path):
    """Architectures register into models; models finds them by name at run time."""
    assert not {m for m in _imported_modules(path) if m.startswith("legollm.architectures")}
