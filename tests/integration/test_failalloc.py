#!/usr/bin/env python3
"""test_failalloc.py — the allocation-failure loop over request handling through the real
`gardefou serve` (GF_FAILALLOC_SERVE=1, see docs/testing.md): for N = 1, 2, ... the Nth
allocation of one request fails, until a request runs to its end without reaching N. Scenarios:
allowed, blocked by the policy, streamed, 429 (daily quota spent) and a revoked key. Every
failing step must answer the scenario's own status or a clean 5xx with the OpenAI error shape,
the server must stay up, and it must exit cleanly at the end (under ASan/LSan: no leak).

usage: test_failalloc.py GARDEFOU [--step K] [--long] [--upstream-step K]
  --step K           tries every Kth N only (default 7, the sampled default-suite version)
  --long             every N (step 1), for the long suite
  --upstream-step K  step for the scenarios that reach the upstream (allowed, streamed); the
                     long suite uses 7 to keep `make test` short, nightly runs use 1
libcurl's own allocations are not failed (engine/upstream.c: libcurl 7.88.1 can die of SIGFPE
after some of them fail; docs/testing.md)."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwtest  # noqa: E402
from gwtest import check  # noqa: E402

MAX_N = 20000  # a request of this gateway allocates far fewer times; reaching it is a failure


def keys_cli(exe, url, data_dir, *args):
    out = subprocess.run([exe, "keys"] + list(args) + ["--server", url, "--data-dir", data_dir],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise RuntimeError("gardefou keys %s failed: %s" % (args[0], out.stderr))
    return out.stdout.strip()


def send(port, key, body, n=None):
    h = {"Authorization": "Bearer " + key}
    if n is not None:
        h["x-gf-failalloc"] = str(n)
    return gwtest.request(port, "POST", "/v1/chat/completions", body, headers=h)


def prev_failures(port):
    r = gwtest.request(port, "GET", "/health")
    return int(r.headers.get("x-gf-failalloc-prev", "-2"))


def loop(name, port, key, body, want, step):
    """Runs the loop for one scenario; returns how many N were tried."""
    n, tried = 1, 0
    while n < MAX_N:
        r = send(port, key, body, n)
        tried += 1
        fails = prev_failures(port)
        if not check(fails >= 0, "%s N=%d: the failure count is reported (%d)" % (name, n, fails)):
            return tried
        if fails == 0:
            # the request never reached its Nth allocation: it must be the normal answer
            check(r.status == want, "%s: unfailed request answers %d (got %d: %s)"
                  % (name, want, r.status, r.text()[:200]))
            if body.get("stream"):
                check("[DONE]" in r.text(), "%s: unfailed stream ends with [DONE]" % name)
            print("%s: %d steps, a request allocates < %d times" % (name, tried, n))
            return tried
        ok = r.status == want or (500 <= r.status < 600)
        if body.get("stream") and r.status == 200:
            ok = True  # the 200 went out before the failure: the stream ends with an error event
        if not check(ok, "%s N=%d: clean answer (got %d: %s)" % (name, n, r.status, r.text()[:200])):
            return tried
        if r.status >= 500:
            j = r.json()
            e = j.get("error") if isinstance(j, dict) else None
            check(isinstance(e, dict) and isinstance(e.get("message"), str),
                  "%s N=%d: %d has an OpenAI error body (%r)" % (name, n, r.status, r.text()[:200]))
        n += step
    check(False, "%s: still failing at N=%d" % (name, n))
    return tried


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    exe = sys.argv[1]
    step = 7
    if "--step" in sys.argv:
        step = int(sys.argv[sys.argv.index("--step") + 1])
    if "--long" in sys.argv:
        step = 1
    up_step = step
    if "--upstream-step" in sys.argv:
        up_step = int(sys.argv[sys.argv.index("--upstream-step") + 1])
    data_dir = tempfile.mkdtemp(prefix="gf-failalloc-")
    policy = os.path.join(data_dir, "policy.json")
    with open(policy, "w") as f:
        # abuse: the blocked loop must not suspend the key (20 blocks in 10 min by default)
        json.dump({"version": 1, "abuse": {"blocks": 100000, "window": "1m"}, "rules": [
            {"id": "no-forbidden", "stage": "input", "detector": "keywords",
             "keywords": ["forbiddenword"], "action": "block"}]}, f)
    mock = gwtest.start_mock()
    os.environ["GF_FAILALLOC_SERVE"] = "1"
    g = None
    try:
        g = gwtest.start_gateway(exe, ["http://127.0.0.1:%d" % mock.port],
                                 settings=["policy.file=" + policy], data_dir=data_dir)
        if prev_failures(g.port) == -2:
            gwtest.skip("this build has no failalloc hooks")
        key = g.key
        check(key is not None, "an API key was created")
        base = {"model": "mock-model", "messages": [{"role": "user", "content": "hello"}]}
        loop("allowed", g.port, key, base, 200, up_step)
        blocked = dict(base, messages=[{"role": "user", "content": "say forbiddenword now"}])
        want_block = send(g.port, key, blocked).status
        check(400 <= want_block < 500, "the policy blocks (status %d)" % want_block)
        loop("blocked", g.port, key, blocked, want_block, step)
        loop("streamed", g.port, key, dict(base, stream=True), 200, up_step)
        # 429: a key whose daily token quota the first request spends
        spent = keys_cli(exe, g.admin_url, data_dir, "create", "--name", "quota",
                         "--daily-tokens", "1")
        send(g.port, spent, base)
        check(send(g.port, spent, base).status == 429, "the spent key is refused with 429")
        loop("429", g.port, spent, base, 429, step)
        # a revoked key
        made = json.loads(keys_cli(exe, g.admin_url, data_dir, "create", "--name", "gone",
                                   "--json"))
        keys_cli(exe, g.admin_url, data_dir, "revoke", made["id"])
        want_revoked = send(g.port, made["secret"], base).status
        check(want_revoked == 401, "the revoked key is refused (status %d)" % want_revoked)
        loop("revoked", g.port, made["secret"], base, want_revoked, step)
    except OSError as e:  # the server stopped answering: reported below with its stderr
        check(False, "connection to gardefou failed: %s" % e)
    finally:
        rc = g.stop() if g is not None else 0
        mock.stop()
        if g is not None:
            err = g.err_text()
            check(rc == 0, "gardefou exits cleanly (rc %s)" % rc)
            check("LeakSanitizer" not in err and "AddressSanitizer" not in err,
                  "no sanitizer report: %s" % err[-2000:])
        os.environ.pop("GF_FAILALLOC_SERVE", None)
    return gwtest.report()


if __name__ == "__main__":
    sys.exit(main())
