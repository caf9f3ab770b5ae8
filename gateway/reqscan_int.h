/* reqscan_int.h — a strict byte-at-a-time checker of HTTP/1.x request framing, run on the bytes
 * of each request before evhttp parses them. evhttp is lenient (bare LF, obs-fold, control bytes,
 * duplicate or signed Content-Length, any version, blank lines between chunks) and a lenient
 * parser behind a proxy is how requests get smuggled; this checker refuses all of that.
 * It holds no pointers and allocates nothing; one struct per connection, reset per request. */
#ifndef GF_REQSCAN_INT_H
#define GF_REQSCAN_INT_H

#include <stddef.h>
#include <stdint.h>

enum gf_reqscan_result {
    GF_RS_MORE = 0,      // all bytes consumed; the request is not complete yet
    GF_RS_HEAD_DONE = 1, // the head ended; the body (if any) has content_length bytes
    GF_RS_DONE = 2,      // the chunked body ended; bytes after it belong to the next request
    GF_RS_ERROR = 3,     // refused: status (400, 413 or 431) and reason are set
};

struct gf_reqscan {
    int state;
    size_t max_head;        // request line + headers, bytes
    int64_t max_body;       // body bytes (chunked: sum of the chunk sizes)
    size_t head_bytes;
    int64_t content_length; // -1 when absent
    int n_cl, n_te;
    int minor;              // HTTP/1.<minor>
    int chunked;            // Transfer-Encoding: chunked
    int connection;         // the head has a Connection header (conn_reply.c reads it then)
    int status;             // on GF_RS_ERROR
    const char *reason;     // on GF_RS_ERROR: static text
    size_t tok;             // length of the current token (method, target, name, digits)
    char word[24];          // the current version or header name (lower case), truncated
    size_t word_len;
    char val[24];           // the current framing header's value without its OWS, truncated
    int keep_val;           // the current header is a framing one: val is kept for it
    size_t val_len, val_ws; // val_ws: trailing whitespace not yet committed to val
    int val_nondigit;       // a framing header's value has a byte other than a digit
    int64_t chunk_left;     // chunked: bytes left in the current chunk
    int64_t body_total;
};

/* Prepares s for a new request on a connection. */
void gf_reqscan_init(struct gf_reqscan *s, size_t max_head, int64_t max_body);
/* Checks n bytes of p (borrowed). Returns a gf_reqscan_result; *used says how many bytes were
 * consumed (fewer than n only on GF_RS_HEAD_DONE and GF_RS_DONE, where the rest is body or the
 * next request). After GF_RS_HEAD_DONE with s->chunked set, feed the body bytes until
 * GF_RS_DONE; without it the body is content_length bytes (or none) and needs no check. */
int gf_reqscan_feed(struct gf_reqscan *s, const char *p, size_t n, size_t *used);

#endif
