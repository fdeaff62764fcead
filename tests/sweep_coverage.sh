#!/usr/bin/env bash
# Every op that dlk_op_count lists has a sweep row in some family's test program.
# Usage: tests/sweep_coverage.sh TEST_CORE FAMILY_TEST...   (ctest passes every program
# registered with dlk_test(... SWEEP ...)). Prints the ops no program sweeps; exit 1 if any.
set -euo pipefail
core=$1
shift
ops=$("$core" --list-ops | sort -u)
covered=$(for t in "$@"; do "$t" --list-sweep-ops; done | sort -u)
missing=$(comm -23 <(echo "$ops") <(echo "$covered"))
if [ -n "$missing" ]; then
  echo "sweep_coverage: ops with no sweep row (add a row to the family's tests/test_<family>.c):" >&2
  echo "$missing" | sed 's/^/  /' >&2
  exit 1
fi
echo "sweep_coverage: all $(echo "$ops" | wc -l) ops have sweep rows in: $(for t in "$@"; do basename "$t"; done | tr '\n' ' ')"
