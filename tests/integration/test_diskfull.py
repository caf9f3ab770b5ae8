#!/usr/bin/env python3
"""test_diskfull.py — a full disk under the audit log and the key store of the real `gardefou
serve`. The disk fills by lowering the server's RLIMIT_FSIZE to the current size of its files
(prlimit; SIGXFSZ ignored, so a write past it fails with EFBIG or comes back short), and empties
by raising it again. Shows: from the first failed write no request is answered 2xx; refusals are
503 with Retry-After; an admin call fails cleanly; service resumes once the files can grow; after
a stop `audit verify` passes, every request answered 2xx is in the log, every acknowledged key
is in the store, and the server starts again on the same data.

usage: test_diskfull.py GARDEFOU"""
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwtest  # noqa: E402
from gwtest import check  # noqa: E402


def keys_cli(exe, url, data_dir, *args):
    return subprocess.run([exe, "keys"] + list(args) + ["--server", url, "--data-dir", data_dir],
                          capture_output=True, text=True, timeout=30)


def audit_ids(audit_dir):
    """Every request_id in the log's segments (not in .torn files)."""
    import json
    seen = set()
    for name in sorted(os.listdir(audit_dir)):
        if name.startswith("audit-") and name.endswith(".jsonl"):
            with open(os.path.join(audit_dir, name), "rb") as f:
                for line in f:
                    try:
                        rid = json.loads(line).get("request_id")
                    except ValueError:
                        continue
                    if rid:
                        seen.add(rid)
    return seen


def chat(port, key):
    body = {"model": "mock-model", "messages": [{"role": "user", "content": "hello"}]}
    return gwtest.request(port, "POST", "/v1/chat/completions", body,
                          headers={"Authorization": "Bearer " + key})


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    if not hasattr(resource, "prlimit"):
        gwtest.skip("resource.prlimit is not available")
    exe = sys.argv[1]
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # inherited: a write past the limit fails
    data = tempfile.mkdtemp(prefix="gf-diskfull-")
    mock = gwtest.start_mock()
    g = None
    answered = []  # request ids answered 2xx
    try:
        g = gwtest.start_gateway(exe, ["http://127.0.0.1:%d" % mock.port], data_dir=data)
        check(g.key is not None, "an API key was created")
        keys = {g.key}
        for _ in range(5):
            r = chat(g.port, g.key)
            if check(r.status == 200, "before: 200 (got %d %s)" % (r.status, r.text()[:200])):
                answered.append(r.headers.get("x-request-id"))
        audit_dir = os.path.join(data, "audit")
        segs = [n for n in os.listdir(audit_dir) if n.startswith("audit-") and n.endswith(".jsonl")]
        files = [os.path.join(audit_dir, max(segs)), os.path.join(data, "keys", "journal.log")]
        full = min(os.path.getsize(f) for f in files)
        hard = resource.prlimit(g.p.pid, resource.RLIMIT_FSIZE)[1]
        resource.prlimit(g.p.pid, resource.RLIMIT_FSIZE, (full, hard))  # the disk is full

        statuses = []
        for i in range(12):
            r = chat(g.port, g.key)
            statuses.append(r.status)
            check(not 200 <= r.status < 300, "disk full: request %d not answered 2xx (got %d)"
                  % (i, r.status))
            # The first request is the one whose record fails: 503 like the rest.
            check(r.status == 503 and "retry-after" in r.headers,
                  "disk full: request %d gets 503 with Retry-After (got %d, headers %r)"
                  % (i, r.status, sorted(r.headers)))
        made = keys_cli(exe, g.admin_url, data, "create", "--name", "while-full")
        check(made.returncode != 0, "disk full: keys create fails (rc %d, %s)"
              % (made.returncode, made.stdout.strip()))
        check("gf_" not in made.stdout, "disk full: no secret handed out")
        check(g.p.poll() is None, "disk full: the server is still up")
        print("disk full: statuses %s; keys create: %s" % (statuses, made.stderr.strip()[:160]))

        resource.prlimit(g.p.pid, resource.RLIMIT_FSIZE, (hard, hard))  # space again
        end, back = time.time() + 30, False
        while time.time() < end and not back:
            r = chat(g.port, g.key)
            if 200 <= r.status < 300:
                back = True
                answered.append(r.headers.get("x-request-id"))
            else:
                check(r.status == 503, "recovering: 503 until the log is written (got %d)"
                      % r.status)
                time.sleep(0.2)
        check(back, "service resumes once the log can be written")
        made = keys_cli(exe, g.admin_url, data, "create", "--name", "after")
        if check(made.returncode == 0, "keys create works again (%s)" % made.stderr.strip()):
            keys.add(made.stdout.strip())
        for _ in range(3):
            r = chat(g.port, g.key)
            if check(r.status == 200, "after: 200 (got %d)" % r.status):
                answered.append(r.headers.get("x-request-id"))
        check(g.stop() == 0, "gardefou stops cleanly: %s" % g.err_text()[-1500:])
        g = None

        v = subprocess.run([exe, "audit", "verify", "--data-dir", data], capture_output=True,
                           text=True, timeout=120)
        check(v.returncode == 0, "audit verify: %s%s" % (v.stdout, v.stderr))
        ids = audit_ids(audit_dir)
        missing = [i for i in answered if i not in ids]
        check(not missing, "every 2xx is in the log (%d missing: %r)" % (len(missing), missing[:5]))
        # the store comes back with every acknowledged key
        g = gwtest.start_gateway(exe, ["http://127.0.0.1:%d" % mock.port], data_dir=data)
        for k in keys:
            r = chat(g.port, k)
            check(r.status == 200, "acknowledged key %s... still works (got %d)" % (k[:7], r.status))
        print("%d requests answered 2xx, all in the log; %d keys kept" % (len(answered), len(keys)))
    except OSError as e:  # the server stopped answering: reported below with its stderr
        check(False, "connection to gardefou failed: %s" % e)
    finally:
        if g is not None:
            if g.p.poll() is not None:
                check(False, "gardefou died (rc %s): %s" % (g.p.returncode, g.err_text()[-3000:]))
            g.stop()
        mock.stop()
    return gwtest.report()


if __name__ == "__main__":
    sys.exit(main())
