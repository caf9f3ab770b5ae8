/* clf_text.c — from raw text to features: the text is normalized (the same canonical form the
 * detectors use, so evasion tricks do not change the features) into a fixed buffer, segment by
 * segment, and each segment is hashed. Invariant: it never allocates, and the features of a text
 * depend only on the text and the hash parameters, not on who calls (scoring or training). */
#include "classifiers/clf_int.h"

#include <string.h>

/* PLACEHOLDER until classifiers/normalize.c lands: folds ASCII case only. */
static size_t normalize(const char *in, size_t n, char *out, size_t cap)
{
    size_t k = n < cap ? n : cap;
    for (size_t i = 0; i < k; i++) {
        char c = in[i];
        out[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    return k;
}

uint32_t gf_clf_norm_version(void)
{
    return 0;  // PLACEHOLDER: GF_NORM_VERSION once the normalizer lands
}

// Input bytes per segment: the normalizer may expand text, so a segment is a quarter of the
// buffer, which bounds the output of any expansion up to 4x.
static size_t segment_len(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    // Cut after the last whitespace of the segment so no word is split; failing that, at a
    // UTF-8 character boundary.
    for (size_t i = max; i > max / 2; i--)
        if (s[i - 1] == ' ' || s[i - 1] == '\n' || s[i - 1] == '\t')
            return i;
    size_t i = max;
    while (i > 1 && ((unsigned char)s[i] & 0xC0) == 0x80)
        i--;
    return i;
}

size_t gf_clf_text_features(const struct gf_clf_hash_params *hp, const char *text, size_t len,
                            char *buf, size_t cap, gf_clf_feature_fn fn, void *ud)
{
    size_t count = 0, seg_max = cap / 4;
    while (len > 0) {
        size_t take = segment_len(text, len, seg_max);
        size_t out = normalize(text, take, buf, cap);
        count += gf_clf_features(hp, buf, out, fn, ud);
        text += take;
        len -= take;
    }
    return count;
}
