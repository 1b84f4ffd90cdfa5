"""Peak memory of load_pretrained(dtype=bfloat16) for a ~1B Llama saved in bf16 vs its size on disk.

A randomly initialised LlamaForCausalLM with Llama 3.2 1B's config (1.24B
parameters, 2.47 GB in bf16) is built in bf16 and saved by transformers into a
temp dir. Each loader then runs in a fresh subprocess and reports peak RSS
(VmHWM, reset after the imports) minus the RSS after imports, so only the load
itself is counted; then the RSS once every weight page has been read, which is
what using the model costs (transformers maps the file lazily, so its load peak
alone undercounts). A loader that went through fp32 on the way would need ~2x
the file; the target is <= 1.3x.

    flock /tmp/legollm-bench.lock uv run python benchmarks/bench_load_memory_bf16.py
    uv run python benchmarks/bench_load_memory_bf16.py --n-layer 2   # quick check, ~0.6 GB
    uv run python benchmarks/bench_load_memory_bf16.py --smoke       # 1 layer, 64 wide
"""

from __future__ import annotations

import argparse
import gc
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
    from transformers import LlamaForCausalLM
with torch.device("meta"):  # torch imports its meta-init machinery (~180 MB) on first use
    torch.nn.Embedding(2, 2)
def kib(field):  # VmRSS / VmHWM from /proc, in KiB
    return int(next(l for l in open("/proc/self/status") if l.startswith(field)).split()[1])
open("/proc/self/clear_refs", "w").write("5")  # reset the peak (VmHWM) to the current RSS
base = kib("VmRSS")
if which == "ours":
    model = load_pretrained(path, dtype=torch.bfloat16)
else:
    model = LlamaForCausalLM.from_pretrained(path, dtype=torch.bfloat16)
peak = kib("VmHWM") - base
with torch.no_grad():  # read one element per 4 KiB page: lazily mapped weights become resident
    for p in model.parameters():
        p.view(-1)[:: 4096 // p.element_size()].float().sum()
used = kib("VmRSS") - base
dtypes = {str(p.dtype) for p in model.parameters()}
n = sum(p.numel() for p in model.parameters())
print(n, ",".join(sorted(dtypes)), peak * 1024, used * 1024)
"""


# --tiny: the same architecture at a size that saves and loads in a blink
TINY = dict(n_layer=1, n_embd=64, n_head=2, n_kv_heads=1, head_dim=32, ffn_hidden=128,
            vocab_size=1000)  # fmt: skip


def save_checkpoint(directory: str, n_layer: int | None, tiny: bool = False) -> None:
    import torch
    from transformers import AutoConfig, LlamaForCausalLM

    from legollm.architectures import architecture_preset
    from legollm.architectures.llama3 import config_to_hf
    from legollm.models import ModelConfig

    cfg = architecture_preset("llama3:llama-3.2-1b")
    if tiny:
        cfg = ModelConfig.from_dict({**cfg.to_dict(), **TINY})
    if n_layer is not None:
        cfg.n_layer = n_layer
    hf = dict(config_to_hf(cfg))
    config = AutoConfig.for_model(hf.pop("model_type"), **hf)
    torch.manual_seed(0)
    model = LlamaForCausalLM._from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(directory)
    del model
    gc.collect()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-layer", type=int, default=None, help="default: Llama 3.2 1B's 16")
    ap.add_argument("--skip-transformers", action="store_true")
    ap.add_argument("--tiny", action="store_true", help="the architecture at 1 layer, 64 wide")
    args = parse_args(ap, dict(tiny=True))

    with tempfile.TemporaryDirectory() as d:
        save_checkpoint(d, args.n_layer, args.tiny)
        disk = sum(p.stat().st_size for p in Path(d).glob("*.safetensors"))
        print(f"checkpoint on disk (bf16): {disk / 2**20:,.0f} MiB")
        rows = []
        for which in ("ours", "transformers")[: 1 if args.skip_transformers else 2]:
            out = subprocess.run(
                [sys.executable, "-c", CHILD, which, d], capture_output=True, text=True
            )
            if out.returncode:
                sys.exit(out.stderr)
            n, dtypes, peak, used = out.stdout.strip().splitlines()[-1].split()
            rows.append((which, int(n), dtypes, int(peak), int(used)))
        print("\n| loader | parameters | dtype | peak RSS while loading | peak / disk "
              "| RSS with every weight read | / disk |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        for which, n, dtypes, peak, used in rows:
            print(f"| {which} | {n / 1e9:.2f}B | {dtypes} | {peak / 2**20:,.0f} MiB "
                  f"| {peak / disk:.2f}x | {used / 2**20:,.0f} MiB | {used / disk:.2f}x |")  # fmt: skip
        print(f"\nratio ours / file size: {rows[0][3] / disk:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
