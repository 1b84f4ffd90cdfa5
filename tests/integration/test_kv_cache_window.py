"""The sliding-window KV cache (a ring of ``window`` slots) and GQA decoding without copies.

Oracles: Hugging Face transformers' greedy ``generate`` on tiny random models
saved with save_pretrained (built by the Llama-family parity tests' helper), and
our own uncached forward over the whole sequence. Generations run for five times
the window, so the ring wraps many times; prompts sit inside and past the window.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from legollm.components.kv_cache import KVCache
from legollm.core.exceptions import ConfigError
from legollm.generation import generate, stream
from legollm.models import DecoderLM, ModelConfig, load_pretrained
from tests.integration._llama_family import BASE, VOCAB, WINDOW, _build

NEW = 40  # new tokens: five windows


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _pair(case: str, tmp_path_factory, seed: int):
    hf = _build(case, seed=seed)
    path = tmp_path_factory.mktemp(case)
    hf.save_pretrained(path)
    return hf, load_pretrained(path)


@pytest.fixture(scope="module")
def mistral(tmp_path_factory):
    """(HF MistralForCausalLM with window 8, our model loaded from its save)."""
    return _pair("mistral-window", tmp_path_factory, seed=6)


def _left_pad(prompts: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :], mask[i, width - len(p) :] = p, 1
    return ids, mask


def _hf_greedy(hf, ids, mask=None):
    return hf.generate(
        ids, attention_mask=mask, max_new_tokens=NEW, do_sample=False, pad_token_id=0
    )


def test_window_cache_generation_far_past_the_window_equals_transformers(mistral):
    hf, ours = mistral
    torch.manual_seed(7)
    prompts = [torch.randint(1, VOCAB, (n,)) for n in (5, 13)]  # inside / past the window
    for p in prompts:  # alone: the prompt of 13 is prefilled in flight past the ring
        want = _hf_greedy(hf, p[None])
        assert torch.equal(generate(ours, p[None], NEW), want)
        assert len(set(want[0, len(p) :].tolist())) > 8  # a real sequence, not a loop
    ids, mask = _left_pad(prompts)
    want = _hf_greedy(hf, ids, mask)
    assert torch.equal(generate(ours, ids, NEW, attention_mask=mask), want)
    assert torch.equal(generate(ours, ids, NEW, attention_mask=mask, use_cache=False), want)


def test_window_cache_holds_the_window_not_the_sequence(mistral, tmp_path_factory):
    _, ours = mistral
    prompt = torch.randint(1, VOCAB, (2, 13))
    hd = ours.config.head_size
    shapes = {
        tuple(block.attn.kv_cache.k.shape)
        for _ in stream(ours, prompt, NEW)
        for block in ours.blocks
    }
    assert shapes == {(2, 2, WINDOW, hd)}
    # full attention keeps a slot for every position, as before
    _, llama = _pair("llama-gqa2-tied-llama3rope", tmp_path_factory, seed=8)
    shapes = {tuple(llama.blocks[0].attn.kv_cache.k.shape) for _ in stream(llama, prompt, NEW)}
    assert shapes == {(2, 2, 13 + NEW, llama.config.head_size)}


def test_a_window_model_decodes_past_its_context_as_transformers_does(tmp_path_factory):
    """Mistral has no context edge: a short max_position_embeddings (12) is not a wall.

    Prompt plus new tokens reach 53 positions. transformers keeps decoding; so do
    we, from the ring with the cache and over the whole sequence without it. Re-running
    a window cropped to 12 tokens would compute something else: through 2 layers
    of window 8, a token depends on the last 15.
    """
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(11)
    cfg = {
        **BASE,
        "max_position_embeddings": 12,
        "num_key_value_heads": 2,
        "sliding_window": WINDOW,
    }
    hf = MistralForCausalLM(MistralConfig(**cfg)).eval()
    path = tmp_path_factory.mktemp("mistral-short")
    hf.save_pretrained(path)
    ours = load_pretrained(path)
    assert ours.context_limit is None and ours.config.context_length == 12
    ids, mask = _left_pad([torch.randint(1, VOCAB, (n,)) for n in (5, 13)])
    want = _hf_greedy(hf, ids, mask)
    assert want.shape[1] == 13 + NEW
    assert torch.equal(generate(ours, ids, NEW, attention_mask=mask), want)
    assert torch.equal(generate(ours, ids, NEW, attention_mask=mask, use_cache=False), want)
    assert torch.equal(generate(ours, ids, NEW, attention_mask=mask, crop_to_context=False), want)


@pytest.mark.parametrize(
    "case",
    ["llama-mha-untied", "llama-gqa2-tied-llama3rope", "llama-gqa4-untied-llama3rope-theta"],
)  # query heads per kv head: 1, 2, 4
def test_gqa_batch_generation_equals_transformers_on_both_paths(case, tmp_path_factory):
    hf, ours = _pair(case, tmp_path_factory, seed=9)
    ids, mask = _left_pad([torch.randint(1, VOCAB, (n,)) for n in (5, 13)])
    want = _hf_greedy(hf, ids, mask)
    assert torch.equal(generate(ours, ids, NEW, attention_mask=mask), want)
    for block in ours.blocks:
        block.attn.impl = "manual"
    assert torch.equal(generate(ours, ids, NEW, attention_mask=mask), want)


RING = ModelConfig(
    vocab_size=97, context_length=32, n_layer=2, n_head=4, n_embd=32, position="rope",
    norm="rmsnorm", ffn="swiglu", sliding_window=4,
)  # fmt: skip


@pytest.mark.parametrize("kv_heads", [4, 2, 1])  # query heads per kv head: 1, 2, 4
@pytest.mark.parametrize("chunks", [(11,), (3, 6, 5), (1,)], ids=["prefill", "chunked", "steps"])
def test_ring_cache_decoding_equals_the_uncached_forward(kv_heads, chunks):
    """Chunks fed after the ring wrapped, a left-padded row, and both attention paths."""
    torch.manual_seed(0)
    sdpa = DecoderLM(dataclasses.replace(RING, n_kv_heads=kv_heads)).eval()
    manual = DecoderLM(dataclasses.replace(RING, n_kv_heads=kv_heads, attn_impl="manual")).eval()
    manual.load_state_dict(sdpa.state_dict())
    ids = torch.randint(0, 97, (2, 24))
    mask = torch.ones_like(ids)
    mask[1, :3] = 0  # row 1 is left-padded
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        full = sdpa(ids, attention_mask=mask, position_ids=pos)
        for model in (sdpa, manual):
            model.setup_kv_cache(2, 24)
            bounds = [0, *torch.tensor(chunks).cumsum(0).tolist()]
            bounds += range(bounds[-1] + 1, 25)  # then one token at a time
            out = []
            for lo, hi in zip(bounds, bounds[1:], strict=False):
                step = torch.arange(lo, hi)
                out.append(
                    model(
                        ids[:, lo:hi],
                        input_pos=step,
                        position_ids=pos[:, lo:hi],
                        attention_mask=mask,
                    )  # fmt: skip
                )
            assert model.blocks[0].attn.kv_cache.k.shape[2] == 4
            assert torch.allclose(torch.cat(out, dim=1), full, atol=1e-5)
            model.remove_kv_cache()


def test_feeding_past_the_cache_and_a_bad_window_are_clear_errors():
    model = DecoderLM(RING).eval()
    model.setup_kv_cache(1, 8)
    with pytest.raises(ConfigError, match="past the 8 positions.*larger max_seq_len"):
        model(torch.zeros(1, 1, dtype=torch.long), input_pos=torch.tensor([8]))
    with pytest.raises(ConfigError, match="at least 1 position"):
        KVCache(1, 8, 2, 4, window=0)
    with pytest.raises(ConfigError, match="sliding_window must be a positive.*None for full"):
        dataclasses.replace(RING, sliding_window=0)


@pytest.mark.slow
def test_compiled_step_on_a_wrapped_ring_gives_the_same_tokens(mistral):
    _, ours = mistral
    ids, mask = _left_pad([torch.randint(1, VOCAB, (n,)) for n in (5, 13)])
    eager = generate(ours, ids, 24, attention_mask=mask)
    assert torch.equal(generate(ours, ids, 24, attention_mask=mask, compile=True), eager)
