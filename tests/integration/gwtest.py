"""gwtest.py — helpers for the gateway's integration tests: start the mock upstream and the real
`gardefou serve` on 127.0.0.1 with free ports, speak raw HTTP, read SSE streams, count checks
and print "N passed, N failed". Standard library only."""
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time

passed = 0
failed = 0
AUTH = None  # Authorization header sent by request() unless the caller gives its own


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("CHECK failed: %s" % what, file=sys.stderr)
    return cond


def report():
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def skip(why):
    print("SKIP: %s" % why, file=sys.stderr)
    sys.exit(77)


class Proc:
    def __init__(self, argv, ready_prefix, env=None):
        self.stderr = tempfile.TemporaryFile()
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.stderr, env=env)
        self.buf = b""
        self.line = self.read_line(ready_prefix)

    def read_line(self, prefix, timeout=60.0):
        """Reads stdout lines until one starts with prefix; returns it or None."""
        end = time.time() + timeout
        fd = self.p.stdout.fileno()
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                if line.startswith(prefix.encode()):
                    return line.decode()
            if time.time() >= end:
                return None
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    return None
                self.buf += chunk
            elif self.p.poll() is not None:
                return None

    def err_text(self):
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(60)  # ASan's exit (leak check) is slow on a loaded machine
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


def start_mock(extra=()):
    exe = os.environ.get("GF_MOCK_UPSTREAM")
    if not exe or not os.path.exists(exe):
        skip("GF_MOCK_UPSTREAM is not set to the mock upstream executable")
    m = Proc([exe, "--port", "0", "--host", "127.0.0.1"] + list(extra), "port=")
    if m.line is None:
        m.stop()
        raise RuntimeError("mock upstream did not start: " + m.err_text())
    m.port = int(m.line.split("=", 1)[1])
    return m


def start_gateway(gardefou, upstreams, settings=(), data_dir=None, allow_fail=False, extra=()):
    """Starts gardefou serve; returns the Proc with .port (and .admin_url when the admin API is
    on), or skips when the build lacks the upstream engine. extra: more serve arguments."""
    argv = [gardefou, "serve", "--listen", "127.0.0.1:0", "--log-level", "warn"] + list(extra)
    for u in upstreams:
        argv += ["--upstream", u]
    data_dir = data_dir or tempfile.mkdtemp(prefix="gf-it-")
    argv += ["--data-dir", data_dir]
    for s in settings:
        argv += ["--set", s]
    g = Proc(argv, "gardefou: listening on ")
    if g.line is None:
        g.stop()
        err = g.err_text()
        if "no upstream engine" in err:
            skip("this build has no upstream engine yet")
        if allow_fail:
            return None
        raise RuntimeError("gardefou did not start: " + err)
    g.port = int(g.line.rsplit(":", 1)[1])
    # an API key for the tests, made through the admin API as an operator would
    admin = g.read_line("gardefou: admin API on ", timeout=2.0)
    g.key = None
    g.admin_url = None
    if admin is not None:
        url = admin.split(" on ", 1)[1].strip()
        g.admin_url = url
        out = subprocess.run([gardefou, "keys", "create", "--server", url, "--data-dir", data_dir,
                              "--name", "integration"], capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            g.stop()
            raise RuntimeError("gardefou keys create failed: " + out.stderr)
        g.key = out.stdout.strip()
        global AUTH
        AUTH = "Bearer " + g.key
    return g


def dial(port, timeout=60.0):
    # generous: a read timeout ends read_response early, so it must not fire under ASan + load
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lowercased names
        self.body = body        # bytes, de-chunked

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def text(self):
        return self.body.decode(errors="replace")


def read_response(s):
    """Reads one response until the connection closes (requests use Connection: close)."""
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return Resp(0, {}, b"")
    lines = head.decode(errors="replace").split("\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        status = 0
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out = b""
        rest = body
        while rest:
            size_line, _, rest = rest.partition(b"\r\n")
            try:
                n = int(size_line.split(b";")[0], 16)
            except ValueError:
                break
            if n == 0:
                break
            out += rest[:n]
            rest = rest[n + 2:]
        body = out
    return Resp(status, headers, body)


def request(port, method, path, body=None, headers=None, raw=None):
    s = dial(port)
    if raw is None:
        h = {"Host": "127.0.0.1", "Connection": "close"}
        if AUTH is not None:
            h["Authorization"] = AUTH
        if body is not None:
            if not isinstance(body, (bytes, str)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode()
            h["Content-Type"] = "application/json"
            h["Content-Length"] = str(len(body))
        h.update(headers or {})
        raw = ("%s %s HTTP/1.1\r\n" % (method, path)).encode()
        raw += b"".join(("%s: %s\r\n" % (k, v)).encode() for k, v in h.items() if v is not None)
        raw += b"\r\n" + (body or b"")
    s.sendall(raw)
    r = read_response(s)
    s.close()
    return r


def chat(port, content="hi", model="mock-model", **extra):
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    body.update(extra)
    return request(port, "POST", "/v1/chat/completions", body)


def sse(resp):
    """Returns (events, pings): the data payloads (JSON decoded when possible) and the number
    of comment pings."""
    events, pings = [], 0
    for line in resp.text().split("\n"):
        if line.startswith("data: "):
            payload = line[6:]
            try:
                events.append(json.loads(payload))
            except ValueError:
                events.append(payload)
        elif line.startswith(": ping"):
            pings += 1
    return events, pings


def is_error(resp, status, param=None):
    j = resp.json()
    ok = check(resp.status == status, "status %d, want %d (%s)" % (resp.status, status, resp.text()[:200]))
    e = j.get("error") if isinstance(j, dict) else None
    ok = check(isinstance(e, dict) and isinstance(e.get("message"), str) and
               isinstance(e.get("type"), str) and "param" in e and "code" in e,
               "OpenAI error shape: %r" % (j,)) and ok
    if param is not None and e:
        ok = check(e.get("param") == param, "param %r, want %r" % (e.get("param"), param)) and ok
    ok = check("x-request-id" in resp.headers, "x-request-id on the %d reply" % status) and ok
    return ok
