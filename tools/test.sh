#!/usr/bin/env bash
# Installs what the project needs, builds it with warnings as errors, and runs every test:
#   1. the normal build: unit, CLI, fuzz-corpus and slow tests;
#   2. an install into a temporary prefix, and a program built against it with pkg-config;
#   3. a build with AddressSanitizer + UndefinedBehaviorSanitizer: every test not labelled slow;
#   4. a short libFuzzer run of every fuzz target (clang), from its seed corpus;
#   5. the optimised build of tools/demo.sh (-O3 warns about more), with warnings as errors.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
bash tools/setup.sh

echo "== build (warnings are errors)"
cmake -S . -B build -DHS_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

echo "== install and pkg-config"
prefix=$(mktemp -d)
cmake --install build --prefix "$prefix" >/dev/null
cat > "$prefix/use.c" <<'C'
#include <hswarm/runtime.h>
#include <stdio.h>
int main(void) {
  hs_runtime *rt;
  if (hs_runtime_create(NULL, &rt) != 0) return 1;
  hs_runtime_destroy(rt);
  puts("linked against the installed libhswarm");
  return 0;
}
C
PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$prefix/lib/x86_64-linux-gnu/pkgconfig" \
  sh -c 'cc -std=c11 "$1/use.c" -o "$1/use" $(pkg-config --cflags --libs --static hswarm)' _ "$prefix"
LD_LIBRARY_PATH="$prefix/lib:$prefix/lib/x86_64-linux-gnu" "$prefix/use"
"$prefix/bin/hswarm" run "$prefix/share/hswarm/examples/pingpong.lua" 3 --quiet
rm -rf "$prefix"

echo "== AddressSanitizer + UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -DHS_WERROR=ON -DHS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j"$jobs" -LE slow)

echo "== libFuzzer, ${HS_FUZZ_SECONDS:-20} s per target"
CC=clang cmake -S . -B build-fuzz -DHS_FUZZ=ON -DHS_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-fuzz -j"$jobs"
for target in build-fuzz/fuzz/fuzz_*; do
  case "$target" in *_replay) continue ;; esac
  name=$(basename "$target")
  work=$(mktemp -d)
  cp fuzz/corpus/"$name"/* "$work"/
  "$target" -max_total_time="${HS_FUZZ_SECONDS:-20}" -rss_limit_mb=2048 "$work" 2>&1 | tail -2
  rm -rf "$work"
done
echo "== Release build (warnings are errors)"
cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release -DHS_WERROR=ON -DHS_TESTS=OFF >/dev/null
cmake --build build-release -j"$jobs"
build-release/hswarm run examples/pingpong.lua 3 --quiet
echo "== all tests passed"
