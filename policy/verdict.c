/* verdict.c — the verdict of a text: building it (fired rules, scores, redaction spans),
 * merging the verdicts of several texts, rewriting a text with its redactions and writing the
 * verdict as JSON for the audit log and the CLI. A verdict never holds the matched text. */
#include "policy/policy_int.h"

#include <stdlib.h>
#include <string.h>

void gf_verdict_init(struct gf_verdict *v)
{
    memset(v, 0, sizeof(*v));
}

void gf_verdict_cleanup(struct gf_verdict *v)
{
    if (v == NULL)
        return;
    gf_free(v->fired);
    gf_free(v->scores);
    gf_free(v->spans);
    gf_free(v->redacted);
    gf_verdict_init(v);
}

int gf_verdict_add_fired(struct gf_verdict *v, const struct gf_fired *f)
{
    struct gf_fired *n = gf_realloc(v->fired, (v->n_fired + 1) * sizeof(*n));
    if (n == NULL)
        return GF_ENOMEM;
    v->fired = n;
    n[v->n_fired++] = *f;
    return 0;
}

// Keeps the highest score per category.
int gf_verdict_add_score(struct gf_verdict *v, const char *category, double score)
{
    for (size_t i = 0; i < v->n_scores; i++) {
        if (strcmp(v->scores[i].category, category) == 0) {
            if (score > v->scores[i].score)
                v->scores[i].score = score;
            return 0;
        }
    }
    struct gf_score *n = gf_realloc(v->scores, (v->n_scores + 1) * sizeof(*n));
    if (n == NULL)
        return GF_ENOMEM;
    v->scores = n;
    n[v->n_scores++] = (struct gf_score){category, score};
    return 0;
}

int gf_verdict_add_span(struct gf_verdict *v, size_t start, size_t end, const char *type)
{
    struct gf_span *n = gf_realloc(v->spans, (v->n_spans + 1) * sizeof(*n));
    if (n == NULL)
        return GF_ENOMEM;
    v->spans = n;
    n[v->n_spans++] = (struct gf_span){start, end, type};
    return 0;
}

static int by_start(const void *a, const void *b)
{
    const struct gf_span *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->end > y->end ? -1 : x->end < y->end;  // longer first
}

void gf_verdict_sort_spans(struct gf_verdict *v)
{
    if (v->n_spans == 0)
        return;
    qsort(v->spans, v->n_spans, sizeof(*v->spans), by_start);
    size_t w = 0;
    for (size_t i = 1; i < v->n_spans; i++) {
        if (v->spans[i].start < v->spans[w].end) {  // overlap: one redaction covers both
            if (v->spans[i].end > v->spans[w].end)
                v->spans[w].end = v->spans[i].end;
        } else {
            v->spans[++w] = v->spans[i];
        }
    }
    v->n_spans = w + 1;
}

int gf_policy_apply_spans(const struct gf_verdict *v, const char *text, size_t len,
                          struct gf_buf *out)
{
    size_t at = 0;
    int rc = 0;
    for (size_t i = 0; i < v->n_spans && rc == 0; i++) {
        const struct gf_span *s = &v->spans[i];
        if (s->start < at || s->end > len)
            continue;
        rc = gf_buf_append(out, text + at, s->start - at);
        if (rc == 0)
            rc = gf_buf_printf(out, "[REDACTED:%s]", s->type);
        at = s->end;
    }
    if (rc == 0)
        rc = gf_buf_append(out, text + at, len - at);
    return rc;
}

int gf_verdict_merge(struct gf_verdict *into, const struct gf_verdict *from)
{
    if (from->action > into->action) {
        into->action = from->action;
        into->message = from->message;
    }
    if (into->policy_version == NULL)
        into->policy_version = from->policy_version;
    into->fail_closed |= from->fail_closed;
    for (size_t i = 0; i < from->n_fired; i++)
        if (gf_verdict_add_fired(into, &from->fired[i]) != 0)
            return GF_ENOMEM;
    for (size_t i = 0; i < from->n_scores; i++)
        if (gf_verdict_add_score(into, from->scores[i].category, from->scores[i].score) != 0)
            return GF_ENOMEM;
    return 0;
}

int gf_verdict_json(const struct gf_verdict *v, struct gf_buf *out)
{
    int rc = gf_buf_printf(out, "{\"action\":\"%s\",\"policy_version\":", gf_action_name(v->action));
    const char *ver = v->policy_version ? v->policy_version : "";
    if (rc == 0)
        rc = gf_buf_append_json_str(out, ver, strlen(ver));
    if (rc == 0)
        rc = gf_buf_puts(out, ",\"rules\":[");
    for (size_t i = 0; i < v->n_fired && rc == 0; i++) {
        bool seen = false;  // a rule that fired on several messages is named once
        for (size_t j = 0; j < i; j++)
            seen |= strcmp(v->fired[j].rule, v->fired[i].rule) == 0;
        if (seen)
            continue;
        rc = gf_buf_puts(out, out->data[out->len - 1] == '[' ? "" : ",");
        if (rc == 0)
            rc = gf_buf_append_json_str(out, v->fired[i].rule, strlen(v->fired[i].rule));
    }
    if (rc == 0)
        rc = gf_buf_puts(out, "],\"fired\":[");
    for (size_t i = 0; i < v->n_fired && rc == 0; i++) {
        const struct gf_fired *f = &v->fired[i];
        rc = gf_buf_printf(out, "%s{\"rule\":", i ? "," : "");
        if (rc == 0)
            rc = gf_buf_append_json_str(out, f->rule, strlen(f->rule));
        if (rc == 0)
            rc = gf_buf_printf(out, ",\"action\":\"%s\",\"type\":", gf_action_name(f->action));
        if (rc == 0)
            rc = gf_buf_append_json_str(out, f->type, strlen(f->type));
        if (rc == 0)
            rc = gf_buf_printf(out, ",\"score\":%.4g,\"canonical\":%s}", f->score,
                               f->canonical ? "true" : "false");
    }
    if (rc == 0)
        rc = gf_buf_puts(out, "],\"scores\":{");
    for (size_t i = 0; i < v->n_scores && rc == 0; i++) {
        rc = gf_buf_puts(out, i ? "," : "");
        if (rc == 0)
            rc = gf_buf_append_json_str(out, v->scores[i].category, strlen(v->scores[i].category));
        if (rc == 0)
            rc = gf_buf_printf(out, ":%.4f", v->scores[i].score);
    }
    if (rc == 0)
        rc = gf_buf_puts(out, "},\"redactions\":[");
    for (size_t i = 0; i < v->n_spans && rc == 0; i++) {
        rc = gf_buf_printf(out, "%s{\"start\":%zu,\"end\":%zu,\"type\":", i ? "," : "",
                           v->spans[i].start, v->spans[i].end);
        if (rc == 0)
            rc = gf_buf_append_json_str(out, v->spans[i].type, strlen(v->spans[i].type));
        if (rc == 0)
            rc = gf_buf_putc(out, '}');
    }
    if (rc == 0)
        rc = gf_buf_puts(out, "]");
    if (rc == 0 && v->action == GF_ACTION_BLOCK && v->message) {
        rc = gf_buf_puts(out, ",\"message\":");
        if (rc == 0)
            rc = gf_buf_append_json_str(out, v->message, strlen(v->message));
    }
    if (rc == 0 && v->fail_closed)
        rc = gf_buf_puts(out, ",\"fail_closed\":true");
    if (rc == 0)
        rc = gf_buf_putc(out, '}');
    return rc;
}
