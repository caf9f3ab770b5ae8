/* classifiers.h — the classifiers component: detectors and trained models.
 *
 * (The detector interface and the normalizer land with the policy work; this file holds the
 * trained models section until then, and it stays additive.) */
#ifndef GF_CLASSIFIERS_H
#define GF_CLASSIFIERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* ---- trained models (classifiers/clf_*.c) ------------------------------------------------
 *
 * A multi-label text classifier in the fastText style: hashed word and character n-grams of the
 * normalized text, an embedding bag, an optional hidden layer and one calibrated sigmoid per
 * category ("spam", "hate", "harassment", "violence", "sexual", "self-harm", "illicit",
 * "misinformation", "prompt-injection" in the shipped model). Models are GGUF files with
 * general.architecture = "gardefou-classifier" (format in docs/classifiers.md).
 *
 * A model is immutable and refcounted: load it once, share it between threads, take a ref per
 * user (a policy snapshot, an in-flight request) and drop it with unref. Scoring never allocates:
 * each thread owns a scratch (gf_clf_scratch_new) and passes it to every call. */

struct gf_clf_model;
struct gf_clf_scratch;

/* Loads a model file. On success *out holds a model with refcount 1 and returns 0; otherwise
 * returns GF_EIO (cannot read), GF_EFORMAT (not a valid classifier file: wrong architecture,
 * missing or mis-shaped tensor, bad category list, bad calibration; err says which) or
 * GF_ENOMEM, and *out is NULL. */
int gf_clf_model_load(const char *path, struct gf_clf_model **out, struct gf_err *err);
/* The same over a buffer, which is borrowed: keep it unchanged and alive until the model's last
 * unref. */
int gf_clf_model_load_mem(const void *data, size_t len, struct gf_clf_model **out,
                          struct gf_err *err);
/* Writes m as a GGUF file (atomically replacing path). GF_EIO with err set, or GF_ENOMEM. */
int gf_clf_model_save(const struct gf_clf_model *m, const char *path, struct gf_err *err);

/* Takes a reference (returns m); thread-safe. */
struct gf_clf_model *gf_clf_model_ref(struct gf_clf_model *m);
/* Drops a reference; the last one frees the model. NULL is a no-op. Thread-safe. */
void gf_clf_model_unref(struct gf_clf_model *m);

/* The category names, in score order; borrowed, valid while a ref is held. Returns how many. */
size_t gf_clf_model_categories(const struct gf_clf_model *m, const char *const **names);
/* Index of a category in the score array, or -1 when the model has no such category. */
int gf_clf_model_category_index(const struct gf_clf_model *m, const char *name);

/* Per-thread working memory for scoring with m (or any model no larger than m). Caller frees
 * it with gf_clf_scratch_free. Returns 0 or GF_ENOMEM. */
int gf_clf_scratch_new(const struct gf_clf_model *m, struct gf_clf_scratch **out);
void gf_clf_scratch_free(struct gf_clf_scratch *s);

/* Scores text[0..len) (UTF-8; any bytes are accepted): writes one calibrated probability in
 * [0,1] per category to scores (gf_clf_model_categories order). Never allocates. Returns 0, or
 * GF_EINVAL when s is too small for m. Long texts are scored whole (mean over all features). */
int gf_clf_model_score(const struct gf_clf_model *m, const char *text, size_t len, float *scores,
                       struct gf_clf_scratch *s);
/* Scores n texts: scores[i * n_categories + c]. Gives exactly the scores of n single calls. */
int gf_clf_model_score_batch(const struct gf_clf_model *m, const char *const *texts,
                             const size_t *lens, size_t n, float *scores,
                             struct gf_clf_scratch *s);

/* Where an uninstalled build finds the shipped model: <source tree>/models/moderation.gguf. */
const char *gf_clf_default_model_path(void);

#endif
