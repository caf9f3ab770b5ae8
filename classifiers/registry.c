/* registry.c — reference counting of classifiers and the registry that finds the classifier
 * scoring a category. A registry is filled once (at start or reload), then only read, from any
 * thread; its references keep the classifiers alive while a policy that uses them lives. */
#include "classifiers/classifiers.h"

#include <string.h>

struct entry {
    const char *category;  // borrowed from the classifier, which the registry keeps alive
    struct gf_classifier *clf;
    size_t index;
};

struct gf_clf_registry {
    atomic_int refs;
    struct entry *v;
    size_t n;
    struct gf_classifier **owned;  // one reference per distinct classifier added
    size_t n_owned;
};

void gf_classifier_init(struct gf_classifier *c, const struct gf_classifier_ops *ops,
                        const char *const *categories, size_t n_categories, void *impl)
{
    c->ops = ops;
    c->categories = categories;
    c->n_categories = n_categories;
    c->impl = impl;
    atomic_init(&c->refs, 1);
}

struct gf_classifier *gf_classifier_ref(struct gf_classifier *c)
{
    if (c)
        atomic_fetch_add(&c->refs, 1);
    return c;
}

void gf_classifier_unref(struct gf_classifier *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1)
        c->ops->destroy(c);
}

struct gf_classifier *gf_classifier_narrow(const struct gf_classifier *c, const bool *want)
{
    if (c->ops->narrow != NULL)
        return c->ops->narrow(c, want);
    // Classifiers are immutable but for their reference count.
    return gf_classifier_ref((struct gf_classifier *)c);
}

struct gf_clf_registry *gf_clf_registry_new(void)
{
    struct gf_clf_registry *r = gf_calloc(1, sizeof(*r));
    if (r)
        atomic_init(&r->refs, 1);
    return r;
}

int gf_clf_registry_add(struct gf_clf_registry *r, struct gf_classifier *c, struct gf_err *err)
{
    for (size_t i = 0; i < c->n_categories; i++) {
        const struct gf_classifier *dup;
        size_t idx;
        if (gf_clf_registry_find(r, c->categories[i], &dup, &idx))
            return gf_err_set(err, GF_EINVAL, "category '%s' is already provided by '%s'",
                              c->categories[i], dup->ops->name);
    }
    struct entry *v = gf_realloc(r->v, (r->n + c->n_categories + 1) * sizeof(*v));
    if (v == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory adding a classifier");
    r->v = v;
    struct gf_classifier **o = gf_realloc(r->owned, (r->n_owned + 1) * sizeof(*o));
    if (o == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory adding a classifier");
    r->owned = o;
    r->owned[r->n_owned++] = gf_classifier_ref(c);
    for (size_t i = 0; i < c->n_categories; i++)
        r->v[r->n++] = (struct entry){c->categories[i], c, i};
    return 0;
}

bool gf_clf_registry_find(const struct gf_clf_registry *r, const char *category,
                          const struct gf_classifier **c, size_t *index)
{
    for (size_t i = 0; r && i < r->n; i++) {
        if (strcmp(r->v[i].category, category) == 0) {
            *c = r->v[i].clf;
            *index = r->v[i].index;
            return true;
        }
    }
    return false;
}

size_t gf_clf_registry_count(const struct gf_clf_registry *r)
{
    return r ? r->n : 0;
}

const char *gf_clf_registry_category(const struct gf_clf_registry *r, size_t i)
{
    return r && i < r->n ? r->v[i].category : NULL;
}

struct gf_clf_registry *gf_clf_registry_ref(struct gf_clf_registry *r)
{
    if (r)
        atomic_fetch_add(&r->refs, 1);
    return r;
}

void gf_clf_registry_unref(struct gf_clf_registry *r)
{
    if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    for (size_t i = 0; i < r->n_owned; i++)
        gf_classifier_unref(r->owned[i]);
    gf_free(r->owned);
    gf_free(r->v);
    gf_free(r);
}
