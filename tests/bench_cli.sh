#!/usr/bin/env bash
# dlk-bench's command line on the CPU: options that cannot work are refused before any
# case runs (no table printed), --dtype f64 selects the GloVe cases, and host-overhead
# rows (dispatch) give their time per call in a column of its own.
# Usage: bench_cli.sh DLK_BENCH
set -u
bin=${1:?dlk-bench binary}
work=$(mktemp -d "${TMPDIR:-/tmp}/dlk_bench_cli_XXXXXX")
trap 'rm -rf "$work"' EXIT
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }
# refused WHAT WANT ARGS...: a non-zero exit, WANT in the message, and no table.
refused() {
  local what=$1 want=$2
  shift 2
  "$bin" --cpu "$@" > "$work/out" 2> "$work/err"
  local rc=$?
  if [ $rc -eq 0 ]; then
    bad "$what: exit 0"
  elif ! grep -qF -- "$want" "$work/err"; then
    bad "$what: exit $rc, no \"$want\" in: $(head -c 300 "$work/err")"
  elif grep -q "^case " "$work/out"; then
    bad "$what: refused only after running cases"
  else
    ok "$what: $(head -1 "$work/err" | cut -c1-120)"
  fi
}
refused "--variant nosuch" "no such variant in the selected cases; known: " --variant nosuch
grep -qF "cpu_ref (0)" "$work/err" && ok "... and lists the known variants" || bad "no list: $(cat "$work/err")"
refused "--variant nosuch --family core" "known: strided_copy (1)" --variant nosuch --family core
refused "--json in a missing folder" "--json /nonexistent/x.json: cannot be written" --json /nonexistent/x.json --quick
refused "--plot in a missing folder" "--plot /nonexistent/x.svg: cannot be written" --plot /nonexistent/x.svg --quick
refused "--dtype f8" "--dtype wants f32, tf32, f16, bf16 or f64" --dtype f8
[ ! -e /nonexistent/x.json ] && ok "nothing written" || bad "/nonexistent/x.json exists"

"$bin" --cpu --dtype f64 --family glove --quick --runs 5 --variant cpu_ref > "$work/out" 2> "$work/err"
rc=$?
if [ $rc -eq 0 ] && grep -qE "^glove_epoch +V=[^ ]+ +f64 +0 cpu_ref" "$work/out"; then
  ok "--dtype f64 runs the GloVe cases: $(grep -c '^glove_' "$work/out") rows"
else
  bad "--dtype f64: exit $rc: $(tail -3 "$work/err") $(grep '^glove' "$work/out" | head -2)"
fi

"$bin" --cpu --family core --quick --runs 5 --json "$work/core.json" > "$work/out" 2> "$work/err" ||
  bad "--family core: $(tail -3 "$work/err")"
grep -q "^case .* time/call  *GFLOP/s  *GB/s" "$work/out" && ok "a time/call column" || bad "header: $(grep '^case' "$work/out")"
# dispatch: a time in time/call, "-" under GFLOP/s and GB/s (not "380.5 ns" and "/call").
row=$(grep "^dispatch " "$work/out")
if echo "$row" | grep -qE " [0-9.]+ (ns|us) +- +- " && ! echo "$row" | grep -q "/call"; then
  ok "dispatch row: $(echo "$row" | tr -s ' ' | cut -c1-100)"
else
  bad "dispatch row: $row"
fi
[ -s "$work/core.json" ] && ok "--json written" || bad "--json not written"
exit $fail
