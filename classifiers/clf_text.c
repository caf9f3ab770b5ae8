/* clf_text.c — from raw text to features: the text is put in canonical form (gf_normalize, the
 * form the detectors use, so evasion tricks do not change the features) in a fixed buffer,
 * segment by segment, and each segment is hashed, after the shape features of the original
 * text (clf_shape.c). Invariant: it never allocates, and the features of a text
 * depend only on the text and the hash parameters, not on who calls (scoring or training). */
#include "classifiers/clf_int.h"

#include <string.h>

uint32_t gf_clf_norm_version(void)
{
    return GF_NORM_VERSION;
}

// Input bytes per segment: the canonical form is never longer than its input, and
// gf_normalize_into needs one byte more than the input without the byte map.
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
                            char *buf, size_t cap, gf_clf_feature_fn fn, gf_clf_token_fn tfn,
                            void *ud)
{
    // The shape of the whole original text first (capitals, '!', currency, links), which the
    // canonical form loses, then the n-grams of the canonical form segment by segment.
    size_t count = gf_clf_shape_features(hp, text, len, fn, ud), seg_max = cap - 1;
    while (len > 0) {
        size_t take = segment_len(text, len, seg_max);
        struct gf_norm nm;
        struct gf_clf_feat_state fs = {{0}, 0};  // each segment starts afresh
        if (gf_normalize_into(text, take, buf, cap, GF_NORM_NO_MAP, &nm) == 0)  // always fits
            count += gf_clf_features_tok(hp, &fs, nm.text, nm.len, fn, tfn, ud);
        text += take;
        len -= take;
    }
    return count;
}
