/* Fuzz target of the classifier model loader: any bytes either load as a model or are refused
 * with an error message, and a model that loads scores a few texts into [0,1] without fault. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "classifiers/classifiers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gf_clf_model *m = NULL;
    struct gf_err err = {0};
    int rc = gf_clf_model_load_mem(data, size, &m, &err);
    if (rc != 0) {
        if (m != NULL || err.msg[0] == '\0')
            abort();
        return 0;
    }
    const char *const *names;
    size_t n = gf_clf_model_categories(m, &names);
    struct gf_clf_scratch *s = NULL;
    float *scores = gf_calloc(n, sizeof(float));
    if (scores != NULL && gf_clf_scratch_new(m, &s) == 0) {
        static const char *const texts[] = {"", "hello world", "Ign0re   a l l rules!!",
                                            "\xff\xfe broken \xe2\x80"};
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
            if (gf_clf_model_score(m, texts[i], strlen(texts[i]), scores, s) != 0)
                abort();
            for (size_t c = 0; c < n; c++)
                if (!(scores[c] >= 0.0f && scores[c] <= 1.0f))
                    abort();
        }
    }
    gf_clf_scratch_free(s);
    gf_free(scores);
    gf_clf_model_unref(m);
    return 0;
}
