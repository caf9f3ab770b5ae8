/* clf_train.c — training a classifier: mini-batch SGD on a weighted binary cross-entropy per
 * category, with the dense products of a batch done by OpenBLAS (cblas_sgemm) and sparse updates
 * of the embedding rows its features touch. The float embeddings are then quantized to int8 with
 * a scale per dimension, and each category is calibrated on the validation split through the
 * quantized model, so calibration sees exactly what inference computes.
 * Invariant: the result depends only on the inputs and the seed (one thread, fixed order). */
#include "classifiers/clf_int.h"

#include <math.h>
#include <string.h>

#include <cblas.h>

/* xoshiro-style generator (splitmix64 steps): small, fast and the same everywhere. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static float rng_uniform(uint64_t *s, float lo, float hi)
{
    return lo + (hi - lo) * (float)((rng_next(s) >> 40) * (1.0 / 16777216.0));
}

struct collect {
    uint32_t *v;
    size_t n, cap;
    bool oom;
};

static void collect_feat(void *ud, const uint32_t *buckets, size_t n)
{
    struct collect *c = ud;
    if (c->oom)
        return;
    if (c->cap - c->n < n) {
        size_t ncap = c->cap ? c->cap : 256;
        while (ncap - c->n < n)
            ncap *= 2;
        uint32_t *nv = ncap > SIZE_MAX / sizeof(uint32_t)
                           ? NULL
                           : gf_realloc(c->v, ncap * sizeof(uint32_t));
        if (nv == NULL) {
            c->oom = true;
            return;
        }
        c->v = nv;
        c->cap = ncap;
    }
    memcpy(c->v + c->n, buckets, n * sizeof(uint32_t));
    c->n += n;
}

int gf_clf_example_features(const struct gf_clf_hash_params *hp, const char *text, size_t len,
                            size_t max_bytes, uint32_t **feats, uint32_t *n_feats)
{
    *feats = NULL;
    *n_feats = 0;
    if (max_bytes > 0 && len > max_bytes) {
        len = max_bytes;
        while (len > 0 && ((unsigned char)text[len] & 0xC0) == 0x80)
            len--;  // do not cut a UTF-8 character
    }
    char *buf = gf_malloc(GF_CLF_NORM_BUF);
    if (buf == NULL)
        return GF_ENOMEM;
    struct collect c = {0};
    gf_clf_text_features(hp, text, len, buf, GF_CLF_NORM_BUF, collect_feat, NULL, &c);
    gf_free(buf);
    if (c.oom || c.n > UINT32_MAX) {
        gf_free(c.v);
        return GF_ENOMEM;
    }
    *feats = c.v;
    *n_feats = (uint32_t)c.n;
    return 0;
}

/* The float state of training. */
struct trainer {
    uint32_t n_cat, dim, hidden, in, batch, buckets, pooling;
    float *emb;   // [buckets][dim]
    float *w1;    // [hidden][dim]
    float *b1;    // [hidden]
    float *w2;    // [n_cat][in]
    float *b2;    // [n_cat]
    float *x0;    // [batch][dim] embedding bags of the batch
    float *z1;    // [batch][hidden] pre-activations
    float *a1;    // [batch][hidden]
    float *lg;    // [batch][n_cat] logits, then gradients of the loss by the logits
    float *da;    // [batch][in] gradient by the layer below the output
    float *dx0;   // [batch][dim] gradient by the embedding bags
    float *gw1;   // [hidden][dim]
    float *gw2;   // [n_cat][in]
    float *posw;  // [n_cat] weight of a positive label
};

static void trainer_free(struct trainer *t)
{
    float **all[] = {&t->emb, &t->w1, &t->b1, &t->w2, &t->b2, &t->x0, &t->z1, &t->a1,
                     &t->lg, &t->da, &t->dx0, &t->gw1, &t->gw2, &t->posw};
    for (size_t i = 0; i < GF_ARRAY_LEN(all); i++) {
        gf_free(*all[i]);
        *all[i] = NULL;
    }
}

static int trainer_init(struct trainer *t, uint32_t n_cat, uint32_t buckets,
                        const struct gf_clf_train_params *tp, uint64_t seed)
{
    memset(t, 0, sizeof(*t));
    t->n_cat = n_cat;
    t->dim = tp->dim;
    t->hidden = tp->hidden;
    t->pooling = tp->pooling;
    t->in = tp->hidden ? tp->hidden : tp->dim;
    t->batch = tp->batch;
    t->buckets = buckets;
    size_t h = tp->hidden ? tp->hidden : 1, B = tp->batch;
    t->emb = gf_mallocarray((size_t)buckets * t->dim, sizeof(float));
    t->w1 = gf_mallocarray(h * t->dim, sizeof(float));
    t->b1 = gf_calloc(h, sizeof(float));
    t->w2 = gf_mallocarray((size_t)n_cat * t->in, sizeof(float));
    t->b2 = gf_calloc(n_cat, sizeof(float));
    t->x0 = gf_mallocarray(B * t->dim, sizeof(float));
    t->z1 = gf_mallocarray(B * h, sizeof(float));
    t->a1 = gf_mallocarray(B * h, sizeof(float));
    t->lg = gf_mallocarray(B * n_cat, sizeof(float));
    t->da = gf_mallocarray(B * t->in, sizeof(float));
    t->dx0 = gf_mallocarray(B * t->dim, sizeof(float));
    t->gw1 = gf_mallocarray(h * t->dim, sizeof(float));
    t->gw2 = gf_mallocarray((size_t)n_cat * t->in, sizeof(float));
    t->posw = gf_mallocarray(n_cat, sizeof(float));
    if (!t->emb || !t->w1 || !t->b1 || !t->w2 || !t->b2 || !t->x0 || !t->z1 || !t->a1 ||
        !t->lg || !t->da || !t->dx0 || !t->gw1 || !t->gw2 || !t->posw) {
        trainer_free(t);
        return GF_ENOMEM;
    }
    uint64_t rs = seed ^ 0x5eed5eed5eedULL;
    // fastText's input initialization for the linear model; with a hidden layer the bag must be
    // large enough for the ReLU units to see a signal from the start.
    float r = t->hidden ? 1.0f : 1.0f / (float)t->dim;
    for (size_t i = 0; i < (size_t)buckets * t->dim; i++)
        t->emb[i] = rng_uniform(&rs, -r, r);
    if (t->hidden) {
        float r1 = sqrtf(6.0f / (float)(t->dim + t->hidden));
        for (size_t i = 0; i < (size_t)t->hidden * t->dim; i++)
            t->w1[i] = rng_uniform(&rs, -r1, r1);
        float r2 = sqrtf(6.0f / (float)(t->hidden + n_cat));
        for (size_t i = 0; i < (size_t)n_cat * t->in; i++)
            t->w2[i] = rng_uniform(&rs, -r2, r2);
    } else {
        memset(t->w2, 0, (size_t)n_cat * t->in * sizeof(float));  // fastText's output init
    }
    return 0;
}

/* Positive weights from the label counts of the training set. */
static void class_weights(struct trainer *t, const struct gf_clf_example *ex, size_t n,
                          float max_w)
{
    for (uint32_t c = 0; c < t->n_cat; c++) {
        double pos = 0, neg = 0;
        for (size_t i = 0; i < n; i++) {
            if (ex[i].labels[c] == 1)
                pos++;
            else if (ex[i].labels[c] == 0)
                neg++;
        }
        float w = pos > 0 ? (float)sqrt(neg / pos) : 1.0f;
        if (w < 1.0f)
            w = 1.0f;
        if (w > max_w)
            w = max_w;
        t->posw[c] = w;
    }
}

static inline float softplus(float x)
{
    return x > 0 ? x + log1pf(expf(-x)) : log1pf(expf(x));
}

/* One step on the examples ex[idx[0..B)]; returns the summed loss. */
static double train_batch(struct trainer *t, const struct gf_clf_example *ex,
                          const uint32_t *idx, uint32_t B, float lr)
{
    const uint32_t D = t->dim, H = t->hidden, C = t->n_cat, NI = t->in;
    // Forward: embedding bags (the pooled rows of each example's features).
    for (uint32_t b = 0; b < B; b++) {
        const struct gf_clf_example *e = &ex[idx[b]];
        float *x = t->x0 + (size_t)b * D;
        memset(x, 0, D * sizeof(float));
        for (uint32_t f = 0; f < e->n_feats; f++) {
            const float *row = t->emb + (size_t)e->feats[f] * D;
            for (uint32_t d = 0; d < D; d++)
                x[d] += row[d];
        }
        if (e->n_feats > 0) {
            float inv = 1.0f / gf_clf_pool_div(t->pooling, e->n_feats);
            for (uint32_t d = 0; d < D; d++)
                x[d] *= inv;
        }
    }
    const float *xin = t->x0;
    if (H) {
        // z1 = x0 * w1^T + b1 ; a1 = relu(z1)
        for (uint32_t b = 0; b < B; b++)
            memcpy(t->z1 + (size_t)b * H, t->b1, H * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)H, (int)D, 1.0f,
                    t->x0, (int)D, t->w1, (int)D, 1.0f, t->z1, (int)H);
        for (size_t i = 0; i < (size_t)B * H; i++)
            t->a1[i] = t->z1[i] > 0 ? t->z1[i] : 0;
        xin = t->a1;
    }
    // logits = xin * w2^T + b2
    for (uint32_t b = 0; b < B; b++)
        memcpy(t->lg + (size_t)b * C, t->b2, C * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)C, (int)NI, 1.0f, xin,
                (int)NI, t->w2, (int)NI, 1.0f, t->lg, (int)C);
    // Loss and its gradient by the logits: w * (sigmoid(z) - y), unknown labels masked.
    double loss = 0;
    for (uint32_t b = 0; b < B; b++) {
        const int8_t *y = ex[idx[b]].labels;
        float *g = t->lg + (size_t)b * C;
        for (uint32_t c = 0; c < C; c++) {
            float z = g[c];
            if (y[c] < 0) {
                g[c] = 0;
                continue;
            }
            float w = y[c] ? t->posw[c] : 1.0f;
            loss += w * (y[c] ? softplus(-z) : softplus(z));
            g[c] = w * (1.0f / (1.0f + expf(-z)) - (float)y[c]);
        }
    }
    // Backward through the output layer: gw2 = G^T xin, da = G w2 (before w2 changes).
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)C, (int)NI, (int)B, 1.0f, t->lg,
                (int)C, xin, (int)NI, 0.0f, t->gw2, (int)NI);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)NI, (int)C, 1.0f, t->lg,
                (int)C, t->w2, (int)NI, 0.0f, t->da, (int)NI);
    for (size_t i = 0; i < (size_t)C * NI; i++)
        t->w2[i] -= lr * t->gw2[i];
    for (uint32_t c = 0; c < C; c++) {
        float s = 0;
        for (uint32_t b = 0; b < B; b++)
            s += t->lg[(size_t)b * C + c];
        t->b2[c] -= lr * s;
    }
    const float *dx = t->da;
    if (H) {
        // Through the ReLU: dz1 = da * (z1 > 0); gw1 = dz1^T x0; dx0 = dz1 w1.
        for (size_t i = 0; i < (size_t)B * H; i++)
            if (t->z1[i] <= 0)
                t->da[i] = 0;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)H, (int)D, (int)B, 1.0f,
                    t->da, (int)H, t->x0, (int)D, 0.0f, t->gw1, (int)D);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)D, (int)H, 1.0f,
                    t->da, (int)H, t->w1, (int)D, 0.0f, t->dx0, (int)D);
        // The hidden layer learns from the batch mean: a summed step kills ReLU units.
        float lr1 = lr / (float)B;
        for (size_t i = 0; i < (size_t)H * D; i++)
            t->w1[i] -= lr1 * t->gw1[i];
        for (uint32_t h = 0; h < H; h++) {
            float s = 0;
            for (uint32_t b = 0; b < B; b++)
                s += t->da[(size_t)b * H + h];
            t->b1[h] -= lr1 * s;
        }
        dx = t->dx0;
    }
    // Sparse update of the rows each example touched (the gradient of the pooling).
    for (uint32_t b = 0; b < B; b++) {
        const struct gf_clf_example *e = &ex[idx[b]];
        if (e->n_feats == 0)
            continue;
        const float *g = dx + (size_t)b * D;
        float step = lr / gf_clf_pool_div(t->pooling, e->n_feats);
        for (uint32_t f = 0; f < e->n_feats; f++) {
            float *row = t->emb + (size_t)e->feats[f] * D;
            for (uint32_t d = 0; d < D; d++)
                row[d] -= step * g[d];
        }
    }
    return loss;
}

/* Whether every trained weight is a finite number. A step size too large for the data makes
 * training diverge to infinities and NaNs, which would otherwise be quantized into a file that
 * no loader accepts (clf_gguf.c refuses non-finite tensors). */
static bool trainer_finite(const struct trainer *t)
{
    size_t h = t->hidden;
    const struct {
        const float *v;
        size_t n;
    } parts[] = {{t->emb, (size_t)t->buckets * t->dim}, {t->w1, h * t->dim}, {t->b1, h},
                 {t->w2, (size_t)t->n_cat * t->in}, {t->b2, t->n_cat}};
    for (size_t p = 0; p < GF_ARRAY_LEN(parts); p++)
        for (size_t i = 0; i < parts[p].n; i++)
            if (!isfinite(parts[p].v[i]))
                return false;
    return true;
}

/* Copies the trained state into m: the embedding quantized to int8 with one scale per
 * dimension (so that inference sums integers), the layers transposed to input-major. */
static void export_model(const struct trainer *t, struct gf_clf_model *m)
{
    int8_t *q = (int8_t *)m->emb_q;
    float *scale = (float *)m->emb_scale;
    for (uint32_t d = 0; d < t->dim; d++) {
        float mx = 0;
        for (size_t r = 0; r < t->buckets; r++)
            if (fabsf(t->emb[r * t->dim + d]) > mx)
                mx = fabsf(t->emb[r * t->dim + d]);
        scale[d] = mx > 0 ? mx / 127.0f : 0.0f;
    }
    for (size_t r = 0; r < t->buckets; r++)
        for (uint32_t d = 0; d < t->dim; d++)
            q[r * t->dim + d] =
                scale[d] > 0 ? (int8_t)lrintf(t->emb[r * t->dim + d] / scale[d]) : 0;
    if (t->hidden) {
        float *w1 = (float *)m->w1;
        for (uint32_t h = 0; h < t->hidden; h++)
            for (uint32_t d = 0; d < t->dim; d++)
                w1[(size_t)d * t->hidden + h] = t->w1[(size_t)h * t->dim + d];
        memcpy((float *)m->b1, t->b1, t->hidden * sizeof(float));
    }
    float *w2 = (float *)m->w2;
    for (uint32_t c = 0; c < t->n_cat; c++)
        for (uint32_t i = 0; i < t->in; i++)
            w2[(size_t)i * t->n_cat + c] = t->w2[(size_t)c * t->in + i];
    memcpy((float *)m->b2, t->b2, t->n_cat * sizeof(float));
}

/* Raw outputs of the quantized model for an example given by its features: the same integer
 * sum and forward pass as scoring (the examples of a model with distinct features have each
 * bucket once already, so their count is both counts). */
static void raw_of_example(const struct gf_clf_model *m, const struct gf_clf_example *e,
                           int64_t *acc, float *x, float *hid, float *raw)
{
    memset(acc, 0, m->dim * sizeof(int64_t));
    for (uint32_t f = 0; f < e->n_feats; f++) {
        const int8_t *row = m->emb_q + (size_t)e->feats[f] * m->dim;
        for (uint32_t d = 0; d < m->dim; d++)
            acc[d] += row[d];
    }
    gf_clf_model_forward(m, acc, e->n_feats, e->n_feats, x, hid, raw);
}

static int calibrate(struct gf_clf_model *m, const struct gf_clf_example *val, size_t n_val)
{
    int rc = GF_ENOMEM;
    size_t hid_n = m->hidden ? m->hidden : 1;
    int64_t *acc = gf_mallocarray(m->dim, sizeof(int64_t));
    float *fl = gf_mallocarray(m->dim + hid_n, sizeof(float));
    float *raw = gf_mallocarray(n_val * m->n_cat, sizeof(float));
    float *xs = gf_mallocarray(n_val, sizeof(float));
    uint8_t *ys = gf_malloc(n_val);
    if (acc == NULL || fl == NULL || raw == NULL || xs == NULL || ys == NULL)
        goto out;
    for (size_t i = 0; i < n_val; i++)
        raw_of_example(m, &val[i], acc, fl, fl + m->dim, raw + i * m->n_cat);
    for (uint32_t c = 0; c < m->n_cat; c++) {
        size_t k = 0;
        for (size_t i = 0; i < n_val; i++) {
            if (val[i].labels[c] < 0)
                continue;
            xs[k] = raw[i * m->n_cat + c];
            ys[k] = (uint8_t)val[i].labels[c];
            k++;
        }
        if ((rc = gf_clf_calib_fit(&m->calib[c], xs, ys, k)) != 0)
            goto out;
    }
    rc = 0;
out:
    gf_free(acc);
    gf_free(fl);
    gf_free(raw);
    gf_free(xs);
    gf_free(ys);
    return rc;
}

/* Copies of ex[0..n) whose features are each bucket once, in order of first occurrence (what
 * scoring adds for a model with distinct features), in *out; the features of all copies are
 * one block, (*out)[0].feats, which the caller frees with the array. */
static int distinct_examples(const struct gf_clf_example *ex, size_t n, uint32_t buckets,
                             struct gf_clf_example **out)
{
    *out = NULL;
    uint64_t *bits = gf_calloc((buckets + 63) / 64, sizeof(uint64_t));
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += ex[i].n_feats;
    struct gf_clf_example *cp = gf_mallocarray(n ? n : 1, sizeof(*cp));
    uint32_t *feats = gf_mallocarray(total ? total : 1, sizeof(uint32_t));
    if (bits == NULL || cp == NULL || feats == NULL) {
        gf_free(bits);
        gf_free(cp);
        gf_free(feats);
        return GF_ENOMEM;
    }
    uint32_t *f = feats;
    for (size_t i = 0; i < n; i++) {
        cp[i] = ex[i];
        cp[i].feats = f;
        uint32_t k = 0;
        for (uint32_t j = 0; j < ex[i].n_feats; j++) {
            uint32_t b = ex[i].feats[j];
            if (bits[b >> 6] & (1ULL << (b & 63)))
                continue;
            bits[b >> 6] |= 1ULL << (b & 63);
            f[k++] = b;
        }
        for (uint32_t j = 0; j < k; j++)
            bits[f[j] >> 6] = 0;
        cp[i].n_feats = k;
        f += k;
    }
    gf_free(bits);
    *out = cp;
    return 0;
}

static void distinct_free(struct gf_clf_example *cp)
{
    if (cp != NULL)
        gf_free(cp[0].feats);
    gf_free(cp);
}

/* The training set followed by short crops (2-12 consecutive features, which is a word or two
 * with its character n-grams) of a seeded share of its all-negative examples: real texts are
 * often that short ("hi", "why?"), training texts never are, and a bag of a few features lies
 * far from every training bag. The crops point into the examples' feature arrays. */
static int add_short_crops(uint32_t n_cat, const struct gf_clf_train_params *tp,
                           const struct gf_clf_example *train, size_t n_train,
                           struct gf_clf_example **out, size_t *n_out)
{
    *out = NULL;
    *n_out = n_train;
    if (n_train > UINT32_MAX / 2)
        return 0;  // no room for crops in the uint32 shuffle order
    struct gf_clf_example *all = gf_mallocarray(2 * n_train, sizeof(*all));
    if (all == NULL)
        return GF_ENOMEM;
    memcpy(all, train, n_train * sizeof(*all));
    size_t n = n_train;
    uint64_t rs = tp->seed ^ 0xc409c409c409ULL;
    for (size_t i = 0; i < n_train; i++) {
        const struct gf_clf_example *e = &train[i];
        bool negative = true;
        for (uint32_t c = 0; c < n_cat; c++)
            negative &= e->labels[c] == 0;
        uint64_t r = rng_next(&rs);
        if (!negative || e->n_feats < 13 ||
            (double)(r >> 11) * (1.0 / 9007199254740992.0) >= tp->short_crops)
            continue;
        uint32_t len = 2 + (uint32_t)((r >> 3) % 11);
        uint32_t off = (uint32_t)(rng_next(&rs) % (e->n_feats - len + 1));
        all[n++] = (struct gf_clf_example){.feats = e->feats + off, .n_feats = len,
                                           .labels = e->labels};
    }
    *out = all;
    *n_out = n;
    return 0;
}

/* Progress of the whole run, over every averaged head. */
struct run {
    gf_clf_progress_fn progress;
    void *ud;
    uint64_t total, done, since, t0, last;
    double loss_sum;
};

/* The SGD epochs of one trainer over train[0..n_train) in the order its seed shuffles; the
 * learning rate decays over this trainer's own steps. */
static void run_epochs(struct trainer *t, const struct gf_clf_train_params *tp, uint64_t seed,
                       const struct gf_clf_example *train, size_t n_train, uint32_t *order,
                       struct run *run)
{
    for (size_t i = 0; i < n_train; i++)
        order[i] = (uint32_t)i;
    uint64_t rs = seed;
    uint64_t total = (uint64_t)n_train * tp->epochs, done = 0;
    for (uint32_t ep = 0; ep < tp->epochs; ep++) {
        for (size_t i = n_train - 1; i > 0; i--) {  // Fisher-Yates with the seeded generator
            size_t j = (size_t)(rng_next(&rs) % (i + 1));
            uint32_t tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
        for (size_t s = 0; s < n_train; s += tp->batch) {
            uint32_t B = (uint32_t)(n_train - s < tp->batch ? n_train - s : tp->batch);
            float lr = tp->lr * (1.0f - (float)done / (float)total);
            run->loss_sum += train_batch(t, train, order + s, B, lr);
            done += B;
            run->done += B;
            run->since += B;
            uint64_t now = gf_now_ns();
            if (run->progress != NULL &&
                (now - run->last > 1000000000ULL || run->done == run->total)) {
                double rate = (double)run->done / ((double)(now - run->t0) / 1e9 + 1e-9);
                run->progress(run->ud, run->done, run->total, run->loss_sum / (double)run->since,
                              rate);
                run->loss_sum = 0;
                run->since = 0;
                run->last = now;
            }
        }
    }
}

/* Seed of the k-th of several averaged linear models: the first is the recipe's own. */
static uint64_t head_seed(uint64_t seed, uint32_t k)
{
    return seed ^ ((uint64_t)k * 0x9e3779b97f4a7c15ULL);
}

/* Adds 1/k of the linear model t as one weight per bucket and category (its rows times the
 * output layer: a linear model's logit is the pooled sum of these) to v[buckets][n_cat], and
 * its biases to bias[n_cat]. */
static void average_linear(const struct trainer *t, double k, double *v, double *bias)
{
    for (size_t r = 0; r < t->buckets; r++) {
        const float *row = t->emb + r * t->dim;
        for (uint32_t c = 0; c < t->n_cat; c++) {
            const float *w = t->w2 + (size_t)c * t->dim;
            double s = 0;
            for (uint32_t d = 0; d < t->dim; d++)
                s += (double)row[d] * w[d];
            v[r * t->n_cat + c] += s / k;
        }
    }
    for (uint32_t c = 0; c < t->n_cat; c++)
        bias[c] += t->b2[c] / k;
}

/* Writes the averaged weights v[buckets][n_cat] as a linear model of m->dim >= 2 * n_cat
 * dimensions: dimension 2c carries category c's weight quantized to int8, dimension 2c + 1 what
 * that rounding left, on a scale 1/254 as fine, so the sum of the two has about 15 bits (one
 * int8 dimension would round the many small weights of a bucket table to a few values). The
 * output layer adds the two; other dimensions are zero. */
static void export_averaged(const double *v, const double *bias, struct gf_clf_model *m,
                            uint32_t buckets)
{
    const uint32_t C = m->n_cat, D = m->dim;
    int8_t *q = (int8_t *)m->emb_q;
    float *scale = (float *)m->emb_scale;
    float *w2 = (float *)m->w2;
    memset(q, 0, (size_t)buckets * D);
    memset(scale, 0, D * sizeof(float));
    memset(w2, 0, (size_t)D * C * sizeof(float));
    for (uint32_t c = 0; c < C; c++) {
        double mx = 0, mr = 0;
        for (size_t r = 0; r < buckets; r++)
            mx = fmax(mx, fabs(v[r * C + c]));
        float s1 = (float)(mx / 127.0);
        for (size_t r = 0; r < buckets; r++) {
            long hi = s1 > 0 ? lrint(v[r * C + c] / s1) : 0;
            q[r * D + 2 * c] = (int8_t)hi;
            mr = fmax(mr, fabs(v[r * C + c] - (double)hi * s1));
        }
        float s2 = (float)(mr / 127.0);
        for (size_t r = 0; r < buckets; r++) {
            double rest = v[r * C + c] - (double)q[r * D + 2 * c] * s1;
            q[r * D + 2 * c + 1] = s2 > 0 ? (int8_t)lrint(rest / s2) : 0;
        }
        scale[2 * c] = s1;
        scale[2 * c + 1] = s2;
        w2[(size_t)(2 * c) * C + c] = 1.0f;
        w2[(size_t)(2 * c + 1) * C + c] = 1.0f;
        ((float *)m->b2)[c] = (float)bias[c];
    }
}

int gf_clf_train(uint32_t n_cat, const char *const *names, const struct gf_clf_hash_params *hp,
                 const struct gf_clf_train_params *tp, const struct gf_clf_example *train,
                 size_t n_train, const struct gf_clf_example *val, size_t n_val,
                 gf_clf_progress_fn progress, void *ud, struct gf_clf_model **out,
                 struct gf_err *err)
{
    *out = NULL;
    int rc = gf_clf_hash_params_check(hp, err);
    if (rc != 0)
        return rc;
    if (n_cat == 0 || n_cat > GF_CLF_MAX_CATEGORIES)
        return gf_err_set(err, GF_EINVAL, "categories: %u (need 1..%d)", n_cat,
                          GF_CLF_MAX_CATEGORIES);
    if (tp->dim == 0 || tp->dim > GF_CLF_MAX_DIM || tp->hidden > GF_CLF_MAX_HIDDEN ||
        tp->batch == 0 || tp->batch > 4096 || tp->epochs == 0 || !(tp->lr > 0) ||
        !(tp->max_pos_weight >= 1) || tp->pooling > GF_CLF_POOL_SQRT ||
        (tp->distinct && hp->buckets > GF_CLF_DISTINCT_MAX_BUCKETS) ||
        (tp->seeds > 1 && (tp->hidden != 0 || tp->dim < 2 * n_cat || tp->seeds > 64)))
        return gf_err_set(err, GF_EINVAL,
                          "train: need dim 1..%d, hidden <= %d, batch 1..4096, epochs >= 1, "
                          "lr > 0, max_pos_weight >= 1, a known pooling, at most %u buckets "
                          "with distinct features, seeds 1..64 only for a linear model of at "
                          "least 2 dims per category",
                          GF_CLF_MAX_DIM, GF_CLF_MAX_HIDDEN, GF_CLF_DISTINCT_MAX_BUCKETS);
    if (n_train == 0 || n_train > UINT32_MAX)
        return gf_err_set(err, GF_EINVAL, "train: no training examples");
    for (size_t i = 0; i < n_train; i++)
        for (uint32_t f = 0; f < train[i].n_feats; f++)
            if (train[i].feats[f] >= hp->buckets)
                return gf_err_set(err, GF_EINVAL, "train: example %zu: bucket out of range", i);

    // Distinct features: the examples as scoring will see them, validation too (calibration).
    struct gf_clf_example *dtrain = NULL, *dval = NULL;
    if (tp->distinct) {
        if ((rc = distinct_examples(train, n_train, hp->buckets, &dtrain)) != 0 ||
            (rc = distinct_examples(val, n_val, hp->buckets, &dval)) != 0) {
            distinct_free(dtrain);
            return gf_err_set(err, rc, "train: out of memory");
        }
        train = dtrain;
        val = dval;
    }
    struct gf_clf_example *all = NULL;
    if (tp->short_crops > 0) {
        if ((rc = add_short_crops(n_cat, tp, train, n_train, &all, &n_train)) != 0) {
            distinct_free(dtrain);
            distinct_free(dval);
            return gf_err_set(err, rc, "train: out of memory");
        }
        if (all != NULL)
            train = all;
    }
    uint32_t n_models = tp->seeds > 1 ? tp->seeds : 1;
    struct trainer t = {0};
    struct gf_clf_model *m = NULL;
    struct run run = {.progress = progress, .ud = ud,
                      .total = (uint64_t)n_train * tp->epochs * n_models, .t0 = gf_now_ns()};
    run.last = run.t0;
    double *avg = NULL, *avg_bias = NULL;
    uint32_t *order = gf_mallocarray(n_train, sizeof(uint32_t));
    if (n_models > 1) {
        avg = gf_calloc((size_t)hp->buckets * n_cat, sizeof(double));
        avg_bias = gf_calloc(n_cat, sizeof(double));
    }
    bool diverged = false;
    rc = order == NULL || (n_models > 1 && (avg == NULL || avg_bias == NULL)) ? GF_ENOMEM : 0;
    for (uint32_t k = 0; rc == 0 && k < n_models; k++) {
        uint64_t seed = head_seed(tp->seed, k);
        trainer_free(&t);  // the previous of the averaged models
        if ((rc = trainer_init(&t, n_cat, hp->buckets, tp, seed)) != 0)
            break;
        class_weights(&t, train, n_train, tp->max_pos_weight);
        run_epochs(&t, tp, seed, train, n_train, order, &run);
        if (!trainer_finite(&t)) {
            diverged = true;
            rc = GF_EINVAL;
        } else if (n_models > 1) {
            average_linear(&t, n_models, avg, avg_bias);
        }
    }
    gf_free(order);
    if (rc == 0)
        rc = gf_clf_model_alloc(n_cat, names, hp, tp->dim, tp->hidden, &m);
    if (rc == 0) {
        m->pooling = tp->pooling;
        m->distinct = tp->distinct;
        if (n_models > 1) {
            export_averaged(avg, avg_bias, m, hp->buckets);
        } else {
            export_model(&t, m);
        }
        if (n_val > 0)
            rc = calibrate(m, val, n_val);
    }
    trainer_free(&t);
    gf_free(avg);
    gf_free(avg_bias);
    gf_free(all);
    distinct_free(dtrain);
    distinct_free(dval);
    if (diverged)
        return gf_err_set(err, GF_EINVAL,
                          "train: training diverged (weights are not finite numbers); "
                          "lower lr (%g)", (double)tp->lr);
    if (rc != 0) {
        gf_clf_model_unref(m);
        return gf_err_set(err, rc, "train: out of memory");
    }
    *out = m;
    return 0;
}
