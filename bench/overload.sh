#!/usr/bin/env bash
# overload.sh — admission under overload. gardefou with limits.max_inflight=CAP in front of the
# mock upstream answering each chat after DELAY ms (so the capacity is CAP/DELAY requests per ms);
# 2*CAP closed-loop clients send chats for DURATION s. Prints how many were admitted and refused,
# p50/p99 latency of each, and the ratio refused p50 / admitted p50 (a refusal should cost a tiny
# fraction of a served request). Also the server's VmRSS at the end.
# Knobs: BUILD (release build dir, default build-bench), CAP (16), DELAY (200), DURATION (5).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-bench}
CAP=${CAP:-16}
DELAY=${DELAY:-200}
DURATION=${DURATION:-5}

[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" --buildtype=release >/dev/null
ninja -C "$BUILD" gateway/gardefou tests/mock/mock_upstream >/dev/null

GF="$BUILD/gateway/gardefou" MOCK="$BUILD/tests/mock/mock_upstream" CAP=$CAP DELAY=$DELAY \
DURATION=$DURATION python3 - <<'PY'
import json, os, shutil, socket, subprocess, tempfile, threading, time

cap, delay, duration = int(os.environ["CAP"]), int(os.environ["DELAY"]), float(os.environ["DURATION"])
work = tempfile.mkdtemp(prefix="gf-bench-overload-")

def start(argv, prefix):
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    while True:
        line = p.stdout.readline().decode()
        if not line:
            raise SystemExit("did not start: %r" % argv)
        if line.startswith(prefix):
            return p, int(line.rsplit(":", 1)[-1].split("=")[-1])

mock, mport = start([os.environ["MOCK"], "--port", "0"], "port=")
gw, port = start([os.environ["GF"], "serve", "--listen", "127.0.0.1:0", "--upstream",
                  "http://127.0.0.1:%d" % mport, "--data-dir", work, "--log-level", "error",
                  "--set", "keys.open_mode=true", "--set", "keys.admin_listen=off",
                  "--set", "limits.max_inflight=%d" % cap,
                  "--set", "upstream.health_interval_ms=0",
                  "--set", "upstream.models=mock-model"], "gardefou: listening on ")
body = json.dumps({"model": "hdelay=%d" % delay,
                   "messages": [{"role": "user", "content": "x"}]}).encode()
raw = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
       b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
lat = {}
lock = threading.Lock()
end = time.time() + duration

def client():
    while time.time() < end:
        t0 = time.perf_counter()
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(raw)
        data = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            data += c
        s.close()
        ms = (time.perf_counter() - t0) * 1000
        st = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
        with lock:
            lat.setdefault(st, []).append(ms)
        if st == 503:
            time.sleep(0.005)  # a polite client would honour Retry-After; this one hammers

ts = [threading.Thread(target=client) for _ in range(2 * cap)]
for t in ts: t.start()
for t in ts: t.join()
rss = 0
with open("/proc/%d/status" % gw.pid) as f:
    for line in f:
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
gw.terminate(); mock.terminate(); gw.wait(); mock.wait()
shutil.rmtree(work, ignore_errors=True)

def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")

ok, no = lat.get(200, []), lat.get(503, [])
other = {k: len(v) for k, v in lat.items() if k not in (200, 503)}
print("capacity %d in flight x %d ms upstream = %.0f req/s; %d clients for %.0f s" %
      (cap, delay, cap * 1000.0 / delay, 2 * cap, duration))
print("admitted %6d  %.0f req/s  p50 %7.2f ms  p99 %7.2f ms" %
      (len(ok), len(ok) / duration, pct(ok, .5), pct(ok, .99)))
print("refused  %6d  %.0f req/s  p50 %7.2f ms  p99 %7.2f ms  (503 + Retry-After)" %
      (len(no), len(no) / duration, pct(no, .5), pct(no, .99)))
if other:
    print("other statuses: %r" % other)
if ok and no:
    print("refused p50 / admitted p50 = %.4f" % (pct(no, .5) / pct(ok, .5)))
print("server VmRSS at the end: %.1f MB" % rss)
PY
