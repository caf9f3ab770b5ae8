"""test_audit.py — the audit log through the real `gardefou serve` (over the mock upstream):
clients send requests under load while the server is killed with SIGKILL and restarted, again
and again; afterwards `gardefou audit verify` must pass and every request that was answered 2xx
must have its record in the log (exactly once). Torn tails left by the kills are set aside by the
restarts and recorded.

usage: test_audit.py GARDEFOU [--cycles N] [--long]
  --long  runs up to 100 cycles within GF_LONG_BUDGET seconds (default 5)
The mock upstream comes from GF_MOCK_UPSTREAM. Prints "N passed, N failed"; exit 77 = skipped."""
import http.client
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("CHECK failed: %s" % what, file=sys.stderr)
    return cond


def skip(why):
    print("SKIP: %s" % why, file=sys.stderr)
    sys.exit(77)


_pending = {}  # proc -> bytes read past the last line returned


def read_prefixed(proc, prefix, timeout=30.0):
    """Reads proc's stdout until a line starting with prefix; returns it or None. Lines read
    past it are kept for the next call."""
    end = time.time() + timeout
    buf = _pending.pop(proc.pid, b"")
    fd = proc.stdout.fileno()
    while True:
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.startswith(prefix.encode()):
                _pending[proc.pid] = buf
                return line.decode()
        if time.time() >= end:
            break
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
        elif proc.poll() is not None:
            break
    _pending[proc.pid] = buf
    return None


class Server:
    def __init__(self, exe, upstream, data_dir, extra=()):
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [exe, "serve", "--listen", "127.0.0.1:0", "--upstream", upstream, "--data-dir",
             data_dir, "--log-level", "warn", "--set", "audit.checkpoint_every=50",
             "--set", "audit.segment_max_bytes=65536", "--set", "keys.open_mode=true",
             "--set", "keys.admin_listen=127.0.0.1:0"] + list(extra),
            stdout=subprocess.PIPE, stderr=self.err)
        line = read_prefixed(self.proc, "gardefou: listening on http://")
        if line is None:
            self.proc.kill()
            self.proc.wait()
            self.err.seek(0)
            msg = self.err.read().decode(errors="replace")
            if "no upstream engine" in msg or "no engine" in msg:
                skip("this build of gardefou serve has no upstream engine: " + msg.strip())
            raise RuntimeError("gardefou serve did not start: " + msg)
        self.port = int(line.rsplit(":", 1)[1])
        admin = read_prefixed(self.proc, "gardefou: admin API on http://", timeout=2.0)
        self.admin_port = int(admin.rsplit(":", 1)[1]) if admin else None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


class Load:
    """Client threads sending chat requests with unique x-request-id until stopped."""

    def __init__(self, port, tag, threads=4):
        self.port, self.tag = port, tag
        self.ok, self.other = [], []
        self.lock = threading.Lock()
        self.stop_flag = False
        self.threads = [threading.Thread(target=self.run, args=(i,)) for i in range(threads)]
        for t in self.threads:
            t.start()

    def run(self, i):
        n = 0
        body = json.dumps({"model": "mock-model",
                           "messages": [{"role": "user", "content": "hello audit"}]})
        while not self.stop_flag:
            rid = "%s-%d-%d" % (self.tag, i, n)
            n += 1
            status = None
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                c.request("POST", "/v1/chat/completions", body,
                          {"Content-Type": "application/json", "x-request-id": rid})
                resp = c.getresponse()
                resp.read()
                status = resp.status
                c.close()
            except (OSError, http.client.HTTPException):
                status = None  # the server died under us: no answer, nothing to check
                time.sleep(0.01)
            with self.lock:
                (self.ok if status is not None and 200 <= status < 300 else self.other).append(rid)

    def finish(self):
        self.stop_flag = True
        for t in self.threads:
            t.join()


def call(port, method, path, body=None, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    c.request(method, path, json.dumps(body) if body is not None else None, headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


CUT_KEYS = []  # (request id, key id, secret) of requests made with an expired/suspended key


def admin_and_keys(srv, data):
    """Admin actions through the admin API and requests with a key: returns (key id, secret)."""
    with open(os.path.join(data, "admin.key")) as f:
        admin = {"Authorization": "Bearer " + f.read().strip(), "Content-Type": "application/json"}
    st, body = call(srv.admin_port, "POST", "/admin/v1/keys", {"name": "audit-test"}, admin)
    if not check(st == 201, "key created through the admin API (%d %s)" % (st, body[:200])):
        return None, None
    key = json.loads(body)
    hdr = {"Authorization": "Bearer " + key["secret"], "Content-Type": "application/json",
           "x-request-id": "with-key-0"}
    req = {"model": "mock-model", "messages": [{"role": "user", "content": "hello"}]}
    st, _ = call(srv.port, "POST", "/v1/chat/completions", req, hdr)
    check(st == 200, "a request with the key is answered (%d)" % st)
    st, _ = call(srv.admin_port, "POST", "/admin/v1/keys/%s/revoke" % key["id"], None, admin)
    check(st == 200, "key revoked (%d)" % st)
    hdr["x-request-id"] = "with-key-1"
    st, _ = call(srv.port, "POST", "/v1/chat/completions", req, hdr)
    check(st == 401, "the revoked key is refused (%d)" % st)
    # An expired and a suspended key: their refusals are recorded with the key id too.
    for n, action in enumerate(("expire", "suspend")):
        st, body = call(srv.admin_port, "POST", "/admin/v1/keys", {"name": "cut-%s" % action},
                        admin)
        check(st == 201, "second key created (%d)" % st)
        other = json.loads(body)
        st, _ = call(srv.admin_port, "POST", "/admin/v1/keys/%s/%s" % (other["id"], action),
                     {} if action == "suspend" else None, admin)
        check(st == 200, "key %s (%d)" % (action, st))
        h = {"Authorization": "Bearer " + other["secret"], "Content-Type": "application/json",
             "x-request-id": "cut-key-%d" % n}
        st, _ = call(srv.port, "POST", "/v1/chat/completions", req, h)
        check(st == 401, "the %sed key is refused (%d)" % (action, st))
        CUT_KEYS.append((h["x-request-id"], other["id"], other["secret"]))
    st, body = call(srv.admin_port, "POST", "/admin/v1/policy/reload", None, admin)
    check(st in (200, 501), "policy reload answered (%d %s)" % (st, body[:200]))
    return key["id"], key["secret"]


def cli_checks(exe, data, key_id, secret):
    audit_dir = os.path.join(data, "audit")
    q = subprocess.run([exe, "audit", "query", "--data-dir", data, "--type", "admin", "--json"],
                       capture_output=True, text=True)
    admin = [json.loads(l) for l in q.stdout.splitlines() if l.strip()]
    acts = [(a.get("action"), a.get("subject")) for a in admin]
    if key_id:
        check(("key_created", key_id) in acts, "key_created recorded: %s" % acts[-6:])
        check(("key_revoked", key_id) in acts, "key_revoked recorded: %s" % acts[-6:])
        check(any(a[0] in ("policy_reloaded", "policy_reload_failed") for a in acts),
              "the policy reload is recorded: %s" % acts[-6:])
        q = subprocess.run([exe, "audit", "query", "--data-dir", data, "--key", key_id, "--type",
                            "request", "--json"], capture_output=True, text=True)
        recs = [json.loads(l) for l in q.stdout.splitlines() if l.strip()]
        ids = [r.get("request_id") for r in recs]
        check(ids == ["with-key-0", "with-key-1"],
              "query --key finds the key's requests, the refused one too: %s" % ids)
        q = subprocess.run([exe, "audit", "query", "--data-dir", data, "--type", "request",
                            "--json"], capture_output=True, text=True)
        refused = [json.loads(l) for l in q.stdout.splitlines() if "with-key-1" in l]
        check([(r.get("status"), r.get("key_id")) for r in refused] == [(401, key_id)],
              "the request refused after the revocation is recorded with its 401 and key id")
        secrets = [secret]
        for rid, kid, sec in CUT_KEYS:
            recs = [json.loads(l) for l in q.stdout.splitlines() if rid in l]
            check([(r.get("status"), r.get("key_id")) for r in recs] == [(401, kid)],
                  "the refusal of a cut key is recorded with its key id: %s" % recs)
            secrets.append(sec)
        for name in os.listdir(audit_dir):
            with open(os.path.join(audit_dir, name), "rb") as f:
                blob = f.read()
            for sec in secrets:
                check(sec.encode() not in blob and sec[-16:].encode() not in blob,
                      "no key secret in %s" % name)
    q = subprocess.run([exe, "audit", "query", "--data-dir", data, "--csv", "--limit", "3"],
                       capture_output=True, text=True)
    lines = q.stdout.splitlines()
    check(q.returncode == 0 and lines and lines[0].startswith("seq,ts,type,request_id")
          and len(lines) == 4, "query --csv: header and --limit rows")
    v = subprocess.run([exe, "audit", "verify", "--bogus"], capture_output=True, text=True)
    check(v.returncode == 2, "verify with a bad flag exits 2")
    # A tampered copy: one character of one record changed.
    bad = tempfile.mkdtemp(prefix="gf-audit-bad-")
    try:
        shutil.copytree(audit_dir, os.path.join(bad, "audit"))
        seg = sorted(n for n in os.listdir(os.path.join(bad, "audit")) if n.endswith(".jsonl"))[0]
        path = os.path.join(bad, "audit", seg)
        with open(path, "rb") as f:
            lines = f.read().split(b"\n")
        lines[1] = lines[1].replace(b'"ts":"', b'"ts" :"', 1)  # still JSON, other bytes
        with open(path, "wb") as f:
            f.write(b"\n".join(lines))
        v = subprocess.run([exe, "audit", "verify", os.path.join(bad, "audit"), "--key-file",
                            os.path.join(data, "audit.key")], capture_output=True, text=True)
        check(v.returncode == 1 and "BROKEN" in v.stdout and "line 3" in v.stdout,
              "verify of a tampered copy exits 1 naming the break: %s" % v.stdout.strip())
    finally:
        shutil.rmtree(bad, ignore_errors=True)


def request_ids(audit_dir):
    """request_id -> how many records carry it, over every segment (not the .torn files)."""
    seen = {}
    for name in sorted(os.listdir(audit_dir)):
        if not (name.startswith("audit-") and name.endswith(".jsonl")):
            continue
        with open(os.path.join(audit_dir, name), "rb") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                rid = rec.get("request_id")
                if rid:
                    seen[rid] = seen.get(rid, 0) + 1
    return seen


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    exe = sys.argv[1]
    cycles = 3
    if "--cycles" in sys.argv:
        cycles = int(sys.argv[sys.argv.index("--cycles") + 1])
    budget = None
    if "--long" in sys.argv:
        cycles = 100
        budget = float(os.environ.get("GF_LONG_BUDGET", "5"))
    mock = os.environ.get("GF_MOCK_UPSTREAM")
    if not mock or not os.path.exists(mock):
        skip("GF_MOCK_UPSTREAM is not set")
    os.environ.pop("GARDEFOU_AUDIT_KEY", None)
    data = tempfile.mkdtemp(prefix="gf-audit-it-")
    mp = subprocess.Popen([mock, "--port", "0"], stdout=subprocess.PIPE)
    try:
        line = read_prefixed(mp, "port=")
        if line is None:
            raise RuntimeError("the mock upstream did not start")
        upstream = "http://127.0.0.1:%s" % line.split("=", 1)[1]
        ok, other = [], []
        start = time.time()
        done = 0
        for cycle in range(cycles):
            if budget is not None and time.time() - start > budget:
                break
            srv = Server(exe, upstream, data)
            load = Load(srv.port, "c%d" % cycle)
            time.sleep(0.3 + 0.1 * (cycle % 5))
            srv.kill9()  # under load: requests in flight, records in the writer
            load.finish()
            ok += load.ok
            other += load.other
            done += 1
        # A last clean run: recovery of the last kill, then a graceful stop.
        srv = Server(exe, upstream, data)
        load = Load(srv.port, "final", threads=2)
        time.sleep(0.3)
        load.finish()
        ok += load.ok
        key_id = secret = None
        if srv.admin_port:
            key_id, secret = admin_and_keys(srv, data)
        check(srv.stop() == 0, "graceful stop exits 0")
        v = subprocess.run([exe, "audit", "verify", "--data-dir", data], capture_output=True,
                           text=True)
        check(v.returncode == 0, "audit verify after %d kills: %s%s" % (done, v.stdout, v.stderr))
        seen = request_ids(os.path.join(data, "audit"))
        missing = [r for r in ok + load.ok if seen.get(r, 0) != 1]
        check(len(ok) > 0, "some requests were answered 2xx (%d)" % len(ok))
        check(not missing, "every 2xx request has exactly one record; missing or duplicated: %s"
              % missing[:10])
        q = subprocess.run([exe, "audit", "query", "--data-dir", data, "--type", "admin",
                            "--json"], capture_output=True, text=True)
        starts = q.stdout.count('"action":"audit_started"')
        check(starts == done + 1, "one audit_started per start (%d, %d starts)" % (starts, done + 1))
        cli_checks(exe, data, key_id, secret)
        print("%d kill -9 cycles, %d requests answered 2xx, %d not answered or refused"
              % (done, len(ok), len(other)), file=sys.stderr)
    finally:
        mp.terminate()
        mp.wait()
        shutil.rmtree(data, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
