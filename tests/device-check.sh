#!/usr/bin/env bash
# The whole GPU check in one go, for a machine with an NVIDIA GPU (the device tool's
# H100/H200: about 15 minutes of device time in all, the command limited to ~540 s):
#   configure for the GPU present only (90a on Hopper), build on every core, dlk-info, the
#   first-run wgmma check and test_core --gpu, then test_nn, test_glove, test_attention,
#   test_graph, test_conv, test_cnnops and test_rnn --gpu side by side, then compute-sanitizer
#   memcheck and racecheck on the quick subsets (DLK_TEST_QUICK=1) side by side with the
#   remaining ctest cases, then (alone on the GPU) dlk-bench --quick (nn, glove, attention,
#   conv, rnn, core) and bench/compare_torch.py --quick.
# Usage: tests/device-check.sh OUTDIR [BUILDDIR]
#   DLK_CHECK_BUDGET=S   seconds from the start after which no stage starts and every
#                        running one is cut (default 480: leaves ~60 s under a 540 s limit)
#   DLK_CHECK_STAGES=RE  run only the stages whose name matches the extended regex RE, e.g.
#                        'bench|torch' for a second call that only times (configure and
#                        build always run). Names: dlk-info gemm_sm90_check test_core_gpu
#                        test_nn_gpu test_glove_gpu test_attention_gpu test_graph_gpu
#                        test_conv_gpu test_cnnops_gpu test_rnn_gpu ctest-rest
#                        memcheck:test_nn (and the like) racecheck:test_nn bench-nn
#                        compare_torch bench-glove bench-attention bench-conv bench-rnn
#                        bench-core
# Every stage has its own time limit (cut to what is left of the budget) and log; a failing
# or hanging stage does not stop the others. summary.txt gets one line per stage as it ends
# and a digest (check counts, first FAIL lines, sanitizer summaries) at the end, also
# printed last on stdout. At most 8 files land in OUTDIR (the device tool brings back 8):
# summary.txt build.log tests.log sanitizer.log info.txt bench.txt bench-nn.json
# bench-glove.json. The SVG is made afterwards on any machine:
#   dlk-bench --from-json bench-nn.json --plot bench-nn.svg
# Exit status: 0 when every stage passed or was skipped for a stated reason, else 1.
set -u
set -o pipefail
out=${1:?usage: tests/device-check.sh OUTDIR [BUILDDIR]}
mkdir -p "$out" && out=$(cd "$out" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src" || exit 1
build=${2:-build-device}
case "$build" in /*) ;; *) build="$src/$build" ;; esac
mkdir -p "$build"
scratch="$build/device-check-logs" # per-stage logs of the side-by-side stages
rm -rf "$scratch" && mkdir -p "$scratch"
budget=${DLK_CHECK_BUDGET:-480}
only=${DLK_CHECK_STAGES:-}
export PYTHONUNBUFFERED=1
summary="$out/summary.txt"
: >"$summary"
for f in build.log tests.log sanitizer.log info.txt bench.txt; do : >"$out/$f"; done
failures=0

note() { echo "$*" | tee -a "$summary"; }

# stage NAME LIMIT LOG CMD...: runs CMD with its output appended to LOG, killed after
# LIMIT seconds (TERM, KILL 10 s later) or when the budget ends, whichever is first.
# One summary line: ok, skipped (exit 77: the program says why in its log), TIMEOUT or
# FAILED. Returns CMD's exit status (254 when not run).
stage() {
  local name=$1 limit=$2 log=$3
  shift 3
  if [ -n "$only" ] && [ "$name" != configure ] && [ "$name" != build ] && ! [[ $name =~ $only ]]; then
    return 254
  fi
  local rem=$((budget - SECONDS - 12))
  if [ "$rem" -lt 10 ]; then
    note "$(printf '%-22s %-9s %4ss  (budget of %ss spent)' "$name" "NOT RUN" 0 "$budget")"
    echo "=== $name: not run, budget spent ===" >>"$log"
    return 254
  fi
  [ "$limit" -gt "$rem" ] && limit=$rem
  echo "=== $name (limit ${limit}s): $* ===" >>"$log"
  local t0=$SECONDS
  timeout -k 10 "$limit" "$@" >>"$log" 2>&1 </dev/null
  local rc=$? verdict
  case $rc in
    0) verdict=ok ;;
    77) verdict=skipped ;;
    124 | 137) verdict=TIMEOUT ;;
    *) verdict=FAILED ;;
  esac
  echo "=== $name: rc=$rc ($verdict) after $((SECONDS - t0))s ===" >>"$log"
  note "$(printf '%-22s %-9s %4ss  rc=%-3s (log: %s)' "$name" "$verdict" "$((SECONDS - t0))" "$rc" "${shown_log:-$(basename "$log")}")"
  return $rc
}

# A stage whose program may be missing (a failed build): says so instead of running.
need() { # need NAME LOG FILE: 0 when FILE is an executable
  [ -x "$3" ] && return 0
  if [ -z "$only" ] || [[ $1 =~ $only ]]; then
    note "$(printf '%-22s %-9s %4ss  (%s was not built: see build.log)' "$1" "NOT RUN" 0 "${3#"$src"/}")"
    echo "=== $1: not run, $3 was not built ===" >>"$2"
  fi
  return 1
}
count() { # count RC: FAILED/TIMEOUT count against the exit status
  case $1 in 0 | 77 | 254) ;; *) failures=$((failures + 1)) ;; esac
}
# bg NAME LIMIT DEST CMD...: a stage in the background, with a log of its own that join_bg
# appends to DEST once every background stage has ended (stages that may share the GPU:
# correctness, not timing).
pids=()
joins=()
bg() {
  local name=$1 limit=$2 dest=$3
  shift 3
  local log="$scratch/${name//[^A-Za-z0-9_-]/_}.log"
  : >"$log"
  shown_log=$(basename "$dest") stage "$name" "$limit" "$log" "$@" &
  pids+=($!)
  joins+=("$log|$dest")
}
join_bg() {
  local p j
  for p in "${pids[@]}"; do
    wait "$p"
    count $?
  done
  for j in "${joins[@]}"; do cat "${j%%|*}" >>"${j#*|}"; done
  pids=()
  joins=()
}

# ---- the machine ----------------------------------------------------------------------------
# nvcc and compute-sanitizer may live outside PATH (/usr/local/cuda/bin).
for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
  if ! command -v nvcc >/dev/null 2>&1 && [ -x "$d/nvcc" ]; then PATH="$d:$PATH"; fi
done
sanitizer=$(command -v compute-sanitizer 2>/dev/null)
for f in /usr/local/cuda*/bin/compute-sanitizer /usr/local/cuda*/compute-sanitizer/compute-sanitizer \
  /opt/nvidia/*/compute-sanitizer /opt/nvidia/compute-sanitizer*/compute-sanitizer; do
  [ -z "$sanitizer" ] && [ -x "$f" ] && sanitizer=$f
done
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "unknown (no .git)")
note "dlk device check, $(date -u +%FT%TZ), commit $commit, budget ${budget}s${only:+, stages /$only/}"
gpu=$(timeout 30 nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -1)
cap=$(timeout 30 nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
if [ -z "$cap" ]; then # no nvidia-smi: ask PyTorch (a few seconds)
  cap=$(timeout 60 python3 -c 'import torch; print("%d%d" % torch.cuda.get_device_capability()) if torch.cuda.is_available() else None' 2>/dev/null | grep -E '^[0-9]+$')
  [ -n "$cap" ] && gpu="(from torch) compute capability $cap"
fi
note "gpu: ${gpu:-none found}"
case "$cap" in
  90) archs="90a" ;; # H100/H200: 90a also builds the wgmma/TMA gemm
  "") archs="90a" ;; # no GPU here: build what the GPU machines need anyway
  *) archs="$cap" ;;
esac
cudnn_dir=$(timeout 60 python3 -c 'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null)
note "architectures: $archs; cores: $(nproc); nvcc: $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*' || echo 'not found')"
note "cmake: $(cmake --version 2>/dev/null | head -1); ninja: $(ninja --version 2>/dev/null || echo 'not found (make)'); python3: $(command -v python3)"
cudnn_libs=$(cd "${cudnn_dir:-/nonexistent}/lib" 2>/dev/null && echo libcudnn.so*)
note "cuDNN pip package: ${cudnn_dir:-none} (lib: ${cudnn_libs:-none}; header: $([ -f "${cudnn_dir:-/nonexistent}/include/cudnn_version.h" ] && echo yes || echo no))"
note "compute-sanitizer: ${sanitizer:-not found}"
{
  echo "=== nvidia-smi ==="
  timeout 30 nvidia-smi 2>&1
  echo "=== nvcc --version ==="
  nvcc --version 2>&1
  echo "=== host compiler ==="
  cc --version 2>&1 | head -1
} >>"$out/info.txt"
note ""

# ---- configure and build ----------------------------------------------------------------------
# Warnings do not stop the build here (DLK_WERROR=OFF: CI keeps them errors); -lineinfo
# lets compute-sanitizer name the source line of a bad access.
gen=Ninja
command -v ninja >/dev/null 2>&1 || gen="Unix Makefiles"
if [ -f "$build/CMakeCache.txt" ] && ! grep -q "^CMAKE_GENERATOR:INTERNAL=$gen\$" "$build/CMakeCache.txt"; then
  rm -rf "$build/CMakeCache.txt" "$build/CMakeFiles"
fi
stage configure 180 "$out/build.log" cmake -S "$src" -B "$build" -G "$gen" -DCMAKE_BUILD_TYPE=Release \
  -DDLK_CUDA=ON "-DDLK_CUDA_ARCHS=$archs" -DDLK_WERROR=OFF -DCMAKE_CUDA_FLAGS=-lineinfo
count $?
grep -E '^-- dlk:|cuDNN|CUDNN' "$out/build.log" | sed 's/^/  /' | tee -a "$summary"
# Relink the programs, so that a failed build cannot leave an older binary to be tested.
rm -f "$build"/libdlk.* "$build"/tests/test_core "$build"/tests/test_nn "$build"/tests/test_glove \
  "$build"/tests/test_attention "$build"/tests/test_graph "$build"/tests/test_conv \
  "$build"/tests/test_cnnops "$build"/tests/test_rnn \
  "$build"/tests/gemm_sm90_check "$build"/tools/dlk-info "$build"/bench/dlk-bench
# -k 0 / -k: keep going, so one broken file leaves the other programs built and tested.
if [ "$gen" = Ninja ]; then keep=(-k 0); else keep=(-k); fi
stage build 360 "$out/build.log" cmake --build "$build" -j "$(nproc)" -- "${keep[@]}"
count $?
note "  build warnings: $(grep -c 'warning' "$out/build.log")"

# ---- what was built, and the GPU tests ----------------------------------------------------------
if need dlk-info "$out/info.txt" "$build/tools/dlk-info"; then
  stage dlk-info 60 "$out/info.txt" "$build/tools/dlk-info"
  count $?
fi
have_gpu=1
[ -z "$gpu" ] && have_gpu=0
# gpu_test fg|bg NAME LIMIT PROGRAM ARGS...: a test program as ctest runs it (working
# directory tests/, DLK_SOURCE_DIR set); fg waits for it, bg runs it beside the others.
cd "$src/tests" || exit 1
gpu_test() {
  local mode=$1 name=$2 limit=$3 prog=$4
  shift 4
  need "$name" "$out/tests.log" "$prog" || return 0
  if [ "$mode" = bg ]; then
    bg "$name" "$limit" "$out/tests.log" env DLK_SOURCE_DIR="$src" "$prog" "$@"
    return 0
  fi
  stage "$name" "$limit" "$out/tests.log" env DLK_SOURCE_DIR="$src" "$prog" "$@"
  local rc=$?
  count $rc
  [ $rc = 77 ] && [ $have_gpu = 1 ] && note "  ^ skipped although a GPU is present: see tests.log"
  return 0
}
# The first-run wgmma check alone first (its log is the one to read if variant 4 is
# wrong), then the family programs side by side (separate processes: a fault in one
# cannot touch the other).
gpu_test fg gemm_sm90_check 90 "$build/tests/gemm_sm90_check"
gpu_test fg test_core_gpu 60 "$build/tests/test_core" --gpu
gpu_test bg test_nn_gpu 150 "$build/tests/test_nn" --gpu
gpu_test bg test_glove_gpu 150 "$build/tests/test_glove" --gpu
gpu_test bg test_attention_gpu 150 "$build/tests/test_attention" --gpu
# The cuDNN graph helper's plans against loops (softmax rows 10, the SDPA node): the first
# place a cuDNN plan builds and runs, so the log to read when variant 10 misbehaves.
gpu_test bg test_graph_gpu 120 "$build/tests/test_graph" --gpu
gpu_test bg test_conv_gpu 150 "$build/tests/test_conv" --gpu
gpu_test bg test_cnnops_gpu 150 "$build/tests/test_cnnops" --gpu
gpu_test bg test_rnn_gpu 150 "$build/tests/test_rnn" --gpu
join_bg

# ---- compute-sanitizer on the quick subsets, and the rest of ctest, side by side ------------
# DLK_TEST_QUICK=1: few shapes. The CPU ctest cases run beside them (the example picks
# the GPU by default); install_consumer is CI's.
if [ -f "$build/CTestTestfile.cmake" ]; then
  bg ctest-rest 90 "$out/tests.log" ctest --test-dir "$build" -LE gpu -E install_consumer \
    -j 4 --output-on-failure
fi
if [ $have_gpu = 0 ]; then
  note "$(printf '%-22s %-9s' sanitizer 'skipped (no GPU)')"
elif [ -z "$sanitizer" ]; then
  note "$(printf '%-22s %-9s' sanitizer 'NOT RUN (compute-sanitizer not found)')"
else
  for r in "memcheck test_core 60" "memcheck test_nn 90" "memcheck test_glove 90" \
    "memcheck test_attention 90" "memcheck test_conv 90" "memcheck test_cnnops 90" \
    "memcheck test_rnn 90" "racecheck test_nn 75" "racecheck test_glove 75" \
    "racecheck test_attention 75" "racecheck test_conv 75" "racecheck test_rnn 75"; do
    set -- $r # "tool program limit"
    need "$1:$2" "$out/sanitizer.log" "$build/tests/$2" || continue
    bg "$1:$2" "$3" "$out/sanitizer.log" env DLK_SOURCE_DIR="$src" DLK_TEST_QUICK=1 \
      "$sanitizer" --tool "$1" --error-exitcode 99 --print-limit 30 "$build/tests/$2" --gpu
  done
fi
join_bg

cd "$src" || exit 1

# ---- benchmarks ---------------------------------------------------------------------------------
if [ $have_gpu = 0 ]; then
  note "$(printf '%-22s %-9s' benchmarks 'skipped (no GPU: dlk-bench and compare_torch.py time the GPU here)')"
elif need dlk-bench "$out/bench.txt" "$build/bench/dlk-bench"; then
  stage bench-nn 120 "$out/bench.txt" "$build/bench/dlk-bench" --quick --family nn --json "$out/bench-nn.json"
  count $?
  if [ -f "$build/libdlk.so" ]; then
    stage compare_torch 120 "$out/bench.txt" python3 "$src/bench/compare_torch.py" --lib "$build/libdlk.so" --quick
    count $?
  fi
  stage bench-glove 120 "$out/bench.txt" "$build/bench/dlk-bench" --quick --family glove --json "$out/bench-glove.json"
  count $?
  stage bench-attention 120 "$out/bench.txt" "$build/bench/dlk-bench" --quick --family attention
  count $?
  stage bench-conv 120 "$out/bench.txt" "$build/bench/dlk-bench" --quick --family conv
  count $?
  stage bench-rnn 120 "$out/bench.txt" "$build/bench/dlk-bench" --quick --family rnn
  count $?
  stage bench-core 45 "$out/bench.txt" "$build/bench/dlk-bench" --quick --family core
  count $?
fi

# ---- digest -----------------------------------------------------------------------------------
{
  echo ""
  echo "---- digest ----"
  echo "  build errors, the first 10:"
  grep -E 'error|^FAILED: ' "$out/build.log" | head -10 | cut -c1-300 | sed 's/^/    /'
  grep -hE '^(test_[a-z]+( --gpu)?|gemm_sm90_check): [0-9]+ checks' "$out/tests.log" | sed 's/^/  /'
  grep -hE '^  (wgmma .* TFLOP/s|timing failed)' "$out/tests.log" | sed 's/^/  /'
  grep -hE '(: skipped|cases skipped)$' "$out/tests.log" "$out/sanitizer.log" | sort -u | head -10 |
    cut -c1-300 | sed 's/^/  skip: /'
  grep -hE 'ERROR SUMMARY|RACECHECK SUMMARY|Device not supported|Target application returned' \
    "$out/sanitizer.log" 2>/dev/null | sed 's/^/  /'
  grep -hE 'variant runs timed|outputs agree|disagreement' "$out/bench.txt" | sed 's/^/  /'
  nfail=$(cat "$out/tests.log" "$out/sanitizer.log" | grep -c '^FAIL ')
  echo "  FAIL lines in tests.log + sanitizer.log: $nfail; the first 40:"
  cat "$out/tests.log" "$out/sanitizer.log" | grep -E '^FAIL ' | head -40 | cut -c1-400 | sed 's/^/    /'
  echo "  sanitizer reports, the first 20:"
  grep -hE '^========= (Invalid|Error|Race|Uninitialized|Barrier|Program hit)' "$out/sanitizer.log" 2>/dev/null |
    head -20 | cut -c1-300 | sed 's/^/    /'
  echo ""
  echo "done in ${SECONDS}s: $failures stage(s) failed or timed out"
} >>"$summary"
sed -n '/^---- digest ----$/,$p' "$summary"
[ "$failures" = 0 ]
