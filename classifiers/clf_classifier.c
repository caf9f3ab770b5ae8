/* clf_classifier.c — a trained model behind the component's classifier interface (struct
 * gf_classifier, implementation name "fasttext"), so that the registry, policies and
 * /v1/moderations reach its categories by name. The classifier holds one model reference.
 * Invariant: score allocates nothing but, once per thread, the thread's token cache; each
 * thread scores in its own thread-local scratch and token cache. */
#include "classifiers/clf_int.h"

#include <pthread.h>

// Per-thread scratch sized for the largest model any file may describe.
static _Thread_local int64_t tls_mem[(GF_CLF_SCRATCH_BYTES(GF_CLF_MAX_DIM, GF_CLF_MAX_HIDDEN) +
                                      sizeof(int64_t) - 1) / sizeof(int64_t)];

// Per-thread token cache (clf_tokcache.c): the words of one request come back in the next.
// It is megabytes, so it is made on a thread's first score rather than in the thread-local
// storage every thread gets (and zeroes) when it starts, and freed when the thread ends. It
// lies on 2 MiB pages: each word looks at a random place in it, which on 4 KiB pages is a TLB
// miss about every time (classifier alone on real text: 2-4% faster).
static _Thread_local struct gf_clf_tokcache *tls_tc;
static _Thread_local bool tls_tc_tried;  // made or failed: never allocate again
static pthread_key_t tc_key;
static pthread_once_t tc_once = PTHREAD_ONCE_INIT;
static bool tc_key_ok;

static void tc_free(void *tc)
{
    gf_free_huge(tc, sizeof(struct gf_clf_tokcache));
}

static void tc_key_init(void)
{
    tc_key_ok = pthread_key_create(&tc_key, tc_free) == 0;
}

// The thread's token cache, NULL when it could not be made (scoring goes without: same scores).
static struct gf_clf_tokcache *thread_cache(void)
{
    if (!tls_tc_tried) {
        tls_tc_tried = true;
        pthread_once(&tc_once, tc_key_init);
        // gf_malloc_huge's memory is zeroed (fresh anonymous pages): every entry empty.
        struct gf_clf_tokcache *tc = tc_key_ok ? gf_malloc_huge(sizeof(*tc)) : NULL;
        if (tc != NULL && pthread_setspecific(tc_key, tc) != 0) {
            gf_free_huge(tc, sizeof(*tc));
            tc = NULL;
        }
        tls_tc = tc;
    }
    return tls_tc;
}

static void tls_scratch(struct gf_clf_scratch *s)
{
    gf_clf_scratch_over(s, tls_mem, GF_CLF_MAX_DIM, GF_CLF_MAX_HIDDEN);
    s->tc = thread_cache();
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

// A policy stage that reads no category of the model's head scores through a view without it
// (the spam head adds each feature once per text, which costs about a third of scoring).
static struct gf_classifier *clf_narrow(const struct gf_classifier *c, const bool *want)
{
    struct gf_clf_model *m = c->impl;
    // A view without the head narrows from the whole model it was made from.
    struct gf_clf_model *whole = m->parent != NULL ? m->parent : m;
    bool head = false;
    for (size_t i = 0; i < c->n_categories; i++)
        head |= want[i] && gf_clf_model_head_category(whole, i);
    if (!head && m->parent != NULL)  // already a view
        return gf_classifier_ref((struct gf_classifier *)c);
    struct gf_clf_model *v = head ? gf_clf_model_ref(whole) : gf_clf_model_without_head(whole);
    if (v == NULL)
        return NULL;
    struct gf_classifier *out = NULL;
    if (v == m)
        out = gf_classifier_ref((struct gf_classifier *)c);
    else if (gf_clf_model_classifier(v, &out) != 0)
        out = NULL;
    gf_clf_model_unref(v);
    return out;
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
    .narrow = clf_narrow,
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
