/* fuzz_sse.c — the SSE parser on arbitrary bytes: the events must not depend on how the bytes
 * are split (whole, at two offsets taken from the input, byte by byte), the cap must hold, and
 * nothing may crash or leak. Input: 2 bytes of split offsets, then the stream. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "engine/upstream_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP 256

static int on_event(void *ud, const char *type, const char *d, size_t len)
{
    struct gf_buf *out = ud;
    if (len > CAP || d[len] != '\0')
        abort();  // the cap holds and data is NUL-terminated (it may hold NULs itself)
    gf_buf_puts(out, type);
    gf_buf_putc(out, '|');
    gf_buf_append(out, d, len);
    gf_buf_putc(out, '\n');
    return 0;
}

/* Feeds p in pieces ending at the offsets cuts[] (ascending, <= n); 0 = one piece. */
static int feed(const char *p, size_t n, const size_t *cuts, size_t n_cuts, struct gf_buf *out)
{
    struct gf_sse s;
    gf_sse_init(&s, CAP);
    size_t at = 0;
    int rc = 0;
    for (size_t i = 0; i <= n_cuts && rc == 0; i++) {
        size_t end = i < n_cuts ? cuts[i] : n;
        rc = gf_sse_feed(&s, p + at, end - at, on_event, out);
        at = end;
    }
    gf_sse_cleanup(&s);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2 || size > 8192)
        return 0;
    const char *p = (const char *)data + 2;
    size_t n = size - 2;
    size_t a = data[0] % (n + 1), b = data[1] % (n + 1);
    size_t cuts[2] = {a < b ? a : b, a < b ? b : a};
    struct gf_buf whole, split, bytes;
    gf_buf_init(&whole, 1 << 20);
    gf_buf_init(&split, 1 << 20);
    gf_buf_init(&bytes, 1 << 20);
    int r1 = feed(p, n, NULL, 0, &whole);
    int r2 = feed(p, n, cuts, 2, &split);
    struct gf_sse s;
    gf_sse_init(&s, CAP);
    int r3 = 0;
    for (size_t i = 0; i < n && r3 == 0; i++)
        r3 = gf_sse_feed(&s, p + i, 1, on_event, &bytes);
    gf_sse_cleanup(&s);
    // The same error, and the same events (all of them when no error came).
    bool same = whole.len == split.len && whole.len == bytes.len &&
                (whole.len == 0 || (memcmp(whole.data, split.data, whole.len) == 0 &&
                                    memcmp(whole.data, bytes.data, whole.len) == 0));
    if (r1 != r2 || r1 != r3 || (r1 == 0 && !same))
        abort();
    gf_buf_cleanup(&whole);
    gf_buf_cleanup(&split);
    gf_buf_cleanup(&bytes);
    return 0;
}
