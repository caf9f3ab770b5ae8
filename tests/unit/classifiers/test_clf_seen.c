/* test_clf_seen.c — the first occurrences of a head with distinct features (clf_model.c): the
 * buckets a bag marks seen, logs (in the order of their first occurrence), counts and whose
 * head rows it adds are those a plain reference finds, bucket by bucket, on random streams of
 * calls of 0 to 300 buckets full of repeats and of buckets sharing a bitmap word, into sets
 * already holding buckets (a text's earlier words), with and without a stream's earlier set
 * (base), with the set's log nearly full, through both entry points (a word's buckets and a
 * chunk of features); and the raw scores of texts equal, bit for bit, the forward pass over
 * sums taken here feature by feature, with and without the token cache, for a model of the
 * shipped shape and for the shipped model. */
#include "classifiers/clf_int.h"

#include <unistd.h>

#include "tests/test.h"
#include "tests/unit/classifiers/clf_test_util.h"

#define BUCKETS (1u << 17)
#define DIM     48
#define HDIM    8


static const char *const CATS[] = {"spam", "hate", "illicit"};

// A model of the shipped shape: 48 dimensions, every occurrence; an 8-wide head over distinct
// features. fill: 0 random rows, else every row byte is fill.
static struct gf_clf_model *make_model(int fill)
{
    const struct gf_clf_hash_params hp = {.buckets = BUCKETS, .seed = 11, .word_min = 1,
                                          .word_max = 2, .char_min = 3, .char_max = 5};
    struct gf_clf_model *m = NULL, *h = NULL;
    if (gf_clf_model_alloc(3, CATS, &hp, DIM, 16, &m) != 0)
        return NULL;
    if (gf_clf_model_alloc(1, CATS, &hp, HDIM, 4, &h) != 0) {
        gf_clf_model_unref(m);
        return NULL;
    }
    for (size_t i = 0; i < (size_t)BUCKETS * DIM; i++)
        ((int8_t *)m->emb_q)[i] = (int8_t)(fill ? fill : (int)(next() % 256) - 128);
    for (size_t i = 0; i < (size_t)BUCKETS * HDIM; i++)
        ((int8_t *)h->emb_q)[i] = (int8_t)(fill ? fill : (int)(next() % 256) - 128);
    for (size_t i = 0; i < DIM; i++)
        ((float *)m->emb_scale)[i] = 0.01f + 0.001f * (float)i;
    for (size_t i = 0; i < HDIM; i++)
        ((float *)h->emb_scale)[i] = 0.02f;
    for (size_t i = 0; i < (size_t)DIM * 16; i++)
        ((float *)m->w1)[i] = (float)((int)(next() % 201) - 100) / 50.0f;
    for (size_t i = 0; i < 16 * 3; i++)
        ((float *)m->w2)[i] = (float)((int)(next() % 201) - 100) / 40.0f;
    for (size_t i = 0; i < (size_t)HDIM * 4; i++)
        ((float *)h->w1)[i] = (float)((int)(next() % 201) - 100) / 50.0f;
    for (size_t i = 0; i < 4; i++)
        ((float *)h->w2)[i] = (float)((int)(next() % 201) - 100) / 40.0f;
    h->distinct = true;
    h->pooling = GF_CLF_POOL_SQRT;
    struct gf_err err = {0};
    if (gf_clf_model_attach_head(m, h, &err) != 0) {
        gf_clf_model_unref(m);
        return NULL;
    }
    return m;
}

// What the bag must end with, found bucket by bucket.
struct ref {
    uint8_t seen[BUCKETS];   // the text's set (not base)
    uint8_t base[BUCKETS];   // a stream's earlier set
    uint32_t log[GF_CLF_SEEN_LOG];
    size_t n_log, n_distinct;
    int64_t acc[DIM + HDIM];
};

static void ref_add(struct ref *r, const struct gf_clf_model *m, const uint32_t *buckets,
                    size_t n, bool model_rows)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t bk = buckets[i];
        if (model_rows)
            for (uint32_t d = 0; d < DIM; d++)
                r->acc[d] += m->emb_q[(size_t)bk * DIM + d];
        if (r->seen[bk] || r->base[bk])
            continue;
        r->seen[bk] = 1;
        if (r->n_log < GF_CLF_SEEN_LOG)
            r->log[r->n_log] = bk;
        r->n_log++;
        r->n_distinct++;
        for (uint32_t d = 0; d < HDIM; d++)
            r->acc[DIM + d] += m->head->emb_q[(size_t)bk * HDIM + d];
    }
}

// One call's buckets: repeats of a few, neighbours in one bitmap word, anything.
static size_t make_call(uint32_t *out, size_t max, const uint32_t *pool, size_t n_pool)
{
    size_t n = next() % 8 == 0 ? next() % (max + 1) : next() % 101;
    uint32_t word = (uint32_t)(next() % (BUCKETS / 64));
    for (size_t i = 0; i < n; i++) {
        switch (next() % 4) {
        case 0:
            out[i] = pool[next() % n_pool];
            break;
        case 1:
            out[i] = word * 64 + (uint32_t)(next() % 64);
            break;
        case 2:
            out[i] = i > 0 ? out[next() % i] : 0;
            break;
        default:
            out[i] = (uint32_t)(next() % BUCKETS);
            break;
        }
    }
    return n;
}

static void test_streams(void)
{
    struct gf_clf_model *m = make_model(0);
    REQUIRE(m != NULL);
    struct gf_clf_scratch *s = NULL;
    REQUIRE(gf_clf_scratch_new(m, &s) == 0);
    static struct ref r;
    static uint64_t base_bits[BUCKETS / 64];
    static uint32_t call[300];
    uint32_t pool[24];
    size_t n_full = 0, n_base = 0, n_long = 0;
    for (int text = 0; text < 600; text++) {
        memset(&r, 0, sizeof(r));
        memset(base_bits, 0, sizeof(base_bits));
        for (size_t i = 0; i < GF_ARRAY_LEN(pool); i++)
            pool[i] = (uint32_t)(next() % BUCKETS);
        bool with_base = text % 3 == 1;
        n_base += with_base;
        if (with_base)
            for (int i = 0; i < 400; i++) {
                uint32_t bk = i < 8 ? pool[i] : (uint32_t)(next() % BUCKETS);
                r.base[bk] = 1;
                base_bits[bk >> 6] |= 1ULL << (bk & 63);
            }
        int64_t acc[DIM + HDIM] = {0};
        struct gf_clf_bag b;
        gf_clf_bag_init(&b, m, acc, s->acc32, NULL, &s->seen, s->fresh);
        if (with_base)
            b.base = base_bits;
        // Words the text showed before: in the set and its log, so a clear finds them. Every
        // fifth text leaves the log room for a few buckets only.
        size_t pre = text % 5 == 4 ? GF_CLF_SEEN_LOG - 20 - next() % 40 : next() % 300;
        for (size_t i = 0; i < pre; i++) {
            uint32_t bk = i < 8 ? pool[8 + i] : (uint32_t)(next() % BUCKETS);
            if (r.seen[bk] || r.base[bk])
                continue;
            r.seen[bk] = 1;
            r.log[r.n_log++] = bk;
            s->seen.bits[bk >> 6] |= 1ULL << (bk & 63);
            s->seen.log[s->seen.n_log++] = bk;
        }
        size_t calls = 1 + next() % 60;
        for (size_t c = 0; c < calls; c++) {
            size_t n = make_call(call, GF_ARRAY_LEN(call), pool, GF_ARRAY_LEN(pool));
            // A word's buckets (the token cache's path) or a chunk of features, which also
            // adds the model's rows of every occurrence.
            bool chunk = next() % 3 == 0;
            if (chunk)
                gf_clf_bag_add(&b, call, n);
            else
                gf_clf_bag_add_head_distinct(&b, call, n);
            ref_add(&r, m, call, n, chunk);
        }
        gf_clf_bag_finish(&b);
        n_long += r.n_distinct > 256;
        CHECK(b.n_distinct == r.n_distinct);
        CHECK(memcmp(acc, r.acc, sizeof(acc)) == 0);
        bool bits_ok = true;
        for (uint32_t bk = 0; bk < BUCKETS; bk++)
            bits_ok &= ((s->seen.bits[bk >> 6] >> (bk & 63)) & 1) == r.seen[bk];
        CHECK(bits_ok);
        if (!s->seen.full) {
            CHECK(s->seen.n_log == r.n_log);
            CHECK(memcmp(s->seen.log, r.log, r.n_log * sizeof(uint32_t)) == 0);
        } else {
            // A call the log had no room for: the set is cleared word by word.
            n_full++;
        }
        gf_clf_seen_clear(&s->seen);
        uint64_t any = 0;
        for (size_t i = 0; i < GF_CLF_DISTINCT_WORDS; i++)
            any |= s->seen.bits[i];
        CHECK(any == 0);
    }
    CHECK(n_full > 10 && n_base > 100 && n_long > 100);
    gf_clf_scratch_free(s);
    gf_clf_model_unref(m);
}


/* A text of prose from a small vocabulary (words come back), of random words, or of random
 * bytes. */
static void make_text(struct gf_buf *b, int kind, size_t len)
{
    static const char *const words[] = {"the", "policy", "a", "gateway", "explain", "caf\xc3\xa9",
                                        "free", "prize", "winner", "call", "now", "2024",
                                        "abcdefghijklmnopq", "\xd0\xb0pple"};
    gf_buf_reset(b);
    while (b->len < len) {
        if (kind == 2) {
            gf_buf_putc(b, (char)(next() % 256));
            continue;
        }
        if (kind == 0) {
            gf_buf_puts(b, words[next() % GF_ARRAY_LEN(words)]);
        } else {
            size_t n = 1 + next() % 14;
            for (size_t i = 0; i < n; i++)
                gf_buf_putc(b, (char)('a' + next() % 26));
        }
        gf_buf_puts(b, next() % 7 == 0 ? "! " : " ");
    }
    b->len = len;
}

// The raw outputs of text through the scorer against the forward pass over the sums of the
// text's features taken here (the model's every occurrence, the head's first occurrences).
static void compare_scores(const struct gf_clf_model *m, struct gf_clf_tokcache *tc,
                           const char *text, size_t len)
{
    static struct feats f;
    static uint8_t seen[1u << 18];
    static char norm[GF_CLF_NORM_BUF];
    f.n = 0;
    // The shape of the original text, then the n-grams of its canonical form.
    size_t nf = gf_clf_text_features(&m->hash, text, len, norm, sizeof(norm), record, NULL, &f);
    REQUIRE(nf == f.n);
    const uint32_t dim = m->dim, hd = m->head->dim;
    int64_t acc[GF_CLF_MAX_DIM] = {0};
    size_t distinct = 0;
    memset(seen, 0, sizeof(seen));
    for (size_t i = 0; i < f.n; i++) {
        uint32_t bk = f.v[i];
        for (uint32_t d = 0; d < dim; d++)
            acc[d] += m->emb_q[(size_t)bk * dim + d];
        if (seen[bk])
            continue;
        seen[bk] = 1;
        distinct++;
        for (uint32_t d = 0; d < hd; d++)
            acc[dim + d] += m->head->emb_q[(size_t)bk * hd + d];
    }
    float want[GF_CLF_MAX_CATEGORIES], got[GF_CLF_MAX_CATEGORIES];
    static float x[GF_CLF_MAX_DIM], hid[GF_CLF_MAX_HIDDEN];
    gf_clf_model_forward(m, acc, f.n, distinct, x, hid, want);
    struct gf_clf_scratch *s = NULL;
    REQUIRE(gf_clf_scratch_new(m, &s) == 0);
    for (int cached = 0; cached < 2; cached++) {
        s->tc = cached ? tc : NULL;
        REQUIRE(gf_clf_model_score_raw(m, text, len, got, s) == 0);
        CHECK(memcmp(got, want, m->n_cat * sizeof(float)) == 0);
    }
    gf_clf_scratch_free(s);
}

static void test_scores(void)
{
    static struct gf_clf_tokcache tc;
    struct gf_buf b;
    gf_buf_init(&b, 1 << 16);
    struct gf_clf_model *models[3] = {make_model(0), make_model(127), NULL};
    // The shipped model when the tree has it (a file that does not load is a failure).
    struct gf_err err = {0};
    if (access(gf_clf_default_model_path(), R_OK) == 0)
        CHECK(gf_clf_model_load(gf_clf_default_model_path(), &models[2], &err) == 0);
    REQUIRE(models[0] != NULL && models[1] != NULL);
    for (size_t i = 0; i < GF_ARRAY_LEN(models); i++) {
        struct gf_clf_model *m = models[i];
        if (m == NULL)
            continue;
        REQUIRE(m->head != NULL && m->head->distinct && m->head->dim == HDIM &&
                m->bag_dim <= GF_CLF_TOK_DIM);
        for (int rep = 0; rep < 60; rep++) {
            // Every tenth text is long: more first occurrences than the set's log holds.
            size_t len = rep % 10 == 9 ? 12000 : 1 + next() % 2000;
            make_text(&b, rep % 3, len);
            compare_scores(m, &tc, b.data, b.len);
        }
        gf_clf_model_unref(m);
    }
    gf_buf_cleanup(&b);
}

int main(void)
{
    test_streams();
    test_scores();
    return test_report();
}
