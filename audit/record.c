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

/* key() for a literal name: one append. */
#define KEY(b, name) gf_buf_append((b), ",\"" name "\":", sizeof(",\"" name "\":") - 1)

/* ms with three decimals, as printf's "%.3f" writes it (the latency of every record): from the
 * integer thousandths when ms * 1000 is not within a hair of a rounding tie, where only printf
 * knows which way the exact binary value rounds. */
static int put_ms3(struct gf_buf *b, double ms)
{
    double t = ms * 1000.0;
    if (!(ms >= 0 && t < 1e12)) // past that, ms * 1000 may be off by more than the margin below
        return gf_buf_printf(b, "%.3f", ms);
    double whole = floor(t), frac = t - whole;
    if (fabs(frac - 0.5) < 1e-3)
        return gf_buf_printf(b, "%.3f", ms);
    uint64_t u = (uint64_t)whole + (frac > 0.5);
    char tmp[32];
    size_t i = sizeof(tmp);
    for (int d = 0; d < 3; d++, u /= 10)
        tmp[--i] = (char)('0' + u % 10);
    tmp[--i] = '.';
    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    return gf_buf_append(b, tmp + i, sizeof(tmp) - i);
}

static int str_field(struct gf_buf *b, const char *name, const char *v)
{
    if (v == NULL)
        return 0;
    int rc = key(b, name);
    return rc ? rc : gf_buf_append_json_str(b, v, strlen(v));
}

/* str_field for a literal name: its key in one append. */
static int str_field_lit(struct gf_buf *b, const char *key_lit, size_t key_len, const char *v)
{
    if (v == NULL)
        return 0;
    int rc = gf_buf_append(b, key_lit, key_len);
    return rc ? rc : gf_buf_append_json_str(b, v, strlen(v));
}
#define STR_FIELD(b, name, v) str_field_lit((b), ",\"" name "\":", sizeof(",\"" name "\":") - 1, (v))

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
    rc = rc ? rc : STR_FIELD(b, "request_id", r->request_id);
    rc = rc ? rc : STR_FIELD(b, "key_id", r->key_id);
    rc = rc ? rc : STR_FIELD(b, "client", r->client);
    rc = rc ? rc : STR_FIELD(b, "endpoint", r->endpoint);
    rc = rc ? rc : STR_FIELD(b, "model", r->model);
    rc = rc ? rc : STR_FIELD(b, "policy_version", r->policy_version);
    rc = rc ? rc : KEY(b, "status");
    rc = rc ? rc : gf_buf_put_i64(b, r->status);
    rc = rc ? rc : STR_FIELD(b, "error", r->error);
    rc = rc ? rc : STR_FIELD(b, "finish_reason", r->finish_reason);
    rc = rc ? rc : KEY(b, "stream");
    rc = rc ? rc : gf_buf_puts(b, r->stream ? "true" : "false");
    double lat = isfinite(r->latency_ms) && r->latency_ms >= 0 ? r->latency_ms : 0;
    rc = rc ? rc : gf_buf_append(b, ",\"latency_ms\":", 14);
    rc = rc ? rc : put_ms3(b, lat);
    rc = rc ? rc : gf_buf_puts(b, ",\"usage\":{\"prompt_tokens\":");
    rc = rc ? rc : gf_buf_put_i64(b, r->prompt_tokens < 0 ? 0 : r->prompt_tokens);
    int completion = r->completion_tokens < 0 ? 0 : r->completion_tokens;
    rc = rc ? rc : KEY(b, "completion_tokens");
    rc = rc ? rc : gf_buf_put_i64(b, completion);
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
    rc = rc ? rc : STR_FIELD(b, "verdict", overall);
    rc = rc ? rc : gf_buf_puts(b, ",\"verdicts\":[");
    for (size_t i = 0; rc == 0 && i < r->n_verdicts; i++) {
        const struct gf_audit_verdict *v = &r->verdicts[i];
        rc = gf_buf_puts(b, i ? ",{" : "{");
        rc = rc ? rc : gf_buf_puts(b, "\"phase\":");
        rc = rc ? rc : gf_buf_append_json_str(b, v->phase ? v->phase : "", v->phase ? strlen(v->phase) : 0);
        rc = rc ? rc : STR_FIELD(b, "rule", v->rule_id);
        rc = rc ? rc : STR_FIELD(b, "category", v->category);
        rc = rc ? rc : STR_FIELD(b, "action", v->action);
        if (rc == 0 && isfinite(v->score) && v->score >= 0)
            rc = gf_buf_printf(b, ",\"score\":%.4f", v->score);
        rc = rc ? rc : gf_buf_putc(b, '}');
    }
    rc = rc ? rc : gf_buf_putc(b, ']');
    rc = rc ? rc : STR_FIELD(b, "retention", gf_audit_retention_name(retention));
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
