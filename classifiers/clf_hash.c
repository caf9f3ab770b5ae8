/* clf_hash.c — the features of the trained classifiers: hashed word n-grams and character
 * n-grams of normalized text, fastText style, handed to a callback in chunks without
 * allocating. Feature version 2 (GF_CLF_FEATURE_VERSION): numbers also give shape features, and
 * hashing reads 8 bytes at a time (a character n-gram is one masked load and one multiply).
 * Invariant: the same text, parameters and seed always give the same buckets in the same order,
 * on every platform (fixed-width arithmetic, bytes read little-endian), because the model file
 * depends on it. */
#include "classifiers/clf_int.h"
#include "classifiers/runs_int.h"

#include <string.h>

// Kinds keep the hash spaces of different feature types apart.
enum { KIND_WORD = 1, KIND_CHAR = 2, KIND_SHAPE = 3 };

// Features are collected here and handed to the callback in chunks; a token's features are
// never split across chunks, so a chunk holds up to MAX_TOKEN_FEATS more than the flush mark.
#define CHUNK 1024
#define MAX_TOKEN_FEATS \
    (GF_CLF_MAX_WORD_N + 2 + GF_CLF_MAX_CHAR_N * (GF_CLF_MAX_CHAR_TOK + 2))

/* The first n < 8 bytes at p as a little-endian number, reading nothing past p + n. */
static inline uint64_t load_le_partial(const unsigned char *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* A token's hash: 8-byte chunks folded by multiply and rotate, then mixed with the length. */
static uint64_t hash_token(uint64_t base, const unsigned char *p, size_t n, size_t avail)
{
    uint64_t h = base;
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        h = ((h ^ gf_clf_load_le64(p + i)) * 0x9e3779b97f4a7c15ULL) ^ (h >> 29);
    if (i < n) {
        // The tail: one load when 8 bytes are readable, masked to the token's bytes.
        uint64_t t = avail - i >= 8 ? gf_clf_load_le64(p + i) & ((1ULL << (8 * (n - i))) - 1)
                                    : load_le_partial(p + i, n - i);
        h = ((h ^ t) * 0x9e3779b97f4a7c15ULL) ^ (h >> 29);
    }
    return gf_clf_mix64(h ^ (uint64_t)n);
}

static inline uint32_t to_bucket(uint64_t h, uint32_t buckets)
{
    // Multiply-shift maps the top 32 bits onto [0, buckets) without a division.
    return (uint32_t)(((h >> 32) * (uint64_t)buckets) >> 32);
}

// Byte classes: space, word byte (letters, digits, '_', every non-ASCII byte), digit (also a
// word byte), anything else is a token of one byte.
enum { C_OTHER = 0, C_SPACE = 1, C_WORD = 2, C_DIGIT = 4 };

static const uint8_t *byte_class(void)
{
    static const uint8_t table[256] = {
        ['\t'] = C_SPACE, ['\n'] = C_SPACE, ['\v'] = C_SPACE, ['\f'] = C_SPACE,
        ['\r'] = C_SPACE, [' '] = C_SPACE, ['_'] = C_WORD,
        ['0' ... '9'] = C_WORD | C_DIGIT, ['a' ... 'z'] = C_WORD, ['A' ... 'Z'] = C_WORD,
        [0x80 ... 0xff] = C_WORD,
    };
    return table;
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

/* Shape class of a run of n digits: lengths that mean the same kind of number (a count, a
 * year, an amount, a phone number) share a class, so "call 08001234567" and "call 09061701461"
 * share the shape features. */
static uint64_t digit_shape(size_t n)
{
    static const uint8_t cls[] = {0, 1, 2, 3, 4, 5, 6, 6, 7, 7, 8, 8, 9};
    return n < sizeof(cls) ? cls[n] : 10;
}

struct hasher {
    const struct gf_clf_hasher *h;
    uint32_t out[CHUNK];
    size_t n_out;
};

void gf_clf_hasher_init(struct gf_clf_hasher *h, const struct gf_clf_hash_params *hp)
{
    const uint64_t seed = gf_clf_mix64(0x6766636c66ULL ^ (uint64_t)hp->seed); // "gfclf"
    h->hp = hp;
    h->shift = 0;
    if (hp->buckets >= 2 && (hp->buckets & (hp->buckets - 1)) == 0)
        h->shift = 64 - (uint32_t)__builtin_ctz(hp->buckets);
    h->word_base = gf_clf_mix64(seed ^ KIND_WORD) | 1;
    h->shape_base = gf_clf_mix64(seed ^ KIND_SHAPE);
    for (uint32_t k = 0; k <= GF_CLF_MAX_CHAR_N; k++) {
        h->mult[k] = gf_clf_mix64(seed ^ ((uint64_t)KIND_CHAR << 8) ^ k) | 1;
        h->mask[k] = k >= 8 ? ~0ULL : (1ULL << (8 * k)) - 1;
    }
}

/* Emits the character n-grams of orders kmin .. kmin + K - 1 of one token framed as "<token>"
 * (its first GF_CLF_MAX_CHAR_TOK bytes, copied into a zero-padded frame). An n-gram of k <= 8
 * bytes is the low k bytes of the 8 framed bytes from its start, hashed by multiplying with an
 * odd number of its order and keeping the top bits (multiply-shift hashing). Every order is
 * computed at every position and kept only where it fits, so the inner loop has a fixed trip
 * count (K and pow2 are constants in each caller). */
static inline __attribute__((always_inline)) size_t char_ngrams_k(const struct gf_clf_hasher *st,
                                                                  const unsigned char *tok,
                                                                  size_t n, uint32_t kmin,
                                                                  uint32_t K, bool pow2,
                                                                  uint32_t *out)
{
    if (n > GF_CLF_MAX_CHAR_TOK)
        n = GF_CLF_MAX_CHAR_TOK;
    const size_t len = n + 2;
    const uint32_t buckets = st->hp->buckets;
    uint64_t mask[GF_CLF_MAX_CHAR_N], mult[GF_CLF_MAX_CHAR_N];
    for (uint32_t k = 0; k < K; k++) {
        mask[k] = st->mask[kmin + k];
        mult[k] = st->mult[kmin + k];
    }
    unsigned char framed[GF_CLF_MAX_CHAR_TOK + 2 + 8];
    framed[0] = '<';
    memcpy(framed + 1, tok, n);
    framed[n + 1] = '>';
    memset(framed + n + 2, 0, 8);
    size_t c = 0;
    for (size_t i = 0; i + kmin <= len; i++) {
        const uint64_t x = gf_clf_load_le64(framed + i);
        for (uint32_t k = 0; k < K; k++) {
            const uint64_t h = (x & mask[k]) * mult[k];
            // With 2^b buckets, to_bucket is the top b bits: one shift instead of a multiply.
            out[c] = pow2 ? (uint32_t)(h >> st->shift) : to_bucket(h, buckets);
            c += i + kmin + k <= len;
        }
    }
    return c;
}

static inline __attribute__((always_inline)) size_t char_ngrams(const struct gf_clf_hasher *st,
                                                                const unsigned char *tok,
                                                                size_t n, uint32_t *out)
{
    const uint32_t kmin = st->hp->char_min, K = st->hp->char_max - kmin + 1;
    if (st->shift > 0 && K == 3)  // the recipe's case: 3..5-grams into 2^b buckets
        return char_ngrams_k(st, tok, n, kmin, 3, true, out);
    if (K == 3)
        return char_ngrams_k(st, tok, n, kmin, 3, false, out);
    if (K == 2)
        return char_ngrams_k(st, tok, n, kmin, 2, false, out);
    if (K == 1)
        return char_ngrams_k(st, tok, n, kmin, 1, false, out);
    return char_ngrams_k(st, tok, n, kmin, K, false, out);
}

size_t gf_clf_char_features(const struct gf_clf_hasher *h, const unsigned char *tok, size_t n,
                            uint32_t *out)
{
    return char_ngrams(h, tok, n, out);
}

uint64_t gf_clf_token_hash(const struct gf_clf_hasher *h, const unsigned char *tok, size_t n,
                           size_t avail)
{
    return hash_token(h->word_base, tok, n, avail);
}

uint32_t gf_clf_unigram(const struct gf_clf_hasher *h, uint64_t th)
{
    // The word n-gram of order 1 of the loop below: the newest token hash alone.
    return to_bucket(gf_clf_mix64((h->word_base ^ 1) ^ th), h->hp->buckets);
}

size_t gf_clf_features(const struct gf_clf_hash_params *hp, const char *s, size_t n,
                       gf_clf_feature_fn fn, void *ud)
{
    struct gf_clf_feat_state fs = {{0}, 0};
    return gf_clf_features_from(hp, &fs, s, n, fn, ud);
}

size_t gf_clf_features_from(const struct gf_clf_hash_params *hp, struct gf_clf_feat_state *fs,
                            const char *s, size_t n, gf_clf_feature_fn fn, void *ud)
{
    return gf_clf_features_tok(hp, fs, s, n, fn, NULL, ud);
}

/* The tables whose rows a scoring bag will read, for asking for them early. */
struct rows {
    const int8_t *q, *hq;  // NULL q: not scoring; NULL hq: no head
    size_t dim, hdim;
};

/* Asks for the embedding rows of bucket bk of the bag's model and head. */
static inline void ask_rows(const struct rows *r, uint32_t bk)
{
    const char *row = (const char *)(r->q + bk * r->dim);
    __builtin_prefetch(row);
    __builtin_prefetch(row + r->dim - 1);
    if (r->hq != NULL)
        __builtin_prefetch(r->hq + bk * r->hdim);
}

size_t gf_clf_features_tok(const struct gf_clf_hash_params *hp, struct gf_clf_feat_state *fs,
                           const char *s, size_t n, gf_clf_feature_fn fn, gf_clf_token_fn tfn,
                           void *ud)
{
    const unsigned char *p = (const unsigned char *)s;
    const uint8_t *cls = byte_class();
    struct gf_clf_hasher h;
    gf_clf_hasher_init(&h, hp);
    struct hasher st;
    st.h = &h;
    st.n_out = 0;
    const bool uni = hp->word_max > 0 && hp->word_min == 1;  // every token has its unigram
    // Hashes of the last GF_CLF_MAX_WORD_N tokens, newest last, for word n-grams.
    uint64_t hist[GF_CLF_MAX_WORD_N];
    memcpy(hist, fs->hist, sizeof(hist));
    uint32_t have = fs->have;
    size_t count = 0, i = 0;
    // The word n-gram orders the loop below emits (0 = none).
    const uint32_t kmin = hp->word_min + (tfn != NULL && uni), kmax = hp->word_max;
    const bool bigrams_only = kmin == 2 && kmax == 2;
    // Scoring (the token callback is the bag's): the rows of each word n-gram are asked for as
    // soon as its bucket is known. The bag adds them with the rest of the chunk, by when they
    // have come; they are random reads in megabytes, and almost every n-gram of real text is
    // new to the caches (classifier alone on real 1 KB texts: 1.5-7% faster). Not while the
    // token cache finds almost every word (fewer than one lookup in 32 misses): such text
    // repeats a small vocabulary, its n-grams' rows are in the caches, and asking for them
    // only costs instructions (3% of the classifier's time on the generated texts of
    // bench_filters).
    struct rows pf = {NULL, NULL, 0, 0};
    if (tfn == gf_clf_bag_token) {
        const struct gf_clf_bag *bag = ud;
        const struct gf_clf_tokcache *tc = bag->tc;
        if (tc == NULL || tc->looks < 64 || 32 * tc->misses >= tc->looks)
            pf = (struct rows){bag->q, bag->hq, bag->dim, bag->hdim};
    }

    while (i < n) {
        uint8_t c = cls[p[i]];
        if (c & C_SPACE) {
            i++;
            continue;
        }
        size_t start = i;
        bool word = (c & C_WORD) != 0, digits = (c & C_DIGIT) != 0;
        i++;
        if (word && digits) {  // a number, or a word that starts with a digit
            while (i < n && ((c = cls[p[i]]) & C_WORD)) {
                digits &= (c & C_DIGIT) != 0;
                i++;
            }
        } else if (word) {
            i = gf_runs_token_end(p, i, n);  // the C_WORD bytes, eight at a time
        }
        const unsigned char *tok = p + start;
        size_t len = i - start;
        if (st.n_out + MAX_TOKEN_FEATS > CHUNK) {
            fn(ud, st.out, st.n_out);
            count += st.n_out;
            st.n_out = 0;
        }

        uint64_t th;
        if (tfn != NULL)
            count += tfn(ud, &h, tok, len, n - start, word && hp->char_max > 0, uni, &th);
        else
            th = hash_token(h.word_base, tok, len, n - start);
        if (digits && hp->word_max > 0) {
            // A number also gives its shape (length class) alone and after the previous
            // token, so that "call 08001234567" is like "call 09061701461".
            uint64_t sh = gf_clf_mix64(h.shape_base ^ digit_shape(len));
            st.out[st.n_out++] = to_bucket(sh, hp->buckets);
            if (have > 0)
                st.out[st.n_out++] =
                    to_bucket(gf_clf_mix64(sh ^ hist[GF_CLF_MAX_WORD_N - 1]), hp->buckets);
        }
        // The history moves by one (a fixed count of moves: a memmove call cost more than
        // the word n-grams themselves).
        for (size_t j = 0; j + 1 < GF_CLF_MAX_WORD_N; j++)
            hist[j] = hist[j + 1];
        hist[GF_CLF_MAX_WORD_N - 1] = th;
        if (have < GF_CLF_MAX_WORD_N)
            have++;
        if (bigrams_only) {
            // The recipe's case (unigrams from tfn, bigrams here): the loop below unrolled.
            if (have >= 2) {
                uint64_t wh = gf_clf_mix64((h.word_base ^ 2) ^ hist[GF_CLF_MAX_WORD_N - 2]);
                wh = gf_clf_mix64(wh ^ hist[GF_CLF_MAX_WORD_N - 1]);
                st.out[st.n_out] = to_bucket(wh, hp->buckets);
                if (pf.q != NULL)
                    ask_rows(&pf, st.out[st.n_out]);
                st.n_out++;
            }
        } else if (kmax > 0) {
            // The unigram came with the token from tfn.
            for (uint32_t k = kmin, kend = kmax < have ? kmax : have; k <= kend; k++) {
                // Combine the k newest token hashes, order-sensitively.
                uint64_t wh = h.word_base ^ (uint64_t)k;
                for (uint32_t j = GF_CLF_MAX_WORD_N - k; j < GF_CLF_MAX_WORD_N; j++)
                    wh = gf_clf_mix64(wh ^ hist[j]);
                st.out[st.n_out] = to_bucket(wh, hp->buckets);
                if (pf.q != NULL)
                    ask_rows(&pf, st.out[st.n_out]);
                st.n_out++;
            }
        }
        if (hp->char_max > 0 && word && tfn == NULL)
            st.n_out += char_ngrams(&h, tok, len, st.out + st.n_out);
    }
    if (st.n_out > 0)
        fn(ud, st.out, st.n_out);
    memcpy(fs->hist, hist, sizeof(hist));
    fs->have = have;
    return count + st.n_out;
}
