/* clf_classifier.c — a trained model behind the component's classifier interface (struct
 * gf_classifier, implementation name "fasttext"), so that the registry, policies and
 * /v1/moderations reach its categories by name. The classifier holds one model reference.
 * Invariant: score allocates nothing; each thread scores in its own thread-local scratch and
 * token cache. */
#include "classifiers/clf_int.h"

// Per-thread scratch sized for the largest model any file may describe.
static _Thread_local int64_t tls_mem[(GF_CLF_SCRATCH_BYTES(GF_CLF_MAX_DIM, GF_CLF_MAX_HIDDEN) +
                                      sizeof(int64_t) - 1) / sizeof(int64_t)];

// Per-thread token cache (clf_tokcache.c): the words of one request come back in the next.
static _Thread_local struct gf_clf_tokcache tls_tc;

static void tls_scratch(struct gf_clf_scratch *s)
{
    gf_clf_scratch_over(s, tls_mem, GF_CLF_MAX_DIM, GF_CLF_MAX_HIDDEN);
    s->tc = &tls_tc;
}

static int clf_score(const struct gf_classifier *c, const char *text, size_t len,
                     const struct gf_norm *norm, float *scores, struct gf_err *err)
{
    const struct gf_clf_model *m = c->impl;
    struct gf_clf_scratch s;
    tls_scratch(&s);
    int rc = norm != NULL ? gf_clf_model_score_canonical(m, text, len, norm->text, norm->len,
                                                           scores, &s)
                          : gf_clf_model_score(m, text, len, scores, &s);
    if (rc != 0)
        return gf_err_set(err, rc, "classifier: scoring failed (%s)", gf_strerror(rc));
    return 0;
}

static int clf_score_batch(const struct gf_classifier *c, const char *const *texts,
                           const size_t *lens, size_t n, float *scores, struct gf_err *err)
{
    struct gf_clf_scratch s;
    tls_scratch(&s);
    int rc = gf_clf_model_score_batch(c->impl, texts, lens, n, scores, &s);
    if (rc != 0)
        return gf_err_set(err, rc, "classifier: scoring failed (%s)", gf_strerror(rc));
    return 0;
}

static void *clf_stream_new(const struct gf_classifier *c)
{
    return gf_clf_stream_new(c->impl);
}

static int clf_stream_score(const struct gf_classifier *c, void *state, const char *text,
                            size_t len, bool final, float *scores, struct gf_err *err)
{
    (void)c;
    struct gf_clf_scratch s;
    tls_scratch(&s);
    int rc = gf_clf_stream_score(state, text, len, final, scores, &s);
    if (rc != 0 && rc != GF_EAGAIN)
        return gf_err_set(err, rc, "classifier: scoring failed (%s)", gf_strerror(rc));
    return rc;
}

static void clf_stream_free(void *state)
{
    gf_clf_stream_free(state);
}

static void clf_destroy(struct gf_classifier *c)
{
    gf_clf_model_unref(c->impl);
    gf_free(c);
}

static const struct gf_classifier_ops clf_ops = {
    .name = "fasttext",
    .score = clf_score,
    .score_batch = clf_score_batch,
    .destroy = clf_destroy,
    .stream_new = clf_stream_new,
    .stream_score = clf_stream_score,
    .stream_free = clf_stream_free,
};

int gf_clf_model_classifier(struct gf_clf_model *m, struct gf_classifier **out)
{
    *out = NULL;
    struct gf_classifier *c = gf_calloc(1, sizeof(*c));
    if (c == NULL)
        return GF_ENOMEM;
    const char *const *names;
    size_t n = gf_clf_model_categories(m, &names);
    gf_classifier_init(c, &clf_ops, names, n, gf_clf_model_ref(m));
    *out = c;
    return 0;
}
