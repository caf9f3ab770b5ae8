/* buf.c — bounded growable byte strings. The cap is set once at init and never exceeded: a
 * peer that sends more gets GF_ETOOBIG (HTTP 413), not our memory. */
#include "common/common.h"

#include <stdio.h>
#include <string.h>

void gf_buf_init(struct gf_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void gf_buf_cleanup(struct gf_buf *b)
{
    gf_free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void gf_buf_reset(struct gf_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

int gf_buf_reserve(struct gf_buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return GF_ETOOBIG;
    size_t need = b->len + extra + 1;  // + NUL
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256; // most request-path strings fit: one allocation
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = gf_realloc(b->data, cap);
    if (p == NULL)
        return GF_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int gf_buf_append(struct gf_buf *b, const void *p, size_t n)
{
    // Most appends fit in the room already there: then the cap is all there is to check.
    if (!(b->len <= b->max && n <= b->max - b->len && n < b->cap - b->len)) {
        int rc = gf_buf_reserve(b, n);
        if (rc)
            return rc;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int gf_buf_putc(struct gf_buf *b, char c)
{
    if (b->len + 2 <= b->cap && b->len < b->max) { // room for c and the NUL, within the cap
        b->data[b->len++] = c;
        b->data[b->len] = '\0';
        return 0;
    }
    return gf_buf_append(b, &c, 1);
}

int gf_buf_put_i64(struct gf_buf *b, int64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        tmp[--i] = '-';
    return gf_buf_append(b, tmp + i, sizeof(tmp) - i);
}

int gf_buf_vprintf(struct gf_buf *b, const char *fmt, va_list ap)
{
    // One formatting pass in the common case: format straight into the spare capacity and
    // only reserve and format again when it did not fit (hot paths format small fields).
    size_t room = b->cap > b->len ? b->cap - b->len : 0;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap2);
    va_end(ap2);
    if (n < 0) {
        if (b->data)
            b->data[b->len] = '\0';
        return GF_EINVAL;
    }
    if ((size_t)n < room && (size_t)n <= b->max - b->len && b->len <= b->max) {
        b->len += (size_t)n;
        return 0;
    }
    if (b->data)
        b->data[b->len] = '\0'; // undo a truncated attempt
    int rc = gf_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int gf_buf_printf(struct gf_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = gf_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

/* Decodes one UTF-8 sequence at s[0..n); returns its length, or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

bool gf_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        // ASCII (most of any request body) eight bytes at a time, then one byte at a time
        for (uint64_t w; n - i >= 8; i += 8) {
            memcpy(&w, p + i, 8);
            if (w & 0x8080808080808080ull)
                break;
        }
        if (i < n && p[i] < 0x80) {
            i++;
            continue;
        }
        if (i == n)
            break;
        size_t l = utf8_seq(p + i, n - i);
        if (l == 0)
            return false;
        i += l;
    }
    return true;
}

size_t gf_utf8_complete_prefix(const char *s, size_t n)
{
    // Look back at most 3 bytes for a lead byte whose sequence runs past the end.
    const unsigned char *p = (const unsigned char *)s;
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        unsigned c = p[n - back];
        if ((c & 0xC0) == 0x80)
            continue;  // continuation byte: keep looking for the lead
        size_t want = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                                   : (c & 0xF8) == 0xF0 ? 4 : 1;
        return want > back ? n - back : n;
    }
    return n;
}

/* 1 for the bytes a JSON string holds as they are: printable ASCII but '"' and '\\'. */
static const unsigned char json_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 0x00
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 0x10
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, // 0x20: '"'
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, // 0x30
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, // 0x40
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, // 0x50: '\\'
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, // 0x60
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, // 0x70: DEL
};

int gf_buf_append_json_str(struct gf_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t plain = 0;
    while (plain < n && json_plain[p[plain]])
        plain++;
    if (plain == n) { // nothing to escape (ids, names, hashes): one reservation and one copy
        int rc = gf_buf_reserve(b, n + 2);
        if (rc)
            return rc;
        char *d = b->data + b->len;
        d[0] = '"';
        if (n)
            memcpy(d + 1, s, n);
        d[n + 1] = '"';
        d[n + 2] = '\0';
        b->len += n + 2;
        return 0;
    }
    size_t start_len = b->len;
    int rc = gf_buf_putc(b, '"');
    size_t i = 0;
    while (rc == 0 && i < n) {
        size_t run = i;
        while (run < n && json_plain[p[run]])
            run++;
        if (run > i) { // plain ASCII needs no escaping: one copy for the whole run
            rc = gf_buf_append(b, p + i, run - i);
            i = run;
            continue;
        }
        unsigned c = p[i];
        if (c >= 0x80) {
            size_t l = utf8_seq(p + i, n - i);
            if (l == 0) {
                rc = gf_buf_append(b, "\xEF\xBF\xBD", 3);
                i++;
            } else {
                rc = gf_buf_append(b, p + i, l);
                i += l;
            }
            continue;
        }
        char esc[7];
        switch (c) {
        case '"':
            rc = gf_buf_append(b, "\\\"", 2);
            break;
        case '\\':
            rc = gf_buf_append(b, "\\\\", 2);
            break;
        case '\n':
            rc = gf_buf_append(b, "\\n", 2);
            break;
        case '\r':
            rc = gf_buf_append(b, "\\r", 2);
            break;
        case '\t':
            rc = gf_buf_append(b, "\\t", 2);
            break;
        default:
            if (c < 0x20 || c == 0x7F) {
                esc[0] = '\\';
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                rc = gf_buf_append(b, esc, 6);
            } else {
                rc = gf_buf_putc(b, (char)c);
            }
        }
        i++;
    }
    if (rc == 0)
        rc = gf_buf_putc(b, '"');
    if (rc) {
        b->len = start_len;
        if (b->data)
            b->data[b->len] = '\0';
    }
    return rc;
}

void gf_buf_consume(struct gf_buf *b, size_t n)
{
    if (n >= b->len) {
        gf_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

char *gf_buf_steal(struct gf_buf *b)
{
    char *p = b->data;
    if (p == NULL)
        p = gf_strdup("");
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
