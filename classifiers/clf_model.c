/* clf_model.c — the trained classifier at inference: building, sharing (refcount) and scoring.
 * Scoring a text is: features (each bucket once for a model with distinct features) -> integer
 * sum of their int8 embedding rows (clf_bag.c) -> pooled (over their count or its square root),
 * scaled per dimension -> optional ReLU hidden layer -> one logit per category -> sigmoid ->
 * calibration table. Invariant: scoring reads the model only and writes only the caller's
 * scratch, so it is thread-safe and allocation-free. */
#include "classifiers/clf_int.h"

#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <string.h>

#include "engine/gguf.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#ifndef GF_SOURCE_ROOT
#define GF_SOURCE_ROOT "."
#endif

const char *gf_clf_default_model_path(void)
{
    return GF_SOURCE_ROOT "/models/moderation.gguf";
}

static size_t align_up(size_t n)
{
    return (n + 63) & ~(size_t)63;
}

int gf_clf_model_alloc(uint32_t n_cat, const char *const *names,
                       const struct gf_clf_hash_params *hp, uint32_t dim, uint32_t hidden,
                       struct gf_clf_model **out)
{
    *out = NULL;
    if (n_cat == 0 || n_cat > GF_CLF_MAX_CATEGORIES || dim == 0 || dim > GF_CLF_MAX_DIM ||
        hidden > GF_CLF_MAX_HIDDEN || hp->buckets == 0)
        return GF_EINVAL;
    uint32_t in = hidden ? hidden : dim;
    size_t sz_q = align_up((size_t)hp->buckets * dim);
    size_t sz_s = align_up((size_t)dim * sizeof(float));
    size_t sz_w1 = align_up((size_t)hidden * dim * sizeof(float));
    size_t sz_b1 = align_up((size_t)hidden * sizeof(float));
    size_t sz_w2 = align_up((size_t)n_cat * in * sizeof(float));
    size_t sz_b2 = align_up((size_t)n_cat * sizeof(float));

    struct gf_clf_model *m = gf_calloc(1, sizeof(*m));
    if (m == NULL)
        return GF_ENOMEM;
    atomic_init(&m->refs, 1);
    m->id = gf_clf_model_new_id();
    m->n_cat = n_cat;
    m->hash = *hp;
    m->dim = dim;
    m->hidden = hidden;
    m->bag_dim = dim;
    m->max_hidden = hidden;
    m->norm_version = GF_NORM_VERSION;
    m->bag = gf_clf_bag_kernel_get(NULL);
    m->dense = gf_clf_dense_kernel_get(NULL);
    m->cat_names = gf_calloc(n_cat, sizeof(char *));
    m->calib = gf_calloc(n_cat, sizeof(*m->calib));
    char *block = gf_calloc(1, sz_q + sz_s + sz_w1 + sz_b1 + sz_w2 + sz_b2);
    m->owned = block;
    if (m->cat_names == NULL || m->calib == NULL || block == NULL)
        goto fail;
    for (uint32_t c = 0; c < n_cat; c++)
        if ((m->cat_names[c] = gf_strdup(names[c])) == NULL)
            goto fail;
    m->emb_q = (const int8_t *)block;
    m->emb_scale = (const float *)(block + sz_q);
    m->w1 = hidden ? (const float *)(block + sz_q + sz_s) : NULL;
    m->b1 = hidden ? (const float *)(block + sz_q + sz_s + sz_w1) : NULL;
    m->w2 = (const float *)(block + sz_q + sz_s + sz_w1 + sz_b1);
    m->b2 = (const float *)(block + sz_q + sz_s + sz_w1 + sz_b1 + sz_w2);
    *out = m;
    return 0;
fail:
    gf_clf_model_unref(m);
    return GF_ENOMEM;
}

uint64_t gf_clf_model_new_id(void)
{
    static atomic_uint_fast64_t last;
    return (uint64_t)atomic_fetch_add_explicit(&last, 1, memory_order_relaxed) + 1;
}

struct gf_clf_model *gf_clf_model_ref(struct gf_clf_model *m)
{
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    return m;
}

void gf_clf_model_unref(struct gf_clf_model *m)
{
    if (m == NULL)
        return;
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (m->parent != NULL) {  // a view: everything else is the parent's
        gf_clf_model_unref(m->parent);
        gf_free(m);
        return;
    }
    if (m->cat_names != NULL)
        for (uint32_t c = 0; c < m->n_cat; c++)
            gf_free(m->cat_names[c]);
    gf_free(m->cat_names);
    gf_free(m->calib);
    gf_clf_model_unref(m->head);
    gf_free(m->owned);
    gf_gguf_close(m->file);
    gf_free(m);
}

struct gf_clf_model *gf_clf_model_without_head(struct gf_clf_model *m)
{
    if (m->head == NULL)
        return gf_clf_model_ref(m);
    struct gf_clf_model *v = gf_malloc(sizeof(*v));
    if (v == NULL)
        return NULL;
    *v = *m;
    atomic_init(&v->refs, 1);
    v->head = NULL;
    v->parent = gf_clf_model_ref(m);
    // The same id: the model's lanes of a memoized token sum are the same for both, and an
    // entry says whether it holds the head's lanes too (clf_tokcache.c).
    v->bag_dim = m->dim;
    v->max_hidden = m->hidden;
    return v;
}

bool gf_clf_model_head_category(const struct gf_clf_model *m, size_t c)
{
    const struct gf_clf_model *whole = m->parent != NULL ? m->parent : m;
    for (uint32_t i = 0; whole->head != NULL && i < whole->head->n_cat; i++)
        if (whole->head_cat[i] == c)
            return true;
    return false;
}

size_t gf_clf_model_categories(const struct gf_clf_model *m, const char *const **names)
{
    *names = (const char *const *)m->cat_names;
    return m->n_cat;
}

int gf_clf_model_category_index(const struct gf_clf_model *m, const char *name)
{
    for (uint32_t c = 0; c < m->n_cat; c++)
        if (strcmp(m->cat_names[c], name) == 0)
            return (int)c;
    return -1;
}

int gf_clf_scratch_new(const struct gf_clf_model *m, struct gf_clf_scratch **out)
{
    *out = NULL;
    // Zeroed: the bitmap of seen buckets starts (and stays, between calls) clear.
    struct gf_clf_scratch *s =
        gf_calloc(1, sizeof(*s) + GF_CLF_SCRATCH_BYTES(m->bag_dim, m->max_hidden));
    if (s == NULL)
        return GF_ENOMEM;
    gf_clf_scratch_over(s, s + 1, m->bag_dim, m->max_hidden);
    *out = s;
    return 0;
}

void gf_clf_scratch_over(struct gf_clf_scratch *s, void *mem, uint32_t dim, uint32_t hidden)
{
    // 64-bit arrays first, so every array is aligned for its type when mem is 8-byte aligned.
    // The bitmap is not cleared here: mem's is zero when first used (calloc, thread-local
    // storage) and every scoring call clears the bits it set.
    s->dim = dim;
    s->hidden = hidden;
    s->acc = mem;
    s->seen.bits = (uint64_t *)(s->acc + dim);
    s->seen.n_log = 0;
    s->seen.full = false;
    s->seen.words = 0;
    s->acc32 = (int32_t *)(s->seen.bits + GF_CLF_DISTINCT_WORDS);
    s->x = (float *)(s->acc32 + dim);
    s->hid = s->x + dim;
    s->seen.log = (uint32_t *)(s->hid + (hidden ? hidden : 1));
    s->fresh = s->seen.log + GF_CLF_SEEN_LOG;
    s->norm = (char *)(s->fresh + GF_CLF_FRESH_MAX);
    s->tc = NULL;
}

void gf_clf_seen_clear(struct gf_clf_seen *s)
{
    // A 1 KB text sets a thousand bits or so, which zeroing the few thousand words a model
    // uses clears in fewer instructions than the log; 16-byte stores where the baseline has
    // them (memset's own choice for this size, a string instruction, is as fast, but a
    // profiler counts it once per byte).
    if ((s->full || s->n_log > s->words / 2) && s->words <= GF_CLF_DISTINCT_WORDS) {
        size_t i = 0;
#if defined(__SSE2__)
        for (; i + 4 <= s->words; i += 4) {
            _mm_storeu_si128((__m128i *)(void *)(s->bits + i), _mm_setzero_si128());
            _mm_storeu_si128((__m128i *)(void *)(s->bits + i + 2), _mm_setzero_si128());
        }
#endif
        for (; i < s->words; i++)
            s->bits[i] = 0;
    } else {
        for (size_t i = 0; i < s->n_log; i++)
            s->bits[s->log[i] >> 6] = 0;
    }
    s->n_log = 0;
    s->full = false;
}

bool gf_clf_model_distinct(const struct gf_clf_model *m)
{
    return m->distinct || (m->head != NULL && m->head->distinct);
}

void gf_clf_scratch_free(struct gf_clf_scratch *s)
{
    gf_free(s);
}

// Features arrive in chunks of about a thousand; the kernel sums a chunk's rows in int32 and
// the chunk's sum goes into the int64 sum of the text, so no text is too long to overflow.
void gf_clf_bag_init(struct gf_clf_bag *b, const struct gf_clf_model *m, int64_t *acc,
                     int32_t *acc32, struct gf_clf_tokcache *tc, struct gf_clf_seen *seen,
                     uint32_t *fresh)
{
    // Everything but the batch buffer (4 KB, only read up to n_pend) starts zeroed: a stream
    // makes a bag per piece, often for a few bytes.
    memset(b, 0, offsetof(struct gf_clf_bag, pend));
    b->q = m->emb_q;
    b->acc32 = acc32;
    b->acc = acc;
    b->dim = m->dim;
    b->hq = m->head ? m->head->emb_q : NULL;
    b->hdim = m->head ? m->head->dim : 0;
    b->distinct = m->distinct;
    b->hdistinct = m->head != NULL && m->head->distinct;
    b->kernel = m->bag;
    b->seen = gf_clf_model_distinct(m) ? seen : NULL;
    if (b->seen != NULL && seen->words < (m->hash.buckets + 63) / 64)
        seen->words = (m->hash.buckets + 63) / 64;
    b->fresh = fresh;
    assert(b->seen != NULL || !gf_clf_model_distinct(m));
    // A token's memoized sum stands for all its n-grams: right for a model that adds every
    // occurrence. A head with distinct features takes its rows apart (bag_add_head_distinct).
    if (tc != NULL && m->bag_dim <= GF_CLF_TOK_DIM && !m->distinct) {
        if (tc->model != m->id) {
            for (size_t i = 0; i < GF_CLF_TOK_SLOTS; i++)
                tc->e[i].len = 0;
            tc->model = m->id;
            tc->looks = tc->misses = 0;
        }
        b->tc = tc;
        if (b->hdistinct && ++tc->bags == 0) {  // numbers wrapped: forget the old marks
            memset(tc->marked, 0, sizeof(tc->marked));
            tc->bags = 1;
        }
        b->number = tc->bags;
    }
}

static void add_rows(struct gf_clf_bag *b, const int8_t *q, uint32_t dim, int64_t *acc,
                     const uint32_t *buckets, size_t n)
{
    memset(b->acc32, 0, dim * sizeof(int32_t));
    b->kernel(q, dim, buckets, n, b->acc32);
    for (uint32_t d = 0; d < dim; d++)
        acc[d] += b->acc32[d];
}

#define H8_MAX 256  // rows the lanes of gf_clf_bag.h8 take before a flush

void gf_clf_bag_flush_h8(struct gf_clf_bag *b)
{
    int64_t *acc = b->acc + b->dim;
    const int64_t bias = 128 * (int64_t)b->h8n;
    for (int j = 0; j < 4; j++) {
#if GF_CLF_H8_SSE2
        acc[j] += (int64_t)((b->h8[0] >> (16 * j)) & 0xffff) - bias;
        acc[4 + j] += (int64_t)((b->h8[1] >> (16 * j)) & 0xffff) - bias;
#else
        acc[2 * j] += (int64_t)((b->h8[0] >> (16 * j)) & 0xffff) - bias;
        acc[2 * j + 1] += (int64_t)((b->h8[1] >> (16 * j)) & 0xffff) - bias;
#endif
    }
    b->h8[0] = b->h8[1] = 0;
    b->h8n = 0;
}

#if !GF_CLF_H8_SSE2
/* Adds the rows of a head of 8 dimensions for the buckets rows[0..k) to h8: a load and a few
 * word operations per row instead of a kernel call per token (a word new to the text has a
 * dozen new buckets or so). */
static inline __attribute__((always_inline)) void head8_rows(struct gf_clf_bag *b,
                                                              const uint32_t *rows, size_t k)
{
    const uint64_t lanes = 0x00ff00ff00ff00ffULL;
    const int8_t *hq = b->hq;
    for (size_t j0 = 0; j0 < k; j0 += H8_MAX) {
        size_t end = k - j0 < H8_MAX ? k : j0 + H8_MAX;
        if (b->h8n + (end - j0) > H8_MAX)
            gf_clf_bag_flush_h8(b);
        uint64_t ev = b->h8[0], od = b->h8[1];
        for (size_t j = j0; j < end; j++) {
            const uint64_t row =
                gf_clf_load_le64(hq + (size_t)rows[j] * 8) ^ 0x8080808080808080ULL;
            ev += row & lanes;
            od += (row >> 8) & lanes;
        }
        b->h8[0] = ev;
        b->h8[1] = od;
        b->h8n += (uint32_t)(end - j0);
    }
}
#endif

#if GF_CLF_H8_SSE2
/* first_seen_in for a head of 8 dimensions with distinct features, n <= H8_MAX - b->h8n: also
 * adds the head rows of the new buckets to h8, in the same pass. Every bucket's row is loaded
 * and masked to zero unless new, so the load does not wait for the test and no second pass
 * reads fresh again (on real text 85% of the buckets a word brings are new). Unsigned bytes
 * (q + 128) in 16-bit lanes, which the SSE2 baseline widens with one unpack. */
static inline __attribute__((always_inline)) size_t
first_seen_rows8(struct gf_clf_bag *b, uint64_t *bits, const uint64_t *base, uint32_t *fresh,
                 const uint32_t *buckets, size_t n)
{
    const __m128i sign = _mm_set1_epi8((char)0x80), zero = _mm_setzero_si128();
    const int8_t *hq = b->hq;
    __m128i h = _mm_loadu_si128((const __m128i *)(const void *)b->h8);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const uint32_t bk = buckets[i], w = bk >> 6;
        const uint64_t old = bits[w], known = base != NULL ? old | base[w] : old;
        const uint64_t bit = 1ULL << (bk & 63);
        const uint64_t is_new = ((known >> (bk & 63)) & 1) - 1;  // all ones or 0
        fresh[k] = bk;
        k -= is_new;  // one more when new
        // Only a bucket new to both sets is marked (see first_seen_in).
        bits[w] = base != NULL ? old | (bit & is_new) : old | bit;
        __m128i row = _mm_loadl_epi64((const __m128i *)(const void *)(hq + (size_t)bk * 8));
        row = _mm_and_si128(_mm_xor_si128(row, sign), _mm_cvtsi64_si128((long long)is_new));
        h = _mm_add_epi16(h, _mm_unpacklo_epi8(row, zero));
    }
    _mm_storeu_si128((__m128i *)(void *)b->h8, h);
    b->h8n += (uint32_t)k;
    return k;
}
#endif

/* The buckets of buckets[0..n) (n <= GF_CLF_FRESH_MAX) neither in base nor seen before, into
 * fresh (in order), marking them seen; returns their number. Branch-free: whether a bucket is
 * new is as good as random, so a branch on it would be mispredicted half the time. With head8
 * (a head of 8 dimensions with distinct features) it also adds the head rows of the new
 * buckets to h8. */
static inline __attribute__((always_inline)) size_t
first_seen_in(struct gf_clf_bag *b, uint64_t *bits, const uint64_t *base, uint32_t *fresh,
              const uint32_t *buckets, size_t n, bool head8)
{
    size_t k = 0;
#if GF_CLF_H8_SSE2
    if (head8) {
        for (size_t i0 = 0; i0 < n; i0 += H8_MAX) {
            size_t len = n - i0 < H8_MAX ? n - i0 : H8_MAX;
            if (b->h8n + len > H8_MAX)
                gf_clf_bag_flush_h8(b);
            k += first_seen_rows8(b, bits, base, fresh + k, buckets + i0, len);
        }
        return k;
    }
#endif
    for (size_t i = 0; i < n; i++) {
        uint32_t w = buckets[i] >> 6;
        uint64_t bit = 1ULL << (buckets[i] & 63), old = bits[w];
        uint64_t known = base != NULL ? old | base[w] : old;
        fresh[k] = buckets[i];
        k += (known & bit) == 0;
        // Only a bucket new to both sets is marked, so that the bits set are the first
        // occurrences (which the log records for clearing).
        bits[w] = old | (bit & ~known);
    }
#if !GF_CLF_H8_SSE2
    if (head8)
        head8_rows(b, fresh, k);
#endif
    return k;
}

/* The first occurrences of buckets[0..n) (n <= GF_CLF_FRESH_MAX) in the text, marked seen, in
 * *out (the next slice of the set's log while it has room, else the scratch's fresh array);
 * returns their number. head8: also adds their rows to h8 (a head of 8 dimensions with
 * distinct features). */
static inline __attribute__((always_inline)) size_t
first_seen(struct gf_clf_bag *b, const uint32_t *buckets, size_t n, bool head8,
           const uint32_t **out)
{
    struct gf_clf_seen *sn = b->seen;
    bool logged = sn->log != NULL && GF_CLF_SEEN_LOG - sn->n_log >= n;
    uint32_t *fresh = logged ? sn->log + sn->n_log : b->fresh;
    // Two copies of the loop: without earlier text (every one-shot score) it reads one bitmap.
    size_t k = b->base == NULL ? first_seen_in(b, sn->bits, NULL, fresh, buckets, n, head8)
                               : first_seen_in(b, sn->bits, b->base, fresh, buckets, n, head8);
    if (logged)
        sn->n_log += k;
    else
        sn->full = true;
    *out = fresh;
    return k;
}

// gf_clf_bag_add_head_distinct in slices of the log's size, for any head and set.
static __attribute__((noinline)) void head_distinct_slices(struct gf_clf_bag *b,
                                                           const uint32_t *buckets, size_t n)
{
    for (size_t i0 = 0; i0 < n; i0 += GF_CLF_FRESH_MAX) {
        size_t len = n - i0 < GF_CLF_FRESH_MAX ? n - i0 : GF_CLF_FRESH_MAX;
        const uint32_t *fresh;
        size_t k = b->hdim == 8 ? first_seen(b, buckets + i0, len, true, &fresh)
                                : first_seen(b, buckets + i0, len, false, &fresh);
        b->n_distinct += k;
        if (b->hdim != 8)
            add_rows(b, b->hq, b->hdim, b->acc + b->dim, fresh, k);
    }
}

void gf_clf_bag_add_head_distinct(struct gf_clf_bag *b, const uint32_t *buckets, size_t n)
{
#if GF_CLF_H8_SSE2
    // The usual call, a word's few dozen buckets in a one-shot score: one pass straight into
    // the log, apart from the slices (whose bookkeeping and frame cost as much as 20 buckets).
    struct gf_clf_seen *sn = b->seen;
    if (b->hdim == 8 && b->base == NULL && n <= H8_MAX && sn->log != NULL &&
        GF_CLF_SEEN_LOG - sn->n_log >= n) {
        if (b->h8n + n > H8_MAX)
            gf_clf_bag_flush_h8(b);
        size_t k = first_seen_rows8(b, sn->bits, NULL, sn->log + sn->n_log, buckets, n);
        sn->n_log += k;
        b->n_distinct += k;
        return;
    }
#endif
    head_distinct_slices(b, buckets, n);
}

void gf_clf_bag_add(void *ud, const uint32_t *buckets, size_t n)
{
    struct gf_clf_bag *b = ud;
    if (b->seen == NULL) {
        add_rows(b, b->q, b->dim, b->acc, buckets, n);
        if (b->hq != NULL)
            add_rows(b, b->hq, b->hdim, b->acc + b->dim, buckets, n);
        return;
    }
    // Distinct features: slices of the chunk, each with its first occurrences.
    for (size_t i0 = 0; i0 < n; i0 += GF_CLF_FRESH_MAX) {
        size_t len = n - i0 < GF_CLF_FRESH_MAX ? n - i0 : GF_CLF_FRESH_MAX;
        const uint32_t *fresh;
        bool head8 = b->hq != NULL && b->hdistinct && b->hdim == 8;
        size_t k = head8 ? first_seen(b, buckets + i0, len, true, &fresh)
                         : first_seen(b, buckets + i0, len, false, &fresh);
        b->n_distinct += k;
        if (b->distinct)
            add_rows(b, b->q, b->dim, b->acc, fresh, k);
        else
            add_rows(b, b->q, b->dim, b->acc, buckets + i0, len);
        if (head8)
            continue;
        if (b->hq != NULL && b->hdistinct)
            add_rows(b, b->hq, b->hdim, b->acc + b->dim, fresh, k);
        else if (b->hq != NULL)
            add_rows(b, b->hq, b->hdim, b->acc + b->dim, buckets + i0, len);
    }
}

static inline float sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

float gf_clf_pool_div(uint32_t pooling, size_t n_feats)
{
    // sqrtf is correctly rounded (IEEE 754), so the divisor is the same bits everywhere.
    return pooling == GF_CLF_POOL_SQRT ? sqrtf((float)n_feats) : (float)n_feats;
}

void gf_clf_model_forward(const struct gf_clf_model *m, const int64_t *acc, size_t n_feats,
                          size_t n_distinct, float *x, float *hid, float *raw)
{
    // The pooled rows: integer sum, then the per-dimension scale times the pooling factor.
    size_t n = m->distinct ? n_distinct : n_feats;
    float inv = n > 0 ? 1.0f / gf_clf_pool_div(m->pooling, n) : 0.0f;
    for (uint32_t d = 0; d < m->dim; d++)
        x[d] = (float)acc[d] * (m->emb_scale[d] * inv);
    // The layers are stored input-major, so each loop below runs over contiguous outputs and
    // vectorizes without reordering any sum: every output adds its inputs in index order.
    const float *in = x;
    uint32_t n_in = m->dim;
    if (m->hidden) {
        m->dense(m->w1, m->b1, x, m->dim, m->hidden, hid);
        for (uint32_t h = 0; h < m->hidden; h++)
            hid[h] = hid[h] > 0.0f ? hid[h] : 0.0f;
        in = hid;
        n_in = m->hidden;
    }
    const uint32_t C = m->n_cat;
    m->dense(m->w2, m->b2, in, n_in, C, raw);
    for (uint32_t c = 0; c < C; c++)
        // finite weights can still overflow to inf - inf = NaN; a model that cannot score the
        // text counts as certain (fail closed), never as a NaN that compares false everywhere
        raw[c] = isnan(raw[c]) ? 1.0f : sigmoid(raw[c]);
    if (m->head != NULL) {
        // The head's bag follows the model's; x and hid are free again.
        float hraw[GF_CLF_MAX_CATEGORIES];
        gf_clf_model_forward(m->head, acc + m->dim, n_feats, n_distinct, x, hid, hraw);
        for (uint32_t i = 0; i < m->head->n_cat; i++)
            raw[m->head_cat[i]] = hraw[i];
    } else if (m->parent != NULL && m->parent->head != NULL) {
        // A view without the head: its categories are not scored (the model's own outputs for
        // them were trained on rows the head took over, and are no score to act on).
        for (uint32_t i = 0; i < m->parent->head->n_cat; i++)
            raw[m->parent->head_cat[i]] = NAN;
    }
}

int gf_clf_model_attach_head(struct gf_clf_model *m, struct gf_clf_model *head,
                             struct gf_err *err)
{
    int rc = GF_EINVAL;
    if (m->head != NULL || head->head != NULL || m->parent != NULL || head->parent != NULL)
        gf_err_set(err, rc, "head: a model has one head at most, and a head has none");
    else if (memcmp(&m->hash, &head->hash, sizeof(m->hash)) != 0)
        gf_err_set(err, rc, "head: hash parameters differ from the model's");
    else if (head->norm_version != m->norm_version)
        gf_err_set(err, rc, "head: normalization version differs from the model's");
    else if (head->distinct && m->hash.buckets > GF_CLF_DISTINCT_MAX_BUCKETS)
        gf_err_set(err, rc, "head: distinct features need at most %u buckets",
                   GF_CLF_DISTINCT_MAX_BUCKETS);
    else if (m->dim + head->dim > GF_CLF_MAX_DIM)
        gf_err_set(err, rc, "head: embedding lengths %u + %u exceed %d", m->dim, head->dim,
                   GF_CLF_MAX_DIM);
    else
        rc = 0;
    for (uint32_t i = 0; rc == 0 && i < head->n_cat; i++) {
        int c = gf_clf_model_category_index(m, head->cat_names[i]);
        if (c < 0) {
            rc = gf_err_set(err, GF_EINVAL, "head: category '%s' is not one of the model's",
                            head->cat_names[i]);
            break;
        }
        for (uint32_t j = 0; j < i; j++)
            if (m->head_cat[j] == (uint32_t)c)
                rc = gf_err_set(err, GF_EINVAL, "head: category '%s' twice", head->cat_names[i]);
        m->head_cat[i] = (uint32_t)c;
    }
    if (rc != 0) {
        gf_clf_model_unref(head);
        return rc;
    }
    m->head = head;
    m->id = gf_clf_model_new_id();  // sums memoized for the bag without the head are wrong now
    m->bag_dim = m->dim + head->dim;
    m->max_hidden = m->hidden > head->hidden ? m->hidden : head->hidden;
    return 0;
}

/* Raw outputs for text; canon, when not NULL, is the canonical form of the whole text, which
 * is then hashed instead of normalizing text again (text still gives the shape features). */
static int score_raw(const struct gf_clf_model *m, const char *text, size_t len,
                     const char *canon, size_t clen, float *raw, struct gf_clf_scratch *s)
{
    if (s->dim < m->bag_dim || s->hidden < m->max_hidden)
        return GF_EINVAL;
    struct gf_clf_bag b;
    gf_clf_bag_init(&b, m, s->acc, s->acc32, s->tc, &s->seen, s->fresh);
    memset(s->acc, 0, m->bag_dim * sizeof(int64_t));
    struct gf_clf_feat_state fs = {{0}, 0};
    size_t nf = canon != NULL
                    ? gf_clf_shape_features(&m->hash, text, len, gf_clf_bag_add, &b) +
                          gf_clf_features_tok(&m->hash, &fs, canon, clen, gf_clf_bag_add,
                                              gf_clf_bag_token, &b)
                    : gf_clf_text_features(&m->hash, text, len, s->norm, GF_CLF_NORM_BUF,
                                           gf_clf_bag_add, gf_clf_bag_token, &b);
    gf_clf_bag_finish(&b);
    gf_clf_seen_clear(&s->seen);
    gf_clf_model_forward(m, s->acc, nf, b.n_distinct, s->x, s->hid, raw);
    return 0;
}

int gf_clf_model_score_raw(const struct gf_clf_model *m, const char *text, size_t len,
                           float *raw, struct gf_clf_scratch *s)
{
    return score_raw(m, text, len, NULL, 0, raw, s);
}

void gf_clf_model_calibrate(const struct gf_clf_model *m, float *scores)
{
    for (uint32_t c = 0; c < m->n_cat; c++)
        if (!isnan(scores[c]))  // unscored (a view without the head) stays so
            scores[c] = gf_clf_calib_apply(&m->calib[c], scores[c]);
}

int gf_clf_model_score_canonical(const struct gf_clf_model *m, const char *text, size_t len,
                                 const char *canon, size_t clen, float *scores,
                                 struct gf_clf_scratch *s)
{
    int rc = score_raw(m, text, len, canon, clen, scores, s);
    if (rc == 0)
        gf_clf_model_calibrate(m, scores);
    return rc;
}

int gf_clf_model_score(const struct gf_clf_model *m, const char *text, size_t len, float *scores,
                       struct gf_clf_scratch *s)
{
    int rc = score_raw(m, text, len, NULL, 0, scores, s);
    if (rc == 0)
        gf_clf_model_calibrate(m, scores);
    return rc;
}

int gf_clf_model_score_batch(const struct gf_clf_model *m, const char *const *texts,
                             const size_t *lens, size_t n, float *scores,
                             struct gf_clf_scratch *s)
{
    // One text after the other through the same code path: the work is per feature (hashing
    // and row adds), which does not batch, and the dense layers are a few thousand
    // multiply-adds per text; so a batch costs what the singles cost and gives equal scores.
    for (size_t i = 0; i < n; i++) {
        int rc = gf_clf_model_score(m, texts[i], lens[i], scores + i * m->n_cat, s);
        if (rc != 0)
            return rc;
    }
    return 0;
}
