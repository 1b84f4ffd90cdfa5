"""Peak memory of load_pretrained for a GPT-2 checkpoint vs its size on disk.

A random GPT2LMHeadModel is saved by transformers into a temp dir; each loader
runs in a fresh subprocess and reports peak RSS (VmHWM, reset after the
imports) minus the RSS after imports, so only the load itself is counted. Target: <= 1.5x the file size.

    flock /tmp/legollm-bench.lock uv run python benchmarks/bench_load_memory.py --n-layer 12
    uv run python benchmarks/bench_load_memory.py --smoke    # a 1-layer, 64-wide GPT-2
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from _smoke import parse_args

CHILD = r"""
import sys, torch
torch.set_num_threads(2)
which, path = sys.argv[1], sys.argv[2]
if which == "ours":
    from legollm.models import load_pretrained
else:
    from transformers import GPT2LMHeadModel
def kib(field):  # VmRSS / VmHWM from /proc, in KiB
    return int(next(l for l in open("/proc/self/status") if l.startswith(field)).split()[1])
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
base = kib("VmRSS")
model = load_pretrained(path) if which == "ours" else GPT2LMHeadModel.from_pretrained(path)
print((kib("VmHWM") - base) * 1024)
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-layer", type=int, default=12, help="12 = GPT-2 124M")
    ap.add_argument("--n-embd", type=int, default=768)
    ap.add_argument("--n-head", type=int, default=12)
    args = parse_args(ap, dict(n_layer=1, n_embd=64, n_head=2))
    from transformers import GPT2Config, GPT2LMHeadModel

    peaks = {}
    with tempfile.TemporaryDirectory() as d:
        shape = dict(n_layer=args.n_layer, n_embd=args.n_embd, n_head=args.n_head)
        GPT2LMHeadModel(GPT2Config(**shape)).save_pretrained(d)
        disk = sum(p.stat().st_size for p in Path(d).glob("*.safetensors"))
        print(f"checkpoint on disk: {disk / 2**20:.0f} MiB")
        for which in ("ours", "transformers"):
            out = subprocess.run(
                [sys.executable, "-c", CHILD, which, d], capture_output=True, text=True
            )
            if out.returncode:
                sys.exit(out.stderr)
            peaks[which] = peak = int(out.stdout.strip().splitlines()[-1])
            print(f"{which:>12}: peak +{peak / 2**20:.0f} MiB = {peak / disk:.2f}x disk")
    print(f"ratio ours / file size: {peaks['ours'] / disk:.2f}x (target <= 1.5x); "
          f"ours / transformers: {peaks['ours'] / max(peaks['transformers'], 1):.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
