/* config.c — the configuration of `gardefou serve` as one table of rows (key path, type, range,
 * default, offset), nginx style. Defaults, the JSON file and command-line overrides all go
 * through one setter per type, so a value is checked the same way wherever it comes from.
 * Invariant: after gf_config_init succeeds every field holds a valid value; a failed load or set
 * leaves the previous value of that key in place and reports "FILE: key.path: reason". */
#include "gateway/gateway.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#define OFF(f) offsetof(struct gf_config, f)
#define MS_DAY (24LL * 3600 * 1000)

/* clang-format off */
const struct gf_config_row gf_config_rows[] = {
    /* server */
    {"server.listen", GF_CFG_STRING, 0, 0, "127.0.0.1:8080", OFF(listen), 0,
     "address to listen on, HOST:PORT (port 0 picks a free port)"},
    {"server.data_dir", GF_CFG_STRING, 0, 0, "./gardefou-data", OFF(data_dir), 0,
     "directory for keys, audit log and models made by gardefou"},
    {"server.log_level", GF_CFG_STRING, 0, 0, "info", OFF(log_level), 0,
     "debug, info, warn, error or off"},
    {"server.shutdown_grace_ms", GF_CFG_INT, 0, MS_DAY, "5000", OFF(shutdown_grace_ms), 0,
     "on SIGINT/SIGTERM, how long in-flight requests may finish before they get 503"},
    /* limits */
    {"limits.max_header_bytes", GF_CFG_INT, 1024, 1 << 20, "16384", OFF(max_header_bytes), 0,
     "largest request line + headers; more gets 431"},
    {"limits.max_body_bytes", GF_CFG_INT, 1024, 1LL << 30, "1048576", OFF(max_body_bytes), 0,
     "largest request body; more gets 413"},
    {"limits.header_timeout_ms", GF_CFG_INT, 100, MS_DAY, "10000", OFF(header_timeout_ms), 0,
     "deadline for the request line and headers, from the start of the request; 408 after"},
    {"limits.body_timeout_ms", GF_CFG_INT, 100, MS_DAY, "30000", OFF(body_timeout_ms), 0,
     "deadline for the body, from the end of the headers; 408 after"},
    {"limits.idle_timeout_ms", GF_CFG_INT, 100, MS_DAY, "60000", OFF(idle_timeout_ms), 0,
     "a keep-alive connection with no new request is closed after this"},
    {"limits.write_timeout_ms", GF_CFG_INT, 100, MS_DAY, "60000", OFF(write_timeout_ms), 0,
     "a client that reads nothing of its reply for this long is dropped"},
    {"limits.max_connections", GF_CFG_INT, 1, 1000000, "1024", OFF(max_connections), 0,
     "open client connections; more get 503 and are closed"},
    {"limits.max_inflight", GF_CFG_INT, 0, 1000000, "0", OFF(max_inflight), 0,
     "generation requests at once; more get 503 with Retry-After at once; 0 = no limit"},
    {"limits.max_rss_bytes", GF_CFG_INT, 0, 1LL << 40, "0", OFF(max_rss_bytes), 0,
     "while resident memory is above this, generation requests get 503; 0 = off"},
    {"limits.max_choices", GF_CFG_INT, 1, 128, "8", OFF(max_choices), 0,
     "largest accepted \"n\""},
    {"limits.max_messages", GF_CFG_INT, 1, 100000, "1024", OFF(max_messages), 0,
     "most chat messages in one request"},
    {"limits.max_stop", GF_CFG_INT, 0, 64, "4", OFF(max_stop), 0,
     "most entries in \"stop\""},
    /* streaming */
    {"stream.ping_interval_ms", GF_CFG_INT, 0, MS_DAY, "10000", OFF(ping_interval_ms), 0,
     "SSE comment ping while a stream waits for the engine; 0 turns pings off"},
    /* upstream engine */
    {"upstream.urls", GF_CFG_STRING_LIST, 0, 64, NULL, OFF(upstream_urls),
     OFF(n_upstream_urls), "OpenAI-compatible base URLs (http://host:port); empty = embedded"},
    {"upstream.api_key", GF_CFG_STRING, 0, 0, NULL, OFF(upstream_api_key), 0,
     "sent to the upstreams as Authorization: Bearer"},
    {"upstream.models", GF_CFG_STRING_LIST, 0, 1024, NULL, OFF(upstream_models),
     OFF(n_upstream_models), "model ids to advertise; empty = ask the upstreams"},
    {"upstream.connect_timeout_ms", GF_CFG_INT, 10, MS_DAY, "2000",
     OFF(upstream_connect_timeout_ms), 0, "connect timeout per upstream attempt"},
    {"upstream.request_timeout_ms", GF_CFG_INT, 10, MS_DAY, "120000",
     OFF(upstream_request_timeout_ms), 0,
     "whole request; for streams the longest silence from the upstream (504 after)"},
    {"upstream.health_interval_ms", GF_CFG_INT, 0, MS_DAY, "5000",
     OFF(upstream_health_interval_ms), 0, "health check period; 0 = off"},
    {"upstream.max_response_bytes", GF_CFG_INT, 1024, 1LL << 30, "16777216",
     OFF(upstream_max_response_bytes), 0, "cap on a non-streamed upstream reply"},
    {"upstream.client", GF_CFG_STRING, 0, 0, "auto", OFF(upstream_client), 0,
     "HTTP client: auto (gardefou's own for plain http:// URLs, libcurl for the others) or "
     "curl (libcurl for all)"},
    /* embedded engine */
    {"model.path", GF_CFG_STRING, 0, 0, NULL, OFF(model_path), 0,
     "GGUF model file; empty = the default synthetic model"},
    {"model.id", GF_CFG_STRING, 0, 0, NULL, OFF(model_id), 0,
     "model id to advertise; empty = derived from the file name"},
    {"model.ctx", GF_CFG_INT, 0, 1 << 20, "0", OFF(model_ctx), 0,
     "context length; 0 = the model's own"},
    {"model.threads", GF_CFG_INT, 0, 1024, "0", OFF(model_threads), 0,
     "compute threads; 0 = number of cores"},
    {"model.max_seqs", GF_CFG_INT, 1, 256, "4", OFF(model_max_seqs), 0,
     "sequences decoded together (continuous batching)"},
    {"model.chat_template", GF_CFG_STRING, 0, 0, "auto", OFF(model_chat_template), 0,
     "auto, llama2, chatml or zephyr"},
    /* keys and per-key limits (docs/keys.md) */
    {"keys.open_mode", GF_CFG_BOOL, 0, 0, "false", OFF(keys_open_mode), 0,
     "serve requests without Authorization (unlimited); requests with a key are still checked"},
    {"keys.admin_listen", GF_CFG_STRING, 0, 0, NULL, OFF(keys_admin_listen), 0,
     "admin API address HOST:PORT; unset = server.listen's host and port + 1 (a free port when "
     "that is 0); \"off\" = no admin API"},
    {"keys.default_group", GF_CFG_STRING, 0, 0, "default", OFF(keys_default_group), 0,
     "policy group of keys created without --group"},
    {"keys.rotate_grace_ms", GF_CFG_INT, 0, 366 * MS_DAY, "86400000", OFF(keys_rotate_grace_ms),
     0, "how long a rotated key's old secret keeps working, unless the rotation says"},
    {"keys.abuse_max_blocks", GF_CFG_INT, 0, 1000000, "10", OFF(keys_abuse_max_blocks), 0,
     "suspend a key blocked by the policy more than this many times in the window (the policy's "
     "abuse setting wins); 0 = never"},
    {"keys.abuse_window_ms", GF_CFG_INT, 1000, 366 * MS_DAY, "600000", OFF(keys_abuse_window_ms),
     0, "the window of keys.abuse_max_blocks"},
    {"keys.recheck_ms", GF_CFG_INT, 10, 60000, "250", OFF(keys_recheck_ms), 0,
     "how often keys of requests in flight are rechecked (expiry ends streams within this)"},
    {"keys.snapshot_every", GF_CFG_INT, 1, 10000000, "1000", OFF(keys_snapshot_every), 0,
     "key store changes between snapshots of DATA_DIR/keys"},
    {"keys.usage_snapshot_ms", GF_CFG_INT, 100, MS_DAY, "10000", OFF(keys_usage_snapshot_ms), 0,
     "daily token counts are saved to DATA_DIR/keys/usage.json this often (and at shutdown)"},
    {"keys.allow_core_dumps", GF_CFG_BOOL, 0, 0, "false", OFF(keys_allow_core_dumps), 0,
     "allow core files (they could hold secrets in transit); off sets RLIMIT_CORE 0"},
    {"limits.default_rpm", GF_CFG_INT, 0, 1000000000000LL, "0", OFF(limits_default_rpm), 0,
     "requests per minute of keys created without --rpm; 0 = unlimited"},
    {"limits.default_tpm", GF_CFG_INT, 0, 1000000000000LL, "0", OFF(limits_default_tpm), 0,
     "tokens per minute of keys created without --tpm; 0 = unlimited"},
    {"limits.default_max_concurrent", GF_CFG_INT, 0, 1000000000000LL, "0",
     OFF(limits_default_max_concurrent), 0,
     "requests in flight per key created without --max-concurrent; 0 = unlimited"},
    {"limits.default_daily_tokens", GF_CFG_INT, 0, 1000000000000LL, "0",
     OFF(limits_default_daily_tokens), 0,
     "tokens per UTC day of keys created without --daily-tokens; 0 = unlimited"},
    /* content policy (docs/policy.md) */
    {"policy.file", GF_CFG_STRING, 0, 0, NULL, OFF(policy_file), 0,
     "policy file; empty = the built-in default policy"},
    {"policy.classifiers", GF_CFG_STRING, 0, 0, NULL, OFF(policy_classifiers), 0,
     "trained classifier model; empty = models/moderation.gguf when present, none = no model"},
    /* audit log */
    {"audit.dir", GF_CFG_STRING, 0, 0, NULL, OFF(audit_dir), 0,
     "audit log directory; empty = DATA_DIR/audit"},
    {"audit.hmac_key_file", GF_CFG_STRING, 0, 0, NULL, OFF(audit_hmac_key_file), 0,
     "checkpoint HMAC key (64 hex digits, created if absent); empty = DATA_DIR/audit.key"},
    {"audit.retention", GF_CFG_STRING, 0, 0, "hashes", OFF(audit_retention), 0,
     "prompt/completion text kept: hashes, redacted or full"},
    {"audit.durability", GF_CFG_STRING, 0, 0, "fsync", OFF(audit_durability), 0,
     "a reply waits until its record is: fsync (synced), write (written) or none (queued)"},
    {"audit.fail_closed", GF_CFG_BOOL, 0, 0, "true", OFF(audit_fail_closed), 0,
     "refuse requests with 503 while the audit log cannot be written"},
    {"audit.checkpoint_every", GF_CFG_INT, 1, 1000000000, "1000", OFF(audit_checkpoint_every), 0,
     "records between HMAC checkpoints"},
    {"audit.checkpoint_interval_ms", GF_CFG_INT, 0, MS_DAY, "10000",
     OFF(audit_checkpoint_interval_ms), 0, "longest time a record stays unsealed; 0 = off"},
    {"audit.segment_max_bytes", GF_CFG_INT, 4096, 1LL << 40, "67108864",
     OFF(audit_segment_max_bytes), 0, "rotate before a segment file would exceed this"},
    {"audit.commit_interval_ms", GF_CFG_INT, 0, 1000, "2", OFF(audit_commit_interval_ms), 0,
     "group commit: at most one fsync per interval"},
    {"audit.commit_max_records", GF_CFG_INT, 1, 1000000, "1024", OFF(audit_commit_max_records),
     0, "group commit: sync at once when this many records wait"},
    {"audit.retry_interval_ms", GF_CFG_INT, 1, 3600000, "500", OFF(audit_retry_interval_ms), 0,
     "after a failed write, how often the writer retries (Retry-After follows it)"},
    {NULL, 0, 0, 0, NULL, 0, 0, NULL},
};
/* clang-format on */

const struct gf_config_row *gf_config_find(const char *path)
{
    for (const struct gf_config_row *r = gf_config_rows; r->path; r++)
        if (strcmp(r->path, path) == 0)
            return r;
    return NULL;
}

static char **str_field(struct gf_config *cfg, const struct gf_config_row *r)
{
    return (char **)((char *)cfg + r->offset);
}

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gf_free(list[i]);
    gf_free(list);
}

static int set_string(struct gf_config *cfg, const struct gf_config_row *r, const char *v)
{
    char *copy = NULL;
    if (v != NULL && v[0] != '\0') {
        copy = gf_strdup(v);
        if (copy == NULL)
            return GF_ENOMEM;
    }
    char **f = str_field(cfg, r);
    gf_free(*f);
    *f = copy;
    return 0;
}

static int list_append(struct gf_config *cfg, const struct gf_config_row *r, const char *v,
                       struct gf_err *err)
{
    char ***lf = (char ***)((char *)cfg + r->offset);
    size_t *nf = (size_t *)((char *)cfg + r->count_offset);
    if ((int64_t)*nf >= r->max)
        return gf_err_set(err, GF_EINVAL, "%s: more than %lld entries", r->path,
                          (long long)r->max);
    if (v[0] == '\0')
        return gf_err_set(err, GF_EINVAL, "%s: empty entry", r->path);
    char *copy = gf_strdup(v);
    if (copy == NULL)
        return gf_err_set(err, GF_ENOMEM, "%s: out of memory", r->path);
    char **nl = gf_realloc(*lf, (*nf + 1) * sizeof(char *));
    if (nl == NULL) {
        gf_free(copy);
        return gf_err_set(err, GF_ENOMEM, "%s: out of memory", r->path);
    }
    nl[(*nf)++] = copy;
    *lf = nl;
    return 0;
}

static void list_clear(struct gf_config *cfg, const struct gf_config_row *r)
{
    char ***lf = (char ***)((char *)cfg + r->offset);
    size_t *nf = (size_t *)((char *)cfg + r->count_offset);
    free_list(*lf, *nf);
    *lf = NULL;
    *nf = 0;
}

static int check_int(const struct gf_config_row *r, int64_t v, struct gf_err *err)
{
    if (v < r->min || v > r->max)
        return gf_err_set(err, GF_EINVAL, "%s: %lld is out of range [%lld, %lld]", r->path,
                          (long long)v, (long long)r->min, (long long)r->max);
    return 0;
}

/* Checks values whose validity is more than a range. */
static int check_string(const struct gf_config_row *r, const char *v, struct gf_err *err)
{
    if (strcmp(r->path, "server.log_level") == 0) {
        enum gf_log_level lv;
        if (v == NULL || gf_log_level_parse(v, &lv) != 0)
            return gf_err_set(err, GF_EINVAL, "%s: expected debug, info, warn, error or off",
                              r->path);
    }
    if (strcmp(r->path, "upstream.client") == 0 &&
        (v == NULL || (strcmp(v, "auto") != 0 && strcmp(v, "curl") != 0)))
        return gf_err_set(err, GF_EINVAL, "%s: expected auto or curl, got \"%s\"", r->path,
                          v ? v : "");
    if (strcmp(r->path, "server.listen") == 0) {
        const char *colon = v ? strrchr(v, ':') : NULL;
        int64_t port;
        if (colon == NULL || colon == v || gf_parse_i64(colon + 1, 0, 65535, &port) != 0)
            return gf_err_set(err, GF_EINVAL, "%s: expected HOST:PORT, got \"%s\"", r->path,
                              v ? v : "");
    }
    if (strcmp(r->path, "upstream.urls") == 0 && v != NULL && strncmp(v, "http://", 7) != 0 &&
        strncmp(v, "https://", 8) != 0)
        return gf_err_set(err, GF_EINVAL, "%s: \"%s\" is not an http:// or https:// URL",
                          r->path, v);
    return 0;
}

int gf_config_set(struct gf_config *cfg, const char *path, const char *value, bool append,
                  struct gf_err *err)
{
    const struct gf_config_row *r = gf_config_find(path);
    if (r == NULL)
        return gf_err_set(err, GF_EINVAL, "%s: unknown key", path);
    switch (r->type) {
    case GF_CFG_STRING: {
        int rc = check_string(r, value, err);
        if (rc)
            return rc;
        if (set_string(cfg, r, value) != 0)
            return gf_err_set(err, GF_ENOMEM, "%s: out of memory", path);
        return 0;
    }
    case GF_CFG_INT: {
        int64_t v;
        if (gf_parse_i64(value, INT64_MIN, INT64_MAX, &v) != 0)
            return gf_err_set(err, GF_EINVAL, "%s: expected an integer, got \"%s\"", path,
                              value);
        int rc = check_int(r, v, err);
        if (rc)
            return rc;
        *(int64_t *)((char *)cfg + r->offset) = v;
        return 0;
    }
    case GF_CFG_BOOL: {
        bool v;
        if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
            v = true;
        else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
            v = false;
        else
            return gf_err_set(err, GF_EINVAL, "%s: expected true or false, got \"%s\"", path,
                              value);
        *(bool *)((char *)cfg + r->offset) = v;
        return 0;
    }
    case GF_CFG_STRING_LIST: {
        int rc = check_string(r, value, err);
        if (rc)
            return rc;
        if (!append)
            list_clear(cfg, r);
        return list_append(cfg, r, value, err);
    }
    }
    return gf_err_set(err, GF_EINVAL, "%s: bad row type", path);
}

void gf_config_cleanup(struct gf_config *cfg)
{
    for (const struct gf_config_row *r = gf_config_rows; r->path; r++) {
        if (r->type == GF_CFG_STRING) {
            char **f = str_field(cfg, r);
            gf_free(*f);
            *f = NULL;
        } else if (r->type == GF_CFG_STRING_LIST) {
            list_clear(cfg, r);
        }
    }
}

int gf_config_init(struct gf_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (const struct gf_config_row *r = gf_config_rows; r->path; r++) {
        if (r->def == NULL)
            continue;
        struct gf_err err = {0};
        int rc = gf_config_set(cfg, r->path, r->def, false, &err);
        if (rc) {
            gf_config_cleanup(cfg);
            return rc;
        }
    }
    return 0;
}

/* ---- JSON file ------------------------------------------------------------------------- */

static bool is_section(const char *path)
{
    size_t n = strlen(path);
    for (const struct gf_config_row *r = gf_config_rows; r->path; r++)
        if (strncmp(r->path, path, n) == 0 && r->path[n] == '.')
            return true;
    return false;
}

static const char *type_name(const struct gf_config_row *r)
{
    switch (r->type) {
    case GF_CFG_STRING:
        return "a string";
    case GF_CFG_INT:
        return "an integer";
    case GF_CFG_BOOL:
        return "true or false";
    case GF_CFG_STRING_LIST:
        return "an array of strings";
    }
    return "?";
}

static int load_value(struct gf_config *cfg, const struct gf_config_row *r, const cJSON *v,
                      struct gf_err *err)
{
    char num[32];
    switch (r->type) {
    case GF_CFG_STRING:
        if (cJSON_IsNull(v))
            return gf_config_set(cfg, r->path, NULL, false, err);
        if (!cJSON_IsString(v))
            break;
        return gf_config_set(cfg, r->path, v->valuestring, false, err);
    case GF_CFG_INT: {
        if (!cJSON_IsNumber(v))
            break;
        double d = v->valuedouble;
        // Range first: converting an out-of-range double to an integer is undefined.
        if (!(d >= -9.2e18 && d <= 9.2e18) || d != (double)(int64_t)d)
            return gf_err_set(err, GF_EINVAL, "%s: expected an integer, got %g", r->path, d);
        snprintf(num, sizeof(num), "%lld", (long long)(int64_t)d);
        return gf_config_set(cfg, r->path, num, false, err);
    }
    case GF_CFG_BOOL:
        if (!cJSON_IsBool(v))
            break;
        return gf_config_set(cfg, r->path, cJSON_IsTrue(v) ? "true" : "false", false, err);
    case GF_CFG_STRING_LIST: {
        if (!cJSON_IsArray(v))
            break;
        const cJSON *it;
        int i = 0;
        cJSON_ArrayForEach(it, v)
        {
            if (!cJSON_IsString(it))
                return gf_err_set(err, GF_EINVAL, "%s[%d]: expected a string", r->path, i);
            i++;
        }
        list_clear(cfg, r);
        cJSON_ArrayForEach(it, v)
        {
            int rc = gf_config_set(cfg, r->path, it->valuestring, true, err);
            if (rc)
                return rc;
        }
        return 0;
    }
    }
    return gf_err_set(err, GF_EINVAL, "%s: expected %s", r->path, type_name(r));
}

static int load_object(struct gf_config *cfg, const cJSON *obj, const char *prefix, int depth,
                       struct gf_err *err)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, obj)
    {
        char path[256];
        int n = snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "",
                         it->string ? it->string : "");
        if (n < 0 || (size_t)n >= sizeof(path))
            return gf_err_set(err, GF_EINVAL, "%.64s...: key path too long", path);
        for (const cJSON *dup = it->next; dup; dup = dup->next)
            if (dup->string && it->string && strcmp(dup->string, it->string) == 0)
                return gf_err_set(err, GF_EINVAL, "%s: duplicate key", path);
        const struct gf_config_row *r = gf_config_find(path);
        if (r != NULL) {
            int rc = load_value(cfg, r, it, err);
            if (rc)
                return rc;
            continue;
        }
        if (!is_section(path))
            return gf_err_set(err, GF_EINVAL, "%s: unknown key", path);
        if (!cJSON_IsObject(it))
            return gf_err_set(err, GF_EINVAL, "%s: expected an object", path);
        if (depth > 8)
            return gf_err_set(err, GF_EINVAL, "%s: nested too deep", path);
        int rc = load_object(cfg, it, path, depth + 1, err);
        if (rc)
            return rc;
    }
    return 0;
}

int gf_config_load_text(struct gf_config *cfg, const char *name, const char *text, size_t len,
                        struct gf_err *err)
{
    struct gf_err e = {0};
    int rc;
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (root == NULL) {
        const char *at = cJSON_GetErrorPtr();
        // cJSON reports NULL both for malformed text and for allocation failure
        if (at != NULL && at >= text && at <= text + len) {
            size_t line = 1;
            for (const char *p = text; p < at; p++)
                line += *p == '\n';
            rc = gf_err_set(&e, GF_EFORMAT, "line %zu: invalid JSON", line);
        } else {
            rc = gf_err_set(&e, GF_EFORMAT, "invalid JSON or out of memory");
        }
    } else if (!cJSON_IsObject(root)) {
        rc = gf_err_set(&e, GF_EINVAL, "the top level must be an object");
    } else {
        rc = load_object(cfg, root, "", 0, &e);
    }
    cJSON_Delete(root);
    if (rc) {
        gf_err_prefix(&e, name);
        gf_err_set(err, e.code, "%s", e.msg);
    }
    return rc;
}

int gf_config_load_file(struct gf_config *cfg, const char *file, struct gf_err *err)
{
    FILE *f = fopen(file, "rb");
    if (f == NULL)
        return gf_err_set(err, GF_EIO, "%s: cannot open: %s", file, strerror(errno));
    struct gf_buf b;
    gf_buf_init(&b, 4 << 20);
    char chunk[4096];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        rc = gf_buf_append(&b, chunk, n);
        if (rc)
            break;
    }
    if (rc == 0 && ferror(f))
        rc = GF_EIO;
    fclose(f);
    if (rc) {
        gf_buf_cleanup(&b);
        return gf_err_set(err, rc, "%s: %s", file,
                          rc == GF_ETOOBIG ? "larger than 4 MiB" : gf_strerror(rc));
    }
    rc = gf_config_load_text(cfg, file, b.data ? b.data : "", b.len, err);
    gf_buf_cleanup(&b);
    return rc;
}
