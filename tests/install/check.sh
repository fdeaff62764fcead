#!/usr/bin/env bash
# Install dlk from BUILD into a temporary prefix and use it as README's "Linking" says a
# user does, with nothing but the documented variables:
#  1. the programs (dlk-info, dlk-glove, dlk-bench) run from PREFIX/bin;
#  2. a CMake project finds the package (find_package(dlk)), shared and static;
#  3. pkg-config, after the prefix was moved (the .pc files are relocatable), with only
#     PKG_CONFIG_PATH: the flags name the moved prefix; a program linked with `dlk` runs
#     with -Wl,-rpath of its libdir or with LD_LIBRARY_PATH; a program linked with
#     `dlk-static` needs no libdlk.so (readelf) and runs without either.
# Usage: check.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
unset LD_LIBRARY_PATH
cmake --install "$build" --prefix "$tmp/prefix" > /dev/null

# 1. programs
if [ -x "$build/tools/dlk-glove" ]; then
  for p in dlk-info dlk-glove dlk-bench; do
    [ -x "$tmp/prefix/bin/$p" ] || fail "cmake --install did not install $p in PREFIX/bin"
  done
  "$tmp/prefix/bin/dlk-info" > "$tmp/info.txt" 2>&1 || fail "installed dlk-info: $(tail -3 "$tmp/info.txt")"
  "$tmp/prefix/bin/dlk-glove" --help > /dev/null || fail "installed dlk-glove --help"
  "$tmp/prefix/bin/dlk-bench" --cpu --list > /dev/null || fail "installed dlk-bench --list"
  echo "ok: dlk-info, dlk-glove, dlk-bench installed and run from PREFIX/bin"
fi

# 2. CMake
cmake -S "$src/tests/install" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$tmp/prefix" > /dev/null
cmake --build "$tmp/consumer" > /dev/null
"$tmp/consumer/consumer"
"$tmp/consumer/consumer_static"

# 3. pkg-config
if ! command -v pkg-config > /dev/null; then
  echo "pkg-config not found: pkg-config consumers skipped"
  exit 0
fi
mv "$tmp/prefix" "$tmp/moved"
pcdir=$(ls -d "$tmp"/moved/lib*/pkgconfig | head -1)
export PKG_CONFIG_PATH=$pcdir
for pc in dlk dlk-static; do
  flags=$(pkg-config --cflags --libs $pc)
  case "$flags" in
    *"$tmp/moved/"*include*) ;;
    *) fail "pkg-config --cflags --libs $pc does not follow the moved prefix: $flags" ;;
  esac
  case "$flags" in *"$tmp/prefix"* | *"-I/usr/local/include"*) fail "$pc names another prefix: $flags" ;; esac
done
libdir=$(pkg-config --variable=libdir dlk)
# shellcheck disable=SC2046
cc "$src/tests/install/main.c" $(pkg-config --cflags --libs dlk) -lm -Wl,-rpath,"$libdir" -o "$tmp/pc_rpath"
"$tmp/pc_rpath" || fail "linked with pkg-config dlk and -Wl,-rpath,LIBDIR: does not run"
# shellcheck disable=SC2046
cc "$src/tests/install/main.c" $(pkg-config --cflags --libs dlk) -lm -o "$tmp/pc_env"
if "$tmp/pc_env" > /dev/null 2>&1; then
  echo "note: libdlk.so found without LD_LIBRARY_PATH (the system's loader path holds a dlk)"
fi
LD_LIBRARY_PATH="$libdir" "$tmp/pc_env" || fail "linked with pkg-config dlk, run with LD_LIBRARY_PATH=LIBDIR: does not run"
# shellcheck disable=SC2046
cc "$src/tests/install/main.c" $(pkg-config --cflags --libs dlk-static) -lm -o "$tmp/pc_static"
if readelf -d "$tmp/pc_static" | grep -q "NEEDED.*libdlk"; then
  fail "linked with pkg-config dlk-static, it still needs libdlk.so: $(readelf -d "$tmp/pc_static" | grep NEEDED)"
fi
"$tmp/pc_static" || fail "linked with pkg-config dlk-static: does not run"
echo "ok: pkg-config dlk (-Wl,-rpath or LD_LIBRARY_PATH) and dlk-static (no libdlk.so needed), prefix moved"
