/* Unit tests of classifiers/registry.c and hits.c: classifiers are found by category, a
 * category cannot be registered twice, references keep a classifier alive until the last one
 * goes, the hit list honours its cap, and OOM loops over both. */
#include "classifiers/classifiers.h"

#include "test.h"

static int destroyed;

static int fake_score(const struct gf_classifier *c, const char *text, size_t len,
                      const struct gf_norm *norm, float *scores, struct gf_err *err)
{
    (void)norm;
    (void)err;
    for (size_t i = 0; i < c->n_categories; i++)
        scores[i] = len && text[0] == 'x' ? 0.9f : 0.1f;
    return 0;
}

static void fake_destroy(struct gf_classifier *c)
{
    destroyed++;
    gf_free(c);
}

static const struct gf_classifier_ops fake_ops = {
    .name = "fake", .score = fake_score, .destroy = fake_destroy};

static struct gf_classifier *make(const char *const *cats, size_t n)
{
    struct gf_classifier *c = gf_malloc(sizeof(*c));
    if (c)
        gf_classifier_init(c, &fake_ops, cats, n, NULL);
    return c;
}

static const char *const cats_a[] = {"spam", "hate"};
static const char *const cats_b[] = {"violence", "spam"};
static const char *const cats_c[] = {"misinformation"};

static void test_registry(void)
{
    destroyed = 0;
    struct gf_clf_registry *r = gf_clf_registry_new();
    REQUIRE(r != NULL);
    struct gf_classifier *a = make(cats_a, 2), *b = make(cats_b, 2), *c = make(cats_c, 1);
    REQUIRE(a && b && c);
    struct gf_err err = {0};
    CHECK(gf_clf_registry_add(r, a, &err) == 0);
    CHECK(gf_clf_registry_add(r, b, &err) == GF_EINVAL);
    CHECK(strstr(err.msg, "'spam'") != NULL);
    CHECK(gf_clf_registry_add(r, c, NULL) == 0);
    CHECK(gf_clf_registry_count(r) == 3);
    CHECK_STREQ(gf_clf_registry_category(r, 2), "misinformation");
    CHECK(gf_clf_registry_category(r, 3) == NULL);
    const struct gf_classifier *f;
    size_t idx;
    CHECK(gf_clf_registry_find(r, "hate", &f, &idx) && f == a && idx == 1);
    CHECK(gf_clf_registry_find(r, "misinformation", &f, &idx) && f == c && idx == 0);
    CHECK(!gf_clf_registry_find(r, "violence", &f, &idx));
    float s[2];
    CHECK(f->ops->score(f, "xyz", 3, NULL, s, NULL) == 0 && s[0] > 0.5f);
    // The registry holds its own references: dropping ours keeps them alive.
    gf_classifier_unref(a);
    gf_classifier_unref(b);  // never added: destroyed now
    gf_classifier_unref(c);
    CHECK(destroyed == 1);
    struct gf_clf_registry *r2 = gf_clf_registry_ref(r);
    gf_clf_registry_unref(r);
    CHECK(destroyed == 1);
    gf_clf_registry_unref(r2);
    CHECK(destroyed == 3);
    gf_clf_registry_unref(NULL);
    gf_classifier_unref(NULL);
}

static void test_registry_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    for (long k = 1;; k++) {
        destroyed = 0;
        struct gf_classifier *a = make(cats_a, 2);
        REQUIRE(a != NULL);
        gf_alloc_fail_after(k, false);
        struct gf_clf_registry *r = gf_clf_registry_new();
        int rc = r ? gf_clf_registry_add(r, a, NULL) : GF_ENOMEM;
        long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        gf_clf_registry_unref(r);
        gf_classifier_unref(a);
        CHECK(destroyed == 1);
        if (failed == 0) {
            CHECK(rc == 0);
            break;
        }
        CHECK(rc == GF_ENOMEM);
    }
}

static void test_hits(void)
{
    struct gf_hits h;
    gf_hits_init(&h, 20);
    struct gf_hit hit = {.start = 1, .end = 2, .type = "email", .score = 1, .index = -1};
    for (int i = 0; i < 20; i++) {
        hit.start = (size_t)i;
        CHECK(gf_hits_add(&h, &hit) == 0);
    }
    CHECK(gf_hits_add(&h, &hit) == GF_ETOOBIG);
    CHECK(h.n == 20 && h.v[19].start == 19 && strcmp(h.v[0].type, "email") == 0);
    gf_hits_reset(&h);
    CHECK(h.n == 0);
    if (gf_alloc_fail_supported()) {  // memory is kept across resets
        gf_alloc_fail_after(1, true);
        CHECK(gf_hits_add(&h, &hit) == 0);
        gf_alloc_fail_after(0, false);
    }
    gf_hits_cleanup(&h);
    gf_hits_init(&h, 100);
    if (gf_alloc_fail_supported()) {
        gf_alloc_fail_after(1, false);
        CHECK(gf_hits_add(&h, &hit) == GF_ENOMEM && h.n == 0);
        gf_alloc_fail_after(0, false);
    }
    gf_hits_cleanup(&h);
}

int main(void)
{
    RUN(test_registry);
    RUN(test_registry_oom);
    RUN(test_hits);
    return test_report();
}
