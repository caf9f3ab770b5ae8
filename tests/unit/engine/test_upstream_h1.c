/* Unit tests of engine/upstream_h1.c: every response gives the same status, Content-Type, body
 * and keep-alive whole, split in two at every offset and byte by byte; body bytes come straight
 * from the input in one callback per contiguous run; each malformed, oversized or truncated
 * response fails with its own code, on both sides of every limit. */
#include "engine/upstream_h1.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "test.h"

struct sink {
    char body[16384];
    size_t len;
    int calls;
    bool overflow; // more body than fits in body[]
    bool outside;  // a callback got bytes that do not lie in the input (copied somewhere)
    const char *in;
    size_t in_len;
    int stop_call; // return stop_rc from this call (1-based; 0 = never)
    int stop_rc;
};

static int on_body(void *ud, const char *p, size_t n)
{
    struct sink *k = ud;
    k->calls++;
    if (n == 0 || p < k->in || p + n > k->in + k->in_len)
        k->outside = true;
    if (k->len + n > sizeof(k->body))
        k->overflow = true;
    else
        memcpy(k->body + k->len, p, n);
    k->len += n;
    return k->stop_call == k->calls ? k->stop_rc : 0;
}

struct result {
    long rc;         // the first error of a feed, else what eof returned
    size_t consumed; // sum of the feeds' counts
    bool misbehaved; // a feed returned fewer before done, or something else after done/error
    int status;
    char ctype[128];
    bool done, keep_alive;
    char error[96];
};

/* Feeds in[0..n) in pieces ending at cuts[] (ascending), then closes the connection. */
static void run(const char *in, size_t n, const size_t *cuts, size_t n_cuts, bool no_body,
                struct sink *k, struct result *res)
{
    struct gf_h1_resp r;
    gf_h1_resp_init(&r, no_body);
    memset(res, 0, sizeof(*res));
    k->len = 0;
    k->calls = 0;
    k->overflow = k->outside = false;
    k->in = in;
    k->in_len = n;
    size_t at = 0;
    long err = 0;
    for (size_t i = 0; i <= n_cuts; i++) {
        size_t end = i < n_cuts ? cuts[i] : n;
        bool was_done = r.done;
        long got = gf_h1_resp_feed(&r, in + at, end - at, on_body, k);
        if (err != 0) {
            res->misbehaved |= got != err;
        } else if (got < 0) {
            err = got;
        } else if (was_done) {
            res->misbehaved |= got != 0;
        } else {
            res->consumed += (size_t)got;
            res->misbehaved |= (size_t)got < end - at && !r.done;
        }
        at = end;
    }
    res->rc = err ? err : gf_h1_resp_eof(&r);
    // Whatever ended it, the end sticks.
    long again = gf_h1_resp_feed(&r, "x", 1, on_body, k);
    res->misbehaved |= again != (res->rc ? res->rc : 0);
    res->misbehaved |= gf_h1_resp_eof(&r) != res->rc;
    res->status = r.status;
    memcpy(res->ctype, r.ctype, sizeof(res->ctype));
    res->done = r.done;
    res->keep_alive = r.keep_alive;
    memcpy(res->error, r.error, sizeof(res->error));
}

/* The split modes: 0 = whole, 1 = byte by byte, 2 + a = two pieces cut at a. */
static size_t make_cuts(size_t mode, size_t n, size_t *cuts)
{
    if (mode == 0)
        return 0;
    if (mode == 1) {
        for (size_t i = 1; i < n; i++)
            cuts[i - 1] = i;
        return n > 0 ? n - 1 : 0;
    }
    cuts[0] = mode - 2;
    return 1;
}

struct ok_case {
    const char *name;
    const char *in;
    bool no_body;
    int status;
    const char *ctype;
    const char *body;
    bool keep_alive;
    size_t extra; // bytes after the message, not consumed
};

static const struct ok_case ok_cases[] = {
    {"content-length",
     "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
     "{\"a\":\"bcd\"}",
     false, 200, "application/json", "{\"a\":\"bcd\"}", true, 0},
    {"chunked with extensions and trailers",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
     "Content-Type:  text/event-stream; charset=utf-8 \t\r\n\r\n"
     "5;name=val\r\nhello\r\n6 ; x=\"y\"\r\n world\r\nA\r\n0123456789\r\n"
     "0;end\r\nX-Trailer: 1\r\nChecksum: abc\r\n\r\n",
     false, 200, "text/event-stream; charset=utf-8", "hello world0123456789", true, 0},
    {"streamed SSE in chunks",
     "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
     "Cache-Control: no-cache\r\n\r\n"
     "1b\r\ndata: {\"content\":\"Hello\"}\n\n\r\n"
     "1a\r\ndata: {\"content\":\" you\"}\n\n\r\n"
     "e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n",
     false, 200, "text/event-stream",
     "data: {\"content\":\"Hello\"}\n\ndata: {\"content\":\" you\"}\n\ndata: [DONE]\n\n", true, 0},
    {"read until close", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nstream until close",
     false, 200, "text/plain", "stream until close", false, 0},
    {"until close, empty body", "HTTP/1.1 500 Internal Server Error\r\n\r\n", false, 500, "", "",
     false, 0},
    {"204 ignores Content-Length", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false,
     204, "", "", true, 0},
    {"304 has no body", "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false,
     304, "", "", true, 0},
    {"HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nContent-Type: text/html\r\n\r\n", true,
     200, "text/html", "", true, 0},
    {"HEAD, no framing", "HTTP/1.1 200 OK\r\n\r\n", true, 200, "", "", true, 0},
    {"100-continue, 103, then 200",
     "HTTP/1.1 100 Continue\r\n\r\n"
     "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\nContent-Type: x/interim\r\n"
     "Content-Length: 99\r\nConnection: close\r\n\r\n"
     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
     false, 200, "", "ok", true, 0},
    {"HTTP/1.0 closes", "HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc", false, 200, "", "abc",
     false, 0},
    {"HTTP/1.0 keep-alive",
     "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 3\r\n\r\nabc", false, 200, "",
     "abc", true, 0},
    {"HTTP/1.0 until close", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nabc", false, 200, "",
     "abc", false, 0},
    {"HTTP/1.0 chunked never reused",
     "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"
     "3\r\nabc\r\n0\r\n\r\n",
     false, 200, "", "abc", false, 0},
    {"Connection: close",
     "HTTP/1.1 200 OK\r\nConnection: upgrade, CLOSE\r\nContent-Length: 3\r\n\r\nabc", false, 200,
     "", "abc", false, 0},
    {"Connection: keep-alive on 1.1",
     "HTTP/1.1 200 OK\r\nconnection: ,keep-alive,\r\n"
     "Content-Length: 1\r\n\r\nZ",
     false, 200, "", "Z", true, 0},
    {"pipelined bytes", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\n", false,
     200, "", "abc", true, 17},
    {"pipelined after chunked",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     "2\r\nab\r\n0\r\n\r\nHTTP",
     false, 200, "", "ab", true, 4},
    {"pipelined after empty body", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nX", false, 200, "",
     "", true, 1},
    {"bare LF line ends", "HTTP/1.1 200 OK\nContent-Length: 2\nContent-Type: a/b\n\nhi", false, 200,
     "a/b", "hi", true, 0},
    {"chunked overrides Content-Length, never reused",
     "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: Chunked\r\n\r\n"
     "3\nabc\n0\n\n",
     false, 200, "", "abc", false, 0},
    {"no reason phrase", "HTTP/1.1 200\r\nContent-Length: 1\r\n\r\nA", false, 200, "", "A", true,
     0},
    {"empty reason phrase", "HTTP/1.1 404 \r\nContent-Length: 1\r\n\r\nA", false, 404, "", "A",
     true, 0},
    {"equal Content-Length values",
     "HTTP/1.1 200 OK\r\nContent-Length: 4 , 4\r\ncontent-length:4\r\n\r\nabcd", false, 200, "",
     "abcd", true, 0},
    {"names in any case, empty values",
     "HTTP/1.1 201 Created\r\ncOnTeNt-TyPe:text/plain\r\nX-Empty:\r\nCONTENT-LENGTH: 2\r\n"
     "Connectio2: close\r\nContent-Typo: x\r\nConnection: upgrade ,\tkeep-alive\r\n\r\nhi",
     false, 201, "text/plain", "hi", true, 0},
    {"last Content-Type wins",
     "HTTP/1.1 200 OK\r\nContent-Type: a/a\r\nContent-Type: b/b\r\n"
     "Content-Length: 0\r\n\r\n",
     false, 200, "b/b", "", true, 0},
    {"hex chunk sizes, leading zeros, BWS",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     "0001a \r\nabcdefghijklmnopqrstuvwxyz\r\nF\t;e\r\n0123456789ABCDE\r\n000\r\n\r\n",
     false, 200, "", "abcdefghijklmnopqrstuvwxyz0123456789ABCDE", true, 0},
};

static void test_ok_cases(void)
{
    static size_t cuts[4096];
    static struct sink k;
    for (size_t c = 0; c < sizeof(ok_cases) / sizeof(ok_cases[0]); c++) {
        const struct ok_case *t = &ok_cases[c];
        size_t n = strlen(t->in);
        REQUIRE(n < sizeof(cuts) / sizeof(cuts[0]));
        int bad = 0;
        for (size_t mode = 0; mode < n + 3; mode++) {
            struct result res;
            run(t->in, n, cuts, make_cuts(mode, n, cuts), t->no_body, &k, &res);
            bool same = res.rc == 0 && !res.misbehaved && res.done && res.status == t->status &&
                        strcmp(res.ctype, t->ctype) == 0 && res.keep_alive == t->keep_alive &&
                        res.consumed == n - t->extra && !k.overflow && !k.outside &&
                        k.len == strlen(t->body) && memcmp(k.body, t->body, k.len) == 0;
            if (!same && bad++ == 0)
                fprintf(stderr,
                        "%s, split mode %zu: rc %ld (%s) status %d ctype \"%s\" body "
                        "\"%.*s\" consumed %zu keep %d misbehaved %d\n",
                        t->name, mode, res.rc, res.error, res.status, res.ctype,
                        (int)(k.len < 200 ? k.len : 200), k.body, res.consumed, res.keep_alive,
                        res.misbehaved);
        }
        CHECK_MSG(bad == 0, "%s: %d of %zu splits differ", t->name, bad, n + 3);
    }
}

/* One callback per contiguous run of body bytes: one for a whole Content-Length body, one per
 * chunk when the chunks come whole, two when a split falls inside the body. */
static void test_few_callbacks(void)
{
    static struct sink k;
    struct result res;
    const char *cl = ok_cases[0].in;
    run(cl, strlen(cl), NULL, 0, false, &k, &res);
    CHECK(res.rc == 0 && k.calls == 1);
    size_t head = strstr(cl, "\r\n\r\n") + 4 - cl;
    size_t cut = head + 4;
    run(cl, strlen(cl), &cut, 1, false, &k, &res);
    CHECK(res.rc == 0 && k.calls == 2);
    const char *ch = ok_cases[1].in;
    run(ch, strlen(ch), NULL, 0, false, &k, &res);
    CHECK(res.rc == 0 && k.calls == 3);
    const char *close = ok_cases[3].in;
    run(close, strlen(close), NULL, 0, false, &k, &res);
    CHECK(res.rc == 0 && k.calls == 1);
}

struct bad_case {
    const char *name;
    const char *in;
    int rc;
    const char *why; // a part of r->error, or NULL
};

#define H  "HTTP/1.1 200 OK\r\n"
#define CH H "Transfer-Encoding: chunked\r\n\r\n"
static const struct bad_case bad_cases[] = {
    {"garbage status line", "<html>hello</html>\r\n\r\n", GF_EFORMAT, NULL},
    {"blank line before the status line", "\r\nHTTP/1.1 200 OK\r\n\r\n", GF_EFORMAT, NULL},
    {"lowercase http", "http/1.1 200 OK\r\n\r\n", GF_EFORMAT, NULL},
    {"HTTP/2", "HTTP/2 200 OK\r\n\r\n", GF_EFORMAT, NULL},
    {"HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", GF_EFORMAT, NULL},
    {"HTTP/1.10", "HTTP/1.10 200 OK\r\n\r\n", GF_EFORMAT, NULL},
    {"version without a space", "HTTP/1.1\r\n\r\n", GF_EFORMAT, NULL},
    {"letter in status", "HTTP/1.1 2x0 OK\r\n\r\n", GF_EFORMAT, NULL},
    {"two-digit status", "HTTP/1.1 20 OK\r\n\r\n", GF_EFORMAT, NULL},
    {"four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", GF_EFORMAT, NULL},
    {"status below 100", "HTTP/1.1 099 Low\r\n\r\n", GF_EFORMAT, NULL},
    {"status above 599", "HTTP/1.1 600 High\r\n\r\n", GF_EFORMAT, NULL},
    {"two spaces before status", "HTTP/1.1  200 OK\r\n\r\n", GF_EFORMAT, NULL},
    {"obs-fold", H "X-A: b\r\n  continued\r\nContent-Length: 0\r\n\r\n", GF_EFORMAT, "folding"},
    {"obs-fold by tab", H "\tContent-Length: 0\r\n\r\n", GF_EFORMAT, "folding"},
    {"header without colon", H "NoColon\r\n\r\n", GF_EFORMAT, NULL},
    {"empty header name", H ": value\r\n\r\n", GF_EFORMAT, NULL},
    {"space before colon", H "Content-Length : 0\r\n\r\n", GF_EFORMAT, NULL},
    {"control byte in a name", H "X\001Y: 1\r\n\r\n", GF_EFORMAT, NULL},
    {"bad header line in a 1xx", "HTTP/1.1 100 Continue\r\nBad Name: 1\r\n\r\n" H "\r\n",
     GF_EFORMAT, NULL},
    {"control byte in Content-Type", H "Content-Type: text/plain\001\r\n\r\n", GF_EFORMAT, NULL},
    {"letters in Content-Length", H "Content-Length: 5x\r\n\r\nhello", GF_EFORMAT, NULL},
    {"negative Content-Length", H "Content-Length: -1\r\n\r\n", GF_EFORMAT, NULL},
    {"signed Content-Length", H "Content-Length: +5\r\n\r\nhello", GF_EFORMAT, NULL},
    {"empty Content-Length", H "Content-Length: \r\n\r\n", GF_EFORMAT, NULL},
    {"Content-Length list with a hole", H "Content-Length: 1,,1\r\n\r\nA", GF_EFORMAT, NULL},
    {"trailing comma in Content-Length", H "Content-Length: 1,\r\n\r\nA", GF_EFORMAT, NULL},
    {"Content-Length of 2^64", H "Content-Length: 18446744073709551616\r\n\r\n", GF_EFORMAT,
     "overflows"},
    {"huge Content-Length", H "Content-Length: 99999999999999999999999999\r\n\r\n", GF_EFORMAT,
     NULL},
    {"conflicting Content-Length fields", H "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
     GF_EFORMAT, "conflicting"},
    {"conflicting Content-Length list", H "Content-Length: 6, 5\r\n\r\nhello", GF_EFORMAT,
     "conflicting"},
    {"gzip transfer coding", H "Transfer-Encoding: gzip\r\n\r\n", GF_EFORMAT, NULL},
    {"gzip then chunked", H "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", GF_EFORMAT,
     "unsupported"},
    {"chunked then gzip", H "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n",
     GF_EFORMAT, NULL},
    {"chunked twice", H "Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", GF_EFORMAT, NULL},
    {"chunked with a parameter", H "Transfer-Encoding: chunked;q=1\r\n\r\n", GF_EFORMAT, NULL},
    {"empty Transfer-Encoding", H "Transfer-Encoding: ,\r\n\r\n", GF_EFORMAT, NULL},
    {"101", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n" H "\r\n", GF_EFORMAT,
     "101"},
    {"101 after 100", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 101 Switching\r\n\r\n", GF_EFORMAT,
     NULL},
    {"chunk size not hex", CH "zz\r\n\r\n", GF_EFORMAT, NULL},
    {"empty chunk size", CH "\r\nabc\r\n", GF_EFORMAT, NULL},
    {"space before chunk size", CH " 5\r\nhello\r\n0\r\n\r\n", GF_EFORMAT, NULL},
    {"junk after chunk size", CH "5x\r\nhello\r\n0\r\n\r\n", GF_EFORMAT, NULL},
    {"negative chunk size", CH "-1\r\n\r\n", GF_EFORMAT, NULL},
    {"chunk size of 2^64", CH "10000000000000000\r\n\r\n", GF_EFORMAT, "overflows"},
    {"chunk size overflowing by far", CH "fffffffffffffffffffff\r\n", GF_EFORMAT, NULL},
    {"chunk data too long", CH "5\r\nhelloX\r\n0\r\n\r\n", GF_EFORMAT, NULL},
    {"CR without LF after chunk data", CH "5\r\nhello\rX0\r\n\r\n", GF_EFORMAT, NULL},
    {"obs-fold in the trailer", CH "0\r\nA: 1\r\n 2\r\n\r\n", GF_EFORMAT, NULL},
    {"eof before any byte", "", GF_EFORMAT, "before any"},
    {"eof in the status line", "HTTP/1.1 20", GF_EFORMAT, NULL},
    {"eof in the head", H "Content-Len", GF_EFORMAT, "in the response head"},
    {"eof after a 100", "HTTP/1.1 100 Continue\r\n\r\n", GF_EFORMAT, NULL},
    {"eof before the blank line", H "Content-Length: 3\r\n", GF_EFORMAT, NULL},
    {"eof in the body", H "Content-Length: 10\r\n\r\nabc", GF_EFORMAT, "7 bytes short"},
    {"eof in a huge body", H "Content-Length: 18446744073709551615\r\n\r\nabc", GF_EFORMAT, NULL},
    {"eof in a chunk size", CH "5", GF_EFORMAT, NULL},
    {"eof in a chunk", CH "5\r\nhel", GF_EFORMAT, "in a chunk"},
    {"eof in a huge chunk", CH "ffffffffffffffff\r\nhel", GF_EFORMAT, NULL},
    {"eof after chunk data", CH "5\r\nhello", GF_EFORMAT, NULL},
    {"eof in the CRLF after chunk data", CH "5\r\nhello\r", GF_EFORMAT, NULL},
    {"eof before the last chunk", CH "5\r\nhello\r\n", GF_EFORMAT, NULL},
    {"eof in the trailer", CH "0\r\nX: 1\r\n", GF_EFORMAT, NULL},
};

static void check_bad(const char *name, const char *in, size_t n, int want, const char *why,
                      size_t stride)
{
    static size_t cuts[1 << 17];
    static struct sink k;
    int bad = 0;
    size_t modes = 0;
    for (size_t mode = 0; mode < n + 3; mode += mode < 2 ? 1 : stride) {
        modes++;
        struct result res;
        run(in, n, cuts, make_cuts(mode, n, cuts), false, &k, &res);
        bool wrong = res.rc != want || res.misbehaved || res.done || res.error[0] == '\0' ||
                     (why && strstr(res.error, why) == NULL);
        if (wrong && bad++ == 0)
            fprintf(stderr, "%s, split mode %zu: rc %ld (%s) misbehaved %d done %d\n", name, mode,
                    res.rc, res.error, res.misbehaved, res.done);
    }
    CHECK_MSG(bad == 0, "%s: %d of %zu splits differ", name, bad, modes);
}

static void test_bad_cases(void)
{
    for (size_t c = 0; c < sizeof(bad_cases) / sizeof(bad_cases[0]); c++)
        check_bad(bad_cases[c].name, bad_cases[c].in, strlen(bad_cases[c].in), bad_cases[c].rc,
                  bad_cases[c].why, 1);
}

/* Fills buf with a status line, X-Pad fields and a blank line making exactly size bytes. */
static size_t padded_head(char *buf, size_t size, const char *status)
{
    size_t n = strlen(status);
    memcpy(buf, status, n);
    while (size - n > 2) {
        size_t room = size - n - 2; // what is left before the blank line
        size_t line = room > 1000 ? 1000 : room;
        if (room - line > 0 && room - line < 9)
            line = room - 9; // never leave a remainder too short for a field line
        if (line < 9)
            break;
        memcpy(buf + n, "X-Pad: ", 7);
        memset(buf + n + 7, 'a', line - 9);
        memcpy(buf + n + line - 2, "\r\n", 2);
        n += line;
    }
    memcpy(buf + n, "\r\n", 2);
    return n + 2;
}

static void test_head_limit(void)
{
    static char buf[GF_H1_MAX_HEAD + 64];
    static struct sink k;
    struct result res;
    // Exactly at the limit: accepted. One byte more: refused, however it is split.
    size_t n = padded_head(buf, GF_H1_MAX_HEAD, "HTTP/1.1 204 No Content\r\n");
    REQUIRE(n == GF_H1_MAX_HEAD);
    run(buf, n, NULL, 0, false, &k, &res);
    CHECK(res.rc == 0 && res.done && res.status == 204);
    n = padded_head(buf, GF_H1_MAX_HEAD + 1, "HTTP/1.1 204 No Content\r\n");
    REQUIRE(n == GF_H1_MAX_HEAD + 1);
    check_bad("head one byte over the limit", buf, n, GF_ETOOBIG, "head over", 4099);
    // The limit holds before the head ends too: a head that never ends is refused.
    n = padded_head(buf, GF_H1_MAX_HEAD + 3, "HTTP/1.1 204 No Content\r\n") - 2;
    check_bad("endless head", buf, n, GF_ETOOBIG, "head over", 4099);
    // Interim heads count towards it.
    n = 0;
    const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    while (n + sizeof(cont) - 1 <= GF_H1_MAX_HEAD) {
        memcpy(buf + n, cont, sizeof(cont) - 1);
        n += sizeof(cont) - 1;
    }
    memcpy(buf + n, "HTTP/1.1 204 No Content\r\n\r\n", 28);
    check_bad("interim heads over the limit", buf, n + 28, GF_ETOOBIG, "head over", 4099);
}

static void test_line_limit(void)
{
    static char buf[2 * GF_H1_MAX_LINE];
    static struct sink k;
    struct result res;
    // A field line of GF_H1_MAX_LINE bytes before its LF (its CR included) is the longest.
    size_t n = strlen(H);
    memcpy(buf, H, n);
    memcpy(buf + n, "X-Long: ", 8);
    memset(buf + n + 8, 'a', GF_H1_MAX_LINE - 9);
    memcpy(buf + n + GF_H1_MAX_LINE - 1, "\r\nContent-Length: 0\r\n\r\n", 23);
    size_t total = n + GF_H1_MAX_LINE - 1 + 23;
    run(buf, total, NULL, 0, false, &k, &res);
    CHECK(res.rc == 0 && res.done);
    size_t cut = n + 100;
    run(buf, total, &cut, 1, false, &k, &res); // the long line kept in r->line
    CHECK(res.rc == 0 && res.done);
    // One byte more is refused, whole or split.
    memmove(buf + n + 9, buf + n + 8, total - n - 8);
    buf[n + 8] = 'b';
    check_bad("line one byte over the limit", buf, total + 1, GF_ETOOBIG, "line over", 509);
    // So is a chunk-size line whose extension runs over it.
    n = strlen(CH);
    memcpy(buf, CH, n);
    memcpy(buf + n, "1;", 2);
    memset(buf + n + 2, 'e', GF_H1_MAX_LINE);
    memcpy(buf + n + 2 + GF_H1_MAX_LINE, "\r\nA\r\n0\r\n\r\n", 10);
    check_bad("chunk extension over the limit", buf, n + GF_H1_MAX_LINE + 12, GF_ETOOBIG,
              "line over", 509);
}

/* Content-Type values up to 127 bytes are kept whole; longer ones are cut to 127. */
static void test_ctype_truncated(void)
{
    static char buf[1024];
    static struct sink k;
    struct result res;
    const size_t lens[] = {126, 127, 128, 129, 300};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        char value[301];
        memset(value, 'c', lens[i]);
        value[lens[i]] = '\0';
        int n =
            snprintf(buf, sizeof(buf), H "Content-Type: %s\r\nContent-Length: 0\r\n\r\n", value);
        run(buf, (size_t)n, NULL, 0, false, &k, &res);
        size_t want = lens[i] < sizeof(res.ctype) ? lens[i] : sizeof(res.ctype) - 1;
        CHECK_MSG(res.rc == 0 && strnlen(res.ctype, sizeof(res.ctype)) == want &&
                      strspn(res.ctype, "c") == want,
                  "a Content-Type of %zu bytes", lens[i]);
    }
}

static void test_callback_stops(void)
{
    static struct sink k;
    struct result res;
    const char *in = ok_cases[1].in; // three chunks
    k.stop_call = 2;
    k.stop_rc = -42;
    run(in, strlen(in), NULL, 0, false, &k, &res);
    CHECK(res.rc == -42 && !res.misbehaved && !res.done && k.calls == 2);
    // Stopping on the last bytes of a Content-Length body still stops: not done.
    in = ok_cases[0].in;
    k.stop_call = 1;
    run(in, strlen(in), NULL, 0, false, &k, &res);
    CHECK(res.rc == -42 && !res.misbehaved && !res.done);
    // And when the body runs until the connection closes.
    in = ok_cases[3].in;
    run(in, strlen(in), NULL, 0, false, &k, &res);
    CHECK(res.rc == -42 && !res.misbehaved && !res.done && k.calls == 1);
    in = ok_cases[0].in;
    // A positive value comes back as is too, and sticks.
    k.stop_rc = 7;
    struct gf_h1_resp r;
    gf_h1_resp_init(&r, false);
    k.calls = 0;
    k.len = 0;
    k.in = in;
    k.in_len = strlen(in);
    CHECK(gf_h1_resp_feed(&r, in, strlen(in), on_body, &k) == 7);
    CHECK(gf_h1_resp_feed(&r, in, strlen(in), on_body, &k) == 7 && k.calls == 1);
    CHECK(gf_h1_resp_eof(&r) == 7 && !r.done);
    k.stop_call = 0;
}

static void test_null_callback_and_reuse(void)
{
    struct gf_h1_resp r;
    const char *in = ok_cases[1].in;
    size_t n = strlen(in);
    gf_h1_resp_init(&r, false);
    CHECK(gf_h1_resp_feed(&r, in, n, NULL, NULL) == (long)n);
    CHECK(r.done && r.keep_alive && r.head_done);
    CHECK(gf_h1_resp_feed(&r, in, n, NULL, NULL) == 0);
    // init starts afresh on the same storage, whatever state it held.
    gf_h1_resp_init(&r, false);
    CHECK(!r.done && !r.head_done && r.status == 0 && r.ctype[0] == '\0' && r.error[0] == '\0');
    CHECK(gf_h1_resp_feed(&r, "HTTP/1.1 2", 10, NULL, NULL) == 10 && !r.head_done);
    CHECK(gf_h1_resp_feed(&r, "04 x\r\n\r\n", 8, NULL, NULL) == 8 && r.done && r.status == 204);
}

int main(void)
{
    RUN(test_ok_cases);
    RUN(test_few_callbacks);
    RUN(test_bad_cases);
    RUN(test_head_limit);
    RUN(test_line_limit);
    RUN(test_ctype_truncated);
    RUN(test_callback_stops);
    RUN(test_null_callback_and_reuse);
    return test_report();
}
