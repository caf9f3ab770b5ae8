/* clf_model.c — the trained classifier at inference: building, sharing (refcount) and scoring.
 * Scoring a text is: features -> mean of their int8 embedding rows -> optional ReLU hidden
 * layer -> one logit per category -> sigmoid -> calibration table. Invariant: scoring reads the
 * model only and writes only the caller's scratch, so it is thread-safe and allocation-free. */
#include "classifiers/clf_int.h"

#include <math.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "engine/gguf.h"

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
    size_t sz_s = align_up((size_t)hp->buckets * sizeof(float));
    size_t sz_w1 = align_up((size_t)hidden * dim * sizeof(float));
    size_t sz_b1 = align_up((size_t)hidden * sizeof(float));
    size_t sz_w2 = align_up((size_t)n_cat * in * sizeof(float));
    size_t sz_b2 = align_up((size_t)n_cat * sizeof(float));

    struct gf_clf_model *m = gf_calloc(1, sizeof(*m));
    if (m == NULL)
        return GF_ENOMEM;
    atomic_init(&m->refs, 1);
    m->n_cat = n_cat;
    m->hash = *hp;
    m->dim = dim;
    m->hidden = hidden;
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
    if (m->cat_names != NULL)
        for (uint32_t c = 0; c < m->n_cat; c++)
            gf_free(m->cat_names[c]);
    gf_free(m->cat_names);
    gf_free(m->calib);
    gf_free(m->owned);
    gf_gguf_close(m->file);
    gf_free(m);
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
    size_t hid = m->hidden ? m->hidden : 1;
    struct gf_clf_scratch *s = gf_malloc(sizeof(*s) + (m->dim + hid) * sizeof(float) +
                                         GF_CLF_NORM_BUF);
    if (s == NULL)
        return GF_ENOMEM;
    s->dim = m->dim;
    s->hidden = m->hidden;
    s->acc = (float *)(s + 1);
    s->hid = s->acc + m->dim;
    s->norm = (char *)(s->hid + hid);
    *out = s;
    return 0;
}

void gf_clf_scratch_over(struct gf_clf_scratch *s, float *acc, uint32_t dim, float *hid,
                         uint32_t hidden, char *norm)
{
    s->dim = dim;
    s->hidden = hidden;
    s->acc = acc;
    s->hid = hid;
    s->norm = norm;
}

void gf_clf_scratch_free(struct gf_clf_scratch *s)
{
    gf_free(s);
}

// Features arrive one by one; their rows are random reads in a table of megabytes, so each is
// prefetched on arrival and added PREFETCH features later, when it is likely in cache. The
// adds still happen in feature order, so the sum is the same as without the delay.
#define PREFETCH 16

struct bag {
    const int8_t *q;
    const float *scale;
    float *acc;
    uint32_t dim;
    uint32_t ring[PREFETCH];
    uint32_t n;  // features seen so far
};

static void add_bucket(const struct bag *b, uint32_t bucket)
{
    const int8_t *row = b->q + (size_t)bucket * b->dim;
    const float sc = b->scale[bucket];
    float *acc = b->acc;
    uint32_t d = 0;
#ifdef __SSE2__
    // 16 int8 weights at a time, widened to 4 x 4 floats. SSE2 is part of x86-64, so no CPU
    // check is needed; each lane computes acc + w * scale exactly like the scalar loop below
    // (no fused multiply-add), so both give the same bits.
    const __m128 vs = _mm_set1_ps(sc);
    const __m128i zero = _mm_setzero_si128();
    for (; d + 16 <= b->dim; d += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(row + d));
        __m128i sign8 = _mm_cmplt_epi8(v, zero);
        __m128i lo16 = _mm_unpacklo_epi8(v, sign8), hi16 = _mm_unpackhi_epi8(v, sign8);
        __m128i slo = _mm_cmplt_epi16(lo16, zero), shi = _mm_cmplt_epi16(hi16, zero);
        __m128i w[4] = {_mm_unpacklo_epi16(lo16, slo), _mm_unpackhi_epi16(lo16, slo),
                        _mm_unpacklo_epi16(hi16, shi), _mm_unpackhi_epi16(hi16, shi)};
        for (int k = 0; k < 4; k++) {
            __m128 a = _mm_loadu_ps(acc + d + 4 * k);
            a = _mm_add_ps(a, _mm_mul_ps(_mm_cvtepi32_ps(w[k]), vs));
            _mm_storeu_ps(acc + d + 4 * k, a);
        }
    }
#endif
    for (; d < b->dim; d++)
        acc[d] += sc * (float)row[d];
}

static void add_row(void *ud, uint32_t bucket)
{
    struct bag *b = ud;
    const int8_t *row = b->q + (size_t)bucket * b->dim;
    __builtin_prefetch(row);
    __builtin_prefetch(row + b->dim - 1);
    __builtin_prefetch(b->scale + bucket);
    uint32_t slot = b->n % PREFETCH;
    if (b->n >= PREFETCH)
        add_bucket(b, b->ring[slot]);
    b->ring[slot] = bucket;
    b->n++;
}

/* Adds the rows still waiting in the ring, oldest first. */
static void bag_flush(struct bag *b)
{
    uint32_t first = b->n > PREFETCH ? b->n - PREFETCH : 0;
    for (uint32_t i = first; i < b->n; i++)
        add_bucket(b, b->ring[i % PREFETCH]);
}

static inline float sigmoid(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

void gf_clf_model_forward(const struct gf_clf_model *m, float *acc, size_t n_feats, float *hid,
                          float *raw)
{
    if (n_feats > 0) {
        float inv = 1.0f / (float)n_feats;
        for (uint32_t d = 0; d < m->dim; d++)
            acc[d] *= inv;
    }
    const float *x = acc;
    uint32_t in = m->dim;
    if (m->hidden) {
        for (uint32_t h = 0; h < m->hidden; h++) {
            const float *w = m->w1 + (size_t)h * m->dim;
            float z = m->b1[h];
            for (uint32_t d = 0; d < m->dim; d++)
                z += w[d] * acc[d];
            hid[h] = z > 0.0f ? z : 0.0f;
        }
        x = hid;
        in = m->hidden;
    }
    for (uint32_t c = 0; c < m->n_cat; c++) {
        const float *w = m->w2 + (size_t)c * in;
        float z = m->b2[c];
        for (uint32_t i = 0; i < in; i++)
            z += w[i] * x[i];
        // finite weights can still overflow to inf - inf = NaN; a model that cannot score the
        // text counts as certain (fail closed), never as a NaN that compares false everywhere
        raw[c] = isnan(z) ? 1.0f : sigmoid(z);
    }
}

int gf_clf_model_score_raw(const struct gf_clf_model *m, const char *text, size_t len,
                           float *raw, struct gf_clf_scratch *s)
{
    if (s->dim < m->dim || s->hidden < m->hidden)
        return GF_EINVAL;
    struct bag b = {.q = m->emb_q, .scale = m->emb_scale, .acc = s->acc, .dim = m->dim};
    memset(s->acc, 0, m->dim * sizeof(float));
    size_t nf = gf_clf_text_features(&m->hash, text, len, s->norm, GF_CLF_NORM_BUF, add_row, &b);
    bag_flush(&b);
    gf_clf_model_forward(m, s->acc, nf, s->hid, raw);
    return 0;
}

int gf_clf_model_score_canonical(const struct gf_clf_model *m, const char *canon, size_t len,
                                 float *scores, struct gf_clf_scratch *s)
{
    if (s->dim < m->dim || s->hidden < m->hidden)
        return GF_EINVAL;
    struct bag b = {.q = m->emb_q, .scale = m->emb_scale, .acc = s->acc, .dim = m->dim};
    memset(s->acc, 0, m->dim * sizeof(float));
    size_t nf = gf_clf_features(&m->hash, canon, len, add_row, &b);
    bag_flush(&b);
    gf_clf_model_forward(m, s->acc, nf, s->hid, scores);
    for (uint32_t c = 0; c < m->n_cat; c++)
        scores[c] = gf_clf_calib_apply(&m->calib[c], scores[c]);
    return 0;
}

int gf_clf_model_score(const struct gf_clf_model *m, const char *text, size_t len, float *scores,
                       struct gf_clf_scratch *s)
{
    int rc = gf_clf_model_score_raw(m, text, len, scores, s);
    if (rc != 0)
        return rc;
    for (uint32_t c = 0; c < m->n_cat; c++)
        scores[c] = gf_clf_calib_apply(&m->calib[c], scores[c]);
    return 0;
}

int gf_clf_model_score_batch(const struct gf_clf_model *m, const char *const *texts,
                             const size_t *lens, size_t n, float *scores,
                             struct gf_clf_scratch *s)
{
    // One text after the other through the same code path: the batch costs what the singles
    // cost (the work is the per-feature row adds, which do not batch) and gives equal scores.
    for (size_t i = 0; i < n; i++) {
        int rc = gf_clf_model_score(m, texts[i], lens[i], scores + i * m->n_cat, s);
        if (rc != 0)
            return rc;
    }
    return 0;
}
