/* upstream_sse.c — an incremental Server-Sent Events parser (the WHATWG event-stream format).
 * Bytes arrive split anywhere, even inside a CRLF; the parser keeps the current line and event
 * in buffers capped at max_event, so a peer that never ends a line cannot grow our memory. */
#include "engine/upstream_int.h"

#include <string.h>

void gf_sse_init(struct gf_sse *s, size_t max_event)
{
    memset(s, 0, sizeof(*s));
    gf_buf_init(&s->line, max_event);
    gf_buf_init(&s->data, max_event);
}

void gf_sse_cleanup(struct gf_sse *s)
{
    gf_buf_cleanup(&s->line);
    gf_buf_cleanup(&s->data);
}

/* Applies one complete line l of n bytes (without its end) to the event being built; a blank
 * line dispatches it. */
static int line_done(struct gf_sse *s, const char *l, size_t n, gf_sse_event_fn cb, void *ud)
{
    int rc = 0;
    if (n == 0) {
        if (s->data.len > 0) {
            // The data lines were each followed by '\n'; the last one is not part of the data.
            s->data.len--;
            s->data.data[s->data.len] = '\0';
            rc = cb(ud, s->type[0] ? s->type : "message", s->data.data, s->data.len);
        }
        gf_buf_reset(&s->data);
        s->type[0] = '\0';
        return rc;
    }
    if (l[0] == ':')
        return 0;  // a comment (keep-alive ping)
    const char *colon = memchr(l, ':', n);
    size_t flen = colon ? (size_t)(colon - l) : n;
    const char *v = colon ? colon + 1 : l + n;
    size_t vlen = (size_t)(l + n - v);
    if (vlen > 0 && v[0] == ' ') {
        v++;
        vlen--;
    }
    if (flen == 4 && memcmp(l, "data", 4) == 0) {
        rc = gf_buf_append(&s->data, v, vlen);
        if (rc == 0)
            rc = gf_buf_putc(&s->data, '\n');
    } else if (flen == 5 && memcmp(l, "event", 5) == 0) {
        size_t k = vlen < sizeof(s->type) - 1 ? vlen : sizeof(s->type) - 1;
        memcpy(s->type, v, k);
        s->type[k] = '\0';
    }
    // id, retry and unknown fields do not matter to a one-shot stream.
    return rc;
}

/* The first '\n' or '\r' of the n bytes at p, or NULL (two vectorized searches rather than a
 * loop over every byte). */
static const char *line_end(const char *p, size_t n)
{
    const char *nl = memchr(p, '\n', n);
    const char *cr = memchr(p, '\r', nl ? (size_t)(nl - p) : n);
    return cr ? cr : nl;
}

int gf_sse_feed(struct gf_sse *s, const char *p, size_t n, gf_sse_event_fn cb, void *ud)
{
    if (s->error)
        return s->error;
    size_t i = 0;
    while (i < n) {
        if (s->after_cr && p[i] == '\n') {
            s->after_cr = false;
            i++;
            continue;
        }
        s->after_cr = false;
        const char *e = line_end(p + i, n - i);
        size_t j = e ? (size_t)(e - p) : n;
        int rc;
        if (j == n || s->line.len > 0) {
            // A line split across reads is gathered in s->line (capped).
            if (j > i && (rc = gf_buf_append(&s->line, p + i, j - i)) != 0)
                return s->error = rc;
            if (j == n)
                break;
            rc = line_done(s, s->line.data, s->line.len, cb, ud);
            gf_buf_reset(&s->line);
        } else {
            // A whole line in this read is used where it is, under the same cap.
            if (j - i > s->line.max)
                return s->error = GF_ETOOBIG;
            rc = line_done(s, p + i, j - i, cb, ud);
        }
        s->after_cr = p[j] == '\r';
        i = j + 1;
        if (rc != 0)
            return s->error = rc;
    }
    return 0;
}
