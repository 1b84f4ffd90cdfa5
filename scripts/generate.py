"""Generate text from a trained checkpoint: the seed's command line.

    python scripts/generate.py --checkpoint runs/demo/best.pt --prompt "The " --max-new-tokens 100
    python scripts/generate.py --checkpoint runs/small --prompt "ROMEO:" --strategy greedy
    python scripts/generate.py --checkpoint DIR --prompt "Hi" --temperature 0.9 --top-k 50 --top-p 0.95

--checkpoint also takes a Hugging Face model directory. The same as
``legollm generate CHECKPOINT --prompt TEXT ...``, which streams the same way.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from legollm.cli import generate as cli
    from legollm.cli.main import run

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", required=True, help="a .pt file, a run directory or HF dir")
    p.add_argument("--prompt", required=True)
    p.add_argument("--tokenizer", help="tokenizer file or directory (default: the model's own)")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"))
    p.add_argument("--quantize", choices=("int8",), help="int8 weight-only products")
    cli.add_sampling_args(p, max_new_tokens=100)
    args = p.parse_args(argv)
    args.model = args.checkpoint
    return run(cli.run, args)


if __name__ == "__main__":
    sys.exit(main())
