/* cmd_keys.c — `gardefou keys`: manages API keys through the admin API (libcurl easy). The
 * admin key comes from GARDEFOU_ADMIN_KEY or DATA_DIR/admin.key; it is sent only in the
 * Authorization header and never printed. `keys create` and `keys rotate` print the new secret
 * alone on stdout (or a JSON object with --json), so scripts can capture it. */
#include "gateway/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "common/common.h"
#include "gateway/gateway.h"
#include "gateway/keys_int.h"

#define DEFAULT_ADMIN "127.0.0.1:8081"
#define MAX_REPLY     (64u << 20)

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gardefou keys <action> [options]\n\n"
            "Manages API keys through the admin API of a running gateway.\n\n"
            "actions:\n"
            "  create --name N [--group G] [--rpm N] [--tpm N] [--max-concurrent N]\n"
            "         [--daily-tokens N] [--expires DURATION]   prints the new secret\n"
            "  list                                  every key (id, prefix, name, status)\n"
            "  show ID                               one key\n"
            "  update ID [--name N] [--group G] [--rpm N] [--tpm N] [--max-concurrent N]\n"
            "         [--daily-tokens N] [--expires DURATION|never]\n"
            "  revoke ID                             refuse the key from now on\n"
            "  rotate ID [--grace DURATION]          new secret; the old one works for the grace\n"
            "  expire ID [--in DURATION]             expire now (or after DURATION)\n"
            "  suspend ID [--reason TEXT]            suspend until unsuspended\n"
            "  unsuspend ID                          re-enable a suspended key\n\n"
            "options:\n"
            "  --server URL      admin API (default: the admin address of --config, else\n"
            "                    http://" DEFAULT_ADMIN ", next to serve's default 8080)\n"
            "  --config FILE     the gardefou config the server runs with: its admin\n"
            "                    address (keys.admin_listen, else server.listen port + 1)\n"
            "                    and server.data_dir\n"
            "  --data-dir DIR    read the admin key from DIR/admin.key (when\n"
            "                    GARDEFOU_ADMIN_KEY is not set)\n"
            "  --json            print the server's JSON answer\n"
            "  -h, --help        this help\n\n"
            "Limits: 0 means unlimited. DURATION: 30s, 15m, 12h, 7d.\n"
            "Exit status: 0 done, 1 the server refused, 2 bad usage or no connection.\n");
}

struct opts {
    const char *action, *id;
    const char *server, *config, *data_dir;
    const char *name, *group, *rpm, *tpm, *max_conc, *daily, *expires, *grace, *in, *reason;
    bool json;
};

static int parse_args(int argc, char **argv, struct opts *o)
{
    memset(o, 0, sizeof(*o));
    static const struct {
        const char *flag;
        size_t off;
    } flags[] = {
        {"--server", offsetof(struct opts, server)},
        {"--config", offsetof(struct opts, config)},
        {"--data-dir", offsetof(struct opts, data_dir)},
        {"--name", offsetof(struct opts, name)},
        {"--group", offsetof(struct opts, group)},
        {"--rpm", offsetof(struct opts, rpm)},
        {"--tpm", offsetof(struct opts, tpm)},
        {"--max-concurrent", offsetof(struct opts, max_conc)},
        {"--daily-tokens", offsetof(struct opts, daily)},
        {"--expires", offsetof(struct opts, expires)},
        {"--grace", offsetof(struct opts, grace)},
        {"--in", offsetof(struct opts, in)},
        {"--reason", offsetof(struct opts, reason)},
    };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            o->json = true;
            continue;
        }
        bool matched = false;
        for (size_t f = 0; f < GF_ARRAY_LEN(flags); f++) {
            size_t fl = strlen(flags[f].flag);
            const char **slot = (const char **)((char *)o + flags[f].off);
            if (strcmp(a, flags[f].flag) == 0) {
                if (i + 1 >= argc) {
                    fprintf(stderr, "gardefou keys: %s needs a value\n", a);
                    return 2;
                }
                *slot = argv[++i];
                matched = true;
            } else if (strncmp(a, flags[f].flag, fl) == 0 && a[fl] == '=') {
                *slot = a + fl + 1;
                matched = true;
            }
            if (matched)
                break;
        }
        if (matched)
            continue;
        if (a[0] == '-') {
            fprintf(stderr, "gardefou keys: unknown option '%s'\n", a);
            return 2;
        }
        if (o->action == NULL)
            o->action = a;
        else if (o->id == NULL)
            o->id = a;
        else {
            fprintf(stderr, "gardefou keys: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    return 0;
}

/* ---- HTTP ------------------------------------------------------------------------------ */

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct gf_buf *b = ud;
    return gf_buf_append(b, p, size * n) == 0 ? size * n : 0;
}

/* Sends one admin request; *status gets the HTTP status, reply the body. Returns 0, or 2 when
 * the server could not be reached (message printed). */
static int call(const char *base, const char *admin_key, const char *method, const char *path,
                const char *body, long *status, struct gf_buf *reply)
{
    CURL *c = curl_easy_init();
    if (c == NULL) {
        fprintf(stderr, "gardefou keys: cannot start libcurl\n");
        return 2;
    }
    char url[2048];
    size_t bl = strlen(base);
    while (bl > 0 && base[bl - 1] == '/')
        bl--;
    snprintf(url, sizeof(url), "%s%.*s/admin/v1/%s", strstr(base, "://") ? "" : "http://", (int)bl,
             base, path);
    struct gf_buf auth;
    gf_buf_init(&auth, 4096);
    struct curl_slist *h = NULL;
    int rc = 0;
    if (gf_buf_printf(&auth, "Authorization: Bearer %s", admin_key) != 0) {
        rc = 2;
        goto out;
    }
    h = curl_slist_append(h, auth.data);
    struct curl_slist *h2 = curl_slist_append(h, "Content-Type: application/json");
    if (h == NULL || h2 == NULL) {
        rc = 2;
        goto out;
    }
    h = h2;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        fprintf(stderr, "gardefou keys: %s: %s\n", url, curl_easy_strerror(cc));
        rc = 2;
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
out:
    if (auth.data)
        memset(auth.data, 0, auth.len);
    gf_buf_cleanup(&auth);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return rc;
}

/* ---- output ---------------------------------------------------------------------------- */

static const char *str_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void print_time(const char *label, const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble < 1e13))
        return;
    char ts[40];
    gf_format_time((int64_t)v->valuedouble * 1000, ts, sizeof(ts));
    printf("%-16s %s\n", label, ts);
}

static void print_limit(const char *label, const cJSON *limits, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(limits, name);
    if (cJSON_IsNumber(v) && v->valuedouble > 0)
        printf("%-16s %.0f\n", label, v->valuedouble);
    else
        printf("%-16s unlimited\n", label);
}

static void print_key(const cJSON *k)
{
    printf("%-16s %s\n", "id", str_of(k, "id"));
    printf("%-16s %s...\n", "prefix", str_of(k, "prefix"));
    printf("%-16s %s\n", "name", str_of(k, "name"));
    printf("%-16s %s\n", "group", str_of(k, "group"));
    printf("%-16s %s\n", "status", str_of(k, "status"));
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(k, "limits");
    print_limit("rpm", l, "rpm");
    print_limit("tpm", l, "tpm");
    print_limit("max_concurrent", l, "max_concurrent");
    print_limit("daily_tokens", l, "daily_tokens");
    print_time("created", k, "created_at");
    print_time("expires", k, "expires_at");
    print_time("revoked", k, "revoked_at");
    print_time("suspended", k, "suspended_at");
    if (*str_of(k, "suspend_reason"))
        printf("%-16s %s\n", "suspend_reason", str_of(k, "suspend_reason"));
    print_time("old_secret_until", k, "previous_secret_valid_until");
}

static void print_list(const cJSON *list)
{
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(list, "data");
    printf("%-20s %-10s %-10s %-10s %-12s %s\n", "ID", "PREFIX", "STATUS", "GROUP", "RPM/TPM",
           "NAME");
    const cJSON *k;
    cJSON_ArrayForEach(k, data)
    {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(k, "limits");
        const cJSON *rpm = cJSON_GetObjectItemCaseSensitive(l, "rpm");
        const cJSON *tpm = cJSON_GetObjectItemCaseSensitive(l, "tpm");
        char lim[64];
        snprintf(lim, sizeof(lim), "%.0f/%.0f", cJSON_IsNumber(rpm) ? rpm->valuedouble : 0,
                 cJSON_IsNumber(tpm) ? tpm->valuedouble : 0);
        printf("%-20s %-10s %-10s %-10s %-12s %s\n", str_of(k, "id"), str_of(k, "prefix"),
               str_of(k, "status"), str_of(k, "group"), lim, str_of(k, "name"));
    }
}

/* ---- bodies ---------------------------------------------------------------------------- */

static int add_count(struct gf_buf *b, const char *field, const char *flag, const char *v)
{
    if (v == NULL)
        return 0;
    int64_t n;
    if (gf_parse_i64(v, 0, 1000000000000ll, &n) != 0) {
        fprintf(stderr, "gardefou keys: %s: expected a whole number >= 0 (0 = unlimited)\n", flag);
        return 2;
    }
    return gf_buf_printf(b, "%s\"%s\":%lld", b->len > 1 ? "," : "", field, (long long)n) ? 2 : 0;
}

static int add_str(struct gf_buf *b, const char *field, const char *v)
{
    if (v == NULL)
        return 0;
    int rc = gf_buf_printf(b, "%s\"%s\":", b->len > 1 ? "," : "", field);
    rc = rc ? rc : gf_buf_append_json_str(b, v, strlen(v));
    return rc ? 2 : 0;
}

static int add_duration(struct gf_buf *b, const char *field, const char *flag, const char *v)
{
    if (v == NULL)
        return 0;
    int64_t ms;
    if (gf_parse_duration_ms(v, &ms) != 0) {
        fprintf(stderr, "gardefou keys: %s: expected a duration such as 30s, 15m, 12h, 7d\n", flag);
        return 2;
    }
    return add_str(b, field, v);
}

static int spec_body(const struct opts *o, struct gf_buf *b, bool update)
{
    int rc = gf_buf_putc(b, '{') ? 2 : 0;
    rc = rc ? rc : add_str(b, "name", o->name);
    rc = rc ? rc : add_str(b, "group", o->group);
    rc = rc ? rc : add_count(b, "rpm", "--rpm", o->rpm);
    rc = rc ? rc : add_count(b, "tpm", "--tpm", o->tpm);
    rc = rc ? rc : add_count(b, "max_concurrent", "--max-concurrent", o->max_conc);
    rc = rc ? rc : add_count(b, "daily_tokens", "--daily-tokens", o->daily);
    if (rc == 0 && o->expires) {
        if (update && strcmp(o->expires, "never") == 0)
            rc = gf_buf_printf(b, "%s\"expires_in\":null", b->len > 1 ? "," : "") ? 2 : 0;
        else
            rc = add_duration(b, "expires_in", "--expires", o->expires);
    }
    return rc ? rc : gf_buf_putc(b, '}') ? 2 : 0;
}

/* ---- main ------------------------------------------------------------------------------ */

/* The admin address (and data directory) of a gardefou config file, as serve derives them. */
static int from_config(const char *file, char *server, size_t slen, char *data_dir, size_t dlen)
{
    struct gf_config cfg;
    if (gf_config_init(&cfg) != 0) {
        fprintf(stderr, "gardefou keys: out of memory\n");
        return 2;
    }
    struct gf_err err = {0};
    char addr[300];
    int rc = 0;
    if (gf_config_load_file(&cfg, file, &err) != 0) {
        fprintf(stderr, "gardefou keys: %s\n", err.msg);
        rc = 2;
    } else if (gf_keys_admin_address(cfg.listen, cfg.keys_admin_listen, addr, sizeof(addr)) != 0 ||
               addr[0] == '\0') {
        fprintf(stderr, "gardefou keys: %s: no admin API address (keys.admin_listen)\n", file);
        rc = 2;
    } else {
        snprintf(server, slen, "http://%s", addr);
        snprintf(data_dir, dlen, "%s", cfg.data_dir ? cfg.data_dir : "");
    }
    gf_config_cleanup(&cfg);
    return rc;
}

static int run(const struct opts *o, const char *server, const char *admin_key)
{
    const char *a = o->action;
    bool needs_id = strcmp(a, "create") != 0 && strcmp(a, "list") != 0;
    if (needs_id && (o->id == NULL || !gf_apikey_id_valid(o->id))) {
        fprintf(stderr, "gardefou keys %s: expected a key id (key_ and 16 characters)\n", a);
        return 2;
    }
    if (!needs_id && o->id) {
        fprintf(stderr, "gardefou keys %s: unexpected argument '%s'\n", a, o->id);
        return 2;
    }
    char path[128];
    const char *method = "POST";
    struct gf_buf body;
    gf_buf_init(&body, 65536);
    int rc = 0;
    bool prints_secret = false;
    if (strcmp(a, "create") == 0) {
        if (o->name == NULL) {
            fprintf(stderr, "gardefou keys create: --name is required\n");
            rc = 2;
        }
        snprintf(path, sizeof(path), "keys");
        rc = rc ? rc : spec_body(o, &body, false);
        prints_secret = true;
    } else if (strcmp(a, "list") == 0) {
        snprintf(path, sizeof(path), "keys");
        method = "GET";
    } else if (strcmp(a, "show") == 0) {
        snprintf(path, sizeof(path), "keys/%s", o->id);
        method = "GET";
    } else if (strcmp(a, "update") == 0) {
        snprintf(path, sizeof(path), "keys/%s", o->id);
        method = "PATCH";
        rc = spec_body(o, &body, true);
        if (rc == 0 && body.len == 2) {
            fprintf(stderr, "gardefou keys update: nothing to change\n");
            rc = 2;
        }
    } else if (strcmp(a, "revoke") == 0 || strcmp(a, "unsuspend") == 0) {
        snprintf(path, sizeof(path), "keys/%s/%s", o->id, a);
        rc = gf_buf_puts(&body, "{}") ? 2 : 0;
    } else if (strcmp(a, "rotate") == 0) {
        snprintf(path, sizeof(path), "keys/%s/rotate", o->id);
        rc = gf_buf_putc(&body, '{') ? 2 : 0;
        rc = rc ? rc : add_duration(&body, "grace", "--grace", o->grace);
        rc = rc ? rc : gf_buf_putc(&body, '}') ? 2 : 0;
        prints_secret = true;
    } else if (strcmp(a, "expire") == 0) {
        snprintf(path, sizeof(path), "keys/%s/expire", o->id);
        rc = gf_buf_putc(&body, '{') ? 2 : 0;
        rc = rc ? rc : add_duration(&body, "in", "--in", o->in);
        rc = rc ? rc : gf_buf_putc(&body, '}') ? 2 : 0;
    } else if (strcmp(a, "suspend") == 0) {
        snprintf(path, sizeof(path), "keys/%s/suspend", o->id);
        rc = gf_buf_putc(&body, '{') ? 2 : 0;
        rc = rc ? rc : add_str(&body, "reason", o->reason);
        rc = rc ? rc : gf_buf_putc(&body, '}') ? 2 : 0;
    } else {
        fprintf(stderr, "gardefou keys: unknown action '%s'\n", a);
        usage(stderr);
        rc = 2;
    }
    if (rc) {
        gf_buf_cleanup(&body);
        return rc;
    }
    struct gf_buf reply;
    gf_buf_init(&reply, MAX_REPLY);
    long status = 0;
    rc = call(server, admin_key, method, path, body.len ? body.data : NULL, &status, &reply);
    gf_buf_cleanup(&body);
    if (rc) {
        gf_buf_cleanup(&reply);
        return rc;
    }
    cJSON *j = reply.data ? cJSON_Parse(reply.data) : NULL;
    if (status < 200 || status >= 300) {
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
        const char *msg = str_of(e, "message");
        fprintf(stderr, "gardefou keys %s: %s (HTTP %ld)\n", a, *msg ? msg : "request failed",
                status);
        rc = 1;
    } else if (j == NULL) {
        fprintf(stderr, "gardefou keys %s: the server's answer is not JSON\n", a);
        rc = 1;
    } else if (o->json) {
        printf("%s", reply.data);
    } else if (prints_secret) {
        printf("%s\n", str_of(j, "secret"));
    } else if (strcmp(a, "list") == 0) {
        print_list(j);
    } else {
        print_key(j);
    }
    if (reply.data)
        memset(reply.data, 0, reply.len); // may hold a secret
    gf_buf_cleanup(&reply);
    cJSON_Delete(j);
    return rc;
}

int gf_cmd_keys(int argc, char **argv)
{
    if (gf_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    struct opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    if (o.action == NULL) {
        usage(stderr);
        return 2;
    }
    const char *a = o.action;
    static const char *const actions[] = {"create", "list",   "show",    "update",    "revoke",
                                          "rotate", "expire", "suspend", "unsuspend", NULL};
    bool known = false;
    for (size_t i = 0; actions[i]; i++)
        known = known || strcmp(a, actions[i]) == 0;
    if (!known) {
        fprintf(stderr, "gardefou keys: unknown action '%s'\n", a);
        usage(stderr);
        return 2;
    }
    char server[1024];
    snprintf(server, sizeof(server), "http://%s", DEFAULT_ADMIN);
    char cfg_data_dir[1024] = "";
    if (o.config &&
        from_config(o.config, server, sizeof(server), cfg_data_dir, sizeof(cfg_data_dir)) != 0)
        return 2;
    if (o.data_dir == NULL && cfg_data_dir[0])
        o.data_dir = cfg_data_dir;
    if (o.server)
        snprintf(server, sizeof(server), "%s", o.server);
    char *admin_key = NULL;
    struct gf_err err = {0};
    if (gf_admin_key_load(o.data_dir, false, &admin_key, NULL, &err) != 0) {
        fprintf(stderr, "gardefou keys: %s\n", err.msg);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = run(&o, server, admin_key);
    curl_global_cleanup();
    memset(admin_key, 0, strlen(admin_key));
    gf_free(admin_key);
    return rc;
}
