#!/usr/bin/env python3
"""test_overload.py — overload: with limits.max_inflight and limits.max_connections set small and
a slow upstream (the mock's hdelay=), about twice the capacity in concurrent clients: the excess
is refused with 503 and Retry-After, the admitted requests complete, /healthz keeps answering,
and the server's resident memory stays under a cap; limits.max_rss_bytes refuses generations
while the process is over it. Timings go to bench/overload.sh, not here.
usage: test_overload.py GARDEFOU   (GF_MOCK_UPSTREAM names the mock upstream executable)"""
import json
import sys
import threading

import gwtest
from gwtest import check, chat, dial, read_response, report, request, start_gateway, start_mock

INFLIGHT = 4
CONNS = 12
RSS_CAP = 200 << 20  # the test's cap on the server's memory (ASan build included)


def vm_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return -1


def burst(port, n, model, hold=False):
    """n clients send one chat request each at the same moment. Returns the responses; with
    hold, the sockets of the connections are returned too (for the connection cap)."""
    out = [None] * n
    go = threading.Barrier(n)
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "x"}]}).encode()
    raw = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           b"Authorization: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" %
           (gwtest.AUTH.encode(), len(body)) + body)

    def one(i):
        try:
            s = dial(port, timeout=20)
        except OSError:
            go.wait()
            return
        go.wait()
        try:
            s.sendall(raw)
        except OSError:
            pass
        out[i] = read_response(s)
        s.close()

    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def test_inflight(g):
    # 2x capacity of slow generations: INFLIGHT admitted, the rest refused at once
    rs = burst(g.port, 2 * INFLIGHT, "hdelay=1500")
    ok = [r for r in rs if r is not None and r.status == 200]
    refused = [r for r in rs if r is not None and r.status == 503]
    check(len(ok) + len(refused) == 2 * INFLIGHT,
          "every request answered 200 or 503: %r" % [r.status if r else None for r in rs])
    check(len(ok) >= INFLIGHT, "the admitted ones complete (%d)" % len(ok))
    check(len(refused) >= 1, "the excess is refused (%d)" % len(refused))
    for r in refused:
        check(r.headers.get("retry-after") == "1", "503 carries Retry-After")
        j = r.json() or {}
        check("max_inflight" in (j.get("error") or {}).get("message", ""),
              "the 503 names limits.max_inflight: %s" % r.text()[:200])
    # after the burst everything is admitted again
    check(chat(g.port).status == 200, "served again after the burst")
    t = request(g.port, "GET", "/metrics").text()
    check("gardefou_admission_refused_total %d\n" % len(refused) in t,
          "refusals counted in /metrics")


def test_health_during_overload(g):
    # while the generation slots are all taken, health checks and metrics still answer
    res = {}
    th = threading.Thread(target=lambda: res.update(rs=burst(g.port, INFLIGHT, "hdelay=1500")))
    th.start()
    seen_full = False
    for _ in range(200):
        t = request(g.port, "GET", "/metrics").text()
        if "gardefou_inflight_requests %d\n" % (INFLIGHT + 1) in t:
            seen_full = True
            break
    check(seen_full, "all slots taken")
    check(request(g.port, "GET", "/healthz").status == 200, "healthz during overload")
    r = chat(g.port)
    check(r.status == 503 and r.headers.get("retry-after") == "1", "chat refused while full")
    th.join()
    check(all(r is not None and r.status == 200 for r in res["rs"]), "the slow ones completed")


def test_connections(g):
    # more connections than limits.max_connections: the excess gets 503 + Retry-After and a close
    n = 2 * CONNS
    rs = burst(g.port, n, "hdelay=1000")
    st = [r.status if r is not None else None for r in rs]
    ok = st.count(200)
    refused = [r for r in rs if r is not None and r.status == 503]
    check(ok + len(refused) == n, "every connection answered 200 or 503: %r" % st)
    check(ok >= 1 and len(refused) >= 1, "some served, some refused: %r" % st)
    check(all(r.headers.get("retry-after") == "1" for r in refused), "Retry-After on 503s")


def test_memory_cap(gardefou, mock):
    g = start_gateway(gardefou, ["http://127.0.0.1:%d" % mock.port],
                      ["limits.max_rss_bytes=1048576"])
    try:
        r = chat(g.port)
        check(r.status == 503 and r.headers.get("retry-after") == "1",
              "over limits.max_rss_bytes: 503 (%d)" % r.status)
        check("max_rss_bytes" in r.text(), "the 503 names the key")
        check(request(g.port, "GET", "/healthz").status == 200, "healthz still answers")
    finally:
        g.stop()
    g = start_gateway(gardefou, ["http://127.0.0.1:%d" % mock.port],
                      ["limits.max_rss_bytes=1099511627776"])
    try:
        check(chat(g.port).status == 200, "under the cap: served")
    finally:
        g.stop()


def main():
    gardefou = sys.argv[1]
    mock = start_mock()
    settings = ["limits.max_inflight=%d" % INFLIGHT, "limits.max_connections=%d" % CONNS,
                "upstream.request_timeout_ms=20000"]
    g = start_gateway(gardefou, ["http://127.0.0.1:%d" % mock.port], settings)
    try:
        rss0 = vm_rss(g.p.pid)
        test_inflight(g)
        test_health_during_overload(g)
        test_connections(g)
        rss1 = vm_rss(g.p.pid)
        check(0 < rss1 < RSS_CAP, "VmRSS %d MB < %d MB" % (rss1 >> 20, RSS_CAP >> 20))
        print("VmRSS %.1f MB before, %.1f MB after the overload" % (rss0 / 2**20, rss1 / 2**20))
        test_memory_cap(gardefou, mock)
    finally:
        rc = g.stop()
        check(rc == 0, "serve exits 0 on SIGTERM (got %r)" % rc)
        mock.stop()
        err = g.err_text()
        check("ERROR: AddressSanitizer" not in err and "runtime error" not in err,
              "no sanitizer report:\n" + err[-3000:])
    return report()


if __name__ == "__main__":
    sys.exit(main())
