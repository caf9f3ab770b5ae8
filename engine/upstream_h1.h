/* upstream_h1.h — an incremental parser of HTTP/1.1 responses, for the upstream engine's own
 * client of plain http:// upstreams (upstream_native.c). It reads the status line and the header
 * fields it needs (Content-Type, Content-Length, Transfer-Encoding, Connection), frames the body
 * (Content-Length, chunked, or until the connection closes) and hands the body bytes to a
 * callback as they come, so that a streamed reply is parsed while it arrives. It never
 * allocates: a response head over GF_H1_MAX_HEAD bytes is refused. */
#ifndef GF_UPSTREAM_H1_H
#define GF_UPSTREAM_H1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most bytes of a response head (status line and header fields, of interim 1xx heads too). */
#define GF_H1_MAX_HEAD (64 * 1024)
/* Longest line (status, header, chunk-size or trailer line), its CR counted but not its LF;
 * longer lines are refused whether or not they are split across feeds. */
#define GF_H1_MAX_LINE 8192

/* Receives body bytes (chunk framing removed), p borrowed for the call only. A nonzero return
 * stops gf_h1_resp_feed, which returns that value: make it negative (a GF_E* code), since the
 * feed's positive returns are byte counts. */
typedef int (*gf_h1_body_fn)(void *ud, const char *p, size_t n);

struct gf_h1_resp {
    /* What the caller reads. */
    int status;          // of the final (non-1xx) response; 0 until its status line is read
    char ctype[128];     // its Content-Type value, trimmed, truncated to fit; "" when absent
    bool head_done;      // the final response's head has been read
    bool done;           // the whole message has been read
    bool keep_alive;     // once done: the connection may carry another request (HTTP/1.1
                         // without Connection: close, or 1.0 with keep-alive; a framed body;
                         // never after Transfer-Encoding beside Content-Length or in 1.0)
    char error[96];      // why gf_h1_resp_feed or gf_h1_resp_eof failed
    /* Parser state. */
    int state;
    int err;             // what every feed returns after an error
    bool no_body;        // the request was HEAD: the response has no body whatever it says
    bool http10, conn_close, conn_keep, chunked, has_length, until_close;
    uint64_t remaining;  // body or chunk bytes still expected
    size_t head_bytes;   // bytes of head read so far
    size_t line_len;     // bytes in line
    char line[GF_H1_MAX_LINE];
};

/* Starts a response; no_body for the answer to a HEAD request. It writes only the fields
 * before line, so that starting a response costs no 8 KiB clear. */
void gf_h1_resp_init(struct gf_h1_resp *r, bool no_body);

/* Feeds n bytes read from the connection to body (NULL discards the body). Returns how many it
 * consumed: all n, or fewer when the message ended inside them (the rest is not part of it: a connection with such bytes must
 * not be reused). A negative value is an error: GF_EFORMAT (not a valid HTTP/1.x response,
 * r->error says why), GF_ETOOBIG (head over GF_H1_MAX_HEAD or a line over GF_H1_MAX_LINE), or
 * the nonzero value body returned. After an error or once done, it consumes nothing. */
long gf_h1_resp_feed(struct gf_h1_resp *r, const char *p, size_t n, gf_h1_body_fn body,
                     void *ud);

/* The server closed the connection. Returns 0 when that completes the message (a body read
 * until close; done is then set) or it was already done, GF_EFORMAT when the message was cut
 * short (r->error says where: before any byte, in the head, in the body, in a chunk; a caller
 * may retry a request on a reused connection closed before any byte), and after an error of
 * gf_h1_resp_feed that same error. */
int gf_h1_resp_eof(struct gf_h1_resp *r);

#endif
