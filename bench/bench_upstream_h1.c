/* bench_upstream_h1.c — the cost of the upstream HTTP/1.1 response parser on every proxied
 * request: a typical ~150-byte head with a small JSON body (whole, and split inside the head as
 * a slow upstream would send it), and a streamed chunked SSE reply in MB/s. Thread CPU time,
 * medians of repeated runs, so that other load on a shared machine moves the figures little. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/upstream_h1.h"
#include "median.h"

#define REPS 15

static int sink(void *ud, const char *p, size_t n)
{
    *(size_t *)ud += n + (unsigned char)p[0]; // touch the bytes so nothing is optimized out
    return 0;
}

static double cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* Median ns to parse in (cut at cut when cut < n) from init to done. */
static double per_response(const char *in, size_t n, size_t cut, int iters)
{
    static struct gf_h1_resp r;
    static size_t acc;
    double v[REPS];
    for (int rep = 0; rep < REPS; rep++) {
        double t0 = cpu_ns();
        for (int i = 0; i < iters; i++) {
            gf_h1_resp_init(&r, false);
            long a = cut < n ? gf_h1_resp_feed(&r, in, cut, sink, &acc) : 0;
            long b = gf_h1_resp_feed(&r, in + a, n - (size_t)a, sink, &acc);
            if (a < 0 || b < 0 || !r.done) {
                fprintf(stderr, "bench_upstream_h1: parse failed: %s\n", r.error);
                exit(1);
            }
        }
        v[rep] = (cpu_ns() - t0) / iters;
    }
    return gf_bench_median(v, REPS);
}

int main(void)
{
    static const char head[] =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 17\r\n"
        "Date: Mon, 30 Nov 2026 14:00:00 GMT\r\nConnection: keep-alive\r\n\r\n"
        "{\"object\":\"list\"}";
    size_t n = strlen(head);
    printf("typical head + 17-byte body (%zu bytes), one feed: %.0f ns\n", n,
           per_response(head, n, n, 200000));
    printf("same, split inside a header line: %.0f ns\n", per_response(head, n, 40, 200000));

    // A streamed reply: 2000 SSE events of ~90 bytes, one chunk each.
    static char stream[1 << 19];
    size_t len = (size_t)snprintf(stream, sizeof(stream),
                                  "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                  "Transfer-Encoding: chunked\r\n\r\n");
    const char ev[] = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" token\"},"
                      "\"finish_reason\":null}]}\n\n";
    for (int i = 0; i < 2000; i++)
        len += (size_t)snprintf(stream + len, sizeof(stream) - len, "%zx\r\n%s\r\n", sizeof(ev) - 1,
                                ev);
    len += (size_t)snprintf(stream + len, sizeof(stream) - len, "0\r\n\r\n");
    double ns = per_response(stream, len, len, 200);
    printf("chunked SSE stream (%zu bytes, 2000 chunks): %.0f MB/s, %.1f ns per chunk\n", len,
           (double)len / ns * 1e3, ns / 2000);
    return 0;
}
