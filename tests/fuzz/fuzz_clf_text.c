/* Fuzz target of text scoring with the shipped model: any bytes score the same bits through the
 * per-thread token cache as through the plain features, and every score is in [0,1]; through
 * the view without the head (sharing the cache), the same bits but for the head's categories.
 * The cache lives across inputs, as it does across requests, so entries, the two ways of a set,
 * the marks of the distinct-feature head and the cold-text batching are all reached by what
 * earlier inputs left behind. The input is also scored as two texts (split at its first byte's
 * value), so that a word cut at the end of one text meets the cache in the next. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "classifiers/clf_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gf_clf_model *model, *view;  // view: without the head, as a policy stage scores
static struct gf_clf_scratch *scratch;
static struct gf_clf_tokcache cache;

static void setup(void)
{
    struct gf_err err = {0};
    if (gf_clf_model_load(gf_clf_default_model_path(), &model, &err) != 0 ||
        gf_clf_scratch_new(model, &scratch) != 0 ||
        (view = gf_clf_model_without_head(model)) == NULL) {
        fprintf(stderr, "fuzz_clf_text: %s: %s\n", gf_clf_default_model_path(), err.msg);
        abort();
    }
}

static void both(const char *text, size_t len)
{
    // A copy of exactly len bytes: a read past the text is a sanitizer error.
    char *t = malloc(len ? len : 1);
    if (t == NULL)
        return;
    if (len > 0)
        memcpy(t, text, len);
    float plain[GF_CLF_MAX_CATEGORIES], cached[GF_CLF_MAX_CATEGORIES];
    scratch->tc = NULL;
    if (gf_clf_model_score(model, t, len, plain, scratch) != 0)
        abort();
    scratch->tc = &cache;
    if (gf_clf_model_score(model, t, len, cached, scratch) != 0)
        abort();
    if (memcmp(plain, cached, model->n_cat * sizeof(float)) != 0)
        abort();  // the cache must not change a bit of any score
    for (uint32_t c = 0; c < model->n_cat; c++)
        if (!(plain[c] >= 0.0f && plain[c] <= 1.0f))
            abort();
    // Through the view, with the same cache (its entries may lack the head's lanes): the
    // model's bits for every category but the head's, which are unscored.
    float narrow[GF_CLF_MAX_CATEGORIES];
    if (gf_clf_model_score(view, t, len, narrow, scratch) != 0)
        abort();
    for (uint32_t c = 0; c < model->n_cat; c++)
        if (gf_clf_model_head_category(model, c) ? !isnan(narrow[c])
                                                 : memcmp(&narrow[c], &plain[c], sizeof(float)))
            abort();
    free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (model == NULL)
        setup();
    if (size > 1 << 16)
        return 0;
    both((const char *)data, size);
    if (size > 1) {
        size_t cut = 1 + data[0] % (size - 1);
        both((const char *)data + 1, cut - 1 < size - 1 ? cut - 1 : size - 1);
        both((const char *)data + cut, size - cut);
    }
    return 0;
}
