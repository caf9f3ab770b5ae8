/* keys.c — the key service: admin operations (create, update, revoke, rotate, expire, suspend)
 * and the request-path checks (authenticate, recheck, abuse count), written only against the
 * store and limiter ops. Invariant: a secret exists in memory only between its generation and
 * the return of create/rotate (in the caller's buffer); the store sees its digest. */
#include "gateway/keys_int.h"

#include <stdio.h>
#include <string.h>

void gf_key_spec_init(struct gf_key_spec *spec)
{
    memset(spec, 0, sizeof(*spec));
    spec->limits.rpm = spec->limits.tpm = -1;
    spec->limits.max_concurrent = spec->limits.daily_tokens = -1;
    spec->expires = -1;
}

int gf_keys_open(const char *data_dir, const struct gf_keys_config *cfg, struct gf_keys **out,
                 struct gf_err *err)
{
    *out = NULL;
    struct gf_keys *k = gf_calloc(1, sizeof(*k));
    if (k == NULL)
        return gf_err_set(err, GF_ENOMEM, "keys: out of memory");
    k->cfg = *cfg;
    const char *g = cfg->default_group ? cfg->default_group : "default";
    int rc = gf_keyrec_check_group(g, err);
    if (rc) {
        gf_err_prefix(err, "keys.default_group");
        goto fail;
    }
    snprintf(k->group_buf, sizeof(k->group_buf), "%s", g);
    k->cfg.default_group = k->group_buf;
    char dir[4096];
    int n = snprintf(dir, sizeof(dir), "%s/keys", data_dir);
    if (n < 0 || (size_t)n >= sizeof(dir)) {
        rc = gf_err_set(err, GF_EINVAL, "data dir: path too long");
        goto fail;
    }
    struct gf_keystore_file_opts so = {cfg->snapshot_every, cfg->no_fsync};
    rc = gf_keystore_open_file(dir, &so, &k->store, err);
    if (rc)
        goto fail;
    rc = gf_limiter_open_local(&k->lim);
    if (rc) {
        gf_err_set(err, rc, "keys: out of memory");
        goto fail;
    }
    *out = k;
    return 0;
fail:
    gf_keys_close(k);
    return rc;
}

void gf_keys_close(struct gf_keys *k)
{
    if (k == NULL)
        return;
    gf_keystore_close(k->store);
    gf_limiter_close(k->lim);
    gf_free(k);
}

static void emit(struct gf_keys *k, const char *action, const struct gf_key *key,
                 const char *detail)
{
    gf_log(GF_LOG_INFO, "keys", "event=%s key=%s group=%s", action, key->id, key->group);
    if (k->cfg.on_event)
        k->cfg.on_event(k->cfg.event_ud, action, key, detail);
}

static int check_limits(const struct gf_key_limits *l, struct gf_err *err)
{
    const int64_t vals[] = {l->rpm, l->tpm, l->max_concurrent, l->daily_tokens};
    const char *names[] = {"rpm", "tpm", "max_concurrent", "daily_tokens"};
    for (size_t i = 0; i < 4; i++)
        if (vals[i] > 1000000000000ll)
            return gf_err_set(err, GF_EINVAL, "%s: at most 10^12", names[i]);
    return 0;
}

/* Applies the set fields of spec to key. */
static int apply_spec(struct gf_key *key, const struct gf_key_spec *spec, struct gf_err *err)
{
    if (spec->name) {
        if (gf_keyrec_check_name(spec->name, err) != 0)
            return GF_EINVAL;
        snprintf(key->name, sizeof(key->name), "%s", spec->name);
    }
    if (spec->group) {
        if (gf_keyrec_check_group(spec->group, err) != 0)
            return GF_EINVAL;
        snprintf(key->group, sizeof(key->group), "%s", spec->group);
    }
    if (check_limits(&spec->limits, err) != 0)
        return GF_EINVAL;
    if (spec->limits.rpm >= 0)
        key->limits.rpm = spec->limits.rpm;
    if (spec->limits.tpm >= 0)
        key->limits.tpm = spec->limits.tpm;
    if (spec->limits.max_concurrent >= 0)
        key->limits.max_concurrent = spec->limits.max_concurrent;
    if (spec->limits.daily_tokens >= 0)
        key->limits.daily_tokens = spec->limits.daily_tokens;
    if (spec->expires >= 0)
        key->expires = spec->expires;
    return 0;
}

int gf_keys_create(struct gf_keys *k, const struct gf_key_spec *spec, char secret[GF_APIKEY_BUFLEN],
                   struct gf_key *out, struct gf_err *err)
{
    struct gf_key key;
    memset(&key, 0, sizeof(key));
    if (spec->name == NULL)
        return gf_err_set(err, GF_EINVAL, "name: required");
    snprintf(key.group, sizeof(key.group), "%s", k->cfg.default_group);
    key.limits = k->cfg.default_limits;
    int rc = apply_spec(&key, spec, err);
    if (rc)
        return rc;
    key.created = gf_wall_ms();
    if (key.expires != 0 && key.expires <= key.created)
        return gf_err_set(err, GF_EINVAL, "expires: must lie in the future");
    if (gf_apikey_new_id(key.id) != 0 || gf_apikey_generate(secret) != 0)
        return gf_err_set(err, GF_EIO, "keys: no randomness");
    gf_apikey_prefix(secret, key.prefix);
    gf_apikey_digest(secret, GF_APIKEY_LEN, key.digest);
    rc = k->store->ops->put(k->store, &key, err);
    if (rc) {
        memset(secret, 0, GF_APIKEY_BUFLEN);
        return rc;
    }
    k->store->ops->get(k->store, key.id, &key);
    emit(k, "key_created", &key, NULL);
    if (out)
        *out = key;
    return 0;
}

/* Loads id, lets fn change it, stores it and reports action. */
static int modify(struct gf_keys *k, const char *id, const char *action, const char *detail,
                  int (*fn)(struct gf_key *key, const void *arg, struct gf_err *err),
                  const void *arg, struct gf_key *out, struct gf_err *err)
{
    struct gf_key key;
    if (id == NULL || !gf_apikey_id_valid(id) || k->store->ops->get(k->store, id, &key) != 0)
        return gf_err_set(err, GF_ENOTFOUND, "no key with id '%s'",
                          id && gf_apikey_id_valid(id) ? id : "(invalid)");
    int rc = fn(&key, arg, err);
    rc = rc ? rc : k->store->ops->put(k->store, &key, err);
    if (rc)
        return rc;
    k->store->ops->get(k->store, key.id, &key);
    if (action)
        emit(k, action, &key, detail);
    if (out)
        *out = key;
    return 0;
}

static int do_update(struct gf_key *key, const void *arg, struct gf_err *err)
{
    const struct gf_key_spec *spec = arg;
    if (key->revoked)
        return gf_err_set(err, GF_EINVAL, "key %s is revoked", key->id);
    return apply_spec(key, spec, err);
}

int gf_keys_update(struct gf_keys *k, const char *id, const struct gf_key_spec *spec,
                   struct gf_key *out, struct gf_err *err)
{
    return modify(k, id, "key_updated", NULL, do_update, spec, out, err);
}

static int do_revoke(struct gf_key *key, const void *arg, struct gf_err *err)
{
    (void)arg;
    (void)err;
    if (key->revoked == 0)
        key->revoked = gf_wall_ms();
    return 0;
}

int gf_keys_revoke(struct gf_keys *k, const char *id, struct gf_key *out, struct gf_err *err)
{
    return modify(k, id, "key_revoked", NULL, do_revoke, NULL, out, err);
}

struct rotate_arg {
    int64_t grace;
    char *secret;
};

static int do_rotate(struct gf_key *key, const void *arg, struct gf_err *err)
{
    const struct rotate_arg *ra = arg;
    if (key->revoked)
        return gf_err_set(err, GF_EINVAL, "key %s is revoked", key->id);
    if (gf_apikey_generate(ra->secret) != 0)
        return gf_err_set(err, GF_EIO, "keys: no randomness");
    key->has_old = ra->grace > 0;
    memcpy(key->old_digest, key->digest, GF_SHA256_LEN);
    key->old_until = ra->grace > 0 ? gf_wall_ms() + ra->grace : 0;
    if (!key->has_old)
        memset(key->old_digest, 0, GF_SHA256_LEN);
    gf_apikey_prefix(ra->secret, key->prefix);
    gf_apikey_digest(ra->secret, GF_APIKEY_LEN, key->digest);
    return 0;
}

int gf_keys_rotate(struct gf_keys *k, const char *id, int64_t grace_ms,
                   char secret[GF_APIKEY_BUFLEN], struct gf_key *out, struct gf_err *err)
{
    if (grace_ms > 366ll * 86400000)
        return gf_err_set(err, GF_EINVAL, "grace: at most a year");
    struct rotate_arg ra = {grace_ms < 0 ? k->cfg.rotate_grace_ms : grace_ms, secret};
    int rc = modify(k, id, "key_rotated", NULL, do_rotate, &ra, out, err);
    if (rc)
        memset(secret, 0, GF_APIKEY_BUFLEN);
    return rc;
}

static int do_expire(struct gf_key *key, const void *arg, struct gf_err *err)
{
    (void)err;
    key->expires = *(const int64_t *)arg;
    return 0;
}

int gf_keys_expire(struct gf_keys *k, const char *id, int64_t at, struct gf_key *out,
                   struct gf_err *err)
{
    if (at < 0)
        return gf_err_set(err, GF_EINVAL, "expires: must be a time");
    int64_t when = at == 0 ? gf_wall_ms() : at;
    return modify(k, id, "key_expiry_set", NULL, do_expire, &when, out, err);
}

static int do_suspend(struct gf_key *key, const void *arg, struct gf_err *err)
{
    (void)err;
    const char *reason = arg;
    if (key->suspended == 0)
        key->suspended = gf_wall_ms();
    snprintf(key->suspend_reason, sizeof(key->suspend_reason), "%s", reason ? reason : "");
    return 0;
}

int gf_keys_suspend(struct gf_keys *k, const char *id, const char *reason, struct gf_key *out,
                    struct gf_err *err)
{
    if (reason && gf_keyrec_check_name(reason, err) != 0)
        return gf_err_prefix(err, "reason");
    return modify(k, id, "key_suspended", reason, do_suspend, reason, out, err);
}

static int do_unsuspend(struct gf_key *key, const void *arg, struct gf_err *err)
{
    (void)arg;
    (void)err;
    key->suspended = 0;
    key->suspend_reason[0] = '\0';
    return 0;
}

int gf_keys_unsuspend(struct gf_keys *k, const char *id, struct gf_key *out, struct gf_err *err)
{
    int rc = modify(k, id, "key_unsuspended", NULL, do_unsuspend, NULL, out, err);
    if (rc == 0)
        k->lim->ops->clear_blocks(k->lim, id);
    return rc;
}

/* ---- request path ---------------------------------------------------------------------- */

static enum gf_auth judge(const struct gf_key *key, enum gf_key_match match, int64_t now_ms)
{
    if (key->revoked)
        return GF_AUTH_REVOKED;
    if (key->expires && now_ms >= key->expires)
        return GF_AUTH_EXPIRED;
    if (match == GF_KEY_MATCH_OLD && (!key->has_old || now_ms >= key->old_until))
        return GF_AUTH_EXPIRED;
    if (key->suspended)
        return GF_AUTH_SUSPENDED;
    return GF_AUTH_OK;
}

enum gf_auth gf_keys_authenticate(struct gf_keys *k, const char *authz, int64_t now_ms,
                                  struct gf_key *out, enum gf_key_match *match)
{
    const char *tok;
    size_t len;
    int rc = gf_apikey_from_header(authz, &tok, &len);
    if (rc == GF_EINVAL)
        return GF_AUTH_MISSING;
    if (rc)
        return GF_AUTH_MALFORMED;
    uint8_t d[GF_SHA256_LEN];
    gf_apikey_digest(tok, len, d);
    enum gf_key_match m;
    if (k->store->ops->lookup(k->store, d, out, &m) != 0)
        return GF_AUTH_UNKNOWN;
    if (match)
        *match = m;
    return judge(out, m, now_ms);
}

enum gf_auth gf_keys_recheck(struct gf_keys *k, const char *id, enum gf_key_match match,
                             int64_t now_ms)
{
    struct gf_key key;
    if (k->store->ops->get(k->store, id, &key) != 0)
        return GF_AUTH_UNKNOWN;
    return judge(&key, match, now_ms);
}

const char *gf_key_status(const struct gf_key *key, int64_t now_ms)
{
    switch (judge(key, GF_KEY_MATCH_CURRENT, now_ms)) {
    case GF_AUTH_REVOKED:
        return "revoked";
    case GF_AUTH_EXPIRED:
        return "expired";
    case GF_AUTH_SUSPENDED:
        return "suspended";
    default:
        return "active";
    }
}

int gf_auth_http_status(enum gf_auth a)
{
    return a == GF_AUTH_OK ? 200 : 401; // OpenAI answers every key problem with 401
}

const char *gf_auth_code(enum gf_auth a)
{
    switch (a) {
    case GF_AUTH_MISSING:
        return "missing_api_key";
    case GF_AUTH_REVOKED:
        return "api_key_revoked";
    case GF_AUTH_EXPIRED:
        return "api_key_expired";
    case GF_AUTH_SUSPENDED:
        return "api_key_suspended";
    default:
        return "invalid_api_key";
    }
}

const char *gf_auth_message(enum gf_auth a)
{
    switch (a) {
    case GF_AUTH_OK:
        return "ok";
    case GF_AUTH_MISSING:
        return "You didn't provide an API key. Provide it in an Authorization header "
               "(Authorization: Bearer YOUR_KEY).";
    case GF_AUTH_MALFORMED:
        return "Incorrect API key provided: the key is malformed (check for a typo).";
    case GF_AUTH_UNKNOWN:
        return "Incorrect API key provided.";
    case GF_AUTH_REVOKED:
        return "This API key has been revoked.";
    case GF_AUTH_EXPIRED:
        return "This API key has expired.";
    case GF_AUTH_SUSPENDED:
        return "This API key is suspended after repeated policy violations; an administrator "
               "must re-enable it.";
    }
    return "Incorrect API key provided.";
}

bool gf_keys_note_block(struct gf_keys *k, const char *id, int64_t max_blocks, int64_t window_ms,
                        struct gf_rl_now now)
{
    if (max_blocks <= 0 || window_ms <= 0)
        return false;
    if (!k->lim->ops->note_block(k->lim, id, max_blocks, window_ms, now))
        return false;
    struct gf_key key;
    if (k->store->ops->get(k->store, id, &key) != 0 || key.suspended)
        return false;
    char reason[GF_KEY_REASON_MAX + 1];
    snprintf(reason, sizeof(reason), "more than %lld policy blocks within %lld s",
             (long long)max_blocks, (long long)(window_ms / 1000));
    struct gf_err err = {0};
    if (gf_keys_suspend(k, id, reason, NULL, &err) != 0) {
        gf_log(GF_LOG_ERROR, "keys", "event=suspend_failed key=%s reason=\"%s\"", id, err.msg);
        return false;
    }
    return true;
}
