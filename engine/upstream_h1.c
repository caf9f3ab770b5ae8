/* upstream_h1.c — the incremental HTTP/1.1 response parser of upstream_h1.h (RFC 9112). Lines
 * are found with memchr and parsed where they lie in the input; only a line split across feeds
 * is copied into r->line, and body bytes never are. Every limit is checked against the bytes
 * seen so far and every line is judged only once whole, so the outcome never depends on how
 * the response was split into feeds (tests/fuzz/fuzz_upstream_h1.c checks this). */
#include "engine/upstream_h1.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"

enum {
    ST_STATUS,     // a status line, of an interim or the final response
    ST_INTERIM,    // header lines of a 1xx response: checked, then ignored
    ST_HEADER,     // header lines of the final response
    ST_BODY_LEN,   // remaining bytes of a Content-Length body
    ST_BODY_CLOSE, // everything until the server closes
    ST_CHUNK_SIZE, // a chunk-size line
    ST_CHUNK_DATA, // remaining bytes of a chunk
    ST_CHUNK_CR,   // the CRLF that ends a chunk's data
    ST_CHUNK_LF,   // its LF, once the CR came
    ST_TRAILER,    // trailer field lines, up to the blank line
    ST_DONE,
    ST_ERROR,
};

#define B(c) (UINT64_C(1) << ((c)&63))
/* RFC 9110 tchar as a bitmap over ASCII (two 64-bit halves): a table lookup per name byte. */
static const uint64_t tchar_map[2] = {
    B('!') | B('#') | B('$') | B('%') | B('&') | B('\'') | B('*') | B('+') | B('-') | B('.') |
        (UINT64_C(0x3ff) << ('0' & 63)),
    (UINT64_C(0x3ffffff) << ('A' & 63)) | B('^') | B('_') | B('`') |
        (UINT64_C(0x3ffffff) << ('a' & 63)) | B('|') | B('~'),
};
#undef B

static bool is_tchar(unsigned char c)
{
    return c < 128 && (tchar_map[c >> 6] >> (c & 63) & 1);
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static int hex_value(unsigned char c)
{
    if ((unsigned)(c - '0') < 10)
        return c - '0';
    c |= 0x20;
    if ((unsigned)(c - 'a') < 6)
        return c - 'a' + 10;
    return -1;
}

/* Whether s[0..n) is lower (lowercase letters and punctuation) ignoring ASCII case. Only
 * letters are folded, so that no other byte can pass for a letter or a dash. */
static bool eq_nocase(const char *s, size_t n, const char *lower, size_t lower_len)
{
    if (n != lower_len)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((unsigned)(c - 'A') < 26)
            c |= 0x20;
        if (c != (unsigned char)lower[i])
            return false;
    }
    return true;
}
#define EQ(s, n, lit) eq_nocase((s), (n), lit, sizeof(lit) - 1)

__attribute__((format(printf, 3, 4))) static int fail(struct gf_h1_resp *r, int code,
                                                      const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof(r->error), fmt, ap);
    va_end(ap);
    r->state = ST_ERROR;
    r->err = code;
    return code;
}

static void finish(struct gf_h1_resp *r)
{
    r->state = ST_DONE;
    r->done = true;
    // HTTP/1.0 connections close after each response unless the server opted in.
    r->keep_alive = !r->until_close && !r->conn_close && (!r->http10 || r->conn_keep);
}

void gf_h1_resp_init(struct gf_h1_resp *r, bool no_body)
{
    memset(r, 0, offsetof(struct gf_h1_resp, line));
    r->state = ST_STATUS;
    r->no_body = no_body;
}

/* Takes the next line from p[*pos..n). Returns 1 with the line, CR LF removed, in *s and *len
 * (borrowed until the next call), 0 when the input ended inside the line (kept in r->line), or
 * a negative error. head says whether the line counts towards GF_H1_MAX_HEAD. */
static int take_line(struct gf_h1_resp *r, const char *p, size_t n, size_t *pos, bool head,
                     const char **s, size_t *len)
{
    const char *start = p + *pos;
    size_t avail = n - *pos;
    const char *lf = memchr(start, '\n', avail);
    size_t k = lf ? (size_t)(lf - start) : avail; // bytes of the line in p, its LF excluded
    size_t total = r->line_len + k;
    // Checked on the bytes seen so far, the limits fail at the same byte however p was split.
    if (head && r->head_bytes + total + (lf != NULL) > GF_H1_MAX_HEAD)
        return fail(r, GF_ETOOBIG, "response head over %d bytes", GF_H1_MAX_HEAD);
    if (total > GF_H1_MAX_LINE)
        return fail(r, GF_ETOOBIG, "line over %d bytes", GF_H1_MAX_LINE);
    if (lf == NULL) {
        memcpy(r->line + r->line_len, start, k);
        r->line_len = total;
        *pos = n;
        return 0;
    }
    *pos += k + 1;
    if (head)
        r->head_bytes += total + 1;
    if (r->line_len == 0) {
        *s = start;
    } else {
        memcpy(r->line + r->line_len, start, k);
        r->line_len = 0;
        *s = r->line;
    }
    if (total > 0 && (*s)[total - 1] == '\r')
        total--;
    *len = total;
    return 1;
}

/* The next non-empty element of the comma-separated list v[*i..n), OWS trimmed (RFC 9110
 * 5.6.1: empty elements are ignored). */
static bool next_element(const char *v, size_t n, size_t *i, const char **e, size_t *len)
{
    size_t j = *i;
    while (j < n && (v[j] == ',' || is_ows(v[j])))
        j++;
    if (j == n) {
        *i = j;
        return false;
    }
    size_t start = j;
    while (j < n && v[j] != ',')
        j++;
    size_t end = j;
    while (end > start && is_ows(v[end - 1]))
        end--;
    *e = v + start;
    *len = end - start;
    *i = j;
    return true;
}

static int status_line(struct gf_h1_resp *r, const char *s, size_t len)
{
    if (len < 5 || memcmp(s, "HTTP/", 5) != 0)
        return fail(r, GF_EFORMAT, "not an HTTP response: the status line lacks HTTP/");
    if (len < 9 || s[5] != '1' || s[6] != '.' || (s[7] != '0' && s[7] != '1') || s[8] != ' ')
        return fail(r, GF_EFORMAT, "unsupported HTTP version (not HTTP/1.0 or HTTP/1.1)");
    // RFC 9110 15: three digits, 100 to 599; the reason phrase after a space may be absent.
    if (len < 12 || s[9] < '1' || s[9] > '5' || (unsigned)(s[10] - '0') > 9 ||
        (unsigned)(s[11] - '0') > 9 || (len > 12 && s[12] != ' '))
        return fail(r, GF_EFORMAT, "bad status code in the status line");
    int code = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
    if (code < 200) {
        // We never send Upgrade, so a switch of protocols can only be a broken server.
        if (code == 101)
            return fail(r, GF_EFORMAT, "101 Switching Protocols without an upgrade request");
        r->state = ST_INTERIM;
        return 0;
    }
    r->status = code;
    r->http10 = s[7] == '0';
    r->state = ST_HEADER;
    return 0;
}

static int content_length(struct gf_h1_resp *r, const char *v, size_t n)
{
    size_t i = 0;
    // RFC 9110 8.6 lets a recipient take a list of equal values (a duplicated field) as one.
    for (;;) {
        uint64_t x = 0;
        size_t start = i;
        for (; i < n && (unsigned)(v[i] - '0') < 10; i++) {
            unsigned d = (unsigned)(v[i] - '0');
            if (x > (UINT64_MAX - d) / 10)
                return fail(r, GF_EFORMAT, "Content-Length overflows");
            x = x * 10 + d;
        }
        if (i == start)
            return fail(r, GF_EFORMAT, "bad Content-Length value");
        if (r->has_length && x != r->remaining)
            return fail(r, GF_EFORMAT, "conflicting Content-Length values");
        r->has_length = true;
        r->remaining = x;
        while (i < n && is_ows(v[i]))
            i++;
        if (i == n)
            return 0;
        if (v[i] != ',')
            return fail(r, GF_EFORMAT, "bad Content-Length value");
        i++;
        while (i < n && is_ows(v[i]))
            i++;
    }
}

static int transfer_encoding(struct gf_h1_resp *r, const char *v, size_t n)
{
    const char *e;
    size_t len, i = 0;
    bool any = false;
    while (next_element(v, n, &i, &e, &len)) {
        // Only chunked is decoded; anything applied over it (gzip, ...) cannot be framed here.
        if (!EQ(e, len, "chunked"))
            return fail(r, GF_EFORMAT, "unsupported transfer coding (only chunked is read)");
        if (r->chunked)
            return fail(r, GF_EFORMAT, "chunked transfer coding applied twice");
        r->chunked = true;
        any = true;
    }
    if (!any)
        return fail(r, GF_EFORMAT, "empty Transfer-Encoding");
    return 0;
}

static void connection(struct gf_h1_resp *r, const char *v, size_t n)
{
    const char *e;
    size_t len, i = 0;
    while (next_element(v, n, &i, &e, &len)) {
        if (EQ(e, len, "close"))
            r->conn_close = true;
        else if (EQ(e, len, "keep-alive"))
            r->conn_keep = true;
    }
}

static int content_type(struct gf_h1_resp *r, const char *v, size_t n)
{
    // The value may be passed on to our own client: no control byte may ride along.
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return fail(r, GF_EFORMAT, "control character in Content-Type");
    }
    if (n > sizeof(r->ctype) - 1)
        n = sizeof(r->ctype) - 1;
    memcpy(r->ctype, v, n);
    r->ctype[n] = '\0';
    return 0;
}

/* A header or trailer field line; use says whether its value matters (final head only). */
static int field_line(struct gf_h1_resp *r, const char *s, size_t len, bool use)
{
    if (is_ows(s[0]))
        return fail(r, GF_EFORMAT, "obsolete line folding in a header field");
    const char *colon = memchr(s, ':', len);
    if (colon == NULL)
        return fail(r, GF_EFORMAT, "header line without a colon");
    size_t name_len = (size_t)(colon - s);
    if (name_len == 0)
        return fail(r, GF_EFORMAT, "header field without a name");
    // No space before the colon either (RFC 9112 5.1): a name is tchars only.
    for (size_t i = 0; i < name_len; i++) {
        if (!is_tchar((unsigned char)s[i]))
            return fail(r, GF_EFORMAT, "bad character in a header field name");
    }
    if (!use)
        return 0;
    const char *v = colon + 1;
    size_t n = len - name_len - 1;
    while (n > 0 && is_ows(v[0])) {
        v++;
        n--;
    }
    while (n > 0 && is_ows(v[n - 1]))
        n--;
    // By length first: most fields are none of these four and cost one switch.
    switch (name_len) {
    case 10:
        if (EQ(s, name_len, "connection"))
            connection(r, v, n);
        return 0;
    case 12:
        return EQ(s, name_len, "content-type") ? content_type(r, v, n) : 0;
    case 14:
        return EQ(s, name_len, "content-length") ? content_length(r, v, n) : 0;
    case 17:
        return EQ(s, name_len, "transfer-encoding") ? transfer_encoding(r, v, n) : 0;
    default:
        return 0;
    }
}

/* The blank line after a head: an interim head leads to the next status line, the final one
 * to its body framing (RFC 9112 6.3). */
static void end_of_head(struct gf_h1_resp *r)
{
    if (r->state == ST_INTERIM) {
        r->state = ST_STATUS;
        return;
    }
    r->head_done = true;
    // Transfer-Encoding beside Content-Length, or in HTTP/1.0, smells of a smuggling attempt
    // or a broken server: read the body as chunked but never reuse the connection.
    if (r->chunked && (r->has_length || r->http10))
        r->conn_close = true;
    if (r->no_body || r->status == 204 || r->status == 304) {
        finish(r);
    } else if (r->chunked) {
        r->remaining = 0;
        r->state = ST_CHUNK_SIZE;
    } else if (r->has_length) {
        if (r->remaining == 0)
            finish(r);
        else
            r->state = ST_BODY_LEN;
    } else {
        r->until_close = true;
        r->state = ST_BODY_CLOSE;
    }
}

static int head_line(struct gf_h1_resp *r, const char *s, size_t len)
{
    if (r->state == ST_STATUS)
        return status_line(r, s, len);
    if (len == 0) {
        end_of_head(r);
        return 0;
    }
    return field_line(r, s, len, r->state == ST_HEADER);
}

static int chunk_size(struct gf_h1_resp *r, const char *s, size_t len)
{
    uint64_t v = 0;
    size_t i = 0;
    int d;
    for (; i < len && (d = hex_value((unsigned char)s[i])) >= 0; i++) {
        if (v >> 60)
            return fail(r, GF_EFORMAT, "chunk size overflows");
        v = v << 4 | (uint64_t)d;
    }
    if (i == 0)
        return fail(r, GF_EFORMAT, "bad chunk size");
    while (i < len && is_ows(s[i]))
        i++;
    // Chunk extensions carry nothing we use; only their start is checked.
    if (i < len && s[i] != ';')
        return fail(r, GF_EFORMAT, "bad chunk size");
    if (v == 0) {
        r->state = ST_TRAILER;
    } else {
        r->remaining = v;
        r->state = ST_CHUNK_DATA;
    }
    return 0;
}

static int trailer_line(struct gf_h1_resp *r, const char *s, size_t len)
{
    if (len == 0) {
        finish(r);
        return 0;
    }
    return field_line(r, s, len, false);
}

static int deliver(struct gf_h1_resp *r, gf_h1_body_fn body, void *ud, const char *s, size_t n)
{
    if (body == NULL)
        return 0;
    int rc = body(ud, s, n);
    if (rc != 0)
        return fail(r, rc, "stopped by the body callback (%d)", rc);
    return 0;
}

long gf_h1_resp_feed(struct gf_h1_resp *r, const char *p, size_t n, gf_h1_body_fn body, void *ud)
{
    size_t pos = 0;
    // Each step either moves pos or ends the loop by a line kept for later, done, or an error
    // (whose code r->err keeps, since a callback's value may be any nonzero int).
    while (pos < n && r->state != ST_DONE && r->state != ST_ERROR) {
        const char *s = NULL;
        size_t len = 0, k;
        switch (r->state) {
        case ST_STATUS:
        case ST_INTERIM:
        case ST_HEADER:
            if (take_line(r, p, n, &pos, true, &s, &len) > 0)
                head_line(r, s, len);
            break;
        case ST_BODY_LEN:
        case ST_CHUNK_DATA:
            k = n - pos < r->remaining ? n - pos : (size_t)r->remaining;
            if (deliver(r, body, ud, p + pos, k) != 0)
                break;
            pos += k;
            r->remaining -= k;
            if (r->remaining == 0 && r->state == ST_BODY_LEN)
                finish(r);
            else if (r->remaining == 0 && r->state == ST_CHUNK_DATA)
                r->state = ST_CHUNK_CR;
            break;
        case ST_BODY_CLOSE:
            if (deliver(r, body, ud, p + pos, n - pos) != 0)
                break;
            pos = n;
            break;
        case ST_CHUNK_SIZE:
            if (take_line(r, p, n, &pos, false, &s, &len) > 0)
                chunk_size(r, s, len);
            break;
        case ST_CHUNK_CR:
        case ST_CHUNK_LF:
            // A bare LF is taken for CRLF here as at the end of every other line.
            if (p[pos] == '\n')
                r->state = ST_CHUNK_SIZE;
            else if (p[pos] == '\r' && r->state == ST_CHUNK_CR)
                r->state = ST_CHUNK_LF;
            else
                fail(r, GF_EFORMAT, "chunk data not followed by CRLF");
            pos++;
            break;
        case ST_TRAILER:
            if (take_line(r, p, n, &pos, false, &s, &len) > 0)
                trailer_line(r, s, len);
            break;
        default:
            fail(r, GF_EFORMAT, "parser in an unknown state");
            break;
        }
    }
    if (r->state == ST_ERROR)
        return r->err;
    return (long)pos;
}

int gf_h1_resp_eof(struct gf_h1_resp *r)
{
    switch (r->state) {
    case ST_DONE:
        return 0;
    case ST_ERROR:
        return r->err;
    case ST_BODY_CLOSE:
        finish(r);
        return 0;
    case ST_STATUS:
        // Told apart so that a caller can retry a request on a reused connection the server
        // had closed before reading it.
        if (r->head_bytes == 0 && r->line_len == 0)
            return fail(r, GF_EFORMAT, "connection closed before any response byte");
        return fail(r, GF_EFORMAT, "connection closed in the response head");
    case ST_INTERIM:
    case ST_HEADER:
        return fail(r, GF_EFORMAT, "connection closed in the response head");
    case ST_BODY_LEN:
        return fail(r, GF_EFORMAT, "connection closed in the body, %llu bytes short",
                    (unsigned long long)r->remaining);
    case ST_TRAILER:
        return fail(r, GF_EFORMAT, "connection closed in the trailer fields");
    default:
        return fail(r, GF_EFORMAT, "connection closed in a chunk");
    }
}
