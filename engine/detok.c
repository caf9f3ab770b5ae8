/* detok.c — the streaming decoder: token ids to text that is always whole, valid UTF-8.
 * Invariant: what gf_detok_push appends never ends inside a character; at most 3 bytes of an
 * unfinished character wait in the decoder, and bytes that can never form a character are
 * replaced by U+FFFD (one per maximal invalid subpart, as the Unicode standard recommends). */
#include "engine/tokenizer.h"

#include <string.h>

static const char replacement[] = "\xef\xbf\xbd";

/* Classifies the bytes at p[0..n) (n >= 1, at most 4 looked at): returns the length of a
 * complete valid character, 0 when the bytes are a valid but unfinished start, or -k when the
 * first k bytes are an invalid subpart to replace. */
static int utf8_char(const uint8_t *p, size_t n)
{
    uint8_t c = p[0];
    if (c < 0x80)
        return 1;
    int len;
    uint8_t lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        lo = c == 0xe0 ? 0xa0 : 0x80;  // no overlongs
        hi = c == 0xed ? 0x9f : 0xbf;  // no surrogates
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;  // nothing past U+10FFFF
    } else {
        return -1;
    }
    for (int i = 1; i < len; i++) {
        if ((size_t)i >= n)
            return 0;
        uint8_t lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xbf;
        if (p[i] < lo_i || p[i] > hi_i)
            return -i;
    }
    return len;
}

void gf_detok_init(struct gf_detok *d, const struct gf_tokenizer *t, unsigned flags)
{
    memset(d, 0, sizeof(*d));
    d->tok = t;
    d->flags = flags;
}

/* Appends the complete characters of pend + p[0..m) to out, keeping an unfinished tail. */
static int feed(struct gf_detok *d, const uint8_t *p, size_t m, struct gf_buf *out)
{
    size_t np = d->n_pend, total = np + m, i = 0;
    size_t run = 0;  // start (in p) of a run of valid bytes not yet appended, when i >= np
    while (i < total) {
        uint8_t w[4];
        size_t k = 0;
        for (; k < 4 && i + k < total; k++)
            w[k] = i + k < np ? d->pend[i + k] : p[i + k - np];
        int r = utf8_char(w, k);
        if (r > 0 && i >= np) {  // inside p: extend the run, append later in one piece
            i += (size_t)r;
            continue;
        }
        if (i >= np && i - np > run) {
            int rc = gf_buf_append(out, p + run, i - np - run);
            if (rc != 0)
                return rc;
        }
        if (r > 0) {  // a character that starts in the held-back bytes
            int rc = gf_buf_append(out, w, (size_t)r);
            if (rc != 0)
                return rc;
            i += (size_t)r;
        } else if (r == 0) {  // unfinished: hold the rest (at most 3 bytes)
            uint8_t keep[4];
            memcpy(keep, w, k);
            memcpy(d->pend, keep, k);
            d->n_pend = k;
            return 0;
        } else {
            int rc = gf_buf_append(out, replacement, 3);
            if (rc != 0)
                return rc;
            i += (size_t)-r;
        }
        run = i > np ? i - np : 0;
    }
    d->n_pend = 0;
    if (total > np && m > run)
        return gf_buf_append(out, p + run, m - run);
    return 0;
}

int gf_detok_push(struct gf_detok *d, int32_t id, struct gf_buf *out)
{
    size_t len;
    const char *s = gf_tokenizer_piece(d->tok, id, (d->flags & GF_DETOK_SPECIAL) != 0, &len);
    if (len == 0)
        return 0;
    if (!d->started) {
        d->started = true;
        if ((d->flags & GF_DETOK_STRIP_SPACE) && s[0] == ' ') {
            s++;
            len--;
        }
    }
    return feed(d, (const uint8_t *)s, len, out);
}

int gf_detok_finish(struct gf_detok *d, struct gf_buf *out)
{
    if (d->n_pend == 0)
        return 0;
    d->n_pend = 0;
    return gf_buf_append(out, replacement, 3);
}

int gf_tokenizer_decode(const struct gf_tokenizer *t, const int32_t *ids, size_t n,
                        unsigned flags, struct gf_buf *out)
{
    struct gf_detok d;
    gf_detok_init(&d, t, flags);
    for (size_t i = 0; i < n; i++) {
        int rc = gf_detok_push(&d, ids[i], out);
        if (rc != 0)
            return rc;
    }
    return gf_detok_finish(&d, out);
}
