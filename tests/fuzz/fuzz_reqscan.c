/* fuzz_reqscan.c — the strict HTTP framing checker (gateway/reqscan.c) on arbitrary bytes: it
 * must never read out of bounds, never consume more than it was given, and give the same verdict
 * whether the bytes come at once or split at every third byte. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/reqscan_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run(const uint8_t *data, size_t size, size_t step, struct gf_reqscan *s)
{
    gf_reqscan_init(s, 2048, 65536);
    size_t off = 0;
    int rc = GF_RS_MORE;
    while (off < size) {
        size_t n = step == 0 || size - off < step ? size - off : step;
        size_t used = 0;
        rc = gf_reqscan_feed(s, (const char *)data + off, n, &used);
        if (used > n)
            abort();
        off += used;
        if (rc == GF_RS_ERROR || rc == GF_RS_DONE || (rc == GF_RS_HEAD_DONE && !s->chunked))
            break;
        if (used == 0)
            abort();  // MORE or chunked HEAD_DONE must make progress
    }
    return rc == GF_RS_ERROR ? 1000 + s->status : rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gf_reqscan a, b;
    int ra = run(data, size, 0, &a);
    int rb = run(data, size, 3, &b);
    if (ra != rb)
        abort();
    if (ra >= 1000 && (a.reason == NULL || (a.status != 400 && a.status != 413 &&
                                             a.status != 431)))
        abort();
    return 0;
}
