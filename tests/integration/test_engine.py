"""test_engine.py — the embedded engine through the gardefou binary: `generate` prints the
reference greedy text of stories260K, `model synth` writes a model that `model info` and
`generate` accept, and `serve` with neither --model nor --upstream creates and serves the
synthetic default model (chat, streaming, a prompt longer than the context -> 400 with both
counts), and serves stories260K with --model/--ctx giving the reference text.
args: the gardefou binary, the shared directory."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gwtest as t  # noqa: E402

GF = sys.argv[1]
SHARED = sys.argv[2] if len(sys.argv) > 2 else "../shared"
STORIES = os.path.join(SHARED, "models", "stories260K.gguf")
ONCE = (", there was a little girl named Lily. She loved to play outside in the park. One day, "
        "she saw a big, red ball. She wanted to play with it, but it was too high.\nLily's mom said")


def run(args, timeout=120):
    return subprocess.run([GF] + args, capture_output=True, text=True, timeout=timeout)


def test_synth_cli(tmp):
    path = os.path.join(tmp, "tiny-q8.gguf")
    r = run(["model", "synth", "--shape", "tiny", "--type", "q8_0", "--out", path, "--no-vocab"])
    t.check(r.returncode == 0 and os.path.exists(path), "synth: " + r.stderr)
    r = run(["model", "info", "--no-tensors", path])
    t.check(r.returncode == 0 and "llama.embedding_length" in r.stdout, "info: " + r.stderr)
    r = run(["generate", "--model", path, "--prompt", "the dog", "-n", "5", "--seed", "1"])
    t.check(r.returncode == 0 and "generated 5 tokens" in r.stderr, "generate synth: " + r.stderr)
    r = run(["model", "synth", "--shape", "huge", "--type", "q8_0", "--out", path])
    t.check(r.returncode == 2 and "unknown shape" in r.stderr, "bad shape: " + r.stderr)
    r = run(["model", "synth", "--shape", "tiny", "--type", "q5_k", "--out", path])
    t.check(r.returncode == 2, "bad type: " + r.stderr)
    r = run(["generate", "--model", path])
    t.check(r.returncode == 2 and "--prompt" in r.stderr, "generate usage: " + r.stderr)
    r = run(["generate", "--model", os.path.join(tmp, "absent.gguf"), "--prompt", "x"])
    t.check(r.returncode == 2 and "absent.gguf" in r.stderr, "generate absent: " + r.stderr)


def test_default_model(tmp):
    data = os.path.join(tmp, "data")
    g = t.start_gateway(GF, [], data_dir=data)
    try:
        t.check(os.path.exists(os.path.join(data, "models", "gardefou-synthetic-tiny.gguf")),
                "default model created")
        r = t.chat(g.port, "hello", model="anything", max_tokens=12)
        j = r.json()
        t.check(r.status == 200, "chat status %d %s" % (r.status, r.text()[:200]))
        t.check(j["usage"]["completion_tokens"] <= 12 and j["usage"]["prompt_tokens"] > 3,
                "usage %r" % j.get("usage"))
        t.check(j["choices"][0]["message"]["role"] == "assistant", "role")
        t.check(j["model"] == "gardefou-synthetic-tiny", "model id %r" % j.get("model"))
        r = t.chat(g.port, "hello", max_tokens=8, stream=True)
        events, _ = t.sse(r)
        t.check(r.status == 200 and events and events[-1] == "[DONE]", "stream %r" % events[-2:])
        r = t.chat(g.port, "word " * 400, max_tokens=8)  # more than the tiny model's 256
        t.is_error(r, 400)
        msg = r.json()["error"]["message"]
        t.check("256" in msg and "tokens" in msg, "400 message gives both counts: " + msg)
    finally:
        g.stop()


def test_stories_serve(tmp):
    g = t.start_gateway(GF, [], settings=["model.path=" + STORIES, "model.ctx=512"],
                        data_dir=os.path.join(tmp, "data2"))
    try:
        r = t.request(g.port, "POST", "/v1/completions",
                      {"model": "stories260K", "prompt": "Once upon a time", "max_tokens": 64,
                       "temperature": 0})
        j = r.json()
        t.check(r.status == 200 and j["choices"][0]["text"] == ONCE,
                "serve text %r" % r.text()[:300])
        t.check(j["usage"] == {"prompt_tokens": 5, "completion_tokens": 64, "total_tokens": 69},
                "usage %r" % j.get("usage"))
        check_logprobs_and_n(g.port)
    finally:
        g.stop()


def check_logprobs_and_n(port):
    """logprobs (chat and completions, streamed and not) and n > 1 from the embedded engine."""
    # completions, greedy, logprobs 3: the legacy arrays; the chosen token is the most likely
    r = t.request(port, "POST", "/v1/completions",
                  {"model": "stories260K", "prompt": "Once upon a time", "max_tokens": 16,
                   "temperature": 0, "logprobs": 3})
    c = r.json()["choices"][0] if r.status == 200 else {}
    lp = c.get("logprobs") or {}
    toks, vals = lp.get("tokens", []), lp.get("token_logprobs", [])
    tops, offs = lp.get("top_logprobs", []), lp.get("text_offset", [])
    t.check(len(toks) == len(vals) == len(tops) == len(offs) == 16,
            "completions logprobs arrays %r" % r.text()[:400])
    t.check("".join(toks) == " " + c.get("text", "") or "".join(toks) == c.get("text"),
            "tokens spell the text: %r vs %r" % (toks, c.get("text")))
    t.check(all(len(d) == 3 and abs(max(d.values()) - v) < 1e-4 and v <= 0
                for d, v in zip(tops, vals)), "greedy: chosen = top-1, %r %r" % (tops[:2], vals[:2]))
    t.check(offs == sorted(offs) and offs[:1] == [0], "text offsets %r" % offs)
    # the engine's compute time for the request, to tell the model from the rest
    st = dict(m.strip().split(";dur=") for m in r.headers.get("server-timing", "").split(","))
    t.check(0 < float(st.get("engine", 0)) <= float(st.get("gateway", 0)),
            "Server-Timing %r" % r.headers.get("server-timing"))
    # chat, n=3 sampled with a seed: three different choices, logprobs spelling each one
    body = {"model": "stories260K", "messages": [{"role": "user", "content": "Tell a story"}],
            "max_tokens": 12, "temperature": 1.0, "seed": 7, "n": 3, "logprobs": True,
            "top_logprobs": 2}
    r = t.request(port, "POST", "/v1/chat/completions", body)
    j = r.json()
    ch = j.get("choices", [])
    t.check(r.status == 200 and [c["index"] for c in ch] == [0, 1, 2], "n=3: %r" % r.text()[:300])
    total = 0
    for c in ch:
        content = (c["logprobs"] or {}).get("content", [])
        total += len(content)
        t.check("".join(e["token"] for e in content) == c["message"]["content"],
                "chat tokens spell the message: %r" % c)
        t.check(all(len(e["top_logprobs"]) == 2 and bytes(e["bytes"]) == e["token"].encode()
                    for e in content), "top_logprobs / bytes %r" % content[:1])
    t.check(j["usage"]["completion_tokens"] == total and j["usage"]["prompt_tokens"] > 0,
            "usage counts every choice once: %r, %d tokens" % (j.get("usage"), total))
    t.check(len({c["message"]["content"] for c in ch}) > 1, "choices differ")
    r2 = t.request(port, "POST", "/v1/chat/completions", body)
    t.check([c["message"]["content"] for c in r2.json()["choices"]] ==
            [c["message"]["content"] for c in ch], "the same seed gives the same n choices")
    # streamed: chunks carry the logprobs of their tokens; both choices finish
    body.update({"stream": True, "n": 2})
    events, _ = t.sse(t.request(port, "POST", "/v1/chat/completions", body))
    text, spelled, finished = {0: "", 1: ""}, {0: "", 1: ""}, set()
    for ev in events:
        if not isinstance(ev, dict):
            continue
        for c in ev.get("choices", []):
            i = c["index"]
            text[i] += c["delta"].get("content", "")
            for e in ((c.get("logprobs") or {}).get("content") or []):
                spelled[i] += e["token"]
            if c.get("finish_reason"):
                finished.add(i)
    t.check(events[-1:] == ["[DONE]"] and finished == {0, 1}, "stream n=2 ends: %r" % events[-3:])
    t.check(text[0] and text == spelled, "stream logprobs spell the text %r %r" % (text, spelled))
    # a client that leaves in the middle of n=3 streamed choices frees all three
    body.update({"n": 3, "max_tokens": 200})
    s = t.dial(port)
    raw = json.dumps(body).encode()
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
              (("Authorization: %s\r\n" % t.AUTH).encode() if t.AUTH else b"") +
              b"Content-Length: %d\r\n\r\n" % len(raw) + raw)
    s.recv(100)
    s.close()
    r = t.request(port, "POST", "/v1/completions",
                  {"model": "stories260K", "prompt": "Once upon a time", "max_tokens": 4,
                   "temperature": 0, "n": 2})
    t.check(r.status == 200 and len(r.json()["choices"]) == 2, "serves after a cancelled n=3")


def main():
    tmp = tempfile.mkdtemp(prefix="gf-engine-it-")
    test_synth_cli(tmp)
    test_default_model(tmp)
    if not os.path.exists(STORIES):
        if t.failed == 0:
            t.skip("%s is absent (%d checks passed without it)" % (STORIES, t.passed))
        return t.report()
    r = run(["generate", "--model", STORIES, "--prompt", "Once upon a time", "-n", "64",
             "--temp", "0"])
    t.check(r.returncode == 0 and r.stdout == ONCE + "\n", "generate text %r" % r.stdout)
    t.check("prompt 5 tokens, generated 64 tokens" in r.stderr, "generate stats " + r.stderr)
    test_stories_serve(tmp)
    return t.report()


if __name__ == "__main__":
    sys.exit(main())
