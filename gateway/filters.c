/* filters.c — the content policy in the request pipeline. Input: every message (or the prompt)
 * is evaluated; block ends the request with 400 content_policy_violation naming the rules,
 * redact rewrites both the parsed request and the JSON body the upstream forwards, flag only
 * records. Output: streamed choices go through a hold-back stream per choice (policy/stream.c);
 * a non-streamed choice is judged whole, and a block replaces it with the refusal message.
 * A stream's headers leave before its output is judged: they say x-gardefou-output: streamed,
 * and the last chunk of each choice carries its verdict as "gardefou":{"output":...}.
 * /v1/moderations is answered from the policy's classifiers and the spam heuristics.
 *
 * Invariant: a request takes a reference on the policy current when its input is judged and
 * keeps it to the end, so a reload (SIGHUP or the admin call) never changes the rules under a
 * request in flight; everything runs on the loop thread, so the swap is a pointer store. */
#include "gateway/gateway.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "classifiers/classifiers.h"
#include "policy/policy.h"

struct gf_filters {
    char *file;                   // policy file; NULL: the built-in default
    char *model;                  // classifier model option (NULL: default if present)
    struct gf_clf_registry *reg;
    struct gf_policy *policy;     // current; requests hold their own reference
    struct gf_policy_ctx *ctx;    // evaluation scratch (loop thread only)
    size_t slot;                  // our position among the pipeline hooks (request state)
    struct event *sighup;
    gf_filters_reload_fn sighup_reload;  // NULL: reload directly (nothing records it)
    void *sighup_ud;
    gf_filters_block_fn on_block;
    void *on_block_ud;
    uint64_t reloads, reload_failures;
};

struct choice {
    struct gf_stream *stream;  // streamed choices
    struct gf_buf text;        // non-streamed choices: the whole text, judged at the end
    bool done;
};

struct req_state {
    struct gf_policy *p;
    const char *group;         // arena string or NULL
    struct gf_verdict in;
    struct gf_verdict out;
    struct choice *choices;
    int n_choices, n_done;
};

/* ---- loading and reload ----------------------------------------------------------------- */

int gf_filters_reload(struct gf_filters *f, struct gf_buf *out, struct gf_err *err)
{
    struct gf_policy *p = NULL;
    int rc = gf_moderation_load_policy(f->file, f->reg, &p, err);
    if (rc != 0) {
        f->reload_failures++;
        gf_log(GF_LOG_ERROR, "policy", "event=reload_failed error=\"%s\" kept=%.12s", err->msg,
               gf_policy_version(f->policy));
        return rc;
    }
    struct gf_policy *old = f->policy;
    f->policy = p;  // requests in flight keep their own reference to the old one
    f->reloads++;
    gf_log(GF_LOG_INFO, "policy", "event=reloaded version=%.12s previous=%.12s",
           gf_policy_version(p), gf_policy_version(old));
    gf_policy_unref(old);
    if (out == NULL)
        return 0;
    rc = gf_buf_printf(out, "{\"reloaded\":true,\"policy_version\":\"%s\",\"source\":",
                       gf_policy_version(p));
    if (rc == 0)
        rc = gf_buf_append_json_str(out, gf_policy_source(p), strlen(gf_policy_source(p)));
    if (rc == 0)
        rc = gf_buf_puts(out, ",\"warnings\":");
    if (rc == 0)
        rc = gf_buf_append_json_str(out, gf_policy_warnings(p), strlen(gf_policy_warnings(p)));
    if (rc == 0)
        rc = gf_buf_putc(out, '}');
    return rc == 0 ? 0 : gf_err_set(err, rc, "out of memory");
}

int gf_filters_admin_reload(void *ud, struct gf_buf *out, struct gf_err *err)
{
    return gf_filters_reload(ud, out, err);
}

static void on_sighup(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gf_filters *f = arg;
    struct gf_err err = {0};
    if (f->sighup_reload == NULL) {
        gf_filters_reload(f, NULL, &err);
        return;
    }
    // The recording path wants the reload's answer (it names the new policy version).
    struct gf_buf out;
    gf_buf_init(&out, 4096);
    f->sighup_reload(f->sighup_ud, &out, &err);
    gf_buf_cleanup(&out);
}

void gf_filters_set_sighup(struct gf_filters *f, gf_filters_reload_fn fn, void *ud)
{
    f->sighup_reload = fn;
    f->sighup_ud = ud;
}

struct gf_policy *gf_filters_policy(const struct gf_filters *f)
{
    return f->policy;
}

void gf_filters_abuse(void *ud, int64_t *max_blocks, int64_t *window_ms)
{
    const struct gf_filters *f = ud;
    int blocks;
    int64_t win;
    gf_policy_abuse(f->policy, &blocks, &win);
    if (blocks > 0) {  // a policy without an abuse setting leaves the keys.abuse_* config
        *max_blocks = blocks;
        *window_ms = win;
    }
}

void gf_filters_set_block_cb(struct gf_filters *f, gf_filters_block_fn fn, void *ud)
{
    f->on_block = fn;
    f->on_block_ud = ud;
}

/* ---- request state ---------------------------------------------------------------------- */

static void state_free(struct req_state *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < s->n_choices; i++) {
        gf_stream_free(s->choices[i].stream);
        gf_buf_cleanup(&s->choices[i].text);
    }
    gf_free(s->choices);
    gf_verdict_cleanup(&s->in);
    gf_verdict_cleanup(&s->out);
    gf_policy_unref(s->p);
    gf_free(s);
}

static void blocked(struct gf_filters *f, struct gf_request *r, const char *phase)
{
    gf_log(GF_LOG_INFO, "policy", "req=%s event=blocked phase=%s", gf_request_id(r), phase);
    if (f->on_block)
        f->on_block(f->on_block_ud, r, phase);
}

// Lists the rule ids of v that decided its action, for the error message (never the text).
static void rule_list(const struct gf_verdict *v, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; i < v->n_fired && n + 1 < cap; i++) {
        if (v->fired[i].action != v->action)
            continue;
        int k = snprintf(out + n, cap - n, "%s%s", n ? ", " : "", v->fired[i].rule);
        if (k < 0)
            break;
        n += (size_t)k < cap - n ? (size_t)k : cap - n - 1;
    }
}

/* ---- input ------------------------------------------------------------------------------ */

// Replaces the text of body's field (a string, or an array of content parts) with text.
static int rewrite_json(cJSON *parent, const char *key, const char *text)
{
    cJSON *s = cJSON_CreateString(text);
    if (s == NULL)
        return GF_ENOMEM;
    if (!cJSON_ReplaceItemInObjectCaseSensitive(parent, key, s)) {
        cJSON_Delete(s);
        return GF_ENOMEM;
    }
    return 0;
}

// Evaluates one text; on redact, rewrites *text (arena copy) and the body field.
static int judge_input(struct gf_filters *f, struct req_state *st, struct gf_request *r,
                       const char **text, cJSON *parent, const char *key, struct gf_err *err)
{
    struct gf_verdict v;
    int rc = gf_policy_eval(st->p, f->ctx, st->group, GF_STAGE_INPUT, *text, strlen(*text), &v,
                            err);
    if (rc != 0)
        return rc;
    if (v.action == GF_ACTION_REDACT && v.redacted) {
        char *copy = gf_request_strdup(r, v.redacted, v.redacted_len);
        rc = copy ? 0 : GF_ENOMEM;
        if (rc == 0) {
            *text = copy;
            if (parent)
                rc = rewrite_json(parent, key, copy);
        }
    }
    if (rc == 0)
        rc = gf_verdict_merge(&st->in, &v);
    gf_verdict_cleanup(&v);
    return rc ? gf_err_set(err, rc, "out of memory applying the policy") : 0;
}

static int input_hook(void *ud, struct gf_request *r, struct gf_err *err)
{
    struct gf_filters *f = ud;
    struct req_state *st = gf_calloc(1, sizeof(*st));
    if (st == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    gf_request_set_state(r, f->slot, st);
    st->p = gf_policy_ref(f->policy);
    gf_verdict_init(&st->in);
    gf_verdict_init(&st->out);
    st->in.policy_version = gf_policy_version(st->p);
    st->group = gf_request_group(r);
    struct gf_gen_request *g = gf_request_gen(r);
    cJSON *body = gf_request_body(r);
    int rc = 0;
    if (g->kind == GF_GEN_CHAT) {
        cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
        for (size_t i = 0; rc == 0 && i < g->n_messages; i++) {
            if (g->messages[i].content == NULL)
                continue;
            cJSON *m = cJSON_GetArrayItem(msgs, (int)i);
            // The parsed messages belong to the request (const only for the engine); the body
            // keeps each message's own shape unless it must be rewritten.
            struct gf_chat_msg *mm = (struct gf_chat_msg *)&g->messages[i];
            rc = judge_input(f, st, r, &mm->content, cJSON_IsObject(m) ? m : NULL, "content", err);
        }
    } else if (g->prompt != NULL) {
        rc = judge_input(f, st, r, &g->prompt, cJSON_GetObjectItemCaseSensitive(body, "prompt")
                                                   ? body
                                                   : NULL,
                         "prompt", err);
    }
    if (rc != 0)
        return rc;
    gf_audit_note_policy(r, "input", &st->in);
    gf_request_add_header(r, "x-gardefou-input", gf_action_name(st->in.action));
    if (st->in.action == GF_ACTION_BLOCK) {
        blocked(f, r, "input");
        char rules[200];
        rule_list(&st->in, rules, sizeof(rules));
        return gf_err_set(err, GF_EPOLICY,
                          "the request was blocked by the content policy (rules: %s)", rules);
    }
    if (gf_request_streamed(r))  // judged as it streams: the verdict comes in the last chunks
        gf_request_add_header(r, "x-gardefou-output", "streamed");
    return 0;
}

/* ---- output ----------------------------------------------------------------------------- */

static struct choice *choice_of(struct req_state *st, struct gf_request *r, int idx)
{
    if (st->choices == NULL) {
        int n = gf_request_n_choices(r);
        st->choices = gf_calloc((size_t)(n > 0 ? n : 1), sizeof(*st->choices));
        if (st->choices == NULL)
            return NULL;
        st->n_choices = n > 0 ? n : 1;
    }
    return idx >= 0 && idx < st->n_choices ? &st->choices[idx] : NULL;
}

/* Streams: the choice's verdict as top-level members of its last chunk, e.g.
 * "gardefou":{"output":"redact","policy_version":"...","rules":["contact-data"]}: the rule ids
 * that fired, never the matched text. */
static void stream_verdict(struct req_state *st, struct gf_request *r, int idx,
                           const struct gf_verdict *v)
{
    struct gf_buf b;
    gf_buf_init(&b, 64u << 10);
    const char *ver = gf_policy_version(st->p);
    // Put together without printf, which took more than the rest of a stream's verdict.
    int rc = gf_buf_puts(&b, "\"gardefou\":{\"output\":\"");
    rc = rc ? rc : gf_buf_puts(&b, gf_action_name(v ? v->action : GF_ACTION_ALLOW));
    rc = rc ? rc : gf_buf_puts(&b, "\",\"policy_version\":\"");
    rc = rc ? rc : gf_buf_puts(&b, ver);
    rc = rc ? rc : gf_buf_puts(&b, "\",\"rules\":[");
    size_t first = b.len;
    for (size_t i = 0; v && rc == 0 && i < v->n_fired; i++) {
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            seen |= v->fired[j].rule == v->fired[i].rule;
        if (seen)
            continue;
        if (b.len > first)
            rc = gf_buf_putc(&b, ',');
        if (rc == 0)
            rc = gf_buf_append_json_str(&b, v->fired[i].rule, strlen(v->fired[i].rule));
    }
    if (rc == 0)
        rc = gf_buf_puts(&b, "]}");
    if (rc == 0)
        rc = gf_request_set_final_json(r, idx, b.data);
    if (rc != 0)  // the header already said "streamed"; the audit record still has the verdict
        gf_log(GF_LOG_WARN, "policy", "req=%s event=verdict_chunk_failed", gf_request_id(r));
    gf_buf_cleanup(&b);
}

static void choice_finished(struct gf_filters *f, struct req_state *st, struct gf_request *r,
                            struct choice *c, const struct gf_verdict *v)
{
    if (c->done)
        return;
    c->done = true;
    bool streamed = gf_request_streamed(r);
    if (streamed)
        stream_verdict(st, r, (int)(c - st->choices), v);
    if (v && gf_verdict_merge(&st->out, v) == 0)
        st->out.policy_version = gf_policy_version(st->p);
    if (v && v->action == GF_ACTION_BLOCK)
        blocked(f, r, "output");
    if (++st->n_done == st->n_choices) {
        gf_audit_note_policy(r, "output", &st->out);
        if (!streamed)  // a stream's headers are gone: its chunks carry the verdict
            gf_request_add_header(r, "x-gardefou-output", gf_action_name(st->out.action));
    }
}

static int output_streamed(struct gf_filters *f, struct req_state *st, struct gf_request *r,
                           struct choice *c, const char *text, size_t len, bool final,
                           struct gf_buf *out, struct gf_err *err)
{
    if (c->stream == NULL) {
        int rc = gf_stream_new(st->p, st->group, 0, 64u << 20, &c->stream, err);
        if (rc != 0)
            return rc;
    }
    int rc = gf_stream_feed(c->stream, text, len, out, err);
    if (rc == 0 && final)
        rc = gf_stream_finish(c->stream, out, err);
    if (rc == GF_EPOLICY || (rc == 0 && final))
        choice_finished(f, st, r, c, gf_stream_verdict(c->stream));
    return rc;
}

static int output_whole(struct gf_filters *f, struct req_state *st, struct gf_request *r,
                        struct choice *c, const char *text, size_t len, bool final,
                        struct gf_buf *out, struct gf_err *err)
{
    if (c->text.max == 0)
        gf_buf_init(&c->text, 64u << 20);
    int rc = gf_buf_append(&c->text, text, len);
    if (rc != 0)
        return gf_err_set(err, rc, "the completion is too long to filter");
    if (!final)
        return 0;
    struct gf_verdict v;
    rc = gf_policy_eval(st->p, f->ctx, st->group, GF_STAGE_OUTPUT, c->text.data ? c->text.data : "",
                        c->text.len, &v, err);
    if (rc != 0)
        return rc;
    if (v.action == GF_ACTION_BLOCK)
        rc = gf_buf_puts(out, v.message ? v.message : "");
    else if (v.action == GF_ACTION_REDACT && v.redacted)
        rc = gf_buf_append(out, v.redacted, v.redacted_len);
    else
        rc = gf_buf_append(out, c->text.data ? c->text.data : "", c->text.len);
    choice_finished(f, st, r, c, &v);
    int res = v.action == GF_ACTION_BLOCK ? GF_EPOLICY : 0;
    gf_verdict_cleanup(&v);
    gf_buf_cleanup(&c->text);
    return rc ? gf_err_set(err, rc, "out of memory filtering the completion") : res;
}

static int output_hook(void *ud, struct gf_request *r, int index, const char *text, size_t len,
                       bool final, struct gf_buf *out, struct gf_err *err)
{
    struct gf_filters *f = ud;
    struct req_state *st = gf_request_state(r, f->slot);
    if (st == NULL)  // the input stage did not run: nothing to judge against
        return gf_buf_append(out, text, len);
    struct choice *c = choice_of(st, r, index);
    if (c == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    if (c->done)
        return 0;
    if (gf_request_streamed(r))
        return output_streamed(f, st, r, c, text, len, final, out, err);
    return output_whole(f, st, r, c, text, len, final, out, err);
}

static void release_hook(void *ud, struct gf_request *r)
{
    struct gf_filters *f = ud;
    state_free(gf_request_state(r, f->slot));
    gf_request_set_state(r, f->slot, NULL);
}

/* ---- /v1/moderations -------------------------------------------------------------------- */

static int moderate_hook(void *ud, struct gf_request *r, const cJSON *body, struct gf_buf *out,
                         struct gf_err *err)
{
    struct gf_filters *f = ud;
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(body, "input");
    size_t n = cJSON_IsArray(input) ? (size_t)cJSON_GetArraySize(input) : 1;
    if (!(cJSON_IsString(input) || (cJSON_IsArray(input) && n > 0 && n <= 256)))
        return gf_err_set(err, GF_EINVAL, "input: expected a string or an array of 1-256 "
                                          "strings");
    struct gf_policy *p = f->policy;
    int rc = gf_buf_printf(out, "{\"id\":\"modr-%s\",\"model\":\"gardefou-moderation\","
                                "\"policy_version\":\"%s\",\"results\":[",
                           gf_request_id(r), gf_policy_version(p));
    const cJSON *item = cJSON_IsArray(input) ? input->child : input;
    for (size_t i = 0; rc == 0 && i < n; i++, item = item->next) {
        const char *text = NULL;
        if (cJSON_IsString(item))
            text = item->valuestring;
        else if (cJSON_IsObject(item) &&
                 cJSON_IsString(cJSON_GetObjectItemCaseSensitive(item, "text")))
            text = cJSON_GetObjectItemCaseSensitive(item, "text")->valuestring;
        if (text == NULL)
            return gf_err_set(err, GF_EINVAL, "input[%zu]: expected a string", i);
        struct gf_score scores[64];
        size_t k = 0;
        if ((rc = gf_policy_moderate(p, f->ctx, text, strlen(text), scores, 64, &k, err)) != 0)
            return rc;
        bool flagged = false;
        for (size_t j = 0; j < k; j++)
            flagged |= scores[j].score >= gf_policy_category_threshold(p, scores[j].category);
        rc = gf_buf_printf(out, "%s{\"flagged\":%s,\"categories\":{", i ? "," : "",
                           flagged ? "true" : "false");
        for (size_t j = 0; rc == 0 && j < k; j++) {
            bool hit = scores[j].score >= gf_policy_category_threshold(p, scores[j].category);
            rc = gf_buf_printf(out, "%s\"%s\":%s", j ? "," : "", scores[j].category,
                               hit ? "true" : "false");
        }
        if (rc == 0)
            rc = gf_buf_puts(out, "},\"category_scores\":{");
        for (size_t j = 0; rc == 0 && j < k; j++)
            rc = gf_buf_printf(out, "%s\"%s\":%.6f", j ? "," : "", scores[j].category,
                               scores[j].score);
        if (rc == 0)
            rc = gf_buf_puts(out, "}}");
    }
    if (rc == 0)
        rc = gf_buf_puts(out, "]}");
    return rc ? gf_err_set(err, rc, "out of memory") : 0;
}

/* ---- setup ------------------------------------------------------------------------------ */

int gf_filters_start(struct event_base *base, struct gf_gateway *gw, const char *policy_file,
                     const char *model, struct gf_filters **out, struct gf_err *err)
{
    *out = NULL;
    struct gf_filters *f = gf_calloc(1, sizeof(*f));
    if (f == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    int rc = 0;
    if ((policy_file && (f->file = gf_strdup(policy_file)) == NULL) ||
        (model && (f->model = gf_strdup(model)) == NULL) || (f->ctx = gf_policy_ctx_new()) == NULL) {
        rc = gf_err_set(err, GF_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = gf_moderation_load_classifiers(f->model, &f->reg, err)) != 0 ||
        (rc = gf_moderation_load_policy(f->file, f->reg, &f->policy, err)) != 0)
        goto fail;
    for (const char *w = gf_policy_warnings(f->policy); *w;) {
        const char *nl = strchr(w, '\n');
        size_t n = nl ? (size_t)(nl - w) : strlen(w);
        gf_log(GF_LOG_WARN, "policy", "event=rule_skipped detail=\"%.*s\"", (int)n, w);
        w += n + (nl != NULL);
    }
    struct gf_hooks h = {
        .name = "policy",
        .ud = f,
        .input = input_hook,
        .output = output_hook,
        .release = release_hook,
        .moderate = moderate_hook,
    };
    f->slot = gf_gateway_hooks_count(gw);
    if ((rc = gf_gateway_add_hooks(gw, &h)) != 0) {
        gf_err_set(err, rc, "policy: cannot add the pipeline hooks");
        goto fail;
    }
    f->sighup = evsignal_new(base, SIGHUP, on_sighup, f);
    if (f->sighup == NULL || event_add(f->sighup, NULL) != 0) {
        rc = gf_err_set(err, GF_ENOMEM, "policy: cannot watch SIGHUP");
        goto fail;
    }
    gf_log(GF_LOG_INFO, "policy", "event=loaded source=\"%s\" version=%.12s classifiers=%zu",
           gf_policy_source(f->policy), gf_policy_version(f->policy),
           gf_clf_registry_count(f->reg));
    *out = f;
    return 0;
fail:
    gf_filters_stop(f);
    return rc;
}

void gf_filters_stop(struct gf_filters *f)
{
    if (f == NULL)
        return;
    if (f->sighup)
        event_free(f->sighup);
    gf_policy_unref(f->policy);
    gf_clf_registry_unref(f->reg);
    gf_policy_ctx_free(f->ctx);
    gf_free(f->file);
    gf_free(f->model);
    gf_free(f);
}
