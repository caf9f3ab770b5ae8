#!/bin/sh
# upstream_nagle.sh — the delayed-ACK stall against a Nagle upstream (llama.cpp server's write
# pattern, reproduced by the mock upstream), with the upstream engine's TCP_QUICKACK workaround
# off and on, and against a TCP_NODELAY upstream for reference. Prints the medians, the number of
# stalled requests and the ratio. Usage: bench/upstream_nagle.sh [BUILD_DIR] [N]
# BUILD_DIR (default build-bench) is set up as a release build with the tests (for the mock).
set -e
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build-bench}
n=${2:-50}
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" "$here" --buildtype=release -Dtests=true >/dev/null
fi
ninja -C "$build" bench/bench_upstream_nagle tests/mock/mock_upstream >/dev/null
GF_MOCK_UPSTREAM="$build/tests/mock/mock_upstream" exec "$build/bench/bench_upstream_nagle" "$n"
