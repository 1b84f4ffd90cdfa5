"""``legollm generate MODEL --prompt TEXT``: stream a continuation to the terminal.

MODEL is a LegoLLM checkpoint (a .pt file or a run directory) or a Hugging Face
model directory (config.json + safetensors + its tokenizer files).

    legollm generate runs/demo/run --prompt "The " --max-new-tokens 200   # after legollm demo
    legollm generate path/to/gpt2 --prompt "Hello" --strategy greedy --stop "\\n\\n"
"""

from __future__ import annotations

import argparse
import sys


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="checkpoint (.pt or run dir) or Hugging Face model directory")
    p.add_argument("--tokenizer", help="tokenizer file or directory (default: the model's own)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: best available)")
    p.add_argument(
        "--dtype",
        choices=("float32", "bfloat16", "float16"),
        help="weights dtype (default: as saved)",
    )
    p.add_argument(
        "--quantize",
        choices=("int8",),
        help="int8: weight-only int8 products, a quarter of float32's bytes (faster decoding)",
    )


def add_sampling_args(p: argparse.ArgumentParser, max_new_tokens: int = 200) -> None:
    p.add_argument("--max-new-tokens", type=int, default=max_new_tokens)
    p.add_argument(
        "--strategy",
        choices=("greedy", "stochastic"),
        default="stochastic",
        help="greedy = always the most likely token (same as --temperature 0)",
    )
    p.add_argument("--temperature", type=float, default=0.8)
    p.add_argument("--top-k", type=int, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--min-p", type=float, default=None)
    p.add_argument("--repetition-penalty", type=float, default=None)
    p.add_argument("--seed", type=int, default=None, help="same seed, same sample")
    p.add_argument(
        "--stop", action="append", default=None, metavar="TEXT", help="stop string (repeatable)"
    )
    p.add_argument(
        "--no-crop",
        "--no-window",  # its old name
        dest="no_crop",
        action="store_true",
        help="refuse prompts + new tokens longer than the context instead of re-running "
        "only the last context_length tokens",
    )
    p.add_argument("--compile", action="store_true", help="torch.compile the decode step")


def sampling_kwargs(args: argparse.Namespace) -> dict:
    greedy = args.strategy == "greedy"
    return dict(
        temperature=0.0 if greedy else args.temperature,
        top_k=None if greedy else args.top_k,
        top_p=None if greedy else args.top_p,
        min_p=None if greedy else args.min_p,
        repetition_penalty=args.repetition_penalty,
        seed=args.seed,
        crop_to_context=not args.no_crop,
        compile=args.compile,
        stop_strings=args.stop,
    )


def load_from_args(args: argparse.Namespace):
    """``(loaded, device)`` from the model arguments (see ``add_model_args``): the
    :class:`~legollm.models.loading.LoadedModel` and the device it sits on, quantized
    when ``--quantize`` asks for it."""
    import torch

    from legollm.components.linear import store_by_columns
    from legollm.components.quantized import quantize
    from legollm.core.runtime import resolve_device
    from legollm.models.loading import load_model

    device = resolve_device(args.device or "auto")
    dtype = getattr(torch, args.dtype) if args.dtype else None
    loaded = load_model(args.model, args.tokenizer, device=device, dtype=dtype)
    if args.quantize:
        quantize(loaded.model, args.quantize)
    store_by_columns(loaded.model)  # loaded to decode: the faster layout for CPU mat-vec products
    return loaded, device


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="continue a prompt with a checkpoint or HF model, streaming to the terminal",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_args(p)
    p.add_argument("--prompt", required=True, help="text to continue ('-' reads stdin)")
    add_sampling_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from legollm.generation import stream_text

    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    loaded, device = load_from_args(args)
    out = sys.stdout
    pieces = stream_text(loaded.model, loaded.tokenizer, prompt, args.max_new_tokens, device=device,
                         **sampling_kwargs(args))  # fmt: skip
    first = next(pieces, "")  # bad arguments fail here, before anything is printed
    out.write(prompt + first)
    out.flush()
    for piece in pieces:
        out.write(piece)
        out.flush()
    out.write("\n")
    return 0
