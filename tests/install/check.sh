#!/usr/bin/env bash
# Install dlk from BUILD into a temporary prefix, then build and run a consumer project
# with find_package(dlk) (shared and static) and one with pkg-config.
# Usage: check.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src/tests/install" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/consumer" >/dev/null
LD_LIBRARY_PATH="$tmp/prefix/lib:${LD_LIBRARY_PATH:-}" "$tmp/consumer/consumer"
"$tmp/consumer/consumer_static"
if command -v pkg-config >/dev/null; then
  libdir=$(ls -d "$tmp"/prefix/lib*/pkgconfig | head -1)
  flags=$(PKG_CONFIG_PATH="$libdir" pkg-config --define-variable=prefix="$tmp/prefix" --cflags --libs dlk)
  cc "$src/tests/install/main.c" $flags -lm -o "$tmp/consumer_pc"
  LD_LIBRARY_PATH="$tmp/prefix/lib:$(dirname "$libdir"):${LD_LIBRARY_PATH:-}" "$tmp/consumer_pc"
else
  echo "pkg-config not found: pkg-config consumer skipped"
fi
