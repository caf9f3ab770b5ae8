/* keys_serve.c — keys, limits and the admin API put together for `gardefou serve`: the key
 * service over DATA_DIR/keys, the pipeline gate, the admin key and the admin listener, wired so
 * that an admin revocation ends the key's requests before its answer is sent. Invariant: the
 * admin key is held only as a digest after start. */
#include "gateway/gateway.h"
#include "gateway/keys_int.h"

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

struct gf_keys_serve {
    char admin_host[260]; // the admin listener's host as bound ("" when off)
    struct gf_keys *keys;
    struct gf_keys_gate *gate;
    struct gf_admin *admin;
    struct gf_usage_saver *usage; // daily token counts across restarts
    void (*on_event)(void *ud, const char *action, const char *key_id, const char *group,
                     const char *detail);
    void *event_ud;
};

static void forward_event(void *ud, const char *action, const struct gf_key *k, const char *detail)
{
    struct gf_keys_serve *ks = ud;
    if (ks->on_event)
        ks->on_event(ks->event_ud, action, k->id, k->group, detail);
}

int gf_keys_serve_start(struct event_base *base, struct gf_gateway *gw, struct gf_engine *engine,
                        const struct gf_config *cfg, struct gf_keys_serve **out, struct gf_err *err)
{
    *out = NULL;
    if (!cfg->keys_allow_core_dumps) {
        // A core file would hold whatever secrets were in transit (request headers).
        struct rlimit rl = {0, 0};
        if (setrlimit(RLIMIT_CORE, &rl) != 0)
            gf_log(GF_LOG_WARN, "keys", "event=core_limit_failed");
    }
    struct gf_keys_serve *ks = gf_calloc(1, sizeof(*ks));
    if (ks == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    struct gf_keys_config kc = {
        .default_limits = {cfg->limits_default_rpm, cfg->limits_default_tpm,
                           cfg->limits_default_max_concurrent, cfg->limits_default_daily_tokens},
        .default_group = cfg->keys_default_group,
        .rotate_grace_ms = cfg->keys_rotate_grace_ms,
        .snapshot_every = (size_t)cfg->keys_snapshot_every,
        .on_event = forward_event,
        .event_ud = ks,
    };
    char *admin_key = NULL;
    int rc = gf_keys_open(cfg->data_dir, &kc, &ks->keys, err);
    if (rc)
        goto fail;
    char usage[4200];
    snprintf(usage, sizeof(usage), "%s/keys/usage.json", cfg->data_dir);
    rc = gf_usage_saver_start(base, ks->keys, usage, (int)cfg->keys_usage_snapshot_ms, &ks->usage,
                              err);
    if (rc)
        goto fail;
    struct gf_keys_gate_config gc = {
        .open_mode = cfg->keys_open_mode,
        .abuse_max_blocks = cfg->keys_abuse_max_blocks,
        .abuse_window_ms = cfg->keys_abuse_window_ms,
        .recheck_ms = (int)cfg->keys_recheck_ms,
    };
    rc = gf_keys_gate_new(base, gw, ks->keys, engine, &gc, &ks->gate, err);
    if (rc)
        goto fail;
    char listen[300];
    rc = gf_keys_admin_address(cfg->listen, cfg->keys_admin_listen, listen, sizeof(listen));
    if (rc) {
        gf_err_set(err, rc, "keys.admin_listen: expected HOST:PORT or \"off\"");
        goto fail;
    }
    if (listen[0]) {
        bool created = false;
        rc = gf_admin_key_load(cfg->data_dir, true, &admin_key, &created, err);
        if (rc)
            goto fail;
        if (created)
            gf_log(GF_LOG_INFO, "keys", "event=admin_key_created file=%s/admin.key mode=0600",
                   cfg->data_dir);
        struct gf_admin_config ac = {listen, admin_key, 0, 0};
        rc = gf_admin_new(base, ks->keys, &ac, &ks->admin, err);
        memset(admin_key, 0, strlen(admin_key));
        gf_free(admin_key);
        admin_key = NULL;
        if (rc)
            goto fail;
        gf_admin_set_cut(ks->admin, gf_keys_gate_admin_cut, ks->gate);
        int port;
        if (gf_parse_hostport(listen, ks->admin_host, sizeof(ks->admin_host), &port) != 0)
            ks->admin_host[0] = '\0';
    } else {
        gf_log(GF_LOG_INFO, "keys", "event=admin_api_off note=\"keys.admin_listen is off\"");
    }
    *out = ks;
    return 0;
fail:
    gf_keys_serve_stop(ks);
    return rc;
}

void gf_keys_serve_stop(struct gf_keys_serve *ks)
{
    if (ks == NULL)
        return;
    gf_admin_free(ks->admin);
    gf_keys_gate_free(ks->gate);
    gf_usage_saver_stop(ks->usage); // after the gate: the last charges are counted
    gf_keys_close(ks->keys);
    gf_free(ks);
}

int gf_keys_admin_address(const char *listen, const char *admin_listen, char *out, size_t outlen)
{
    out[0] = '\0';
    if (admin_listen && strcmp(admin_listen, "off") == 0)
        return 0;
    char host[256];
    int port;
    if (admin_listen && admin_listen[0]) {
        if (gf_parse_hostport(admin_listen, host, sizeof(host), &port) != 0)
            return GF_EINVAL;
        snprintf(out, outlen, "%s", admin_listen);
        return 0;
    }
    if (gf_parse_hostport(listen, host, sizeof(host), &port) != 0 || port == 65535)
        return GF_EINVAL;
    snprintf(out, outlen, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port ? port + 1 : 0);
    return 0;
}

int gf_keys_serve_admin_port(const struct gf_keys_serve *ks)
{
    return ks->admin ? gf_admin_port(ks->admin) : 0;
}

void gf_keys_serve_admin_url(const struct gf_keys_serve *ks, char *out, size_t outlen)
{
    if (ks == NULL || ks->admin == NULL) {
        snprintf(out, outlen, "%s", "");
        return;
    }
    snprintf(out, outlen, strchr(ks->admin_host, ':') ? "http://[%s]:%d" : "http://%s:%d",
             ks->admin_host, gf_admin_port(ks->admin));
}

void gf_keys_serve_set_policy_reload(struct gf_keys_serve *ks,
                                     int (*fn)(void *ud, struct gf_buf *out, struct gf_err *err),
                                     void *ud)
{
    if (ks->admin)
        gf_admin_set_policy_reload(ks->admin, fn, ud);
}

void gf_keys_serve_set_abuse(struct gf_keys_serve *ks,
                             void (*fn)(void *ud, int64_t *max_blocks, int64_t *window_ms),
                             void *ud)
{
    gf_keys_gate_set_abuse(ks->gate, fn, ud);
}

void gf_keys_serve_set_events(struct gf_keys_serve *ks,
                              void (*fn)(void *ud, const char *action, const char *key_id,
                                         const char *group, const char *detail),
                              void *ud)
{
    ks->on_event = fn;
    ks->event_ud = ud;
}
