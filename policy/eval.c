/* eval.c — evaluates a text under a policy group. The text is normalized once; each rule that
 * applies at the stage runs its detector (or reads its classifier's score, computed once per
 * classifier per text) and, if it fires, adds to the verdict. The verdict's action is the most
 * severe of the rules that fired; an allow rule that fires exempts the text from the rules after
 * it; the first block stops evaluation. A detector that cannot decide (match limit) fires
 * anyway over the whole text: the policy fails closed. */
#include "policy/policy_int.h"

#include <string.h>

#define MAX_CATS GF_POLICY_MAX_CATS

struct gf_policy_ctx {
    struct gf_scan_scratch *scratch;
    struct gf_norm_buf norm;
    struct gf_hits hits;
    float (*scores)[MAX_CATS];  // per classifier slot
    bool *scored;
    size_t cap;
    struct gf_detector *spam;   // for moderation when no trained spam model is loaded
    uint64_t texts;             // texts evaluated: names each one for the detectors' caches
    bool preset;                // some scores were given for the next evaluation
};

struct gf_policy_ctx *gf_policy_ctx_new(void)
{
    struct gf_policy_ctx *c = gf_calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->scratch = gf_scan_scratch_new();
    if (c->scratch == NULL) {
        gf_free(c);
        return NULL;
    }
    gf_norm_buf_init(&c->norm, 0);
    gf_hits_init(&c->hits, GF_POLICY_MAX_HITS);
    return c;
}

void gf_policy_ctx_free(struct gf_policy_ctx *c)
{
    if (c == NULL)
        return;
    gf_scan_scratch_free(c->scratch);
    gf_norm_buf_cleanup(&c->norm);
    gf_hits_cleanup(&c->hits);
    gf_free(c->scores);
    gf_free(c->scored);
    gf_detector_free(c->spam);
    gf_free(c);
}

static int ensure_slots(struct gf_policy_ctx *c, size_t n)
{
    if (n <= c->cap)
        return 0;
    float(*s)[MAX_CATS] = gf_realloc(c->scores, n * sizeof(*s));
    if (s == NULL)
        return GF_ENOMEM;
    c->scores = s;
    bool *d = gf_realloc(c->scored, n * sizeof(*d));
    if (d == NULL)
        return GF_ENOMEM;
    c->scored = d;
    c->cap = n;
    return 0;
}

int gf_policy_ctx_set_scores(struct gf_policy_ctx *c, const struct gf_policy *p, size_t slot,
                             const float *scores, size_t n)
{
    if (ensure_slots(c, p->n_clfs) != 0)
        return GF_ENOMEM;
    if (slot >= p->n_clfs || n > MAX_CATS)
        return GF_EINVAL;
    if (!c->preset)
        memset(c->scored, 0, p->n_clfs * sizeof(*c->scored));
    memcpy(c->scores[slot], scores, n * sizeof(float));
    c->scored[slot] = true;
    c->preset = true;
    return 0;
}

static int classifier_score(const struct gf_policy *p, struct gf_policy_ctx *c,
                            const struct rule *r, enum gf_stage stage, const struct gf_scan *in,
                            double *out, struct gf_err *err)
{
    size_t slot = (size_t)r->clf_slot;
    if (!c->scored[slot]) {
        const struct gf_classifier *clf = gf_policy_scorer(p, slot, stage);
        if (clf->n_categories > MAX_CATS)
            return gf_err_set(err, GF_EINVAL, "classifier has more than %d categories", MAX_CATS);
        int rc = clf->ops->score(clf, in->text, in->len, in->norm, c->scores[slot], err);
        if (rc != 0)
            return rc;
        c->scored[slot] = true;
    }
    *out = c->scores[slot][r->clf_index];
    return 0;
}

static int fire(struct gf_verdict *v, const struct rule *r, const char *type, double score,
                bool canonical)
{
    struct gf_fired f = {r->id, r->action, type, score, canonical};
    return gf_verdict_add_fired(v, &f);
}

static int eval_rules(const struct gf_policy *p, struct gf_policy_ctx *c, const struct group *g,
                      enum gf_stage stage, const char *text, size_t len, bool patterns,
                      bool whole, struct gf_verdict *v, struct gf_err *err)
{
    int rc = ensure_slots(c, p->n_clfs);
    if (rc != 0)
        return gf_err_set(err, rc, "out of memory evaluating the policy");
    if (p->n_clfs && !c->preset)
        memset(c->scored, 0, p->n_clfs * sizeof(*c->scored));
    struct gf_norm norm = {0};
    bool normalized = false;
    struct gf_scan in = {text, len, NULL, c->scratch, 0};
    bool exempt = false, fired_any = false;
    enum gf_action worst = GF_ACTION_ALLOW;
    for (size_t i = 0; i < g->n_rules && worst != GF_ACTION_BLOCK && !exempt; i++) {
        const struct rule *r = g->rules[i];
        if (r->skipped || !(r->stage & stage) || (r->whole_text ? !whole : !patterns))
            continue;
        if (!normalized && !(r->clf && c->scored[r->clf_slot])) {  // given scores need no text
            // Whole-text rules read only the canonical text; the byte map back to the
            // original (8 of the 9 bytes written per byte) is for pattern hits found on the
            // canonical form only, and is made when the first one needs it.
            rc = gf_norm_buf_normalize(&c->norm, text, len,
                                       patterns ? GF_NORM_LAZY_MAP : GF_NORM_NO_MAP,
                                       &norm, err);
            if (rc != 0)
                return rc;
            in.norm = &norm;
            in.id = ++c->texts;
            normalized = true;
        }
        bool fired = false;
        if (r->clf) {
            double s = 0;
            if ((rc = classifier_score(p, c, r, stage, &in, &s, err)) != 0)
                return rc;
            if ((rc = gf_verdict_add_score(v, r->category, s)) != 0)
                return gf_err_set(err, rc, "out of memory evaluating the policy");
            fired = s >= r->threshold;
            if (fired && (rc = fire(v, r, r->category, s, false)) != 0)
                return gf_err_set(err, rc, "out of memory evaluating the policy");
            if (fired && r->action == GF_ACTION_REDACT)
                rc = gf_verdict_add_span(v, 0, len, r->label ? r->label : r->category);
        } else {
            gf_hits_reset(&c->hits);
            struct gf_err derr = {0};
            rc = gf_detector_scan(r->det, &in, &c->hits, &derr);
            if (rc == GF_ENOMEM)
                return gf_err_set(err, rc, "%s", derr.msg);
            if (rc != 0) {  // cannot decide: fire over the whole text
                gf_log(GF_LOG_WARN, "policy", "rule=%s fail_closed=1 reason=\"%s\"", r->id,
                       derr.msg);
                v->fail_closed = true;
                fired = true;
                rc = fire(v, r, r->label ? r->label : r->id, 1.0, false);
                if (rc == 0 && r->action == GF_ACTION_REDACT)
                    rc = gf_verdict_add_span(v, 0, len, r->label ? r->label : r->id);
            } else if (c->hits.n > 0) {
                const struct gf_hit *h = &c->hits.v[0];
                bool scored = r->whole_text;  // spam: a score against the rule's threshold
                fired = !scored || h->score >= r->threshold;
                if (scored)
                    rc = gf_verdict_add_score(v, h->type, h->score);
                bool canonical = true;
                for (size_t k = 0; k < c->hits.n; k++)
                    canonical &= c->hits.v[k].canonical;
                if (rc == 0 && fired)
                    rc = fire(v, r, r->label ? r->label : h->type, h->score, canonical);
                for (size_t k = 0; rc == 0 && fired && r->action == GF_ACTION_REDACT &&
                                   k < c->hits.n; k++)
                    rc = gf_verdict_add_span(v, c->hits.v[k].start, c->hits.v[k].end,
                                             r->label ? r->label : c->hits.v[k].type);
            }
            if (rc != 0)
                return gf_err_set(err, rc, "out of memory evaluating the policy");
        }
        if (rc != 0)
            return gf_err_set(err, rc, "out of memory evaluating the policy");
        if (!fired)
            continue;
        if (r->action == GF_ACTION_ALLOW) {
            exempt = true;
            continue;
        }
        fired_any = true;
        if (r->action > worst) {
            worst = r->action;
            if (worst == GF_ACTION_BLOCK)
                v->message = r->message ? r->message : g->refusal;
        }
    }
    enum gf_action action = fired_any ? worst : exempt ? GF_ACTION_ALLOW : g->def;
    if (action > v->action) {
        v->action = action;
        if (action == GF_ACTION_BLOCK && v->message == NULL)
            v->message = g->refusal;
    }
    return 0;
}

int gf_policy_eval_group(const struct gf_policy *p, struct gf_policy_ctx *c, const struct group *g,
                         enum gf_stage stage, const char *text, size_t len, bool patterns,
                         bool whole, struct gf_verdict *v, struct gf_err *err)
{
    int rc = eval_rules(p, c, g, stage, text, len, patterns, whole, v, err);
    c->preset = false;  // given scores are for one evaluation
    return rc;
}

int gf_policy_eval(const struct gf_policy *p, struct gf_policy_ctx *c, const char *group,
                   enum gf_stage stage, const char *text, size_t len, struct gf_verdict *v,
                   struct gf_err *err)
{
    gf_verdict_init(v);
    v->policy_version = p->version;
    const struct group *g = gf_policy_group(p, group);
    int rc = gf_policy_eval_group(p, c, g, stage, text, len, true, true, v, err);
    if (rc == 0 && v->action == GF_ACTION_REDACT) {
        gf_verdict_sort_spans(v);
        struct gf_buf b;
        gf_buf_init(&b, len + v->n_spans * 96 + 64);  // markers are at most ~80 bytes
        rc = gf_policy_apply_spans(v, text, len, &b);
        if (rc == 0) {
            v->redacted_len = b.len;
            v->redacted = gf_buf_steal(&b);
            if (v->redacted == NULL)
                rc = GF_ENOMEM;
        }
        gf_buf_cleanup(&b);
        if (rc != 0)
            gf_err_set(err, rc, "out of memory redacting");
    } else if (rc == 0) {
        gf_verdict_sort_spans(v);
    }
    if (rc != 0)
        gf_verdict_cleanup(v);
    return rc;
}

int gf_policy_moderate(const struct gf_policy *p, struct gf_policy_ctx *c, const char *text,
                       size_t len, struct gf_score *scores, size_t cap, size_t *n,
                       struct gf_err *err)
{
    *n = 0;
    struct gf_norm norm;
    int rc = gf_norm_buf_normalize(&c->norm, text, len, 0, &norm, err);
    if (rc != 0)
        return rc;
    const struct gf_classifier *last = NULL;
    float buf[MAX_CATS];
    bool spam = false;
    size_t count = gf_clf_registry_count(p->reg);
    for (size_t i = 0; i < count && *n < cap; i++) {
        const char *cat = gf_clf_registry_category(p->reg, i);
        const struct gf_classifier *clf;
        size_t k;
        if (!gf_clf_registry_find(p->reg, cat, &clf, &k) || clf->n_categories > MAX_CATS)
            continue;
        if (clf != last) {
            if ((rc = clf->ops->score(clf, text, len, &norm, buf, err)) != 0)
                return rc;
            last = clf;
        }
        scores[(*n)++] = (struct gf_score){cat, buf[k]};
        spam |= strcmp(cat, "spam") == 0;
    }
    if (!spam && *n < cap) {  // the heuristics stand in for a trained spam model
        if (c->spam == NULL && (rc = gf_spam_new(&c->spam, err)) != 0)
            return rc;
        gf_hits_reset(&c->hits);
        struct gf_scan in = {text, len, &norm, c->scratch, 0};
        if ((rc = gf_detector_scan(c->spam, &in, &c->hits, err)) != 0)
            return rc;
        scores[(*n)++] = (struct gf_score){"spam", c->hits.n ? c->hits.v[0].score : 0.0};
    }
    return 0;
}
