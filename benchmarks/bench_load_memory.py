"""Peak memory of load_pretrained for a GPT-2 124M checkpoint vs its size on disk.

    uv run python benchmarks/bench_load_memory.py

A random GPT2LMHeadModel (124M) is saved by transformers into a temp dir; a fresh
Python process imports everything, records its peak RSS, loads the checkpoint with
``load_pretrained``, runs one token forward (so memory-mapped weights that were
never read are counted too) and records the peak again. The growth is what loading cost.
Transformers' own ``from_pretrained`` is measured the same way as the anchor.
Target: at most 1.5x the checkpoint's size on disk.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = """
import resource, sys, torch
torch.set_num_threads(2)
from legollm.models import load_pretrained
from transformers import GPT2LMHeadModel
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
if sys.argv[2] == "legollm":
    model = load_pretrained(sys.argv[1])
else:
    model = GPT2LMHeadModel.from_pretrained(sys.argv[1])
with torch.no_grad():  # touch every weight, so lazily mapped pages count too
    model(torch.zeros(1, 1, dtype=torch.long))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((peak - base) * 1024)
"""


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n-layer", type=int, default=12)
    args = p.parse_args()
    from transformers import GPT2Config, GPT2LMHeadModel

    with tempfile.TemporaryDirectory() as d:
        GPT2LMHeadModel(GPT2Config(n_layer=args.n_layer)).save_pretrained(d)
        disk = sum(f.stat().st_size for f in Path(d).glob("*.safetensors"))
        grow = {}
        for who in ("legollm", "transformers"):
            out = subprocess.run(
                [sys.executable, "-c", PROBE, d, who], capture_output=True, text=True, check=True
            )
            grow[who] = int(out.stdout.strip().splitlines()[-1])
    print(f"checkpoint on disk: {disk / 1e6:.0f} MB")
    for who, g in grow.items():
        print(f"  {who:12s} peak growth {g / 1e6:6.0f} MB = {g / disk:.2f}x disk")
    print(f"legollm vs target 1.5x: {'ok' if grow['legollm'] <= 1.5 * disk else 'MISSED'}")


if __name__ == "__main__":
    main()
