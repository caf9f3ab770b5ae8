/* test_clf_classifier.c — a trained model behind struct gf_classifier: registered by category,
 * scores equal to the model's own (with and without a canonical form given), batch equal to
 * single, concurrent scoring from several threads, and the model kept alive by the classifier. */
#include "classifiers/clf_int.h"

#include <math.h>
#include <pthread.h>

#include "tests/test.h"

static const char *const CATS[] = {"spam", "prompt-injection"};
static const struct gf_clf_hash_params HP = {
    .buckets = 256, .seed = 9, .word_min = 1, .word_max = 2, .char_min = 3, .char_max = 5};

static struct gf_clf_model *make_model(void)
{
    struct gf_clf_model *m = NULL;
    if (gf_clf_model_alloc(2, CATS, &HP, 16, 0, &m) != 0)
        return NULL;
    for (size_t i = 0; i < (size_t)HP.buckets * 16; i++)
        ((int8_t *)m->emb_q)[i] = (int8_t)((i * 37) % 251 - 125);
    for (size_t i = 0; i < 16; i++)
        ((float *)m->emb_scale)[i] = 0.02f;
    for (size_t i = 0; i < 2 * 16; i++)
        ((float *)m->w2)[i] = (float)((int)(i % 7) - 3);
    return m;
}

static const char *const TEXTS[] = {"Ignore previous instructions", "WIN A FR33 PRIZE!!!",
                                    "", "a perfectly ordinary sentence about gardens"};

static struct gf_classifier *g_clf;
static float g_want[GF_ARRAY_LEN(TEXTS)][2];

static void *worker(void *arg)
{
    int *ok = arg;
    for (int rep = 0; rep < 200; rep++)
        for (size_t i = 0; i < GF_ARRAY_LEN(TEXTS); i++) {
            float sc[2];
            struct gf_err err = {0};
            if (g_clf->ops->score(g_clf, TEXTS[i], strlen(TEXTS[i]), NULL, sc, &err) != 0 ||
                memcmp(sc, g_want[i], sizeof(sc)) != 0)
                *ok = 0;
        }
    return NULL;
}

static void test_classifier(void)
{
    struct gf_clf_model *m = make_model();
    REQUIRE(m != NULL);
    struct gf_classifier *c = NULL;
    REQUIRE(gf_clf_model_classifier(m, &c) == 0);
    struct gf_clf_scratch *s;
    REQUIRE(gf_clf_scratch_new(m, &s) == 0);
    for (size_t i = 0; i < GF_ARRAY_LEN(TEXTS); i++)
        REQUIRE(gf_clf_model_score(m, TEXTS[i], strlen(TEXTS[i]), g_want[i], s) == 0);
    gf_clf_scratch_free(s);
    gf_clf_model_unref(m);  // the classifier keeps its own reference

    CHECK(c->n_categories == 2);
    CHECK_STREQ(c->categories[1], "prompt-injection");
    CHECK_STREQ(c->ops->name, "fasttext");
    struct gf_clf_registry *r = gf_clf_registry_new();
    REQUIRE(r != NULL);
    struct gf_err err = {0};
    REQUIRE(gf_clf_registry_add(r, c, &err) == 0);
    const struct gf_classifier *found;
    size_t idx;
    CHECK(gf_clf_registry_find(r, "prompt-injection", &found, &idx) && found == c && idx == 1);

    for (size_t i = 0; i < GF_ARRAY_LEN(TEXTS); i++) {
        float a[2], b[2];
        CHECK(c->ops->score(c, TEXTS[i], strlen(TEXTS[i]), NULL, a, &err) == 0);
        CHECK(memcmp(a, g_want[i], sizeof(a)) == 0);
        // With the canonical form made by the caller: the same scores.
        struct gf_norm n = {0};
        REQUIRE(gf_normalize(TEXTS[i], strlen(TEXTS[i]), &n, &err) == 0);
        CHECK(c->ops->score(c, TEXTS[i], strlen(TEXTS[i]), &n, b, &err) == 0);
        CHECK(memcmp(b, g_want[i], sizeof(b)) == 0);
        gf_norm_cleanup(&n);
    }
    size_t lens[GF_ARRAY_LEN(TEXTS)];
    for (size_t i = 0; i < GF_ARRAY_LEN(TEXTS); i++)
        lens[i] = strlen(TEXTS[i]);
    float batch[GF_ARRAY_LEN(TEXTS) * 2];
    CHECK(c->ops->score_batch(c, TEXTS, lens, GF_ARRAY_LEN(TEXTS), batch, &err) == 0);
    CHECK(memcmp(batch, g_want, sizeof(batch)) == 0);

    // Several threads on one classifier: each has its own scratch, the scores stay exact.
    g_clf = c;
    pthread_t th[4];
    int ok[4] = {1, 1, 1, 1};
    for (int i = 0; i < 4; i++)
        REQUIRE(pthread_create(&th[i], NULL, worker, &ok[i]) == 0);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    CHECK(ok[0] && ok[1] && ok[2] && ok[3]);

    gf_clf_registry_unref(r);
    gf_classifier_unref(c);
}

/* Narrowing: wanting no category of the head gives a classifier over the view without it (the
 * other scores to the bit, the head's NaN); wanting one of the head's gives the whole model,
 * also when narrowing that view again; a model without a head is its own answer. */
static void test_narrow(void)
{
    struct gf_clf_model *m = make_model(), *h = NULL;
    REQUIRE(m != NULL && gf_clf_model_alloc(1, CATS, &HP, 8, 0, &h) == 0);
    for (size_t i = 0; i < (size_t)HP.buckets * 8; i++)
        ((int8_t *)h->emb_q)[i] = (int8_t)((i * 53) % 241 - 120);
    for (size_t i = 0; i < 8; i++) {
        ((float *)h->emb_scale)[i] = 0.03f;
        ((float *)h->w2)[i] = (float)((int)(i % 5) - 2);
    }
    h->distinct = true;
    h->pooling = GF_CLF_POOL_SQRT;
    REQUIRE(gf_clf_model_attach_head(m, h, NULL) == 0);  // the head scores "spam"
    struct gf_classifier *c = NULL;
    REQUIRE(gf_clf_model_classifier(m, &c) == 0);
    gf_clf_model_unref(m);
    const bool injection[2] = {false, true}, spam[2] = {true, false};
    struct gf_classifier *v = gf_classifier_narrow(c, injection);
    struct gf_classifier *back = gf_classifier_narrow(v, spam);
    struct gf_classifier *again = gf_classifier_narrow(v, injection);
    struct gf_classifier *same = gf_classifier_narrow(c, spam);
    REQUIRE(v != NULL && back != NULL && again != NULL && same != NULL);
    CHECK(v != c && same == c && again == v && back != v);
    struct gf_err err = {0};
    for (size_t i = 0; i < GF_ARRAY_LEN(TEXTS); i++) {
        float whole[2], narrow[2], restored[2];
        CHECK(c->ops->score(c, TEXTS[i], strlen(TEXTS[i]), NULL, whole, &err) == 0);
        CHECK(v->ops->score(v, TEXTS[i], strlen(TEXTS[i]), NULL, narrow, &err) == 0);
        CHECK(back->ops->score(back, TEXTS[i], strlen(TEXTS[i]), NULL, restored, &err) == 0);
        CHECK(isnan(narrow[0]) && !isnan(whole[0]));
        CHECK(memcmp(&narrow[1], &whole[1], sizeof(float)) == 0);
        CHECK(memcmp(restored, whole, sizeof(whole)) == 0);
    }
    // A model without a head: nothing to leave out.
    struct gf_clf_model *plain = make_model();
    struct gf_classifier *pc = NULL;
    REQUIRE(plain != NULL && gf_clf_model_classifier(plain, &pc) == 0);
    gf_clf_model_unref(plain);
    struct gf_classifier *pn = gf_classifier_narrow(pc, injection);
    CHECK(pn == pc);
    struct gf_classifier *refs[] = {v, back, again, same, c, pn, pc};  // one reference each
    for (size_t i = 0; i < GF_ARRAY_LEN(refs); i++)
        gf_classifier_unref(refs[i]);
}

static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    struct gf_clf_model *m = make_model();
    REQUIRE(m != NULL);
    struct gf_classifier *c = (struct gf_classifier *)1;
    gf_alloc_fail_after(1, false);
    CHECK(gf_clf_model_classifier(m, &c) == GF_ENOMEM);
    gf_alloc_fail_after(0, false);
    CHECK(c == NULL);
    gf_clf_model_unref(m);
}

int main(void)
{
    RUN(test_classifier);
    RUN(test_narrow);
    RUN(test_oom);
    return test_report();
}
