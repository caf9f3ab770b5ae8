#!/usr/bin/env python3
"""test_secrets.py — secret hygiene: a server session with canary secrets (the admin key, API
keys made through the admin API, an upstream api_key from the config file, and Authorization
values sent by clients, valid and invalid) goes through success, 401, 429, rotation, expiry,
revocation mid-stream and error paths; then every file the server wrote (data dir, audit log,
key journal and snapshot), its stderr and stdout at debug level, /metrics and every reply body
received must contain none of the canaries (key ids and digests are fine).
usage: test_secrets.py GARDEFOU   (GF_MOCK_UPSTREAM names the mock upstream executable)"""
import base64
import json
import os
import secrets
import shutil
import sys
import tempfile
import threading
import time
import zlib

import gwtest
from gwtest import check, dial, read_response, report, request, start_gateway, start_mock

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
seen = []  # (what, bytes) of everything the server sent us that may not hold a secret


def b62(n):
    return "".join(secrets.choice(B62) for _ in range(n))


def wellformed_key():
    """A key that passes the format check (gateway/apikey.c) but was never issued."""
    body = b62(22)
    v = zlib.crc32(body.encode())
    check_digits = ""
    for _ in range(6):
        check_digits = B62[v % 62] + check_digits
        v //= 62
    return "gf_" + body + check_digits


def keep(what, resp):
    raw = "%d %s\n" % (resp.status, json.dumps(resp.headers)) + resp.text()
    seen.append((what, raw.encode()))
    return resp


def api(port, method, path, body=None, auth=None, headers=None, what=None):
    h = dict(headers or {})
    h["Authorization"] = auth
    return keep(what or path, request(port, method, path, body, headers=h))


def admin(g, method, path, body=None, key=None, record=True):
    """An admin API call; bodies that carry a new secret (create, rotate) are not recorded."""
    host_port = g.admin_url.split("//", 1)[1].rstrip("/")
    port = int(host_port.rsplit(":", 1)[1])
    h = {"Authorization": "Bearer " + (key or os.environ["GARDEFOU_ADMIN_KEY"])}
    r = request(port, method, "/admin/v1" + path, body, headers=h)
    if record:
        keep("admin " + path, r)
    return r


def chat_as(port, key, model="mock-model", stream=False, what="chat"):
    body = {"model": model, "messages": [{"role": "user", "content": "hello there"}]}
    if stream:
        body["stream"] = True
    return api(port, "POST", "/v1/chat/completions", body, auth="Bearer " + key, what=what)


def new_key(g, name, **limits):
    body = {"name": name}
    body.update(limits)
    r = admin(g, "POST", "/keys", body, record=False)
    j = r.json() or {}
    check(r.status == 201 and "secret" in j and "id" in j, "create key %s: %s" %
          (name, r.text()[:200]))
    return j.get("secret", "gf_missing"), j.get("id", "")


def revoke_during_stream(g, key, key_id):
    """Opens a slow stream on key, revokes it from another thread, returns the stream reply."""
    s = dial(g.port, timeout=15)
    body = json.dumps({"model": "tokens=400,delay=20", "stream": True,
                       "messages": [{"role": "user", "content": "x"}]}).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
              b"Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
              b"Content-Length: %d\r\n\r\n" % (key.encode(), len(body)) + body)
    t = threading.Timer(0.5, lambda: admin(g, "POST", "/keys/%s/revoke" % key_id))
    t.start()
    r = read_response(s)
    t.join()
    s.close()
    return keep("revoked stream", r)


def session(g, mock, canaries):
    port = g.port
    key_a = g.key
    # success, plain and streamed, with the key made by `gardefou keys create`
    r = chat_as(port, key_a)
    check(r.status == 200, "chat with a key: %d %s" % (r.status, r.text()[:200]))
    r = chat_as(port, key_a, stream=True)
    check(r.status == 200 and "[DONE]" in r.text(), "stream with a key")
    # 401s: never issued, a typo of a real key, foreign formats, the admin key on the API
    typo = key_a[:10] + ("A" if key_a[10] != "A" else "B") + key_a[11:]
    unknown = wellformed_key()
    foreign = "sk-" + b62(40)
    canaries += [("typo key", typo), ("unknown key", unknown), ("foreign key", foreign)]
    for what, auth in (("unknown", "Bearer " + unknown), ("typo", "Bearer " + typo),
                       ("foreign", "Bearer " + foreign), ("lower", "bearer " + unknown),
                       ("basic", "Basic " + base64.b64encode(foreign.encode()).decode()),
                       ("long", "Bearer " + key_a + "x"), ("admin", "Bearer " +
                                                            os.environ["GARDEFOU_ADMIN_KEY"]),
                       ("spaces", "Bearer  " + unknown + " ")):
        r = api(port, "POST", "/v1/chat/completions",
                {"model": "mock-model", "messages": [{"role": "user", "content": "x"}]},
                auth=auth, what="401 " + what)
        check(r.status == 401, "%s Authorization gets 401 (%d)" % (what, r.status))
    r = api(port, "GET", "/v1/models", auth="Bearer " + unknown, what="models 401")
    check(r.status == 401, "models with an unknown key: %d" % r.status)
    # 429 on a key limited to one request a minute
    key_r, _ = new_key(g, "limited", rpm=1)
    canaries.append(("rpm key", key_r))
    check(chat_as(port, key_r).status == 200, "first request of the limited key")
    r = chat_as(port, key_r, what="429")
    check(r.status == 429 and "retry-after" in r.headers, "second request 429 (%d)" % r.status)
    # rotation: old and new secret both work in the grace period; expiry ends both
    key_t, id_t = new_key(g, "rotated")
    r = admin(g, "POST", "/keys/%s/rotate" % id_t, {"grace": "1h"}, record=False)
    key_t2 = (r.json() or {}).get("secret", "gf_missing")
    canaries += [("rotated key", key_t), ("rotated key new", key_t2)]
    check(r.status == 200 and key_t2 != key_t, "rotate: %d" % r.status)
    check(chat_as(port, key_t).status == 200, "old secret in grace")
    check(chat_as(port, key_t2).status == 200, "new secret")
    check(admin(g, "POST", "/keys/%s/expire" % id_t).status == 200, "expire now")
    check(chat_as(port, key_t2, what="expired").status == 401, "expired key 401")
    check(chat_as(port, key_t, what="expired old").status == 401, "expired old secret 401")
    # revocation of an open stream, then 401
    key_v, id_v = new_key(g, "revoked")
    canaries.append(("revoked key", key_v))
    r = revoke_during_stream(g, key_v, id_v)
    check(r.status == 200 and "error" in r.text(), "revoked stream ends with an error event")
    check(chat_as(port, key_v, what="revoked").status == 401, "revoked key 401")
    # error paths with a valid key
    auth = "Bearer " + key_a
    for what, method, path, body, want in (
            ("bad json", "POST", "/v1/chat/completions", b'{"messages": [', 400),
            ("schema", "POST", "/v1/chat/completions", {"messages": [{"role": 1}]}, 400),
            ("too big", "POST", "/v1/chat/completions", "x" * 70000, 413),
            ("no route", "GET", "/v1/nothing", None, 404),
            ("method", "GET", "/v1/chat/completions", None, 405)):
        r = api(port, method, path, body, auth=auth, what=what)
        check(r.status == want, "%s: %d, want %d" % (what, r.status, want))
    r = chat_as(port, key_a, model="status=500", what="upstream 500")
    check(r.status >= 500, "upstream 500 -> %d" % r.status)
    r = chat_as(port, key_a, model="cut=2", stream=True, what="upstream cut")
    check(r.status == 200 and "error" in r.text(), "cut stream")
    # a malformed request carrying a key (refused before evhttp), and a timed-out one
    r = request(port, None, None, raw=b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                b"Authorization: Bearer " + key_a.encode() + b"\r\nContent-Length: 1\r\n"
                b"Content-Length: 2\r\n\r\nab")
    keep("malformed", r)
    check(r.status == 400, "malformed request with a key: %d" % r.status)
    # admin API: wrong admin key, a bad body, list and show (no secrets in them)
    wrong_admin = "gfadm_" + b62(40)
    canaries.append(("wrong admin key", wrong_admin))
    r = admin(g, "GET", "/keys", key=wrong_admin)
    check(r.status == 401, "wrong admin key 401: %d" % r.status)
    r = admin(g, "POST", "/keys", b'{"name": ')
    check(r.status == 400, "bad admin body 400: %d" % r.status)
    r = admin(g, "GET", "/keys")
    check(r.status == 200 and "revoked" in r.text(), "key list")
    r = admin(g, "GET", "/keys/%s" % id_v)
    check(r.status == 200, "key show")
    r = api(port, "GET", "/metrics", what="metrics")
    check(r.status == 200 and "gardefou_requests_total" in r.text(), "metrics")


def forms(secret):
    """The strings whose presence would mean the secret leaked: itself and its random tail (the
    display prefix of a key is meant to be shown; the last 16 characters never are)."""
    return [secret, secret[-16:]]


def scan(canaries, blobs):
    for what, data in blobs:
        for name, secret in canaries:
            for f in forms(secret):
                check(f.encode() not in data, "%s (%s) found in %s" % (name, f[:8] + "...", what))


def main():
    gardefou = sys.argv[1]
    admin_key = "gfadm_" + b62(40)
    upstream_key = "upk-" + b62(40)
    os.environ["GARDEFOU_ADMIN_KEY"] = admin_key
    canaries = [("admin key", admin_key), ("upstream api_key", upstream_key)]
    work = tempfile.mkdtemp(prefix="gf-secrets-")
    data_dir = os.path.join(work, "data")
    os.mkdir(data_dir)
    cfg = os.path.join(work, "gardefou.json")  # the test's file, not one the server writes
    with open(cfg, "w") as f:
        json.dump({"upstream": {"api_key": upstream_key}}, f)
    mock = start_mock(["--api-key", upstream_key])
    settings = ["server.log_level=debug", "limits.max_body_bytes=65536",
                "stream.ping_interval_ms=100", "audit.retention=full", "keys.snapshot_every=3"]
    g = start_gateway(gardefou, ["http://127.0.0.1:%d" % mock.port], settings,
                      data_dir=data_dir, extra=["--config", cfg])
    canaries.append(("api key", g.key or "gf_missing"))
    try:
        if not check(g.admin_url is not None and g.key, "admin API and a key"):
            return report()
        session(g, mock, canaries)
        # no core file could carry a secret in transit (keys.allow_core_dumps is off)
        with open("/proc/%d/limits" % g.p.pid) as f:
            core = [ln.split()[4] for ln in f if ln.startswith("Max core file size")]
        check(core == ["0"], "RLIMIT_CORE is 0 while serving: %r" % core)
    finally:
        rc = g.stop()
        mock.stop()
    check(rc == 0, "serve exits 0 (got %r)" % rc)
    err = g.err_text()
    check("ERROR: AddressSanitizer" not in err and "runtime error" not in err,
          "no sanitizer report:\n" + err[-3000:])
    check("level=info" in err and "status=401" in err, "the server logged at info level or "
          "below, 401s included:\n" + err[:500])
    out = g.buf + g.p.stdout.read()
    blobs = [("stderr", err.encode()), ("stdout", out)] + seen
    n_files = 0
    for root, _, files in os.walk(data_dir):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                blobs.append((os.path.relpath(path, work), f.read()))
            n_files += 1
    check(n_files >= 4, "the server wrote its files (%d)" % n_files)
    check(any("snapshot" in w for w, _ in blobs), "a key store snapshot was written: %r" %
          [w for w, _ in blobs if w.startswith("data")])
    check(any("audit" in w for w, _ in blobs), "the audit log is among them")
    check(any(b"key_" in d for w, d in blobs if w.startswith("data")), "key ids are recorded")
    scan(canaries, blobs)
    shutil.rmtree(work, ignore_errors=True)
    print("searched %d files, %d replies and the logs for %d canaries" %
          (n_files, len(seen), len(canaries)))
    return report()


if __name__ == "__main__":
    sys.exit(main())
