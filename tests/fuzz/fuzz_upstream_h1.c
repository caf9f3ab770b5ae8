/* fuzz_upstream_h1.c — the HTTP/1.1 response parser on arbitrary bytes. The outcome (error code,
 * bytes consumed, status, Content-Type, keep-alive, body) must not depend on how the bytes are
 * split: whole, in pieces of sizes drawn from the first byte, and byte by byte. Each feed
 * consumes at most what it was given, fewer only once done, nothing after; the body never holds
 * more bytes than the input and always comes from inside it. Input: 1 byte of flags (bit 0: the
 * request was HEAD; bit 1: the body callback stops at the 16th byte; the rest seeds the piece
 * sizes), then the response. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/upstream_h1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define STOP_RC (-1000)

struct outcome {
    long rc; // the feeds' error, else what eof returned
    size_t consumed;
    int status;
    char ctype[128];
    bool head_done, done, keep_alive;
    size_t body_len;
    uint64_t body_hash;
    const char *piece; // the bytes of the current feed, for the callback's bounds check
    size_t piece_len;
    bool stop_early;
};

static int on_body(void *ud, const char *p, size_t n)
{
    struct outcome *o = ud;
    if (n == 0 || p < o->piece || p + n > o->piece + o->piece_len)
        abort(); // body bytes come straight from the input, never empty runs
    for (size_t i = 0; i < n; i++)
        o->body_hash = (o->body_hash ^ (unsigned char)p[i]) * UINT64_C(0x100000001b3);
    size_t before = o->body_len;
    o->body_len += n;
    return o->stop_early && before < 16 && o->body_len >= 16 ? STOP_RC : 0;
}

/* Feeds p[0..n) in pieces: size 0 means all at once, else pieces drawn from seed (1 = bytes). */
static void parse(const char *p, size_t n, bool no_body, bool stop_early, unsigned seed,
                  struct outcome *o)
{
    struct gf_h1_resp r;
    gf_h1_resp_init(&r, no_body);
    memset(o, 0, sizeof(*o));
    o->stop_early = stop_early;
    o->body_hash = UINT64_C(0xcbf29ce484222325);
    size_t at = 0;
    long err = 0;
    uint32_t x = seed * 2654435761u + 1;
    while (at < n) {
        size_t len = n - at;
        if (seed == 1) {
            len = 1;
        } else if (seed > 1) {
            x = x * 1103515245u + 12345u;
            len = (x >> 16) % (seed % 97 + 2); // zero-length feeds included
        }
        if (len > n - at)
            len = n - at;
        o->piece = p + at;
        o->piece_len = len;
        bool was_done = r.done;
        long got = gf_h1_resp_feed(&r, p + at, len, on_body, o);
        if (err != 0 && got != err)
            abort(); // an error sticks
        if (err == 0 && got < 0) {
            err = got;
            if (r.done || r.error[0] == '\0')
                abort();
        } else if (err == 0) {
            if ((size_t)got > len || (was_done && got != 0) || ((size_t)got < len && !r.done))
                abort();
            o->consumed += (size_t)got;
        }
        at += len;
    }
    if (o->body_len > n || o->consumed > n)
        abort();
    if (err != 0)
        o->consumed = 0; // what came before the error depends on the split; the rest does not
    o->rc = err ? err : gf_h1_resp_eof(&r);
    if ((o->rc == 0) != r.done || gf_h1_resp_feed(&r, p, n, on_body, o) != (r.done ? 0 : o->rc))
        abort(); // eof ends it one way or the other, and the end sticks
    if (r.done && (!r.head_done || r.status < 200 || r.status > 599))
        abort();
    if (memchr(r.ctype, '\0', sizeof(r.ctype)) == NULL)
        abort();
    o->status = r.status;
    memcpy(o->ctype, r.ctype, sizeof(o->ctype));
    o->head_done = r.head_done;
    o->done = r.done;
    o->keep_alive = r.keep_alive;
    o->piece = NULL;
}

static bool same(const struct outcome *a, const struct outcome *b)
{
    if (a->rc != b->rc || a->status != b->status || a->head_done != b->head_done ||
        strcmp(a->ctype, b->ctype) != 0)
        return false;
    if (a->stop_early)
        return true; // runs split differently stop at different bytes
    return a->consumed == b->consumed && a->done == b->done && a->keep_alive == b->keep_alive &&
           a->body_len == b->body_len && a->body_hash == b->body_hash;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 200000)
        return 0;
    bool no_body = data[0] & 1, stop_early = data[0] & 2;
    unsigned seed = (data[0] >> 2) + 2;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    static struct outcome whole, pieces, bytes;
    parse(p, n, no_body, stop_early, 0, &whole);
    parse(p, n, no_body, stop_early, seed, &pieces);
    parse(p, n, no_body, stop_early, 1, &bytes);
    if (!same(&whole, &pieces) || !same(&whole, &bytes))
        abort();
    return 0;
}
