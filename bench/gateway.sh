#!/usr/bin/env bash
# gateway.sh — HTTP overhead of gardefou as a proxy. wrk on loopback against the mock upstream
# (a) directly, (b) through gardefou, (c) through nginx as a plain reverse proxy with a keepalive
# upstream pool, with the same payloads; prints requests/s, p50/p99 latency of each and the
# ratios b/a and b/c, for non-streamed and streamed chat completions.
# Target: gardefou >= 0.7x nginx's throughput, added p50 (b - a) < 0.2 ms.
# Knobs: BUILD (release build dir, default build-bench), DURATION (s, default 5),
# CONNS (default 16). Installs wrk and nginx-light when missing (Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
DURATION=${DURATION:-5}
CONNS=${CONNS:-16}
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)

need=""
command -v wrk >/dev/null || need="$need wrk"
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need="$need nginx-light"
if [ -n "$need" ]; then
  echo "installing:$need"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

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

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_line() {  # file pattern
  for _ in $(seq 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "timeout waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}

"$BUILD/tests/mock/mock_upstream" --port 0 --host 127.0.0.1 >"$tmp/mock.out" 2>/dev/null &
pids+=($!)
wait_line "$tmp/mock.out" '^port='
A=$(sed -n 's/^port=//p' "$tmp/mock.out")

"$BUILD/gateway/gardefou" serve --listen 127.0.0.1:0 --upstream "http://127.0.0.1:$A" \
  --data-dir "$tmp/data" --log-level error >"$tmp/gw.out" 2>"$tmp/gw.err" &
pids+=($!)
wait_line "$tmp/gw.out" 'listening on'
B=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/gw.out")

C=$(free_port)
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
user root;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  upstream mock { server 127.0.0.1:$A; keepalive 64; }
  server {
    listen 127.0.0.1:$C;
    location / {
      proxy_pass http://mock;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
    }
  }
}
EOF
"$NGINX" -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' 2>"$tmp/nginx/stderr" &
pids+=($!)
for _ in $(seq 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$C) 2>/dev/null && break
  sleep 0.05
done

write_lua() {  # file body
  cat >"$1" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '$2'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.3f %.3f %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout,
    summary.requests))
end
EOF
}
write_lua "$tmp/plain.lua" '{"model":"mock-model","messages":[{"role":"user","content":"Hello there"}],"max_tokens":16}'
write_lua "$tmp/stream.lua" '{"model":"mock-model","messages":[{"role":"user","content":"Hello there"}],"max_tokens":16,"stream":true}'

run() {  # port lua -> "rps p50 p99 errors requests"
  wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$2" "http://127.0.0.1:$1/v1/chat/completions" |
    sed -n 's/^RESULT //p'
}

# sanity: each path answers the same payload with 200
for p in "$A" "$B" "$C"; do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p/v1/chat/completions" \
    -H 'Content-Type: application/json' \
    -d '{"model":"mock-model","messages":[{"role":"user","content":"Hello there"}]}')
  [ "$code" = 200 ] || { echo "port $p answered $code" >&2; exit 1; }
done

echo "wrk -t1 -c$CONNS -d${DURATION}s on 127.0.0.1; mock upstream :$A, gardefou :$B, nginx :$C"
printf '%-10s %-9s %10s %9s %9s %7s\n' reply path req/s p50_ms p99_ms errors
for kind in plain stream; do
  declare -A R
  for path in a b c; do
    case $path in a) port=$A ;; b) port=$B ;; c) port=$C ;; esac
    read -r rps p50 p99 errs n < <(run "$port" "$tmp/$kind.lua")
    R[$path]="$rps $p50 $p99"
    name=$(case $path in a) echo direct ;; b) echo gardefou ;; c) echo nginx ;; esac)
    printf '%-10s %-9s %10s %9s %9s %7s\n' "$kind" "$name" "$rps" "$p50" "$p99" "$errs"
  done
  read -r ra pa _ <<<"${R[a]}"
  read -r rb pb _ <<<"${R[b]}"
  read -r rc pc _ <<<"${R[c]}"
  python3 - "$kind" "$ra" "$rb" "$rc" "$pa" "$pb" "$pc" <<'EOF'
import sys
kind = sys.argv[1]
ra, rb, rc, pa, pb, pc = map(float, sys.argv[2:])
print("%-10s throughput b/a %.2f  b/c %.2f (target >= 0.70)   p50 added by gardefou %.3f ms "
      "(target < 0.2), by nginx %.3f ms" % (kind, rb / ra, rb / rc, pb - pa, pc - pa))
EOF
  unset R
done
