#!/usr/bin/env python3
"""test_malformed.py — malformed and smuggling-style requests over raw sockets against the real
`gardefou serve`: each must get a 4xx (or a plain close where no HTTP answer is possible) and a
closed connection within a few seconds, and a request smuggled behind it must never get a reply.
usage: test_malformed.py GARDEFOU   (GF_MOCK_UPSTREAM names the mock upstream executable)"""
import select
import sys
import time

import gwtest
from gwtest import check, dial, report, request, start_gateway, start_mock

CASE_TIMEOUT = 5.0   # seconds a case may take before it counts as a hang
H = b"Host: x\r\n"
SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def post(headers, body=b""):
    """A chat request with the test key (lazily: the key exists once the server started)."""
    return Post(headers, body)


class Post:
    def __init__(self, headers, body):
        self.headers, self.body = headers, body
        self.after = b""

    def __add__(self, more):
        p = Post(self.headers, self.body)
        p.after = self.after + more
        return p

    def __radd__(self, before):
        raise TypeError("Post must come first")

    def bytes(self):
        auth = b"Authorization: %s\r\n" % gwtest.AUTH.encode() if gwtest.AUTH else b""
        return (b"POST /v1/chat/completions HTTP/1.1\r\n" + H + auth +
                b"Content-Type: application/json\r\n" + self.headers + b"\r\n" + self.body +
                self.after)


BODY = b'{"model":"mock-model","messages":[{"role":"user","content":"hi"}]}'
CHUNKED = b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)

# (name, raw bytes, close_ok): close_ok allows a close without any answer
CASES = [
    # Content-Length and Transfer-Encoding together: the classic CL.TE / TE.CL desync
    ("cl_and_te", post(b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(CHUNKED),
                       CHUNKED) + SMUGGLED, False),
    ("te_and_cl", post(b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n", CHUNKED) +
     SMUGGLED, False),
    ("te_obfuscated", post(b"Transfer-Encoding: xchunked\r\n", CHUNKED) + SMUGGLED, False),
    ("te_list", post(b"Transfer-Encoding: chunked, identity\r\n", CHUNKED) + SMUGGLED, False),
    ("te_twice", post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", CHUNKED) +
     SMUGGLED, False),
    ("te_gzip", post(b"Transfer-Encoding: gzip\r\n", CHUNKED), False),
    ("te_space_before_colon", post(b"Transfer-Encoding : chunked\r\nContent-Length: 3\r\n",
                                   CHUNKED) + SMUGGLED, False),
    ("te_http10", b"POST /v1/chat/completions HTTP/1.0\r\n" + H +
     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + CHUNKED, False),
    # Content-Length variants
    ("cl_duplicate_differ", post(b"Content-Length: %d\r\nContent-Length: 2\r\n" % len(BODY),
                                 BODY) + SMUGGLED, False),
    ("cl_duplicate_same", post(b"Content-Length: %d\r\nContent-Length: %d\r\n" %
                               (len(BODY), len(BODY)), BODY) + SMUGGLED, False),
    ("cl_list", post(b"Content-Length: %d, %d\r\n" % (len(BODY), len(BODY)), BODY), False),
    ("cl_non_numeric", post(b"Content-Length: abc\r\n", BODY), False),
    ("cl_trailing_junk", post(b"Content-Length: %da\r\n" % len(BODY), BODY), False),
    ("cl_plus", post(b"Content-Length: +%d\r\n" % len(BODY), BODY), False),
    ("cl_hex", post(b"Content-Length: 0x10\r\n", BODY), False),
    ("cl_negative", post(b"Content-Length: -1\r\n", BODY) + SMUGGLED, False),
    ("cl_empty", post(b"Content-Length: \r\n", BODY), False),
    ("cl_huge", post(b"Content-Length: 99999999999999999999999999\r\n", BODY), False),
    ("cl_on_get_short_body", b"GET /healthz HTTP/1.1\r\n" + H + b"Content-Length: 50\r\n\r\n" +
     SMUGGLED, False),
    # header syntax
    ("obs_fold", b"GET /healthz HTTP/1.1\r\n" + H + b"X-A: a\r\n  folded\r\n\r\n", False),
    ("obs_fold_tab_cl", post(b"Content-Length:\r\n\t%d\r\n" % len(BODY), BODY), False),
    ("obs_fold_first", b"GET /healthz HTTP/1.1\r\n Host: x\r\n\r\n", False),
    ("bare_cr_line", b"GET /healthz HTTP/1.1\rHost: x\r\n\r\n", False),
    ("bare_cr_in_value", b"GET /healthz HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", False),
    ("bare_lf_lines", b"GET /healthz HTTP/1.1\nHost: x\n\n", False),
    ("bare_lf_header", b"GET /healthz HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", False),
    ("nul_request_line", b"GET /heal\x00thz HTTP/1.1\r\n" + H + b"\r\n", True),
    ("nul_header_value", b"GET /healthz HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", False),
    ("nul_header_name", b"GET /healthz HTTP/1.1\r\n" + H + b"X-\x00A: b\r\n\r\n", False),
    ("ctl_header_value", b"GET /healthz HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n", False),
    ("header_no_colon", b"GET /healthz HTTP/1.1\r\n" + H + b"X-Name-Only\r\n\r\n", False),
    ("header_empty_name", b"GET /healthz HTTP/1.1\r\n" + H + b": value\r\n\r\n", False),
    ("header_space_in_name", b"GET /healthz HTTP/1.1\r\n" + H + b"X A: b\r\n\r\n", False),
    ("header_space_before_colon", b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n", False),
    ("header_bad_name_char", b"GET /healthz HTTP/1.1\r\n" + H + b"X(A): b\r\n\r\n", False),
    ("headers_10000", b"GET /healthz HTTP/1.1\r\n" + H + b"X-A: b\r\n" * 10000 + b"\r\n", False),
    ("headers_10000_tiny", b"GET /healthz HTTP/1.1\r\n" + H + b"a:b\r\n" * 10000 + b"\r\n",
     False),
    # request line
    ("long_request_line", b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\n" + H + b"\r\n", False),
    ("http09", b"GET /healthz\r\n\r\n", True),
    ("http2_version", b"GET /healthz HTTP/2.0\r\n" + H + b"\r\n", False),
    ("http12_version", b"GET /healthz HTTP/1.2\r\n" + H + b"\r\n", False),
    ("http_junk_version", b"GET /healthz HTTP/1.1x\r\n" + H + b"\r\n", False),
    ("https_version", b"GET /healthz HTTPS/1.1\r\n" + H + b"\r\n", False),
    ("lower_version", b"GET /healthz http/1.1\r\n" + H + b"\r\n", False),
    ("double_space", b"GET  /healthz HTTP/1.1\r\n" + H + b"\r\n", False),
    ("tab_separator", b"GET\t/healthz HTTP/1.1\r\n" + H + b"\r\n", False),
    ("extra_token", b"GET /healthz HTTP/1.1 extra\r\n" + H + b"\r\n", False),
    ("bad_method_char", b"G(T /healthz HTTP/1.1\r\n" + H + b"\r\n", False),
    ("space_in_target", b"GET /heal thz HTTP/1.1\r\n" + H + b"\r\n", False),
    ("tls_hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64, True),
    # chunked bodies
    ("chunk_huge_size", post(b"Transfer-Encoding: chunked\r\n",
                             b"FFFFFFFFFFFFFFFFFFFFFFFF\r\nabc\r\n"), False),
    ("chunk_size_over_limit", post(b"Transfer-Encoding: chunked\r\n",
                                   b"7FFFFFFF\r\nabc\r\n"), False),
    ("chunk_negative", post(b"Transfer-Encoding: chunked\r\n", b"-5\r\nabcde\r\n0\r\n\r\n"),
     False),
    ("chunk_not_hex", post(b"Transfer-Encoding: chunked\r\n", b"zz\r\nabc\r\n0\r\n\r\n"), False),
    ("chunk_missing_crlf", post(b"Transfer-Encoding: chunked\r\n",
                                b"%x\r\n%s0\r\n\r\n" % (len(BODY), BODY)) + SMUGGLED, False),
    ("chunk_extra_blank", post(b"Transfer-Encoding: chunked\r\n",
                               b"\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)), False),
    ("chunk_bare_lf", post(b"Transfer-Encoding: chunked\r\n",
                           b"%x\n%s\n0\n\n" % (len(BODY), BODY)), False),
    ("chunk_size_space", post(b"Transfer-Encoding: chunked\r\n",
                              b"%x \r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)), False),
    ("chunk_too_much_data", post(b"Transfer-Encoding: chunked\r\n",
                                 b"2\r\nabcdef\r\n0\r\n\r\n") + SMUGGLED, False),
    ("chunk_truncated", post(b"Transfer-Encoding: chunked\r\n", b"10\r\nabc"), False),
    # a valid request, then a bad one on the same connection: the first is served, the bad one
    # refused, nothing after it answered
    ("pipelined_bad_second", b"GET /healthz HTTP/1.1\r\n" + H + b"\r\n" +
     b"GET /healthz HTTP/1.1\r\n" + H + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab" +
     SMUGGLED, False),
    ("pipelined_bad_after_post", post(b"Content-Length: %d\r\n" % len(BODY), BODY) +
     b"GET /healthz HTTP/1.1\nHost: x\n\n" + SMUGGLED, False),
]


def statuses(data):
    """Status codes of the responses in data, in order (bodies skipped by Content-Length)."""
    out = []
    while data.startswith(b"HTTP/"):
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.split(b"\r\n")
        try:
            out.append(int(lines[0].split()[1]))
        except (IndexError, ValueError):
            out.append(-1)
            break
        n = 0
        chunked = False
        for ln in lines[1:]:
            k, _, v = ln.partition(b":")
            if k.strip().lower() == b"content-length":
                n = int(v.strip() or b"0")
            if k.strip().lower() == b"transfer-encoding":
                chunked = True
        if chunked:
            end = rest.find(b"\r\n0\r\n\r\n")
            rest = rest[end + 7:] if end >= 0 else b""
            if rest.startswith(b"\r\n"):
                rest = rest[2:]
            data = rest
        else:
            data = rest[n:]
    if data and not out:
        out.append(-1)  # bytes that are not HTTP
    return out


def exchange(port, raw):
    """Sends raw, reads until the server closes. Returns (data, closed, seconds)."""
    s = dial(port)
    t0 = time.time()
    try:
        s.sendall(raw)
    except OSError:
        pass  # the server may refuse and close while we are still sending
    data = b""
    closed = False
    s.setblocking(False)
    while time.time() - t0 < CASE_TIMEOUT:
        r, _, _ = select.select([s], [], [], 0.1)
        if not r:
            continue
        try:
            chunk = s.recv(65536)
        except BlockingIOError:
            continue
        except OSError:
            closed = True  # reset
            break
        if not chunk:
            closed = True
            break
        data += chunk
    s.close()
    return data, closed, time.time() - t0


def run_case(port, name, raw, close_ok):
    if isinstance(raw, Post):
        raw = raw.bytes()
    data, closed, secs = exchange(port, raw)
    st = statuses(data)
    check(closed, "%s: connection closed (%.1f s, got %r)" % (name, secs, data[:120]))
    if name.startswith("pipelined_"):
        check(len(st) == 2 and st[0] == 200 and 400 <= st[1] < 500,
              "%s: first served, second refused: %r" % (name, st))
        return
    if close_ok and not st:
        return
    check(len(st) == 1 and 400 <= st[0] < 500, "%s: one 4xx reply, got %r %r" %
          (name, st, data[:200]))


def main():
    gardefou = sys.argv[1]
    mock = start_mock()
    settings = ["limits.header_timeout_ms=1500", "limits.body_timeout_ms=1500",
                "limits.max_body_bytes=65536", "limits.max_header_bytes=16384"]
    g = start_gateway(gardefou, ["http://127.0.0.1:%d" % mock.port], settings)
    try:
        for name, raw, close_ok in CASES:
            run_case(g.port, name, raw, close_ok)
        # well-formed pipelined requests are all served, a chunked POST among them
        good = (b"GET /healthz HTTP/1.1\r\n" + H + b"\r\n" +
                post(b"Transfer-Encoding: chunked\r\n", CHUNKED).bytes() +
                b"GET /healthz HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
        data, closed, _ = exchange(g.port, good)
        check(closed and statuses(data) == [200, 200, 200],
              "three pipelined requests served: %r %r" % (statuses(data), data[-300:]))
        # the server is still fine, and well-formed requests still work (also chunked bodies)
        r = request(g.port, "GET", "/healthz")
        check(r.status == 200, "healthz after the table: %d" % r.status)
        r = request(g.port, None, None, raw=post(b"Connection: close\r\n"
                                                 b"Transfer-Encoding: chunked\r\n",
                                                 CHUNKED).bytes())
        check(r.status == 200, "a well-formed chunked body is served: %d %s" %
              (r.status, r.text()[:200]))
        r = request(g.port, None, None, raw=post(b"Connection: close\r\nX-Empty:\r\n"
                                                 b"Content-Length: %d\r\n" % len(BODY),
                                                 BODY).bytes())
        check(r.status == 200, "an empty header value is legal: %d %s" %
              (r.status, r.text()[:200]))
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
