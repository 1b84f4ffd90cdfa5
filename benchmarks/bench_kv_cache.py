"""KV-cache memory of a sliding-window model, and GQA decoding speed: LegoLLM vs transformers.

    uv run python benchmarks/bench_kv_cache.py [--window-new 4096] [--gqa-new 512]
    uv run python benchmarks/bench_kv_cache.py --smoke     # small models, seconds

Both sides run the same random weights (saved by transformers, loaded by ours),
CPU, fp32, greedy, batch 1, a 16-token prompt, in one process.

(a) Memory: a small Mistral-shaped model (4 layers, dim 256, 8 heads, 2 kv heads,
window 1024) generates 4096 new tokens; then the bytes of every tensor each KV
cache holds are summed: ours (the ring buffers, read while the last token is
streamed, before generate frees them) and transformers' cache object returned by
its generate (``return_dict_in_generate``). Also printed: what a cache with a
slot for every position would hold (ours before the ring).

(b) Speed: a small GQA Llama-shaped model (4 layers, dim 512, 8 heads, 2 kv heads,
vocab 32000) generates 512 new tokens, so the last steps attend over ~530 cached
positions; new tokens/s of ours (after ``store_by_columns``, as ``legollm
generate`` runs) and of transformers' generate, and their ratio.

Run it alone: a second busy process on a 2-core machine stalls PyTorch's threads.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from _smoke import parse_args
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

from legollm.components.linear import store_by_columns
from legollm.generation import generate, stream
from legollm.models import load_pretrained

PROMPT = 16


def build(hf_cls, cfg_cls, **config):
    torch.manual_seed(0)
    hf = hf_cls(cfg_cls(bos_token_id=None, eos_token_id=None, pad_token_id=None, **config))
    with tempfile.TemporaryDirectory() as d:
        hf.eval().save_pretrained(d)
        return hf, load_pretrained(d)


def tensor_bytes(obj) -> int:
    """Bytes of the tensors an object holds (directly, or in its lists, tuples and dicts)."""
    if torch.is_tensor(obj):
        return obj.nbytes
    if isinstance(obj, list | tuple):
        return sum(tensor_bytes(x) for x in obj)
    if isinstance(obj, dict):
        return sum(tensor_bytes(x) for x in obj.values())
    return 0


def hf_cache_bytes(cache) -> int:
    return sum(tensor_bytes(vars(layer)) for layer in cache.layers)


def our_cache_bytes(model) -> int:
    return sum(b.nbytes for block in model.blocks for b in block.attn.kv_cache.buffers())


def memory(new: int, window: int) -> None:
    hf, ours = build(
        MistralForCausalLM, MistralConfig, vocab_size=1000, hidden_size=256,
        intermediate_size=688, num_hidden_layers=4, num_attention_heads=8, num_key_value_heads=2,
        sliding_window=window, max_position_embeddings=PROMPT + new,
    )  # fmt: skip
    prompt = torch.randint(0, 1000, (1, PROMPT))
    tokens, ours_bytes = [], 0
    for tok in stream(ours, prompt, new):
        tokens.append(tok)
        ours_bytes = our_cache_bytes(ours)  # the cache lives until the stream ends
    with torch.inference_mode():
        out = hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new,
                          min_new_tokens=new, do_sample=False, pad_token_id=0,
                          return_dict_in_generate=True)  # fmt: skip
    same = torch.equal(torch.stack(tokens, dim=1), out.sequences[:, PROMPT:])
    c = ours.config
    full = c.n_layer * 2 * c.kv_heads * (PROMPT + new) * c.head_size * 4
    hf_bytes = hf_cache_bytes(out.cache)
    print(f"(a) KV cache after {new} new tokens, window {window} (tokens identical: {same})")
    print(f"  legollm ring:        {ours_bytes / 2**20:7.2f} MiB")
    print(
        f"  transformers:        {hf_bytes / 2**20:7.2f} MiB, ours/theirs {ours_bytes / hf_bytes:.3f}"
    )
    print(f"  a slot per position: {full / 2**20:7.2f} MiB, {full / ours_bytes:.1f}x the ring")


def timed(fn, repeats: int = 2) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def speed(new: int, dim: int, vocab: int) -> None:
    hf, ours = build(
        LlamaForCausalLM, LlamaConfig, vocab_size=vocab, hidden_size=dim,
        intermediate_size=dim * 43 // 16, num_hidden_layers=4, num_attention_heads=8,
        num_key_value_heads=2, max_position_embeddings=2048,
    )  # fmt: skip
    store_by_columns(ours)
    prompt = torch.randint(0, vocab, (1, PROMPT))

    def run_ours(n=new):
        return generate(ours, prompt, n)

    def run_hf(n=new):
        with torch.inference_mode():
            return hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=n,
                               min_new_tokens=n, do_sample=False, pad_token_id=0)  # fmt: skip

    check = min(32, new)
    assert torch.equal(run_ours(check), run_hf(check)), "greedy tokens differ from transformers'"
    tps_ours, tps_hf = new / timed(run_ours), new / timed(run_hf)
    print(f"(b) GQA decoding (8 query heads, 2 kv heads), batch 1, {new} new tokens")
    print(f"  transformers {tps_hf:6.1f} new tokens/s")
    print(f"  legollm      {tps_ours:6.1f} new tokens/s, ratio {tps_ours / tps_hf:.2f}x")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--window-new", type=int, default=4096, help="(a) new tokens")
    p.add_argument("--window", type=int, default=1024, help="(a) sliding window")
    p.add_argument("--gqa-new", type=int, default=512, help="(b) new tokens")
    p.add_argument("--gqa-dim", type=int, default=512, help="(b) model width")
    p.add_argument("--gqa-vocab", type=int, default=32000, help="(b) vocabulary")
    p.add_argument("--threads", type=int, default=2)
    smoke = dict(window_new=48, window=16, gqa_new=16, gqa_dim=64, gqa_vocab=1000, threads=1)
    args = parse_args(p, smoke)
    torch.set_num_threads(args.threads)
    memory(args.window_new, args.window)
    speed(args.gqa_new, args.gqa_dim, args.gqa_vocab)


if __name__ == "__main__":
    main()
