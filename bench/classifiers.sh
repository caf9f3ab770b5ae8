#!/usr/bin/env bash
# classifiers.sh — scoring speed of the trained moderation classifier on one core: texts/s and
# microseconds per 1 KB text, single calls, batches of 32 and single calls on canonical text
# (target < 100 us per 1 KB text; under 20 us is what the policy chain needs for 50 MB/s).
# Usage: bench/classifiers.sh [MODEL.gguf] [ROUNDS]. Builds the release tree ($BUILD or build).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release -Dtests=false >/dev/null
ninja -C "$BUILD" bench/bench_clf >/dev/null
taskset -c 0 "$BUILD/bench/bench_clf" "$@" 2>/dev/null || "$BUILD/bench/bench_clf" "$@"
