/* admin.c — the admin API: its own HTTP listener (keys.admin_listen) on the gateway's loop, so it
 * can stay on loopback while the OpenAI API is exposed. Every route sits under /admin/v1/ and
 * needs "Authorization: Bearer <admin key>", compared by digest in constant time. Invariant:
 * a change is durable (store fsync) before its answer is sent, and a revocation has ended the
 * requests in flight on the key (gf_admin_cut_fn) before the answer is sent. Secrets appear only
 * in the body of a create or rotate answer. */
#include "gateway/keys_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>

#define PREFIX "/admin/v1/"

struct gf_admin {
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct gf_keys *keys;
    uint8_t digest[GF_SHA256_LEN]; // of the admin key
    int port;
    size_t max_body;
    gf_admin_reload_fn reload;
    void *reload_ud;
    gf_admin_cut_fn cut;
    void *cut_ud;
};

/* ---- replies --------------------------------------------------------------------------- */

static void send_json(struct evhttp_request *req, int status, struct gf_buf *body)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    evhttp_add_header(h, "Cache-Control", "no-store");
    struct evbuffer *eb = evbuffer_new();
    if (eb == NULL) {
        evhttp_send_error(req, 500, NULL);
        return;
    }
    evbuffer_add(eb, body->data ? body->data : "", body->len);
    evbuffer_add(eb, "\n", 1);
    evhttp_send_reply(req, status, NULL, eb);
    evbuffer_free(eb);
}

static void send_error(struct evhttp_request *req, int status, const char *code,
                       const char *message, const char *param)
{
    const char *type = status == 401   ? "authentication_error"
                       : status == 404 ? "invalid_request_error"
                       : status >= 500 ? "server_error"
                                       : "invalid_request_error";
    struct gf_buf b;
    gf_buf_init(&b, 4096);
    int rc = gf_buf_puts(&b, "{\"error\":{\"message\":");
    rc = rc ? rc : gf_buf_append_json_str(&b, message, strlen(message));
    rc = rc ? rc : gf_buf_printf(&b, ",\"type\":\"%s\",\"param\":", type);
    rc = rc      ? rc
         : param ? gf_buf_append_json_str(&b, param, strlen(param))
                 : gf_buf_puts(&b, "null");
    rc = rc ? rc : gf_buf_printf(&b, ",\"code\":\"%s\"}}", code);
    if (rc)
        evhttp_send_error(req, 500, NULL);
    else
        send_json(req, status, &b);
    gf_buf_cleanup(&b);
}

static void send_gf_error(struct evhttp_request *req, int code, const struct gf_err *err,
                          const char *param)
{
    const char *msg = err->msg[0] ? err->msg : gf_strerror(code);
    switch (code) {
    case GF_EINVAL:
    case GF_EFORMAT:
        send_error(req, 400, "invalid_value", msg, param);
        break;
    case GF_ENOTFOUND:
        send_error(req, 404, "not_found", msg, NULL);
        break;
    case GF_ETOOBIG:
        send_error(req, 413, "request_too_large", msg, NULL);
        break;
    case GF_EUNSUPPORTED:
        send_error(req, 501, "not_implemented", msg, NULL);
        break;
    default:
        send_error(req, 500, "internal_error", msg, NULL);
    }
}

static int put_time(struct gf_buf *b, const char *name, int64_t ms)
{
    if (ms == 0)
        return gf_buf_printf(b, ",\"%s\":null", name);
    return gf_buf_printf(b, ",\"%s\":%lld", name, (long long)(ms / 1000));
}

/* The admin view of a key: no digests; the secret only when given (create, rotate). */
static int key_json(struct gf_buf *b, const struct gf_key *k, const char *secret)
{
    int64_t now = gf_wall_ms();
    int rc = gf_buf_printf(
        b, "{\"object\":\"api_key\",\"id\":\"%s\",\"prefix\":\"%s\",\"name\":", k->id, k->prefix);
    rc = rc ? rc : gf_buf_append_json_str(b, k->name, strlen(k->name));
    rc = rc ? rc
            : gf_buf_printf(b, ",\"group\":\"%s\",\"status\":\"%s\"", k->group,
                            gf_key_status(k, now));
    rc = rc ? rc
            : gf_buf_printf(b,
                            ",\"limits\":{\"rpm\":%lld,\"tpm\":%lld,\"max_concurrent\":%lld,"
                            "\"daily_tokens\":%lld}",
                            (long long)k->limits.rpm, (long long)k->limits.tpm,
                            (long long)k->limits.max_concurrent, (long long)k->limits.daily_tokens);
    rc = rc ? rc : put_time(b, "created_at", k->created);
    rc = rc ? rc : put_time(b, "expires_at", k->expires);
    rc = rc ? rc : put_time(b, "revoked_at", k->revoked);
    rc = rc ? rc : put_time(b, "suspended_at", k->suspended);
    rc = rc ? rc
            : put_time(b, "previous_secret_valid_until",
                       k->has_old && k->old_until > now ? k->old_until : 0);
    if (k->suspended) {
        rc = rc ? rc : gf_buf_puts(b, ",\"suspend_reason\":");
        rc = rc ? rc : gf_buf_append_json_str(b, k->suspend_reason, strlen(k->suspend_reason));
    }
    if (secret)
        rc = rc ? rc : gf_buf_printf(b, ",\"secret\":\"%s\"", secret);
    return rc ? rc : gf_buf_putc(b, '}');
}

static void send_key(struct evhttp_request *req, int status, const struct gf_key *k, char *secret)
{
    struct gf_buf b;
    gf_buf_init(&b, 16384);
    if (key_json(&b, k, secret) != 0)
        evhttp_send_error(req, 500, NULL);
    else
        send_json(req, status, &b);
    if (b.data)
        memset(b.data, 0, b.len); // the secret goes to the socket, nowhere else
    gf_buf_cleanup(&b);
    if (secret)
        memset(secret, 0, GF_APIKEY_BUFLEN);
}

/* ---- request bodies -------------------------------------------------------------------- */

/* Reads the JSON object body (an empty body is an empty object). */
static int read_body(struct gf_admin *a, struct evhttp_request *req, cJSON **out,
                     struct gf_err *err)
{
    *out = NULL;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    if (n > a->max_body)
        return gf_err_set(err, GF_ETOOBIG, "body larger than %zu bytes", a->max_body);
    char *p = gf_malloc(n + 1);
    if (p == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    evbuffer_copyout(in, p, n);
    p[n] = '\0';
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\n' || p[i] == '\r' || p[i] == '\t'))
        i++;
    cJSON *o = i == n ? cJSON_CreateObject() : cJSON_ParseWithLength(p, n);
    gf_free(p);
    if (o == NULL)
        return gf_err_set(err, GF_EINVAL, "body: not valid JSON");
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return gf_err_set(err, GF_EINVAL, "body: expected a JSON object");
    }
    *out = o;
    return 0;
}

/* Refuses a field not in allowed; the message names it in printable ASCII (at most 40
 * characters), since a client chose it. */
static int only_fields(const cJSON *o, const char *const *allowed, const char **bad,
                       struct gf_err *err)
{
    for (const cJSON *it = o->child; it; it = it->next) {
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            ok = ok || strcmp(it->string, allowed[i]) == 0;
        if (!ok) {
            char shown[41];
            size_t n = 0;
            for (const char *c = it->string; *c && n < sizeof(shown) - 1; c++)
                shown[n++] = *c >= 0x20 && *c < 0x7f ? *c : '?';
            shown[n] = '\0';
            *bad = it->string;
            return gf_err_set(err, GF_EINVAL, "%s: unknown field", shown);
        }
    }
    return 0;
}

static int get_count(const cJSON *o, const char *name, int64_t *out, struct gf_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (v == NULL)
        return 0;
    if (cJSON_IsNull(v)) {
        *out = 0; // null = unlimited
        return 0;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    if (!cJSON_IsNumber(v) || !(d >= 0 && d <= 1e12) || floor(d) != d)
        return gf_err_set(err, GF_EINVAL,
                          "%s: expected a whole number in [0, 10^12] (0 = "
                          "unlimited)",
                          name);
    *out = (int64_t)d;
    return 0;
}

/* A duration as "30s", "15m", "12h", "7d" or a number of seconds, into ms. */
static int get_duration(const cJSON *v, const char *name, int64_t *ms, struct gf_err *err)
{
    if (cJSON_IsString(v) && gf_parse_duration_ms(v->valuestring, ms) == 0 &&
        *ms <= 3650ll * 86400000)
        return 0;
    if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 3650.0 * 86400) {
        *ms = (int64_t)(v->valuedouble * 1000);
        return 0;
    }
    return gf_err_set(err, GF_EINVAL,
                      "%s: expected a duration such as \"30s\", \"12h\", \"7d\" "
                      "(at most 3650d) or seconds",
                      name);
}

int gf_admin_spec_parse(const struct cJSON *o, struct gf_key_spec *spec, const char **param,
                        struct gf_err *err)
{
    static const char *const allowed[] = {"name",       "group",          "rpm",
                                          "tpm",        "max_concurrent", "daily_tokens",
                                          "expires_in", "expires_at",     NULL};
    if (only_fields(o, allowed, param, err) != 0)
        return GF_EINVAL;
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "name")) != NULL) {
        *param = "name";
        if (!cJSON_IsString(v))
            return gf_err_set(err, GF_EINVAL, "name: expected a string");
        spec->name = v->valuestring;
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(o, "group")) != NULL) {
        *param = "group";
        if (!cJSON_IsString(v))
            return gf_err_set(err, GF_EINVAL, "group: expected a string");
        spec->group = v->valuestring;
    }
    *param = NULL;
    int rc = get_count(o, "rpm", &spec->limits.rpm, err);
    rc = rc ? rc : get_count(o, "tpm", &spec->limits.tpm, err);
    rc = rc ? rc : get_count(o, "max_concurrent", &spec->limits.max_concurrent, err);
    rc = rc ? rc : get_count(o, "daily_tokens", &spec->limits.daily_tokens, err);
    if (rc)
        return rc;
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(o, "expires_in");
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(o, "expires_at");
    if (in && at)
        return gf_err_set(err, GF_EINVAL, "expires_in, expires_at: give one of them");
    if (in) {
        int64_t ms;
        if (cJSON_IsNull(in)) {
            spec->expires = 0;
        } else {
            if (get_duration(in, "expires_in", &ms, err) != 0 || ms == 0)
                return gf_err_set(err, GF_EINVAL, "expires_in: expected a duration > 0");
            spec->expires = gf_wall_ms() + ms;
        }
    }
    if (at) {
        if (cJSON_IsNull(at))
            spec->expires = 0;
        else if (cJSON_IsNumber(at) && at->valuedouble > 0 && at->valuedouble < 1e11)
            spec->expires = (int64_t)(at->valuedouble * 1000);
        else
            return gf_err_set(err, GF_EINVAL, "expires_at: expected unix seconds or null");
    }
    return 0;
}

/* ---- routes ---------------------------------------------------------------------------- */

static void cut(struct gf_admin *a, const struct gf_key *k)
{
    enum gf_auth why = gf_keys_recheck(a->keys, k->id, GF_KEY_MATCH_CURRENT, gf_wall_ms());
    if (why != GF_AUTH_OK && a->cut)
        a->cut(a->cut_ud, k->id, why);
}

static int list_visit(void *ud, const struct gf_key *k)
{
    struct gf_buf *b = ud;
    int rc = b->data && b->data[b->len - 1] == '}' ? gf_buf_putc(b, ',') : 0;
    return rc ? rc : key_json(b, k, NULL);
}

static void route_list(struct gf_admin *a, struct evhttp_request *req)
{
    struct gf_buf b;
    gf_buf_init(&b, (size_t)1 << 30);
    int rc = gf_buf_puts(&b, "{\"object\":\"list\",\"data\":[");
    rc = rc ? rc : a->keys->store->ops->list(a->keys->store, list_visit, &b);
    rc = rc ? rc : gf_buf_puts(&b, "]}");
    if (rc)
        send_error(req, 500, "internal_error", gf_strerror(rc), NULL);
    else
        send_json(req, 200, &b);
    gf_buf_cleanup(&b);
}

static void route_create(struct gf_admin *a, struct evhttp_request *req, const cJSON *body)
{
    struct gf_key_spec spec;
    gf_key_spec_init(&spec);
    struct gf_err err = {0};
    const char *param = NULL;
    if (gf_admin_spec_parse(body, &spec, &param, &err) != 0) {
        send_gf_error(req, GF_EINVAL, &err, param);
        return;
    }
    char secret[GF_APIKEY_BUFLEN];
    struct gf_key k;
    int rc = gf_keys_create(a->keys, &spec, secret, &k, &err);
    if (rc) {
        send_gf_error(req, rc, &err, NULL);
        return;
    }
    send_key(req, 201, &k, secret);
}

/* Routes /admin/v1/keys/{id}[/action]. */
static void route_key(struct gf_admin *a, struct evhttp_request *req, enum evhttp_cmd_type m,
                      const char *id, const char *action, const cJSON *body)
{
    struct gf_key k;
    struct gf_err err = {0};
    int rc;
    char secret[GF_APIKEY_BUFLEN];
    const char *param = NULL;
    static const char *const none[] = {NULL};
    if (!gf_apikey_id_valid(id)) {
        send_error(req, 404, "not_found", "no such key id", NULL);
        return;
    }
    if (action == NULL && m == EVHTTP_REQ_GET) {
        rc = a->keys->store->ops->get(a->keys->store, id, &k);
        if (rc)
            gf_err_set(&err, rc, "no key with id '%s'", id);
    } else if (action == NULL && (m == EVHTTP_REQ_PATCH || m == EVHTTP_REQ_POST)) {
        struct gf_key_spec spec;
        gf_key_spec_init(&spec);
        rc = gf_admin_spec_parse(body, &spec, &param, &err);
        rc = rc ? rc : gf_keys_update(a->keys, id, &spec, &k, &err);
        if (rc == 0)
            cut(a, &k); // an expiry set in the past ends its requests too
    } else if ((action == NULL && m == EVHTTP_REQ_DELETE) ||
               (action && strcmp(action, "revoke") == 0 && m == EVHTTP_REQ_POST)) {
        rc = only_fields(body, none, &param, &err) ? GF_EINVAL
                                                   : gf_keys_revoke(a->keys, id, &k, &err);
        if (rc == 0)
            cut(a, &k);
    } else if (action && strcmp(action, "rotate") == 0 && m == EVHTTP_REQ_POST) {
        static const char *const allowed[] = {"grace", NULL};
        int64_t grace = -1;
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(body, "grace");
        rc = only_fields(body, allowed, &param, &err) ? GF_EINVAL
             : g                                      ? get_duration(g, "grace", &grace, &err)
                                                      : 0;
        rc = rc ? rc : gf_keys_rotate(a->keys, id, grace, secret, &k, &err);
        if (rc == 0) {
            send_key(req, 200, &k, secret);
            return;
        }
    } else if (action && strcmp(action, "expire") == 0 && m == EVHTTP_REQ_POST) {
        static const char *const allowed[] = {"in", "at", NULL};
        int64_t when = 0, ms = 0;
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(body, "in");
        const cJSON *at = cJSON_GetObjectItemCaseSensitive(body, "at");
        rc = only_fields(body, allowed, &param, &err) ? GF_EINVAL
             : in && at ? gf_err_set(&err, GF_EINVAL, "in, at: give one of them")
                        : 0;
        if (rc == 0 && in && (rc = get_duration(in, "in", &ms, &err)) == 0)
            when = gf_wall_ms() + ms;
        if (rc == 0 && at) {
            if (cJSON_IsNumber(at) && at->valuedouble > 0 && at->valuedouble < 1e11)
                when = (int64_t)(at->valuedouble * 1000);
            else
                rc = gf_err_set(&err, GF_EINVAL, "at: expected unix seconds");
        }
        rc = rc ? rc : gf_keys_expire(a->keys, id, when, &k, &err);
        if (rc == 0)
            cut(a, &k);
    } else if (action && strcmp(action, "suspend") == 0 && m == EVHTTP_REQ_POST) {
        static const char *const allowed[] = {"reason", NULL};
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(body, "reason");
        rc = only_fields(body, allowed, &param, &err) ? GF_EINVAL
             : r && !cJSON_IsString(r) ? gf_err_set(&err, GF_EINVAL, "reason: expected a string")
                                       : 0;
        rc = rc ? rc
                : gf_keys_suspend(a->keys, id, r ? r->valuestring : "suspended by an admin", &k,
                                  &err);
        if (rc == 0)
            cut(a, &k);
    } else if (action && strcmp(action, "unsuspend") == 0 && m == EVHTTP_REQ_POST) {
        rc = only_fields(body, none, &param, &err) ? GF_EINVAL
                                                   : gf_keys_unsuspend(a->keys, id, &k, &err);
    } else {
        send_error(req, action ? 404 : 405, action ? "not_found" : "method_not_allowed",
                   "no such route or method", NULL);
        return;
    }
    if (rc)
        send_gf_error(req, rc, &err, param);
    else
        send_key(req, 200, &k, NULL);
}

static void route_reload(struct gf_admin *a, struct evhttp_request *req)
{
    if (a->reload == NULL) {
        send_error(req, 501, "not_implemented", "policy reload is not available in this build",
                   NULL);
        return;
    }
    struct gf_buf b;
    gf_buf_init(&b, 1 << 20);
    struct gf_err err = {0};
    int rc = a->reload(a->reload_ud, &b, &err);
    if (rc == 0 && b.len == 0)
        rc = gf_buf_puts(&b, "{\"reloaded\":true}");
    gf_log(GF_LOG_INFO, "admin", "event=policy_reload status=%s", rc ? "failed" : "ok");
    if (rc)
        send_gf_error(req, rc, &err, NULL);
    else
        send_json(req, 200, &b);
    gf_buf_cleanup(&b);
}

static bool authorized(struct gf_admin *a, struct evhttp_request *req, bool *given)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    *given = false;
    if (h == NULL)
        return false;
    while (*h == ' ')
        h++;
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    size_t n = strlen(h);
    while (n > 0 && h[n - 1] == ' ')
        n--;
    if (n == 0)
        return false;
    *given = true;
    uint8_t d[GF_SHA256_LEN];
    gf_sha256(h, n, d);
    return gf_ct_equal(d, a->digest, GF_SHA256_LEN);
}

static const char *method_name(enum evhttp_cmd_type m)
{
    switch (m) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    default:
        return "OTHER";
    }
}

static void handle(struct evhttp_request *req, void *arg)
{
    struct gf_admin *a = arg;
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    char p[256];
    if (path == NULL || strncmp(path, PREFIX, strlen(PREFIX)) != 0 || strlen(path) >= sizeof(p)) {
        send_error(req, 404, "not_found", "no such route; the admin API lives under /admin/v1/",
                   NULL);
        return;
    }
    bool given;
    if (!authorized(a, req, &given)) {
        gf_log(GF_LOG_WARN, "admin", "event=admin_auth_failed method=%s given=%s", method_name(m),
               given ? "yes" : "no");
        send_error(req, 401, given ? "invalid_admin_key" : "missing_admin_key",
                   given ? "Incorrect admin key provided."
                         : "The admin API needs Authorization: Bearer <admin key> (see "
                           "DATA_DIR/admin.key or GARDEFOU_ADMIN_KEY).",
                   NULL);
        return;
    }
    snprintf(p, sizeof(p), "%s", path + strlen(PREFIX));
    size_t n = strlen(p);
    if (n > 0 && p[n - 1] == '/')
        p[n - 1] = '\0';
    cJSON *body = NULL;
    struct gf_err err = {0};
    if (m == EVHTTP_REQ_POST || m == EVHTTP_REQ_PATCH || m == EVHTTP_REQ_DELETE) {
        int rc = read_body(a, req, &body, &err);
        if (rc) {
            send_gf_error(req, rc, &err, NULL);
            return;
        }
    }
    static cJSON empty = {.type = cJSON_Object};
    const cJSON *b = body ? body : &empty;
    if (strcmp(p, "keys") == 0) {
        if (m == EVHTTP_REQ_GET)
            route_list(a, req);
        else if (m == EVHTTP_REQ_POST)
            route_create(a, req, b);
        else
            send_error(req, 405, "method_not_allowed", "use GET or POST on /admin/v1/keys", NULL);
    } else if (strncmp(p, "keys/", 5) == 0) {
        char *id = p + 5;
        char *action = strchr(id, '/');
        if (action)
            *action++ = '\0';
        if (action && strchr(action, '/'))
            send_error(req, 404, "not_found", "no such route", NULL);
        else
            route_key(a, req, m, id, action, b);
    } else if (strcmp(p, "policy/reload") == 0 && m == EVHTTP_REQ_POST) {
        route_reload(a, req);
    } else {
        send_error(req, 404, "not_found", "no such route", NULL);
    }
    cJSON_Delete(body);
    // Only the route's shape is logged: key ids, never bodies.
    gf_log(GF_LOG_INFO, "admin", "event=admin_request method=%s path=/admin/v1/%s status=%d",
           method_name(m), p, evhttp_request_get_response_code(req));
}

/* ---- life ------------------------------------------------------------------------------ */

int gf_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    if (s == NULL)
        return GF_EINVAL;
    const char *colon;
    size_t hl;
    const char *h = s;
    if (*s == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':')
            return GF_EINVAL;
        h = s + 1;
        hl = (size_t)(end - h);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return GF_EINVAL;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen)
        return GF_EINVAL;
    int64_t p;
    if (gf_parse_i64(colon + 1, 0, 65535, &p) != 0)
        return GF_EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return 0;
}

int gf_admin_new(struct event_base *base, struct gf_keys *keys, const struct gf_admin_config *cfg,
                 struct gf_admin **out, struct gf_err *err)
{
    *out = NULL;
    char host[256];
    int port;
    if (gf_parse_hostport(cfg->listen, host, sizeof(host), &port) != 0)
        return gf_err_set(err, GF_EINVAL, "keys.admin_listen: expected HOST:PORT, got '%s'",
                          cfg->listen ? cfg->listen : "");
    if (cfg->admin_key == NULL || strlen(cfg->admin_key) < GF_ADMIN_KEY_MIN)
        return gf_err_set(err, GF_EINVAL, "admin key: missing or shorter than %d characters",
                          GF_ADMIN_KEY_MIN);
    struct gf_admin *a = gf_calloc(1, sizeof(*a));
    if (a == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    a->keys = keys;
    a->max_body = cfg->max_body ? cfg->max_body : 65536;
    gf_sha256(cfg->admin_key, strlen(cfg->admin_key), a->digest);
    a->http = evhttp_new(base);
    if (a->http == NULL) {
        gf_free(a);
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    }
    evhttp_set_timeout(a->http, cfg->timeout_s > 0 ? cfg->timeout_s : 30);
    evhttp_set_max_body_size(a->http, (ev_ssize_t)a->max_body);
    evhttp_set_max_headers_size(a->http, 16384);
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PATCH |
                                            EVHTTP_REQ_DELETE);
    evhttp_set_gencb(a->http, handle, a);
    a->bound = evhttp_bind_socket_with_handle(a->http, host, (ev_uint16_t)port);
    if (a->bound == NULL) {
        evhttp_free(a->http);
        gf_free(a);
        return gf_err_set(err, GF_EIO, "keys.admin_listen: cannot listen on %s", cfg->listen);
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    evutil_socket_t fd = evhttp_bound_socket_get_fd(a->bound);
    a->port = port;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            a->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            a->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    gf_log(GF_LOG_INFO, "admin", "event=admin_listening host=%s port=%d", host, a->port);
    *out = a;
    return 0;
}

int gf_admin_port(const struct gf_admin *a)
{
    return a->port;
}

void gf_admin_set_policy_reload(struct gf_admin *a, gf_admin_reload_fn fn, void *ud)
{
    a->reload = fn;
    a->reload_ud = ud;
}

void gf_admin_set_cut(struct gf_admin *a, gf_admin_cut_fn fn, void *ud)
{
    a->cut = fn;
    a->cut_ud = ud;
}

void gf_admin_free(struct gf_admin *a)
{
    if (a == NULL)
        return;
    evhttp_free(a->http);
    gf_free(a);
}
