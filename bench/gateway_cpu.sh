#!/usr/bin/env bash
# gateway_cpu.sh — CPU time gardefou spends per proxied chat completion, which stays meaningful
# on a shared machine where wrk's req/s do not: wrk -c16 drives gardefou (no filters:
# examples/policy-none.json, audit.durability=none) in front of the mock upstream, and the
# utime+stime of gardefou's main (event loop) thread and of the whole process, read from /proc
# before and after, are divided by the requests served. The loop thread is the throughput limit:
# 1e6 / (main-thread us per request) is the most requests per second one core can give.
# Knobs: BUILD (release build dir, default build-bench), DURATION (s, default 5), RUNS
# (default 3; the median is printed), and gardefou arguments after the script's own (replace
# the defaults, e.g. `bash bench/gateway_cpu.sh --set audit.durability=fsync`).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
DURATION=${DURATION:-5}
RUNS=${RUNS:-3}
ARGS=("$@")
[ ${#ARGS[@]} -gt 0 ] || ARGS=(--policy examples/policy-none.json --set audit.durability=none)
command -v wrk >/dev/null || { echo "wrk is needed (apt-get install wrk)" >&2; exit 2; }
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release >/dev/null
ninja -C "$BUILD" gateway/gardefou tests/mock/mock_upstream >/dev/null

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
wait_line() {  # file pattern
  for _ in $(seq 400); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "timeout waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}

"$BUILD/tests/mock/mock_upstream" --port 0 --host 127.0.0.1 >"$tmp/mock.out" 2>/dev/null &
pids+=($!)
wait_line "$tmp/mock.out" '^port='
A=$(sed -n 's/^port=//p' "$tmp/mock.out")
"$BUILD/gateway/gardefou" serve --listen 127.0.0.1:0 --upstream "http://127.0.0.1:$A" \
  --data-dir "$tmp/d" --log-level error "${ARGS[@]}" >"$tmp/gw.out" 2>"$tmp/gw.err" &
GP=$!
pids+=($GP)
wait_line "$tmp/gw.out" 'admin API on'
P=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/gw.out")
admin=$(sed -n 's/.*admin API on \(http[^ ]*\).*/\1/p' "$tmp/gw.out")
KEY=$("$BUILD/gateway/gardefou" keys create --server "$admin" --data-dir "$tmp/d" --name bench)

write_lua() {  # file stream(true|false)
  cat >"$1" <<L
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $KEY"
wrk.body = '{"model":"mock-model","messages":[{"role":"user","content":"Hello there"}],"max_tokens":16,"stream":$2}'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout))
end
L
}
write_lua "$tmp/plain.lua" false
write_lua "$tmp/stream.lua" true
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "$1"; }

echo "gardefou ${ARGS[*]}; wrk -t1 -c16 -d${DURATION}s x $RUNS ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
for kind in plain stream; do
  wrk -t1 -c16 -d1s -s "$tmp/$kind.lua" "http://127.0.0.1:$P/v1/chat/completions" >/dev/null
  res=()
  for _ in $(seq "$RUNS"); do
    m0=$(ticks /proc/$GP/task/$GP/stat) p0=$(ticks /proc/$GP/stat)
    read -r n errs < <(wrk -t1 -c16 -d"${DURATION}s" -s "$tmp/$kind.lua" \
      "http://127.0.0.1:$P/v1/chat/completions" | sed -n 's/^RESULT //p')
    m1=$(ticks /proc/$GP/task/$GP/stat) p1=$(ticks /proc/$GP/stat)
    [ "$errs" = 0 ] || { echo "$kind: $errs errors" >&2; exit 1; }
    res+=("$(python3 -c "print(($m1-$m0)/$hz*1e6/$n, ($p1-$p0)/$hz*1e6/$n)")")
  done
  printf '%s\n' "${res[@]}" | python3 -c "
import sys, statistics
r = [list(map(float, l.split())) for l in sys.stdin if l.strip()]
m = statistics.median(x[0] for x in r); p = statistics.median(x[1] for x in r)
print('%-6s main thread %6.1f us/request (median of %d: %s), process %6.1f us/request, '
      'loop bound %.0f req/s' % ('$kind', m, len(r), ' '.join('%.1f' % x[0] for x in r), p, 1e6 / m))"
done
