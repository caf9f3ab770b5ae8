/* clf_evasion.c — evasion variants of a text, for measuring that the classifiers' scores do
 * not move when a writer disguises the same words: Cyrillic homoglyphs, zero-width characters,
 * leetspeak, and a spaced-out word ("b o m b"). Used by `gardefou eval --evasion` and the tests.
 * Invariant: a variant only disguises; read back by a person it says the same thing. */
#include "classifiers/clf_int.h"

#include <string.h>

static bool is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

const char *gf_clf_evasion_name(enum gf_clf_evasion kind)
{
    switch (kind) {
    case GF_CLF_EVADE_HOMOGLYPH:
        return "homoglyphs";
    case GF_CLF_EVADE_ZERO_WIDTH:
        return "zero-width";
    case GF_CLF_EVADE_LEET:
        return "leetspeak";
    case GF_CLF_EVADE_SPACING:
        return "spacing";
    default:
        return "?";
    }
}

/* Cyrillic look-alikes of Latin lowercase letters, UTF-8; NULL where none is used. */
static const char *homoglyph(unsigned char c)
{
    switch (c) {
    case 'a':
        return "\xd0\xb0";
    case 'c':
        return "\xd1\x81";
    case 'e':
        return "\xd0\xb5";
    case 'o':
        return "\xd0\xbe";
    case 'p':
        return "\xd1\x80";
    case 'x':
        return "\xd1\x85";
    case 'y':
        return "\xd1\x83";
    default:
        return NULL;
    }
}

static char leet(unsigned char c)
{
    switch (c) {
    case 'a':
        return '4';
    case 'e':
        return '3';
    case 'o':
        return '0';
    case 'i':
        return '1';
    case 's':
        return '5';
    case 't':
        return '7';
    default:
        return 0;
    }
}

/* Bounds of the space-delimited token holding s[i]. */
static void token_at(const char *s, size_t n, size_t i, size_t *a, size_t *b)
{
    size_t x = i, y = i;
    while (x > 0 && s[x - 1] != ' ')
        x--;
    while (y < n && s[y] != ' ')
        y++;
    *a = x;
    *b = y;
}

/* True when s[a..b) is a word of two or more ASCII letters. */
static bool plain_word(const char *s, size_t a, size_t b)
{
    if (b - a < 2)
        return false;
    for (size_t i = a; i < b; i++)
        if (!is_alpha((unsigned char)s[i]))
            return false;
    return true;
}

/* The longest space-delimited word of ASCII letters (at least 4, maybe followed by one of
 * .,!?;:) whose neighbouring tokens are plain words of two or more letters: "a b o m b" or "4 f u c k"
 * cannot be told from "abomb" or "4fuck" by anyone, so those are not evasions the canonical
 * form can undo; docs/classifiers.md lists them as a known weakness. */
static bool longest_word(const char *s, size_t n, size_t *at, size_t *len)
{
    size_t best = 0, best_at = 0;
    for (size_t i = 0; i < n;) {
        if (s[i] == ' ') {
            i++;
            continue;
        }
        size_t a, b;
        token_at(s, n, i, &a, &b);
        size_t w = a;
        while (w < b && is_alpha((unsigned char)s[w]))
            w++;
        bool word = w == b || (w + 1 == b && strchr(".,!?;:", s[w]) != NULL);
        bool ok = word && w - a > best;
        if (ok && a >= 2) {  // the token before
            size_t pa, pb;
            token_at(s, n, a - 2, &pa, &pb);
            ok = plain_word(s, pa, pb);
        }
        if (ok && b + 1 < n) {  // the token after
            size_t na, nb;
            token_at(s, n, b + 1, &na, &nb);
            ok = plain_word(s, na, nb);
        }
        if (ok) {
            best = w - a;
            best_at = a;
        }
        i = b;
    }
    *at = best_at;
    *len = best;
    return best >= 4;
}

int gf_clf_evade(enum gf_clf_evasion kind, const char *s, size_t n, struct gf_buf *out)
{
    gf_buf_reset(out);
    int rc = 0;
    size_t in_word = 0;  // letters seen so far in the current word
    size_t at = 0, wl = 0;
    if (kind == GF_CLF_EVADE_SPACING && !longest_word(s, n, &at, &wl))
        wl = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        in_word = is_alpha(c) ? in_word + 1 : 0;
        switch (kind) {
        case GF_CLF_EVADE_HOMOGLYPH: {
            const char *h = homoglyph(c);
            rc = h ? gf_buf_puts(out, h) : gf_buf_putc(out, (char)c);
            break;
        }
        case GF_CLF_EVADE_ZERO_WIDTH:
            rc = gf_buf_putc(out, (char)c);
            if (rc == 0 && in_word > 0 && in_word % 2 == 0)
                rc = gf_buf_puts(out, "\xe2\x80\x8b");  // U+200B ZERO WIDTH SPACE
            break;
        case GF_CLF_EVADE_LEET: {
            // Every other letter that has a leet form, so each word keeps letters.
            char l = leet(c);
            rc = gf_buf_putc(out, (l && in_word % 2 == 0) ? l : (char)c);
            break;
        }
        case GF_CLF_EVADE_SPACING:
            rc = gf_buf_putc(out, (char)c);
            if (rc == 0 && wl > 0 && i >= at && i + 1 < at + wl)
                rc = gf_buf_putc(out, ' ');
            break;
        default:
            return GF_EINVAL;
        }
    }
    return rc;
}
