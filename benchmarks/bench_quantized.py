"""Int8 decoding: LegoLLM int8 and fp32 vs transformers fp32 and llama.cpp f32 / q8_0, same weights.

    uv run python benchmarks/bench_quantized.py            # GPT-2 124M shape, about 3 minutes
    uv run python benchmarks/bench_quantized.py --smoke    # a 1-layer, 64-wide GPT-2, seconds

GPT-2 124M config, random weights saved by transformers and loaded by ours, then
exported to GGUF by ``legollm export`` (in f32 and in q8_0) for llama.cpp, run
through ``llama-cpp-python`` (the ``gguf`` dependency group) with the same thread
count; without it those rows are skipped with a message. CPU, batch 1, greedy, a
16-token prompt and 128 new tokens. For each weight format it prints the memory
bound: the bytes of weights a decode step reads divided by the bandwidth of a
threaded ``sum`` over float32 weights, i.e. the tokens/s a step that only streamed
its weights would reach. Run it alone: a second busy process stalls the threads.

The project builds llama.cpp portably (AVX2, no -march=native: pyproject.toml says why),
which is what CI and the GGUF tests need but not what a user who compiles llama.cpp for
their own machine runs. For the llama.cpp rows of a figure, build it natively first:

    uv sync --group gguf --reinstall-package llama-cpp-python \
        --config-settings-package llama-cpp-python:cmake.define.GGML_NATIVE=ON

The script prints the instruction sets the llama.cpp in use was built for.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import torch
from _smoke import installed, parse_args, skipped
from tokenizers import ByteLevelBPETokenizer
from transformers import GPT2Config, GPT2LMHeadModel

from legollm.components.linear import store_by_columns
from legollm.components.quantized import Int8Linear
from legollm.export.gguf import export_gguf
from legollm.generation import generate
from legollm.models import quantize
from legollm.models.loading import load_model

GPT2_FILES = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "gpt2"
# bytes per weight of each format; q8_0 stores 32 int8 values and one fp16 scale
BYTES_PER_WEIGHT = {"fp32": 4.0, "int8": 1.0, "q8_0": 34 / 32}


def timed(fn, repeats: int = 2) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def decode_weight_count(model) -> int:
    """Weights a decode step reads: every matrix once (the tied head once, not the positions)."""
    return sum(
        p.numel() for n, p in model.named_parameters() if p.dim() == 2 and "pos_emb" not in n
    )


def bandwidth(model) -> float:
    """Bytes/s of a threaded ``sum`` over the float32 weights: about what the memory gives."""
    mats = [p for p in model.parameters() if p.dim() == 2]
    nbytes = sum(w.numel() * 4 for w in mats)
    with torch.inference_mode():
        seconds = min(timed(lambda: [torch.sum(w) for w in mats], 1) for _ in range(10))
    return nbytes / seconds


def llama_cpp_speed(path: Path, prompt: list[int], new: int, threads: int) -> float:
    """New tokens/s of llama.cpp's own greedy loop on a GGUF file."""
    from llama_cpp import Llama

    llm = Llama(str(path), n_ctx=256, n_threads=threads, n_threads_batch=threads, verbose=False)

    def run():
        llm.reset()
        for i, _ in enumerate(llm.generate(prompt, top_k=1, temp=0.0, reset=True)):
            if i + 1 == new:
                break

    run()
    return new / timed(run)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n-layer", type=int, default=12)
    p.add_argument("--n-head", type=int, default=12)
    p.add_argument("--n-embd", type=int, default=768)
    p.add_argument("--new", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    args = parse_args(p, dict(n_layer=1, n_head=2, n_embd=64, new=16, threads=1))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config(n_layer=args.n_layer, n_head=args.n_head,
                                    n_embd=args.n_embd)).eval()  # fmt: skip
    prompt = torch.randint(0, 50257, (1, 16))
    with tempfile.TemporaryDirectory() as d:
        hf.save_pretrained(d)  # with GPT-2's tokenizer as a tokenizer.json, for the GGUF export
        bpe = ByteLevelBPETokenizer(str(GPT2_FILES / "encoder.json"), str(GPT2_FILES / "vocab.bpe"))
        bpe.add_special_tokens(["<|endoftext|>"])  # already id 50256: now marked special
        bpe.save(str(Path(d) / "tokenizer.json"))
        loaded = load_model(d)
    fp32 = store_by_columns(loaded.model)
    int8 = quantize(copy.deepcopy(fp32), "int8")
    assert isinstance(int8.lm_head, Int8Linear)

    n_weights = decode_weight_count(fp32)
    bw = bandwidth(fp32)
    print(f"{n_weights / 1e6:.1f}M weights read per token; threaded sum reads {bw / 1e9:.1f} GB/s")
    for fmt, b in BYTES_PER_WEIGHT.items():
        mib = n_weights * b / 2**20
        print(
            f"  memory bound {fmt:5s}: {mib:6.0f} MiB/token -> {bw / (n_weights * b):6.1f} tokens/s"
        )

    def run_hf():
        with torch.inference_mode():
            hf.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=args.new,
                        min_new_tokens=args.new, do_sample=False, pad_token_id=0)  # fmt: skip

    same = generate(int8, prompt, args.new).eq(generate(fp32, prompt, args.new)).float().mean()
    speeds = {"transformers fp32": args.new / timed(run_hf)}
    speeds["legollm fp32"] = args.new / timed(lambda: generate(fp32, prompt, args.new))
    speeds["legollm int8"] = args.new / timed(lambda: generate(int8, prompt, args.new))
    print(
        f"legollm int8 chose the fp32 model's token at {same:.0%} of the positions (random weights)"
    )

    if not installed("llama_cpp"):
        skipped("llama.cpp rows", "llama_cpp is not installed (uv sync --group gguf)")
    else:
        import llama_cpp

        print("llama.cpp built for:", llama_cpp.llama_print_system_info().decode().strip())
        with tempfile.TemporaryDirectory() as d:
            for fmt in ("f32", "q8_0"):
                path = export_gguf(loaded, None, Path(d) / f"model-{fmt}.gguf", dtype=fmt)
                speeds[f"llama.cpp {fmt}"] = llama_cpp_speed(path, prompt[0].tolist(), args.new,
                                                             args.threads)  # fmt: skip

    print(f"batch 1, 16 + {args.new} tokens, {args.threads} threads, new tokens/s:")
    for name, tps in speeds.items():
        print(f"  {name:18s} {tps:7.1f}")
    hf_tps, ours = speeds["transformers fp32"], speeds["legollm int8"]
    line = f"ratio: legollm int8 / transformers fp32 {ours / hf_tps:.2f}x (target >= 2x)"
    if "llama.cpp q8_0" in speeds:
        line += f"; / llama.cpp q8_0 {ours / speeds['llama.cpp q8_0']:.2f}x (target >= 0.5x)"
    print(line)


if __name__ == "__main__":
    main()
