#!/usr/bin/env python3
"""test_gateway.py — the real `gardefou serve` on 127.0.0.1 against the mock upstream: normal and
streamed replies, include_usage, pings, the model list, every error status, malformed, oversized
and truncated bodies, slow clients, upstream down / timeout / cut mid-stream, request ids.
usage: test_gateway.py GARDEFOU   (GF_MOCK_UPSTREAM names the mock upstream executable)"""
import json
import os
import socket
import sys
import threading
import time

import gwtest
from gwtest import (check, chat, dial, is_error, read_response, report, request, sse,
                    start_gateway, start_mock)

DEADLINE_MS = 2000  # header/body deadline: well above a loaded loop's stall, below a dribble
# Conditions are awaited up to this (s); a deadline only guards against a hang, never a timing.
WAIT_S = 60
# upstream.request_timeout_ms: the "hang" model's 504 waits this long; every normal reply must
# come well within it even under ASan on a loaded machine
UPSTREAM_TIMEOUT_MS = 8000


def wait_for(cond):
    end = time.time() + WAIT_S
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_basics(port):
    r = request(port, "GET", "/healthz")
    check(r.status == 200 and r.json() == {"status": "ok"}, "healthz")
    rid = r.headers.get("x-request-id", "")
    check(len(rid) == 32 and all(c in "0123456789abcdef" for c in rid), "generated id %r" % rid)
    # ready once the upstream's first health check passed
    last = []

    def ready():
        last[:] = [request(port, "GET", "/readyz", headers={"X-Request-Id": "trace-7:a.b_c"})]
        return last[0].status == 200
    check(wait_for(ready), "readyz")
    r = last[0]
    check(r.headers.get("x-request-id") == "trace-7:a.b_c", "client id echoed")
    r = request(port, "GET", "/healthz", headers={"X-Request-Id": "x" * 65})
    check(len(r.headers.get("x-request-id", "")) == 32, "too long an id is replaced")
    r = request(port, "GET", "/v1/models")
    j = r.json() or {}
    check(r.status == 200 and j.get("object") == "list", "models list: %s" % r.text()[:200])
    check(any(m.get("id") == "mock-model" and m.get("object") == "model"
              for m in j.get("data", [])), "mock-model listed")


def test_chat(port):
    r = chat(port)
    j = r.json() or {}
    check(r.status == 200, "chat status %d %s" % (r.status, r.text()[:200]))
    check(j.get("object") == "chat.completion", "object")
    check(str(j.get("id", "")).startswith("chatcmpl-"), "id")
    c0 = (j.get("choices") or [{}])[0]
    check(c0.get("message", {}).get("role") == "assistant", "role")
    check(c0.get("message", {}).get("content") == "Hello from the mock upstream.", "content")
    check(c0.get("finish_reason") == "stop", "finish_reason")
    u = j.get("usage", {})
    check(u.get("total_tokens") == u.get("prompt_tokens", 0) + u.get("completion_tokens", 0) and
          u.get("completion_tokens", 0) > 0, "usage %r" % u)
    r = request(port, "POST", "/v1/completions", {"model": "mock-model", "prompt": "Once"})
    j = r.json() or {}
    check(r.status == 200 and j.get("object") == "text_completion", "completion %s" % r.text()[:200])
    check(isinstance((j.get("choices") or [{}])[0].get("text"), str), "completion text")
    # fields the gateway does not interpret reach the upstream unchanged; client credentials do not
    r = request(port, "POST", "/v1/chat/completions",
                {"model": "echo", "messages": [{"role": "user", "content": "x"}],
                 "response_format": {"type": "json_object"}, "logit_bias": {"5": 1}})
    echo = (((r.json() or {}).get("choices") or [{}])[0].get("message") or {}).get("content") or ""
    check("json_object" in echo and "logit_bias" in echo, "pass-through fields: %s" % echo[:300])
    secret = (gwtest.AUTH or "Bearer -").split(" ", 1)[1]
    check(secret not in echo, "no client credential upstream")
    # without a key: 401
    r = request(port, "POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]},
                headers={"Authorization": None})
    is_error(r, 401)


def test_stream(port):
    r = chat(port, stream=True)
    check(r.status == 200 and r.headers.get("content-type", "").startswith("text/event-stream"),
          "stream headers")
    ev, _ = sse(r)
    check(len(ev) >= 3 and ev[-1] == "[DONE]", "ends with [DONE]")
    chunks = [e for e in ev if isinstance(e, dict)]
    check(all(c.get("object") == "chat.completion.chunk" for c in chunks), "chunk objects")
    check(chunks and chunks[0]["choices"][0]["delta"].get("role") == "assistant", "role first")
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    check(text == "Hello from the mock upstream.", "stream text %r" % text)
    finals = [c for c in chunks if c["choices"] and c["choices"][0].get("finish_reason")]
    check(len(finals) == 1 and finals[0] is chunks[-1], "one finish chunk, last")
    check(all("usage" not in c for c in chunks), "no usage without include_usage")

    r = chat(port, stream=True, stream_options={"include_usage": True})
    ev, _ = sse(r)
    chunks = [e for e in ev if isinstance(e, dict)]
    check(ev[-1] == "[DONE]", "[DONE] with usage")
    check(chunks and chunks[-1].get("choices") == [] and chunks[-1].get("usage", {}).get(
        "total_tokens", 0) > 0, "usage chunk last: %r" % (chunks[-1] if chunks else None))
    check(all(c.get("usage", "missing") is None for c in chunks[:-1]), "usage null before")

    r = request(port, "POST", "/v1/completions",
                {"model": "mock-model", "prompt": "x", "stream": True})
    ev, _ = sse(r)
    check(ev and ev[-1] == "[DONE]" and isinstance(ev[0], dict) and
          ev[0].get("object") == "text_completion", "completion stream")

    # a slow upstream: pings keep the client informed
    r = chat(port, model="hdelay=1500", stream=True)
    ev, pings = sse(r)
    check(pings >= 1, "pings while waiting (%d)" % pings)
    check(ev and ev[-1] == "[DONE]", "slow stream completes")


def test_logprobs(port):
    """An upstream's logprobs reach the client, whole replies and streams, chat and completions."""
    words = ["Hello ", "from ", "the ", "mock ", "upstream."]
    r = chat(port, logprobs=True, top_logprobs=2)
    c0 = ((r.json() or {}).get("choices") or [{}])[0]
    content = (c0.get("logprobs") or {}).get("content") or []
    check(r.status == 200 and [e.get("token") for e in content] == words,
          "chat logprobs tokens %s" % r.text()[:400])
    check(all(abs(e.get("logprob", 0) + (i + 1) / 8) < 1e-6 and bytes(e.get("bytes", [])) ==
              words[i].encode() and [t.get("token") for t in e.get("top_logprobs", [])] ==
              [words[i], "alt1"] for i, e in enumerate(content)), "chat logprob values %r" % content[:2])
    r = chat(port, logprobs=True, stream=True)
    ev, _ = sse(r)
    spelled = "".join(e.get("token", "") for c in ev if isinstance(c, dict) and c.get("choices")
                      for e in ((c["choices"][0].get("logprobs") or {}).get("content") or []))
    check(spelled == "".join(words), "streamed chat logprobs spell the text %r" % spelled)
    r = request(port, "POST", "/v1/completions", {"model": "mock-model", "prompt": "x", "logprobs": 1})
    lp = (((r.json() or {}).get("choices") or [{}])[0]).get("logprobs") or {}
    check(lp.get("tokens") == words and len(lp.get("token_logprobs", [])) == 5 and
          lp.get("top_logprobs", [{}])[0] == {"Hello ": -0.125} and
          lp.get("text_offset") == [0, 6, 11, 15, 20], "completion logprobs %r" % lp)
    # without the request field: no logprobs, as before
    r = chat(port)
    c0 = ((r.json() or {}).get("choices") or [{}])[0]
    check(c0.get("logprobs") is None, "no logprobs unless asked")


def test_client_errors(port):
    is_error(request(port, "GET", "/v1/nothing"), 404)
    r = request(port, "GET", "/v1/chat/completions")
    is_error(r, 405)
    check(r.headers.get("allow") == "POST", "Allow header")
    is_error(request(port, "DELETE", "/healthz"), 405)
    is_error(request(port, "POST", "/v1/chat/completions", b"{}",
                     headers={"Content-Type": "text/plain"}), 415)
    is_error(request(port, "POST", "/v1/chat/completions", b'{"messages": [}'), 400)
    is_error(request(port, "POST", "/v1/chat/completions", b""), 400)
    is_error(request(port, "POST", "/v1/chat/completions", b"\xff\xfe"), 400)
    is_error(chat(port, temperature="warm"), 400, "temperature")
    is_error(chat(port, max_tokens=-1), 400, "max_tokens")
    is_error(chat(port, n=1000), 400, "n")
    is_error(chat(port, stop=[1]), 400, "stop[0]")
    is_error(request(port, "POST", "/v1/chat/completions",
                     {"messages": [{"role": "user", "content": 3}]}), 400, "messages[0].content")
    is_error(request(port, "POST", "/v1/completions", {"prompt": None}), 400, "prompt")
    # oversized: refused from Content-Length, before the body is read
    raw = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: 5000000\r\n\r\n")
    is_error(request(port, None, None, raw=raw), 413)
    big = json.dumps({"model": "m", "messages": [{"role": "user", "content": "a" * 40000}]})
    is_error(request(port, "POST", "/v1/chat/completions", big), 413)
    # headers over the limit
    is_error(request(port, "GET", "/healthz", headers={"X-Pad": "a" * 20000}), 431)
    # truncated body: fewer bytes than announced, then silence -> 408 at the body deadline
    s = dial(port)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
              b"\r\nContent-Length: 100\r\n\r\n{\"messages\":")
    is_error(read_response(s), 408)
    s.close()
    # garbage request line
    is_error(request(port, None, None, raw=b"\x16\x03\x01 hello\r\n\r\n"), 400)
    is_error(request(port, None, None, raw=b"GET /healthz HTTP/2.0\r\n\r\n"), 400)
    is_error(request(port, None, None, raw=b"GET /healthz HTTP/1.1\r\nNoColonHere\r\n\r\n"), 400)
    is_error(request(port, None, None, raw=b"GET /healthz HTTP/1.0\n\n"), 400)  # bare LF


def dribble(port, data, gap):
    """Sends data one byte every gap seconds; returns (response, bytes sent before the answer)."""
    s = dial(port)
    sent = 0
    for b in data:
        try:
            s.sendall(bytes([b]))
        except OSError:
            break
        sent += 1
        time.sleep(gap)
        s.setblocking(False)
        try:
            peek = s.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            peek = None
        except OSError:
            peek = b""
        s.setblocking(True)
        s.settimeout(WAIT_S)
        if peek is not None:
            break  # the server answered (or closed) while we were still sending
    r = read_response(s)
    s.close()
    return r, sent


def test_slow_clients(port):
    # headers one byte every 50 ms: the header deadline (600 ms) does not move with each byte
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 200 + b"\r\n\r\n"
    t0 = time.time()
    r, sent = dribble(port, head, 0.05)
    is_error(r, 408)
    check(sent < len(head), "answered while the client was still sending (%d/%d)" % (sent, len(head)))
    check(r.headers.get("connection", "").lower() == "close", "408 closes the connection")
    print("408 after %.2f s for a %d ms header deadline" % (time.time() - t0, DEADLINE_MS))
    # the body one byte every 50 ms after fast headers
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "b" * 200}]}).encode()
    s = dial(port)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
              b"\r\nContent-Length: %d\r\n\r\n" % len(body))
    r, sent = dribble_on(s, body, 0.05)
    is_error(r, 408)
    check(sent < len(body), "body: answered while the client was still sending")
    # a connection that never sends anything
    s = dial(port)
    is_error(read_response(s), 408)
    s.close()


def dribble_on(s, data, gap):
    sent = 0
    for b in data:
        try:
            s.sendall(bytes([b]))
        except OSError:
            break
        sent += 1
        time.sleep(gap)
        s.setblocking(False)
        try:
            peek = s.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            peek = None
        except OSError:
            peek = b""
        s.setblocking(True)
        s.settimeout(WAIT_S)
        if peek is not None:
            break
    r = read_response(s)
    s.close()
    return r, sent


def test_upstream_failures(port, mock):
    # the upstream answers an error status: passed on as an OpenAI error
    r = chat(port, model="status=500")
    check(r.status in (500, 502), "upstream 500 -> %d" % r.status)
    # the upstream never answers: 504 after upstream.request_timeout_ms
    is_error(chat(port, model="hang"), 504)
    # the upstream cuts the stream: an error event, then [DONE], never a hang
    r = chat(port, model="cut=2", stream=True)
    ev, _ = sse(r)
    check(r.status == 200 and ev and ev[-1] == "[DONE]", "cut stream ends with [DONE]: %r" % ev[-3:])
    check(any(isinstance(e, dict) and "error" in e for e in ev), "cut stream has an error event")
    # the upstream cuts a non-streamed reply: 502
    is_error(chat(port, model="cut=1"), 502)
    is_error(chat(port, model="badjson"), 502)
    # a client that goes away ends its request at once (and cancels the upstream transfer)
    s = dial(port)
    body = json.dumps({"model": "hang", "stream": True,
                       "messages": [{"role": "user", "content": "x"}]}).encode()
    # with the key: without it the request ends at once with 401, and its brief life raced the
    # /metrics poll below (so the check passed or failed by luck, and proved nothing)
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
              b"\r\nAuthorization: " + gwtest.AUTH.encode() + b"\r\n"
              b"Content-Length: %d\r\n\r\n" % len(body) + body)
    seen = wait_for(lambda: "gardefou_inflight_requests 2\n" in
                    request(port, "GET", "/metrics").text())
    check(seen, "the hanging request is in flight")
    s.close()
    # within the hang's request_timeout_ms, so only the client leaving can end it this early
    end = time.time() + UPSTREAM_TIMEOUT_MS / 1000.0 / 2
    gone = False
    while not gone and time.time() < end:
        gone = "gardefou_inflight_requests 1\n" in request(port, "GET", "/metrics").text()
        time.sleep(0.02)
    check(gone, "the request ended when its client left")


def test_metrics(port):
    r = request(port, "GET", "/metrics")
    t = r.text()
    check(r.status == 200 and r.headers.get("content-type", "").startswith("text/plain"), "metrics")
    for want in ('gardefou_requests_total{route="chat_completions",status="200"}',
                 'gardefou_requests_total{route="chat_completions",status="400"}',
                 'gardefou_requests_total{route="none",status="408"}',
                 'gardefou_request_duration_seconds_bucket{route="chat_completions",le="+Inf"}',
                 "gardefou_upstream_errors_total", "gardefou_open_streams 0",
                 "gardefou_sent_bytes_total"):
        check(want in t, "metrics has %s" % want)


def test_upstream_down(gardefou):
    # nothing listens on the upstream port
    # bound, never listening, kept open: connects are refused and no one else can take the port
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    dead = s.getsockname()[1]
    g = start_gateway(gardefou, ["http://127.0.0.1:%d" % dead],
                      ["upstream.health_interval_ms=0", "upstream.models=mock-model"])
    try:
        is_error(chat(g.port), 502)
        is_error(chat(g.port, stream=True), 502)
        is_error(request(g.port, "GET", "/readyz"), 503)
    finally:
        g.stop()
        s.close()


def idle_closing_upstream():
    """A keep-alive upstream that closes each connection 50 ms after its reply, the way servers
    time out idle connections: gardefou keeps such a socket watched between transfers, and must
    neither spin on its EOF nor fail the next request. Returns (port, listening socket)."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    reply = json.dumps({"id": "x", "object": "chat.completion", "created": 1, "model": "m",
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": "idle ok"}}],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 2}}).encode()

    def serve(c):
        buf = b""
        c.settimeout(10)
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    d = c.recv(65536)
                    if not d:
                        return
                    buf += d
                head, _, buf = buf.partition(b"\r\n\r\n")
                n = 0
                for line in head.split(b"\r\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        n = int(v)
                while len(buf) < n:
                    buf += c.recv(65536)
                buf = buf[n:]
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(reply) + reply)
                c.settimeout(0.05)
                try:
                    d = c.recv(65536)
                except socket.timeout:
                    return  # idle: close
                if not d:
                    return
                buf += d
                c.settimeout(10)
        except OSError:
            pass
        finally:
            c.close()

    def accept():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(c,), daemon=True).start()
    threading.Thread(target=accept, daemon=True).start()
    return ls.getsockname()[1], ls


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_upstream_closes_idle(gardefou):
    port, ls = idle_closing_upstream()
    g = start_gateway(gardefou, ["http://127.0.0.1:%d" % port],
                      ["upstream.health_interval_ms=0", "upstream.models=m"])
    try:
        for i in range(3):
            r = chat(g.port, model="m")
            check(r.status == 200 and "idle ok" in r.text(), "reply %d after an idle close: %d %s"
                  % (i, r.status, r.text()[:200]))
            time.sleep(0.3)  # the upstream has closed the idle connection meanwhile
        # idle, gardefou uses next to no CPU; a loop spinning on the closed socket's EOF takes
        # all it is given (at least a few tenths of a second here on a loaded machine)
        c0 = cpu_seconds(g.p.pid)
        time.sleep(2.0)
        used = cpu_seconds(g.p.pid) - c0
        check(used < 0.15, "no busy loop on an idle socket the upstream closed (%.2f s CPU)" % used)
        r = chat(g.port, model="m")
        check(r.status == 200, "reply after the idle close: %d" % r.status)
    finally:
        g.stop()
        ls.close()


def test_connection_cap_and_stop(gardefou, mock):
    """limits.max_connections refuses the next connection with 503; SIGTERM lets an open stream
    finish (server.shutdown_grace_ms) and exits 0."""
    g = start_gateway(gardefou, ["http://127.0.0.1:%d" % mock.port],
                      ["limits.max_connections=2", "limits.header_timeout_ms=5000"])
    try:
        a, b = dial(g.port), dial(g.port)
        time.sleep(0.1)
        c = dial(g.port)
        is_error(read_response(c), 503)
        c.close()
        a.close()
        b.close()
        # the server has seen a and b go once a request is served as the only connection
        # (then at most it and the next one are open, within the cap of 2)
        check(wait_for(lambda: "gardefou_open_connections 1\n" in
                       request(g.port, "GET", "/metrics").text()), "a and b closed")
        # a stream in flight when the stop comes still ends normally
        s = dial(g.port)
        body = json.dumps({"model": "delay=300", "stream": True,
                           "messages": [{"role": "user", "content": "x"}]}).encode()
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  b"Authorization: " + gwtest.AUTH.encode() + b"\r\n"
                  b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        s.recv(1, socket.MSG_PEEK)  # the stream has started
        g.p.send_signal(15)

        # new connections are refused once stopping
        def refused():
            try:
                dial(g.port, timeout=5).close()
                return False
            except OSError:
                return True
        check(wait_for(refused), "no new connections after SIGTERM")
        ev, _ = sse(read_response(s))
        s.close()
        check(ev and ev[-1] == "[DONE]", "the open stream finished after SIGTERM: %r" % ev[-2:])
        check(g.p.wait(WAIT_S) == 0, "serve exits 0 after SIGTERM")
    finally:
        g.stop()


def main():
    gardefou = sys.argv[1]
    mock = start_mock()
    settings = ["limits.header_timeout_ms=%d" % DEADLINE_MS,
                "limits.body_timeout_ms=%d" % DEADLINE_MS,
                "limits.max_body_bytes=32768", "limits.max_header_bytes=8192",
                "stream.ping_interval_ms=100",
                "upstream.request_timeout_ms=%d" % UPSTREAM_TIMEOUT_MS]
    g = start_gateway(gardefou, ["http://127.0.0.1:%d" % mock.port], settings)
    try:
        for t in (test_basics, test_chat, test_stream, test_logprobs, test_client_errors,
                  test_slow_clients):
            t(g.port)
            print("done %s" % t.__name__, file=sys.stderr)
        test_upstream_failures(g.port, mock)
        test_metrics(g.port)
        test_upstream_down(gardefou)
        test_upstream_closes_idle(gardefou)
        test_connection_cap_and_stop(gardefou, mock)
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
