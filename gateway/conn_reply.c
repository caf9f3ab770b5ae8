/* conn_reply.c — the head of a 200 reply written by the gateway rather than by evhttp, the same
 * bytes evhttp_send_reply or evhttp_send_reply_start would write for it. evhttp formats every
 * header line with a printf and copies each header into its own allocations first: about a
 * tenth of a proxied request's instructions on the loop thread. The common case (HTTP/1.1
 * keep-alive, not HEAD, no header of evhttp's own already set) is written here with plain
 * copies; everything else goes the evhttp way. Invariant: for a covered request the bytes on the
 * wire are the same either way — status line, the request's output headers in order, then the
 * headers evhttp would have added after them — and evhttp still ends the request (send_done
 * through the bufferevent's write callback, as after its own writes). A stream's head and chunk
 * framing go through evhttp_send_reply_chunk as plain bytes: evhttp never started a reply, so it
 * adds no framing of its own and keeps its usual write state. */
#include "gateway/gateway_int.h"

#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

/* Headers evhttp adds, replaces or looks at when it builds a reply: one already set by a hook
 * sends the reply the evhttp way. */
static bool evhttp_owns(const char *key)
{
    char k = (char)(key[0] | 0x20);
    if (k != 'c' && k != 'd' && k != 't' && k != 'p')
        return false; // most of ours (x-...) stop here
    static const char *const owned[] = {"content-type", "content-length", "transfer-encoding",
                                        "date", "connection", "proxy-connection"};
    for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
        if (strcasecmp(key, owned[i]) == 0)
            return true;
    return false;
}

static bool covered(struct gf_conn *c, struct evhttp_request *req,
                    const struct gf_reply_hdr *hdrs, size_t n_hdrs)
{
    // A chunked request body leaves evhttp's chunked flag set on the request, which would
    // make evhttp_send_reply_end append a last chunk to the reply.
    if (c == NULL || c->flush == NULL || c->hold == NULL || c->scan.minor != 1 ||
        c->scan.chunked || evhttp_request_get_connection(req) == NULL ||
        evhttp_request_get_command(req) == EVHTTP_REQ_HEAD)
        return false;
    // an absolute request target makes evhttp treat the request as a proxy request
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    if (uri == NULL || evhttp_uri_get_host(uri) != NULL)
        return false;
    // The framing check saw every header: without a Connection header there is none to find.
    const char *conn = c->scan.connection ? evhttp_find_header(evhttp_request_get_input_headers(req),
                                                               "Connection")
                                          : NULL;
    if (conn != NULL && strcasecmp(conn, "close") == 0)
        return false; // evhttp answers with Connection: close and closes
    for (struct evkeyval *h = evhttp_request_get_output_headers(req)->tqh_first; h != NULL;
         h = h->next.tqe_next)
        if (evhttp_owns(h->key))
            return false;
    for (size_t i = 0; i < n_hdrs; i++)
        if (evhttp_owns(hdrs[i].name))
            return false;
    return true;
}

/* The head is built in a fixed buffer on the stack; a head that does not fit (a hook's long
 * headers) goes the evhttp way. */
struct head {
    char p[2048];
    size_t n;
    bool full;
};

static void add(struct head *h, const char *s, size_t len)
{
    if (h->full || len > sizeof(h->p) - h->n) {
        h->full = true;
        return;
    }
    memcpy(h->p + h->n, s, len);
    h->n += len;
}

static void put(struct head *h, const char *key, const char *value)
{
    add(h, key, strlen(key));
    add(h, ": ", 2);
    add(h, value, strlen(value));
    add(h, "\r\n", 2);
}

/* The status line and the request's output headers, as evhttp writes them first: its own list,
 * then the pipeline's headers, which would come after them in it. */
static void head_start(struct head *h, struct evhttp_request *req,
                       const struct gf_reply_hdr *hdrs, size_t n_hdrs)
{
    h->n = 0;
    h->full = false;
    add(h, "HTTP/1.1 200 OK\r\n", 17);
    for (struct evkeyval *kv = evhttp_request_get_output_headers(req)->tqh_first; kv != NULL;
         kv = kv->next.tqe_next)
        put(h, kv->key, kv->value);
    for (size_t i = 0; i < n_hdrs; i++)
        put(h, hdrs[i].name, hdrs[i].value);
}

bool gf_conn_send_ok(struct gf_conn *c, struct evhttp_request *req,
                     const struct gf_reply_hdr *hdrs, size_t n_hdrs, const char *ctype,
                     const char *timing, const char *date, const char *body, size_t len)
{
    if (!covered(c, req, hdrs, n_hdrs))
        return false;
    struct head h;
    head_start(&h, req, hdrs, n_hdrs);
    put(&h, "Content-Type", ctype);
    if (timing != NULL)
        put(&h, "Server-Timing", timing);
    put(&h, "Date", date);
    char digits[24];
    size_t d = sizeof(digits);
    size_t v = len;
    do
        digits[--d] = (char)('0' + v % 10);
    while ((v /= 10) > 0);
    add(&h, "Content-Length: ", 16);
    add(&h, digits + d, sizeof(digits) - d);
    add(&h, "\r\n\r\n", 4);
    struct bufferevent *bev = c->bev;
    struct evbuffer *out = bufferevent_get_output(bev);
    if (h.full || evbuffer_get_length(out) != 0)
        return false; // nothing was written: the evhttp way
    // The head's chain has room for a small body, which then goes in the same write.
    if (evbuffer_add(out, h.p, h.n) != 0 || (len > 0 && evbuffer_add(out, body, len) != 0)) {
        evbuffer_drain(out, evbuffer_get_length(out)); // out of memory: nothing was written
        return false;
    }
    // What evhttp does after its own write (evhttp_write_buffer): write interest with its
    // write callback, which ends the request once the output is written (flush_cb, at once).
    gf_conn_flush_soon(c);
    evhttp_send_reply_end(req); // the output is not empty: it only sets that callback
    bufferevent_enable(bev, EV_WRITE);
    return true;
}

bool gf_conn_stream_start(struct gf_conn *c, struct evhttp_request *req,
                          const struct gf_reply_hdr *hdrs, size_t n_hdrs, const char *date,
                          struct evbuffer *scratch)
{
    if (!covered(c, req, hdrs, n_hdrs))
        return false;
    struct head h;
    head_start(&h, req, hdrs, n_hdrs);
    static const char fixed[] = "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                                "X-Accel-Buffering: no\r\n";
    add(&h, fixed, sizeof(fixed) - 1);
    put(&h, "Date", date);
    add(&h, "Transfer-Encoding: chunked\r\n\r\n", 30);
    if (h.full || evbuffer_get_length(scratch) != 0 || evbuffer_add(scratch, h.p, h.n) != 0)
        return false;
    gf_conn_flush_soon(c);
    evhttp_send_reply_chunk(req, scratch); // moves the bytes as they are
    return true;
}

int gf_conn_frame_chunk(struct evbuffer *b, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char size[24];
    size_t i = sizeof(size);
    size[--i] = '\n';
    size[--i] = '\r';
    size_t v = n;
    do
        size[--i] = hex[v & 15];
    while ((v >>= 4) > 0);
    size_t head = sizeof(size) - i;
    if (n <= 2048) { // a stream event: copied once here, then one evbuffer_add rather than three
        char frame[sizeof(size) + 2048 + 2];
        memcpy(frame, size + i, head);
        if (n > 0)
            memcpy(frame + head, p, n);
        memcpy(frame + head + n, "\r\n", 2);
        return evbuffer_add(b, frame, head + n + 2) != 0 ? GF_ENOMEM : 0;
    }
    if (evbuffer_add(b, size + i, head) != 0 || (n > 0 && evbuffer_add(b, p, n) != 0) ||
        evbuffer_add(b, "\r\n", 2) != 0)
        return GF_ENOMEM;
    return 0;
}
