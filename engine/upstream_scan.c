/* upstream_scan.c — a JSON scanner that validates a text and walks it in place, without
 * building a tree: the upstream's replies and stream chunks are read once per request (or per
 * token), and only a few fields of each are used, so parsing them into cJSON trees (an
 * allocation per value, then a free per value) was a tenth of the event loop's work.
 * It accepts no more than cJSON does (so no reply cJSON refused gets through): whitespace is any
 * byte <= 0x20 as in cJSON, numbers follow strtod's decimal form up to 63 characters, \u escapes
 * need four hex digits and well-formed surrogate pairs, nesting stops at GF_JS_MAX_DEPTH.
 * Invariant: the walking functions are only used on text gf_js_value accepted. */
#include "engine/upstream_int.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const char *ws(const char *p, const char *end)
{
    while (p < end && (unsigned char)*p <= 0x20)
        p++;
    return p;
}

/* The code unit of the \uXXXX at p (6 bytes available), or -1. */
static long hex4(const char *p)
{
    if (p[0] != '\\' || p[1] != 'u')
        return -1;
    long v = 0;
    for (int i = 2; i < 6; i++) {
        int h = gf_hexval(p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/* Decodes the escape at p (p[0] == '\\'), end bounding it: the code point in *cp and the bytes
 * it spans, or 0 when it is invalid. */
static size_t escape(const char *p, const char *end, long *cp)
{
    if (end - p < 2)
        return 0;
    switch (p[1]) {
    case '"': *cp = '"'; return 2;
    case '\\': *cp = '\\'; return 2;
    case '/': *cp = '/'; return 2;
    case 'b': *cp = '\b'; return 2;
    case 'f': *cp = '\f'; return 2;
    case 'n': *cp = '\n'; return 2;
    case 'r': *cp = '\r'; return 2;
    case 't': *cp = '\t'; return 2;
    case 'u': break;
    default: return 0;
    }
    if (end - p < 6)
        return 0;
    long hi = hex4(p);
    if (hi < 0 || (hi >= 0xDC00 && hi <= 0xDFFF))
        return 0;
    if (hi < 0xD800 || hi > 0xDBFF) {
        *cp = hi;
        return 6;
    }
    if (end - p < 12)
        return 0;
    long lo = hex4(p + 6);
    if (lo < 0xDC00 || lo > 0xDFFF)
        return 0;
    *cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
    return 12;
}

/* p is just past the opening quote: the closing quote, or NULL. */
static inline const char *string_end(const char *p, const char *end)
{
    while (p < end) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        const char *bs = memchr(p, '\\', (size_t)((q ? q : end) - p));
        if (bs == NULL)
            return q;
        long cp;
        size_t n = escape(bs, end, &cp);
        if (n == 0)
            return NULL;
        p = bs + n;
    }
    return NULL;
}

static inline const char *number_end(const char *p, const char *end)
{
    const char *s = p;
    if (p < end && *p == '-')
        p++;
    size_t digits = 0;
    while (p < end && *p >= '0' && *p <= '9')
        p++, digits++;
    if (p < end && *p == '.') {
        p++;
        while (p < end && *p >= '0' && *p <= '9')
            p++, digits++;
    }
    if (digits == 0)
        return NULL;
    if (p < end && (*p == 'e' || *p == 'E')) {
        const char *q = p + 1;
        if (q < end && (*q == '+' || *q == '-'))
            q++;
        if (q < end && *q >= '0' && *q <= '9') {
            while (q < end && *q >= '0' && *q <= '9')
                q++;
            p = q;
        }
    }
    return p - s <= 63 ? p : NULL; // cJSON reads at most 63 characters of a number
}

static const char *literal(const char *p, const char *end, const char *word, size_t n)
{
    return (size_t)(end - p) >= n && memcmp(p, word, n) == 0 ? p + n : NULL;
}

/* gf_js_value, noting each container in doc (NULL: none) while it has room. */
static const char *value(const char *p, const char *end, int depth, struct gf_js_doc *doc)
{
    if (p >= end)
        return NULL;
    switch (*p) {
    case '"': {
        const char *q = string_end(p + 1, end);
        return q ? q + 1 : NULL;
    }
    case '{':
    case '[': {
        bool obj = *p == '{';
        char close = obj ? '}' : ']';
        if (depth >= GF_JS_MAX_DEPTH)
            return NULL;
        unsigned slot = GF_JS_DOC_MAX;
        if (doc != NULL && doc->n < GF_JS_DOC_MAX) {
            slot = doc->n++;
            doc->box[slot].start = (unsigned)(p - doc->base);
            doc->box[slot].end = 0; // not closed (yet)
        }
        p = ws(p + 1, end);
        if (p < end && *p == close)
            goto closed;
        for (;;) {
            if (obj) {
                if (p >= end || *p != '"' || (p = value(p, end, depth + 1, doc)) == NULL)
                    return NULL;
                p = ws(p, end);
                if (p >= end || *p != ':')
                    return NULL;
                p = ws(p + 1, end);
            }
            if ((p = value(p, end, depth + 1, doc)) == NULL)
                return NULL;
            p = ws(p, end);
            if (p < end && *p == close)
                goto closed;
            if (p >= end || *p != ',')
                return NULL;
            p = ws(p + 1, end);
        }
    closed:
        if (slot < GF_JS_DOC_MAX)
            doc->box[slot].end = (unsigned)(p + 1 - doc->base);
        return p + 1;
    }
    case 't': return literal(p, end, "true", 4);
    case 'f': return literal(p, end, "false", 5);
    case 'n': return literal(p, end, "null", 4);
    default:
        return *p == '-' || (*p >= '0' && *p <= '9') ? number_end(p, end) : NULL;
    }
}

const char *gf_js_value(const char *p, const char *end, int depth)
{
    return value(p, end, depth, NULL);
}

const char *gf_js_value_doc(const char *p, const char *end, struct gf_js_doc *doc)
{
    doc->base = p;
    doc->n = 0;
    // offsets are unsigned: a longer text (never an upstream reply, which is capped) goes unnoted
    return value(p, end, 0, p < end && (size_t)(end - p) < UINT_MAX ? doc : NULL);
}

/* The end noted in doc for the container opening at p, or NULL when it was not noted. */
static const char *noted_end(const struct gf_js_doc *doc, const char *p)
{
    size_t off = (size_t)(p - doc->base), lo = 0, hi = doc->n;
    while (lo < hi) { // boxes are sorted by start: they were noted as they opened
        size_t mid = (lo + hi) / 2;
        if (doc->box[mid].start < off)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < doc->n && doc->box[lo].start == off && doc->box[lo].end > off)
        return doc->base + doc->box[lo].end;
    return NULL;
}

/* The end of the value at p in text gf_js_value accepted: a container noted in doc (NULL: no
 * index) is jumped over; otherwise brackets are counted, strings skipped, nothing is checked
 * again (validating each member anew while walking cost more than the first pass). */
static const char *skip(const char *p, const char *end, const struct gf_js_doc *doc)
{
    if (doc != NULL && (*p == '{' || *p == '[')) {
        const char *e = noted_end(doc, p);
        if (e != NULL)
            return e;
    }
    int depth = 0;
    do {
        char c = *p;
        if (c == '"') {
            // the next quote not escaped: one preceded by an even run of backslashes
            const char *q = p + 1;
            for (;;) {
                q = memchr(q, '"', (size_t)(end - q));
                size_t bs = 0;
                while (q - bs > p + 1 && q[-1 - (long)bs] == '\\')
                    bs++;
                if (bs % 2 == 0)
                    break;
                q++;
            }
            p = q + 1;
        } else if (c == '{' || c == '[') {
            depth++;
            p++;
        } else if (c == '}' || c == ']') {
            depth--;
            p++;
        } else if (depth > 0) {
            p++;
        } else {
            while (p < end && *p != ',' && *p != '}' && *p != ']' && (unsigned char)*p > 0x20)
                p++; // a number or a literal
        }
    } while (depth > 0);
    return p;
}

void gf_js_iter(struct gf_js_it *it, struct gf_js v)
{
    it->p = v.n >= 2 ? ws(v.p + 1, v.p + v.n - 1) : v.p;
    it->end = v.n >= 2 ? v.p + v.n - 1 : v.p;
    it->doc = v.doc;
}

bool gf_js_next(struct gf_js_it *it, struct gf_js *key, struct gf_js *val)
{
    const char *p = it->p, *end = it->end;
    if (p >= end)
        return false;
    if (key != NULL) {
        const char *k = skip(p, end, NULL); // a string
        key->p = p;
        key->n = (size_t)(k - p);
        key->doc = it->doc;
        p = ws(ws(k, end) + 1, end); // past ':'
    }
    const char *e = skip(p, end, it->doc);
    val->p = p;
    val->n = (size_t)(e - p);
    val->doc = it->doc;
    p = ws(e, end);
    it->p = p < end ? ws(p + 1, end) : p; // past ','
    return true;
}

/* Writes the UTF-8 form of the code point cp (as cJSON encodes it) to u: its length. */
static size_t utf8(char u[4], long cp)
{
    if (cp < 0x80) {
        u[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    u[0] = (char)(0xF0 | cp >> 18);
    u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    u[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

int gf_js_str(struct gf_js s, struct gf_buf *out)
{
    // the decoded text is never longer than the quoted one (an escape gives at most its length)
    int rc = gf_buf_reserve(out, s.n + 1);
    if (rc != 0)
        return rc;
    const char *p = s.p + 1, *end = s.p + s.n - 1;
    while (p < end) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        size_t run = (size_t)((bs ? bs : end) - p);
        memcpy(out->data + out->len, p, run);
        out->len += run;
        if (bs == NULL)
            break;
        long cp = 0;
        size_t n = escape(bs, end + 1, &cp);
        if (n == 0)
            break; // not text gf_js_value accepted: what came before is all there is
        p = bs + n;
        out->len += utf8(out->data + out->len, cp);
    }
    out->data[out->len] = '\0';
    return 0;
}

bool gf_js_is_decoded(struct gf_js s, const char *name)
{
    // cJSON compares the decoded key as a C string: "na\u006de" and "name\u0000x" are "name".
    // Decoded a character at a time against name, so a name of any length is compared, up to
    // its first NUL, and a plain byte that differs ends it at once.
    const char *p = s.p + 1, *end = s.p + s.n - 1, *q = name;
    while (p < end) {
        char u[4];
        const char *c = p;
        size_t k = 1;
        if (*p == '\\') {
            long cp = 0;
            size_t e = escape(p, end + 1, &cp);
            if (e == 0)
                return false; // not text gf_js_value accepted
            k = utf8(u, cp);
            c = u;
            p += e;
        } else {
            p++;
        }
        for (size_t i = 0; i < k; i++, q++) {
            if (c[i] == '\0')
                return *q == '\0';
            if (*q != c[i])
                return false;
        }
    }
    return *q == '\0';
}

bool gf_js_num(struct gf_js v, double *out)
{
    if (v.n == 0 || !(v.p[0] == '-' || (v.p[0] >= '0' && v.p[0] <= '9')) || v.n > 63)
        return false;
    if (v.n <= 15) { // token counts and indexes: plain digits, exact in a double
        double d = 0;
        size_t i = 0;
        while (i < v.n && v.p[i] >= '0' && v.p[i] <= '9')
            d = d * 10 + (v.p[i++] - '0');
        if (i == v.n) {
            *out = d;
            return true;
        }
    }
    char tmp[64];
    memcpy(tmp, v.p, v.n);
    tmp[v.n] = '\0';
    char *e = NULL;
    *out = strtod(tmp, &e);
    return e != tmp;
}

int gf_js_minify(struct gf_js v, struct gf_buf *out)
{
    int rc = gf_buf_reserve(out, v.n * 6 + 1);
    if (rc != 0)
        return rc;
    static const char hex[] = "0123456789abcdef";
    char *o = out->data + out->len;
    bool in_str = false;
    for (const char *p = v.p, *end = v.p + v.n; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (!in_str) {
            if (c > 0x20)
                *o++ = (char)c;
            in_str = c == '"';
        } else if (c == '\\') {
            *o++ = *p++;  // the escaped byte is copied with it (validated: it exists)
            *o++ = *p;
        } else if (c < 0x20) {
            // raw control bytes cJSON accepted inside strings are not JSON: escaped on output
            memcpy(o, "\\u00", 4);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            o += 6;
        } else {
            *o++ = (char)c;
            in_str = c != '"';
        }
    }
    out->len = (size_t)(o - out->data);
    out->data[out->len] = '\0';
    return 0;
}
