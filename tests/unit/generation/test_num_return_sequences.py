"""``num_return_sequences=n``: each prompt prefilled once, continued n ways.

The oracle is the definition: the same call on the batch with every prompt repeated
n times (rows i*n .. i*n + n - 1 for prompt i), which prefills every copy.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from legollm.core.exceptions import GenerationError
from legollm.generation import generate
from legollm.models import DecoderLM, ModelConfig

# init_std 0.3: logits far from uniform, so what is sampled depends on what the model computes
GPT = ModelConfig(vocab_size=97, context_length=48, n_layer=2, n_head=4, n_embd=32, init_std=0.3)
LLAMA = dataclasses.replace(GPT, n_kv_heads=2, norm="rmsnorm", position="rope", ffn="swiglu")
WINDOW = dataclasses.replace(LLAMA, sliding_window=4)  # a ring cache smaller than the prompt


def model_of(config: ModelConfig) -> DecoderLM:
    torch.manual_seed(0)
    return DecoderLM(config).eval()


PROMPTS = torch.randint(0, 97, (3, 7), generator=torch.Generator().manual_seed(1))
MASK = torch.tensor([[0, 0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1, 1]])


@pytest.mark.parametrize("config", [GPT, LLAMA, WINDOW], ids=["gpt", "llama", "window"])
@pytest.mark.parametrize("use_cache", [True, False], ids=["cached", "uncached"])
def test_each_prompt_continued_n_ways_equals_the_prompt_repeated(config, use_cache):
    model, n = model_of(config), 4
    shared = generate(model, PROMPTS, 9, temperature=1.0, seed=7, attention_mask=MASK,
                      num_return_sequences=n, use_cache=use_cache)  # fmt: skip
    repeated = generate(model, PROMPTS.repeat_interleave(n, 0), 9, temperature=1.0, seed=7,
                        attention_mask=MASK.repeat_interleave(n, 0), use_cache=use_cache)  # fmt: skip
    assert shared.shape == (3 * n, 7 + 9)
    assert torch.equal(shared, repeated)
    # sampling did continue each prompt differently
    assert len({tuple(row) for row in shared[:n, 7:].tolist()}) > 1


def test_greedy_rows_of_one_prompt_are_identical_and_eos_stops_each_row():
    model = model_of(GPT)
    out = generate(model, PROMPTS, 6, num_return_sequences=2, attention_mask=MASK)
    assert torch.equal(out[0::2], out[1::2])
    assert torch.equal(out[0::2], generate(model, PROMPTS, 6, attention_mask=MASK))
    sampled = generate(model, PROMPTS[:1], 20, temperature=1.0, seed=3, num_return_sequences=6,
                       eos_token_id=5)  # fmt: skip
    for row in sampled[:, 7:].tolist():  # after a row's EOS, only EOS (its padding)
        if 5 in row:
            assert set(row[row.index(5) :]) == {5}


def test_num_return_sequences_below_one_is_an_error():
    with pytest.raises(GenerationError, match="num_return_sequences must be >= 1"):
        generate(model_of(GPT), PROMPTS, 2, num_return_sequences=0)
