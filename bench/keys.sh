#!/usr/bin/env bash
# keys.sh — key check + rate-limit decision per request, in microseconds (target < 2 us).
# Builds the release tree (build/ or $BUILD) if needed and runs bench_keys.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release -Dtests=false >/dev/null
ninja -C "$BUILD" bench/bench_keys >/dev/null
"$BUILD/bench/bench_keys"
