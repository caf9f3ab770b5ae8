/* clf_hash.c — the features of the trained classifiers: hashed word n-grams and character
 * n-grams of normalized text, fastText style, streamed to a callback without allocating.
 * Invariant: the same text, parameters and seed always give the same buckets in the same order,
 * on every platform (fixed-width arithmetic only), because the model file depends on it. */
#include "classifiers/clf_int.h"

#include <string.h>

// Kinds keep the hash spaces of different feature types apart.
enum { KIND_WORD = 1, KIND_CHAR = 2 };

static inline uint64_t mix64(uint64_t x)
{
    // The splitmix64 finalizer: every input bit affects every output bit.
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static inline uint64_t hash_bytes(uint64_t h, const unsigned char *p, size_t n)
{
    // FNV-1a over the bytes, started from the given state.
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static inline uint32_t to_bucket(uint64_t h, uint32_t buckets)
{
    // Multiply-shift maps the top 32 bits onto [0, buckets) without a division.
    return (uint32_t)(((h >> 32) * (uint64_t)buckets) >> 32);
}

static inline bool is_word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c >= 0x80 || c == '_';
}

static inline bool is_space_byte(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int gf_clf_hash_params_check(const struct gf_clf_hash_params *hp, struct gf_err *err)
{
    if (hp->buckets < 1 || hp->buckets > (1u << 26))
        return gf_err_set(err, GF_EINVAL, "buckets: %u not in [1, 2^26]", hp->buckets);
    if (hp->word_max > GF_CLF_MAX_WORD_N || (hp->word_max > 0 && hp->word_min < 1) ||
        (hp->word_max > 0 && hp->word_min > hp->word_max))
        return gf_err_set(err, GF_EINVAL, "word n-grams: bad range %u..%u", hp->word_min,
                          hp->word_max);
    if (hp->char_max > GF_CLF_MAX_CHAR_N || (hp->char_max > 0 && hp->char_min < 1) ||
        (hp->char_max > 0 && hp->char_min > hp->char_max))
        return gf_err_set(err, GF_EINVAL, "char n-grams: bad range %u..%u", hp->char_min,
                          hp->char_max);
    if (hp->word_max == 0 && hp->char_max == 0)
        return gf_err_set(err, GF_EINVAL, "features: neither word nor char n-grams enabled");
    return 0;
}

/* Emits the character n-grams of one token framed as "<token>". */
static size_t char_ngrams(const struct gf_clf_hash_params *hp, uint64_t base,
                          const unsigned char *tok, size_t n, gf_clf_feature_fn fn, void *ud)
{
    unsigned char framed[GF_CLF_MAX_CHAR_TOK + 2];
    if (n > GF_CLF_MAX_CHAR_TOK)
        n = GF_CLF_MAX_CHAR_TOK;
    framed[0] = '<';
    memcpy(framed + 1, tok, n);
    framed[n + 1] = '>';
    size_t fn_len = n + 2, count = 0;
    for (uint32_t k = hp->char_min; k <= hp->char_max; k++) {
        if (k > fn_len)
            break;
        for (size_t i = 0; i + k <= fn_len; i++) {
            uint64_t h = hash_bytes(base ^ (uint64_t)k, framed + i, k);
            fn(ud, to_bucket(mix64(h), hp->buckets));
            count++;
        }
    }
    return count;
}

size_t gf_clf_features(const struct gf_clf_hash_params *hp, const char *s, size_t n,
                       gf_clf_feature_fn fn, void *ud)
{
    const unsigned char *p = (const unsigned char *)s;
    const uint64_t seed = mix64(0x6766636c66ULL ^ (uint64_t)hp->seed); // "gfclf"
    const uint64_t word_base = mix64(seed ^ KIND_WORD) | 1;
    const uint64_t char_base = mix64(seed ^ KIND_CHAR) | 1;
    // Hashes of the last GF_CLF_MAX_WORD_N tokens, newest last, for word n-grams.
    uint64_t hist[GF_CLF_MAX_WORD_N] = {0};
    uint32_t have = 0;
    size_t count = 0, i = 0;

    while (i < n) {
        if (is_space_byte(p[i])) {
            i++;
            continue;
        }
        size_t start = i;
        bool word = is_word_byte(p[i]);
        if (word) {
            while (i < n && is_word_byte(p[i]))
                i++;
        } else {
            i++;
        }
        const unsigned char *tok = p + start;
        size_t len = i - start;

        memmove(hist, hist + 1, sizeof(hist) - sizeof(hist[0]));
        hist[GF_CLF_MAX_WORD_N - 1] = mix64(hash_bytes(word_base, tok, len));
        if (have < GF_CLF_MAX_WORD_N)
            have++;
        if (hp->word_max > 0) {
            for (uint32_t k = hp->word_min; k <= hp->word_max && k <= have; k++) {
                // Combine the k newest token hashes, order-sensitively.
                uint64_t h = word_base ^ (uint64_t)k;
                for (uint32_t j = GF_CLF_MAX_WORD_N - k; j < GF_CLF_MAX_WORD_N; j++)
                    h = mix64(h ^ hist[j]);
                fn(ud, to_bucket(h, hp->buckets));
                count++;
            }
        }
        if (hp->char_max > 0 && word)
            count += char_ngrams(hp, char_base, tok, len, fn, ud);
    }
    return count;
}
