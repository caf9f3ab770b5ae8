/* clf_tokcache.c — the token cache of scoring: the sum of the embedding rows of a short word
 * token's character n-grams, kept per token so that a word seen before costs one lookup and
 * one add instead of hashing and adding its few dozen rows (clf_int.h says why it pays).
 * A head with distinct features counts a bucket only where the text shows it first: an entry
 * keeps its word's buckets and the sum of all their head rows, and a word new to the text
 * takes out again the rows of those the text has shown (a word already marked in the text
 * adds none); a word with more buckets than an entry keeps is hashed again instead.
 * A view of the model without its head (gf_clf_model_without_head) shares the cache: an entry
 * it fills has zero head lanes and says so, and is no hit for the whole model.
 * Invariant: an entry holds exactly the integer sum the rows of its token's n-grams give under
 * the model the cache names (and its head's, when the entry says so), so a bag built from
 * entries equals one built from the rows. */
#include "classifiers/clf_int.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

// The most features of an entry: every character n-gram of a token of GF_CLF_TOK_LEN bytes,
// and its unigram; the largest sum has all of them at |q| = 128.
#define MAX_FEATS (GF_CLF_MAX_CHAR_N * (GF_CLF_TOK_LEN + 2) + 1)
_Static_assert(MAX_FEATS * 128 <= INT16_MAX, "a token's sum must fit in int16");
_Static_assert(MAX_FEATS <= UINT8_MAX, "a token's feature count must fit in uint8");
// Entry sums add up in int16 while the sum of their magnitudes stays within INT16_MAX (words
// weigh a few hundred, so dozens of tokens per fold), then fold into the int32 tsum, which
// folds into the int64 sum after FOLD folds of at most INT16_MAX each.
#define FOLD 4096
_Static_assert((int64_t)FOLD * INT16_MAX <= INT32_MAX, "tsum must not overflow");

/* The first k <= 8 bytes at p as a little-endian number (zero above), reading nothing past
 * p + avail. */
static inline uint64_t load_upto(const unsigned char *p, size_t k, size_t avail)
{
    uint64_t v = 0;
    if (avail >= 8) {
        memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        v = __builtin_bswap64(v);
#endif
        return k >= 8 ? v : v & ((1ULL << (8 * k)) - 1);
    }
    for (size_t i = 0; i < k; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

static void fold16(struct gf_clf_bag *b)
{
    for (size_t d = 0; d < GF_CLF_TOK_DIM; d++)
        b->tsum[d] += b->t16[d];
    memset(b->t16, 0, sizeof(b->t16));
    b->bound = 0;
    b->folds++;
}

void gf_clf_bag_finish(struct gf_clf_bag *b)
{
    if (b->n_pend > 0) {
        gf_clf_bag_add(b, b->pend, b->n_pend);
        b->n_pend = 0;
    }
    if (b->h8n > 0)
        gf_clf_bag_flush_h8(b);
    if (b->bound > 0)
        fold16(b);
    if (b->folds == 0)
        return;
    for (uint32_t d = 0; d < b->dim + b->hdim; d++)
        b->acc[d] += b->tsum[d];
    memset(b->tsum, 0, sizeof(b->tsum));
    b->folds = 0;
}

// The buckets of a token's own features (character n-grams, unigram); returns their number.
static size_t token_feats(const struct gf_clf_hasher *h, const unsigned char *tok, size_t n,
                          bool chars, bool uni, uint64_t th, uint32_t *buckets)
{
    size_t c = chars ? gf_clf_char_features(h, tok, n, buckets) : 0;
    if (uni)
        buckets[c++] = gf_clf_unigram(h, th);
    return c;
}

// Adds a token's own features to the bag's batch (to the kernels once it is full).
static size_t batch(struct gf_clf_bag *b, const struct gf_clf_hasher *h, const unsigned char *tok,
                    size_t n, size_t avail, bool chars, bool uni, uint64_t *th)
{
    _Static_assert(GF_CLF_PEND_MAX >= GF_CLF_MAX_TOKEN_CHAR_FEATS + 1, "a token fits a batch");
    if (b->n_pend + GF_CLF_MAX_TOKEN_CHAR_FEATS + 1 > GF_CLF_PEND_MAX) {
        gf_clf_bag_add(b, b->pend, b->n_pend);
        b->n_pend = 0;
    }
    *th = gf_clf_token_hash(h, tok, n, avail);
    size_t c = token_feats(h, tok, n, chars, uni, *th, b->pend + b->n_pend);
    b->n_pend += c;
    return c;
}

// True when the entry's sum holds the rows of a head with distinct features too: every one of
// its buckets', which the entry keeps, so that the word's first occurrence in a text needs
// only the rows of its buckets the text has shown already (head_summed_in).
static inline bool head_summed(const struct gf_clf_bag *b, const struct gf_clf_tok_entry *e)
{
    return b->hdistinct && e->n <= GF_CLF_TOK_BK;
}

/* For a word whose entry holds the sum of its head rows (those of every one of its n buckets,
 * which the caller adds to t16 with the entry): marks the buckets seen and counts the first
 * occurrences as gf_clf_bag_add_head_distinct does, and subtracts from the head's lanes of t16
 * the rows of the others (seen earlier in the text or in buckets), so that the entry's sum
 * minus them is the sum of the first occurrences' rows. The caller leaves room in the int16
 * lanes for 128 per bucket; returns how many rows were subtracted. With base (a stream's
 * earlier text) or without, a constant in each caller. */
static inline __attribute__((always_inline)) size_t
head_summed_in(struct gf_clf_bag *b, const uint64_t *base, const uint32_t *buckets, size_t n)
{
    struct gf_clf_seen *sn = b->seen;
    bool logged = sn->log != NULL && GF_CLF_SEEN_LOG - sn->n_log >= n;
    uint32_t *fresh = logged ? sn->log + sn->n_log : b->fresh;
    uint32_t dup[GF_CLF_TOK_BK];
    uint64_t *bits = sn->bits;
    size_t k = 0;
    // Branch-free (whether a bucket is new is as good as random): the first occurrences into
    // fresh, the others into dup, in order.
    for (size_t i = 0; i < n; i++) {
        const uint32_t bk = buckets[i];
        const uint64_t old = bits[bk >> 6], bit = 1ULL << (bk & 63);
        const uint64_t known = base != NULL ? old | base[bk >> 6] : old;
        const size_t is_new = (known & bit) == 0;
        fresh[k] = bk;
        dup[i - k] = bk;
        k += is_new;
        bits[bk >> 6] = base != NULL ? old | (bit & ~known) : old | bit;
    }
    if (logged)
        sn->n_log += k;
    else
        sn->full = true;
    b->n_distinct += k;
    // The rows of the buckets that were not new (about one in seven on real text) come out of
    // the entry's sum again; the others' head rows, random reads in the head's table, are
    // never read.
    const size_t nd = n - k;
    int16_t *hl = b->t16 + b->dim;
#if defined(__SSE2__)
    if (b->hdim == 8) {
        __m128i acc = _mm_loadu_si128((const __m128i *)(void *)hl);
        for (size_t j = 0; j < nd; j++) {
            __m128i row =
                _mm_loadl_epi64((const __m128i *)(const void *)(b->hq + (size_t)dup[j] * 8));
            // int8 to int16: each byte into the high half of its lane, then shifted down.
            acc = _mm_sub_epi16(acc, _mm_srai_epi16(_mm_unpacklo_epi8(row, row), 8));
        }
        _mm_storeu_si128((__m128i *)(void *)hl, acc);
        return nd;
    }
#endif
    for (size_t j = 0; j < nd; j++) {
        const int8_t *row = b->hq + (size_t)dup[j] * b->hdim;
        for (uint32_t d = 0; d < b->hdim; d++)
            hl[d] = (int16_t)(hl[d] - row[d]);
    }
    return nd;
}

// Computes the entry of a token that missed from its c buckets and its hash th. The rows of a
// head with distinct features are in it only when the entry keeps the buckets (head_summed).
static void fill(const struct gf_clf_bag *b, const uint32_t *buckets, size_t c, size_t n,
                 uint64_t th, uint64_t k0, uint64_t k1, struct gf_clf_tok_entry *e)
{
    int32_t sum[GF_CLF_TOK_DIM] = {0};
    b->kernel(b->q, b->dim, buckets, c, sum);
    if (b->hq != NULL && (!b->hdistinct || c <= GF_CLF_TOK_BK)) {
#if defined(__SSE2__)
        if (b->hdim == 8 && c <= MAX_FEATS) {
            // A word's few head rows of 8 bytes in the int16 lanes of one register (at most
            // MAX_FEATS rows of |q| <= 128, which the int16 sum of the entry holds anyway): a
            // kernel call's setup cost more than the rows.
            __m128i acc = _mm_setzero_si128();
            for (size_t i = 0; i < c; i++) {
                const int8_t *r = b->hq + (size_t)buckets[i] * 8;
                __m128i row = _mm_loadl_epi64((const __m128i *)(const void *)r);
                acc = _mm_add_epi16(acc, _mm_srai_epi16(_mm_unpacklo_epi8(row, row), 8));
            }
            int16_t h16[8];
            _mm_storeu_si128((__m128i *)(void *)h16, acc);
            for (size_t d = 0; d < 8; d++)
                sum[b->dim + d] = h16[d];
        } else
#endif
            b->kernel(b->hq, b->hdim, buckets, c, sum + b->dim);
    }
    // The largest and smallest int16 lane, in loops the compiler vectorizes with the baseline
    // SSE2 (pmaxsw, pminsw): the maximum of absolute values in int32 with a nested conditional
    // stayed scalar, ~770 instructions for every word that missed, 9% of all instructions on
    // real text, where about a quarter of the words miss. The lanes hold the sums exactly.
    for (size_t d = 0; d < GF_CLF_TOK_DIM; d++)
        e->sum[d] = (int16_t)sum[d];
    int16_t hi = 0, lo = 0;
    for (size_t d = 0; d < GF_CLF_TOK_DIM; d++) {
        hi = e->sum[d] > hi ? e->sum[d] : hi;
        lo = e->sum[d] < lo ? e->sum[d] : lo;
    }
    e->mag = (uint16_t)(hi > -lo ? hi : -lo);
    e->key[0] = k0;
    e->key[1] = k1;
    e->th = th;
    e->len = (uint8_t)n;
    e->n = (uint8_t)c;
    e->head = b->hq != NULL;
}

// t16[0..n) += sum[0..n); n is a constant at each call, so each loop is unrolled and vectorized
// (restrict: the bag's lanes and the cache's never overlap, which spares a test of it).
static inline __attribute__((always_inline)) void add_lanes(int16_t *restrict t16,
                                                            const int16_t *restrict sum, size_t n)
{
    for (size_t d = 0; d < n; d++)
        t16[d] = (int16_t)(t16[d] + sum[d]);
}

// Adds an entry's sums to the bag's int16 lanes (the bound keeps every lane exact). Fixed trip
// counts vectorize without a tail: the shipped model's width with its head (56 lanes) and
// without (48, a view), else the whole entry (zero past the bag).
static inline __attribute__((always_inline)) void add_entry(struct gf_clf_bag *b,
                                                            const struct gf_clf_tok_entry *e)
{
    const uint32_t width = b->dim + b->hdim;
    if (width == 48)
        add_lanes(b->t16, e->sum, 48);
    else if (width == 56)
        add_lanes(b->t16, e->sum, 56);
    else
        add_lanes(b->t16, e->sum, GF_CLF_TOK_DIM);
}

// The first way of the set of the token tok[0..n) (n <= GF_CLF_TOK_LEN) and its key. Two ways
// per set: with one, two frequent words that share a slot (a few in any hundred words) would
// evict each other at every occurrence. A miss moves the first way (and its mark) to the
// second and fills the first, so the second holds the older of the two.
static inline size_t slot_of(const unsigned char *tok, size_t n, size_t avail, uint64_t *k0,
                             uint64_t *k1)
{
    *k0 = load_upto(tok, n < 8 ? n : 8, avail);
    *k1 = n > 8 ? load_upto(tok + 8, n - 8, avail - 8) : 0;
    uint64_t x = (*k0 * 0x9e3779b97f4a7c15ULL) ^ (*k1 * 0xc2b2ae3d27d4eb4fULL) ^ n;
    x = (x ^ (x >> 29)) * 0xbf58476d1ce4e5b9ULL;
    _Static_assert(GF_CLF_TOK_SLOTS == 2 << GF_CLF_TOK_SET_BITS, "a set per top-bits value");
    return 2 * (x >> (64 - GF_CLF_TOK_SET_BITS));
}

// The miss path, apart so that the hit path keeps a small frame: hashes the token, fills the
// first way of its set (the old entry moves to the second) and, when the entry cannot keep
// them, adds the token's new buckets to a head with distinct features (head true).
static __attribute__((noinline)) void miss(struct gf_clf_bag *b, const struct gf_clf_hasher *h,
                                           const unsigned char *tok, size_t n, size_t avail,
                                           bool chars, bool uni, uint64_t k0, uint64_t k1,
                                           size_t slot, bool head)
{
    struct gf_clf_tokcache *tc = b->tc;
    struct gf_clf_tok_entry *e = &tc->e[slot];
    uint32_t buckets[MAX_FEATS];
    uint64_t hash = gf_clf_token_hash(h, tok, n, avail);
    size_t c = token_feats(h, tok, n, chars, uni, hash, buckets);
    // The rows of a word seen for the first time are random reads in megabytes: ask for all of
    // them at once, so that their latencies overlap (the kernels prefetch only far ahead
    // within a call, and a word's call has a few dozen rows).
    for (size_t i = 0; i < c; i++) {
        const char *r = (const char *)(b->q + (size_t)buckets[i] * b->dim);
        __builtin_prefetch(r);
        __builtin_prefetch(r + b->dim - 1);
        if (b->hq != NULL)
            __builtin_prefetch(b->hq + (size_t)buckets[i] * b->hdim);
    }
    e[1] = e[0];
    tc->marked[slot + 1] = tc->marked[slot];
    tc->marked[slot] = 0;  // the new token has marked nothing yet
    // Kept buckets move with their entry, also when a view without the head moves it.
    if (e[1].head && e[1].n <= GF_CLF_TOK_BK)
        memcpy(tc->bk[slot + 1], tc->bk[slot], e[1].n * sizeof(uint32_t));
    if (b->hdistinct && c <= GF_CLF_TOK_BK)
        memcpy(tc->bk[slot], buckets, c * sizeof(uint32_t));
    fill(b, buckets, c, n, hash, k0, k1, e);
    if (head && !head_summed(b, e))
        gf_clf_bag_add_head_distinct(b, buckets, c);
}

// A known token's buckets hashed again for the head (more than the entry keeps).
static __attribute__((noinline)) void rehash_head(struct gf_clf_bag *b,
                                                  const struct gf_clf_hasher *h,
                                                  const unsigned char *tok, size_t n, bool chars,
                                                  bool uni, uint64_t th)
{
    uint32_t buckets[MAX_FEATS];
    size_t c = token_feats(h, tok, n, chars, uni, th, buckets);
    gf_clf_bag_add_head_distinct(b, buckets, c);
}

/* Text whose words mostly miss (new vocabulary, random strings, a stream of new names) would
 * pay for a lookup in a table beyond L1 and the filling of an entry per word, each with its own
 * small kernel calls whose rows come one by one from far away. While more than half of the
 * recent lookups miss, seven words in eight go to the batch without a lookup; the eighth is
 * looked up (and kept on a miss), so that words that do come back get in and the hit rate is
 * still measured. True when this token goes to the batch. */
static inline bool skip_lookup(struct gf_clf_tokcache *tc)
{
    bool cold = tc->looks >= 64 && 2 * tc->misses > tc->looks;
    return cold && (++tc->skips & 7) != 0;
}

// True when entry e holds the token keyed n, k0, k1. chars and uni depend on the token's bytes
// and the model only, so the key needs no more; a bag with a head also needs the head's lanes,
// which a view without it leaves out.
static inline __attribute__((always_inline)) bool holds(const struct gf_clf_tok_entry *e,
                                                         uint64_t k0, uint64_t k1, size_t n,
                                                         bool need_head)
{
    return e->len == n && e->key[0] == k0 && e->key[1] == k1 && e->head >= need_head;
}

// The entry of the set whose first way is tc->e[*slot] that holds the token, with *slot moved
// to it; NULL when neither does.
static inline __attribute__((always_inline)) struct gf_clf_tok_entry *
find(struct gf_clf_tokcache *tc, size_t *slot, uint64_t k0, uint64_t k1, size_t n,
     bool need_head)
{
    struct gf_clf_tok_entry *e = &tc->e[*slot];
    if (holds(e, k0, k1, n, need_head))
        return e;
    if (!holds(e + 1, k0, k1, n, need_head))
        return NULL;
    ++*slot;
    return e + 1;
}

// Folds the int16 lanes when adding need more to their bound could overflow one.
static inline __attribute__((always_inline)) void make_room(struct gf_clf_bag *b, uint32_t need)
{
    if (b->bound + need > INT16_MAX) {
        fold16(b);
        if (b->folds == FOLD)
            gf_clf_bag_finish(b);
    }
}

// Counts a lookup and whether it missed (both halved every 4096 lookups).
static inline void count_lookup(struct gf_clf_tokcache *tc, bool hit)
{
    if (++tc->looks == 4096) {
        tc->looks /= 2;
        tc->misses /= 2;
    }
    tc->misses += !hit;
}

/* gf_clf_bag_token for a bag without a head with distinct features (a model without a head, a
 * head that adds every occurrence, a view without the head): none of the marks, kept buckets
 * and tests of first occurrences, and a small frame (a token's work is a few dozen
 * instructions, of which the general path's frame and tests were a fifth). */
static __attribute__((noinline)) size_t token_plain(struct gf_clf_bag *b,
                                                    const struct gf_clf_hasher *h,
                                                    const unsigned char *tok, size_t n,
                                                    size_t avail, bool chars, bool uni,
                                                    uint64_t *th)
{
    struct gf_clf_tokcache *tc = b->tc;
    if (tc == NULL || n > GF_CLF_TOK_LEN || skip_lookup(tc))
        return batch(b, h, tok, n, avail, chars, uni, th);
    uint64_t k0, k1;
    size_t slot = slot_of(tok, n, avail, &k0, &k1);
    struct gf_clf_tok_entry *e = find(tc, &slot, k0, k1, n, b->hq != NULL);
    const bool hit = e != NULL;
    if (!hit)
        e = &tc->e[slot];
    count_lookup(tc, hit);
    if (!hit)
        miss(b, h, tok, n, avail, chars, uni, k0, k1, slot, false);
    make_room(b, e->mag);
    b->bound += e->mag;
    add_entry(b, e);
    *th = e->th;
    return e->n;
}

// gf_clf_bag_token for a bag with a head with distinct features.
static __attribute__((noinline)) size_t token_distinct(struct gf_clf_bag *b,
                                                       const struct gf_clf_hasher *h,
                                                       const unsigned char *tok, size_t n,
                                                       size_t avail, bool chars, bool uni,
                                                       uint64_t *th)
{
    struct gf_clf_tokcache *tc = b->tc;
    if (tc == NULL || n > GF_CLF_TOK_LEN || skip_lookup(tc))
        return batch(b, h, tok, n, avail, chars, uni, th);
    uint64_t k0, k1;
    size_t slot = slot_of(tok, n, avail, &k0, &k1);
    // The kept buckets lie apart from the entry; asked for now, their fetch overlaps the
    // entry's instead of following it (classifier alone: 1-3% faster on real text).
    __builtin_prefetch(tc->bk[slot]);
    struct gf_clf_tok_entry *e = find(tc, &slot, k0, k1, n, b->hq != NULL);
    const bool hit = e != NULL;
    if (!hit)
        e = &tc->e[slot];
    count_lookup(tc, hit);
    // A head with distinct features needs the token's buckets even when the model's sum is
    // known (which of them the text has not shown yet), unless the token has already marked
    // them in this bag: then none is new.
    bool head = b->hdistinct && !(hit && tc->marked[slot] == b->number);
    if (!hit)
        miss(b, h, tok, n, avail, chars, uni, k0, k1, slot, head);
    else if (head && !head_summed(b, e))  // too many buckets to keep: hashed again
        rehash_head(b, h, tok, n, chars, uni, e->th);
    if (head)
        tc->marked[slot] = b->number;
    // Room in the int16 lanes for the entry's sum and, for a word new to the text whose entry
    // holds its head rows, for the rows that come out again (at most 128 each).
    const bool summed = head_summed(b, e);
    uint32_t out = head && summed ? 128u * e->n : 0;
    make_room(b, e->mag + out);
    if (head && summed)  // a word the text has not shown: its buckets tested against the text's
        out = 128u * (uint32_t)(b->base == NULL ? head_summed_in(b, NULL, tc->bk[slot], e->n)
                                                : head_summed_in(b, b->base, tc->bk[slot], e->n));
    b->bound += e->mag + out;
    add_entry(b, e);
    // A word the text has shown already: its head rows count once, and did.
    if (summed && !head) {
        int16_t *hl = b->t16 + b->dim;
        const int16_t *hs = e->sum + b->dim;
#if defined(__SSE2__)
        if (b->hdim == 8)
            _mm_storeu_si128((__m128i *)(void *)hl,
                             _mm_sub_epi16(_mm_loadu_si128((const __m128i *)(const void *)hl),
                                           _mm_loadu_si128((const __m128i *)(const void *)hs)));
        else
#endif
            for (uint32_t d = 0; d < b->hdim; d++)
                hl[d] = (int16_t)(hl[d] - hs[d]);
    }
    *th = e->th;
    return e->n;
}

size_t gf_clf_bag_token(void *ud, const struct gf_clf_hasher *h, const unsigned char *tok,
                        size_t n, size_t avail, bool chars, bool uni, uint64_t *th)
{
    struct gf_clf_bag *b = ud;
    return b->hdistinct ? token_distinct(b, h, tok, n, avail, chars, uni, th)
                        : token_plain(b, h, tok, n, avail, chars, uni, th);
}
