/* audit_gate.c — the audit log in `gardefou serve`: opens it from the audit.* keys and plugs
 * into the pipeline. The authenticate hook refuses requests with 503 while the log cannot be
 * written (fail closed); the audit hook turns every ending API request into a record and holds
 * the reply until the writer confirms it. Invariant: a request is answered 2xx only after its
 * record is durable per audit.durability, unless audit.fail_closed is false. */
#include "gateway/gateway_int.h"

#include <string.h>

#include <cjson/cJSON.h>

#include "policy/policy.h"

struct pending {
    struct pending *prev, *next;
    struct gf_audit_gate *g;
    struct gf_request *r;      // NULL once orphaned (the gateway was freed first)
    void (*done)(struct gf_request *r, int rc);
};

struct gf_audit_gate {
    struct gf_audit *log;
    bool fail_closed;
    struct pending *pending;   // requests waiting for their record
    uint64_t unaudited;        // fail-open: answers given without a record
    gf_audit_reload_fn reload; // the policy reload the admin API calls through us
    void *reload_ud;
};

/* ---- notes from the policy ---------------------------------------------------------------- */

int gf_audit_note_policy(struct gf_request *r, const char *phase, const struct gf_verdict *v)
{
    if (v == NULL)
        return 0;
    int rc = v->policy_version ? gf_request_set_policy_version(r, v->policy_version) : 0;
    for (size_t i = 0; rc == 0 && i < v->n_fired; i++) {
        const struct gf_fired *f = &v->fired[i];
        rc = gf_request_note_verdict(r, phase, f->rule, f->type, gf_action_name(f->action),
                                     f->score);
    }
    return rc == GF_ETOOBIG ? 0 : rc; // past 256 verdicts the record keeps the first ones
}

/* ---- building the record ------------------------------------------------------------------ */

/* Appends a message content (a string or an array of parts with "text") to b. */
static int put_content(struct gf_buf *b, const cJSON *c)
{
    if (cJSON_IsString(c))
        return gf_buf_puts(b, c->valuestring);
    const cJSON *part;
    int rc = 0;
    cJSON_ArrayForEach(part, c)
    {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (cJSON_IsString(t))
            rc = rc ? rc : gf_buf_puts(b, t->valuestring);
    }
    return rc;
}

/* The prompt as the client sent it: chat messages as "role: content" lines, or the prompt. */
static int prompt_from_body(struct gf_buf *b, const cJSON *body)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
    const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(body, "prompt");
    int rc = 0;
    if (cJSON_IsArray(msgs)) {
        const cJSON *m;
        cJSON_ArrayForEach(m, msgs)
        {
            const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
            rc = rc ? rc : gf_buf_puts(b, cJSON_IsString(role) ? role->valuestring : "?");
            rc = rc ? rc : gf_buf_puts(b, ": ");
            rc = rc ? rc : put_content(b, cJSON_GetObjectItemCaseSensitive(m, "content"));
            rc = rc ? rc : gf_buf_putc(b, '\n');
        }
    } else if (cJSON_IsString(prompt)) {
        rc = gf_buf_puts(b, prompt->valuestring);
    } else if (cJSON_IsArray(prompt)) {
        const cJSON *p;
        cJSON_ArrayForEach(p, prompt)
        {
            if (cJSON_IsString(p)) {
                rc = rc ? rc : gf_buf_puts(b, p->valuestring);
                rc = rc ? rc : gf_buf_putc(b, '\n');
            }
        }
    }
    return rc;
}

/* The prompt as the engine got it (after input redaction), in the same shape. */
static int prompt_from_gen(struct gf_buf *b, const struct gf_gen_request *g)
{
    int rc = 0;
    if (g->kind == GF_GEN_CHAT) {
        for (size_t i = 0; rc == 0 && i < g->n_messages; i++) {
            rc = gf_buf_puts(b, g->messages[i].role ? g->messages[i].role : "?");
            rc = rc ? rc : gf_buf_puts(b, ": ");
            rc = rc ? rc : gf_buf_puts(b, g->messages[i].content ? g->messages[i].content : "");
            rc = rc ? rc : gf_buf_putc(b, '\n');
        }
    } else if (g->prompt) {
        rc = gf_buf_puts(b, g->prompt);
    }
    return rc;
}

static const char *endpoint_of(enum gf_route route)
{
    switch (route) {
    case GF_ROUTE_CHAT:
        return "/v1/chat/completions";
    case GF_ROUTE_COMPLETIONS:
        return "/v1/completions";
    case GF_ROUTE_MODELS:
        return "/v1/models";
    default:
        return NULL;
    }
}

static void unlink_pending(struct pending *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        p->g->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

/* The Retry-After of a 503 while the log cannot be written: when the writer tries again. */
static void add_retry_after(struct gf_audit_gate *g, struct gf_request *r)
{
    char v[16];
    snprintf(v, sizeof(v), "%d", gf_audit_retry_after_s(g->log));
    gf_request_add_header(r, "Retry-After", v); // fails only once a stream started: no matter
}

static void on_record(void *ud, int status, uint64_t seq)
{
    (void)seq;
    struct pending *p = ud;
    unlink_pending(p);
    if (p->r != NULL) {
        if (status != 0 && !p->g->fail_closed) {
            p->g->unaudited++;
            status = 0; // fail open: served without its record (counted in the log's outage)
        }
        if (status == GF_EIO)
            add_retry_after(p->g, p->r);
        p->done(p->r, status);
    }
    gf_free(p);
}

static void audit_hook(void *ud, struct gf_request *r, void (*done)(struct gf_request *r, int rc))
{
    struct gf_audit_gate *g = ud;
    const struct gf_gen_request *gen = gf_request_gen(r);
    struct gf_buf prompt, redacted, completion;
    size_t cap = 64u << 20;
    gf_buf_init(&prompt, cap);
    gf_buf_init(&redacted, cap);
    gf_buf_init(&completion, cap);
    int rc = 0;
    // The prompt as the engine got it is kept only by retention "redacted" (the other modes
    // keep the client's text or its digest): not built for them.
    bool want_redacted = gf_audit_config(g->log)->retention == GF_AUDIT_RETAIN_REDACTED;
    const cJSON *body = gf_request_body(r);
    if (body != NULL) {
        rc = prompt_from_body(&prompt, body);
        if (gen != NULL && want_redacted) // gen is NULL when the body failed validation
            rc = rc ? rc : prompt_from_gen(&redacted, gen);
    }
    int n_choices = gf_request_n_choices(r);
    const char *one = NULL; // a single choice's text is recorded where it is, not copied
    size_t one_len = 0;
    if (rc == 0 && n_choices == 1) {
        one = gf_request_output(r, 0, &one_len);
        if (one == NULL)
            one_len = 0;
        else if (one_len > cap)
            rc = GF_ETOOBIG;
    }
    for (int i = 0; rc == 0 && n_choices > 1 && i < n_choices; i++) {
        size_t len = 0;
        const char *t = gf_request_output(r, i, &len);
        if (i > 0)
            rc = gf_buf_puts(&completion, "\n\n");
        if (rc == 0 && t != NULL)
            rc = gf_buf_append(&completion, t, len);
    }
    const char *msg = "";
    int code = gf_request_error(r, &msg);
    int status = gf_request_status(r);
    if (status == 0 && code == 0)
        status = 200; // a success whose reply is built after this record
    struct gf_gen_usage usage = gf_request_usage(r);
    const struct gf_audit_verdict *vs = NULL;
    size_t nv = gf_request_verdicts(r, &vs);
    const char *key = gf_request_key(r);
    bool same = prompt.len == redacted.len &&
                (prompt.len == 0 || memcmp(prompt.data, redacted.data, prompt.len) == 0);
    struct gf_audit_request rec = {
        .request_id = gf_request_id(r),
        .key_id = key && *key ? key : NULL,
        .client = *gf_request_client(r) ? gf_request_client(r) : NULL,
        .endpoint = endpoint_of(gf_request_route(r)),
        .model = gen ? gen->model : NULL,
        .policy_version = gf_request_policy_version(r),
        .verdicts = vs,
        .n_verdicts = nv,
        .prompt_tokens = usage.prompt_tokens,
        .completion_tokens = usage.completion_tokens,
        .latency_ms = (double)(gf_now_ns() - gf_request_start_ns(r)) / 1e6,
        .finish_reason = gf_request_finish_reason(r),
        .status = status,
        .error = code != 0 ? (msg && *msg ? msg : gf_strerror(code)) : NULL,
        .stream = gf_request_streamed(r),
        .prompt = body ? (prompt.data ? prompt.data : "") : NULL,
        .prompt_len = prompt.len,
        .prompt_redacted =
            body && want_redacted && !same ? (redacted.data ? redacted.data : "") : NULL,
        .prompt_redacted_len = redacted.len,
        .completion = n_choices == 1  ? (one ? one : "")
                      : n_choices > 1 ? (completion.data ? completion.data : "")
                                      : NULL,
        .completion_len = n_choices == 1 ? one_len : completion.len,
    };
    struct pending *p = NULL;
    if (rc == 0 && (p = gf_calloc(1, sizeof(*p))) == NULL)
        rc = GF_ENOMEM;
    if (rc == 0) {
        p->g = g;
        p->r = r;
        p->done = done;
        p->next = g->pending;
        if (g->pending)
            g->pending->prev = p;
        g->pending = p;
        rc = gf_audit_log_request(g->log, &rec, on_record, p);
        if (rc != 0) {
            unlink_pending(p);
            gf_free(p);
        }
    }
    gf_buf_cleanup(&prompt);
    gf_buf_cleanup(&redacted);
    gf_buf_cleanup(&completion);
    if (rc != 0) {
        gf_log(GF_LOG_ERROR, "audit", "req=%s event=record_refused err=%s", gf_request_id(r),
               gf_strerror(rc));
        if (!g->fail_closed) {
            g->unaudited++;
            rc = 0;
        } else if (rc == GF_EIO) {
            add_retry_after(g, r);
        }
        done(r, rc);
    }
}

static int check_hook(void *ud, struct gf_request *r, struct gf_err *err)
{
    struct gf_audit_gate *g = ud;
    if (g->fail_closed && !gf_audit_writable(g->log)) {
        add_retry_after(g, r);
        return gf_err_set(err, GF_EAGAIN,
                          "the audit log cannot be written; requests are refused until it can");
    }
    return 0;
}

/* ---- start / stop --------------------------------------------------------------------------- */

int gf_audit_gate_start(struct event_base *base, struct gf_gateway *gw,
                        const struct gf_config *cfg, struct gf_audit_gate **out,
                        struct gf_err *err)
{
    *out = NULL;
    struct gf_audit_config ac;
    gf_audit_config_default(&ac);
    if (gf_audit_retention_parse(cfg->audit_retention, &ac.retention) != 0)
        return gf_err_set(err, GF_EINVAL, "audit.retention: expected hashes, redacted or full, "
                                          "got \"%s\"", cfg->audit_retention ? cfg->audit_retention : "");
    if (gf_audit_durability_parse(cfg->audit_durability, &ac.durability) != 0)
        return gf_err_set(err, GF_EINVAL, "audit.durability: expected fsync, write or none, "
                                          "got \"%s\"", cfg->audit_durability ? cfg->audit_durability : "");
    ac.checkpoint_every = (int)cfg->audit_checkpoint_every;
    ac.checkpoint_interval_ms = (int)cfg->audit_checkpoint_interval_ms;
    ac.segment_max_bytes = cfg->audit_segment_max_bytes;
    ac.commit_interval_ms = (int)cfg->audit_commit_interval_ms;
    ac.commit_max_records = (int)cfg->audit_commit_max_records;
    ac.retry_interval_ms = (int)cfg->audit_retry_interval_ms;
    struct gf_audit_gate *g = gf_calloc(1, sizeof(*g));
    char *dir = NULL, *key = NULL;
    int rc = GF_ENOMEM;
    if (g == NULL)
        goto fail;
    g->fail_closed = cfg->audit_fail_closed;
    if (cfg->audit_dir && *cfg->audit_dir) {
        ac.dir = cfg->audit_dir;
    } else {
        size_t n = strlen(cfg->data_dir) + sizeof("/audit");
        if ((dir = gf_malloc(n)) == NULL)
            goto fail;
        snprintf(dir, n, "%s/audit", cfg->data_dir);
        ac.dir = dir;
    }
    if (cfg->audit_hmac_key_file && *cfg->audit_hmac_key_file) {
        ac.key_file = cfg->audit_hmac_key_file;
    } else {
        size_t n = strlen(cfg->data_dir) + sizeof("/audit.key");
        if ((key = gf_malloc(n)) == NULL)
            goto fail;
        snprintf(key, n, "%s/audit.key", cfg->data_dir);
        ac.key_file = key;
    }
    if ((rc = gf_audit_open(&ac, base, &g->log, err)) != 0)
        goto fail_quiet;
    struct gf_hooks h = {
        .name = "audit",
        .ud = g,
        .authenticate = check_hook,
        .audit = audit_hook,
    };
    if ((rc = gf_gateway_add_hooks(gw, &h)) != 0) {
        gf_err_set(err, rc, "audit: cannot add the pipeline hooks");
        goto fail_quiet;
    }
    gf_free(dir);
    gf_free(key);
    *out = g;
    return 0;
fail:
    gf_err_set(err, rc, "audit: out of memory");
fail_quiet:
    if (g)
        gf_audit_close(g->log);
    gf_free(g);
    gf_free(dir);
    gf_free(key);
    return rc;
}

void gf_audit_gate_stop(struct gf_audit_gate *g)
{
    if (g == NULL)
        return;
    for (struct pending *p = g->pending; p; p = p->next)
        p->r = NULL; // their requests were freed with the gateway
    gf_audit_close(g->log); // runs the callbacks: they free the orphaned entries
    if (g->unaudited)
        gf_log(GF_LOG_WARN, "audit", "event=unaudited_answers count=%llu",
               (unsigned long long)g->unaudited);
    gf_free(g);
}

struct gf_audit *gf_audit_gate_log(struct gf_audit_gate *g)
{
    return g ? g->log : NULL;
}

void gf_audit_gate_admin_event(void *ud, const char *action, const char *key_id,
                               const char *group, const char *detail)
{
    struct gf_audit_gate *g = ud;
    if (g == NULL || g->log == NULL)
        return;
    cJSON *d = cJSON_CreateObject();
    if (d == NULL || (group && !cJSON_AddStringToObject(d, "group", group)) ||
        (detail && !cJSON_AddStringToObject(d, "detail", detail))) {
        cJSON_Delete(d);
        gf_log(GF_LOG_ERROR, "audit", "event=admin_record_lost action=%s", action);
        return;
    }
    int rc = gf_audit_log_admin(g->log, action, key_id, d, NULL, NULL);
    cJSON_Delete(d);
    if (rc != 0)
        gf_log(GF_LOG_ERROR, "audit", "event=admin_record_lost action=%s err=%s", action,
               gf_strerror(rc));
}

void gf_audit_gate_set_reload(struct gf_audit_gate *g, gf_audit_reload_fn fn, void *ud)
{
    g->reload = fn;
    g->reload_ud = ud;
}

int gf_audit_gate_reload(void *ud, struct gf_buf *out, struct gf_err *err)
{
    struct gf_audit_gate *g = ud;
    if (g->reload == NULL)
        return gf_err_set(err, GF_EUNSUPPORTED, "no policy to reload");
    size_t start = out ? out->len : 0;
    int rc = g->reload(g->reload_ud, out, err);
    cJSON *d = cJSON_CreateObject();
    if (d != NULL && rc == 0 && out != NULL && out->len > start) {
        cJSON *res = cJSON_ParseWithLength(out->data + start, out->len - start);
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(res, "policy_version");
        if (cJSON_IsString(v))
            cJSON_AddStringToObject(d, "policy_version", v->valuestring);
        cJSON_Delete(res);
    }
    if (d != NULL && rc != 0)
        cJSON_AddStringToObject(d, "error", err && err->msg[0] ? err->msg : gf_strerror(rc));
    int arc = d ? gf_audit_log_admin(g->log, rc == 0 ? "policy_reloaded" : "policy_reload_failed",
                                     NULL, d, NULL, NULL)
                : GF_ENOMEM;
    if (arc != 0)
        gf_log(GF_LOG_ERROR, "audit", "event=admin_record_lost action=policy_reloaded err=%s",
               gf_strerror(arc));
    cJSON_Delete(d);
    return rc;
}
