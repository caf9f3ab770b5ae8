#!/bin/sh
# bench/tokenizer.sh — tokenizer encode/decode speed on the Llama 2 vocabulary, GGUF open time,
# and dequantization throughput per type. Needs ../shared/models/ggml-vocab-llama-spm.gguf.
# Builds build-rel (or $BUILD) if needed. Figures are medians; the machine is shared, so noisy.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$here/build-rel}
vocab=${1:-$here/../shared/models/ggml-vocab-llama-spm.gguf}
if [ ! -f "$vocab" ]; then
  echo "bench/tokenizer.sh: $vocab is absent, skipped"
  exit 0
fi
[ -f "$build/build.ninja" ] || meson setup "$build" "$here" --buildtype=release >/dev/null
ninja -C "$build" bench/bench_tokenizer >/dev/null
"$build/bench/bench_tokenizer" "$vocab"
