"""``legollm export MODEL --format gguf|hf --output PATH``: a model as files other tools run.

MODEL is anything ``legollm generate`` accepts: a LegoLLM checkpoint (a .pt file or a
run directory; a LoRA run is merged first) or a Hugging Face model directory.

    legollm export runs/demo/run --format gguf --output demo.gguf            # llama.cpp
    legollm export runs/demo/run --format gguf --output demo-q8.gguf --dtype q8_0
    legollm export path/to/qwen3 --format hf --output exported/qwen3         # transformers

GGUF files carry the tokenizer (and an HF model's chat template), so
``llama-cli -m demo.gguf`` or Ollama run them as they are.
"""

from __future__ import annotations

import argparse

GGUF_DTYPES = ("f32", "f16", "q8_0")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a model as a GGUF file (llama.cpp, Ollama) or a Hugging Face directory",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="checkpoint (.pt or run dir) or Hugging Face model directory")
    p.add_argument("--format", required=True, choices=("gguf", "hf"), help="what to write")
    p.add_argument("--output", required=True, help="the .gguf file or the HF directory")
    p.add_argument(
        "--dtype",
        choices=GGUF_DTYPES,
        default=None,
        help="GGUF weight format (default f32); for hf, f32 or f16 (default: as loaded)",
    )
    p.add_argument("--tokenizer", help="tokenizer file or directory (default: the model's own)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from legollm.core.exceptions import ConfigError
    from legollm.export import export_gguf, export_hf
    from legollm.models.loading import load_model

    if args.format == "hf" and args.dtype == "q8_0":
        raise ConfigError("--dtype q8_0 is a GGUF format; an HF export takes f32 or f16")
    torch_dtype = {"f32": torch.float32, "f16": torch.float16}.get(args.dtype or "")
    loaded = load_model(args.model, args.tokenizer, device="cpu",
                        dtype=torch_dtype if args.format == "hf" else None)  # fmt: skip
    if args.format == "gguf":
        path = export_gguf(loaded, None, args.output, args.dtype or "f32", force=args.force)
        size = path.stat().st_size / 2**20
        print(f"wrote {path} ({size:.1f} MiB, {args.dtype or 'f32'})")
        return 0
    path, tokenizer_files = export_hf(loaded, args.output, force=args.force)
    print(f"wrote {path}/ (config.json, model.safetensors"
          + "".join(f", {n}" for n in tokenizer_files) + ")")  # fmt: skip
    if not tokenizer_files:
        print(f"note: the {loaded.tokenizer_spec.get('type')} tokenizer has no Hugging Face "
              "form; the directory holds the model only")  # fmt: skip
    return 0
