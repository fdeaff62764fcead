#!/usr/bin/env bash
# The whole GPU check in one go, for a machine with an NVIDIA GPU:
#   configure for the GPU present, build, ctest (GPU tests included), compute-sanitizer
#   memcheck and racecheck on a small subset, dlk-info, dlk-bench --quick --json/--plot,
#   bench/compare_torch.py --quick.
# Usage: tests/device-check.sh OUTDIR [BUILDDIR]
# Every stage has its own time limit and log; a failing stage does not stop the others.
# At most 8 files land in OUTDIR (the device tool brings back 8): summary.txt, build.log,
# ctest.log, sanitizer.log, info.txt, bench.txt, bench.json, bench.svg.
set -u
out=${1:?usage: tests/device-check.sh OUTDIR [BUILDDIR]}
mkdir -p "$out" && out=$(cd "$out" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src" || exit 1
build=${2:-build-device}
case "$build" in /*) ;; *) build="$src/$build" ;; esac
summary="$out/summary.txt"
: >"$summary"
note() { echo "$*" | tee -a "$summary"; }
stage() { # stage NAME LIMIT LOG CMD...
  local name=$1 limit=$2 log=$3
  shift 3
  local t0=$SECONDS
  timeout --signal=KILL "$limit" "$@" >>"$log" 2>&1
  local rc=$?
  note "$(printf '%-12s rc=%-3s %4ss  (log: %s)' "$name" "$rc" "$((SECONDS - t0))" "$(basename "$log")")"
  return $rc
}

note "dlk device check, $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
gpu=$(nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
note "gpu: ${gpu:-none found}"
cc=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
case "$cc" in
  90) archs="90a" ;;   # H100/H200: 90a also unlocks wgmma/TMA kernels
  "") archs="90" ;;
  *) archs="$cc" ;;
esac
note "architectures: $archs; nvcc: $(nvcc --version 2>/dev/null | tail -1)"

# cuDNN on the GPU machines lives in the nvidia-cudnn-cu13 pip package: FindCUDNN asks
# python3 for it, and the rpath makes the tests find it.
stage configure 300 "$out/build.log" cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DDLK_CUDA=ON "-DDLK_CUDA_ARCHS=$archs"
stage build 420 "$out/build.log" cmake --build "$build" -j "$(nproc)"

stage ctest 420 "$out/ctest.log" ctest --test-dir "$build" --output-on-failure --timeout 300

# compute-sanitizer on the quick GPU subset of each family's test program
# (DLK_TEST_QUICK=1: few shapes), memcheck then racecheck.
: >"$out/sanitizer.log"
if command -v compute-sanitizer >/dev/null; then
  for t in test_core test_nn test_glove; do
    [ -x "$build/tests/$t" ] || continue
    for tool in memcheck racecheck; do
      echo "=== $tool $t --gpu ===" >>"$out/sanitizer.log"
      (cd tests && DLK_TEST_QUICK=1 DLK_SOURCE_DIR="$src" stage "$tool:$t" 240 "$out/sanitizer.log" \
        compute-sanitizer --tool "$tool" --error-exitcode 99 "$build/tests/$t" --gpu)
    done
  done
else
  note "compute-sanitizer: not found"
fi

stage dlk-info 60 "$out/info.txt" "$build/tools/dlk-info"
stage dlk-bench 420 "$out/bench.txt" "$build/bench/dlk-bench" --quick --json "$out/bench.json" \
  --plot "$out/bench.svg"
echo "=== compare_torch ===" >>"$out/bench.txt"
stage torch 300 "$out/bench.txt" python3 bench/compare_torch.py --lib "$build/libdlk.so" --quick
note "done in ${SECONDS}s"
