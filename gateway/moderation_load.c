/* moderation_load.c — loading what the content policy needs: the classifier registry (the
 * trained model file, when there is one) and the policy file or the built-in default. Shared by
 * `serve`, `policy` and `classify` so that all three judge a text the same way. */
#include "gateway/gateway.h"

#include <string.h>
#include <unistd.h>

#include "classifiers/classifiers.h"
#include "policy/policy.h"

int gf_moderation_load_classifiers(const char *model, struct gf_clf_registry **out,
                                   struct gf_err *err)
{
    *out = gf_clf_registry_new();
    if (*out == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    if (model != NULL && (model[0] == '\0' || strcmp(model, "none") == 0))
        return 0;  // no trained model at all
    bool explicit = model != NULL;
    const char *path = explicit ? model : gf_clf_default_model_path();
    if (!explicit && access(path, R_OK) != 0) {
        gf_log(GF_LOG_DEBUG, "policy", "event=no_classifier_model path=%s", path);
        return 0;
    }
    struct gf_clf_model *m = NULL;
    struct gf_classifier *c = NULL;
    int rc = gf_clf_model_load(path, &m, err);
    if (rc == 0 && (rc = gf_clf_model_classifier(m, &c)) != 0)
        gf_err_set(err, rc, "%s: cannot make a classifier of it", path);
    if (rc == 0)
        rc = gf_clf_registry_add(*out, c, err);
    gf_classifier_unref(c);
    gf_clf_model_unref(m);
    if (rc != 0) {
        gf_clf_registry_unref(*out);
        *out = NULL;
        return rc;
    }
    gf_log(GF_LOG_INFO, "policy", "event=classifiers_loaded path=%s categories=%zu", path,
           gf_clf_registry_count(*out));
    return 0;
}

int gf_moderation_load_policy(const char *file, struct gf_clf_registry *reg,
                              struct gf_policy **out, struct gf_err *err)
{
    if (file == NULL || file[0] == '\0')
        return gf_policy_load_default(reg, out, err);
    return gf_policy_load(file, reg, out, err);
}
