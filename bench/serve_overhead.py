#!/usr/bin/env python3
"""serve_overhead.py — the time a chat completion spends outside the model in `gardefou serve
--model`: sequential requests on one keep-alive connection (TCP_NODELAY), each timed by the
client, minus the engine's own compute time for that request, which the gateway reports in the
`Server-Timing: engine;dur=MS, gateway;dur=MS` header (the forward passes and sampling of the
steps the request took part in; the whole request inside the gateway, from its parsed HTTP
request to its reply): "outside" is client latency - engine, "server" is gateway - engine (the
part spent in gardefou itself, without HTTP I/O and the client). Also times GET /healthz on
the same connection: the bare HTTP round trip, client included. Prints medians and p10-p90 in ms.
usage: serve_overhead.py PORT KEY [N] [MAX_TOKENS]"""
import json
import socket
import sys
import time


def read_reply(s, buf):
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdr = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdr[k.strip().lower()] = v.strip()
    n = int(hdr.get("content-length", "0"))
    while len(rest) < n:
        chunk = s.recv(65536)
        if not chunk:
            raise RuntimeError("connection closed")
        rest += chunk
    return status, hdr, rest[:n], rest[n:]


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(p * len(v)))]


def main():
    port, key = int(sys.argv[1]), sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    max_tokens = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    body = json.dumps({"model": "m", "max_tokens": max_tokens, "temperature": 0,
                       "messages": [{"role": "user",
                                     "content": "Once upon a time there was a little dog."}]})
    req = ("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n"
           "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
           % (key, len(body), body)).encode()
    health = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    buf = b""
    lat, eng, out, hl, srv = [], [], [], [], []
    for i in range(n + 20):  # the first 20 warm up
        t0 = time.perf_counter_ns()
        s.sendall(req)
        status, hdr, _, buf = read_reply(s, buf)
        t1 = time.perf_counter_ns()
        if status != 200:
            raise RuntimeError("status %d" % status)
        st = dict(m.strip().split(";dur=") for m in hdr.get("server-timing", "").split(",")
                  if ";dur=" in m)
        if "engine" not in st or "gateway" not in st:
            raise RuntimeError("no Server-Timing engine/gateway durations in the reply")
        e_ms, g_ms = float(st["engine"]), float(st["gateway"])
        t2 = time.perf_counter_ns()
        s.sendall(health)
        _, _, _, buf = read_reply(s, buf)
        t3 = time.perf_counter_ns()
        if i < 20:
            continue
        lat.append((t1 - t0) / 1e6)
        eng.append(e_ms)
        out.append((t1 - t0) / 1e6 - e_ms)
        srv.append(g_ms - e_ms)
        hl.append((t3 - t2) / 1e6)
    s.close()
    for name, v in (("latency", lat), ("engine", eng), ("outside", out), ("server", srv),
                    ("health", hl)):
        print("%s_p50=%.4f %s_p10=%.4f %s_p90=%.4f" % (name, pct(v, 0.5), name, pct(v, 0.1),
                                                     name, pct(v, 0.9)))


if __name__ == "__main__":
    main()
