/* Integration test of the admin API and `gardefou keys`: the admin server runs in this process
 * on a libevent loop thread (127.0.0.1, free port); the real gardefou binary (argv[1]) talks to
 * it. Covers admin authentication (none, wrong), create/list/show/update/revoke/rotate/expire/
 * suspend/unsuspend through the CLI, OpenAI-shaped errors for bad requests, the policy reload
 * hook, the admin key file, the cut callback on revocation, and that no secret reaches the data
 * directory. */
#include "gateway/keys_int.h"

#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "../unit/gateway/keys_testutil.h"
#include "test.h"

extern char **environ;

static const char *gardefou;
static char dir[256];
static char url[64];
static const char *ADMIN = "test-admin-key-0123456789";
static struct event_base *base;
static struct gf_keys *keys;
static struct gf_admin *admin;
static atomic_int cuts;
static char last_cut[GF_KEYID_BUFLEN];

static void *loop_thread(void *p)
{
    (void)p;
    event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void on_cut(void *ud, const char *key_id, enum gf_auth why)
{
    (void)ud;
    (void)why;
    snprintf(last_cut, sizeof(last_cut), "%s", key_id);
    atomic_fetch_add(&cuts, 1);
}

static int reload_ok(void *ud, struct gf_buf *out, struct gf_err *err)
{
    (void)ud;
    (void)err;
    return gf_buf_puts(out, "{\"version\":\"test-2\"}");
}

/* Runs gardefou with args; captures stdout into out (cap 64 KiB). Returns the exit status. */
static int run_cli(char *out, size_t outlen, const char *const *args)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    char *argv[32];
    int n = 0;
    argv[n++] = (char *)gardefou;
    argv[n++] = (char *)"keys";
    for (; args[n - 2] && n < 30; n++)
        argv[n] = (char *)args[n - 2];
    argv[n++] = (char *)"--server";
    argv[n++] = url;
    argv[n] = NULL;
    pid_t pid;
    int rc = posix_spawn(&pid, gardefou, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (rc != 0) {
        close(pipefd[0]);
        return -1;
    }
    size_t len = 0;
    ssize_t r;
    while ((r = read(pipefd[0], out + len, outlen - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = '\0';
    close(pipefd[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

struct reply {
    char body[65536];
    size_t len;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
    struct reply *r = ud;
    size_t k = size * n;
    if (r->len + k >= sizeof(r->body))
        return 0;
    memcpy(r->body + r->len, p, k);
    r->len += k;
    r->body[r->len] = '\0';
    return k;
}

/* A raw admin request; returns the HTTP status. */
static long http(const char *method, const char *path, const char *auth, const char *body,
                 struct reply *r)
{
    CURL *c = curl_easy_init();
    char u[256], h[256];
    snprintf(u, sizeof(u), "%s%s", url, path);
    struct curl_slist *hs = NULL;
    if (auth) {
        snprintf(h, sizeof(h), "Authorization: Bearer %s", auth);
        hs = curl_slist_append(hs, h);
    }
    // A large body waits for the server's go-ahead (or its 413) however slow it is: sent
    // unasked into a refusal, the close would reset the connection and lose the 413.
    if (body && strlen(body) > 1024) {
        hs = curl_slist_append(hs, "Expect: 100-continue");
        curl_easy_setopt(c, CURLOPT_EXPECT_100_TIMEOUT_MS, 120000L);
    }
    r->len = 0;
    r->body[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
    return status;
}

static bool error_shaped(const char *body, const char *code)
{
    cJSON *j = cJSON_Parse(body);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
    bool ok = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "message")) &&
              cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "type")) &&
              cJSON_GetObjectItemCaseSensitive(e, "param") != NULL && cJSON_IsString(c) &&
              strcmp(c->valuestring, code) == 0;
    cJSON_Delete(j);
    return ok;
}

static void test_admin_auth(void)
{
    struct reply r;
    CHECK(http("GET", "/admin/v1/keys", NULL, NULL, &r) == 401);
    CHECK(error_shaped(r.body, "missing_admin_key"));
    CHECK(http("GET", "/admin/v1/keys", "wrong-admin-key-0000000", NULL, &r) == 401);
    CHECK(error_shaped(r.body, "invalid_admin_key"));
    CHECK(strstr(r.body, "wrong-admin-key") == NULL);
    CHECK(http("GET", "/admin/v1/keys", ADMIN, NULL, &r) == 200);
    CHECK(http("GET", "/v1/models", ADMIN, NULL, &r) == 404);
    // The CLI without an admin key, and with a wrong one.
    char out[65536];
    unsetenv(GF_ADMIN_KEY_ENV);
    const char *list[] = {"list", NULL};
    CHECK(run_cli(out, sizeof(out), list) == 2);
    setenv(GF_ADMIN_KEY_ENV, "wrong-admin-key-0000000", 1);
    CHECK(run_cli(out, sizeof(out), list) == 1);
    setenv(GF_ADMIN_KEY_ENV, ADMIN, 1);
    CHECK(run_cli(out, sizeof(out), list) == 0);
}

static char secrets[8][GF_APIKEY_BUFLEN];
static int n_secrets;

static void remember(const char *s)
{
    if (n_secrets < 8)
        snprintf(secrets[n_secrets++], GF_APIKEY_BUFLEN, "%s", s);
}

static void test_cli_lifecycle(void)
{
    char out[65536], id[GF_KEYID_BUFLEN];
    const char *create[] = {"create", "--name", "team a",  "--rpm",  "5",
                            "--tpm",  "1000",   "--group", "strict", NULL};
    REQUIRE(run_cli(out, sizeof(out), create) == 0);
    // The secret alone, one line.
    size_t n = strlen(out);
    REQUIRE(n == GF_APIKEY_LEN + 1 && out[GF_APIKEY_LEN] == '\n');
    CHECK(gf_apikey_check(out, GF_APIKEY_LEN) == 0);
    out[GF_APIKEY_LEN] = '\0';
    remember(out);
    struct gf_key k;
    enum gf_key_match m;
    char h[128];
    snprintf(h, sizeof(h), "Bearer %s", secrets[0]);
    REQUIRE(gf_keys_authenticate(keys, h, gf_wall_ms(), &k, &m) == GF_AUTH_OK);
    snprintf(id, sizeof(id), "%s", k.id);
    CHECK(k.limits.rpm == 5 && k.limits.tpm == 1000 && strcmp(k.group, "strict") == 0);

    const char *create_json[] = {"create", "--name", "b", "--expires", "1h", "--json", NULL};
    REQUIRE(run_cli(out, sizeof(out), create_json) == 0);
    cJSON *j = cJSON_Parse(out);
    const cJSON *sec = cJSON_GetObjectItemCaseSensitive(j, "secret");
    CHECK(cJSON_IsString(sec) && gf_apikey_check(sec->valuestring, strlen(sec->valuestring)) == 0);
    if (cJSON_IsString(sec))
        remember(sec->valuestring);
    CHECK(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(j, "expires_at")));
    cJSON_Delete(j);

    const char *list[] = {"list", NULL};
    REQUIRE(run_cli(out, sizeof(out), list) == 0);
    CHECK(strstr(out, id) != NULL && strstr(out, "team a") != NULL);
    CHECK(strstr(out, secrets[0]) == NULL);
    const char *list_json[] = {"list", "--json", NULL};
    REQUIRE(run_cli(out, sizeof(out), list_json) == 0);
    j = cJSON_Parse(out);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "data")) == 2);
    cJSON_Delete(j);

    const char *update[] = {"update", id, "--rpm", "7", "--group", "default", NULL};
    CHECK(run_cli(out, sizeof(out), update) == 0);
    const char *show[] = {"show", id, NULL};
    REQUIRE(run_cli(out, sizeof(out), show) == 0);
    CHECK(strstr(out, "rpm              7") != NULL && strstr(out, "default") != NULL);
    const char *bad_update[] = {"update", id, "--group", "no spaces", NULL};
    CHECK(run_cli(out, sizeof(out), bad_update) == 1);
    const char *bad_rpm[] = {"update", id, "--rpm", "-3", NULL};
    CHECK(run_cli(out, sizeof(out), bad_rpm) == 2);

    // Rotate with a grace period: both secrets work, the new one printed alone.
    const char *rotate[] = {"rotate", id, "--grace", "1h", NULL};
    REQUIRE(run_cli(out, sizeof(out), rotate) == 0);
    out[strcspn(out, "\n")] = '\0';
    CHECK(gf_apikey_check(out, strlen(out)) == 0 && strcmp(out, secrets[0]) != 0);
    remember(out);
    CHECK(gf_keys_authenticate(keys, h, gf_wall_ms(), &k, &m) == GF_AUTH_OK &&
          m == GF_KEY_MATCH_OLD);
    snprintf(h, sizeof(h), "Bearer %s", out);
    CHECK(gf_keys_authenticate(keys, h, gf_wall_ms(), &k, &m) == GF_AUTH_OK &&
          m == GF_KEY_MATCH_CURRENT);

    // Suspend and unsuspend.
    const char *suspend[] = {"suspend", id, "--reason", "testing", NULL};
    CHECK(run_cli(out, sizeof(out), suspend) == 0);
    CHECK(strstr(out, "suspended") != NULL && strstr(out, "testing") != NULL);
    CHECK(gf_keys_authenticate(keys, h, gf_wall_ms(), &k, &m) == GF_AUTH_SUSPENDED);
    CHECK(strcmp(last_cut, id) == 0);
    const char *unsuspend[] = {"unsuspend", id, NULL};
    CHECK(run_cli(out, sizeof(out), unsuspend) == 0);
    CHECK(gf_keys_authenticate(keys, h, gf_wall_ms(), &k, &m) == GF_AUTH_OK);

    // Revoke: refused at once, the in-flight requests cut before the answer came back.
    int before = atomic_load(&cuts);
    last_cut[0] = '\0';
    const char *revoke[] = {"revoke", id, NULL};
    CHECK(run_cli(out, sizeof(out), revoke) == 0);
    CHECK(strstr(out, "revoked") != NULL);
    CHECK(atomic_load(&cuts) == before + 1 && strcmp(last_cut, id) == 0);
    CHECK(gf_keys_authenticate(keys, h, gf_wall_ms(), &k, &m) == GF_AUTH_REVOKED);
    const char *rotate_revoked[] = {"rotate", id, NULL};
    CHECK(run_cli(out, sizeof(out), rotate_revoked) == 1);
    CHECK(out[0] == '\0');

    // Expire the second key now.
    REQUIRE(run_cli(out, sizeof(out), list_json) == 0);
    j = cJSON_Parse(out);
    const cJSON *second = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "data"), 1);
    char id2[GF_KEYID_BUFLEN];
    snprintf(id2, sizeof(id2), "%s", cJSON_GetObjectItemCaseSensitive(second, "id")->valuestring);
    cJSON_Delete(j);
    const char *expire[] = {"expire", id2, NULL};
    CHECK(run_cli(out, sizeof(out), expire) == 0);
    CHECK(strstr(out, "expired") != NULL);
    CHECK(strcmp(last_cut, id2) == 0);

    const char *show_missing[] = {"show", "key_0000000000000000", NULL};
    CHECK(run_cli(out, sizeof(out), show_missing) == 1);
    const char *no_name[] = {"create", NULL};
    CHECK(run_cli(out, sizeof(out), no_name) == 2);
    const char *bad_action[] = {"frobnicate", NULL};
    CHECK(run_cli(out, sizeof(out), bad_action) == 2);
}

static void test_bad_requests(void)
{
    struct reply r;
    CHECK(http("POST", "/admin/v1/keys", ADMIN, "{\"name\":\"x\",\"colour\":1}", &r) == 400);
    CHECK(error_shaped(r.body, "invalid_value") && strstr(r.body, "\"param\":\"colour\""));
    CHECK(http("POST", "/admin/v1/keys", ADMIN, "{\"name\":", &r) == 400);
    CHECK(error_shaped(r.body, "invalid_value"));
    CHECK(http("POST", "/admin/v1/keys", ADMIN, "[1]", &r) == 400);
    CHECK(http("POST", "/admin/v1/keys", ADMIN, "{\"name\":\"x\",\"rpm\":1.5}", &r) == 400);
    CHECK(http("POST", "/admin/v1/keys", ADMIN, "{\"name\":\"x\",\"rpm\":-1}", &r) == 400);
    CHECK(http("POST", "/admin/v1/keys", ADMIN, "{\"name\":\"x\",\"expires_in\":\"soon\"}", &r) ==
          400);
    CHECK(http("POST", "/admin/v1/keys", ADMIN, "{\"name\":\"\"}", &r) == 400);
    CHECK(http("GET", "/admin/v1/keys/not-an-id", ADMIN, NULL, &r) == 404);
    CHECK(error_shaped(r.body, "not_found"));
    CHECK(http("GET", "/admin/v1/keys/key_0000000000000000/x/y", ADMIN, NULL, &r) == 404);
    CHECK(http("POST", "/admin/v1/keys/key_0000000000000000/frob", ADMIN, "{}", &r) == 404);
    CHECK(http("DELETE", "/admin/v1/keys", ADMIN, NULL, &r) == 405);
    CHECK(http("GET", "/admin/v1/nothing", ADMIN, NULL, &r) == 404);
    // An oversized body is refused by the listener.
    char *big = malloc(200000);
    memset(big, 'a', 199999);
    big[199999] = '\0';
    long st = http("POST", "/admin/v1/keys", ADMIN, big, &r);
    CHECK(st == 413 || st == 400);
    free(big);
    // Policy reload: 501 until a hook is set, then the hook's answer.
    CHECK(http("POST", "/admin/v1/policy/reload", ADMIN, NULL, &r) == 501);
    CHECK(error_shaped(r.body, "not_implemented"));
    gf_admin_set_policy_reload(admin, reload_ok, NULL);
    CHECK(http("POST", "/admin/v1/policy/reload", ADMIN, NULL, &r) == 200);
    CHECK(strstr(r.body, "test-2") != NULL);
    CHECK(http("POST", "/admin/v1/policy/reload", NULL, NULL, &r) == 401);
}

static void test_admin_key_file(void)
{
    char d[256], path[300];
    tu_mkdtemp(d, sizeof(d));
    char *saved = getenv(GF_ADMIN_KEY_ENV) ? strdup(getenv(GF_ADMIN_KEY_ENV)) : NULL;
    unsetenv(GF_ADMIN_KEY_ENV);
    char *k1 = NULL, *k2 = NULL;
    bool created = false;
    struct gf_err err = {0};
    CHECK(gf_admin_key_load(d, false, &k1, &created, &err) == GF_ENOTFOUND);
    REQUIRE(gf_admin_key_load(d, true, &k1, &created, &err) == 0);
    CHECK(created && strncmp(k1, "gfadm_", 6) == 0 && strlen(k1) == 46);
    snprintf(path, sizeof(path), "%s/admin.key", d);
    struct stat st;
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    REQUIRE(gf_admin_key_load(d, true, &k2, &created, &err) == 0);
    CHECK(!created && strcmp(k1, k2) == 0);
    gf_free(k2);
    chmod(path, 0644);
    gf_err_clear(&err);
    CHECK(gf_admin_key_load(d, true, &k2, &created, &err) == GF_EPERM);
    CHECK(strstr(err.msg, "chmod 600") != NULL);
    setenv(GF_ADMIN_KEY_ENV, "short", 1);
    gf_err_clear(&err);
    CHECK(gf_admin_key_load(d, true, &k2, &created, &err) == GF_EINVAL);
    // The CLI reads the file through --data-dir.
    unsetenv(GF_ADMIN_KEY_ENV);
    chmod(path, 0600);
    char out[65536];
    const char *list[] = {"list", "--data-dir", d, NULL};
    CHECK(run_cli(out, sizeof(out), list) == 1); // a different admin key: refused
    gf_free(k1);
    if (saved) {
        setenv(GF_ADMIN_KEY_ENV, saved, 1);
        free(saved);
    }
    tu_rmtree(d);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        SKIP("usage: test_admin_api GARDEFOU_BINARY");
    gardefou = argv[1];
    signal(SIGPIPE, SIG_IGN);
    gf_json_init();
    gf_log_set_level(GF_LOG_WARN);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    evthread_use_pthreads();
    tu_mkdtemp(dir, sizeof(dir));
    struct gf_keys_config kc = {0};
    kc.rotate_grace_ms = 60000;
    struct gf_err err = {0};
    if (gf_keys_open(dir, &kc, &keys, &err) != 0) {
        fprintf(stderr, "keys: %s\n", err.msg);
        return 1;
    }
    base = event_base_new();
    struct gf_admin_config ac = {"127.0.0.1:0", ADMIN, 0, 0};
    if (gf_admin_new(base, keys, &ac, &admin, &err) != 0) {
        fprintf(stderr, "admin: %s\n", err.msg);
        return 1;
    }
    gf_admin_set_cut(admin, on_cut, NULL);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", gf_admin_port(admin));
    setenv(GF_ADMIN_KEY_ENV, ADMIN, 1);
    pthread_t th;
    pthread_create(&th, NULL, loop_thread, NULL);

    RUN(test_admin_auth);
    RUN(test_cli_lifecycle);
    RUN(test_bad_requests);
    RUN(test_admin_key_file);

    // No secret anywhere in the data directory.
    int leaked = 0;
    for (int i = 0; i < n_secrets; i++)
        leaked += tu_tree_contains(dir, secrets[i]) + tu_tree_contains(dir, secrets[i] + 3);
    CHECK(n_secrets == 3);
    CHECK(leaked == 0);
    CHECK(!tu_tree_contains(dir, ADMIN));

    event_base_loopbreak(base);
    pthread_join(th, NULL);
    gf_admin_free(admin);
    event_base_free(base);
    gf_keys_close(keys);
    tu_rmtree(dir);
    curl_global_cleanup();
    libevent_global_shutdown();
    return test_report();
}
