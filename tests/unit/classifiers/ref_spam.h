/* ref_spam.h — the spam heuristics' features computed the plain way, one byte at a time: the
 * reference that spam.c's 64-bytes-at-a-time word pass must match (test_spam.c). Words are runs
 * of ASCII letters, digits and bytes >= 0x80; repeated trigrams compare the words themselves;
 * the phrases (spam.c's own list) are tried at every place after a non-\w byte, all of them, the
 * longest kept. The score is spam.c's own formula. */
#ifndef GF_REF_SPAM_H
#define GF_REF_SPAM_H

#include <math.h>
#include <strings.h>

#include "classifiers/spam_int.h"

static bool ref_alnum_byte(unsigned char c)
{
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool ref_word_byte(unsigned char c)  // \w without Unicode
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool ref_space_byte(unsigned char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

static size_t ref_phrase_end(const char *ph, const unsigned char *s, size_t n, size_t p)
{
    for (; *ph; ph++) {
        if (*ph == ' ') {
            if (p >= n || !ref_space_byte(s[p]))
                return 0;
            while (p < n && ref_space_byte(s[p]))
                p++;
            continue;
        }
        unsigned char c = p < n ? s[p] : 0;
        if (p >= n || (c >= 'A' && c <= 'Z' ? c + 32 : c) != (unsigned char)*ph)
            return 0;
        p++;
    }
    return p < n && ref_word_byte(s[p]) ? 0 : p;
}

static unsigned ref_phrases_in(const unsigned char *s, size_t n)
{
    size_t n_phrases;
    const char *const *phrases = gf_spam_phrases(&n_phrases);
    unsigned seen = 0;
    for (size_t p = 0; p < n && seen < 8;) {
        size_t best = 0;
        if (p == 0 || !ref_word_byte(s[p - 1]))
            for (size_t k = 0; k < n_phrases; k++) {
                size_t e = ref_phrase_end(phrases[k], s, n, p);
                best = e > best ? e : best;
            }
        if (best > 0) {
            seen++;
            p = best;
        } else {
            p++;
        }
    }
    return seen;
}

static size_t ref_links(const char *s, size_t n)
{
    static const char *const tlds[] = {"com", "net", "org", "info", "biz", "ru", "xyz", "top",
                                       "io", "ly", "co", "uk", "click", "online", "site"};
    size_t k = 0;
    for (size_t i = 0; i + 3 <= n;) {
        if (memcmp(s + i, "://", 3) == 0) {
            k++;
            i += 3;
        } else {
            i++;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '.')
            continue;
        if (i >= 3 && memcmp(s + i - 3, "www", 3) == 0)
            k++;
        if (i == 0 || i + 3 > n || !ref_alnum_byte((unsigned char)s[i - 1]))
            continue;
        size_t m = 0;
        while (i + 1 + m < n && ref_alnum_byte((unsigned char)s[i + 1 + m]))
            m++;
        for (size_t t = 0; m >= 2 && m <= 6 && t < GF_ARRAY_LEN(tlds); t++)
            if (strlen(tlds[t]) == m && strncasecmp(s + i + 1, tlds[t], m) == 0) {
                k++;
                break;
            }
    }
    return k;
}

/* The spam score of a text whose canonical form is canon[0..clen). */
static double ref_spam_score(const char *s, size_t n, const char *canon, size_t clen)
{
    size_t letters = 0, upper = 0, bangs = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        letters += (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        upper += c >= 'A' && c <= 'Z';
        bangs += c == '!';
    }
    // Words as [start, end) pairs, then trigrams compared word by word with the earlier ones.
    size_t *ws = malloc((clen + 1) * sizeof(*ws)), *we = malloc((clen + 1) * sizeof(*we));
    size_t words = 0;
    for (size_t i = 0; i < clen;) {
        if (!ref_alnum_byte((unsigned char)canon[i])) {
            i++;
            continue;
        }
        ws[words] = i;
        while (i < clen && ref_alnum_byte((unsigned char)canon[i]))
            i++;
        we[words++] = i;
    }
    size_t trigrams = 0, repeats = 0;
    for (size_t t = 2; t < words && trigrams < 1024; t++, trigrams++) {
        bool again = false;
        for (size_t u = 2; u < t && !again; u++) {
            bool same = true;
            for (size_t k = 0; k < 3 && same; k++) {
                size_t a = t - k, b = u - k;
                same = we[a] - ws[a] == we[b] - ws[b] &&
                       memcmp(canon + ws[a], canon + ws[b], we[a] - ws[a]) == 0;
            }
            again = same;
        }
        repeats += again;
    }
    free(ws);
    free(we);
    return gf_spam_score_of(words, ref_links(s, n), letters, upper, bangs, trigrams, repeats,
                            ref_phrases_in((const unsigned char *)canon, clen));
}

#endif
