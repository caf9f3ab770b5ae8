#!/usr/bin/env bash
# gateway.sh — HTTP overhead of gardefou as a proxy. wrk on loopback against the mock upstream
# (a) directly, (b) through gardefou, (c) through nginx as a plain reverse proxy with a keepalive
# upstream pool, with the same payloads; prints requests/s, p50/p99 latency of each and the
# ratios b/a and b/c, for non-streamed and streamed chat completions.
# Gardefou runs in four setups, each with its API key check, metrics and an audit record per
# request:
#   gf-nosync   no filters (examples/policy-none.json: a policy without rules) and
#               audit.durability=none (the record is queued, the reply does not wait for disk;
#               nginx, with access_log off, writes nothing either). THE TARGET ROW.
#   gf-write    no filters, audit.durability=write (reply after the record's group write)
#   gf-fsync    no filters, audit.durability=fsync (the default: reply after the group fsync)
#   gf-default  everything default: fsync audit and the built-in policy (PII detectors and,
#               when models/ has one, the trained classifiers on every input), for reference
#   gf-curl     as gf-nosync, with upstream.client=curl: libcurl instead of gardefou's own
#               HTTP/1.1 client (docs/upstream.md), the cost of libcurl (not in the default ROWS)
# Target (issue #2, "with no filters"): gf-nosync >= 0.7x nginx's throughput, added p50
# (b - a) < 0.2 ms. The other rows show what durability and the default policy cost.
# At 16 connections a proxy slower than the mock queues requests, so its added p50 is mostly
# waiting, not work: a second table runs each path with LOWCONNS (default 1) connection, where
# the added p50 is the latency one request pays going through the proxy on an idle machine.
# Knobs: BUILD (release build dir, default build-bench), DURATION (s, default 5),
# CONNS (default 16), LOWCONNS (default 1; empty skips that table), ROWS (default "nosync write
# fsync default"), REPEAT (default 1: each table this many times, then the medians of the
# ratios; on a shared machine single runs move by a quarter). Installs wrk and nginx-light when missing (Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
DURATION=${DURATION:-5}
CONNS=${CONNS:-16}
LOWCONNS=${LOWCONNS-1}
REPEAT=${REPEAT:-1}
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

# start_gw NAME ARGS...: a gardefou in front of the mock and an API key for it (GWPORT, KEY)
start_gw() {
  local name=$1 admin
  shift
  "$BUILD/gateway/gardefou" serve --listen 127.0.0.1:0 --upstream "http://127.0.0.1:$A" \
    --data-dir "$tmp/$name" --log-level error "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pids+=($!)
  wait_line "$tmp/$name.out" 'admin API on'
  GWPORT=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/$name.out")
  admin=$(sed -n 's/.*admin API on \(http[^ ]*\).*/\1/p' "$tmp/$name.out")
  KEY=$("$BUILD/gateway/gardefou" keys create --server "$admin" --data-dir "$tmp/$name" \
    --name bench)
}
ROWS=${ROWS:-nosync write fsync default}
declare -A GW_PORT GW_KEY
for row in $ROWS; do
  case $row in
    nosync) start_gw "$row" --policy examples/policy-none.json --set audit.durability=none ;;
    write) start_gw "$row" --policy examples/policy-none.json --set audit.durability=write ;;
    fsync) start_gw "$row" --policy examples/policy-none.json ;;
    default) start_gw "$row" ;;
    curl) start_gw "$row" --policy examples/policy-none.json --set audit.durability=none \
            --set upstream.client=curl ;;
    *) echo "unknown row $row (nosync, write, fsync, default, curl)" >&2; exit 2 ;;
  esac
  GW_PORT[$row]=$GWPORT GW_KEY[$row]=$KEY
done

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

PLAIN='{"model":"mock-model","messages":[{"role":"user","content":"Hello there"}],"max_tokens":16}'
STREAM='{"model":"mock-model","messages":[{"role":"user","content":"Hello there"}],"max_tokens":16,"stream":true}'
write_lua() {  # file body key
  cat >"$1" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $3"
wrk.body = '$2'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.3f %.3f %d %d\n", summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout,
    summary.requests))
end
EOF
}
write_lua "$tmp/plain_none.lua" "$PLAIN" none
write_lua "$tmp/stream_none.lua" "$STREAM" none
for row in $ROWS; do
  write_lua "$tmp/plain_$row.lua" "$PLAIN" "${GW_KEY[$row]}"
  write_lua "$tmp/stream_$row.lua" "$STREAM" "${GW_KEY[$row]}"
done

run() {  # conns port lua -> "rps p50 p99 errors requests"
  wrk -t1 -c"$1" -d"${DURATION}s" -s "$3" "http://127.0.0.1:$2/v1/chat/completions" |
    sed -n 's/^RESULT //p'
}

# sanity: each path answers the same payload with 200
check() {  # port key
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/v1/chat/completions" \
    -H 'Content-Type: application/json' -H "Authorization: Bearer $2" -d "$PLAIN")
  [ "$code" = 200 ] || { echo "port $1 answered $code" >&2; exit 1; }
}
check "$A" none
check "$C" none
for row in $ROWS; do check "${GW_PORT[$row]}" "${GW_KEY[$row]}"; done

# table CONNS: every path for plain and streamed replies, then the ratios
table() {
  local conns=$1 kind name port lua rps p50 p99 errs
  echo
  echo "wrk -t1 -c$conns -d${DURATION}s on 127.0.0.1 ($(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))"
  printf '%-8s %-10s %10s %9s %9s %7s\n' reply path req/s p50_ms p99_ms errors
  for kind in plain stream; do
    declare -A R
    paths="direct nginx"
    for row in $ROWS; do paths="$paths gf-$row"; done
    for name in $paths; do
      case $name in
        direct) port=$A lua=$tmp/${kind}_none.lua ;;
        nginx) port=$C lua=$tmp/${kind}_none.lua ;;
        gf-*) port=${GW_PORT[${name#gf-}]} lua=$tmp/${kind}_${name#gf-}.lua ;;
      esac
      read -r rps p50 p99 errs _ < <(run "$conns" "$port" "$lua")
      R[$name]="$rps $p50 $p99"
      printf '%-8s %-10s %10s %9s %9s %7s\n' "$kind" "$name" "$rps" "$p50" "$p99" "$errs"
    done
    args=()
    for name in $paths; do args+=("$name" ${R[$name]}); done
    python3 - "$kind" "$conns" "$CONNS" "$tmp/ratios_$conns" "${args[@]}" <<'PY'
import sys
kind, conns, target_conns, log, rest = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
r = {rest[i]: list(map(float, rest[i + 1:i + 4])) for i in range(0, len(rest), 4)}
a, c = r["direct"], r["nginx"]
for name, g in r.items():
    if not name.startswith("gf-"):
        continue
    mark = " <- target row" if name == "gf-nosync" and conns == target_conns else ""
    print("%-8s %-10s b/a %.2f  b/c %.2f (target >= 0.70)  p50 added %.3f ms (target < 0.2; "
          "nginx adds %.3f ms)%s" % (kind, name, g[0] / a[0], g[0] / c[0], g[1] - a[1],
                                     c[1] - a[1], mark))
    with open(log, "a") as f:
        f.write("%s %s %.4f %.4f\n" % (kind, name, g[0] / c[0], g[1] - a[1]))
PY
    unset R
  done
}

# medians over the REPEAT runs of a table: b/c and the added p50 of each gardefou row
medians() {  # conns
  python3 - "$tmp/ratios_$1" "$1" "$REPEAT" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    kind, name, bc, added = line.split()
    rows.setdefault((kind, name), []).append((float(bc), float(added)))
print("\nmedians of %s runs at %s connection(s):" % (sys.argv[3], sys.argv[2]))
for (kind, name), v in rows.items():
    print("%-8s %-10s b/c %.2f (runs: %s)  p50 added %.3f ms" % (
        kind, name, statistics.median(x[0] for x in v), " ".join("%.2f" % x[0] for x in v),
        statistics.median(x[1] for x in v)))
PY
}

echo "target row: gf-nosync (no filters, audit.durability=none) at $CONNS connections"
for _ in $(seq "$REPEAT"); do table "$CONNS"; done
[ "$REPEAT" -gt 1 ] && medians "$CONNS"
if [ -n "$LOWCONNS" ]; then
  echo
  echo "unloaded latency: $LOWCONNS connection(s), one request at a time each; the added p50 is"
  echo "what the proxy itself costs a request (at $CONNS connections it includes queueing)"
  for _ in $(seq "$REPEAT"); do table "$LOWCONNS"; done
  [ "$REPEAT" -gt 1 ] && medians "$LOWCONNS"
fi
exit 0
