#!/usr/bin/env python3
"""test_slow.py — slow clients with slowhttptest (Debian package) against the real `gardefou
serve` with 1 s deadlines: slowloris (slow headers), slow body and slow read. Meanwhile a normal
client keeps being served, the server closes every slow connection (its own count of open
connections falls back while slowhttptest still holds them), and VmRSS stays under a cap.
usage: test_slow.py GARDEFOU [--long]   (GF_MOCK_UPSTREAM names the mock upstream executable;
--long scales connections and length by GF_LONG_BUDGET seconds)"""
import csv
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import gwtest
from gwtest import check, chat, report, request, skip, start_gateway, start_mock

DEADLINE_MS = 1000
RSS_CAP = 200 << 20


def find_slowhttptest():
    exe = shutil.which("slowhttptest")
    if exe:
        return exe
    if os.geteuid() != 0:
        skip("slowhttptest is not installed (apt-get install slowhttptest, or make deps)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", "install", "-y", "-qq", "slowhttptest"], env=env,
                       capture_output=True, timeout=300)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", "slowhttptest"], env=env,
                       capture_output=True, timeout=300)
    exe = shutil.which("slowhttptest")
    if not exe:
        skip("slowhttptest is not installed and apt-get could not install it")
    return exe


def vm_rss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return -1


def metric(port, name):
    m = re.search(r"^%s (\d+)$" % re.escape(name), request(port, "GET", "/metrics").text(), re.M)
    return int(m.group(1)) if m else -1


class Normal(threading.Thread):
    """A well-behaved client: a chat and a health check every 100 ms until stopped."""

    def __init__(self, port):
        super().__init__()
        self.port = port
        self.ok = self.bad = 0
        self.errors = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            for r in (chat(self.port), request(self.port, "GET", "/healthz")):
                if r.status == 200:
                    self.ok += 1
                else:
                    self.bad += 1
                    self.errors.append(r.status)
            time.sleep(0.1)


def attack(exe, g, mode, conns, length, work):
    """Runs slowhttptest in mode against g while a normal client is served; returns the CSV
    rows and the attack's stdout."""
    prefix = os.path.join(work, mode.strip("-"))
    base = [exe, mode, "-c", str(conns), "-r", str(conns), "-l", str(length),
            "-p", "3", "-g", "-o", prefix]
    url = "http://127.0.0.1:%d" % g.port
    if mode == "-H":
        argv = base + ["-i", "1", "-u", url + "/healthz"]
    elif mode == "-B":
        argv = base + ["-i", "1", "-s", "8192", "-u", url + "/v1/chat/completions"]
    else:  # slow read: pipelined requests, a tiny window, 32 bytes read every 3 s
        argv = base + ["-k", "10", "-n", "3", "-w", "10", "-y", "20", "-z", "32",
                       "-u", url + "/metrics"]
    normal = Normal(g.port)
    normal.start()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    rss_max = 0
    conns_late = []
    t0 = time.time()
    while p.poll() is None and time.time() - t0 < length + 30:
        rss_max = max(rss_max, vm_rss(g.p.pid))
        if time.time() - t0 > length - 1.5:
            conns_late.append(metric(g.port, "gardefou_open_connections"))
        time.sleep(0.25)
    if p.poll() is None:
        p.kill()
    out = p.communicate()[0].decode(errors="replace")
    normal.stop.set()
    normal.join()
    rows = []
    try:
        with open(prefix + ".csv") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        pass
    name = {"-H": "slowloris", "-B": "slow body", "-X": "slow read"}[mode]
    check(len(rows) >= 2, "%s: slowhttptest ran (%s)" % (name, out[-400:]))
    check(max((int(r.get("Connected") or 0) for r in rows), default=0) >= conns // 4,
          "%s: the slow connections were accepted" % name)
    check(all(int(r.get("Service Available") or 0) > 0 for r in rows),
          "%s: slowhttptest's own probe was served throughout" % name)
    check(normal.ok > 0 and normal.bad == 0, "%s: the normal client was served (%d ok, %d "
          "failed: %r)" % (name, normal.ok, normal.bad, normal.errors[:10]))
    check(0 < rss_max < RSS_CAP, "%s: VmRSS %.1f MB < %d MB" % (name, rss_max / 2**20,
                                                                RSS_CAP >> 20))
    if mode in ("-H", "-B"):
        # slowhttptest stops early once the server has closed every one of its connections
        check("No open connections left" in out and len(rows) <= length,
              "%s: the server closed every slow connection before the end (%s)" %
              (name, out[-300:]))
    else:
        # slow readers stay connected on their side (the server's FIN waits behind unread
        # data), but in the last second of the attack the server holds none of them: each
        # was dropped at the write/idle timeout
        check(conns_late and min(conns_late) <= 4,
              "%s: slow connections closed by the server (open at the end: %r)" %
              (name, conns_late))
    print("%s: normal client %d ok; VmRSS max %.1f MB; open connections at the end %r" %
          (name, normal.ok, rss_max / 2**20, conns_late[-3:]))
    return rows, out


def main():
    gardefou = sys.argv[1]
    long_run = "--long" in sys.argv[2:]
    exe = find_slowhttptest()
    budget = int(os.environ.get("GF_LONG_BUDGET", "5") or 5)
    conns, length = (100, 5) if not long_run else (min(500, 100 * max(1, budget // 5)),
                                                    max(8, budget))
    work = tempfile.mkdtemp(prefix="gf-slow-")
    mock = start_mock()
    settings = ["limits.header_timeout_ms=%d" % DEADLINE_MS,
                "limits.body_timeout_ms=%d" % DEADLINE_MS,
                "limits.write_timeout_ms=%d" % DEADLINE_MS,
                "limits.idle_timeout_ms=%d" % DEADLINE_MS,
                "limits.max_connections=%d" % (4 * conns)]
    g = start_gateway(gardefou, ["http://127.0.0.1:%d" % mock.port], settings)
    try:
        timed_out0 = metric(g.port, 'gardefou_connections_total{outcome="timed_out"}')
        rows, out = attack(exe, g, "-H", conns, length, work)
        t1 = metric(g.port, 'gardefou_connections_total{outcome="timed_out"}')
        check(t1 - timed_out0 >= conns, "slowloris: %d connections got 408 (want >= %d)" %
              (t1 - timed_out0, conns))
        rows, out = attack(exe, g, "-B", conns, length, work)
        t2 = metric(g.port, 'gardefou_connections_total{outcome="timed_out"}')
        check(t2 - t1 >= conns, "slow body: %d connections got 408 (want >= %d)" %
              (t2 - t1, conns))
        attack(exe, g, "-X", conns, length + 2, work)
        r = chat(g.port)
        check(r.status == 200, "served after the attacks: %d" % r.status)
    finally:
        rc = g.stop()
        check(rc == 0, "serve exits 0 on SIGTERM (got %r)" % rc)
        mock.stop()
        shutil.rmtree(work, ignore_errors=True)
        err = g.err_text()
        check("ERROR: AddressSanitizer" not in err and "runtime error" not in err,
              "no sanitizer report:\n" + err[-3000:])
    return report()


if __name__ == "__main__":
    sys.exit(main())
