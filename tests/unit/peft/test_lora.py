"""LoRA against first principles: B = 0 is the base model, the layer computes
W x + b + (alpha/r) B A x, only A and B train, merging changes nothing, and merged
weights export as a plain model that transformers reads back with the same logits."""

import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from legollm.core.exceptions import ConfigError, ModelLoadError
from legollm.models import DecoderLM, ModelConfig
from legollm.models.loss import lm_loss
from legollm.peft import (
    LoRAConfig,
    LoRALinear,
    apply_lora,
    load_adapter,
    lora_layers,
    merge_lora,
    remove_lora,
    save_adapter,
    trainable_parameters,
    unmerge_lora,
)

GPT2_STYLE = dict(vocab_size=97, context_length=32, n_layer=2, n_head=2, n_embd=16)
LLAMA_STYLE = dict(GPT2_STYLE, norm="rmsnorm", position="rope", ffn="swiglu", qkv_bias=False,
                   attn_out_bias=False, mlp_bias=False, norm_bias=False, n_kv_heads=1,
                   tie_embeddings=False)  # fmt: skip


def model_of(kind="gpt2", seed=0):
    torch.manual_seed(seed)
    return DecoderLM(ModelConfig(**(GPT2_STYLE if kind == "gpt2" else LLAMA_STYLE))).eval()


def ids(seed=1, B=2, T=12):
    return torch.randint(0, 97, (B, T), generator=torch.Generator().manual_seed(seed))


def randomise_b(model, seed=2):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in lora_layers(model).values():
            m.lora_B.copy_(torch.randn(m.lora_B.shape, generator=g) * 0.1)


@pytest.mark.parametrize("kind,targets", [("gpt2", "attn"), ("llama", "all")])
def test_b_zero_is_the_base_model(kind, targets):
    base, x = model_of(kind), ids()
    expected = base(x)
    names = apply_lora(base, LoRAConfig(r=4, alpha=8, targets=targets))
    assert torch.equal(base(x), expected)  # B = 0: exactly the base computation
    per_block = {"attn": 4, "all": 7}[targets]  # q k v o (+ gate up down)
    assert len(names) == per_block * 2
    assert all(isinstance(base.get_submodule(n), LoRALinear) for n in names)


def test_layer_is_w_x_plus_scaled_b_a_x():
    torch.manual_seed(0)
    lin = nn.Linear(6, 5)
    W, b = lin.weight.detach().clone(), lin.bias.detach().clone()
    layer = LoRALinear(lin, r=3, alpha=6.0)
    with torch.no_grad():
        layer.lora_B.normal_()
    A, B = layer.lora_A.detach(), layer.lora_B.detach()
    x = torch.randn(2, 4, 6)
    expected = x @ W.T + b + (6.0 / 3) * (x @ A.T @ B.T)
    assert torch.allclose(layer(x), expected, atol=1e-5)
    assert layer.weight is lin.weight  # the base parameter itself, not a copy


def test_only_adapters_train_and_base_stays_frozen():
    model = model_of()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    apply_lora(model, LoRAConfig(r=2, alpha=4, targets=["attn"]))
    trainable, total = trainable_parameters(model)
    # first principles: r * (in + out) per adapted layer, 4 layers of 16 -> 16 per block
    assert trainable == 2 * 4 * 2 * (16 + 16)
    assert total == sum(before[k].numel() for k in before if k != "lm_head.weight") + trainable
    from legollm.training.optim import build_optimizer

    opt = build_optimizer(model, lr=1e-2, weight_decay=0.0)
    assert sum(p.numel() for g in opt.param_groups for p in g["params"]) == trainable
    model.train()
    x = ids()
    for _ in range(3):
        loss = lm_loss(model(x[:, :-1]), x[:, 1:])
        loss.backward()
        opt.step()
        opt.zero_grad()
    after = model.state_dict()
    for k, v in before.items():
        assert torch.equal(after[k], v), k  # every base weight unchanged
    assert any(m.lora_B.abs().sum() > 0 for m in lora_layers(model).values())


def test_adapter_saves_only_lora_weights_and_reloads(tmp_path):
    model = model_of()
    apply_lora(model, LoRAConfig(r=4, alpha=8, targets=["q_proj", "blocks.1.ffn.*"]))
    randomise_b(model)
    x = ids()
    expected = model(x)
    out = save_adapter(model, tmp_path / "adapter")
    state = load_file(str(out / "adapter_model.safetensors"))
    assert set(state) == {
        "blocks.0.attn.q_proj.lora_A", "blocks.0.attn.q_proj.lora_B",
        "blocks.1.attn.q_proj.lora_A", "blocks.1.attn.q_proj.lora_B",
        "blocks.1.ffn.up_proj.lora_A", "blocks.1.ffn.up_proj.lora_B",
        "blocks.1.ffn.down_proj.lora_A", "blocks.1.ffn.down_proj.lora_B",
    }  # fmt: skip
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert (cfg["r"], cfg["alpha"]) == (4, 8)
    fresh = load_adapter(model_of(), out)
    assert torch.allclose(fresh(x), expected, atol=1e-6)
    with pytest.raises(ModelLoadError, match="adapter does not fit"):
        other = model_of()
        apply_lora(other, LoRAConfig(r=4, targets=["attn"]))
        from legollm.peft import load_lora_state

        load_lora_state(other, state)
    with pytest.raises(ModelLoadError, match="adapter_config.json"):
        load_adapter(model_of(), tmp_path)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_merge_and_unmerge(kind):
    model, x = model_of(kind), ids()
    apply_lora(model, LoRAConfig(r=4, alpha=16, targets=["all"]))
    randomise_b(model)
    w0 = {n: m.weight.detach().clone() for n, m in lora_layers(model).items()}
    adapted = model(x)
    merge_lora(model)
    assert torch.allclose(model(x), adapted, atol=1e-5)
    for n, m in lora_layers(model).items():  # the merged weight is W + (alpha/r) B A
        assert torch.allclose(m.weight, w0[n] + 4.0 * m.lora_B @ m.lora_A, atol=1e-6)
    unmerge_lora(model)
    for n, m in lora_layers(model).items():
        assert torch.allclose(m.weight, w0[n], atol=1e-6)
    assert torch.allclose(model(x), adapted, atol=1e-5)


def test_merged_model_exports_as_a_plain_hf_model(tmp_path):
    transformers = pytest.importorskip("transformers")
    from legollm.models import load_pretrained, save_pretrained

    model, x = model_of(), ids()
    apply_lora(model, LoRAConfig(r=4, alpha=8, targets=["all"]))
    randomise_b(model)
    adapted = model(x)
    plain = remove_lora(model)
    assert not lora_layers(plain) and all(type(m) is not LoRALinear for m in plain.modules())
    save_pretrained(plain, tmp_path / "merged", model_type="gpt2")
    ours = load_pretrained(tmp_path / "merged")
    assert torch.allclose(ours(x), adapted, atol=1e-4)
    hf = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "merged").eval()
    with torch.no_grad():
        assert torch.allclose(hf(x).logits, adapted, atol=1e-4)


def test_bad_targets_are_clear_errors():
    with pytest.raises(ConfigError, match="match no nn.Linear") as e:
        apply_lora(model_of(), LoRAConfig(targets=["blocks.*.attn.qkv"]))
    assert "blocks.0.attn.q_proj" in str(e.value)  # it shows what the names look like
    with pytest.raises(ConfigError, match="match no nn.Linear"):
        apply_lora(model_of(), LoRAConfig(targets=["attn", "c_attn"]))
    with pytest.raises(ConfigError, match="tied"):
        apply_lora(model_of(), LoRAConfig(targets=["lm_head"]))
    m = model_of()
    apply_lora(m, LoRAConfig())
    with pytest.raises(ConfigError, match="already"):
        apply_lora(m, LoRAConfig())
    with pytest.raises(ConfigError, match="rank"):
        LoRAConfig(r=0)
    with pytest.raises(ConfigError, match="unknown key"):
        LoRAConfig.parse("rank=4")


def test_parse_the_cli_flag():
    c = LoRAConfig.parse("r=16,alpha=32,dropout=0.05,targets=attn+mlp")
    assert (c.r, c.alpha, c.dropout, c.targets, c.scaling) == (16, 32.0, 0.05, ["attn", "mlp"], 2.0)


@pytest.mark.slow
def test_compiled_lora_model_matches_eager():
    """One graph (fullgraph) through every LoRA layer, same loss and adapter gradients."""
    model, x = model_of("llama"), ids()
    apply_lora(model, LoRAConfig(r=4, alpha=8, dropout=0.0, targets=["all"]))
    randomise_b(model)
    model.train()

    def grads(m):
        loss = lm_loss(m(x[:, :-1]), x[:, 1:])
        loss.backward()
        g = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
        model.zero_grad()
        return loss.detach(), g

    loss_e, g_e = grads(model)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    loss_c, g_c = grads(compiled)
    assert torch.allclose(loss_c, loss_e, atol=1e-5)
    assert g_e.keys() == g_c.keys() and len(g_e) == 2 * 7 * 2
    for n in g_e:
        assert torch.allclose(g_c[n], g_e[n], atol=1e-5), n
    from legollm.core.runtime import unwrap_model

    # the checkpoint is written from the unwrapped module: no _orig_mod. prefixes
    assert all(not k.startswith("_orig_mod.") for k in unwrap_model(compiled).state_dict())


def test_adapter_of_a_compiled_model_has_plain_names(tmp_path):
    model = model_of()
    apply_lora(model, LoRAConfig(r=2, targets=["qv"]))
    compiled = torch.compile(model)  # lazy: nothing is compiled until it is called
    assert set(lora_layers(compiled)) == {f"blocks.{i}.attn.{p}_proj" for i in (0, 1) for p in "qv"}
    save_adapter(compiled, tmp_path)
    assert all(
        k.startswith("blocks.") for k in load_file(str(tmp_path / "adapter_model.safetensors"))
    )


def test_lora_forward_has_no_dropout_in_eval():
    model = model_of()
    apply_lora(model, LoRAConfig(r=4, dropout=0.5, targets=["attn"]))
    randomise_b(model)
    model.eval()
    x = ids()
    assert torch.equal(model(x), model(x))
    model.train()
    assert not torch.equal(F.softmax(model(x), -1), F.softmax(model(x), -1))


def test_adapters_disabled_is_the_base_model_and_refuses_merged_adapters():
    import pytest
    import torch

    from legollm.core.exceptions import ConfigError
    from legollm.models import DecoderLM, ModelConfig
    from legollm.peft import LoRAConfig, adapters_disabled, apply_lora, lora_layers, merge_lora

    torch.manual_seed(0)
    model = DecoderLM(ModelConfig(vocab_size=50, context_length=16, n_layer=1, n_head=2,
                                  n_embd=16, dropout=0.0))  # fmt: skip
    ids = torch.randint(0, 50, (2, 6))
    base = model(ids)
    apply_lora(model, LoRAConfig(r=2, alpha=4, targets=["attn"]))
    for m in lora_layers(model).values():  # move the adapters away from B = 0
        torch.nn.init.normal_(m.lora_B)
    tuned = model(ids)
    assert not torch.allclose(tuned, base)
    with adapters_disabled(model):
        assert torch.equal(model(ids), base)
    assert torch.equal(model(ids), tuned)
    merge_lora(model)
    with pytest.raises(ConfigError, match="unmerge"), adapters_disabled(model):
        pass
