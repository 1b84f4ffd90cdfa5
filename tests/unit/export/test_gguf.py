"""GGUF export without llama.cpp: the layouts from first principles, and bad input.

Agreement with llama.cpp itself is in tests/integration/test_gguf_export.py.
"""

from __future__ import annotations

import dataclasses
import math

import gguf
import pytest
import torch

from legollm.cli.main import main
from legollm.core.exceptions import ConfigError, TokenizerError
from legollm.core.tokenization import GPT2_SPLIT_PATTERN, RegexBPETokenizer
from legollm.core.tokenization.specs import CharTokenizer
from legollm.export import export_gguf, gguf_architecture
from legollm.export.gguf import _halves_to_pairs
from legollm.models import build_model
from legollm.models.presets import get_preset


def _tokenizer(pattern: str = GPT2_SPLIT_PATTERN) -> RegexBPETokenizer:
    tok = RegexBPETokenizer(pattern=pattern)
    tok.train("hello world, hello there; the world says hello. " * 20, 266)
    tok.register_special_tokens({"<|endoftext|>": 266})
    return tok


def _model(preset: str = "gpt2:tiny", **fields):
    torch.manual_seed(0)
    return build_model(dataclasses.replace(get_preset(preset), vocab_size=267, **fields)).eval()


def _rope_pairs(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Meta's RoPE: rotate each adjacent pair (x[2j], x[2j+1]) by angles[j]."""
    a, b = x[..., 0::2], x[..., 1::2]
    cos, sin = angles.cos(), angles.sin()
    return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)


def _rope_halves(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Our (and Hugging Face's) RoPE: rotate (x[j], x[j + d/2]) by angles[j]."""
    half = x.shape[-1] // 2
    a, b = x[..., :half], x[..., half:]
    cos, sin = angles.cos(), angles.sin()
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


def test_permuted_rows_give_the_same_attention_scores_under_adjacent_pair_rope():
    torch.manual_seed(0)
    n_heads, d, n_in = 3, 8, 5
    wq, wk, x = torch.randn(n_heads * d, n_in), torch.randn(n_heads * d, n_in), torch.randn(n_in)
    angles = torch.rand(d // 2) * math.pi
    angles_k = torch.rand(d // 2) * math.pi  # another position

    def scores(wq, wk, rope):
        q = rope((wq @ x).view(n_heads, d), angles)
        k = rope((wk @ x).view(n_heads, d), angles_k)
        return (q * k).sum(-1)  # one score per head

    ours = scores(wq, wk, _rope_halves)
    theirs = scores(_halves_to_pairs(wq, n_heads), _halves_to_pairs(wk, n_heads), _rope_pairs)
    torch.testing.assert_close(theirs, ours)


def test_the_file_holds_our_weights_and_hyperparameters(tmp_path):
    model = _model("qwen3:tiny")
    path = export_gguf(model, _tokenizer(), tmp_path / "m.gguf", "f32")
    reader = gguf.GGUFReader(str(path))
    fields = {f.name: f for f in reader.fields.values()}
    assert bytes(fields["general.architecture"].parts[-1]).decode() == "qwen3"
    assert int(fields["qwen3.block_count"].parts[-1][0]) == model.config.n_layer
    tensors = {t.name: t for t in reader.tensors}
    q_norm = model.state_dict()["blocks.1.attn.q_norm.weight"].numpy()
    assert (tensors["blk.1.attn_q_norm.weight"].data == q_norm).all()
    assert "output.weight" not in tensors  # tied: llama.cpp reuses token_embd


@pytest.mark.parametrize(
    ("preset", "expected"),
    [("gpt2:tiny", "gpt2"), ("llama3:tiny", "llama"), ("mistral:tiny", "llama"),
     ("qwen3:tiny", "qwen3"), ("mixtral:tiny", "llama"), ("qwen3_moe:tiny", "qwen3moe")],
)  # fmt: skip
def test_architecture_is_chosen_by_what_the_config_computes(preset, expected):
    assert gguf_architecture(get_preset(preset)) == expected


@pytest.mark.parametrize(
    ("preset", "fields", "words"),
    [
        ("mixtral:tiny", {"moe_normalize_topk": False}, "renormalises"),
        ("gpt2:tiny", {"gelu_approximate": "none"}, "tanh GELU"),
        ("gpt2:tiny", {"mlp_bias": False}, "biases"),
        ("qwen3:tiny", {"qkv_bias": True, "attn_out_bias": True}, "no biases"),
        ("gpt2:tiny", {"norm": "rmsnorm"}, "supports"),
    ],
)
def test_a_model_llama_cpp_cannot_compute_is_refused_naming_what_is_supported(
    preset, fields, words
):
    config = dataclasses.replace(get_preset(preset), **fields)
    with pytest.raises(ConfigError, match=words) as e:
        gguf_architecture(config)
    assert "GPT-2" in str(e.value) and "Llama" in str(e.value)


def test_a_char_tokenizer_is_refused(tmp_path):
    tok = CharTokenizer("abc \n", {"<|endoftext|>": 5})
    with pytest.raises(TokenizerError, match="not a byte-level BPE"):
        export_gguf(_model(), tok, tmp_path / "m.gguf")
    assert not (tmp_path / "m.gguf").exists()


def test_a_split_pattern_llama_cpp_lacks_is_refused(tmp_path):
    with pytest.raises(TokenizerError, match="no pre-tokenizer"):
        export_gguf(_model(), _tokenizer(r"\w+|\s+|[^\w\s]+"), tmp_path / "m.gguf")


def test_a_vocabulary_larger_than_the_model_is_refused(tmp_path):
    small = build_model(dataclasses.replace(get_preset("gpt2:tiny"), vocab_size=260))
    with pytest.raises(TokenizerError, match="embedding rows"):
        export_gguf(small, _tokenizer(), tmp_path / "m.gguf")


def test_an_existing_file_is_kept_unless_forced(tmp_path):
    path = tmp_path / "m.gguf"
    path.write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="--force"):
        export_gguf(_model(), _tokenizer(), path)
    assert path.read_bytes() == b"mine"
    export_gguf(_model(), _tokenizer(), path, "q8_0", force=True)
    assert gguf.GGUFReader(str(path)).tensors
    assert [p.name for p in tmp_path.iterdir()] == ["m.gguf"]  # no temp file left


def test_cli_reports_bad_input_in_one_line(tmp_path, capsys):
    out = str(tmp_path / "x.gguf")
    assert main(["export", str(tmp_path / "nope"), "--format", "gguf", "--output", out]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not found" in err and len(err.splitlines()) == 1
    args = ["export", str(tmp_path / "nope"), "--format", "hf", "--output", out]
    assert main([*args, "--dtype", "q8_0"]) == 1
    assert "GGUF format" in capsys.readouterr().err


def _field(reader, name):
    return reader.fields[name].parts[-1][0]


def test_a_sliding_window_model_declares_the_window_as_its_context(tmp_path):
    """llama.cpp's Llama attends to the whole context: up to the window, so does Mistral."""
    model = _model("mistral:tiny")
    assert model.config.sliding_window < model.config.context_length
    reader = gguf.GGUFReader(str(export_gguf(model, _tokenizer(), tmp_path / "m.gguf")))
    assert _field(reader, "llama.context_length") == model.config.sliding_window


def test_llama3_rope_scaling_becomes_the_factors_llama_cpp_divides_frequencies_by(tmp_path):
    scaling = dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                   original_max_position_embeddings=64)  # fmt: skip
    model = _model("llama3:tiny", rope_scaling=scaling)
    reader = gguf.GGUFReader(str(export_gguf(model, _tokenizer(), tmp_path / "m.gguf")))
    factors = {t.name: t for t in reader.tensors}["rope_freqs.weight"].data
    # Meta's rule: wavelengths above original/low_freq_factor = 64 positions are stretched
    # by `factor`, those below original/high_freq_factor = 16 are kept, the rest blend
    d = model.config.head_size
    wavelen = 2 * math.pi * model.config.rope_theta ** (torch.arange(0, d, 2) / d)
    assert factors[(wavelen < 16).numpy()].tolist() == [1.0] * int((wavelen < 16).sum())
    assert factors[(wavelen > 64).numpy()] == pytest.approx(8.0)
    middle = ((wavelen >= 16) & (wavelen <= 64)).numpy()
    assert ((factors[middle] > 1.0) & (factors[middle] < 8.0)).all()


def test_a_tokenizer_without_merges_is_refused(tmp_path):
    tok = _tokenizer()
    tok.bpe_mode = "ranks"  # what a tiktoken rank file gives
    with pytest.raises(TokenizerError, match="tokenizer.json"):
        export_gguf(_model(), tok, tmp_path / "m.gguf")
