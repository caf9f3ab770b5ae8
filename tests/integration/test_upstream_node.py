"""test_upstream_node.py — gardefou in front of an upstream that is not our mock: Node's own
HTTP/1.1 server (tests/node/upstream.mjs), which frames every reply with chunked encoding, writes
replies in pieces and closes idle keep-alive connections after 200 ms. Run with both upstream
clients (gardefou's own for http://, and libcurl): plain and streamed replies, a reply of a few
hundred KiB, and requests spaced past the upstream's keep-alive timeout (the idle connection it
closed must not cost a failed request). usage: test_upstream_node.py GARDEFOU"""
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwtest as gw  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
UPSTREAM_JS = os.path.join(HERE, "..", "node", "upstream.mjs")


def content(resp):
    j = resp.json()
    return j["choices"][0]["message"]["content"] if j and "choices" in j else None


def streamed_text(resp):
    events, _ = gw.sse(resp)
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events
                   if isinstance(e, dict) and e.get("choices"))
    return text, events


def run(gardefou, port, client):
    g = gw.start_gateway(gardefou, ["http://127.0.0.1:%d" % port],
                         settings=["upstream.client=" + client, "upstream.health_interval_ms=0"])
    try:
        for i in range(6):
            r = gw.chat(g.port, model="node-model")
            gw.check(r.status == 200 and content(r) == "Hello from node.",
                     "%s: plain %d: %d %r" % (client, i, r.status, r.body[:200]))
            r = gw.chat(g.port, model="node-model", stream=True)
            text, events = streamed_text(r)
            gw.check(r.status == 200 and text == "Hello from node." and events[-1] == "[DONE]",
                     "%s: stream %d: %d %r" % (client, i, r.status, r.body[:200]))
            if i % 2 == 1:
                time.sleep(0.35)  # past the upstream's keep-alive timeout: it closed the connection
        want = " ".join("w%d" % i for i in range(30000))
        r = gw.chat(g.port, model="big")
        gw.check(r.status == 200 and content(r) == want,
                 "%s: big plain reply: %d, %d bytes" % (client, r.status, len(r.body)))
        r = gw.chat(g.port, model="big", stream=True)
        text, events = streamed_text(r)
        gw.check(r.status == 200 and text == want and events[-1] == "[DONE]",
                 "%s: big streamed reply: %d, %d chars" % (client, r.status, len(text)))
    finally:
        g.stop()


def main():
    gardefou = sys.argv[1]
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        gw.skip("node is not installed")
    up = gw.Proc([node, UPSTREAM_JS], "port=")
    if up.line is None:
        up.stop()
        raise RuntimeError("node upstream did not start: " + up.err_text())
    port = int(up.line.split("=", 1)[1])
    try:
        for client in ("auto", "curl"):
            run(gardefou, port, client)
    finally:
        up.stop()
    return gw.report()


if __name__ == "__main__":
    sys.exit(main())
