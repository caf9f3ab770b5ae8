/* Unit tests of gateway/keys.c: create/authenticate, revoke, rotate with a grace period, expiry,
 * updates, abuse suspension and admin re-enabling, events for the audit log, persistence across
 * reopen, and that no secret reaches the data directory. */
#include "gateway/keys_int.h"

#include <string.h>

#include "keys_testutil.h"
#include "test.h"

struct events {
    char last[64];
    char detail[160];
    int n;
};

static void on_event(void *ud, const char *action, const struct gf_key *k, const char *detail)
{
    struct events *e = ud;
    (void)k;
    snprintf(e->last, sizeof(e->last), "%s", action);
    snprintf(e->detail, sizeof(e->detail), "%s", detail ? detail : "");
    e->n++;
}

static struct gf_keys *open_keys(const char *dir, struct events *ev)
{
    struct gf_keys_config cfg = {0};
    cfg.default_limits.rpm = 60;
    cfg.rotate_grace_ms = 3600000;
    cfg.no_fsync = true;
    cfg.on_event = on_event;
    cfg.event_ud = ev;
    struct gf_keys *k = NULL;
    struct gf_err err = {0};
    if (gf_keys_open(dir, &cfg, &k, &err) != 0)
        fprintf(stderr, "open: %s\n", err.msg);
    return k;
}

static void bearer(char *h, size_t n, const char *secret)
{
    snprintf(h, n, "Bearer %s", secret);
}

static void test_lifecycle(void)
{
    char dir[256], h[128];
    tu_mkdtemp(dir, sizeof(dir));
    struct events ev = {0};
    struct gf_keys *k = open_keys(dir, &ev);
    REQUIRE(k != NULL);
    struct gf_key_spec spec;
    gf_key_spec_init(&spec);
    spec.name = "team a";
    spec.group = "strict";
    spec.limits.tpm = 5000;
    char secret[GF_APIKEY_BUFLEN];
    struct gf_key key, got;
    struct gf_err err = {0};
    REQUIRE(gf_keys_create(k, &spec, secret, &key, &err) == 0);
    CHECK(gf_apikey_check(secret, strlen(secret)) == 0);
    CHECK(strcmp(ev.last, "key_created") == 0);
    CHECK_STREQ(key.group, "strict");
    CHECK(key.limits.rpm == 60 && key.limits.tpm == 5000 && key.limits.max_concurrent == 0);
    CHECK(strncmp(key.prefix, secret, GF_KEYPREFIX_LEN) == 0);
    int64_t now = gf_wall_ms();
    bearer(h, sizeof(h), secret);
    enum gf_key_match m;
    CHECK(gf_keys_authenticate(k, h, now, &got, &m) == GF_AUTH_OK);
    CHECK(strcmp(got.id, key.id) == 0 && m == GF_KEY_MATCH_CURRENT);
    CHECK(gf_keys_authenticate(k, NULL, now, &got, &m) == GF_AUTH_MISSING);
    CHECK(gf_keys_authenticate(k, "Basic x", now, &got, &m) == GF_AUTH_MISSING);
    char typo[GF_APIKEY_BUFLEN];
    memcpy(typo, secret, sizeof(typo));
    typo[5] = typo[5] == 'Q' ? 'R' : 'Q';
    bearer(h, sizeof(h), typo);
    CHECK(gf_keys_authenticate(k, h, now, &got, &m) == GF_AUTH_MALFORMED);
    char other[GF_APIKEY_BUFLEN];
    gf_apikey_generate(other);
    bearer(h, sizeof(h), other);
    CHECK(gf_keys_authenticate(k, h, now, &got, &m) == GF_AUTH_UNKNOWN);

    // Update limits and group.
    struct gf_key_spec up;
    gf_key_spec_init(&up);
    up.limits.rpm = 5;
    up.group = "default";
    CHECK(gf_keys_update(k, key.id, &up, &got, &err) == 0);
    CHECK(got.limits.rpm == 5 && got.limits.tpm == 5000 && strcmp(got.group, "default") == 0);
    up.group = "bad group";
    gf_err_clear(&err);
    CHECK(gf_keys_update(k, key.id, &up, &got, &err) == GF_EINVAL);
    CHECK(strstr(err.msg, "group") != NULL);
    gf_err_clear(&err);
    CHECK(gf_keys_update(k, "key_0000000000000000", &up, &got, &err) == GF_ENOTFOUND);
    gf_err_clear(&err);
    CHECK(gf_keys_update(k, "../etc", &up, &got, &err) == GF_ENOTFOUND);

    // Rotate: the old secret works during the grace, then not; the new one works.
    char fresh[GF_APIKEY_BUFLEN];
    CHECK(gf_keys_rotate(k, key.id, 10000, fresh, &got, &err) == 0);
    CHECK(strcmp(fresh, secret) != 0 && gf_apikey_check(fresh, strlen(fresh)) == 0);
    bearer(h, sizeof(h), secret);
    CHECK(gf_keys_authenticate(k, h, now, &got, &m) == GF_AUTH_OK && m == GF_KEY_MATCH_OLD);
    CHECK(gf_keys_authenticate(k, h, now + 20000, &got, &m) == GF_AUTH_EXPIRED);
    CHECK(gf_keys_recheck(k, key.id, GF_KEY_MATCH_OLD, now + 20000) == GF_AUTH_EXPIRED);
    bearer(h, sizeof(h), fresh);
    CHECK(gf_keys_authenticate(k, h, now + 20000, &got, &m) == GF_AUTH_OK);

    // Expiry.
    CHECK(gf_keys_expire(k, key.id, now + 5000, &got, &err) == 0);
    CHECK(gf_keys_authenticate(k, h, now, &got, &m) == GF_AUTH_OK);
    CHECK(gf_keys_authenticate(k, h, now + 5000, &got, &m) == GF_AUTH_EXPIRED);
    CHECK(strcmp(gf_key_status(&got, now + 5000), "expired") == 0);
    struct gf_key_spec never;
    gf_key_spec_init(&never);
    never.expires = 0;
    CHECK(gf_keys_update(k, key.id, &never, &got, &err) == 0);
    CHECK(gf_keys_authenticate(k, h, now + 5000, &got, &m) == GF_AUTH_OK);

    // Revocation is final and survives a reopen.
    CHECK(gf_keys_revoke(k, key.id, &got, &err) == 0);
    CHECK(strcmp(ev.last, "key_revoked") == 0);
    CHECK(gf_keys_authenticate(k, h, now, &got, &m) == GF_AUTH_REVOKED);
    CHECK(gf_keys_recheck(k, key.id, GF_KEY_MATCH_CURRENT, now) == GF_AUTH_REVOKED);
    char refused[GF_APIKEY_BUFLEN];
    CHECK(gf_keys_rotate(k, key.id, 0, refused, &got, &err) == GF_EINVAL);
    CHECK(refused[0] == '\0'); // a refused rotation leaves no secret behind
    gf_keys_close(k);
    k = open_keys(dir, &ev);
    REQUIRE(k != NULL);
    CHECK(gf_keys_authenticate(k, h, now, &got, &m) == GF_AUTH_REVOKED);
    CHECK(gf_auth_http_status(GF_AUTH_REVOKED) == 401);
    CHECK(strcmp(gf_auth_code(GF_AUTH_REVOKED), "api_key_revoked") == 0);
    gf_keys_close(k);
    // No secret (current, rotated or other) was written anywhere.
    CHECK(!tu_tree_contains(dir, secret));
    CHECK(!tu_tree_contains(dir, fresh));
    CHECK(!tu_tree_contains(dir, secret + 3));
    tu_rmtree(dir);
}

static void test_create_errors(void)
{
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct events ev = {0};
    struct gf_keys *k = open_keys(dir, &ev);
    REQUIRE(k != NULL);
    struct gf_key_spec spec;
    gf_key_spec_init(&spec);
    char secret[GF_APIKEY_BUFLEN];
    struct gf_err err = {0};
    CHECK(gf_keys_create(k, &spec, secret, NULL, &err) == GF_EINVAL);
    spec.name = "x\ny";
    gf_err_clear(&err);
    CHECK(gf_keys_create(k, &spec, secret, NULL, &err) == GF_EINVAL);
    spec.name = "ok";
    spec.expires = 1000; // in 1970
    gf_err_clear(&err);
    CHECK(gf_keys_create(k, &spec, secret, NULL, &err) == GF_EINVAL);
    CHECK(strstr(err.msg, "future") != NULL);
    spec.expires = -1;
    spec.limits.rpm = 2000000000000ll;
    gf_err_clear(&err);
    CHECK(gf_keys_create(k, &spec, secret, NULL, &err) == GF_EINVAL);
    CHECK(k->store->ops->count(k->store) == 0);
    gf_keys_close(k);
    tu_rmtree(dir);
}

static void test_suspension(void)
{
    char dir[256], h[128];
    tu_mkdtemp(dir, sizeof(dir));
    struct events ev = {0};
    struct gf_keys *k = open_keys(dir, &ev);
    REQUIRE(k != NULL);
    struct gf_key_spec spec;
    gf_key_spec_init(&spec);
    spec.name = "noisy";
    char secret[GF_APIKEY_BUFLEN];
    struct gf_key key, got;
    struct gf_err err = {0};
    REQUIRE(gf_keys_create(k, &spec, secret, &key, &err) == 0);
    bearer(h, sizeof(h), secret);
    struct gf_rl_now now = gf_rl_now();
    // Threshold 2 blocks in 60 s: the third suspends.
    CHECK(!gf_keys_note_block(k, key.id, 2, 60000, now));
    CHECK(!gf_keys_note_block(k, key.id, 2, 60000, now));
    CHECK(gf_keys_note_block(k, key.id, 2, 60000, now));
    CHECK(strcmp(ev.last, "key_suspended") == 0 && strstr(ev.detail, "policy blocks") != NULL);
    CHECK(gf_keys_authenticate(k, h, now.wall_ms, &got, NULL) == GF_AUTH_SUSPENDED);
    CHECK(gf_auth_http_status(GF_AUTH_SUSPENDED) == 401);
    CHECK(strcmp(gf_key_status(&got, now.wall_ms), "suspended") == 0);
    // Further blocks do not suspend twice.
    int before = ev.n;
    CHECK(!gf_keys_note_block(k, key.id, 2, 60000, now));
    CHECK(ev.n == before);
    // It stays suspended across a restart, until an admin re-enables it.
    gf_keys_close(k);
    k = open_keys(dir, &ev);
    REQUIRE(k != NULL);
    CHECK(gf_keys_authenticate(k, h, now.wall_ms, &got, NULL) == GF_AUTH_SUSPENDED);
    CHECK(gf_keys_unsuspend(k, key.id, &got, &err) == 0);
    CHECK(strcmp(ev.last, "key_unsuspended") == 0);
    CHECK(gf_keys_authenticate(k, h, now.wall_ms, &got, NULL) == GF_AUTH_OK);
    // Zero disables suspension.
    CHECK(!gf_keys_note_block(k, key.id, 0, 60000, now));
    // The history was cleared: two more blocks are tolerated again.
    CHECK(!gf_keys_note_block(k, key.id, 2, 60000, now));
    CHECK(!gf_keys_note_block(k, key.id, 2, 60000, now));
    gf_keys_close(k);
    tu_rmtree(dir);
}

/* Every allocation of open, create and revoke fails in turn: each failure is GF_ENOMEM, leaks
 * nothing (ASan), and leaves the store consistent. */
static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct events ev = {0};
    struct gf_keys_config cfg = {0};
    cfg.no_fsync = true;
    cfg.on_event = on_event;
    cfg.event_ud = &ev;
    struct gf_keys *k = NULL;
    struct gf_err err = {0};
    int wrong = 0;
    for (long n = 1; n < 1000; n++) {
        gf_alloc_fail_after(n, true);
        int rc = gf_keys_open(dir, &cfg, &k, &err);
        gf_alloc_fail_after(0, false);
        if (rc == 0)
            break;
        wrong += rc != GF_ENOMEM;
    }
    CHECK(wrong == 0);
    REQUIRE(k != NULL);
    struct gf_key_spec spec;
    gf_key_spec_init(&spec);
    spec.name = "oom";
    char secret[GF_APIKEY_BUFLEN];
    struct gf_key key;
    int created = 0;
    for (long n = 1; n < 1000; n++) {
        gf_alloc_fail_after(n, true);
        int rc = gf_keys_create(k, &spec, secret, &key, &err);
        gf_alloc_fail_after(0, false);
        if (rc == 0) {
            created = 1;
            break;
        }
        wrong += rc != GF_ENOMEM;
        CHECK(secret[0] == '\0'); // a failed create hands out no secret
    }
    CHECK(created && wrong == 0);
    CHECK(k->store->ops->count(k->store) == 1);
    for (long n = 1; n < 1000; n++) {
        gf_alloc_fail_after(n, true);
        int rc = gf_keys_revoke(k, key.id, NULL, &err);
        gf_alloc_fail_after(0, false);
        if (rc == 0)
            break;
        wrong += rc != GF_ENOMEM;
    }
    CHECK(wrong == 0);
    char h[128];
    bearer(h, sizeof(h), secret);
    CHECK(gf_keys_authenticate(k, h, gf_wall_ms(), &key, NULL) == GF_AUTH_REVOKED);
    gf_keys_close(k);
    tu_rmtree(dir);
}

static void test_admin_address(void)
{
    char out[300];
    CHECK(gf_keys_admin_address("127.0.0.1:8080", NULL, out, sizeof(out)) == 0);
    CHECK_STREQ(out, "127.0.0.1:8081");
    CHECK(gf_keys_admin_address("127.0.0.1:0", "", out, sizeof(out)) == 0);
    CHECK_STREQ(out, "127.0.0.1:0");
    CHECK(gf_keys_admin_address("[::1]:9000", NULL, out, sizeof(out)) == 0);
    CHECK_STREQ(out, "[::1]:9001");
    CHECK(gf_keys_admin_address("127.0.0.1:8080", "10.0.0.1:7000", out, sizeof(out)) == 0);
    CHECK_STREQ(out, "10.0.0.1:7000");
    CHECK(gf_keys_admin_address("127.0.0.1:8080", "off", out, sizeof(out)) == 0);
    CHECK_STREQ(out, "");
    CHECK(gf_keys_admin_address("127.0.0.1:8080", "nonsense", out, sizeof(out)) == GF_EINVAL);
    CHECK(gf_keys_admin_address("127.0.0.1:65535", NULL, out, sizeof(out)) == GF_EINVAL);
    char host[64];
    int port;
    CHECK(gf_parse_hostport("localhost:80", host, sizeof(host), &port) == 0 && port == 80);
    CHECK(gf_parse_hostport(":80", host, sizeof(host), &port) == GF_EINVAL);
    CHECK(gf_parse_hostport("h:99999", host, sizeof(host), &port) == GF_EINVAL);
    CHECK(gf_parse_hostport("[::1", host, sizeof(host), &port) == GF_EINVAL);
}

int main(void)
{
    gf_json_init();
    gf_log_set_level(GF_LOG_ERROR);
    RUN(test_lifecycle);
    RUN(test_create_errors);
    RUN(test_suspension);
    RUN(test_admin_address);
    RUN(test_oom);
    return test_report();
}
