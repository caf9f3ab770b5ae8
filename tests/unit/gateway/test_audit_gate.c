/* test_audit_gate.c — the audit log wired into the gateway, in-process on 127.0.0.1 over the
 * scripted engine: every answered request is in the log with its verdicts and usage, the reply
 * waits for the record, and when the log cannot be written (RLIMIT_FSIZE makes every write past
 * a size fail) requests get 503 with Retry-After until it can again; no 2xx without its record,
 * and `audit verify` holds throughout. The loop runs on the main thread; a client thread speaks
 * raw HTTP. */
#include <arpa/inet.h>
#include <dirent.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "audit/audit.h"
#include "gateway/gateway_int.h"
#include "script_engine.h"
#include "test.h"

static struct event_base *base;
static struct gf_gateway *gw;
static struct gf_config cfg;
static struct script_engine se;
static int port;
static atomic_bool client_done;
static char data_dir[64], audit_dir[128];

/* Request ids answered 200, and those answered otherwise. */
static char ok_ids[256][48], other_ids[256][48];
static int n_ok, n_other, n_503_retry;

/* ---- client ------------------------------------------------------------------------------ */

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends a chat request with x-request-id id; returns the status, and whether Retry-After came. */
static int chat(const char *id, const char *content, bool stream, bool *retry_after)
{
    char body[1024], raw[4096];
    snprintf(body, sizeof(body),
             "{\"model\":\"m\",\"stream\":%s,\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
             stream ? "true" : "false", content);
    int n = snprintf(raw, sizeof(raw),
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nx-request-id: %s\r\nContent-Length: %zu\r\n"
                     "\r\n%s",
                     id, strlen(body), body);
    int fd = dial();
    if (fd < 0)
        return -1;
    send(fd, raw, (size_t)n, MSG_NOSIGNAL);
    static char resp[1 << 16];
    size_t got = 0;
    for (;;) {
        ssize_t k = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    resp[got] = '\0';
    int status = 0;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    if (retry_after)
        *retry_after = strcasestr(resp, "\r\nRetry-After:") != NULL;
    // A stream whose record failed after its 200 went out ends with an error event, not [DONE].
    if (status == 200 && stream && strstr(resp, "[DONE]") == NULL)
        return 599;
    return status;
}

static void note(const char *id, int status)
{
    if (status == 200 && n_ok < 256)
        snprintf(ok_ids[n_ok++], sizeof(ok_ids[0]), "%s", id);
    else if (n_other < 256)
        snprintf(other_ids[n_other++], sizeof(other_ids[0]), "%s", id);
}

/* The current segment's size. */
static off_t segment_size(void)
{
    struct dirent **list;
    int n = scandir(audit_dir, &list, NULL, alphasort);
    off_t size = 0;
    for (int i = 0; i < n; i++) {
        if (strncmp(list[i]->d_name, "audit-", 6) == 0 && strstr(list[i]->d_name, ".torn") == NULL) {
            char p[512];
            struct stat st;
            snprintf(p, sizeof(p), "%s/%s", audit_dir, list[i]->d_name);
            if (stat(p, &st) == 0)
                size = st.st_size; // the last one in name order wins
        }
        free(list[i]);
    }
    free(list);
    return size;
}

static void test_requests(void)
{
    for (int i = 0; i < 12; i++) {
        char id[48];
        snprintf(id, sizeof(id), "ok-%d", i);
        int st = chat(id, i == 3 ? "note this" : "hello audit", i % 4 == 1, NULL);
        CHECK_MSG(st == 200, "%s: %d", id, st);
        note(id, st);
    }
    int st = chat("engine-error", "error:500", false, NULL);
    CHECK(st >= 500 && st != 503);
    note("engine-error", st);
}

static void test_fail_closed(void)
{
    struct rlimit old;
    getrlimit(RLIMIT_FSIZE, &old);
    struct rlimit lim = old;
    lim.rlim_cur = (rlim_t)segment_size() + 100; // less than any record, the outage one too
    REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
    int refused = 0;
    for (int i = 0; i < 10; i++) {
        char id[48];
        snprintf(id, sizeof(id), "fail-%d", i);
        bool ra = false;
        int st = chat(id, "hello audit", i % 2 == 1, &ra);
        note(id, st);
        if (i == 0) // its record is the first write that fails
            CHECK_MSG(st == 503 && ra, "first request on the full disk: %d", st);
        if (st == 503) {
            refused++;
            n_503_retry += ra;
        }
    }
    // Every non-streamed request is refused with 503 + Retry-After, the first one too (its
    // record is the one that failed); a stream whose 200 went out ends with an error event.
    CHECK_MSG(refused >= 5 && refused == n_503_retry, "refused %d, with Retry-After %d", refused,
              n_503_retry);
    REQUIRE(setrlimit(RLIMIT_FSIZE, &old) == 0);
    // The writer retries on its own; service resumes once its outage record is written.
    int st = 0;
    for (int i = 0; i < 1000 && st != 200; i++) { // up to 20 s on a loaded machine
        char id[48];
        snprintf(id, sizeof(id), "after-%d", i);
        st = chat(id, "hello audit", false, NULL);
        note(id, st);
        if (st != 200)
            usleep(20000);
    }
    CHECK(st == 200);
}

static void *client(void *arg)
{
    (void)arg;
    RUN(test_requests);
    RUN(test_fail_closed);
    atomic_store(&client_done, true);
    return NULL;
}

/* ---- server side ---------------------------------------------------------------------------- */

/* Plays the policy: a prompt with "note" gets a verdict noted for the audit record. */
static int hook_input(void *ud, struct gf_request *r, struct gf_err *err)
{
    (void)ud;
    (void)err;
    const struct gf_gen_request *g = gf_request_gen(r);
    if (g->n_messages > 0 && g->messages[0].content && strstr(g->messages[0].content, "note")) {
        gf_request_set_policy_version(r, "pv-test");
        gf_request_note_verdict(r, "input", "rule.note", "testcat", "flag", 0.75);
    }
    return 0;
}

static void poll_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (atomic_load(&client_done))
        event_base_loopbreak(base);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static char *whole_log(void)
{
    struct dirent **list;
    int n = scandir(audit_dir, &list, NULL, alphasort);
    size_t cap = 1 << 20, len = 0;
    char *all = malloc(cap);
    all[0] = '\0';
    for (int i = 0; i < n; i++) {
        const char *nm = list[i]->d_name;
        if (strncmp(nm, "audit-", 6) == 0 && strstr(nm, ".torn") == NULL) {
            char p[512];
            snprintf(p, sizeof(p), "%s/%s", audit_dir, nm);
            FILE *f = fopen(p, "rb");
            size_t k;
            while (f && (k = fread(all + len, 1, cap - len - 1, f)) > 0) {
                len += k;
                if (len + 1 >= cap)
                    all = realloc(all, cap *= 2);
            }
            if (f)
                fclose(f);
        }
        free(list[i]);
    }
    free(list);
    all[len] = '\0';
    return all;
}

static int count(const char *all, const char *id)
{
    char pat[96];
    snprintf(pat, sizeof(pat), "\"request_id\":\"%.60s\"", id);
    int n = 0;
    for (const char *p = all; (p = strstr(p, pat)) != NULL; p += strlen(pat))
        n++;
    return n;
}

static void check_log(void)
{
    char key_path[160];
    snprintf(key_path, sizeof(key_path), "%s/audit.key", data_dir);
    uint8_t key[GF_AUDIT_KEY_LEN];
    struct gf_err err = {0};
    REQUIRE(gf_audit_key_load(key_path, false, key, &err) == 0);
    struct gf_audit_verify_result v;
    REQUIRE(gf_audit_verify(audit_dir, key, &v, &err) == 0);
    CHECK_MSG(v.ok, "%s line %llu: %s", v.file, (unsigned long long)v.line, v.reason);
    char *all = whole_log();
    bool each_once = true;
    for (int i = 0; i < n_ok; i++)
        if (count(all, ok_ids[i]) != 1) {
            each_once = false;
            fprintf(stderr, "answered 200 but %d records: %s\n", count(all, ok_ids[i]), ok_ids[i]);
        }
    CHECK(each_once);
    CHECK(n_ok >= 13);
    // The noted verdict and the policy version, the retained text, usage and the client.
    CHECK(strstr(all, "\"rule\":\"rule.note\",\"category\":\"testcat\",\"action\":\"flag\"") != NULL);
    CHECK(strstr(all, "\"policy_version\":\"pv-test\"") != NULL);
    CHECK(strstr(all, "\"text\":\"user: hello audit\\n\"") != NULL);
    CHECK(strstr(all, "\"text\":\"Hello, world!\"") != NULL);
    CHECK(strstr(all, "\"client\":\"127.0.0.1\"") != NULL);
    CHECK(strstr(all, "\"endpoint\":\"/v1/chat/completions\"") != NULL);
    CHECK(strstr(all, "\"request_id\":\"engine-error\"") != NULL);
    CHECK(strstr(all, "\"action\":\"audit_write_failed\"") != NULL);
    free(all);
}

int main(void)
{
    gf_json_init();
    gf_log_set_level(GF_LOG_OFF);
    unsetenv("GARDEFOU_AUDIT_KEY");
    signal(SIGXFSZ, SIG_IGN); // a write past RLIMIT_FSIZE fails with EFBIG instead
    snprintf(data_dir, sizeof(data_dir), "/tmp/gf-audit-gate-XXXXXX");
    if (mkdtemp(data_dir) == NULL)
        return 1;
    snprintf(audit_dir, sizeof(audit_dir), "%s/audit", data_dir);
    if (gf_config_init(&cfg) != 0)
        return 1;
    struct gf_err err = {0};
    gf_config_set(&cfg, "server.listen", "127.0.0.1:0", false, &err);
    gf_config_set(&cfg, "server.data_dir", data_dir, false, &err);
    gf_config_set(&cfg, "audit.retention", "full", false, &err);
    gf_config_set(&cfg, "audit.checkpoint_every", "4", false, &err);
    if (err.code != 0)
        return 1;
    base = event_base_new();
    script_engine_init(&se, base);
    struct gf_audit_gate *gate = NULL;
    if (gf_gateway_new(base, &cfg, &gw, &err) != 0 ||
        gf_audit_gate_start(base, gw, &cfg, &gate, &err) != 0) {
        fprintf(stderr, "start: %s\n", err.msg);
        return 1;
    }
    gf_gateway_set_engine(gw, &se.e);
    struct gf_hooks h = {.name = "policy-like", .input = hook_input};
    if (gf_gateway_add_hooks(gw, &h) != 0 || gf_gateway_listen(gw, &err) != 0)
        return 1;
    port = gf_gateway_port(gw);
    struct event *poll = event_new(base, -1, EV_PERSIST, poll_done, NULL);
    struct timeval tv = {0, 10000};
    event_add(poll, &tv);
    pthread_t th;
    pthread_create(&th, NULL, client, NULL);
    event_base_dispatch(base);
    pthread_join(th, NULL);
    CHECK(gf_gateway_inflight(gw) == 0);
    gf_gateway_free(gw);
    gf_audit_gate_stop(gate);
    event_free(poll);
    event_base_free(base);
    RUN(check_log);
    gf_config_cleanup(&cfg);
    nftw(data_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return test_report();
}
