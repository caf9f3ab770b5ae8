/* Integration test of keys and limits through the real server: `gardefou serve` (argv[1]) in
 * front of the mock upstream, on loopback with free ports. Covers admin authentication through
 * the server's admin listener, 401s for missing/malformed/unknown/revoked keys, x-ratelimit
 * headers on success and 429 (with Retry-After), rate-limit exactness with concurrent clients,
 * a token limit stopping a stream, revocation of an open stream (error event, well within a
 * second), admin suspension, and a search of every output file (server log, data directory)
 * for the secrets used. */
#include "gateway/keys_int.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "../unit/gateway/keys_testutil.h"
#include "mock_child.h"
#include "test.h"

extern char **environ;

static const char *gardefou;
static const char *ADMIN = "server-admin-key-0123456789";
static char dir[256], logpath[300];
static char api[64], admin_url[64];
static pid_t server_pid;
static const char *prompt_text = "hello there"; // what chat() sends as the user message
static struct mock_child mock;
static char secrets[16][GF_APIKEY_BUFLEN];
static int n_secrets;

/* ---- processes ------------------------------------------------------------------------- */

static int start_server(const char *const *extra)
{
    int out[2];
    if (pipe(out) != 0)
        return -1;
    snprintf(logpath, sizeof(logpath), "%s/server.log", dir);
    char datadir[300];
    snprintf(datadir, sizeof(datadir), "%s/data", dir);
    // A policy that blocks one word, and suspends a key blocked more than twice in a minute.
    char policy[300];
    snprintf(policy, sizeof(policy), "%s/policy.json", dir);
    const char *pj = "{\"version\":1,\"default\":\"allow\",\"rules\":[{\"id\":\"no-banana\","
                     "\"stage\":\"input\",\"detector\":\"keywords\",\"keywords\":"
                     "[\"forbiddenbanana\"],\"action\":\"block\"}],"
                     "\"abuse\":{\"blocks\":2,\"window\":\"1m\"}}";
    tu_write(policy, pj, strlen(pj));
    // keys.admin_listen stays unset: the admin API takes listen's port + 1, here any free port.
    const char *argv[40] = {gardefou,      "serve", "--listen",   "127.0.0.1:0",
                            "--data-dir",  datadir, "--upstream", mock.url,
                            "--log-level", "debug", "--policy",   policy};
    int n = 12;
    for (size_t i = 0; extra && extra[i] && n < 38; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    posix_spawn_file_actions_addopen(&fa, 2, logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int rc = posix_spawn(&server_pid, gardefou, &fa, NULL, (char **)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    if (rc != 0) {
        close(out[0]);
        return -1;
    }
    FILE *f = fdopen(out[0], "r");
    char line[512];
    api[0] = admin_url[0] = '\0';
    while ((api[0] == '\0' || admin_url[0] == '\0') && fgets(line, sizeof(line), f)) {
        char *p;
        if ((p = strstr(line, "listening on ")) != NULL)
            snprintf(api, sizeof(api), "%.*s", (int)strcspn(p + 13, "\n"), p + 13);
        if ((p = strstr(line, "admin API on ")) != NULL)
            snprintf(admin_url, sizeof(admin_url), "%.*s", (int)strcspn(p + 13, "\n"), p + 13);
    }
    fclose(f);
    if (api[0] == '\0' || admin_url[0] == '\0') {
        size_t len;
        char *log = tu_read(logpath, &len);
        if (log && (strstr(log, "no engine") || strstr(log, "no upstream engine"))) {
            free(log);
            return 77;
        }
        fprintf(stderr, "the server did not start; its log:\n");
        fprintf(stderr, "%s\n", log ? log : "(none)");
        free(log);
        return -1;
    }
    return 0;
}

static int stop_server(void)
{
    if (server_pid <= 0)
        return 0;
    kill(server_pid, SIGTERM);
    int st;
    waitpid(server_pid, &st, 0);
    server_pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Runs `gardefou keys ARGS --server admin_url`, stdout into out. */
static int run_cli(char *out, size_t outlen, const char *const *args)
{
    int pipefd[2];
    if (pipe(pipefd) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
    posix_spawn_file_actions_addclose(&fa, pipefd[0]);
    posix_spawn_file_actions_addopen(&fa, 2, logpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
    const char *argv[32] = {gardefou, "keys"};
    int n = 2;
    for (size_t i = 0; args[i] && n < 28; i++)
        argv[n++] = args[i];
    argv[n++] = "--server";
    argv[n++] = admin_url;
    argv[n] = NULL;
    pid_t pid;
    int rc = posix_spawn(&pid, gardefou, &fa, NULL, (char **)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(pipefd[1]);
    if (rc != 0) {
        close(pipefd[0]);
        return -1;
    }
    size_t len = 0;
    ssize_t r;
    while (len + 1 < outlen && (r = read(pipefd[0], out + len, outlen - 1 - len)) > 0)
        len += (size_t)r;
    out[len] = '\0';
    close(pipefd[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Creates a key through the CLI; its secret goes into secret (and the list searched at the end). */
static int create_key(char secret[GF_APIKEY_BUFLEN], char id[GF_KEYID_BUFLEN],
                      const char *const *limits)
{
    const char *args[20] = {"create", "--name", "itest", "--json"};
    int n = 4;
    for (size_t i = 0; limits && limits[i] && n < 18; i++)
        args[n++] = limits[i];
    args[n] = NULL;
    char out[8192];
    if (run_cli(out, sizeof(out), args) != 0)
        return -1;
    cJSON *j = cJSON_Parse(out);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(j, "secret");
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(j, "id");
    int rc = cJSON_IsString(s) && cJSON_IsString(i) ? 0 : -1;
    if (rc == 0) {
        snprintf(secret, GF_APIKEY_BUFLEN, "%s", s->valuestring);
        snprintf(id, GF_KEYID_BUFLEN, "%s", i->valuestring);
        if (n_secrets < 16)
            snprintf(secrets[n_secrets++], GF_APIKEY_BUFLEN, "%s", secret);
    }
    cJSON_Delete(j);
    return rc;
}

/* ---- HTTP ------------------------------------------------------------------------------ */

struct resp {
    long status;
    char body[1 << 16];
    size_t len;
    char headers[8192];
    size_t hlen;
    uint64_t t_first, t_end; // monotonic ns of the first body byte and of the end
    atomic_int got_data;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t k = size * n;
    if (r->t_first == 0)
        r->t_first = gf_now_ns();
    size_t room = sizeof(r->body) - 1 - r->len;
    size_t c = k < room ? k : room;
    memcpy(r->body + r->len, p, c);
    r->len += c;
    r->body[r->len] = '\0';
    atomic_store(&r->got_data, 1);
    return k;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t k = size * n;
    size_t room = sizeof(r->headers) - 1 - r->hlen;
    size_t c = k < room ? k : room;
    memcpy(r->headers + r->hlen, p, c);
    r->hlen += c;
    r->headers[r->hlen] = '\0';
    return k;
}

/* POST /v1/chat/completions with model (the mock's script) and the key (may be NULL or any
 * Authorization value when raw). */
static void chat(const char *authz, const char *model, bool stream, struct resp *r)
{
    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    char u[128], h[256], body[512];
    snprintf(u, sizeof(u), "%s/v1/chat/completions", api);
    snprintf(body, sizeof(body),
             "{\"model\":\"%s\",\"stream\":%s,\"messages\":[{\"role\":\"user\",\"content\":"
             "\"%s\"}]}",
             model, stream ? "true" : "false", prompt_text);
    struct curl_slist *hs = curl_slist_append(NULL, "Content-Type: application/json");
    if (authz) {
        snprintf(h, sizeof(h), "Authorization: %s", authz);
        hs = curl_slist_append(hs, h);
    }
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    r->t_end = gf_now_ns();
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
}

/* Any request to the API: method, path, Authorization value (may be NULL), body (may be NULL). */
static void call(const char *method, const char *path, const char *authz, const char *body,
                 struct resp *r)
{
    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    char u[256], h[256];
    snprintf(u, sizeof(u), "%s%s", api, path);
    struct curl_slist *hs = curl_slist_append(NULL, "Content-Type: application/json");
    if (authz) {
        snprintf(h, sizeof(h), "Authorization: %s", authz);
        hs = curl_slist_append(hs, h);
    }
    curl_easy_setopt(c, CURLOPT_URL, u);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
}

static void bearer(char *out, size_t n, const char *secret)
{
    snprintf(out, n, "Bearer %s", secret);
}

static bool has_header(const struct resp *r, const char *name)
{
    return strcasestr(r->headers, name) != NULL;
}

static bool error_code(const char *body, const char *code)
{
    cJSON *j = cJSON_Parse(body);
    const cJSON *c =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "code");
    bool ok = cJSON_IsString(c) && strcmp(c->valuestring, code) == 0;
    cJSON_Delete(j);
    return ok;
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_requires_keys(void)
{
    struct resp *r = calloc(1, sizeof(*r));
    char h[128], secret[GF_APIKEY_BUFLEN], id[GF_KEYID_BUFLEN];
    // No key exists yet and open mode is off: refused.
    chat(NULL, "mock-model", false, r);
    CHECK(r->status == 401 && error_code(r->body, "invalid_api_key"));
    REQUIRE(create_key(secret, id, NULL) == 0);
    chat(NULL, "mock-model", false, r);
    CHECK(r->status == 401);
    CHECK(strstr(r->body, "\"type\":\"authentication_error\"") != NULL);
    chat("Basic dXNlcjpwYXNz", "mock-model", false, r);
    CHECK(r->status == 401);
    char typo[GF_APIKEY_BUFLEN];
    memcpy(typo, secret, sizeof(typo));
    typo[9] = typo[9] == 'x' ? 'y' : 'x';
    bearer(h, sizeof(h), typo);
    chat(h, "mock-model", false, r);
    CHECK(r->status == 401 && strstr(r->body, "malformed") != NULL);
    CHECK(strstr(r->body, typo) == NULL);
    char other[GF_APIKEY_BUFLEN];
    gf_apikey_generate(other);
    bearer(h, sizeof(h), other);
    chat(h, "mock-model", false, r);
    CHECK(r->status == 401);
    bearer(h, sizeof(h), secret);
    chat(h, "mock-model", false, r);
    CHECK_MSG(r->status == 200, "status %ld: %s", r->status, r->body);
    // The upstream never sees the client's key.
    chat(h, "echo", false, r);
    CHECK(r->status == 200 && strstr(r->body, secret) == NULL);
    // Revoked: the first request after the CLI returns is refused.
    const char *revoke[] = {"revoke", id, NULL};
    char out[4096];
    CHECK(run_cli(out, sizeof(out), revoke) == 0);
    chat(h, "mock-model", false, r);
    CHECK(r->status == 401 && strstr(r->body, "revoked") != NULL);
    free(r);
}

static void test_admin_auth(void)
{
    char out[4096];
    const char *list[] = {"list", NULL};
    setenv(GF_ADMIN_KEY_ENV, "not-the-admin-key-000000", 1);
    CHECK(run_cli(out, sizeof(out), list) == 1);
    unsetenv(GF_ADMIN_KEY_ENV);
    CHECK(run_cli(out, sizeof(out), list) == 2);
    setenv(GF_ADMIN_KEY_ENV, ADMIN, 1);
    CHECK(run_cli(out, sizeof(out), list) == 0);
}

static void test_headers_and_429(void)
{
    struct resp *r = calloc(1, sizeof(*r));
    char h[128], secret[GF_APIKEY_BUFLEN], id[GF_KEYID_BUFLEN];
    const char *lim[] = {"--rpm", "2", "--tpm", "100000", NULL};
    REQUIRE(create_key(secret, id, lim) == 0);
    bearer(h, sizeof(h), secret);
    chat(h, "mock-model", false, r);
    CHECK(r->status == 200);
    CHECK(has_header(r, "x-ratelimit-limit-requests: 2"));
    CHECK(has_header(r, "x-ratelimit-remaining-requests: 1"));
    CHECK(has_header(r, "x-ratelimit-reset-requests:"));
    CHECK(has_header(r, "x-ratelimit-limit-tokens: 100000"));
    CHECK(has_header(r, "x-ratelimit-remaining-tokens:"));
    CHECK(has_header(r, "x-ratelimit-reset-tokens:"));
    chat(h, "mock-model", true, r);
    CHECK(r->status == 200 && has_header(r, "x-ratelimit-remaining-requests: 0"));
    chat(h, "mock-model", false, r);
    CHECK(r->status == 429);
    CHECK(error_code(r->body, "rate_limit_exceeded"));
    CHECK(has_header(r, "retry-after:") && has_header(r, "x-ratelimit-remaining-requests: 0"));
    free(r);
}

/* Every authenticated answer of an OpenAI route carries the x-ratelimit-* headers: the model
 * list (which the limiter does not count), moderations, and errors after authentication. */
static void test_headers_on_every_route(void)
{
    struct resp *r = calloc(1, sizeof(*r));
    char h[128], secret[GF_APIKEY_BUFLEN], id[GF_KEYID_BUFLEN];
    const char *lim[] = {"--rpm", "5", "--tpm", "100000", NULL};
    REQUIRE(create_key(secret, id, lim) == 0);
    bearer(h, sizeof(h), secret);
    for (int i = 0; i < 2; i++) { // the model list shows the state and takes nothing
        call("GET", "/v1/models", h, NULL, r);
        CHECK_MSG(r->status == 200, "models: %ld", r->status);
        CHECK(has_header(r, "x-ratelimit-limit-requests: 5"));
        CHECK(has_header(r, "x-ratelimit-remaining-requests: 5"));
        CHECK(has_header(r, "x-ratelimit-reset-requests:"));
        CHECK(has_header(r, "x-ratelimit-limit-tokens: 100000"));
        CHECK(has_header(r, "x-ratelimit-remaining-tokens: 100000"));
        CHECK(has_header(r, "x-ratelimit-reset-tokens:"));
        CHECK(strcasestr(r->headers, "x-ratelimit-limit-requests") ==
              strcasestr(r->headers, "x-ratelimit-limit-requests: 5")); // once only
    }
    call("POST", "/v1/moderations", h, "{\"input\":\"hello there\"}", r);
    CHECK_MSG(r->status == 200, "moderations: %ld %s", r->status, r->body);
    CHECK(has_header(r, "x-ratelimit-remaining-requests: 4"));
    CHECK(has_header(r, "x-ratelimit-limit-tokens: 100000"));
    // Errors after authentication: an upstream 404, a refused body, a policy block.
    chat(h, "status=404", false, r);
    CHECK(r->status == 404 && has_header(r, "x-ratelimit-remaining-requests: 3"));
    const char *old = prompt_text;
    prompt_text = "forbiddenbanana";
    chat(h, "mock-model", false, r);
    prompt_text = old;
    CHECK_MSG(r->status >= 400 && r->status < 500 && has_header(r, "x-ratelimit-remaining-requests: 2"),
              "blocked: %ld", r->status);
    call("GET", "/v1/models", h, NULL, r);
    CHECK(r->status == 200 && has_header(r, "x-ratelimit-remaining-requests: 2"));
    // Without a key (open mode off) there is nobody to report on: no headers on the 401.
    call("GET", "/v1/models", NULL, NULL, r);
    CHECK(r->status == 401 && !has_header(r, "x-ratelimit-"));
    free(r);
}

struct racer {
    const char *authz;
    const char *model;
    struct resp r;
};

static void *race(void *p)
{
    struct racer *x = p;
    chat(x->authz, x->model ? x->model : "mock-model", false, &x->r);
    return NULL;
}

static void test_exact_under_concurrency(void)
{
    char h[128], secret[GF_APIKEY_BUFLEN], id[GF_KEYID_BUFLEN];
    const char *lim[] = {"--rpm", "5", NULL}; // then one every 12 s: none during the test
    REQUIRE(create_key(secret, id, lim) == 0);
    bearer(h, sizeof(h), secret);
    enum { N = 16 };
    struct racer *x = calloc(N, sizeof(*x));
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        x[i].authz = h;
        pthread_create(&th[i], NULL, race, &x[i]);
    }
    int ok = 0, limited = 0, other = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        if (x[i].r.status == 200)
            ok++;
        else if (x[i].r.status == 429 && has_header(&x[i].r, "retry-after:"))
            limited++;
        else
            other++;
    }
    CHECK_MSG(ok == 5 && limited == N - 5 && other == 0, "200: %d, 429: %d, other: %d", ok, limited,
              other);
    free(x);
    // max_concurrent: slow answers (5 s before the upstream's headers) hold their slots.
    const char *lim2[] = {"--max-concurrent", "2", NULL};
    REQUIRE(create_key(secret, id, lim2) == 0);
    bearer(h, sizeof(h), secret);
    x = calloc(N, sizeof(*x));
    for (int i = 0; i < 6; i++) {
        x[i].authz = h;
        x[i].model = "hdelay=5000";
        pthread_create(&th[i], NULL, race, &x[i]);
    }
    ok = limited = 0;
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        ok += x[i].r.status == 200;
        limited += x[i].r.status == 429;
    }
    CHECK_MSG(ok == 2 && limited == 4, "200: %d, 429: %d", ok, limited);
    free(x);
}

struct streamer {
    const char *authz;
    const char *model;
    struct resp r;
};

static void *stream_thread(void *p)
{
    struct streamer *s = p;
    chat(s->authz, s->model, true, &s->r);
    return NULL;
}

static void test_revoke_open_stream(void)
{
    char h[128], secret[GF_APIKEY_BUFLEN], id[GF_KEYID_BUFLEN];
    REQUIRE(create_key(secret, id, NULL) == 0);
    bearer(h, sizeof(h), secret);
    struct streamer *s = calloc(1, sizeof(*s));
    s->authz = h;
    s->model = "tokens=600,delay=50"; // 30 s unless cut
    pthread_t th;
    pthread_create(&th, NULL, stream_thread, s);
    for (int i = 0; i < 1000 && !atomic_load(&s->r.got_data); i++)
        usleep(10000);
    REQUIRE(atomic_load(&s->r.got_data));
    const char *revoke[] = {"revoke", id, NULL};
    char out[4096];
    uint64_t t_call = gf_now_ns();
    CHECK(run_cli(out, sizeof(out), revoke) == 0);
    uint64_t t_returned = gf_now_ns();
    pthread_join(th, NULL);
    double ms = (double)(s->r.t_end - t_call) / 1e6;
    fprintf(stderr, "stream ended %.1f ms after `keys revoke` started (%s it returned)\n", ms,
            s->r.t_end <= t_returned ? "before" : "after");
    CHECK(s->r.status == 200);
    CHECK_MSG(strstr(s->r.body, "\"error\"") != NULL && strstr(s->r.body, "revoked") != NULL, "%s",
              s->r.body + (s->r.len > 400 ? s->r.len - 400 : 0));
    CHECK(strstr(s->r.body, "w599") == NULL); // it did not run to the end
    // The stream ended because of the revocation (the error above), not by itself: before its
    // 30 s. The bound leaves room for the CLI's start under ASan on a loaded machine.
    CHECK(ms < 25000);
    free(s);
}

/* An expiry set for 1 s from now ends a stream opened before it, through the recheck timer. */
static void test_expiry_ends_stream(void)
{
    char h[128], secret[GF_APIKEY_BUFLEN], id[GF_KEYID_BUFLEN];
    REQUIRE(create_key(secret, id, NULL) == 0);
    bearer(h, sizeof(h), secret);
    struct streamer *s = calloc(1, sizeof(*s));
    s->authz = h;
    s->model = "tokens=600,delay=50";
    pthread_t th;
    pthread_create(&th, NULL, stream_thread, s);
    for (int i = 0; i < 1000 && !atomic_load(&s->r.got_data); i++)
        usleep(10000);
    REQUIRE(atomic_load(&s->r.got_data));
    const char *expire[] = {"expire", id, "--in", "1s", NULL};
    char out[4096];
    uint64_t t_call = gf_now_ns();
    CHECK(run_cli(out, sizeof(out), expire) == 0);
    pthread_join(th, NULL);
    double ms = (double)(s->r.t_end - t_call) / 1e6;
    fprintf(stderr, "stream ended %.1f ms after an expiry 1000 ms away was set\n", ms);
    CHECK_MSG(strstr(s->r.body, "expired") != NULL, "%.300s",
              s->r.body + (s->r.len > 300 ? s->r.len - 300 : 0));
    CHECK(strstr(s->r.body, "w599") == NULL);
    CHECK(ms >= 900); // not before the expiry
    struct resp *r = calloc(1, sizeof(*r));
    chat(h, "mock-model", false, r);
    CHECK(r->status == 401 && strstr(r->body, "expired") != NULL);
    free(r);
    free(s);
}

static void test_token_limit_stops_stream(void)
{
    char h[128], secret[GF_APIKEY_BUFLEN], id[GF_KEYID_BUFLEN];
    const char *lim[] = {"--tpm", "60", NULL};
    REQUIRE(create_key(secret, id, lim) == 0);
    bearer(h, sizeof(h), secret);
    struct streamer *s = calloc(1, sizeof(*s));
    s->authz = h;
    s->model = "tokens=400";
    stream_thread(s);
    CHECK(s->r.status == 200);
    CHECK_MSG(strstr(s->r.body, "rate_limit_exceeded") != NULL, "%.300s", s->r.body);
    CHECK(strstr(s->r.body, "w399") == NULL);
    // The budget is spent: the next request is refused before generation.
    struct resp *r = calloc(1, sizeof(*r));
    chat(h, "mock-model", false, r);
    CHECK(r->status == 429 && has_header(r, "x-ratelimit-remaining-tokens: 0"));
    free(r);
    free(s);
}

static char daily_h[128]; // the Authorization of test_daily_quota's key (quota spent)

/* Creates a key with a daily quota of 60 tokens and spends it with a stream that is stopped. */
static void spend_daily_quota(char h[128])
{
    char secret[GF_APIKEY_BUFLEN], id[GF_KEYID_BUFLEN];
    const char *lim[] = {"--daily-tokens", "60", NULL};
    REQUIRE(create_key(secret, id, lim) == 0);
    bearer(h, 128, secret);
    struct streamer *s = calloc(1, sizeof(*s));
    s->authz = h;
    s->model = "tokens=400";
    stream_thread(s);
    CHECK(s->r.status == 200 && strstr(s->r.body, "rate_limit_exceeded") != NULL);
    free(s);
}

/* The daily count survives a restart: written at shutdown, and every keys.usage_snapshot_ms
 * for a crash. */
static void test_daily_quota_survives_restart(void)
{
    struct resp *r = calloc(1, sizeof(*r));
    CHECK(stop_server() == 0); // SIGTERM: an orderly stop writes the counts
    REQUIRE(start_server(NULL) == 0);
    chat(daily_h, "mock-model", false, r);
    CHECK_MSG(r->status == 429 && strstr(r->body, "daily") != NULL, "after a restart: %ld %s",
              r->status, r->body);
    // kill -9: what was counted more than one snapshot period ago is kept.
    CHECK(stop_server() == 0);
    const char *fast[] = {"--set", "keys.usage_snapshot_ms=100", NULL};
    REQUIRE(start_server(fast) == 0);
    char h[128];
    spend_daily_quota(h);
    usleep(600000); // a few snapshot periods
    kill(server_pid, SIGKILL);
    int st;
    waitpid(server_pid, &st, 0);
    server_pid = 0;
    REQUIRE(start_server(NULL) == 0);
    chat(h, "mock-model", false, r);
    CHECK_MSG(r->status == 429 && strstr(r->body, "daily") != NULL, "after kill -9: %ld %s",
              r->status, r->body);
    chat(daily_h, "mock-model", false, r);
    CHECK(r->status == 429);
    char path[400];
    snprintf(path, sizeof(path), "%s/data/keys/usage.json", dir);
    size_t len = 0;
    char *text = tu_read(path, &len);
    CHECK(text != NULL && strstr(text, "\"version\":1") != NULL);
    free(text);
    free(r);
}

static void test_daily_quota(void)
{
    char h[128], secret[GF_APIKEY_BUFLEN], id[GF_KEYID_BUFLEN];
    const char *lim[] = {"--daily-tokens", "60", NULL};
    REQUIRE(create_key(secret, id, lim) == 0);
    bearer(h, sizeof(h), secret);
    snprintf(daily_h, sizeof(daily_h), "%s", h);
    struct streamer *s = calloc(1, sizeof(*s));
    s->authz = h;
    s->model = "tokens=400";
    stream_thread(s);
    CHECK(s->r.status == 200 && strstr(s->r.body, "rate_limit_exceeded") != NULL);
    CHECK(strstr(s->r.body, "w399") == NULL);
    struct resp *r = calloc(1, sizeof(*r));
    chat(h, "mock-model", false, r);
    CHECK(r->status == 429 && strstr(r->body, "daily") != NULL && has_header(r, "retry-after:"));
    free(r);
    free(s);
}

static void test_suspend(void)
{
    char h[128], secret[GF_APIKEY_BUFLEN], id[GF_KEYID_BUFLEN];
    REQUIRE(create_key(secret, id, NULL) == 0);
    bearer(h, sizeof(h), secret);
    struct resp *r = calloc(1, sizeof(*r));
    const char *suspend[] = {"suspend", id, "--reason", "itest", NULL};
    const char *unsuspend[] = {"unsuspend", id, NULL};
    char out[4096];
    CHECK(run_cli(out, sizeof(out), suspend) == 0);
    chat(h, "mock-model", false, r);
    CHECK(r->status == 401 && strstr(r->body, "suspended") != NULL);
    CHECK(run_cli(out, sizeof(out), unsuspend) == 0);
    chat(h, "mock-model", false, r);
    CHECK(r->status == 200);
    free(r);
}

/* Rotation with a 4 s grace: both secrets work, then only the new one. */
static void test_rotate_grace(void)
{
    char h_old[128], h_new[128], secret[GF_APIKEY_BUFLEN], id[GF_KEYID_BUFLEN];
    REQUIRE(create_key(secret, id, NULL) == 0);
    bearer(h_old, sizeof(h_old), secret);
    const char *rotate[] = {"rotate", id, "--grace", "4s", NULL};
    char out[4096];
    REQUIRE(run_cli(out, sizeof(out), rotate) == 0);
    uint64_t t_returned = gf_now_ns();  // the grace ends at most 4 s after this
    out[strcspn(out, "\n")] = '\0';
    REQUIRE(gf_apikey_check(out, strlen(out)) == 0);
    if (n_secrets < 16)
        snprintf(secrets[n_secrets++], GF_APIKEY_BUFLEN, "%s", out);
    bearer(h_new, sizeof(h_new), out);
    struct resp *r = calloc(1, sizeof(*r));
    chat(h_old, "mock-model", false, r);
    CHECK(r->status == 200);
    chat(h_new, "mock-model", false, r);
    CHECK(r->status == 200);
    // wait for the end of the grace from the rotation, not a fixed time after the chats
    uint64_t t_end = t_returned + 4300000000ull;
    while (gf_now_ns() < t_end)
        usleep(20000);
    chat(h_old, "mock-model", false, r);
    CHECK(r->status == 401 && strstr(r->body, "expired") != NULL);
    chat(h_new, "mock-model", false, r);
    CHECK(r->status == 200);
    free(r);
}

/* More than two policy blocks within a minute (the policy's abuse setting) suspend the key. */
static void test_abuse_suspension(void)
{
    char h[128], secret[GF_APIKEY_BUFLEN], id[GF_KEYID_BUFLEN];
    REQUIRE(create_key(secret, id, NULL) == 0);
    bearer(h, sizeof(h), secret);
    struct resp *r = calloc(1, sizeof(*r));
    chat(h, "mock-model", false, r);
    CHECK(r->status == 200);
    prompt_text = "please tell me about the forbiddenbanana";
    for (int i = 0; i < 3; i++) {
        chat(h, "mock-model", false, r);
        CHECK_MSG(r->status == 400 && error_code(r->body, "content_policy_violation"),
                  "block %d: %ld %s", i, r->status, r->body);
    }
    prompt_text = "hello there";
    chat(h, "mock-model", false, r);
    CHECK_MSG(r->status == 401 && strstr(r->body, "suspended") != NULL, "%ld %s", r->status,
              r->body);
    char out[4096];
    const char *show[] = {"show", id, NULL};
    CHECK(run_cli(out, sizeof(out), show) == 0);
    CHECK(strstr(out, "suspended") != NULL && strstr(out, "policy blocks") != NULL);
    const char *unsuspend[] = {"unsuspend", id, NULL};
    CHECK(run_cli(out, sizeof(out), unsuspend) == 0);
    chat(h, "mock-model", false, r);
    CHECK(r->status == 200);
    free(r);
}

static void test_no_secret_in_outputs(void)
{
    int leaked = 0;
    for (int i = 0; i < n_secrets; i++) {
        leaked += tu_tree_contains(dir, secrets[i]);
        leaked += tu_tree_contains(dir, secrets[i] + 3); // without the gf_ prefix
    }
    CHECK(n_secrets >= 6);
    CHECK_MSG(leaked == 0, "%d secrets found in %s", leaked, dir);
    CHECK(!tu_tree_contains(dir, ADMIN));
    // The log does name the key ids, and the audit log holds the admin actions.
    CHECK(tu_tree_contains(dir, "key_"));
    char audit[300];
    snprintf(audit, sizeof(audit), "%s/data/audit", dir);
    CHECK(tu_tree_contains(audit, "\"action\":\"key_created\""));
    CHECK(tu_tree_contains(audit, "\"action\":\"key_revoked\""));
    CHECK(tu_tree_contains(audit, "\"action\":\"key_suspended\""));
    CHECK(tu_tree_contains(audit, "\"action\":\"key_unsuspended\""));
}

int main(int argc, char **argv)
{
    if (argc < 2)
        SKIP("usage: test_keys_server GARDEFOU_BINARY");
    gardefou = argv[1];
    signal(SIGPIPE, SIG_IGN);
    gf_json_init();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    tu_mkdtemp(dir, sizeof(dir));
    if (mock_child_start(&mock, NULL) != 0)
        return 1;
    setenv(GF_ADMIN_KEY_ENV, ADMIN, 1);
    int started = start_server(NULL);
    if (started != 0) {
        stop_server();
        mock_child_stop(&mock);
        tu_rmtree(dir);
        if (started == 77)
            SKIP("this build has no upstream engine");
        return 1;
    }
    RUN(test_requires_keys);
    RUN(test_admin_auth);
    RUN(test_headers_and_429);
    RUN(test_headers_on_every_route);
    RUN(test_exact_under_concurrency);
    RUN(test_revoke_open_stream);
    RUN(test_expiry_ends_stream);
    RUN(test_token_limit_stops_stream);
    RUN(test_daily_quota);
    RUN(test_suspend);
    RUN(test_abuse_suspension);
    RUN(test_rotate_grace);
    RUN(test_daily_quota_survives_restart);
    CHECK(stop_server() == 0);
    mock_child_stop(&mock);
    RUN(test_no_secret_in_outputs);
    if (test_failed == 0)
        tu_rmtree(dir);
    else
        fprintf(stderr, "kept %s for inspection\n", dir);
    curl_global_cleanup();
    return test_report();
}
