/* record.c — turns a request or an admin action into a record body: the JSON after the chain
 * head, from "type" to the closing brace. The writer thread prepends {"seq":N,"prev":"H",.
 * Invariant: the output is one line of valid JSON (strings escaped, invalid UTF-8 replaced),
 * and prompt/completion text appears only as the retention mode allows. */
#include "audit/audit_int.h"

#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>

/* ,"name": -- field names are our own literals (no escaping needed); appended directly since
 * this runs for every field of every request record. */
static int key(struct gf_buf *b, const char *name)
{
    int rc = gf_buf_append(b, ",\"", 2);
    rc = rc ? rc : gf_buf_puts(b, name);
    return rc ? rc : gf_buf_append(b, "\":", 2);
}

static int int_field(struct gf_buf *b, const char *name, int64_t v)
{
    int rc = key(b, name);
    return rc ? rc : gf_buf_put_i64(b, v);
}

static int str_field(struct gf_buf *b, const char *name, const char *v)
{
    if (v == NULL)
        return 0;
    int rc = key(b, name);
    return rc ? rc : gf_buf_append_json_str(b, v, strlen(v));
}

static int rank(const char *action)
{
    static const char *const order[] = {"allow", "flag", "redact", "block"};
    for (int i = 0; action && i < 4; i++)
        if (strcmp(action, order[i]) == 0)
            return i;
    return 0;
}

static int text_field(struct gf_buf *b, const char *name, const char *text, size_t len,
                      const char *redacted, size_t redacted_len, enum gf_audit_retention ret)
{
    uint8_t d[GF_SHA256_LEN];
    char hex[AUDIT_HEX_LEN + 1];
    gf_sha256(text ? text : "", text ? len : 0, d);
    gf_hex(d, sizeof(d), hex);
    int rc = key(b, name);
    rc = rc ? rc : gf_buf_puts(b, "{\"sha256\":\"");
    rc = rc ? rc : gf_buf_append(b, hex, AUDIT_HEX_LEN);
    rc = rc ? rc : gf_buf_puts(b, "\",\"bytes\":");
    rc = rc ? rc : gf_buf_put_i64(b, text ? (int64_t)len : 0);
    if (rc == 0 && text != NULL && ret == GF_AUDIT_RETAIN_FULL) {
        rc = gf_buf_puts(b, ",\"text\":");
        if (rc == 0)
            rc = gf_buf_append_json_str(b, text, len);
    } else if (rc == 0 && text != NULL && ret == GF_AUDIT_RETAIN_REDACTED) {
        struct gf_buf s;
        gf_buf_init(&s, b->max);
        rc = audit_scrub(&s, redacted ? redacted : text, redacted ? redacted_len : len);
        if (rc == 0)
            rc = gf_buf_puts(b, ",\"text\":");
        if (rc == 0)
            rc = gf_buf_append_json_str(b, s.data ? s.data : "", s.len);
        gf_buf_cleanup(&s);
    }
    return rc ? rc : gf_buf_putc(b, '}');
}

static int ts_field(struct gf_buf *b)
{
    char ts[40];
    gf_format_time(gf_wall_ms(), ts, sizeof(ts));
    return str_field(b, "ts", ts);
}

int audit_body_request(struct gf_buf *b, const struct gf_audit_request *r,
                       enum gf_audit_retention retention)
{
    int rc = gf_buf_puts(b, "\"type\":\"request\"");
    rc = rc ? rc : ts_field(b);
    rc = rc ? rc : str_field(b, "request_id", r->request_id);
    rc = rc ? rc : str_field(b, "key_id", r->key_id);
    rc = rc ? rc : str_field(b, "client", r->client);
    rc = rc ? rc : str_field(b, "endpoint", r->endpoint);
    rc = rc ? rc : str_field(b, "model", r->model);
    rc = rc ? rc : str_field(b, "policy_version", r->policy_version);
    rc = rc ? rc : int_field(b, "status", r->status);
    rc = rc ? rc : str_field(b, "error", r->error);
    rc = rc ? rc : str_field(b, "finish_reason", r->finish_reason);
    rc = rc ? rc : key(b, "stream");
    rc = rc ? rc : gf_buf_puts(b, r->stream ? "true" : "false");
    double lat = isfinite(r->latency_ms) && r->latency_ms >= 0 ? r->latency_ms : 0;
    rc = rc ? rc : gf_buf_printf(b, ",\"latency_ms\":%.3f", lat);
    rc = rc ? rc : gf_buf_puts(b, ",\"usage\":{\"prompt_tokens\":");
    rc = rc ? rc : gf_buf_put_i64(b, r->prompt_tokens < 0 ? 0 : r->prompt_tokens);
    int completion = r->completion_tokens < 0 ? 0 : r->completion_tokens;
    rc = rc ? rc : int_field(b, "completion_tokens", completion);
    rc = rc ? rc : gf_buf_putc(b, '}');
    const char *overall = r->verdict;
    if (overall == NULL) {
        int best = 0;
        for (size_t i = 0; i < r->n_verdicts; i++)
            if (rank(r->verdicts[i].action) > best)
                best = rank(r->verdicts[i].action);
        static const char *const names[] = {"allow", "flag", "redact", "block"};
        overall = names[best];
    }
    rc = rc ? rc : str_field(b, "verdict", overall);
    rc = rc ? rc : gf_buf_puts(b, ",\"verdicts\":[");
    for (size_t i = 0; rc == 0 && i < r->n_verdicts; i++) {
        const struct gf_audit_verdict *v = &r->verdicts[i];
        rc = gf_buf_puts(b, i ? ",{" : "{");
        rc = rc ? rc : gf_buf_puts(b, "\"phase\":");
        rc = rc ? rc : gf_buf_append_json_str(b, v->phase ? v->phase : "", v->phase ? strlen(v->phase) : 0);
        rc = rc ? rc : str_field(b, "rule", v->rule_id);
        rc = rc ? rc : str_field(b, "category", v->category);
        rc = rc ? rc : str_field(b, "action", v->action);
        if (rc == 0 && isfinite(v->score) && v->score >= 0)
            rc = gf_buf_printf(b, ",\"score\":%.4f", v->score);
        rc = rc ? rc : gf_buf_putc(b, '}');
    }
    rc = rc ? rc : gf_buf_putc(b, ']');
    rc = rc ? rc : str_field(b, "retention", gf_audit_retention_name(retention));
    rc = rc ? rc
            : text_field(b, "prompt", r->prompt, r->prompt_len, r->prompt_redacted,
                         r->prompt_redacted_len, retention);
    rc = rc ? rc
            : text_field(b, "completion", r->completion, r->completion_len, NULL, 0, retention);
    return rc ? rc : gf_buf_putc(b, '}');
}

int audit_body_admin(struct gf_buf *b, const char *action, const char *subject,
                     const struct cJSON *detail)
{
    int rc = gf_buf_puts(b, "\"type\":\"admin\"");
    rc = rc ? rc : ts_field(b);
    rc = rc ? rc : str_field(b, "action", action ? action : "unknown");
    rc = rc ? rc : str_field(b, "subject", subject);
    if (rc == 0 && detail != NULL) {
        char *txt = cJSON_PrintUnformatted(detail);
        if (txt == NULL)
            return GF_ENOMEM;
        rc = gf_buf_puts(b, ",\"detail\":");
        rc = rc ? rc : gf_buf_puts(b, txt);
        cJSON_free(txt);
    }
    return rc ? rc : gf_buf_putc(b, '}');
}
