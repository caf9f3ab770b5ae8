/* policy_int.h — private to policy/: the compiled form of a policy. A policy owns its rules;
 * groups hold ordered lists of borrowed rule pointers (a rule may appear in several groups).
 * Everything here is immutable once gf_policy_parse returns. */
#ifndef GF_POLICY_INT_H
#define GF_POLICY_INT_H

#include <stdatomic.h>

#include "classifiers/classifiers.h"
#include "policy/policy.h"

struct rule {
    char *id;
    enum gf_stage stage;
    enum gf_action action;
    char *message;                    // refusal for a block by this rule; NULL: the group's
    char *label;                      // redaction type; NULL: the hit's type
    struct gf_detector *det;          // detector rules (owned)
    const struct gf_classifier *clf;  // classifier rules (the registry keeps it alive)
    size_t clf_index;                 // category index within clf
    int clf_slot;                     // index into gf_policy.clfs
    const char *category;             // classifier rules: the category name (borrowed)
    double threshold;                 // classifier and spam rules
    bool whole_text;                  // scores the whole text (classifier, spam)
    bool skipped;                     // optional classifier not loaded: never evaluated
};

struct group {
    char *name;
    enum gf_action def;
    char *refusal;
    struct rule **rules;  // borrowed from gf_policy.rules, in evaluation order
    size_t n_rules;
};

struct category {
    char *name;
    double threshold;
};

struct gf_policy {
    atomic_int refs;
    char version[2 * GF_SHA256_LEN + 1];
    char *source;
    char *warnings;
    struct rule **rules;  // owned
    size_t n_rules;
    struct group *groups; // groups[0] is "default"
    size_t n_groups;
    struct category *cats;
    size_t n_cats;
    const struct gf_classifier **clfs;  // distinct classifiers used by rules
    size_t n_clfs;
    // [n_clfs] what each stage scores through (owned references): clfs[i] narrowed to the
    // categories that the stage's rules read, in any group
    struct gf_classifier **clf_in, **clf_out;
    struct gf_clf_registry *reg;        // one reference, or NULL
    int abuse_blocks;
    int64_t abuse_window_ms;
    size_t holdback;
};

#define GF_POLICY_DEFAULT_REFUSAL  "I'm sorry, but I can't help with that."
#define GF_POLICY_DEFAULT_HOLDBACK 256
#define GF_POLICY_MAX_HITS         4096
#define GF_POLICY_MAX_CATS         64  // categories per classifier the evaluator caches

/* The classifier of slot (an index into p->clfs) that stage scores through (the whole
 * classifier for both stages at once). */
static inline const struct gf_classifier *gf_policy_scorer(const struct gf_policy *p,
                                                           size_t slot, enum gf_stage stage)
{
    return stage == GF_STAGE_INPUT    ? p->clf_in[slot]
           : stage == GF_STAGE_OUTPUT ? p->clf_out[slot]
                                      : p->clfs[slot];
}

const struct group *gf_policy_group(const struct gf_policy *p, const char *name);
void gf_policy_free_rule(struct rule *r);

/* Evaluates text with the rules of g at stage into v (already initialized): pattern rules
 * (regex, keywords, pii) when patterns is set, whole-text rules (classifiers, spam) when whole
 * is set. Streaming evaluates a window with patterns only and the whole text at the end. */
int gf_policy_eval_group(const struct gf_policy *p, struct gf_policy_ctx *c, const struct group *g,
                         enum gf_stage stage, const char *text, size_t len, bool patterns,
                         bool whole, struct gf_verdict *v, struct gf_err *err);
/* Gives the next gf_policy_eval_group on c the scores of the classifier of slot (an index into
 * p->clfs) instead of scoring the text that evaluation is given: a stream scores the whole text
 * so far incrementally. 0, GF_ENOMEM or GF_EINVAL (bad slot, too many categories). */
int gf_policy_ctx_set_scores(struct gf_policy_ctx *c, const struct gf_policy *p, size_t slot,
                             const float *scores, size_t n);
/* Rewrites text with v's spans replaced by [REDACTED:<type>] into out. */
int gf_policy_apply_spans(const struct gf_verdict *v, const char *text, size_t len,
                          struct gf_buf *out);

/* Verdict building (verdict.c); each returns 0 or GF_ENOMEM. */
int gf_verdict_add_fired(struct gf_verdict *v, const struct gf_fired *f);
int gf_verdict_add_score(struct gf_verdict *v, const char *category, double score);
int gf_verdict_add_span(struct gf_verdict *v, size_t start, size_t end, const char *type);
/* Sorts the spans by start and merges overlapping ones. */
void gf_verdict_sort_spans(struct gf_verdict *v);

#endif
