/* json_check.c — a JSON syntax checker that allocates nothing, so the verifier can confirm that
 * every line of a (possibly attacker-edited) log is one well-formed JSON value at disk speed.
 * Invariant: it reads only p[0..n), and recursion is bounded by MAX_DEPTH. */
#include "audit/audit.h"

#include <string.h>

#define MAX_DEPTH 64

struct cur {
    const char *p, *end;
};

static void ws(struct cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static bool lit(struct cur *c, const char *w, size_t n)
{
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0)
        return false;
    c->p += n;
    return true;
}

/* Reads 4 hex digits into *v. */
static bool hex4(struct cur *c, unsigned *v)
{
    if (c->end - c->p < 4)
        return false;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char h = c->p[i];
        unsigned d;
        if (h >= '0' && h <= '9')
            d = (unsigned)(h - '0');
        else if (h >= 'a' && h <= 'f')
            d = (unsigned)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F')
            d = (unsigned)(h - 'A' + 10);
        else
            return false;
        *v = *v << 4 | d;
    }
    c->p += 4;
    return true;
}

/* After "\u": one code point, a surrogate pair written as two escapes or none at all (a lone
 * surrogate is not text, and parsers refuse it). */
static bool uescape(struct cur *c)
{
    unsigned hi, lo;
    if (!hex4(c, &hi))
        return false;
    if (hi >= 0xDC00 && hi <= 0xDFFF)
        return false;
    if (hi < 0xD800 || hi > 0xDBFF)
        return true;
    if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u')
        return false;
    c->p += 2;
    return hex4(c, &lo) && lo >= 0xDC00 && lo <= 0xDFFF;
}

static bool string(struct cur *c)
{
    if (c->p >= c->end || *c->p != '"')
        return false;
    const char *start = ++c->p;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            bool ok = gf_utf8_valid(start, (size_t)(c->p - start));
            c->p++;
            return ok;
        }
        if (ch < 0x20)
            return false;
        if (ch == '\\') {
            c->p++;
            if (c->p >= c->end)
                return false;
            char e = *c->p++;
            if (e == 'u') {
                if (!uescape(c))
                    return false;
            } else if (!strchr("\"\\/bfnrt", e) || e == '\0') {
                return false;
            }
            continue;
        }
        c->p++;
    }
    return false;
}

static bool digits(struct cur *c)
{
    const char *s = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > s;
}

static bool number(struct cur *c)
{
    if (c->p < c->end && *c->p == '-')
        c->p++;
    if (c->p < c->end && *c->p == '0')
        c->p++;
    else if (!digits(c))
        return false;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (!digits(c))
            return false;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            c->p++;
        if (!digits(c))
            return false;
    }
    return true;
}

static bool value(struct cur *c, int depth);

static bool container(struct cur *c, int depth, char close, bool object)
{
    if (depth >= MAX_DEPTH)
        return false;
    c->p++;
    ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return true;
    }
    for (;;) {
        if (object) {
            if (!string(c))
                return false;
            ws(c);
            if (c->p >= c->end || *c->p != ':')
                return false;
            c->p++;
        }
        if (!value(c, depth + 1))
            return false;
        ws(c);
        if (c->p >= c->end)
            return false;
        if (*c->p == close) {
            c->p++;
            return true;
        }
        if (*c->p != ',')
            return false;
        c->p++;
        ws(c);
    }
}

static bool value(struct cur *c, int depth)
{
    ws(c);
    if (c->p >= c->end)
        return false;
    switch (*c->p) {
    case '{':
        return container(c, depth, '}', true);
    case '[':
        return container(c, depth, ']', false);
    case '"':
        return string(c);
    case 't':
        return lit(c, "true", 4);
    case 'f':
        return lit(c, "false", 5);
    case 'n':
        return lit(c, "null", 4);
    default:
        return number(c);
    }
}

bool gf_audit_json_valid(const char *p, size_t n)
{
    struct cur c = {p, p + n};
    if (!value(&c, 0))
        return false;
    ws(&c);
    return c.p == c.end;
}
