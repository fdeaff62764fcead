#!/usr/bin/env bash
# README's first command on a machine without a GPU: `dlk-bench` (here with --cpu, so a
# GPU machine checks the same thing) must answer within 15 s on 2 cores. Wall time depends
# on whatever else the machine runs, so the check is on the CPU time the run used (user +
# system, all threads): at most 15 s of it cannot take longer than 15 s on 2 idle cores.
# Usage: bench_cpu_default.sh DLK_BENCH
set -u
bin=${1:?dlk-bench binary}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
TIMEFORMAT='%U %S %R'
t=$({ time "$bin" --cpu > "$out" 2>&1; } 2>&1)
rc=$?
read -r user sys wall <<< "$t"
cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.1f", u + s }')
if ! grep -q "variant runs timed, 0 failed" "$out"; then
  echo "FAIL: dlk-bench --cpu: $(tail -3 "$out")"
  exit 1
fi
if awk -v c="$cpu" 'BEGIN { exit !(c <= 15.0) }'; then
  echo "ok: dlk-bench --cpu used ${cpu} s of CPU (${wall} s wall here; README: at most 15 s on 2 cores)"
else
  echo "FAIL: dlk-bench --cpu used ${cpu} s of CPU, over the 15 s README promises on 2 cores"
  exit 1
fi
