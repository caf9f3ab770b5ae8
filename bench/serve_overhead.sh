#!/usr/bin/env bash
# serve_overhead.sh — the time a chat completion spends outside the model through
# `gardefou serve --model` (issue #3: llama.cpp's server 0.33-0.41 ms p50, target < 0.1 ms).
# stories260K (../shared/models), chat with max_tokens 1 (one prompt batch and one sampled
# token), sequential requests on one keep-alive connection. Per request: client latency minus
# the engine's compute time from the gateway's Server-Timing header (bench/serve_overhead.py).
# Rows: "bare" (a policy without rules, audit.durability=none: JSON, template, tokenizer,
# engine hand-off, reply) and "default" (the built-in policy and fsync audit, for reference).
# Knobs: BUILD (release build dir, default build-rel), N (requests, default 500), ROWS.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-rel}
N=${N:-500}
ROWS=${ROWS:-bare default}
MODEL=../shared/models/stories260K.gguf
[ -f "$MODEL" ] || { echo "serve_overhead: $MODEL is absent" >&2; exit 0; }
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release >/dev/null
ninja -C "$BUILD" gateway/gardefou >/dev/null
tmp=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
wait_line() {  # file pattern
  for _ in $(seq 400); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "timeout waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) (figures are per request, in ms; N=$N)"
printf "%-8s %10s %10s %12s %16s %11s %10s\n" row latency engine "outside p50" "outside p10-p90" \
  "server p50" health
for row in $ROWS; do
  args=(--set model.path="$MODEL" --set model.threads=1)
  [ "$row" = bare ] && args+=(--policy examples/policy-none.json --set audit.durability=none)
  "$BUILD/gateway/gardefou" serve --listen 127.0.0.1:0 --data-dir "$tmp/$row" --log-level error \
    "${args[@]}" >"$tmp/$row.out" 2>"$tmp/$row.err" &
  pid=$!
  wait_line "$tmp/$row.out" 'admin API on'
  port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/$row.out")
  admin=$(sed -n 's/.*admin API on \(http[^ ]*\).*/\1/p' "$tmp/$row.out")
  key=$("$BUILD/gateway/gardefou" keys create --server "$admin" --data-dir "$tmp/$row" --name bench)
  out=$(python3 bench/serve_overhead.py "$port" "$key" "$N" 1)
  get() { echo "$out" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
  printf "%-8s %10.3f %10.3f %12.3f %7.3f-%-8.3f %11.3f %10.3f\n" "$row" "$(get latency_p50)" \
    "$(get engine_p50)" "$(get outside_p50)" "$(get outside_p10)" "$(get outside_p90)" \
    "$(get server_p50)" "$(get health_p50)"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
done
echo "outside = client latency - Server-Timing engine duration (medians of per-request values);"
echo "server = Server-Timing gateway - engine: inside gardefou, from the parsed request to the reply."
echo "health = GET /healthz on the same connection: the bare round trip, Python client included."
echo "llama.cpp's server (llamacpp-server-baseline.md): 0.33-0.41 ms outside the model, p50."
