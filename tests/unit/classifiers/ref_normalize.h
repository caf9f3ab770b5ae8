/* ref_normalize.h — the canonical form written the plain way, one byte or character at a time:
 * the reference that normalize.c's word-at-a-time and eight-bytes-at-a-time passes must match
 * byte for byte, map included (test_normalize.c). Same three passes: fold each character
 * (gf_fold_cp) with its span, squeeze spaces and join spaced-out letters, unleet words. */
#ifndef GF_REF_NORMALIZE_H
#define GF_REF_NORMALIZE_H

#include "classifiers/fold_int.h"

struct ref_form {
    char *t;
    uint32_t *start, *end;
    size_t n;
};

static void ref_emit(struct ref_form *f, size_t *w, char c, uint32_t s, uint32_t e)
{
    f->t[*w] = c;
    f->start[*w] = s;
    f->end[*w] = e;
    (*w)++;
}

static size_t ref_fold(const unsigned char *s, size_t len, struct ref_form *f)
{
    size_t w = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = gf_utf8_decode(s + i, len - i, &cp);
        if (n == 0) {  // an invalid byte is dropped
            i++;
            continue;
        }
        char tmp[4];
        size_t k = gf_fold_cp(cp, tmp);
        for (size_t j = 0; j < k; j++)
            ref_emit(f, &w, tmp[j], (uint32_t)i, (uint32_t)(i + n));
        i += n;
    }
    return w;
}

static bool ref_is_word(unsigned char c)  // letters, digits, leet signs, non-ASCII
{
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '$' || c == '@';
}

static bool ref_is_leet(unsigned char c)
{
    return c == '0' || c == '1' || c == '3' || c == '4' || c == '5' || c == '7' || c == '@' ||
           c == '$';
}

static size_t ref_char_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

static size_t ref_token_len(const struct ref_form *f, size_t r)
{
    size_t q = r;
    while (q < f->n && ref_is_word((unsigned char)f->t[q]))
        q++;
    return q - r;
}

static void ref_copy(struct ref_form *f, size_t *w, size_t r, size_t n)
{
    for (size_t k = 0; k < n; k++)  // w <= r: forward byte copies never overwrite unread bytes
        ref_emit(f, w, f->t[r + k], f->start[r + k], f->end[r + k]);
}

static size_t ref_gap(struct ref_form *f, size_t *w, size_t r)
{
    if (f->t[r] != ' ') {
        ref_copy(f, w, r, 1);
        return r + 1;
    }
    size_t q = r;
    while (q < f->n && f->t[q] == ' ')
        q++;
    ref_emit(f, w, ' ', f->start[r], f->end[q - 1]);
    return q;
}

static size_t ref_join(struct ref_form *f)
{
    size_t w = 0, r = 0;
    while (r < f->n) {
        unsigned char c = (unsigned char)f->t[r];
        if (!ref_is_word(c)) {
            r = ref_gap(f, &w, r);
            continue;
        }
        size_t tl = ref_token_len(f, r);
        if (tl != ref_char_len(c)) {
            ref_copy(f, &w, r, tl);
            r += tl;
            continue;
        }
        size_t q = r, count = 0, last = r;
        bool letter = false;
        for (;;) {
            unsigned char h = (unsigned char)f->t[q];
            count++;
            letter |= h >= 'a' && h <= 'z';
            last = q + ref_char_len(h);
            if (last + 1 < f->n && !ref_is_word((unsigned char)f->t[last]) &&
                ref_token_len(f, last + 1) == ref_char_len((unsigned char)f->t[last + 1]))
                q = last + 1;
            else
                break;
        }
        bool join = count >= 3 && letter;
        while (r < last) {
            if (ref_is_word((unsigned char)f->t[r])) {
                size_t cl = ref_char_len((unsigned char)f->t[r]);
                ref_copy(f, &w, r, cl);
                r += cl;
            } else if (join) {
                r++;
            } else {
                r = ref_gap(f, &w, r);
            }
        }
    }
    return w;
}

static void ref_unleet(struct ref_form *f)
{
    static const char digits[] = "oi2eas6t89";
    for (size_t a = 0; a < f->n;) {
        if (!ref_is_word((unsigned char)f->t[a])) {
            a++;
            continue;
        }
        size_t b = a;
        bool letter = false, leet = false;
        for (; b < f->n && ref_is_word((unsigned char)f->t[b]); b++) {
            unsigned char c = (unsigned char)f->t[b];
            letter |= c >= 'a' && c <= 'z';
            leet |= ref_is_leet(c);
        }
        for (size_t k = a; letter && leet && k < b; k++) {
            unsigned char c = (unsigned char)f->t[k];
            if (c >= '0' && c <= '9')
                f->t[k] = digits[c - '0'];
            else if (c == '@')
                f->t[k] = 'a';
            else if (c == '$')
                f->t[k] = 's';
        }
        a = b;
    }
}

/* The canonical form of s[0..len) into t, start and end (len + 1 bytes, len entries each);
 * returns its length. */
static size_t ref_normalize(const char *s, size_t len, char *t, uint32_t *start, uint32_t *end)
{
    struct ref_form f = {t, start, end, 0};
    f.n = ref_fold((const unsigned char *)s, len, &f);
    f.n = ref_join(&f);
    ref_unleet(&f);
    t[f.n] = '\0';
    return f.n;
}

#endif
