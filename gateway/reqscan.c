/* reqscan.c — the strict HTTP/1.x request framing checker (reqscan_int.h). One state per
 * position in the grammar of RFC 9112: request line, header lines, and for chunked bodies the
 * chunk sizes, data ends and trailers. Invariant: a request it passes has exactly one framing
 * (no Content-Length next to Transfer-Encoding, one Content-Length of plain digits, only
 * "chunked"), CRLF line ends, no control bytes and no folded lines, so evhttp and any proxy in
 * front of it agree on where the request ends. */
#include "gateway/reqscan_int.h"

#include <string.h>

#include "common/common.h"

enum {
    S_START,       // before the request line (empty lines are tolerated)
    S_START_LF,
    S_METHOD,
    S_TARGET,
    S_VERSION,
    S_RL_LF,
    S_LINE,        // start of a header line
    S_NAME,
    S_VALUE,
    S_HDR_LF,
    S_END_LF,      // the CR of the empty line that ends the head was seen
    S_BODY,        // head done, Content-Length body (not checked)
    S_CHUNK_SIZE,
    S_CHUNK_WS,
    S_CHUNK_EXT,
    S_CHUNK_SIZE_LF,
    S_CHUNK_DATA,
    S_CHUNK_DATA_CR,
    S_CHUNK_DATA_LF,
    S_TRAILER,     // trailers: header lines again, S_LINE .. S_END_LF with trailer set
    S_DONE,
};

#define TRAILER_BASE 100  // state offset while reading trailers
#define MAX_CL_DIGITS 18  // fits in int64_t
#define MAX_CHUNK_DIGITS 15
#define MAX_CHUNK_EXT 256
#define MAX_TOKEN 4096    // method or header name

/* Byte classes, one table lookup per byte of the head: token characters (method, header
 * names), request-target bytes, header value bytes (VCHAR or obs-text) and digits. */
enum { C_TCHAR = 1, C_TARGET = 2, C_VALUE = 4, C_DIGIT = 8 };
#define IS_TCHAR(c)                                                                            \
    (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z') || ((c) >= '0' && (c) <= '9') || \
     (c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' || (c) == '\'' ||      \
     (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' || (c) == '^' || (c) == '_' ||        \
     (c) == '`' || (c) == '|' || (c) == '~')
#define CLS(c)                                                                                 \
    ((IS_TCHAR(c) ? C_TCHAR : 0) | ((c) >= 0x21 && (c) <= 0x7e ? C_TARGET | C_VALUE : 0) |       \
     ((c) >= 0x80 ? C_VALUE : 0) | ((c) >= '0' && (c) <= '9' ? C_DIGIT : 0))
#define CLS4(c) CLS(c), CLS((c) + 1), CLS((c) + 2), CLS((c) + 3)
#define CLS16(c) CLS4(c), CLS4((c) + 4), CLS4((c) + 8), CLS4((c) + 12)
#define CLS64(c) CLS16(c), CLS16((c) + 16), CLS16((c) + 32), CLS16((c) + 48)
static const unsigned char cls[256] = {CLS64(0), CLS64(64), CLS64(128), CLS64(192)};

static int is_tchar(unsigned char c)
{
    return cls[c] & C_TCHAR;
}

static int is_vchar_or_obs(unsigned char c)
{
    return cls[c] & C_VALUE;
}

static char lower(unsigned char c)
{
    return (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
}

static int fail(struct gf_reqscan *s, int status, const char *reason)
{
    s->status = status;
    s->reason = reason;
    return GF_RS_ERROR;
}

void gf_reqscan_init(struct gf_reqscan *s, size_t max_head, int64_t max_body)
{
    memset(s, 0, sizeof(*s));
    s->state = S_START;
    s->max_head = max_head;
    s->max_body = max_body;
    s->content_length = -1;
}

static int word_is(const struct gf_reqscan *s, const char *w)
{
    size_t n = strlen(w);
    return s->tok == n && s->word_len == n && memcmp(s->word, w, n) == 0;
}

/* A complete header (or trailer) line: the framing headers are checked here. */
static int header_done(struct gf_reqscan *s, int trailer)
{
    int cl = word_is(s, "content-length");
    int te = word_is(s, "transfer-encoding");
    if (!cl && !te) {
        if (!trailer && word_is(s, "connection"))
            s->connection = 1;
        return GF_RS_MORE;
    }
    if (trailer)
        return fail(s, 400, "framing header in the chunked trailer");
    if (cl) {
        s->n_cl++;
        // chunk_left holds the full value length here
        if (s->chunk_left == 0 || s->val_nondigit)
            return fail(s, 400, "invalid Content-Length");
        if (s->chunk_left > MAX_CL_DIGITS) {
            s->content_length = INT64_MAX;
            return GF_RS_MORE;
        }
        int64_t v = 0;
        for (size_t i = 0; i < s->val_len; i++)
            v = v * 10 + (s->val[i] - '0');
        s->content_length = v;
        return GF_RS_MORE;
    }
    s->n_te++;
    if (s->chunk_left != 7 || s->val_len != 7 || memcmp(s->val, "chunked", 7) != 0)
        return fail(s, 400, "unsupported Transfer-Encoding (only \"chunked\" is accepted)");
    s->chunked = 1;
    return GF_RS_MORE;
}

static int head_done(struct gf_reqscan *s)
{
    if (s->n_cl > 1)
        return fail(s, 400, "more than one Content-Length");
    if (s->n_te > 1)
        return fail(s, 400, "more than one Transfer-Encoding");
    if (s->n_te > 0 && s->n_cl > 0)
        return fail(s, 400, "both Content-Length and Transfer-Encoding");
    if (s->n_te > 0 && s->minor == 0)
        return fail(s, 400, "Transfer-Encoding in an HTTP/1.0 request");
    if (s->content_length > s->max_body)
        return fail(s, 413, "the request body is larger than limits.max_body_bytes");
    s->state = s->chunked ? S_CHUNK_SIZE : S_BODY;
    s->tok = 0;
    s->chunk_left = 0;
    return GF_RS_HEAD_DONE;
}

/* One byte of the head (request line, headers) or of the trailers. */
/* Inlined into the feed loop, once for the head and once for trailers: the calls cost
 * about a third of a request head's check, a byte of punctuation at a time. */
static inline __attribute__((always_inline)) int head_byte(struct gf_reqscan *s, unsigned char c,
                                                            int trailer)
{
    int st = s->state - (trailer ? TRAILER_BASE : 0);
    int next = st;
    switch (st) {
    case S_START:
        if (c == '\r')
            next = S_START_LF;
        else if (is_tchar(c))
            next = S_METHOD, s->tok = 1;
        else
            return fail(s, 400, "malformed request line");
        break;
    case S_START_LF:
        if (c != '\n')
            return fail(s, 400, "bare CR in the request");
        next = S_START;
        break;
    case S_METHOD:
        if (c == ' ')
            next = S_TARGET, s->tok = 0;
        else if (!is_tchar(c) || ++s->tok > MAX_TOKEN)
            return fail(s, 400, "malformed request method");
        break;
    case S_TARGET:
        if (c == ' ' && s->tok > 0)
            next = S_VERSION, s->word_len = 0;
        else if (c == '\r' || c == '\n')
            return fail(s, 400, "HTTP/0.9 requests are not supported");
        else if (c < 0x21 || c > 0x7e)
            return fail(s, 400, "malformed request target");
        else
            s->tok++;
        break;
    case S_VERSION:
        if (c == '\r') {
            if (s->word_len != 8 || memcmp(s->word, "HTTP/1.", 7) != 0 ||
                (s->word[7] != '0' && s->word[7] != '1'))
                return fail(s, 400, "unsupported HTTP version (HTTP/1.0 and HTTP/1.1 only)");
            s->minor = s->word[7] - '0';
            next = S_RL_LF;
        } else if (c < 0x21 || c > 0x7e || s->word_len >= 8) {
            return fail(s, 400, "unsupported HTTP version (HTTP/1.0 and HTTP/1.1 only)");
        } else {
            s->word[s->word_len++] = (char)c;
        }
        break;
    case S_RL_LF:
    case S_HDR_LF:
        if (c != '\n')
            return fail(s, 400, "bare CR in the request");
        next = S_LINE;
        break;
    case S_LINE:
        if (c == '\r')
            next = S_END_LF;
        else if (c == ' ' || c == '\t')
            return fail(s, 400, "folded header line (obs-fold)");
        else if (c == ':')
            return fail(s, 400, "header line without a name");
        else if (!is_tchar(c))
            return fail(s, 400, "invalid character in a header name or bare LF");
        else {
            next = S_NAME;
            s->tok = 1;
            s->word[0] = lower(c);
            s->word_len = 1;
        }
        break;
    case S_NAME:
        if (c == ':') {
            next = S_VALUE;
            s->val_len = s->val_ws = 0;
            s->val_nondigit = 0;
            // Only the framing headers' values are looked at (header_done): others are counted
            // and checked, not copied.
            s->keep_val = word_is(s, "content-length") || word_is(s, "transfer-encoding");
            s->chunk_left = 0;  // full value length, for the framing headers
        } else if (!is_tchar(c) || ++s->tok > MAX_TOKEN) {
            return fail(s, 400, c == '\r' || c == '\n' ? "header line without a colon"
                                                       : "invalid character in a header name");
        } else if (s->word_len < sizeof(s->word)) {
            s->word[s->word_len++] = lower(c);
        }
        break;
    case S_VALUE:
        if (c == '\r') {
            int rc = header_done(s, trailer);
            if (rc != GF_RS_MORE)
                return rc;
            next = S_HDR_LF;
        } else if (c == ' ' || c == '\t') {
            if (s->chunk_left > 0)
                s->val_ws++;  // kept only if more value follows (trailing OWS is not value)
        } else if (is_vchar_or_obs(c)) {
            if (s->val_ws > 0 || c < '0' || c > '9')
                s->val_nondigit = 1;
            for (; s->val_ws > 0; s->val_ws--, s->chunk_left++)
                if (s->keep_val && s->val_len < sizeof(s->val) - 1)
                    s->val[s->val_len++] = ' ';
            if (s->keep_val && s->val_len < sizeof(s->val) - 1)
                s->val[s->val_len++] = lower(c);
            s->val[s->val_len] = '\0';
            s->chunk_left++;
        } else {
            return fail(s, 400, "control character or bare LF in a header value");
        }
        break;
    case S_END_LF:
        if (c != '\n')
            return fail(s, 400, "bare CR in the request");
        if (trailer) {
            s->state = S_DONE;
            return GF_RS_DONE;
        }
        return head_done(s);
    default:
        return fail(s, 400, "internal: bad scanner state");
    }
    s->state = next + (trailer ? TRAILER_BASE : 0);
    if (++s->head_bytes > s->max_head)
        return fail(s, 431, "the request headers are larger than limits.max_header_bytes");
    return GF_RS_MORE;
}

/* One byte of a chunked body outside chunk data. */
static int chunk_byte(struct gf_reqscan *s, unsigned char c)
{
    int h;
    switch (s->state) {
    case S_CHUNK_SIZE:
        if ((h = gf_hexval(c)) >= 0) {
            if (++s->tok > MAX_CHUNK_DIGITS)
                return fail(s, 413, "a chunk is larger than limits.max_body_bytes");
            s->chunk_left = s->chunk_left * 16 + h;
        } else if (s->tok == 0) {
            return fail(s, 400, "malformed chunk size");
        } else if (c == ';') {
            s->state = S_CHUNK_EXT;
            s->tok = 0;
        } else if (c == ' ' || c == '\t') {
            s->state = S_CHUNK_WS;
        } else if (c == '\r') {
            s->state = S_CHUNK_SIZE_LF;
        } else {
            return fail(s, 400, "malformed chunk size");
        }
        return GF_RS_MORE;
    case S_CHUNK_WS:
        if (c == ';')
            s->state = S_CHUNK_EXT, s->tok = 0;
        else if (c != ' ' && c != '\t')
            return fail(s, 400, "malformed chunk size");
        return GF_RS_MORE;
    case S_CHUNK_EXT:
        if (c == '\r')
            s->state = S_CHUNK_SIZE_LF;
        else if ((c != '\t' && c < 0x20) || c == 0x7f || ++s->tok > MAX_CHUNK_EXT)
            return fail(s, 400, "malformed chunk extension");
        return GF_RS_MORE;
    case S_CHUNK_SIZE_LF:
        if (c != '\n')
            return fail(s, 400, "bare CR in a chunk size line");
        if (s->chunk_left > s->max_body - s->body_total)
            return fail(s, 413, "the request body is larger than limits.max_body_bytes");
        s->body_total += s->chunk_left;
        if (s->chunk_left == 0) {
            s->state = S_LINE + TRAILER_BASE;
            s->head_bytes = 0;
        } else {
            s->state = S_CHUNK_DATA;
        }
        return GF_RS_MORE;
    case S_CHUNK_DATA_CR:
        if (c != '\r')
            return fail(s, 400, "chunk data longer than its size");
        s->state = S_CHUNK_DATA_LF;
        return GF_RS_MORE;
    case S_CHUNK_DATA_LF:
        if (c != '\n')
            return fail(s, 400, "bare CR after chunk data");
        s->state = S_CHUNK_SIZE;
        s->tok = 0;
        s->chunk_left = 0;
        return GF_RS_MORE;
    default:
        return fail(s, 400, "internal: bad scanner state");
    }
}

/* The runs of the head, taken whole rather than a byte at a time: request-target bytes, header
 * name bytes and header value bytes while no whitespace is pending. Exactly what head_byte
 * would do for each of those bytes (count them, keep the lower-cased prefix, note a non-digit),
 * stopping before the byte that would pass limits.max_header_bytes (or the name length limit)
 * so that head_byte refuses it as before. Returns the bytes consumed (0: none qualify). */
static size_t fast_run(struct gf_reqscan *s, const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t allowed = s->max_head > s->head_bytes ? s->max_head - s->head_bytes : 0;
    if (n > allowed)
        n = allowed;
    size_t k = 0;
    if (s->state == S_TARGET) {
        while (k < n && (cls[u[k]] & C_TARGET))
            k++;
        s->tok += k;
    } else if (s->state == S_NAME) {
        size_t left = s->tok < MAX_TOKEN ? MAX_TOKEN - s->tok : 0;
        if (n > left)
            n = left;
        while (k < n && (cls[u[k]] & C_TCHAR))
            k++;
        s->tok += k;
        for (size_t j = 0; j < k && s->word_len < sizeof(s->word); j++)
            s->word[s->word_len++] = lower(u[j]);
    } else if (s->state == S_VALUE && s->val_ws == 0 && !s->keep_val) {
        while (k < n && (cls[u[k]] & C_VALUE)) // a value nothing reads again: checked, counted
            k++;
        s->chunk_left += (int64_t)k;
    } else if (s->state == S_VALUE && s->val_ws == 0) {
        unsigned all = C_DIGIT, c; // the classes every byte of the run has
        while (k < n && ((c = cls[u[k]]) & C_VALUE)) {
            all &= c;
            k++;
        }
        if (k == 0)
            return 0;
        for (size_t j = 0; j < k && s->val_len < sizeof(s->val) - 1; j++)
            s->val[s->val_len++] = lower(u[j]);
        s->val[s->val_len] = '\0';
        if (!(all & C_DIGIT))
            s->val_nondigit = 1;
        s->chunk_left += (int64_t)k;
    }
    s->head_bytes += k;
    return k;
}

int gf_reqscan_feed(struct gf_reqscan *s, const char *p, size_t n, size_t *used)
{
    size_t i = 0;
    int rc = GF_RS_MORE;
    if (s->state == S_BODY || s->state == S_DONE) {
        *used = 0;
        return s->state == S_DONE ? GF_RS_DONE : GF_RS_HEAD_DONE;
    }
    if (s->status != 0) {
        *used = 0;
        return GF_RS_ERROR;
    }
    while (i < n && rc == GF_RS_MORE) {
        if (s->state == S_CHUNK_DATA) {
            size_t take = n - i;
            if ((int64_t)take > s->chunk_left)
                take = (size_t)s->chunk_left;
            s->chunk_left -= (int64_t)take;
            i += take;
            if (s->chunk_left == 0)
                s->state = S_CHUNK_DATA_CR;
            continue;
        }
        size_t run = fast_run(s, p + i, n - i);
        if (run > 0) {
            i += run;
            continue;
        }
        unsigned char c = (unsigned char)p[i++];
        if (s->state >= TRAILER_BASE)
            rc = head_byte(s, c, 1);
        else if (s->state >= S_CHUNK_SIZE)
            rc = chunk_byte(s, c);
        else
            rc = head_byte(s, c, 0);
    }
    *used = i;
    return rc;
}
