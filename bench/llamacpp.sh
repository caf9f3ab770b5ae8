#!/usr/bin/env bash
# llamacpp.sh — the embedded engine against llama.cpp built and run on THIS machine, same
# models, same script. ../shared/bench/llamacpp-baseline.md was measured on another CPU (a Zen 5;
# see docs/engine.md, "Which CPU"), so bench/engine.sh's ratios to it mix the two CPUs; this
# script gives ratios where only the engine differs.
#
# llama.cpp comes from the npm registry: the `node-llama-cpp` package ships the llama.cpp source
# of its release as a git bundle (llama/gitRelease.bundle). The script fetches that package
# (pinned version, checked against its SHA-1), clones the bundle and builds `llama-bench` with
# llama.cpp's default CPU configuration (Release, native, as in the baseline file) into
# $LLAMACPP_DIR (default /tmp/gf-llamacpp, reused by later runs). Nothing of it enters the
# repository.
#
# For each model (synthetic, made by `gardefou model synth` in $GF_BENCH_DIR as engine.sh does)
# and 1 and 2 threads it runs, alternately, llama-bench (pp128, tg64, its defaults otherwise)
# and bench_engine (GF_BENCH_PARTS=pp,tg), $GF_BENCH_ROUNDS rounds (default 3), and prints the
# medians and gardefou / llama.cpp. Wall-clock figures: run it on an idle machine.
# Knobs: BUILD (release build, default build), GF_BENCH_MODELS (default "s110-f32 s110-q8
# tl-q8 tl-q4"), GF_BENCH_THREADS (default "1 2"), LLAMACPP_DIR, NODE_LLAMA_CPP_VERSION.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
LLAMACPP_DIR=${LLAMACPP_DIR:-/tmp/gf-llamacpp}
NLC_VERSION=${NODE_LLAMA_CPP_VERSION:-3.22.1}
NLC_SHA1=e908932762f21939024263d58f1d6dc3e88b23e6  # node-llama-cpp-3.22.1.tgz
MODELS=${GF_BENCH_MODELS:-"s110-f32 s110-q8 tl-q8 tl-q4"}
THREADS=${GF_BENCH_THREADS:-"1 2"}
ROUNDS=${GF_BENCH_ROUNDS:-3}
DIR=${GF_BENCH_DIR:-$(mktemp -d /tmp/gf-engine-bench-XXXXXX)}
mkdir -p "$DIR"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# Without the tools or the registry there is nothing to compare with: say so and stop (exit 0,
# so that `make bench` goes on with the other scripts).
skip() { echo "llamacpp.sh: skipped: $*" >&2; exit 0; }
need() { command -v "$1" >/dev/null || skip "'$1' is needed ($2)"; }

LB=$LLAMACPP_DIR/build/bin/llama-bench
if [ ! -x "$LB" ]; then
  need npm "apt-get install npm, or Node.js with npm"
  need cmake "apt-get install cmake"
  need g++ "apt-get install g++"
  need ninja "apt-get install ninja-build"
  rm -rf "$LLAMACPP_DIR" && mkdir -p "$LLAMACPP_DIR/pkg"
  echo "fetching node-llama-cpp@$NLC_VERSION (llama.cpp source bundle) from the npm registry" >&2
  (cd "$LLAMACPP_DIR/pkg" && npm pack --silent "node-llama-cpp@$NLC_VERSION" >/dev/null) ||
    skip "npm could not fetch node-llama-cpp@$NLC_VERSION (no registry access?)"
  tgz=$LLAMACPP_DIR/pkg/node-llama-cpp-$NLC_VERSION.tgz
  if [ "$NLC_VERSION" = 3.22.1 ] && [ "$(sha1sum "$tgz" | cut -d' ' -f1)" != "$NLC_SHA1" ]; then
    echo "llamacpp.sh: $tgz does not have the expected SHA-1 $NLC_SHA1" >&2; exit 1
  fi
  tar -xzf "$tgz" -C "$LLAMACPP_DIR/pkg" package/llama/gitRelease.bundle \
    package/llama/llama.cpp.info.json
  git clone -q "$LLAMACPP_DIR/pkg/package/llama/gitRelease.bundle" "$LLAMACPP_DIR/src" 2>/dev/null
  cp "$LLAMACPP_DIR/pkg/package/llama/llama.cpp.info.json" "$LLAMACPP_DIR/"
  echo "building llama-bench (a few minutes on 2 cores)" >&2
  cmake -S "$LLAMACPP_DIR/src" -B "$LLAMACPP_DIR/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF >"$LLAMACPP_DIR/cmake.log" 2>&1 ||
    { tail -20 "$LLAMACPP_DIR/cmake.log" >&2; exit 1; }
  ninja -C "$LLAMACPP_DIR/build" llama-bench >"$LLAMACPP_DIR/build.log" 2>&1 ||
    { tail -20 "$LLAMACPP_DIR/build.log" >&2; exit 1; }
fi

"$LB" --help >/dev/null 2>&1 ||
  { echo "llamacpp.sh: $LB does not run; remove $LLAMACPP_DIR to rebuild it" >&2; exit 1; }

[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release -Dtests=false >/dev/null
ninja -C "$BUILD" bench/bench_engine gateway/gardefou >/dev/null
. bench/synth_models.sh

# llama-bench's CSV: one row per test; prints "pp tg" (tokens/s) for the row pair.
llama_run() {  # model threads
  "$LB" -m "$1" -p 128 -n 64 -t "$2" -r 1 -o csv 2>/dev/null | "$PY" -c '
import csv, sys
pp = tg = "nan"
for r in csv.DictReader(sys.stdin):
    if r["n_prompt"] == "128" and r["n_gen"] == "0": pp = r["avg_ts"]
    if r["n_prompt"] == "0" and r["n_gen"] == "64": tg = r["avg_ts"]
print(pp, tg)'
}
median() { tr ' ' '\n' | sort -g | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

info=$(sed -n 's/.*"tag": *"\([^"]*\)".*/\1/p' "$LLAMACPP_DIR/llama.cpp.info.json" 2>/dev/null || true)
echo "llama.cpp: release ${info:-unknown} (node-llama-cpp $NLC_VERSION), default CPU build"
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')," \
  "family $(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')" \
  "model $(grep -m1 '^model[[:space:]]*:' /proc/cpuinfo | cut -d: -f2 | tr -d ' ')"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $ROUNDS alternating rounds, medians (tokens/s)"
printf "%-9s %3s %10s %10s %7s %10s %10s %7s\n" model thr "pp128 gf" "pp128 lcpp" ratio \
  "tg64 gf" "tg64 lcpp" ratio
for m in $MODELS; do
  f=$(bench_model "$m")
  for t in $THREADS; do
    gpp=(); gtg=(); lpp=(); ltg=()
    for _ in $(seq "$ROUNDS"); do
      read -r p g <<<"$(llama_run "$f" "$t")"
      lpp+=("$p"); ltg+=("$g")
      out=$(GF_BENCH_PARTS=pp,tg "$BUILD/bench/bench_engine" "$f" "$t" 1)
      gpp+=("$(echo "$out" | sed -n 's/^pp128=//p')")
      gtg+=("$(echo "$out" | sed -n 's/^tg64=//p')")
    done
    a=$(echo "${gpp[*]}" | median); b=$(echo "${lpp[*]}" | median)
    c=$(echo "${gtg[*]}" | median); d=$(echo "${ltg[*]}" | median)
    awk -v m="$m" -v t="$t" -v a="$a" -v b="$b" -v c="$c" -v d="$d" 'BEGIN {
      printf "%-9s %3d %10.1f %10.1f %7.2f %10.1f %10.1f %7.2f\n", m, t, a, b, a / b, c, d, c / d }'
  done
done
echo "gf = gardefou's bench_engine, lcpp = llama-bench; ratio = gf / lcpp on this machine."
[ -z "${GF_BENCH_DIR:-}" ] && rm -rf "$DIR"
exit 0
