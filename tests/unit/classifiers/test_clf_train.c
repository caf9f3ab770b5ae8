/* test_clf_train.c — training on a tiny synthetic set until it separates, determinism for a seed,
 * unknown labels, batch scoring equal to single scoring, a head for one category, and bad
 * parameters refused. */
#include "classifiers/clf_int.h"

#include <math.h>
#include <stdlib.h>

#include "tests/test.h"

static const char *const CATS[] = {"spam", "threat", "question"};
#define NCAT 3

// Word pools: each category has its own words; benign text uses a neutral pool.
static const char *const SPAM_W[] = {"free", "winner", "prize", "claim", "cash", "offer", "click"};
static const char *const THREAT_W[] = {"hurt", "kill", "destroy", "attack", "revenge", "burn"};
static const char *const Q_W[] = {"how", "what", "why", "when", "which", "where"};
static const char *const NEUTRAL_W[] = {"the", "weather", "garden", "river", "table", "music",
                                        "coffee", "morning", "friend", "book", "window", "road"};

static uint64_t rng = 12345;
static uint32_t next(uint32_t n)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)((rng >> 33) % n);
}

/* Two words from each positive category's pool, then neutral words: separable by words. */
static void make_text(char *out, size_t cap, const int8_t *lab)
{
    static const char *const *pools[NCAT] = {SPAM_W, THREAT_W, Q_W};
    static const size_t sizes[NCAT] = {GF_ARRAY_LEN(SPAM_W), GF_ARRAY_LEN(THREAT_W),
                                       GF_ARRAY_LEN(Q_W)};
    size_t n = 0;
    out[0] = '\0';
    for (int w = 0; w < 10; w++) {
        const char *word = NEUTRAL_W[next(GF_ARRAY_LEN(NEUTRAL_W))];
        if (w < 2 * NCAT && lab[w / 2] == 1)
            word = pools[w / 2][next((uint32_t)sizes[w / 2])];
        int k = snprintf(out + n, cap - n, "%s%s", n ? " " : "", word);
        if (k < 0 || (size_t)k >= cap - n)
            break;
        n += (size_t)k;
    }
}

#define NEX 300
static char texts[NEX][128];
static int8_t labels[NEX][NCAT];
static struct gf_clf_example ex[NEX];

static const struct gf_clf_hash_params HP = {
    .buckets = 4096, .seed = 3, .word_min = 1, .word_max = 2, .char_min = 3, .char_max = 4};

static void build_set(void)
{
    rng = 12345;
    for (int i = 0; i < NEX; i++) {
        for (int c = 0; c < NCAT; c++)
            labels[i][c] = next(3) == 0;
        make_text(texts[i], sizeof(texts[i]), labels[i]);
        ex[i].labels = labels[i];
        int rc = gf_clf_example_features(&HP, texts[i], strlen(texts[i]), 0, &ex[i].feats,
                                         &ex[i].n_feats);
        if (rc != 0)
            abort();
    }
}

static void free_set(void)
{
    for (int i = 0; i < NEX; i++) {
        gf_free(ex[i].feats);
        ex[i].feats = NULL;
    }
}

static struct gf_clf_train_params params(void)
{
    struct gf_clf_train_params tp = {.dim = 16, .hidden = 0, .epochs = 20, .batch = 8,
                                     .lr = 0.5f, .max_pos_weight = 4.0f, .seed = 99};
    return tp;
}

static int progress_calls;
static void on_progress(void *ud, uint64_t done, uint64_t total, double loss, double rate)
{
    (void)ud;
    (void)rate;
    progress_calls++;
    CHECK(done <= total);
    CHECK(loss >= 0);
}

/* Accuracy of the model on the last 100 examples (trained on the first 200). */
static double accuracy(const struct gf_clf_model *m)
{
    struct gf_clf_scratch *s;
    if (gf_clf_scratch_new(m, &s) != 0)
        return 0;
    int ok = 0, all = 0;
    for (int i = 200; i < NEX; i++) {
        float sc[NCAT];
        if (gf_clf_model_score(m, texts[i], strlen(texts[i]), sc, s) != 0)
            break;
        for (int c = 0; c < NCAT; c++) {
            ok += (sc[c] > 0.5f) == (labels[i][c] == 1);
            all++;
        }
    }
    gf_clf_scratch_free(s);
    return all ? (double)ok / all : 0;
}

static void test_separates(void)
{
    struct gf_clf_train_params tp = params();
    struct gf_clf_model *m = NULL;
    struct gf_err err = {0};
    progress_calls = 0;
    int rc = gf_clf_train(NCAT, CATS, &HP, &tp, ex, 200, ex + 200, 100, on_progress, NULL, &m,
                          &err);
    REQUIRE(rc == 0);
    CHECK(progress_calls >= 1);
    double acc = accuracy(m);
    CHECK_MSG(acc > 0.9, "accuracy %.3f", acc);
    // Calibrated scores stay probabilities, high on held-out positives, low on negatives.
    struct gf_clf_scratch *s;
    REQUIRE(gf_clf_scratch_new(m, &s) == 0);
    double pos = 0, neg = 0;
    int npos = 0, nneg = 0, inside = 1;
    for (int i = 200; i < NEX; i++) {
        float sc[NCAT];
        REQUIRE(gf_clf_model_score(m, texts[i], strlen(texts[i]), sc, s) == 0);
        for (int c = 0; c < NCAT; c++) {
            inside &= sc[c] >= 0.0f && sc[c] <= 1.0f;
            if (labels[i][c]) {
                pos += sc[c];
                npos++;
            } else {
                neg += sc[c];
                nneg++;
            }
        }
    }
    CHECK(inside);
    REQUIRE(npos > 0 && nneg > 0);
    CHECK_MSG(pos / npos > 0.8 && neg / nneg < 0.2, "mean pos %.3f neg %.3f", pos / npos,
              neg / nneg);
    gf_clf_scratch_free(s);

    const char *const *names;
    CHECK(gf_clf_model_categories(m, &names) == NCAT);
    CHECK_STREQ(names[1], "threat");
    CHECK(gf_clf_model_category_index(m, "question") == 2);
    CHECK(gf_clf_model_category_index(m, "nope") == -1);
    gf_clf_model_unref(m);
}

static void test_hidden_layer_separates(void)
{
    struct gf_clf_train_params tp = params();
    tp.hidden = 16;
    tp.lr = 0.3f;
    struct gf_clf_model *m = NULL;
    REQUIRE(gf_clf_train(NCAT, CATS, &HP, &tp, ex, 200, ex + 200, 100, NULL, NULL, &m, NULL) ==
            0);
    double acc = accuracy(m);
    CHECK_MSG(acc > 0.9, "accuracy %.3f", acc);
    gf_clf_model_unref(m);
}

static void test_sqrt_pooling_separates(void)
{
    // Rows summed and divided by the square root of their count: trains, separates, and the
    // model keeps its pooling (scoring divides the same way as training did).
    struct gf_clf_train_params tp = params();
    tp.pooling = GF_CLF_POOL_SQRT;
    tp.lr = 0.1f;
    struct gf_clf_model *m = NULL;
    REQUIRE(gf_clf_train(NCAT, CATS, &HP, &tp, ex, 200, ex + 200, 100, NULL, NULL, &m, NULL) ==
            0);
    CHECK(m->pooling == GF_CLF_POOL_SQRT);
    double acc = accuracy(m);
    CHECK_MSG(acc > 0.9, "accuracy %.3f", acc);
    // The same weights pooled by the mean score otherwise.
    float a[NCAT], b[NCAT];
    struct gf_clf_scratch *s;
    REQUIRE(gf_clf_scratch_new(m, &s) == 0);
    CHECK(gf_clf_model_score_raw(m, texts[0], strlen(texts[0]), a, s) == 0);
    m->pooling = GF_CLF_POOL_MEAN;
    CHECK(gf_clf_model_score_raw(m, texts[0], strlen(texts[0]), b, s) == 0);
    CHECK(memcmp(a, b, sizeof(a)) != 0);
    gf_clf_scratch_free(s);
    gf_clf_model_unref(m);
}

struct feats {
    uint32_t v[4096];
    size_t n;
};

static void collect(void *ud, const uint32_t *buckets, size_t n)
{
    struct feats *f = ud;
    for (size_t i = 0; i < n && f->n < GF_ARRAY_LEN(f->v); i++)
        f->v[f->n++] = buckets[i];
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The raw outputs of m for text computed here from its definition: every feature, each bucket
 * once (sorted and made unique), the rows of those buckets summed, pooled by their count. */
static void raw_by_definition(const struct gf_clf_model *m, const char *text, float *raw)
{
    static struct feats f;
    static char norm[GF_CLF_NORM_BUF];
    f.n = 0;
    size_t all = gf_clf_text_features(&m->hash, text, strlen(text), norm, sizeof(norm), collect,
                                      NULL, &f);
    REQUIRE(all == f.n);
    qsort(f.v, f.n, sizeof(uint32_t), cmp_u32);
    size_t k = 0;
    for (size_t i = 0; i < f.n; i++)
        if (k == 0 || f.v[k - 1] != f.v[i])
            f.v[k++] = f.v[i];
    int64_t acc[64] = {0};
    float x[64], hid[64];
    REQUIRE(m->dim <= 64 && m->max_hidden <= 64);
    for (size_t i = 0; i < k; i++)
        for (uint32_t d = 0; d < m->dim; d++)
            acc[d] += m->emb_q[(size_t)f.v[i] * m->dim + d];
    gf_clf_model_forward(m, acc, all, k, x, hid, raw);
}

static void test_distinct_features(void)
{
    // Each bucket once per example and text, pooled by the square root: trains, separates,
    // and scores what the definition gives, also after other texts in the same scratch (its
    // set of seen buckets is cleared after each text).
    struct gf_clf_train_params tp = params();
    tp.pooling = GF_CLF_POOL_SQRT;
    tp.distinct = true;
    tp.lr = 0.1f;
    struct gf_clf_model *m = NULL;
    REQUIRE(gf_clf_train(NCAT, CATS, &HP, &tp, ex, 200, ex + 200, 100, NULL, NULL, &m, NULL) ==
            0);
    CHECK(m->distinct && m->pooling == GF_CLF_POOL_SQRT);
    double acc = accuracy(m);
    CHECK_MSG(acc > 0.9, "accuracy %.3f", acc);
    static const char *const T[] = {"free prize free prize free prize claim the cash",
                                     "WINNER WINNER winner!!! call 0800 123 4567 now now now",
                                     "the garden the river the road", "", "x"};
    struct gf_clf_scratch *s;
    REQUIRE(gf_clf_scratch_new(m, &s) == 0);
    for (int round = 0; round < 2; round++)
        for (size_t i = 0; i < GF_ARRAY_LEN(T); i++) {
            float got[NCAT], want[NCAT];
            CHECK(gf_clf_model_score_raw(m, T[i], strlen(T[i]), got, s) == 0);
            raw_by_definition(m, T[i], want);
            CHECK_MSG(memcmp(got, want, sizeof(got)) == 0, "text %zu round %d", i, round);
        }
    // The same weights adding every occurrence score a text with repeats otherwise.
    float a[NCAT], b[NCAT];
    CHECK(gf_clf_model_score_raw(m, T[0], strlen(T[0]), a, s) == 0);
    m->distinct = false;
    CHECK(gf_clf_model_score_raw(m, T[0], strlen(T[0]), b, s) == 0);
    CHECK(memcmp(a, b, sizeof(a)) != 0);
    gf_clf_scratch_free(s);
    gf_clf_model_unref(m);
    // A bitmap of the buckets is what makes them distinct: too many buckets are refused.
    struct gf_clf_hash_params hp = HP;
    hp.buckets = GF_CLF_DISTINCT_MAX_BUCKETS + 1;
    struct gf_err err = {0};
    CHECK(gf_clf_train(NCAT, CATS, &hp, &tp, ex, 10, NULL, 0, NULL, NULL, &m, &err) ==
          GF_EINVAL);
    CHECK(strstr(err.msg, "distinct") != NULL);
    // Nor does a model of that many buckets take a head with distinct features.
    struct gf_clf_model *big = NULL, *h = NULL;
    REQUIRE(gf_clf_model_alloc(NCAT, CATS, &hp, 1, 0, &big) == 0);
    REQUIRE(gf_clf_model_alloc(1, CATS, &hp, 1, 0, &h) == 0);
    h->distinct = true;
    gf_err_clear(&err);
    CHECK(gf_clf_model_attach_head(big, h, &err) == GF_EINVAL);  // h is freed either way
    CHECK(strstr(err.msg, "distinct") != NULL && big->head == NULL);
    gf_clf_model_unref(big);
}

static void test_short_crops(void)
{
    // Short crops of negative examples are added deterministically and the model still
    // separates; a crop fraction of 0 trains exactly the plain set.
    struct gf_clf_train_params tp = params();
    tp.hidden = 16;
    tp.lr = 0.3f;
    tp.short_crops = 0.5f;
    struct gf_clf_model *a = NULL, *b = NULL;
    REQUIRE(gf_clf_train(NCAT, CATS, &HP, &tp, ex, 200, ex + 200, 100, NULL, NULL, &a, NULL) ==
            0);
    REQUIRE(gf_clf_train(NCAT, CATS, &HP, &tp, ex, 200, ex + 200, 100, NULL, NULL, &b, NULL) ==
            0);
    CHECK(memcmp(a->emb_q, b->emb_q, (size_t)HP.buckets * tp.dim) == 0);
    double acc = accuracy(a);
    CHECK_MSG(acc > 0.9, "accuracy %.3f", acc);
    tp.short_crops = 0;
    struct gf_clf_model *c = NULL;
    REQUIRE(gf_clf_train(NCAT, CATS, &HP, &tp, ex, 200, ex + 200, 100, NULL, NULL, &c, NULL) ==
            0);
    CHECK(memcmp(a->emb_q, c->emb_q, (size_t)HP.buckets * tp.dim) != 0);
    gf_clf_model_unref(a);
    gf_clf_model_unref(b);
    gf_clf_model_unref(c);
}

static void test_deterministic(void)
{
    struct gf_clf_train_params tp = params();
    tp.epochs = 3;
    struct gf_clf_model *a = NULL, *b = NULL;
    REQUIRE(gf_clf_train(NCAT, CATS, &HP, &tp, ex, 200, ex + 200, 100, NULL, NULL, &a, NULL) ==
            0);
    REQUIRE(gf_clf_train(NCAT, CATS, &HP, &tp, ex, 200, ex + 200, 100, NULL, NULL, &b, NULL) ==
            0);
    size_t n = (size_t)HP.buckets * tp.dim;
    CHECK(memcmp(a->emb_q, b->emb_q, n) == 0);
    CHECK(memcmp(a->w2, b->w2, NCAT * tp.dim * sizeof(float)) == 0);
    CHECK(memcmp(a->calib, b->calib, NCAT * sizeof(*a->calib)) == 0);
    // Another seed gives another model.
    tp.seed++;
    struct gf_clf_model *c = NULL;
    REQUIRE(gf_clf_train(NCAT, CATS, &HP, &tp, ex, 200, NULL, 0, NULL, NULL, &c, NULL) == 0);
    CHECK(memcmp(a->emb_q, c->emb_q, n) != 0);
    gf_clf_model_unref(a);
    gf_clf_model_unref(b);
    gf_clf_model_unref(c);
}

/* A linear model averaged over seeds: it separates, its logit is the mean of the logits of the
 * models trained alone with each seed (to within their int8 rounding), it carries that in two
 * dimensions per category (the others zero), and training it again gives the same bits. */
static void test_averaged_seeds(void)
{
    struct gf_clf_train_params tp = params();
    tp.seeds = 3;
    struct gf_clf_model *m = NULL, *again = NULL, *one[3] = {NULL};
    progress_calls = 0;
    REQUIRE(gf_clf_train(NCAT, CATS, &HP, &tp, ex, 200, ex + 200, 100, on_progress, NULL, &m,
                         NULL) == 0);
    CHECK(progress_calls >= 1);
    double acc = accuracy(m);
    CHECK_MSG(acc > 0.9, "accuracy %.3f", acc);
    REQUIRE(gf_clf_train(NCAT, CATS, &HP, &tp, ex, 200, ex + 200, 100, NULL, NULL, &again,
                         NULL) == 0);
    CHECK(memcmp(m->emb_q, again->emb_q, (size_t)HP.buckets * tp.dim) == 0);
    CHECK(memcmp(m->emb_scale, again->emb_scale, tp.dim * sizeof(float)) == 0);
    int zero = 1;
    for (size_t r = 0; r < HP.buckets; r++)
        for (uint32_t d = 2 * NCAT; d < tp.dim; d++)
            zero &= m->emb_q[r * tp.dim + d] == 0;
    CHECK(zero);
    // Dimension 2c is category c's weight, 2c + 1 its rounding on a finer scale; both add up.
    for (uint32_t c = 0; c < NCAT; c++) {
        CHECK(m->emb_scale[2 * c] > 0 && m->emb_scale[2 * c + 1] > 0 &&
              m->emb_scale[2 * c + 1] <= m->emb_scale[2 * c] / 250);
        for (uint32_t d = 0; d < tp.dim; d++)
            CHECK(m->w2[(size_t)d * NCAT + c] == (d / 2 == c ? 1.0f : 0.0f));
    }
    for (uint32_t k = 0; k < 3; k++) {
        struct gf_clf_train_params t1 = params();
        t1.seed = tp.seed ^ ((uint64_t)k * 0x9e3779b97f4a7c15ULL);  // the k-th model's seed
        REQUIRE(gf_clf_train(NCAT, CATS, &HP, &t1, ex, 200, NULL, 0, NULL, NULL, &one[k],
                             NULL) == 0);
    }
    struct gf_clf_scratch *s;
    REQUIRE(gf_clf_scratch_new(m, &s) == 0);
    double worst = 0;
    for (int i = 200; i < NEX; i++) {
        float avg[NCAT], each[3][NCAT];
        REQUIRE(gf_clf_model_score_raw(m, texts[i], strlen(texts[i]), avg, s) == 0);
        for (int k = 0; k < 3; k++)
            REQUIRE(gf_clf_model_score_raw(one[k], texts[i], strlen(texts[i]), each[k], s) ==
                    0);
        for (int c = 0; c < NCAT; c++) {
            double mean = (each[0][c] + each[1][c] + each[2][c]) / 3.0;
            double d = fabs(avg[c] - mean) / (1.0 + fabs(mean));
            worst = d > worst ? d : worst;
        }
    }
    CHECK_MSG(worst < 0.05, "averaged logit off the mean by %.4f (relative)", worst);
    gf_clf_scratch_free(s);
    for (int k = 0; k < 3; k++)
        gf_clf_model_unref(one[k]);
    gf_clf_model_unref(m);
    gf_clf_model_unref(again);
}

static void test_unknown_labels_masked(void)
{
    // Examples that say nothing about "question" (-1) must not teach it anything: with every
    // question label unknown its output stays at the initial sigmoid(0) = 0.5 (no calibration).
    static int8_t masked[NEX][NCAT];
    static struct gf_clf_example mex[NEX];
    for (int i = 0; i < 200; i++) {
        memcpy(masked[i], labels[i], NCAT);
        masked[i][2] = -1;
        mex[i] = ex[i];
        mex[i].labels = masked[i];
    }
    struct gf_clf_train_params tp = params();
    tp.epochs = 2;
    struct gf_clf_model *m = NULL;
    REQUIRE(gf_clf_train(NCAT, CATS, &HP, &tp, mex, 200, NULL, 0, NULL, NULL, &m, NULL) == 0);
    struct gf_clf_scratch *s;
    REQUIRE(gf_clf_scratch_new(m, &s) == 0);
    float sc[NCAT];
    REQUIRE(gf_clf_model_score(m, texts[0], strlen(texts[0]), sc, s) == 0);
    CHECK_MSG(fabsf(sc[2] - 0.5f) < 1e-6f, "masked category moved: %f", sc[2]);
    gf_clf_scratch_free(s);
    gf_clf_model_unref(m);
}

static void test_batch_equals_single(void)
{
    struct gf_clf_train_params tp = params();
    tp.epochs = 5;
    struct gf_clf_model *m = NULL;
    REQUIRE(gf_clf_train(NCAT, CATS, &HP, &tp, ex, 200, ex + 200, 100, NULL, NULL, &m, NULL) ==
            0);
    struct gf_clf_scratch *s;
    REQUIRE(gf_clf_scratch_new(m, &s) == 0);
    const char *tx[6] = {texts[1], "", texts[5], "free cash now", texts[250], texts[1]};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(tx[i]);
    float batch[6 * NCAT], one[NCAT];
    REQUIRE(gf_clf_model_score_batch(m, tx, lens, 6, batch, s) == 0);
    for (int i = 0; i < 6; i++) {
        REQUIRE(gf_clf_model_score(m, tx[i], lens[i], one, s) == 0);
        CHECK(memcmp(one, batch + i * NCAT, sizeof(one)) == 0);
    }
    // A scratch made for a smaller model is refused, not overrun.
    struct gf_clf_train_params big = params();
    big.dim = 32;
    big.epochs = 1;
    struct gf_clf_model *m2 = NULL;
    REQUIRE(gf_clf_train(NCAT, CATS, &HP, &big, ex, 20, NULL, 0, NULL, NULL, &m2, NULL) == 0);
    CHECK(gf_clf_model_score(m2, "x", 1, one, s) == GF_EINVAL);
    gf_clf_scratch_free(s);
    gf_clf_model_unref(m);
    gf_clf_model_unref(m2);
}

/* A head trained for "threat" alone (with a linear model underneath that never learnt it)
 * takes that category over: its output is the model's, batch and single scores agree, and a
 * saved and loaded copy scores the same bits. */
static void test_head(void)
{
    struct gf_clf_train_params tp = params();
    tp.epochs = 1;
    tp.lr = 0.01f;  // the model itself barely learns: the head's output must show
    struct gf_clf_model *m = NULL, *h = NULL, *l = NULL;
    REQUIRE(gf_clf_train(NCAT, CATS, &HP, &tp, ex, 200, ex + 200, 100, NULL, NULL, &m, NULL) ==
            0);
    static int8_t hl[NEX];
    static struct gf_clf_example hex[NEX];
    for (int i = 0; i < NEX; i++) {
        hl[i] = labels[i][1];
        hex[i] = (struct gf_clf_example){.feats = ex[i].feats, .n_feats = ex[i].n_feats,
                                         .labels = &hl[i]};
    }
    struct gf_clf_train_params ht = params();
    ht.dim = 4;
    ht.hidden = 3;
    ht.lr = 0.2f;
    const char *const hc[] = {"threat"};
    REQUIRE(gf_clf_train(1, hc, &HP, &ht, hex, 200, hex + 200, 100, NULL, NULL, &h, NULL) == 0);
    struct gf_clf_scratch *hs;
    REQUIRE(gf_clf_scratch_new(h, &hs) == 0);
    float hraw[1], raw[NCAT];
    REQUIRE(gf_clf_model_score_raw(h, texts[250], strlen(texts[250]), hraw, hs) == 0);
    gf_clf_scratch_free(hs);
    struct gf_err err = {0};
    REQUIRE(gf_clf_model_attach_head(m, h, &err) == 0);
    CHECK(m->bag_dim == 16 + 4 && m->max_hidden == 3);
    m->calib[1] = h->calib[0];
    struct gf_clf_scratch *s;
    REQUIRE(gf_clf_scratch_new(m, &s) == 0);
    int right = 0;
    for (int i = 200; i < NEX; i++) {
        REQUIRE(gf_clf_model_score(m, texts[i], strlen(texts[i]), raw, s) == 0);
        right += (raw[1] > 0.5f) == (labels[i][1] == 1);
    }
    CHECK_MSG(right >= 90, "%d of 100 right", right);
    REQUIRE(gf_clf_model_score_raw(m, texts[250], strlen(texts[250]), raw, s) == 0);
    CHECK(memcmp(&raw[1], hraw, sizeof(hraw)) == 0);
    const char *tx[4] = {texts[1], "", "hurt and burn", texts[250]};
    size_t lens[4];
    for (int i = 0; i < 4; i++)
        lens[i] = strlen(tx[i]);
    float batch[4 * NCAT], one[NCAT], two[NCAT];
    REQUIRE(gf_clf_model_score_batch(m, tx, lens, 4, batch, s) == 0);
    void *buf = NULL;
    size_t len = 0;
    REQUIRE(gf_clf_model_save_mem(m, &buf, &len) == 0);
    CHECK_MSG(gf_clf_model_load_mem(buf, len, &l, &err) == 0, "%s", err.msg);
    REQUIRE(l != NULL);
    CHECK(l->head != NULL && l->head_cat[0] == 1 && l->bag_dim == 20);
    for (int i = 0; i < 4; i++) {
        REQUIRE(gf_clf_model_score(m, tx[i], lens[i], one, s) == 0);
        CHECK(memcmp(one, batch + i * NCAT, sizeof(one)) == 0);
        REQUIRE(gf_clf_model_score(l, tx[i], lens[i], two, s) == 0);
        CHECK(memcmp(one, two, sizeof(one)) == 0);
    }
    // A scratch for the model without its head is too small, and refused.
    struct gf_clf_scratch *small;
    REQUIRE(gf_clf_scratch_new(l->head, &small) == 0);
    CHECK(gf_clf_model_score(l, "x", 1, one, small) == GF_EINVAL);
    gf_clf_scratch_free(small);
    gf_clf_scratch_free(s);
    gf_free(buf);
    gf_clf_model_unref(l);
    // A second head, a head for an unknown category or over other hashing is refused (and
    // freed).
    struct gf_clf_model *h2 = NULL;
    REQUIRE(gf_clf_train(1, hc, &HP, &ht, hex, 20, NULL, 0, NULL, NULL, &h2, NULL) == 0);
    CHECK(gf_clf_model_attach_head(m, h2, &err) == GF_EINVAL);
    gf_clf_model_unref(m);
    REQUIRE(gf_clf_train(NCAT, CATS, &HP, &tp, ex, 20, NULL, 0, NULL, NULL, &m, NULL) == 0);
    const char *const unknown[] = {"ham"};
    REQUIRE(gf_clf_train(1, unknown, &HP, &ht, hex, 20, NULL, 0, NULL, NULL, &h2, NULL) == 0);
    gf_err_clear(&err);
    CHECK(gf_clf_model_attach_head(m, h2, &err) == GF_EINVAL);
    CHECK(strstr(err.msg, "ham") != NULL);
    struct gf_clf_hash_params hp = HP;
    hp.seed = 4;
    REQUIRE(gf_clf_train(1, hc, &hp, &ht, hex, 20, NULL, 0, NULL, NULL, &h2, NULL) == 0);
    CHECK(gf_clf_model_attach_head(m, h2, &err) == GF_EINVAL);
    CHECK(m->head == NULL && m->bag_dim == 16);
    gf_clf_model_unref(m);
}

static void test_bad_params(void)
{
    struct gf_clf_train_params tp = params();
    struct gf_clf_model *m = (struct gf_clf_model *)1;
    struct gf_err err = {0};
    tp.dim = 0;
    CHECK(gf_clf_train(NCAT, CATS, &HP, &tp, ex, 10, NULL, 0, NULL, NULL, &m, &err) ==
          GF_EINVAL);
    CHECK(m == NULL);
    CHECK(err.msg[0] != '\0');
    tp = params();
    tp.pooling = GF_CLF_POOL_SQRT + 1;
    CHECK(gf_clf_train(NCAT, CATS, &HP, &tp, ex, 10, NULL, 0, NULL, NULL, &m, NULL) ==
          GF_EINVAL);
    tp = params();
    tp.seeds = 2;
    tp.hidden = 4;  // only linear models are averaged
    CHECK(gf_clf_train(NCAT, CATS, &HP, &tp, ex, 10, NULL, 0, NULL, NULL, &m, NULL) ==
          GF_EINVAL);
    tp.hidden = 0;
    tp.dim = 2 * NCAT - 1;  // two dimensions per category carry the average
    CHECK(gf_clf_train(NCAT, CATS, &HP, &tp, ex, 10, NULL, 0, NULL, NULL, &m, NULL) ==
          GF_EINVAL);
    tp = params();
    CHECK(gf_clf_train(NCAT, CATS, &HP, &tp, ex, 0, NULL, 0, NULL, NULL, &m, NULL) == GF_EINVAL);
    CHECK(gf_clf_train(0, CATS, &HP, &tp, ex, 10, NULL, 0, NULL, NULL, &m, NULL) == GF_EINVAL);
    struct gf_clf_hash_params hp = HP;
    hp.buckets = 16;  // the examples' buckets are past 16
    CHECK(gf_clf_train(NCAT, CATS, &hp, &tp, ex, 10, NULL, 0, NULL, NULL, &m, NULL) ==
          GF_EINVAL);
}

static void test_diverged(void)
{
    // A step size far too large drives the weights to infinity: training fails with an error
    // that names the cause instead of producing a model no loader accepts.
    struct gf_clf_train_params tp = params();
    tp.hidden = 16;
    tp.lr = 1e30f;
    struct gf_clf_model *m = (struct gf_clf_model *)1;
    struct gf_err err = {0};
    CHECK(gf_clf_train(NCAT, CATS, &HP, &tp, ex, 200, ex + 200, 100, NULL, NULL, &m, &err) ==
          GF_EINVAL);
    CHECK(m == NULL);
    CHECK_MSG(strstr(err.msg, "diverged") != NULL && strstr(err.msg, "lr") != NULL, "%s",
              err.msg);
}

static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    struct gf_clf_train_params tp = params();
    tp.epochs = 1;
    int rc = GF_ENOMEM;
    long n;
    for (n = 1; n < 200 && rc == GF_ENOMEM; n++) {
        struct gf_clf_model *m = NULL;
        gf_alloc_fail_after(n, false);
        rc = gf_clf_train(NCAT, CATS, &HP, &tp, ex, 20, ex + 20, 20, NULL, NULL, &m, NULL);
        gf_alloc_fail_after(0, false);
        CHECK(rc == 0 || rc == GF_ENOMEM);
        CHECK((rc == 0) == (m != NULL));
        gf_clf_model_unref(m);
    }
    CHECK(rc == 0);
    CHECK(n > 5);
}

int main(void)
{
    build_set();
    RUN(test_separates);
    RUN(test_hidden_layer_separates);
    RUN(test_sqrt_pooling_separates);
    RUN(test_distinct_features);
    RUN(test_short_crops);
    RUN(test_deterministic);
    RUN(test_averaged_seeds);
    RUN(test_unknown_labels_masked);
    RUN(test_batch_equals_single);
    RUN(test_head);
    RUN(test_bad_params);
    RUN(test_diverged);
    RUN(test_oom);
    free_set();
    return test_report();
}
