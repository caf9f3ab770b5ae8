/* stream.c — moderation of streamed output over a hold-back window. The stream keeps the whole
 * text and releases it behind a window of holdback bytes. Pattern rules are scanned every
 * holdback/2 new bytes, each scan reading only where a new match could lie: a match of at most
 * holdback bytes that ends in the new bytes starts after scanned - holdback, so each byte is read
 * about 3 times (the old quarter-window step read it 5 times for little less latency).
 * Invariant: released <= (length scanned) - holdback except where a complete redaction is
 * released whole, so such a match is caught before its last byte leaves.
 * Whole-text rules are judged every 4 windows and at the end. Trained classifiers that can score
 * a growing text (gf_classifier_ops.stream_score) judge the whole text so far, each byte hashed
 * about once over the stream, with the scores a one-shot evaluation of that text would give;
 * other whole-text rules (spam heuristics, classifiers without it) see the new stretch of 4
 * windows (plus one window of context) as it completes, and the whole text at the end: scoring
 * the whole text as it grows would cost quadratic time on long completions. What they block can
 * only stop the rest of the stream. */
#include "policy/policy_int.h"

#include <string.h>

struct gf_stream {
    struct gf_policy *p;
    const struct group *g;
    struct gf_policy_ctx *ctx;
    size_t holdback;
    struct gf_buf text;     // every byte fed so far
    size_t released;        // bytes of text released (a released redaction counts whole)
    size_t scanned;         // text scanned for patterns up to here
    size_t whole_at;        // text length at the last whole-text evaluation
    struct gf_verdict v;    // what fired so far; spans are the pending redactions
    void **clf_states;      // per classifier slot of the policy: incremental state, or NULL
    bool blocked;
    bool finished;
};

// Incremental states for the classifiers the group's output rules read, when they have them.
static int clf_states_new(struct gf_stream *s)
{
    const struct gf_policy *p = s->p;
    if (p->n_clfs == 0)
        return 0;
    s->clf_states = gf_calloc(p->n_clfs, sizeof(void *));
    if (s->clf_states == NULL)
        return GF_ENOMEM;
    for (size_t i = 0; i < s->g->n_rules; i++) {
        const struct rule *r = s->g->rules[i];
        if (r->clf == NULL || r->skipped || !(r->stage & GF_STAGE_OUTPUT))
            continue;
        const struct gf_classifier *clf = p->clf_out[r->clf_slot];
        if (clf->ops->stream_new == NULL || s->clf_states[r->clf_slot] != NULL)
            continue;
        if ((s->clf_states[r->clf_slot] = clf->ops->stream_new(clf)) == NULL)
            return GF_ENOMEM;
    }
    return 0;
}

static void clf_states_free(struct gf_stream *s)
{
    for (size_t i = 0; s->clf_states != NULL && i < s->p->n_clfs; i++)
        if (s->clf_states[i] != NULL)
            s->p->clf_out[i]->ops->stream_free(s->clf_states[i]);
    gf_free(s->clf_states);
}

/* Scores the text so far with each incremental classifier and hands the scores to the next
 * evaluation. A classifier that cannot do it cheaply before the end (GF_EAGAIN) is left to
 * score the window that evaluation is given. */
static int clf_states_score(struct gf_stream *s, size_t len, bool final, struct gf_err *err)
{
    for (size_t i = 0; s->clf_states != NULL && i < s->p->n_clfs; i++) {
        if (s->clf_states[i] == NULL)
            continue;
        const struct gf_classifier *clf = s->p->clf_out[i];
        float sc[GF_POLICY_MAX_CATS];
        if (clf->n_categories > GF_POLICY_MAX_CATS)
            return gf_err_set(err, GF_EINVAL, "classifier has more than %d categories",
                              GF_POLICY_MAX_CATS);
        int rc = clf->ops->stream_score(clf, s->clf_states[i], s->text.data, len, final, sc, err);
        if (rc == GF_EAGAIN)
            continue;
        if (rc == 0)
            rc = gf_policy_ctx_set_scores(s->ctx, s->p, i, sc, clf->n_categories);
        if (rc != 0)
            return gf_err_set(err, rc, "cannot score the streamed text");
    }
    return 0;
}

int gf_stream_new(struct gf_policy *p, const char *group, size_t holdback, size_t max,
                  struct gf_stream **out, struct gf_err *err)
{
    *out = NULL;
    struct gf_stream *s = gf_calloc(1, sizeof(*s));
    if (s == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory starting a stream");
    s->ctx = gf_policy_ctx_new();
    if (s->ctx == NULL) {
        gf_free(s);
        return gf_err_set(err, GF_ENOMEM, "out of memory starting a stream");
    }
    s->p = gf_policy_ref(p);
    s->g = gf_policy_group(p, group);
    s->holdback = holdback ? holdback : p->holdback;
    gf_buf_init(&s->text, max);
    gf_verdict_init(&s->v);
    s->v.policy_version = p->version;
    if (clf_states_new(s) != 0) {
        gf_stream_free(s);
        return gf_err_set(err, GF_ENOMEM, "out of memory starting a stream");
    }
    *out = s;
    return 0;
}

void gf_stream_free(struct gf_stream *s)
{
    if (s == NULL)
        return;
    clf_states_free(s);
    gf_buf_cleanup(&s->text);
    gf_verdict_cleanup(&s->v);
    gf_policy_ctx_free(s->ctx);
    gf_policy_unref(s->p);
    gf_free(s);
}

const struct gf_verdict *gf_stream_verdict(const struct gf_stream *s)
{
    return &s->v;
}

size_t gf_stream_released(const struct gf_stream *s)
{
    return s->released;
}

static bool seen_rule(const struct gf_verdict *v, const char *rule)
{
    for (size_t i = 0; i < v->n_fired; i++)
        if (v->fired[i].rule == rule)
            return true;
    return false;
}

// Folds the verdict of a window starting at base into the stream's verdict.
static int absorb(struct gf_stream *s, const struct gf_verdict *w, size_t base)
{
    for (size_t i = 0; i < w->n_fired; i++)
        if (!seen_rule(&s->v, w->fired[i].rule) && gf_verdict_add_fired(&s->v, &w->fired[i]))
            return GF_ENOMEM;
    for (size_t i = 0; i < w->n_scores; i++)
        if (gf_verdict_add_score(&s->v, w->scores[i].category, w->scores[i].score))
            return GF_ENOMEM;
    s->v.fail_closed |= w->fail_closed;
    if (w->action > s->v.action) {
        s->v.action = w->action;
        s->v.message = w->message;
    }
    if (w->action == GF_ACTION_BLOCK)
        return 0;
    for (size_t i = 0; i < w->n_spans; i++) {
        size_t a = base + w->spans[i].start, b = base + w->spans[i].end;
        if (a < s->released)  // longer than the window and partly gone: redact what is left
            a = s->released;
        if (b <= a)
            continue;
        if (gf_verdict_add_span(&s->v, a, b, w->spans[i].type))
            return GF_ENOMEM;
    }
    gf_verdict_sort_spans(&s->v);
    return 0;
}

static int eval_range(struct gf_stream *s, size_t from, size_t to, bool patterns, bool whole,
                      struct gf_err *err)
{
    struct gf_verdict w;
    gf_verdict_init(&w);
    // An empty stream has no buffer yet (and NULL + 0 is undefined): it is judged as "".
    const char *text = s->text.data != NULL ? s->text.data + from : "";
    int rc = gf_policy_eval_group(s->p, s->ctx, s->g, GF_STAGE_OUTPUT, text, to - from,
                                  patterns, whole, &w, err);
    if (rc == 0 && (rc = absorb(s, &w, from)) != 0)
        gf_err_set(err, rc, "out of memory moderating a stream");
    if (rc == 0 && w.action == GF_ACTION_BLOCK)
        s->blocked = true;
    gf_verdict_cleanup(&w);
    return rc;
}

// Releases text up to target (pushed past a redaction that straddles it) into out.
static int release(struct gf_stream *s, size_t target, struct gf_buf *out)
{
    const char *t = s->text.data;
    while (target > s->released && target < s->text.len && ((unsigned char)t[target] & 0xC0) == 0x80)
        target--;  // never cut a UTF-8 sequence
    int rc = 0;
    size_t keep = 0;
    for (size_t i = 0; i < s->v.n_spans && rc == 0; i++) {
        struct gf_span *sp = &s->v.spans[i];
        if (sp->start >= target) {
            s->v.spans[keep++] = *sp;
            continue;
        }
        if (sp->start > s->released)
            rc = gf_buf_append(out, t + s->released, sp->start - s->released);
        if (rc == 0)
            rc = gf_buf_printf(out, "[REDACTED:%s]", sp->type);
        if (sp->end > s->released)
            s->released = sp->end;
        if (s->released > target)
            target = s->released;
    }
    if (rc != 0)
        return rc;
    s->v.n_spans = keep;
    if (target > s->released) {
        rc = gf_buf_append(out, t + s->released, target - s->released);
        if (rc == 0)
            s->released = target;
    }
    return rc;
}

int gf_stream_feed(struct gf_stream *s, const char *chunk, size_t n, struct gf_buf *out,
                   struct gf_err *err)
{
    if (s->blocked)
        return GF_EPOLICY;
    if (s->finished)
        return gf_err_set(err, GF_EINVAL, "stream already finished");
    int rc = gf_buf_append(&s->text, chunk, n);
    if (rc != 0)
        return gf_err_set(err, rc, rc == GF_ETOOBIG ? "streamed text longer than %zu bytes"
                                                     : "out of memory buffering a stream (%zu)",
                          s->text.max);
    size_t complete = gf_utf8_complete_prefix(s->text.data, s->text.len);
    // Scan in steps of half a window: each scan reads the window before the new text, so
    // scanning at every ~4-byte token would read each byte ~65 times; this reads it ~3 times,
    // and releases text in steps of at most holdback/2 bytes.
    if (complete <= s->scanned || complete - s->scanned < s->holdback / 2)
        return 0;
    size_t from = s->scanned > s->holdback ? s->scanned - s->holdback : 0;
    while (from > 0 && ((unsigned char)s->text.data[from] & 0xC0) == 0x80)
        from--;
    if ((rc = eval_range(s, from, complete, true, false, err)) != 0)
        return rc;
    s->scanned = complete;
    if (!s->blocked && complete - s->whole_at >= 4 * s->holdback) {
        // Classifiers see each new stretch of 4 windows (with one window before it, so that
        // what straddles the cut is seen whole) and everything at the end: scoring the whole
        // text as it grows would cost quadratic time on long completions.
        size_t wfrom = s->whole_at > s->holdback ? s->whole_at - s->holdback : 0;
        while (wfrom > 0 && ((unsigned char)s->text.data[wfrom] & 0xC0) == 0x80)
            wfrom--;
        s->whole_at = complete;
        if ((rc = clf_states_score(s, complete, false, err)) != 0 ||
            (rc = eval_range(s, wfrom, complete, false, true, err)) != 0)
            return rc;
    }
    if (s->blocked)
        return GF_EPOLICY;
    if (complete > s->holdback && (rc = release(s, complete - s->holdback, out)) != 0)
        return gf_err_set(err, rc, "cannot release streamed text");
    return 0;
}

int gf_stream_finish(struct gf_stream *s, struct gf_buf *out, struct gf_err *err)
{
    if (s->blocked)
        return GF_EPOLICY;
    if (s->finished)
        return 0;
    s->finished = true;
    size_t len = s->text.len, from = s->scanned > s->holdback ? s->scanned - s->holdback : 0;
    while (from > 0 && ((unsigned char)s->text.data[from] & 0xC0) == 0x80)
        from--;
    int rc = 0;
    if (len > s->scanned)  // a cut UTF-8 sequence at the very end
        rc = eval_range(s, from, len, true, false, err);
    if (rc == 0 && !s->blocked && (rc = clf_states_score(s, len, true, err)) == 0)
        rc = eval_range(s, 0, len, false, true, err);
    if (rc != 0)
        return rc;
    if (s->blocked)
        return GF_EPOLICY;
    if ((rc = release(s, len, out)) != 0)
        return gf_err_set(err, rc, "cannot release streamed text");
    return 0;
}
