"""Generation against transformers' generate on the same random GPT-2 weights."""

from __future__ import annotations

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from legollm.core.exceptions import GenerationError
from legollm.generation import generate, stream
from legollm.models import load_pretrained


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(
        GPT2Config(vocab_size=211, n_positions=128, n_embd=64, n_layer=2, n_head=4)
    )
    path = tmp_path_factory.mktemp("hf")
    hf.eval().save_pretrained(path)
    return hf, load_pretrained(path)


def _left_pad(prompts):
    L = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), L, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, L - len(p) :], mask[i, L - len(p) :] = p, 1
    return ids, mask


def test_greedy_batch_equals_transformers_and_each_prompt_alone(pair):
    hf, ours = pair
    torch.manual_seed(1)
    prompts = [torch.randint(1, 211, (n,)) for n in (5, 9, 3)]
    ids, mask = _left_pad(prompts)
    got = generate(ours, ids, 64, attention_mask=mask)
    want = hf.generate(ids, attention_mask=mask, max_new_tokens=64, do_sample=False, pad_token_id=0)
    assert torch.equal(got, want)
    for i, p in enumerate(prompts):
        assert torch.equal(generate(ours, p[None], 64)[0, len(p) :], got[i, ids.shape[1] :])


def test_cached_and_uncached_give_the_same_tokens(pair):
    _, ours = pair
    prompt = torch.randint(1, 211, (2, 7))
    assert torch.equal(generate(ours, prompt, 40), generate(ours, prompt, 40, use_cache=False))
    sampled = dict(temperature=0.9, top_k=20, top_p=0.9, seed=3)
    assert torch.equal(
        generate(ours, prompt, 40, **sampled),
        generate(ours, prompt, 40, use_cache=False, **sampled),
    )


def test_seed_reproduces_and_stream_matches_generate(pair):
    _, ours = pair
    prompt = torch.randint(1, 211, (1, 4))
    a = generate(ours, prompt, 30, temperature=1.0, seed=7)
    assert torch.equal(a, generate(ours, prompt, 30, temperature=1.0, seed=7))
    streamed = [t.item() for t in stream(ours, prompt, 30, temperature=1.0, seed=7)]
    assert streamed == a[0, 4:].tolist()


def test_past_the_context_slides_the_window(pair):
    _, ours = pair
    out = generate(ours, torch.randint(1, 211, (1, 120)), 20)  # 140 > 128 positions
    assert out.shape == (1, 140)


def test_eos_stops_a_row_and_the_others_go_on(pair):
    _, ours = pair
    prompt = torch.randint(1, 211, (2, 6))
    free = generate(ours, prompt, 20)
    eos = int(free[0, 8])  # the third token row 0 emits
    out = generate(ours, prompt, 20, eos_token_id=eos)
    assert (out[0, 8:] == eos).all()
    assert eos in free[1, 6:].tolist() or torch.equal(out[1], free[1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"temperature": -1.0}, "temperature"), ({"top_p": 0.0}, "top_p"), ({"top_p": 1.5}, "top_p")],
)
def test_bad_arguments(pair, kwargs, message):
    _, ours = pair
    with pytest.raises(GenerationError, match=message):
        generate(ours, torch.ones(1, 3, dtype=torch.long), 5, **kwargs)
    with pytest.raises(GenerationError, match="empty"):
        generate(ours, torch.ones(1, 0, dtype=torch.long), 5)


def test_threaded_products_and_column_layout_keep_transformers_tokens(tmp_path):
    """Every linear big enough to take the split path, before and after store_by_columns."""
    from legollm.components.linear import Linear, store_by_columns, use_split

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(
        GPT2Config(vocab_size=4096, n_positions=64, n_embd=512, n_layer=2, n_head=4)
    )
    with torch.no_grad():  # transformers starts biases at zero, which would hide a dropped one
        for name, p in hf.named_parameters():
            if name.endswith("bias"):
                p.normal_(0.0, 0.05)
    hf.eval().save_pretrained(tmp_path)
    ours = load_pretrained(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        linears = [m for m in ours.modules() if isinstance(m, Linear)]
        assert all(use_split(torch.zeros(1, m.in_features), m.weight) for m in linears)
        ids, mask = _left_pad([torch.randint(1, 4096, (n,)) for n in (4, 7)])
        want = hf.generate(ids, attention_mask=mask, max_new_tokens=24, do_sample=False,
                           pad_token_id=0)  # fmt: skip
        assert torch.equal(generate(ours, ids, 24, attention_mask=mask), want)
        store_by_columns(ours)
        assert all(m.weight.stride()[0] == 1 for m in linears)
        assert torch.equal(generate(ours, ids, 24, attention_mask=mask), want)
    finally:
        torch.set_num_threads(threads)
