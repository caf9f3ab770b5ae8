/* fake_clf.h — a deterministic stand-in classifier for policy tests: each category scores
 * 0.95 when the canonical text contains "<category>!" and 0.05 otherwise. */
#ifndef GF_FAKE_CLF_H
#define GF_FAKE_CLF_H

#include <stdio.h>
#include <string.h>

#include "classifiers/classifiers.h"

static const char *const fake_cats[] = {"misinformation", "hate", "spam"};

static int fake_score(const struct gf_classifier *c, const char *text, size_t len,
                      const struct gf_norm *norm, float *scores, struct gf_err *err)
{
    (void)err;
    (void)len;
    const char *t = norm ? norm->text : text;
    for (size_t i = 0; i < c->n_categories; i++) {
        char key[64];
        snprintf(key, sizeof(key), "%s!", c->categories[i]);
        scores[i] = strstr(t, key) ? 0.95f : 0.05f;
    }
    return 0;
}

static void fake_destroy(struct gf_classifier *c)
{
    gf_free(c);
}

static const struct gf_classifier_ops fake_ops = {
    .name = "fake", .score = fake_score, .destroy = fake_destroy};

/* A registry holding the fake classifier; NULL when out of memory. */
static GF_UNUSED struct gf_clf_registry *fake_registry(void)
{
    struct gf_clf_registry *r = gf_clf_registry_new();
    struct gf_classifier *c = gf_malloc(sizeof(*c));
    if (r == NULL || c == NULL) {
        gf_free(c);
        gf_clf_registry_unref(r);
        return NULL;
    }
    gf_classifier_init(c, &fake_ops, fake_cats, 3, NULL);
    int rc = gf_clf_registry_add(r, c, NULL);
    gf_classifier_unref(c);
    if (rc != 0) {
        gf_clf_registry_unref(r);
        return NULL;
    }
    return r;
}

#endif
