#!/usr/bin/env bash
# The layering of host/ (arrows point down only), checked on the #include graph:
#   1. host/core includes no family and no vendor file (only core, kernels/core, dlk.h);
#   2. host/cublas and host/cudnn include only core and their own folder;
#   3. no include circle between host modules. A module is a .c file with the header of
#      the same name beside it (vocab.c + vocab.h); a family's <family>.h belongs to
#      <family>.c, so its row files (<family>_cpu.c, ...) point at the family, never back.
#   4. given a build folder, the same on the calls between the library's objects (nm):
#      no circle between modules once host/core counts as one (its files call each other
#      freely), leaving out the one upward reference by design, core's walk of
#      dlk_families (host/registry.c).
# Usage: tests/layering.sh [repo root [build folder]]; prints every violation, exit 1 if any.
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
build=${2:-}
cd "$root"

# Edges "from to" between files, resolved relative to the including file.
edges=$(
  find host -name '*.[ch]' | sort | while read -r f; do
    dir=$(dirname "$f")
    grep -E '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | sed -E 's/.*"([^"]+)".*/\1/' |
      while read -r inc; do
        if [ -e "$dir/$inc" ]; then
          t=$(realpath --relative-to=. "$dir/$inc")
        elif [ -e "include/$inc" ]; then
          t="include/$inc"
        else
          t="?$inc"
        fi
        echo "$f $t"
      done
  done
)

status=0
fail() {
  echo "layering: $*" >&2
  status=1
}

while read -r from to; do
  [ -n "$from" ] || continue
  case "$to" in \?*) fail "$from includes ${to#\?}, which is not a file of the repository" ;; esac
  case "$from" in
    host/core/*)
      case "$to" in
        host/core/* | kernels/core/* | kernels/common.h | include/dlk.h) ;;
        *) fail "$from (core) includes $to: core includes no family and no vendor file" ;;
      esac
      ;;
    host/cublas/* | host/cudnn/*)
      case "$to" in
        host/core/* | include/dlk.h | "$(dirname "$from")"/*) ;;
        *) fail "$from (vendor plumbing) includes $to" ;;
      esac
      ;;
  esac
done <<<"$edges"

# Module graph: strip the extension; a header stands for the .c of its name when there
# is one, else for itself.
module() {
  local f=$1 m=${1%.*}
  case "$f" in host/*) ;; *) echo "-"; return ;; esac
  echo "$m"
}
medges=$(while read -r from to; do
  [ -n "$from" ] || continue
  a=$(module "$from") b=$(module "$to")
  [ "$a" != "-" ] && [ "$b" != "-" ] && [ "$a" != "$b" ] && echo "$a $b"
done <<<"$edges" | sort -u)

# Depth-first search for a cycle in "from to" lines (awk: portable, no Python needed).
find_cycle() {
  awk '
  NF == 2 { adj[$1] = adj[$1] " " $2; nodes[$1] = 1; nodes[$2] = 1 }
  function dfs(u,    n, i, v, vs) {
    state[u] = 1; stack[++depth] = u
    n = split(adj[u], vs, " ")
    for (i = 1; i <= n; i++) {
      v = vs[i]
      if (state[v] == 1) {
        path = v
        for (j = depth; j >= 1 && stack[j] != v; j--) path = stack[j] " -> " path
        path = v " -> " path
        return 1
      }
      if (state[v] == 0 && dfs(v)) return 1
    }
    state[u] = 2; depth--
    return 0
  }
  END { for (u in nodes) if (state[u] == 0 && dfs(u)) { print path; exit } }'
}
cycle=$(echo "$medges" | find_cycle)
[ -z "$cycle" ] || fail "include circle: $cycle"

ncalls=0
objdir="$build/CMakeFiles/dlk_objects.dir"
if [ -n "$build" ] && [ -d "$objdir/host" ]; then
  syms=$(find "$objdir/host" -name '*.o' | sort | while read -r o; do
    m=${o#"$objdir"/}
    m=${m%.c.o}
    case "$m" in host/core/*) m=host/core ;; esac
    nm "$o" | awk -v m="$m" 'NF == 3 && $2 ~ /^[TDRBV]$/ { print "D", m, $3 } $1 == "U" { print "U", m, $2 }'
  done)
  cedges=$(echo "$syms" | awk '
    $1 == "D" { def[$3] = $2; next }
    $1 == "U" { n++; um[n] = $2; us[n] = $3 }
    END {
      for (i = 1; i <= n; i++) {
        s = us[i]
        if (!(s in def) || def[s] == um[i]) continue
        if (um[i] == "host/core" && s == "dlk_families") continue
        print um[i], def[s]
      }
    }' | sort -u)
  ncalls=$(echo "$cedges" | grep -c . || true)
  cycle=$(echo "$cedges" | find_cycle)
  [ -z "$cycle" ] || fail "call circle between objects: $cycle"
fi

[ $status -eq 0 ] && echo "layering: $(echo "$edges" | wc -l) includes in host/ and $ncalls module-to-module call edges: no circle, core and vendor folders clean"
exit $status
