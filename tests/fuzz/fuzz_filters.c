/* Fuzz target of the example policy's filter chain on any text: the canonical form, the PII,
 * keyword and regex rules, the spam heuristics and the trained classifiers (through the views
 * each stage scores with), at both stages and in every group, whole and streamed in pieces
 * whose length the input picks. Each text lies in a buffer of its exact size, so a read past it
 * is a sanitizer error; every evaluation must succeed and every stream end with a verdict. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifiers/classifiers.h"
#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gf_policy *pol;
static struct gf_policy_ctx *ctx;

// The example policy beside the shipped model in the source tree, with that model loaded.
static void setup(void)
{
    const char *model_path = gf_clf_default_model_path();
    char path[4096];
    const char *models = strstr(model_path, "/models/");
    struct gf_err err = {0};
    struct gf_clf_model *m = NULL;
    struct gf_classifier *c = NULL;
    struct gf_clf_registry *reg = gf_clf_registry_new();
    if (models == NULL || (size_t)(models - model_path) + 32 > sizeof(path) || reg == NULL ||
        gf_clf_model_load(model_path, &m, &err) != 0 || gf_clf_model_classifier(m, &c) != 0 ||
        gf_clf_registry_add(reg, c, &err) != 0) {
        fprintf(stderr, "fuzz_filters: cannot load %s: %s\n", model_path, err.msg);
        abort();
    }
    snprintf(path, sizeof(path), "%.*s/examples/policy.json", (int)(models - model_path),
             model_path);
    if (gf_policy_load(path, reg, &pol, &err) != 0 || (ctx = gf_policy_ctx_new()) == NULL) {
        fprintf(stderr, "fuzz_filters: %s: %s\n", path, err.msg);
        abort();
    }
    gf_classifier_unref(c);
    gf_clf_model_unref(m);
    gf_clf_registry_unref(reg);
}

static void whole(const char *group, enum gf_stage st, const char *t, size_t n)
{
    struct gf_verdict v;
    struct gf_err err = {0};
    if (gf_policy_eval(pol, ctx, group, st, t, n, &v, &err) != 0) {
        fprintf(stderr, "fuzz_filters: evaluation failed: %s\n", err.msg);
        abort();
    }
    gf_verdict_cleanup(&v);
}

static void streamed(const char *group, const char *t, size_t n, size_t piece)
{
    struct gf_stream *s = NULL;
    struct gf_buf out;
    gf_buf_init(&out, 1 << 20);
    struct gf_err err = {0};
    if (gf_stream_new(pol, group, 0, 1 << 20, &s, &err) != 0 || gf_stream_verdict(s) == NULL)
        abort();
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < n; k += piece)
        rc = gf_stream_feed(s, t + k, n - k < piece ? n - k : piece, &out, &err);
    if (rc == 0)
        rc = gf_stream_finish(s, &out, &err);
    if (rc != 0 && rc != GF_EPOLICY) {  // blocked is an answer; anything else is not
        fprintf(stderr, "fuzz_filters: stream failed: %s\n", err.msg);
        abort();
    }
    gf_stream_free(s);
    gf_buf_cleanup(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (pol == NULL)
        setup();
    if (size > 1 << 16)
        return 0;
    char *t = malloc(size ? size : 1);
    if (t == NULL)
        return 0;
    if (size > 0)
        memcpy(t, data, size);
    static const char *const groups[] = {"default", "strict", "internal"};
    const char *group = groups[size > 0 ? data[0] % 3 : 0];
    whole(group, GF_STAGE_INPUT, t, size);
    whole(group, GF_STAGE_OUTPUT, t, size);
    streamed(group, t, size, 1 + (size > 1 ? data[1] % 64 : 0));
    free(t);
    return 0;
}
