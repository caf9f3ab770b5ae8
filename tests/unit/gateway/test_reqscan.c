/* test_reqscan.c — the strict HTTP framing checker: a table of accepted and refused requests,
 * each fed whole and byte by byte (the verdict must not depend on how the bytes arrive), both
 * sides of the head and body limits, and where a chunked body ends. */
#include "gateway/reqscan_int.h"

#include <string.h>

#include "test.h"

#define MAX_HEAD 1024
#define MAX_BODY 4096

struct row {
    const char *name;
    const char *req;
    int want;          // GF_RS_HEAD_DONE, GF_RS_DONE or the refusal status
    int nul_at;        // >= 0: put a NUL byte at this offset
};

static const struct row rows[] = {
    {"get", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", GF_RS_HEAD_DONE, -1},
    {"http10", "GET / HTTP/1.0\r\n\r\n", GF_RS_HEAD_DONE, -1},
    {"leading crlf", "\r\n\r\nGET / HTTP/1.1\r\n\r\n", GF_RS_HEAD_DONE, -1},
    {"empty value", "GET / HTTP/1.1\r\nX-A:\r\nX-B:   \r\n\r\n", GF_RS_HEAD_DONE, -1},
    {"cl", "POST / HTTP/1.1\r\nContent-Length:  12 \r\n\r\n", GF_RS_HEAD_DONE, -1},
    {"cl at limit", "POST / HTTP/1.1\r\ncontent-length: 4096\r\n\r\n", GF_RS_HEAD_DONE, -1},
    {"cl over limit", "POST / HTTP/1.1\r\ncontent-length: 4097\r\n\r\n", 413, -1},
    {"cl 30 digits", "POST / HTTP/1.1\r\nContent-Length: 999999999999999999999999999999\r\n\r\n",
     413, -1},
    {"chunked", "POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n"
                "3;ext=1\r\nabc\r\n2 ; e\r\nde\r\n0\r\nX-T: 1\r\n\r\n", GF_RS_DONE, -1},
    {"cl+te", "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
     -1},
    {"te twice", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
                 "\r\n\r\n", 400, -1},
    {"te gzip", "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 400, -1},
    {"te http10", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, -1},
    {"cl twice", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", 400, -1},
    {"cl list", "POST / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n", 400, -1},
    {"cl sign", "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, -1},
    {"cl empty", "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400, -1},
    {"cl inner space", "POST / HTTP/1.1\r\nContent-Length: 1 2\r\n\r\n", 400, -1},
    {"obs-fold", "GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", 400, -1},
    {"bare cr", "GET / HTTP/1.1\rX: a\r\n\r\n", 400, -1},
    {"bare lf", "GET / HTTP/1.1\nX: a\n\n", 400, -1},
    {"bare lf in head", "GET / HTTP/1.1\r\nX: a\nY: b\r\n\r\n", 400, -1},
    {"nul in value", "GET / HTTP/1.1\r\nX: a_b\r\n\r\n", 400, 21},
    {"nul in target", "GET /a_ HTTP/1.1\r\n\r\n", 400, 6},
    {"no colon", "GET / HTTP/1.1\r\nX-A\r\n\r\n", 400, -1},
    {"empty name", "GET / HTTP/1.1\r\n: a\r\n\r\n", 400, -1},
    {"space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, -1},
    {"http09", "GET /\r\n\r\n", 400, -1},
    {"http2", "GET / HTTP/2.0\r\n\r\n", 400, -1},
    {"http12", "GET / HTTP/1.2\r\n\r\n", 400, -1},
    {"long version", "GET / HTTP/1.10\r\n\r\n", 400, -1},
    {"double space", "GET  / HTTP/1.1\r\n\r\n", 400, -1},
    {"no method", " / HTTP/1.1\r\n\r\n", 400, -1},
    {"chunk bad hex", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, -1},
    {"chunk blank line", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\r\n1\r\n", 400,
     -1},
    {"chunk no crlf", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na0\r\n", 400,
     -1},
    {"chunk space no ext", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1 x\r\n", 400,
     -1},
    {"chunk huge", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "FFFFFFFFFFFFFFFFFFFF\r\n", 413, -1},
    {"chunk over body", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1001\r\n", 413,
     -1},
    {"chunks sum over body", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "800\r\n", 413, -1},  // fed twice below: see test_sum
    {"trailer cl", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n"
                   "Content-Length: 5\r\n\r\n", 400, -1},
};

/* Feeds req in pieces of step bytes (0 = whole); returns the first non-MORE result. */
static int feed(const char *req, size_t len, size_t step, struct gf_reqscan *s)
{
    gf_reqscan_init(s, MAX_HEAD, MAX_BODY);
    size_t off = 0;
    int rc = GF_RS_MORE;
    while (off < len) {
        size_t n = step == 0 || len - off < step ? len - off : step;
        size_t used = 0;
        rc = gf_reqscan_feed(s, req + off, n, &used);
        off += used;
        if (rc == GF_RS_ERROR || rc == GF_RS_DONE)
            return rc == GF_RS_ERROR ? s->status : rc;
        if (rc == GF_RS_HEAD_DONE && !s->chunked)
            return rc;
        if (used == 0)
            break;
    }
    return rc;
}

static void test_table(void)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char buf[512];
        size_t len = strlen(rows[i].req);
        REQUIRE(len < sizeof(buf));
        memcpy(buf, rows[i].req, len);
        if (rows[i].nul_at >= 0)
            buf[rows[i].nul_at] = '\0';
        if (strcmp(rows[i].name, "chunks sum over body") == 0)
            continue;
        for (size_t step = 0; step <= 7; step += 1) {
            struct gf_reqscan s;
            int got = feed(buf, len, step, &s);
            CHECK_MSG(got == rows[i].want, "%s (step %zu): got %d want %d (%s)", rows[i].name,
                      step, got, rows[i].want, s.reason ? s.reason : "-");
        }
    }
}

static void test_sum(void)
{
    // two chunks of 2048 fit exactly; a third byte does not
    char req[8192];
    size_t n = 0;
    const char *head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    memcpy(req, head, strlen(head));
    n = strlen(head);
    for (int k = 0; k < 2; k++) {
        memcpy(req + n, "800\r\n", 5);
        n += 5;
        memset(req + n, 'a', 2048);
        n += 2048;
        memcpy(req + n, "\r\n", 2);
        n += 2;
    }
    memcpy(req + n, "0\r\n\r\n", 5);
    struct gf_reqscan s;
    CHECK(feed(req, n + 5, 0, &s) == GF_RS_DONE);
    CHECK(s.body_total == MAX_BODY);
    memcpy(req + n, "1\r\n", 3);
    CHECK(feed(req, n + 3, 0, &s) == 413);
    CHECK(feed(req, n + 3, 3, &s) == 413);
}

static void test_head_limit(void)
{
    // the head may be MAX_HEAD bytes (the final LF is not counted), not one more
    char req[MAX_HEAD + 64];
    const char *rl = "GET / HTTP/1.1\r\nX: ";
    size_t rll = strlen(rl);
    size_t pad = MAX_HEAD - rll - 3;  // + "\r\n\r" = MAX_HEAD
    memcpy(req, rl, rll);
    memset(req + rll, 'a', pad);
    memcpy(req + rll + pad, "\r\n\r\n", 4);
    struct gf_reqscan s;
    CHECK(feed(req, rll + pad + 4, 0, &s) == GF_RS_HEAD_DONE);
    memset(req + rll, 'a', pad + 1);
    memcpy(req + rll + pad + 1, "\r\n\r\n", 4);
    CHECK(feed(req, rll + pad + 5, 0, &s) == 431);
}

static void test_rest_untouched(void)
{
    // bytes after the head of a Content-Length request, or after the end of a chunked body,
    // are not consumed: they belong to the body or to the next request
    const char *a = "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET";
    struct gf_reqscan s;
    gf_reqscan_init(&s, MAX_HEAD, MAX_BODY);
    size_t used = 0;
    CHECK(gf_reqscan_feed(&s, a, strlen(a), &used) == GF_RS_HEAD_DONE);
    CHECK(used == strlen(a) - 6);
    CHECK(s.content_length == 3 && !s.chunked);
    CHECK(gf_reqscan_feed(&s, "x", 1, &used) == GF_RS_HEAD_DONE && used == 0);
    const char *b = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\nGET";
    gf_reqscan_init(&s, MAX_HEAD, MAX_BODY);
    size_t off = 0;
    int rc;
    do {
        rc = gf_reqscan_feed(&s, b + off, strlen(b) - off, &used);
        off += used;
    } while (rc == GF_RS_HEAD_DONE);
    CHECK(rc == GF_RS_DONE);
    CHECK(off == strlen(b) - 3);
    CHECK(gf_reqscan_feed(&s, "x", 1, &used) == GF_RS_DONE && used == 0);
    // a refused request stays refused
    gf_reqscan_init(&s, MAX_HEAD, MAX_BODY);
    CHECK(gf_reqscan_feed(&s, "GET /\n", 6, &used) == GF_RS_ERROR);
    CHECK(gf_reqscan_feed(&s, "GET / HTTP/1.1\r\n\r\n", 18, &used) == GF_RS_ERROR && used == 0);
}

/* The head notes whether it has a Connection header (any case, whole name only), which the
 * reply writer then looks up; a trailer's does not count. */
static void test_connection(void)
{
    static const struct {
        const char *req;
        int want;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", 1},
        {"GET / HTTP/1.1\r\nHost: x\r\nCONNECTION:keep-alive\r\n\r\n", 1},
        {"GET / HTTP/1.1\r\nConnections: close\r\nProxy-Connection: close\r\n\r\n", 0},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nConnection: close\r\n\r\n",
         0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        for (size_t step = 0; step <= 1; step++) {
            struct gf_reqscan s;
            int rc = feed(cases[i].req, strlen(cases[i].req), step, &s);
            CHECK(rc == GF_RS_HEAD_DONE || rc == GF_RS_DONE);
            CHECK(s.connection == cases[i].want);
        }
    }
}

int main(void)
{
    RUN(test_table);
    RUN(test_sum);
    RUN(test_head_limit);
    RUN(test_rest_untouched);
    RUN(test_connection);
    return test_report();
}
