/* test_clf_stream.c — scoring a growing text (clf_stream.c): at every cut the canonical form of
 * the pieces put together is that of the whole; the score of every prefix, fed in random chunks,
 * is bit for bit the one-shot score of that prefix, through the model and through the
 * classifier interface; a long text without a cut gives GF_EAGAIN before the end and the exact
 * score at the end. Texts mix what the canonical form and the shape features treat specially:
 * spaced-out letters, leetspeak, capitals, e-mail addresses, links, invisible characters,
 * look-alike letters, whitespace runs, cut UTF-8. */
#include "classifiers/clf_int.h"

#include <math.h>

#include "tests/test.h"
#include "tests/unit/classifiers/clf_test_util.h"

static const char *const CATS[] = {"spam", "hate", "illicit"};
static const struct gf_clf_hash_params HP = {
    .buckets = 4096, .seed = 77, .word_min = 1, .word_max = 2, .char_min = 3, .char_max = 5};


/* The models streams are tested with: the mean of every occurrence; the same with a head for
 * spam that adds each bucket once and pools by the square root (as the shipped model); and a
 * model that does so itself; and the view of the second without its head, as a policy stage
 * that reads no spam scores through. */
enum variant { PLAIN, DISTINCT_HEAD, DISTINCT_MODEL, HEADLESS_VIEW, N_VARIANTS };

static struct gf_clf_model *make_model(enum variant v)
{
    struct gf_clf_model *m = NULL, *h = NULL;
    if (v == HEADLESS_VIEW) {
        struct gf_clf_model *whole = make_model(DISTINCT_HEAD);
        if (whole == NULL)
            return NULL;
        m = gf_clf_model_without_head(whole);
        gf_clf_model_unref(whole);  // the view keeps it
        return m;
    }
    if (gf_clf_model_alloc(3, CATS, &HP, 24, 8, &m) != 0)
        return NULL;
    for (size_t i = 0; i < (size_t)HP.buckets * 24; i++)
        ((int8_t *)m->emb_q)[i] = (int8_t)(next() % 255 - 127);
    for (size_t i = 0; i < 24; i++)
        ((float *)m->emb_scale)[i] = 0.01f + 0.001f * (float)i;
    for (size_t i = 0; i < 24 * 8; i++)
        ((float *)m->w1)[i] = (float)((int)(next() % 201) - 100) / 50.0f;
    for (size_t i = 0; i < 8 * 3; i++)
        ((float *)m->w2)[i] = (float)((int)(next() % 201) - 100) / 40.0f;
    if (v == DISTINCT_MODEL) {
        m->distinct = true;
        m->pooling = GF_CLF_POOL_SQRT;
    }
    if (v != DISTINCT_HEAD)
        return m;
    if (gf_clf_model_alloc(1, CATS, &HP, 8, 0, &h) != 0) {
        gf_clf_model_unref(m);
        return NULL;
    }
    for (size_t i = 0; i < (size_t)HP.buckets * 8; i++)
        ((int8_t *)h->emb_q)[i] = (int8_t)(next() % 255 - 127);
    for (size_t i = 0; i < 8; i++) {
        ((float *)h->emb_scale)[i] = 0.002f;
        ((float *)h->w2)[i] = (float)((int)(next() % 201) - 100) / 40.0f;
    }
    h->distinct = true;
    h->pooling = GF_CLF_POOL_SQRT;
    if (gf_clf_model_attach_head(m, h, NULL) != 0)
        return NULL;  // attach_head has freed h; m leaks only in a failing test
    return m;
}

static const char *const PIECES[] = {
    "hello", "World", "the", "f r e e", "m o n e y", "fr33", "m0n3y", "WINNER", "W I N N E R",
    "CLICK", "HERE", "a", "I", "x", "ab", "42", "08001234567", "someone@example.org", "@home",
    "www.example.com", "http://bit.ly/x", "$100", "\xc2\xa3" "50", "!!!", "!", "caf\xc3\xa9",
    "\xd0\xb0pple", "\xe2\x80\x8b", "w\xe2\x80\x8bin", "\xef\xbc\xa6\xef\xbc\xb2\xef\xbc\xa5\xef\xbc\xa5",
    "\xe4\xbd\xa0\xe5\xa5\xbd", "\xe2", "\x80", "l33t", "n1c3", "-", "...", "x.y.z", "ok",
};
static const char *const SEPS[] = {" ", " ", " ", "  ", "\n", "\t", "", ".", ", ", " \xe2\x80\x8b ",
                                   "\xe2\x80\x8b", "! "};

static void make_text(struct gf_buf *b, size_t words)
{
    gf_buf_reset(b);
    for (size_t i = 0; i < words; i++) {
        gf_buf_puts(b, PIECES[next() % GF_ARRAY_LEN(PIECES)]);
        gf_buf_puts(b, SEPS[next() % GF_ARRAY_LEN(SEPS)]);
    }
}

// At every cut, the canonical forms of the two pieces put together are the whole's.
static void test_cuts(void)
{
    struct gf_buf b;
    gf_buf_init(&b, 1 << 16);
    size_t cuts = 0;
    for (int rep = 0; rep < 200; rep++) {
        make_text(&b, 1 + next() % 40);
        struct gf_norm whole, a, c;
        REQUIRE(gf_normalize(b.data, b.len, &whole, NULL) == 0);
        for (size_t i = 0; i <= b.len; i++) {
            if (!gf_clf_stream_cut(b.data, b.len, i))
                continue;
            cuts++;
            REQUIRE(gf_normalize(b.data, i, &a, NULL) == 0);
            REQUIRE(gf_normalize(b.data + i, b.len - i, &c, NULL) == 0);
            CHECK(a.len + c.len == whole.len && memcmp(whole.text, a.text, a.len) == 0 &&
                  memcmp(whole.text + a.len, c.text, c.len) == 0);
            gf_norm_cleanup(&a);
            gf_norm_cleanup(&c);
        }
        gf_norm_cleanup(&whole);
    }
    CHECK(cuts > 500);  // the texts do have places to cut
    CHECK(gf_clf_stream_cut("ab c", 4, 3));
    CHECK(!gf_clf_stream_cut("a b c", 5, 4));  // "a b c" is joined: no cut inside
    CHECK(!gf_clf_stream_cut("aB c", 4, 3));   // a capital may start a shouted run
    CHECK(!gf_clf_stream_cut("ab  c", 5, 4));  // inside a whitespace run
    gf_buf_cleanup(&b);
}

static void one_shot(const struct gf_clf_model *m, const char *t, size_t n, float *out,
                     struct gf_clf_scratch *s)
{
    struct gf_norm nm;
    REQUIRE(gf_normalize(t, n, &nm, NULL) == 0);
    REQUIRE(gf_clf_model_score_canonical(m, t, n, nm.text, nm.len, out, s) == 0);
    gf_norm_cleanup(&nm);
}

// Every prefix at a chunk end scores as the one-shot prefix, bit for bit.
static void chunked(enum variant v)
{
    struct gf_clf_model *m = make_model(v);
    REQUIRE(m != NULL);
    struct gf_clf_scratch *s;
    REQUIRE(gf_clf_scratch_new(m, &s) == 0);
    struct gf_buf b;
    gf_buf_init(&b, 1 << 16);
    size_t compared = 0;
    for (int rep = 0; rep < 150; rep++) {
        make_text(&b, 1 + next() % 120);
        struct gf_clf_stream *st = gf_clf_stream_new(m);
        REQUIRE(st != NULL);
        for (size_t at = 0; at < b.len;) {
            size_t n = 1 + next() % (rep % 3 == 0 ? 4 : 64);
            at = at + n > b.len ? b.len : at + n;
            bool final = at == b.len;
            float got[3], want[3];
            REQUIRE(gf_clf_stream_score(st, b.data, at, final, got, s) == 0);
            one_shot(m, b.data, at, want, s);
            CHECK(memcmp(got, want, sizeof(got)) == 0);
            CHECK(isnan(got[0]) == (v == HEADLESS_VIEW));  // spam is the head's
            compared++;
        }
        gf_clf_stream_free(st);
        // Every call left the scratch's set of seen buckets clear (the stream's earlier text
        // is in the stream's own set).
        uint64_t any = 0;
        for (size_t i = 0; i < GF_CLF_DISTINCT_WORDS; i++)
            any |= s->seen.bits[i];
        CHECK(any == 0 && s->seen.n_log == 0 && !s->seen.full);
    }
    CHECK(compared > 1000);
    // Shorter than before is refused.
    struct gf_clf_stream *st = gf_clf_stream_new(m);
    float sc[3];
    CHECK(gf_clf_stream_score(st, "some text here", 14, false, sc, s) == 0);
    CHECK(gf_clf_stream_score(st, "some text here", 5, false, sc, s) == GF_EINVAL);
    gf_clf_stream_free(st);
    gf_buf_cleanup(&b);
    gf_clf_scratch_free(s);
    gf_clf_model_unref(m);
}

static void test_chunked(void)
{
    for (int v = 0; v < N_VARIANTS; v++)
        chunked((enum variant)v);
}

// Through the classifier interface, as the policy calls it; and a text without a cut.
static void interface(enum variant v)
{
    struct gf_clf_model *m = make_model(v);
    REQUIRE(m != NULL);
    struct gf_classifier *c = NULL;
    REQUIRE(gf_clf_model_classifier(m, &c) == 0);
    struct gf_clf_scratch *s;
    REQUIRE(gf_clf_scratch_new(m, &s) == 0);
    REQUIRE(c->ops->stream_new != NULL);
    struct gf_buf b;
    gf_buf_init(&b, 1 << 20);
    make_text(&b, 300);
    void *st = c->ops->stream_new(c);
    REQUIRE(st != NULL);
    float got[3], want[3];
    struct gf_err err = {0};
    CHECK(c->ops->stream_score(c, st, b.data, b.len / 2, false, got, &err) == 0);
    CHECK(c->ops->stream_score(c, st, b.data, b.len, true, got, &err) == 0);
    struct gf_norm nm;
    REQUIRE(gf_normalize(b.data, b.len, &nm, NULL) == 0);
    CHECK(c->ops->score(c, b.data, b.len, &nm, want, &err) == 0);
    CHECK(memcmp(got, want, sizeof(got)) == 0);
    gf_norm_cleanup(&nm);
    c->ops->stream_free(st);

    // 40 KB of capitals: nowhere to cut. Before the end GF_EAGAIN, at the end the score.
    gf_buf_reset(&b);
    for (int i = 0; i < 10000; i++)
        gf_buf_puts(&b, i % 7 ? "ABC " : "DEFG ");
    st = c->ops->stream_new(c);
    CHECK(c->ops->stream_score(c, st, b.data, 1000, false, got, &err) == 0);
    CHECK(c->ops->stream_score(c, st, b.data, b.len, false, got, &err) == GF_EAGAIN);
    CHECK(c->ops->stream_score(c, st, b.data, b.len, true, got, &err) == 0);
    one_shot(m, b.data, b.len, want, s);
    CHECK(memcmp(got, want, sizeof(got)) == 0);
    c->ops->stream_free(st);
    gf_buf_cleanup(&b);
    gf_clf_scratch_free(s);
    gf_clf_model_unref(m);
    gf_classifier_unref(c);
}

static void test_interface(void)
{
    for (int v = 0; v < N_VARIANTS; v++)
        interface((enum variant)v);
}

int main(void)
{
    RUN(test_cuts);
    RUN(test_chunked);
    RUN(test_interface);
    return test_report();
}
