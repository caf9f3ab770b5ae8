"""test_upstream_hostile.py — an upstream that answers with broken HTTP: gardefou must answer
its client with a clean 502 (never hang, never crash) and keep serving. The upstream is a small
threaded server here that reads one request per connection and answers with the raw bytes the
request's model names; each case runs with both upstream clients (gardefou's own for http://
and libcurl). usage: test_upstream_hostile.py GARDEFOU"""
import json
import os
import socket
import socketserver
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwtest as gw  # noqa: E402

OK_BODY = json.dumps({
    "id": "chatcmpl-h", "object": "chat.completion", "created": 1700000000, "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
OK = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
      % len(OK_BODY)) + OK_BODY


def chunked(body, size=7):
    out = b""
    for i in range(0, len(body), size):
        part = body[i:i + size]
        out += b"%x\r\n" % len(part) + part + b"\r\n"
    return out + b"0\r\n\r\n"


# model -> (raw reply, whether it is a valid reply the client gets as 200)
CASES = {
    "garbage": (b"<html>not http</html>\r\n\r\n", False),
    "badstatus": (b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", False),
    # heads past gardefou's own limit (64 KiB) and libcurl's (100 KiB a line, 300 KiB in all)
    "hugehead": (b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 110000 + b"\r\n\r\n", False),
    "manyheaders": (b"HTTP/1.1 200 OK\r\n" + b"X-P: aaaaaaaaaaaaaaaa\r\n" * 16000 + b"\r\n",
                    False),
    "badchunk": (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\nzz\r\n" + OK_BODY, False),
    "chunkoverflow": (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"fffffffffffffffffffff\r\n", False),
    "shortbody": (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n"
                  b"\r\n" + OK_BODY[:20], False),
    "nothing": (b"", False),
    "headonly": (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n", False),
    "conflictlen": (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
                    False),
    "chunked": (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n" + chunked(OK_BODY), True),
    "untilclose": (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                   b"\r\n" + OK_BODY, True),
    "interim": (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                + OK, True),
    "lf": (OK.replace(b"\r\n", b"\n"), True),
}


CLOSE_AFTER = ("nothing", "shortbody", "headonly", "untilclose")


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            self.serve()
        except OSError:
            pass  # the gateway closed the connection: nothing more to answer

    def serve(self):
        s = self.request
        s.settimeout(10)
        while True:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, rest = data.split(b"\r\n\r\n", 1)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v.strip())
            while len(rest) < length:
                chunk = s.recv(65536)
                if not chunk:
                    return
                rest += chunk
            if head.startswith(b"GET /v1/models"):
                body = b'{"data":[{"id":"hostile"}]}'
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          b"Content-Length: %d\r\n\r\n" % len(body) + body)
                continue
            try:
                model = json.loads(rest[:length]).get("model", "")
            except ValueError:
                model = ""
            raw, _ = CASES.get(model, (OK, True))
            s.sendall(raw)
            # The connection stays open after a malformed reply, so that only the client's
            # parser can end the request (not the close); the replies cut short and the one
            # read until close need the close.
            if model in CLOSE_AFTER:
                try:
                    s.shutdown(socket.SHUT_WR)
                except OSError:
                    pass  # the client had already gone
                return


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


def run(gardefou, port, client):
    g = gw.start_gateway(gardefou, ["http://127.0.0.1:%d" % port],
                         settings=["upstream.client=" + client, "upstream.health_interval_ms=0",
                                   "upstream.request_timeout_ms=5000"])
    try:
        for model, (_, valid) in CASES.items():
            r = gw.chat(g.port, model=model)
            if valid:
                ok = r.status == 200 and r.json()["choices"][0]["message"]["content"] == "fine"
            else:
                ok = r.status == 502 and r.json()["error"]["type"] == "upstream_error"
            gw.check(ok, "%s: %s: %d %r" % (client, model, r.status, r.body[:160]))
            r = gw.chat(g.port, model="normal")
            gw.check(r.status == 200, "%s: a normal request after %s: %d" % (client, model,
                                                                            r.status))
        gw.check(g.p.poll() is None, "%s: gardefou is still running" % client)
    finally:
        g.stop()


def main():
    gardefou = sys.argv[1]
    srv = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        for client in ("auto", "curl"):
            run(gardefou, srv.server_address[1], client)
    finally:
        srv.shutdown()
    return gw.report()


if __name__ == "__main__":
    sys.exit(main())
