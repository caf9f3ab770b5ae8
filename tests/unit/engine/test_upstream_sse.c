/* Unit tests of engine/upstream_sse.c: the SSE parser gives the same events whatever the split
 * of its input (every single split offset and byte-at-a-time), handles CRLF/CR/LF, comments,
 * multi-line data and event types, caps oversized events and survives allocation failures. */
#include "engine/upstream_int.h"

#include <stdio.h>
#include <string.h>

#include "test.h"

struct rec {
    struct gf_buf out;  // "type|data\n" per event
    int n;
    int stop_after;     // return 1 from the callback after this many events (0 = never)
};

static int on_event(void *ud, const char *type, const char *data, size_t len)
{
    struct rec *r = ud;
    r->n++;
    gf_buf_printf(&r->out, "%s|", type);
    gf_buf_append(&r->out, data, len);
    gf_buf_putc(&r->out, '\n');
    return r->stop_after && r->n >= r->stop_after ? 1 : 0;
}

/* Feeds in as pieces cut at the offsets a and b; returns the recorded events. */
static int run_split(const char *in, size_t a, size_t b, size_t cap, struct rec *r)
{
    struct gf_sse s;
    gf_sse_init(&s, cap);
    gf_buf_init(&r->out, 1 << 20);
    r->n = 0;
    size_t n = strlen(in);
    int rc = gf_sse_feed(&s, in, a, on_event, r);
    if (rc == 0)
        rc = gf_sse_feed(&s, in + a, b - a, on_event, r);
    if (rc == 0)
        rc = gf_sse_feed(&s, in + b, n - b, on_event, r);
    gf_sse_cleanup(&s);
    return rc;
}

static const char stream[] =
    ": ping\r\n\r\n"
    "data: {\"a\":1}\r\n\r\n"
    "data:first\ndata: second\n\n"
    "event: error\rdata: boom\r\r"
    "id: 7\nretry: 10\ndata\n\n"
    "data:  two spaces\n\n"
    "field without colon\n\n"
    "data: [DONE]\n\n";
static const char expected[] = "message|{\"a\":1}\n"
                               "message|first\nsecond\n"
                               "error|boom\n"
                               "message|\n"  // "data" alone: an empty line of data
                               "message| two spaces\n"
                               "message|[DONE]\n";

static void test_every_split(void)
{
    size_t n = strlen(stream);
    int bad = 0;
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b++) {
            struct rec r = {0};
            int rc = run_split(stream, a, b, 1024, &r);
            if (rc != 0 || r.out.data == NULL || strcmp(r.out.data, expected) != 0)
                bad++;
            gf_buf_cleanup(&r.out);
        }
    }
    CHECK_MSG(bad == 0, "%d splits gave other events", bad);
}

static void test_byte_at_a_time(void)
{
    struct gf_sse s;
    struct rec r = {0};
    gf_sse_init(&s, 1024);
    gf_buf_init(&r.out, 1 << 20);
    for (size_t i = 0; stream[i]; i++)
        CHECK(gf_sse_feed(&s, stream + i, 1, on_event, &r) == 0);
    CHECK_STREQ(r.out.data, expected);
    gf_sse_cleanup(&s);
    gf_buf_cleanup(&r.out);
}

static void test_empty_data_event_is_dispatched_only_with_data(void)
{
    struct rec r = {0};
    CHECK(run_split("event: x\n\n\n\n", 0, 0, 64, &r) == 0);
    CHECK(r.n == 0);  // no data line: nothing to dispatch
    gf_buf_cleanup(&r.out);
    CHECK(run_split("data: a\n", 0, 0, 64, &r) == 0);
    CHECK(r.n == 0);  // not yet ended by a blank line
    gf_buf_cleanup(&r.out);
}

static void test_cap(void)
{
    char big[300];
    memset(big, 'x', sizeof(big));
    memcpy(big, "data: ", 6);
    big[sizeof(big) - 1] = '\0';
    struct rec r = {0};
    CHECK(run_split(big, 0, 100, 128, &r) == GF_ETOOBIG);  // a line that never ends
    gf_buf_cleanup(&r.out);
    // Many short data lines that add up past the cap.
    struct gf_buf in;
    gf_buf_init(&in, 1 << 16);
    for (int i = 0; i < 40; i++)
        gf_buf_puts(&in, "data: 0123456789\n");
    gf_buf_puts(&in, "\n");
    CHECK(run_split(in.data, 0, 0, 128, &r) == GF_ETOOBIG);
    CHECK(r.n == 0);
    gf_buf_cleanup(&r.out);
    CHECK(run_split(in.data, 0, 0, 4096, &r) == 0);
    CHECK(r.n == 1);
    gf_buf_cleanup(&r.out);
    gf_buf_cleanup(&in);
    // An error is sticky.
    struct gf_sse s;
    gf_sse_init(&s, 8);
    CHECK(gf_sse_feed(&s, "data: 0123456789", 16, on_event, &r) == GF_ETOOBIG);
    CHECK(gf_sse_feed(&s, "\n\n", 2, on_event, &r) == GF_ETOOBIG);
    gf_sse_cleanup(&s);
}

static void test_callback_stops(void)
{
    struct rec r = {.stop_after = 2};
    CHECK(run_split(stream, 0, 0, 1024, &r) == 1);
    CHECK(r.n == 2);
    gf_buf_cleanup(&r.out);
}

static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    int ok_at = 0;
    for (long n = 1; n < 100 && !ok_at; n++) {
        struct gf_sse s;
        struct rec r = {0};
        gf_sse_init(&s, 1024);
        gf_alloc_fail_after(n, false);
        int rc = gf_sse_feed(&s, stream, strlen(stream), on_event, &r);
        long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        if (failed == 0)
            ok_at = rc == 0 ? (int)n : -1;
        else
            CHECK(rc == GF_ENOMEM || rc == 0);
        gf_sse_cleanup(&s);
        gf_buf_cleanup(&r.out);
    }
    CHECK(ok_at > 0);
}

int main(void)
{
    RUN(test_every_split);
    RUN(test_byte_at_a_time);
    RUN(test_empty_data_event_is_dispatched_only_with_data);
    RUN(test_cap);
    RUN(test_callback_stops);
    RUN(test_oom);
    return test_report();
}
