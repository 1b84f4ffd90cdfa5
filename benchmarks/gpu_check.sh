#!/usr/bin/env bash
# One-go GPU check for LegoLLM: needs only this repository, uv and one CUDA GPU; a few
# minutes in all. Run from anywhere:  bash benchmarks/gpu_check.sh   (--dry-run: tiny, on CPU)
#
# What it prints, one block per step (each step runs under a time limit, and a failed
# step prints FAILED and the script goes on to the next):
#   gpu:                         nvidia-smi's name, memory and driver; torch and CUDA versions
#   gpu_check train:             GPT-2 124M, bf16 autocast + torch.compile + flash SDPA
#                                (forced: an error if the flash kernel cannot run), batch
#                                16 x 1024: tokens/s, MFU against the GPU's bf16 peak, peak memory
#   gpu_check train (fsdp):      the same run with strategy: fsdp on this one GPU (torchrun,
#                                1 process): tokens/s, MFU, peak memory
#   gpu_check generate:          KV-cached decoding of GPT-2 124M in bf16, batch 1 and 8,
#                                compiled decode step: new tokens/s
#   bench_memory.py --device cuda: the four memory-saver variants' step peak and time
#   bench_serve.py:              the serving benchmark on CUDA, if this checkout has it
#   summary:                     each step's status and seconds
set -uo pipefail

cd "$(dirname "$0")/.."
DRY=""
[[ "${1:-}" == "--dry-run" ]] && DRY="--dry-run"
LIMIT="${GPU_CHECK_STEP_TIMEOUT:-300}"   # seconds per step
UV="$(command -v uv || echo 'python3 -m uv')"
SUMMARY=()

step() {  # step NAME COMMAND...: run it under the limit, record ok / FAILED and seconds
    local name="$1"; shift
    echo "== $name"
    local t0=$SECONDS
    if timeout "$LIMIT" "$@"; then
        SUMMARY+=("ok      $name ($((SECONDS - t0)) s)")
    else
        echo "FAILED: $name (exit $?)"
        SUMMARY+=("FAILED  $name ($((SECONDS - t0)) s)")
    fi
}

$UV sync --locked --quiet || { echo "uv sync failed"; exit 1; }
PY=(.venv/bin/python)

echo "== gpu"
if [[ -z "$DRY" ]]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
"${PY[@]}" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'available', torch.cuda.is_available())"

step "train (bf16, compile, flash SDPA)" "${PY[@]}" benchmarks/_gpu_check.py train $DRY
step "train (fsdp, 1 GPU)" .venv/bin/torchrun --standalone --nproc_per_node=1 \
    benchmarks/_gpu_check.py fsdp $DRY
step "generate" "${PY[@]}" benchmarks/_gpu_check.py generate $DRY
if [[ -z "$DRY" ]]; then
    step "bench_memory (cuda)" "${PY[@]}" benchmarks/bench_memory.py --device cuda \
        --precision bf16 --dim 1024 --layers 8 --heads 16 --kv-heads 4 --vocab 128256 \
        --batch-size 4 --block-size 2048 --chunk 2048
else
    step "bench_memory (smoke)" "${PY[@]}" benchmarks/bench_memory.py --smoke
fi
if [[ -f benchmarks/bench_serve.py ]]; then
    if "${PY[@]}" benchmarks/bench_serve.py --help 2>/dev/null | grep -q -- "--device"; then
        SERVE_ARGS=(--device "$([[ -z "$DRY" ]] && echo cuda || echo cpu)")
    else
        SERVE_ARGS=()
    fi
    [[ -n "$DRY" ]] && SERVE_ARGS+=(--smoke)
    step "bench_serve" "${PY[@]}" benchmarks/bench_serve.py "${SERVE_ARGS[@]}"
else
    echo "== bench_serve: not in this checkout, skipped"
fi

echo "== summary"
printf '%s\n' "${SUMMARY[@]}"
