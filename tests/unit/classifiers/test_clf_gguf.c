/* test_clf_gguf.c — the classifier file: save/load round trip (memory and disk, with and without
 * a head), and broken or hostile files refused cleanly: wrong architecture, missing or
 * mis-shaped tensors, bad category lists, bad calibration, non-finite weights, another
 * normalization version, a broken head or a head in a file of feature version 3, truncation,
 * byte flips, and allocation failures while loading. */
#include "classifiers/clf_int.h"

#include <math.h>
#include <stdio.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "tests/test.h"

static const char *const CATS[] = {"spam", "hate", "self-harm"};
static const struct gf_clf_hash_params HP = {
    .buckets = 512, .seed = 5, .word_min = 1, .word_max = 2, .char_min = 3, .char_max = 5};

/* A small model with deterministic pseudo-random weights and a calibration table. */
static struct gf_clf_model *make_model(uint32_t hidden)
{
    struct gf_clf_model *m = NULL;
    if (gf_clf_model_alloc(3, CATS, &HP, 8, hidden, &m) != 0)
        return NULL;
    uint64_t s = 77;
    int8_t *q = (int8_t *)m->emb_q;
    float *sc = (float *)m->emb_scale;
    for (size_t i = 0; i < (size_t)HP.buckets * 8; i++) {
        s = s * 6364136223846793005ULL + 1;
        q[i] = (int8_t)((s >> 33) % 255 - 127);
    }
    for (size_t i = 0; i < 8; i++)
        sc[i] = 0.01f * (float)(i % 7 + 1);
    uint32_t in = hidden ? hidden : 8;
    for (size_t i = 0; i < 3 * in; i++)
        ((float *)m->w2)[i] = (float)((int)(i % 11) - 5) * 0.3f;
    if (hidden)
        for (size_t i = 0; i < hidden * 8; i++)
            ((float *)m->w1)[i] = (float)((int)(i % 5) - 2) * 0.2f;
    m->calib[1].n = 3;
    m->calib[1].x[0] = 0.1f, m->calib[1].x[1] = 0.5f, m->calib[1].x[2] = 0.9f;
    m->calib[1].y[0] = 0.0f, m->calib[1].y[1] = 0.3f, m->calib[1].y[2] = 1.0f;
    return m;
}

/* make_model with a head for "hate" (4 dims, hidden 2) and its own calibration of hate. */
static struct gf_clf_model *make_model_head(uint32_t hidden)
{
    struct gf_clf_model *m = make_model(hidden), *h = NULL;
    const char *const hc[] = {"hate"};
    if (m == NULL || gf_clf_model_alloc(1, hc, &HP, 4, 2, &h) != 0) {
        gf_clf_model_unref(m);
        return NULL;
    }
    for (size_t i = 0; i < (size_t)HP.buckets * 4; i++)
        ((int8_t *)h->emb_q)[i] = (int8_t)((i * 37) % 251 - 125);
    for (size_t i = 0; i < 4; i++)
        ((float *)h->emb_scale)[i] = 0.02f;
    for (size_t i = 0; i < 8; i++)
        ((float *)h->w1)[i] = (float)((int)(i % 3) - 1) * 0.5f;
    ((float *)h->w2)[0] = 1.5f, ((float *)h->w2)[1] = -0.7f;
    if (gf_clf_model_attach_head(m, h, NULL) != 0) {
        gf_clf_model_unref(m);
        return NULL;
    }
    return m;
}

static const char *const TEXTS[] = {"win a free prize now", "", "I hate mondays",
                                    "Ｆｕｌｌ ｗｉｄｔｈ and z\xe2\x80\x8b" "ero width"};

/* True when a and b give bit-identical scores on TEXTS. */
static bool same_scores(const struct gf_clf_model *a, const struct gf_clf_model *b)
{
    struct gf_clf_scratch *sa, *sb;
    if (gf_clf_scratch_new(a, &sa) != 0)
        return false;
    if (gf_clf_scratch_new(b, &sb) != 0) {
        gf_clf_scratch_free(sa);
        return false;
    }
    bool same = true;
    for (size_t i = 0; i < GF_ARRAY_LEN(TEXTS); i++) {
        float x[3], y[3];
        same &= gf_clf_model_score(a, TEXTS[i], strlen(TEXTS[i]), x, sa) == 0;
        same &= gf_clf_model_score(b, TEXTS[i], strlen(TEXTS[i]), y, sb) == 0;
        same &= memcmp(x, y, sizeof(x)) == 0;
    }
    gf_clf_scratch_free(sa);
    gf_clf_scratch_free(sb);
    return same;
}

static void test_round_trip_mem(void)
{
    for (uint32_t hidden = 0; hidden <= 4; hidden += 4) {
        struct gf_clf_model *m = make_model(hidden), *l = NULL;
        REQUIRE(m != NULL);
        void *buf = NULL;
        size_t len = 0;
        REQUIRE(gf_clf_model_save_mem(m, &buf, &len) == 0);
        struct gf_err err = {0};
        int rc = gf_clf_model_load_mem(buf, len, &l, &err);
        CHECK_MSG(rc == 0, "%s", err.msg);
        if (rc == 0) {
            CHECK(l->hidden == hidden && l->dim == 8 && l->n_cat == 3);
            CHECK(memcmp(&l->hash, &HP, sizeof(HP)) == 0);
            CHECK(l->calib[1].n == 3 && l->calib[0].n == 0);
            CHECK(l->norm_version == GF_NORM_VERSION);
            const char *const *names;
            CHECK(gf_clf_model_categories(l, &names) == 3);
            CHECK_STREQ(names[2], "self-harm");
            CHECK(same_scores(m, l));
            // A ref keeps the model alive past the loader's unref.
            struct gf_clf_model *r = gf_clf_model_ref(l);
            gf_clf_model_unref(l);
            CHECK(gf_clf_model_category_index(r, "hate") == 1);
            gf_clf_model_unref(r);
        }
        gf_free(buf);
        gf_clf_model_unref(m);
    }
}

static void test_round_trip_head(void)
{
    struct gf_clf_model *m = make_model_head(4), *l = NULL;
    REQUIRE(m != NULL);
    m->head->pooling = GF_CLF_POOL_SQRT;
    m->head->distinct = true;
    void *buf = NULL;
    size_t len = 0;
    REQUIRE(gf_clf_model_save_mem(m, &buf, &len) == 0);
    struct gf_err err = {0};
    int rc = gf_clf_model_load_mem(buf, len, &l, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0) {
        CHECK(l->head != NULL && l->head->n_cat == 1 && l->head_cat[0] == 1);
        CHECK(l->pooling == GF_CLF_POOL_MEAN && l->head->pooling == GF_CLF_POOL_SQRT);
        CHECK(!l->distinct && l->head->distinct);
        CHECK(l->head->dim == 4 && l->head->hidden == 2 && l->bag_dim == 12);
        CHECK(l->max_hidden == 4 && l->calib[1].n == 3);
        CHECK(same_scores(m, l));
        // The head's output is the model's hate output.
        struct gf_clf_scratch *s, *hs;
        REQUIRE(gf_clf_scratch_new(l, &s) == 0);
        REQUIRE(gf_clf_scratch_new(l->head, &hs) == 0);
        float raw[3], hraw[1];
        CHECK(gf_clf_model_score_raw(l, TEXTS[0], strlen(TEXTS[0]), raw, s) == 0);
        CHECK(gf_clf_model_score_raw(l->head, TEXTS[0], strlen(TEXTS[0]), hraw, hs) == 0);
        CHECK(raw[1] == hraw[0]);
        gf_clf_scratch_free(s);
        gf_clf_scratch_free(hs);
    }
    gf_clf_model_unref(l);
    gf_free(buf);
    gf_clf_model_unref(m);
}

static void test_round_trip_file(void)
{
    char dir[] = "/tmp/gf_clf_test_XXXXXX";
    REQUIRE(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof(path), "%s/m.gguf", dir);
    struct gf_clf_model *m = make_model(0), *l = NULL;
    REQUIRE(m != NULL);
    struct gf_err err = {0};
    CHECK(gf_clf_model_save(m, path, &err) == 0);
    CHECK_MSG(gf_clf_model_load(path, &l, &err) == 0, "%s", err.msg);
    if (l != NULL)
        CHECK(same_scores(m, l));
    gf_clf_model_unref(l);
    gf_clf_model_unref(m);
    unlink(path);
    // A missing file is an I/O error naming the path.
    gf_err_clear(&err);
    l = (struct gf_clf_model *)1;
    CHECK(gf_clf_model_load(path, &l, &err) == GF_EIO);
    CHECK(l == NULL);
    CHECK(strstr(err.msg, "m.gguf") != NULL);
    // A directory that does not exist cannot be written to.
    char bad[300];
    snprintf(bad, sizeof(bad), "%s/nope/m.gguf", dir);
    gf_err_clear(&err);
    CHECK(gf_clf_model_save(m = make_model(0), bad, &err) == GF_EIO);
    gf_clf_model_unref(m);
    rmdir(dir);
}

/* ---- hostile files, built key by key with one thing wrong ---- */

enum mutation {
    M_NONE,
    M_ARCH,
    M_NO_ARCH,
    M_NO_CATS,
    M_ZERO_CATS,
    M_MANY_CATS,
    M_DUP_CAT,
    M_BAD_CAT_NAME,
    M_CATS_NOT_STR,
    M_NO_BUCKETS,
    M_BUCKETS_TYPE,
    M_BAD_NGRAMS,
    M_NORM_VERSION,
    M_FEATURE_VERSION_OLD,
    M_FEATURE_VERSION_NEW,
    M_FEATURE_VERSION_TYPE,
    M_DIM_ZERO,
    M_NO_EMBD,
    M_EMBD_SHAPE,
    M_EMBD_TYPE,
    M_SCALE_SHAPE,
    M_OUT_SHAPE,
    M_NAN_WEIGHT,
    M_HIDDEN_MISSING,
    M_HIDDEN_EXTRA,
    M_CALIB_LEN,
    M_CALIB_ORDER,
    M_CALIB_RANGE,
    M_CALIB_HALF,
    M_HEAD_UNKNOWN_CAT,
    M_HEAD_DUP_CAT,
    M_HEAD_CATS_NOT_STR,
    M_HEAD_NO_DIM,
    M_HEAD_DIM_BIG,
    M_HEAD_NO_EMBD,
    M_HEAD_EMBD_SHAPE,
    M_HEAD_TENSOR_ONLY,
    M_HEAD_HIDDEN_EXTRA,
    M_HEAD_NAN_WEIGHT,
    M_HEAD_IN_V3,
    M_POOLING_UNKNOWN,
    M_POOLING_TYPE,
    M_HEAD_POOLING_UNKNOWN,
    M_POOLING_IN_V4,
    M_DISTINCT_TYPE,
    M_DISTINCT_IN_V4,
    M_COUNT,
    M_V3_NO_HEAD,  // not a mutation: a file of version 3 without a head loads
    M_V4_HEAD,     // not a mutation: a file of version 4 (head, no pooling keys) loads
};

#define BUCKETS 64
#define DIM     4
#define HDIM    2

static int8_t g_embd[BUCKETS * DIM];
static float g_scale[BUCKETS], g_w2[3 * DIM], g_b2[3], g_w1[2 * DIM], g_b1[2];
static float g_hw2[2 * HDIM];

static void *build(enum mutation mu, size_t *len)
{
    struct gf_gguf_writer *w = gf_gguf_writer_new();
    if (w == NULL)
        return NULL;
    const char *arch = mu == M_ARCH ? "llama" : GF_CLF_ARCH;
    if (mu != M_NO_ARCH)
        gf_gguf_writer_add_str(w, "general.architecture", arch, strlen(arch));
    const char *cats[70];
    char names[70][8];
    size_t n_cat = 3;
    for (int i = 0; i < 70; i++) {
        snprintf(names[i], sizeof(names[i]), "c%d", i);
        cats[i] = names[i];
    }
    if (mu == M_DUP_CAT)
        cats[2] = "c0";
    if (mu == M_BAD_CAT_NAME)
        cats[1] = "Bad Name";
    if (mu == M_ZERO_CATS)
        n_cat = 0;
    if (mu == M_MANY_CATS)
        n_cat = 65;
    if (mu == M_CATS_NOT_STR) {
        uint32_t v[3] = {1, 2, 3};
        gf_gguf_writer_add_arr(w, GF_CLF_ARCH ".categories", GF_GGUF_TYPE_UINT32, v, 3);
    } else if (mu != M_NO_CATS) {
        gf_gguf_writer_add_arr_str(w, GF_CLF_ARCH ".categories", cats, NULL, n_cat);
    }
    if (mu == M_BUCKETS_TYPE)
        gf_gguf_writer_add_str(w, GF_CLF_ARCH ".hash.buckets", "64", 2);
    else if (mu != M_NO_BUCKETS)
        gf_gguf_writer_add_u32(w, GF_CLF_ARCH ".hash.buckets", BUCKETS);
    gf_gguf_writer_add_u32(w, GF_CLF_ARCH ".hash.seed", 1);
    gf_gguf_writer_add_u32(w, GF_CLF_ARCH ".hash.word_ngram_min", mu == M_BAD_NGRAMS ? 3 : 1);
    gf_gguf_writer_add_u32(w, GF_CLF_ARCH ".hash.word_ngram_max", 2);
    gf_gguf_writer_add_u32(w, GF_CLF_ARCH ".hash.char_ngram_min", 3);
    gf_gguf_writer_add_u32(w, GF_CLF_ARCH ".hash.char_ngram_max", 5);
    gf_gguf_writer_add_u32(w, GF_CLF_ARCH ".embedding_length", mu == M_DIM_ZERO ? 0 : DIM);
    uint32_t hidden = (mu == M_HIDDEN_MISSING) ? 2 : 0;
    gf_gguf_writer_add_u32(w, GF_CLF_ARCH ".hidden_length", hidden);
    gf_gguf_writer_add_u32(w, GF_CLF_ARCH ".normalization_version",
                           mu == M_NORM_VERSION ? GF_NORM_VERSION + 1 : GF_NORM_VERSION);
    // A file of feature version 1 has no key; a later version is refused as well.
    if (mu == M_FEATURE_VERSION_TYPE)
        gf_gguf_writer_add_str(w, GF_CLF_ARCH ".feature_version", "2", 1);
    else if (mu == M_HEAD_IN_V3 || mu == M_V3_NO_HEAD)
        gf_gguf_writer_add_u32(w, GF_CLF_ARCH ".feature_version", 3);
    else if (mu == M_POOLING_IN_V4 || mu == M_V4_HEAD || mu == M_DISTINCT_IN_V4)
        gf_gguf_writer_add_u32(w, GF_CLF_ARCH ".feature_version", 4);
    else if (mu != M_FEATURE_VERSION_OLD)
        gf_gguf_writer_add_u32(w, GF_CLF_ARCH ".feature_version",
                               GF_CLF_FEATURE_VERSION + (mu == M_FEATURE_VERSION_NEW));
    // Pooling (version 5): the model's by the mean, the head's by the square root; files of
    // earlier versions have no pooling keys (M_POOLING_IN_V4 has them: refused).
    bool pool_keys = mu != M_V3_NO_HEAD && mu != M_V4_HEAD && mu != M_HEAD_IN_V3 &&
                     mu != M_DISTINCT_IN_V4;
    if (mu == M_POOLING_TYPE)
        gf_gguf_writer_add_u32(w, GF_CLF_ARCH ".pooling", 1);
    else if (pool_keys)
        gf_gguf_writer_add_str(w, GF_CLF_ARCH ".pooling", mu == M_POOLING_UNKNOWN ? "max" : "mean",
                               mu == M_POOLING_UNKNOWN ? 3 : 4);
    if (pool_keys)
        gf_gguf_writer_add_str(w, GF_CLF_ARCH ".head.pooling",
                               mu == M_HEAD_POOLING_UNKNOWN ? "sqrtx" : "sqrt",
                               mu == M_HEAD_POOLING_UNKNOWN ? 5 : 4);
    // Distinct features (version 5): the head's.
    if (mu == M_DISTINCT_TYPE)
        gf_gguf_writer_add_u32(w, GF_CLF_ARCH ".head.distinct_features", 1);
    else if (pool_keys || mu == M_DISTINCT_IN_V4)
        gf_gguf_writer_add_bool(w, GF_CLF_ARCH ".head.distinct_features", true);
    // The head: for category c1, HDIM dims, no hidden layer.
    const char *hcats[2] = {mu == M_HEAD_UNKNOWN_CAT ? "zz" : "c1", "c1"};
    bool head = mu != M_V3_NO_HEAD && mu != M_HEAD_TENSOR_ONLY;
    if (head && mu == M_HEAD_CATS_NOT_STR)
        gf_gguf_writer_add_u32(w, GF_CLF_ARCH ".head.categories", 1);
    else if (head)
        gf_gguf_writer_add_arr_str(w, GF_CLF_ARCH ".head.categories", hcats, NULL,
                                   mu == M_HEAD_DUP_CAT ? 2 : 1);
    if (head && mu != M_HEAD_NO_DIM)
        gf_gguf_writer_add_u32(w, GF_CLF_ARCH ".head.embedding_length",
                               mu == M_HEAD_DIM_BIG ? GF_CLF_MAX_DIM : HDIM);
    if (head)
        gf_gguf_writer_add_u32(w, GF_CLF_ARCH ".head.hidden_length", 0);
    float cx[3] = {0.1f, 0.5f, 0.9f}, cy[3] = {0.0f, 0.4f, 1.0f};
    if (mu == M_CALIB_ORDER)
        cx[1] = 0.05f;
    if (mu == M_CALIB_RANGE)
        cy[2] = 1.5f;
    gf_gguf_writer_add_arr(w, GF_CLF_ARCH ".calibration.c0.x", GF_GGUF_TYPE_FLOAT32, cx,
                           mu == M_CALIB_LEN ? 2 : 3);
    if (mu != M_CALIB_HALF)
        gf_gguf_writer_add_arr(w, GF_CLF_ARCH ".calibration.c0.y", GF_GGUF_TYPE_FLOAT32, cy, 3);

    uint64_t ne_e[2] = {DIM, BUCKETS}, ne_s[1] = {DIM}, ne_w2[2] = {3, DIM}, ne_b2[1] = {3};
    if (mu == M_EMBD_SHAPE)
        ne_e[0] = DIM / 2, ne_e[1] = BUCKETS * 2;
    if (mu == M_OUT_SHAPE)
        ne_w2[0] = 2;
    if (mu == M_SCALE_SHAPE)
        ne_s[0] = BUCKETS;
    g_w2[5] = mu == M_NAN_WEIGHT ? NAN : 0.5f;
    if (mu == M_EMBD_TYPE)
        gf_gguf_writer_add_tensor(w, "clf.embd", GF_TYPE_I16, 2, (uint64_t[]){DIM / 2, BUCKETS},
                                  g_embd, sizeof(g_embd), false);
    else if (mu != M_NO_EMBD)
        gf_gguf_writer_add_tensor(w, "clf.embd", GF_TYPE_I8, 2, ne_e, g_embd, sizeof(g_embd),
                                  false);
    gf_gguf_writer_add_tensor(w, "clf.embd_scale", GF_TYPE_F32, 1, ne_s, g_scale,
                              ne_s[0] * sizeof(float), false);
    gf_gguf_writer_add_tensor(w, "clf.output.weight", GF_TYPE_F32, 2, ne_w2, g_w2,
                              ne_w2[0] * ne_w2[1] * sizeof(float), false);
    gf_gguf_writer_add_tensor(w, "clf.output.bias", GF_TYPE_F32, 1, ne_b2, g_b2, sizeof(g_b2),
                              false);
    if (mu == M_HIDDEN_EXTRA)
        gf_gguf_writer_add_tensor(w, "clf.hidden.weight", GF_TYPE_F32, 2,
                                  (uint64_t[]){2, DIM}, g_w1, sizeof(g_w1), false);
    (void)g_b1;
    uint64_t hb = mu == M_HEAD_EMBD_SHAPE ? BUCKETS / 2 : BUCKETS;
    uint64_t nh = mu == M_HEAD_DUP_CAT ? 2 : 1;  // outputs: as many as the head's categories
    if (mu != M_V3_NO_HEAD && mu != M_HEAD_NO_EMBD)
        gf_gguf_writer_add_tensor(w, "clf.head.embd", GF_TYPE_I8, 2, (uint64_t[]){HDIM, hb},
                                  g_embd, HDIM * hb, false);
    g_hw2[1] = mu == M_HEAD_NAN_WEIGHT ? NAN : 0.25f;
    if (mu != M_V3_NO_HEAD) {
        gf_gguf_writer_add_tensor(w, "clf.head.embd_scale", GF_TYPE_F32, 1,
                                  (uint64_t[]){HDIM}, g_scale, HDIM * sizeof(float), false);
        gf_gguf_writer_add_tensor(w, "clf.head.output.weight", GF_TYPE_F32, 2,
                                  (uint64_t[]){nh, HDIM}, g_hw2, nh * HDIM * sizeof(float),
                                  false);
        gf_gguf_writer_add_tensor(w, "clf.head.output.bias", GF_TYPE_F32, 1, (uint64_t[]){nh},
                                  g_b2, nh * sizeof(float), false);
    }
    if (mu == M_HEAD_HIDDEN_EXTRA)
        gf_gguf_writer_add_tensor(w, "clf.head.hidden.weight", GF_TYPE_F32, 2,
                                  (uint64_t[]){2, HDIM}, g_w1, 2 * HDIM * sizeof(float), false);
    void *out = NULL;
    *len = 0;
    if (gf_gguf_writer_write_mem(w, &out, len) != 0)
        out = NULL;
    gf_gguf_writer_free(w);
    return out;
}

static void test_hostile_files(void)
{
    for (int i = 0; i < DIM; i++)
        g_scale[i] = 0.01f;
    size_t len;
    void *ok = build(M_NONE, &len);
    REQUIRE(ok != NULL);
    struct gf_clf_model *m = NULL;
    struct gf_err err = {0};
    CHECK_MSG(gf_clf_model_load_mem(ok, len, &m, &err) == 0, "%s", err.msg);
    CHECK(m != NULL && m->head != NULL && m->head_cat[0] == 1);
    CHECK(m != NULL && m->pooling == GF_CLF_POOL_MEAN && m->head->pooling == GF_CLF_POOL_SQRT);
    CHECK(m != NULL && !m->distinct && m->head->distinct);
    gf_clf_model_unref(m);
    gf_free(ok);
    // Version 4 files (a head, the mean everywhere) still load.
    ok = build(M_V4_HEAD, &len);
    REQUIRE(ok != NULL);
    m = NULL;
    CHECK_MSG(gf_clf_model_load_mem(ok, len, &m, &err) == 0, "%s", err.msg);
    CHECK(m != NULL && m->head != NULL && m->head->pooling == GF_CLF_POOL_MEAN &&
          !m->head->distinct);
    gf_clf_model_unref(m);
    gf_free(ok);
    ok = build(M_V3_NO_HEAD, &len);
    REQUIRE(ok != NULL);
    m = NULL;
    CHECK_MSG(gf_clf_model_load_mem(ok, len, &m, &err) == 0, "%s", err.msg);
    CHECK(m != NULL && m->head == NULL);
    gf_clf_model_unref(m);
    gf_free(ok);
    for (int mu = M_NONE + 1; mu < M_COUNT; mu++) {
        void *p = build((enum mutation)mu, &len);
        REQUIRE(p != NULL);
        gf_err_clear(&err);
        m = (struct gf_clf_model *)1;
        int rc = gf_clf_model_load_mem(p, len, &m, &err);
        CHECK_MSG(rc == GF_EFORMAT, "mutation %d: rc %d", mu, rc);
        CHECK_MSG(m == NULL, "mutation %d", mu);
        CHECK_MSG(err.msg[0] != '\0', "mutation %d: no message", mu);
        if (rc == 0)
            gf_clf_model_unref(m);
        gf_free(p);
    }
}

static void test_truncated_and_flipped(void)
{
    struct gf_clf_model *m = make_model_head(4);
    REQUIRE(m != NULL);
    void *buf = NULL;
    size_t len = 0;
    REQUIRE(gf_clf_model_save_mem(m, &buf, &len) == 0);
    gf_clf_model_unref(m);
    // Every prefix is refused (the tensors lie past the end).
    int refused = 1;
    for (size_t n = 0; n < len; n += (n < 2048 ? 1 : 97)) {
        struct gf_clf_model *l = NULL;
        int rc = gf_clf_model_load_mem(buf, n, &l, NULL);
        refused &= rc != 0 && l == NULL;
        gf_clf_model_unref(l);
    }
    CHECK(refused);
    // Single byte flips in the header: loaded or refused, and a loaded one scores finite values
    // inside [0,1].
    unsigned char *copy = gf_malloc(len);
    REQUIRE(copy != NULL);
    int sane = 1, loaded = 0;
    for (size_t i = 0; i < 1200 && i < len; i++) {
        memcpy(copy, buf, len);
        copy[i] ^= (unsigned char)(1u << (i % 8));
        struct gf_clf_model *l = NULL;
        if (gf_clf_model_load_mem(copy, len, &l, NULL) == 0) {
            loaded++;
            struct gf_clf_scratch *s;
            if (gf_clf_scratch_new(l, &s) == 0) {
                float sc[GF_CLF_MAX_CATEGORIES];
                sane &= gf_clf_model_score(l, "hello there", 11, sc, s) == 0;
                for (uint32_t c = 0; c < l->n_cat; c++)
                    sane &= sc[c] >= 0.0f && sc[c] <= 1.0f;
                gf_clf_scratch_free(s);
            }
            gf_clf_model_unref(l);
        }
    }
    CHECK(sane);
    CHECK(loaded > 0);  // flips in tensor data or unchecked values load fine
    gf_free(copy);
    gf_free(buf);
}

static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    struct gf_clf_model *m = make_model_head(4);
    REQUIRE(m != NULL);
    void *buf = NULL;
    size_t len = 0;
    REQUIRE(gf_clf_model_save_mem(m, &buf, &len) == 0);
    int rc = GF_ENOMEM;
    long n;
    for (n = 1; n < 500 && rc != 0; n++) {
        struct gf_clf_model *l = NULL;
        gf_alloc_fail_after(n, false);
        rc = gf_clf_model_load_mem(buf, len, &l, NULL);
        gf_alloc_fail_after(0, false);
        CHECK(rc == 0 || rc == GF_ENOMEM);
        gf_clf_model_unref(l);
    }
    CHECK(rc == 0);
    // Saving under allocation failure fails cleanly too.
    rc = GF_ENOMEM;
    for (n = 1; n < 500 && rc != 0; n++) {
        void *out = NULL;
        size_t olen = 0;
        gf_alloc_fail_after(n, false);
        rc = gf_clf_model_save_mem(m, &out, &olen);
        gf_alloc_fail_after(0, false);
        CHECK_MSG(rc == 0 || rc == GF_ENOMEM, "step %ld: rc %d", n, rc);
        gf_free(out);
    }
    CHECK(rc == 0);
    gf_free(buf);
    gf_clf_model_unref(m);
}

int main(void)
{
    RUN(test_round_trip_mem);
    RUN(test_round_trip_head);
    RUN(test_round_trip_file);
    RUN(test_hostile_files);
    RUN(test_truncated_and_flipped);
    RUN(test_oom);
    return test_report();
}
