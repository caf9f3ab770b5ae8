/* Tests of the upstream engine (engine/upstream.c) against the mock upstream, started as a
 * child process on a free port, with the engine driven by an event_base in this process:
 * replies streamed and not, pass-through fields, credentials, error mapping, cut streams,
 * timeouts, failover, health checks, cancel, and the delayed-ACK stall against a Nagle upstream
 * (the median is printed; the test fails only on a gross stall). */
#include "engine/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "mock_child.h"
#include "test.h"

static struct event_base *base;
static struct mock_child mock;
static char dead_url[64];
static bool curl_only;  // argv[1] "curl": every transfer through libcurl (upstream.client=curl)

struct run {
    struct gf_engine *e;
    struct gf_gen *g;
    struct gf_buf text[3];
    int deltas, finals, after_cancel;
    bool done, error, cancelled;
    int http_status, err_code;
    char err_msg[256], finish[32], role[32], model[128], extra[2048], choice_finish[3][32];
    struct gf_gen_usage usage;
    int cancel_after;               // cancel from inside the callback after this many deltas
    const struct gf_gen_request *resubmit;  // submitted from inside the first delta
    struct run *sub;
};

static void on_event(void *ud, const struct gf_gen_event *ev)
{
    struct run *r = ud;
    if (r->cancelled) {
        r->after_cancel++;
        return;
    }
    if (ev->type == GF_GEN_EV_DELTA) {
        r->deltas++;
        if (ev->index >= 0 && ev->index < 3)
            gf_buf_append(&r->text[ev->index], ev->text, ev->len);
        if (ev->role)
            snprintf(r->role, sizeof(r->role), "%s", ev->role);
        if (ev->extra_json)
            snprintf(r->extra, sizeof(r->extra), "%s", ev->extra_json);
        if (ev->choice_done && ev->index >= 0 && ev->index < 3)
            snprintf(r->choice_finish[ev->index], 32, "%s", ev->finish_reason);
        if (r->resubmit && r->deltas == 1) {
            struct gf_err err = {0};
            CHECK(gf_engine_submit(r->e, r->resubmit, on_event, r->sub, &r->sub->g, &err) == 0);
        }
        if (r->cancel_after && r->deltas == r->cancel_after) {
            gf_engine_cancel(r->e, r->g);
            r->cancelled = true;
            event_base_loopbreak(base);
        }
        return;
    }
    r->finals++;
    r->usage = ev->usage;
    if (ev->type == GF_GEN_EV_DONE) {
        r->done = true;
        snprintf(r->finish, sizeof(r->finish), "%s", ev->finish_reason ? ev->finish_reason : "");
        snprintf(r->model, sizeof(r->model), "%s", ev->model ? ev->model : "");
    } else {
        r->error = true;
        r->http_status = ev->http_status;
        r->err_code = ev->err_code;
        snprintf(r->err_msg, sizeof(r->err_msg), "%s", ev->err_msg ? ev->err_msg : "");
    }
    event_base_loopbreak(base);
}

static void run_init(struct run *r, struct gf_engine *e)
{
    memset(r, 0, sizeof(*r));
    r->e = e;
    for (int i = 0; i < 3; i++)
        gf_buf_init(&r->text[i], 1 << 20);
}

static void run_cleanup(struct run *r)
{
    for (int i = 0; i < 3; i++)
        gf_buf_cleanup(&r->text[i]);
}

static const char *text0(struct run *r)
{
    return r->text[0].data ? r->text[0].data : "";
}

static void spin(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

/* Runs the loop until r got its final event (or was cancelled), at most ms. */
static void wait_final(struct run *r, int ms)
{
    uint64_t end = gf_now_ns() + (uint64_t)ms * 1000000u;
    while (r->finals == 0 && !r->cancelled && gf_now_ns() < end)
        spin(20);
}

/* Runs the loop until r got at least n deltas (or its final event), at most ms. */
static void wait_deltas(struct run *r, int n, int ms)
{
    uint64_t end = gf_now_ns() + (uint64_t)ms * 1000000u;
    while (r->deltas < n && r->finals == 0 && gf_now_ns() < end)
        spin(5);
}

static bool wait_ready(struct gf_engine *e, bool want, int ms)
{
    uint64_t end = gf_now_ns() + (uint64_t)ms * 1000000u;
    while (gf_engine_ready(e) != want && gf_now_ns() < end)
        spin(10);
    return gf_engine_ready(e) == want;
}

static struct gf_engine *open_engine(const char *const *urls, size_t n, int request_ms,
                                     int health_ms, const char *model)
{
    struct gf_upstream_config cfg = {
        .curl_only = curl_only,
        .urls = urls,
        .n_urls = n,
        .api_key = "up-secret",
        .connect_timeout_ms = 2000,
        .request_timeout_ms = request_ms,
        .health_interval_ms = health_ms,
        .model = model,
    };
    struct gf_engine *e = NULL;
    struct gf_err err = {0};
    int rc = gf_engine_upstream_open(base, &cfg, &e, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    return e;
}

/* A request whose body is parsed from json; *body must be freed with cJSON_Delete. */
static void make_req(struct gf_gen_request *req, cJSON **body, const char *json)
{
    memset(req, 0, sizeof(*req));
    *body = cJSON_Parse(json);
    req->kind = GF_GEN_CHAT;
    gf_gen_params_default(&req->params);
    const cJSON *m = cJSON_GetObjectItem(*body, "model");
    req->model = cJSON_GetStringValue(m);
    req->stream = cJSON_IsTrue(cJSON_GetObjectItem(*body, "stream"));
    req->body = *body;
    req->request_id = "req-123";
}

/* Submits a chat request with body json and waits for its end. */
static void do_chat(struct gf_engine *e, const char *json, struct run *r, int ms)
{
    struct gf_gen_request req;
    cJSON *body;
    make_req(&req, &body, json);
    run_init(r, e);
    struct gf_err err = {0};
    int rc = gf_engine_submit(e, &req, on_event, r, &r->g, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc == 0)
        wait_final(r, ms);
    cJSON_Delete(body);
}

static struct gf_engine *engine;  // on the mock, key up-secret, health every 100 ms

static void test_normal(void)
{
    struct run r;
    do_chat(engine, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", &r,
            5000);
    CHECK(r.done && r.finals == 1);
    CHECK_STREQ(text0(&r), "Hello from the mock upstream.");
    CHECK_STREQ(r.role, "assistant");
    CHECK_STREQ(r.finish, "stop");
    CHECK_STREQ(r.model, "m");
    CHECK(r.usage.completion_tokens == 5 && r.usage.prompt_tokens > 0);
    run_cleanup(&r);
}

static void test_stream(void)
{
    struct run r;
    do_chat(engine,
            "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
            &r, 5000);
    CHECK(r.done);
    CHECK(r.deltas == 6);  // five words, then the finish
    CHECK_STREQ(text0(&r), "Hello from the mock upstream.");
    CHECK_STREQ(r.choice_finish[0], "stop");
    CHECK(r.usage.completion_tokens == 5);  // the upstream's usage (include_usage was asked)
    run_cleanup(&r);
    // Without upstream usage the engine counts the chunks.
    do_chat(engine, "{\"model\":\"tokens=7,nousage\",\"stream\":true,\"messages\":[]}", &r, 5000);
    CHECK(r.done && r.usage.completion_tokens == 7);
    run_cleanup(&r);
    // An upstream that answers a stream request with one JSON reply still works.
    do_chat(engine, "{\"model\":\"nostream\",\"stream\":true,\"messages\":[]}", &r, 5000);
    CHECK(r.done && r.deltas == 1);
    CHECK_STREQ(text0(&r), "Hello from the mock upstream.");
    CHECK_STREQ(r.finish, "stop");
    run_cleanup(&r);
    // Several choices, streamed.
    do_chat(engine, "{\"model\":\"tokens=3\",\"stream\":true,\"n\":2,\"messages\":[]}", &r, 5000);
    CHECK(r.done);
    CHECK_STREQ(text0(&r), "w1 w2 w3");
    CHECK_STREQ(r.text[1].data, "w1 w2 w3");
    CHECK_STREQ(r.choice_finish[1], "stop");
    run_cleanup(&r);
}

static void test_tools(void)
{
    struct run r;
    do_chat(engine, "{\"model\":\"tools\",\"stream\":true,\"messages\":[]}", &r, 5000);
    CHECK(r.done);
    CHECK(strstr(r.extra, "\"tool_calls\":[{\"index\":0,\"id\":\"call_mock1\"") != NULL);
    CHECK_STREQ(r.choice_finish[0], "tool_calls");
    CHECK_STREQ(r.finish, "tool_calls");
    run_cleanup(&r);
    do_chat(engine, "{\"model\":\"tools\",\"messages\":[]}", &r, 5000);
    CHECK(r.done);
    CHECK(strstr(r.extra, "\"get_weather\"") != NULL);
    CHECK_STREQ(r.finish, "tool_calls");
    run_cleanup(&r);
}

static void test_completion(void)
{
    struct gf_gen_request req = {.kind = GF_GEN_COMPLETION, .prompt = "Once", .model = "tokens=2"};
    gf_gen_params_default(&req.params);
    req.params.max_tokens = 5;
    struct run r;
    run_init(&r, engine);
    struct gf_err err = {0};
    REQUIRE(gf_engine_submit(engine, &req, on_event, &r, &r.g, &err) == 0);
    wait_final(&r, 5000);
    CHECK(r.done);
    CHECK_STREQ(text0(&r), "w1 w2");
    CHECK(r.role[0] == '\0');  // completions have no role
    run_cleanup(&r);
}

/* The echo reply: what the mock received. */
static cJSON *echo_of(struct run *r)
{
    cJSON *echo = cJSON_Parse(text0(r));
    CHECK(echo != NULL);
    return echo;
}

static void test_pass_through(void)
{
    static const char body[] =
        "{\"model\":\"echo\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}],"
        "\"tool_choice\":\"auto\",\"response_format\":{\"type\":\"json_object\"},"
        "\"logit_bias\":{\"42\":-100},\"user\":\"u1\",\"stream_options\":{\"x\":1}}";
    struct run r;
    do_chat(engine, body, &r, 5000);
    REQUIRE(r.done);
    cJSON *echo = echo_of(&r);
    cJSON *h = cJSON_GetObjectItem(echo, "headers");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(h, "authorization")),
                "Bearer up-secret");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(h, "x-request-id")), "req-123");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(h, "user-agent")), "gardefou/" GF_VERSION);
    CHECK(cJSON_GetObjectItem(h, "expect") == NULL);
    CHECK(cJSON_GetObjectItem(h, "cookie") == NULL && cJSON_GetObjectItem(h, "x-api-key") == NULL);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(echo, "path")), "/v1/chat/completions");
    cJSON *sent = cJSON_Parse(cJSON_GetStringValue(cJSON_GetObjectItem(echo, "body")));
    cJSON *orig = cJSON_Parse(body);
    REQUIRE(sent != NULL && orig != NULL);
    static const char *same[] = {"tools", "tool_choice", "response_format", "logit_bias", "user",
                                 "messages", "model"};
    for (size_t i = 0; i < GF_ARRAY_LEN(same); i++)
        CHECK_MSG(cJSON_Compare(cJSON_GetObjectItem(sent, same[i]),
                                cJSON_GetObjectItem(orig, same[i]), true),
                  "%s changed", same[i]);
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(sent, "stream")));
    CHECK(cJSON_GetObjectItem(sent, "stream_options") == NULL);  // refused upstream unstreamed
    cJSON_Delete(sent);
    cJSON_Delete(echo);
    run_cleanup(&r);

    // Streaming: stream_options.include_usage is added, other stream_options kept.
    do_chat(engine, "{\"model\":\"echo\",\"stream\":true,\"stream_options\":{\"x\":1}}", &r, 5000);
    REQUIRE(r.done);
    echo = echo_of(&r);
    sent = cJSON_Parse(cJSON_GetStringValue(cJSON_GetObjectItem(echo, "body")));
    cJSON *so = cJSON_GetObjectItem(sent, "stream_options");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(so, "include_usage")));
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(so, "x")) == 1);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(sent, "stream")));
    cJSON_Delete(sent);
    cJSON_Delete(echo);
    cJSON_Delete(orig);
    run_cleanup(&r);
}

static void test_model_override(void)
{
    const char *urls[] = {mock.url};
    struct gf_engine *e = open_engine(urls, 1, 5000, 0, "echo");
    REQUIRE(e != NULL);
    struct run r;
    do_chat(e, "{\"model\":\"client-model\",\"messages\":[]}", &r, 5000);
    REQUIRE(r.done);
    cJSON *echo = echo_of(&r);
    cJSON *sent = cJSON_Parse(cJSON_GetStringValue(cJSON_GetObjectItem(echo, "body")));
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(sent, "model")), "echo");
    cJSON_Delete(sent);
    cJSON_Delete(echo);
    run_cleanup(&r);
    gf_engine_close(e);
}

static void test_errors(void)
{
    static const struct {
        const char *model;
        int status;
        const char *msg;
    } cases[] = {
        {"status=500", 502, "upstream: mock error 500"},
        {"status=429", 429, "upstream: mock error 429"},
        {"status=400", 400, "upstream: mock error 400"},
        {"status=404", 404, "upstream: mock error 404"},
        {"badjson", 502, "upstream sent an invalid JSON reply"},
        {"cut=0", 502, NULL},
    };
    for (size_t i = 0; i < GF_ARRAY_LEN(cases); i++) {
        for (int stream = 0; stream < 2; stream++) {
            char body[128];
            snprintf(body, sizeof(body), "{\"model\":\"%s\",\"stream\":%s}", cases[i].model,
                     stream ? "true" : "false");
            struct run r;
            do_chat(engine, body, &r, 5000);
            CHECK_MSG(r.error && r.finals == 1 && r.http_status == cases[i].status,
                      "%s: status %d", body, r.http_status);
            if (cases[i].msg && !(stream && cases[i].msg[0] == 'u' && cases[i].msg[9] == 's'))
                CHECK_MSG(strstr(r.err_msg, cases[i].status < 500 || cases[i].model[0] == 's'
                                                ? cases[i].msg
                                                : "invalid JSON") != NULL,
                          "%s: %s", body, r.err_msg);
            run_cleanup(&r);
        }
    }
    // The upstream refusing our own key is the gateway's problem, not the client's: 502.
    const char *urls[] = {mock.url};
    struct gf_upstream_config cfg = {.curl_only = curl_only, .urls = urls, .n_urls = 1,
                                     .api_key = "wrong"};
    struct gf_engine *e = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_engine_upstream_open(base, &cfg, &e, &err) == 0);
    struct run r;
    do_chat(e, "{\"model\":\"m\"}", &r, 5000);
    CHECK(r.error && r.http_status == 502);
    CHECK(strstr(r.err_msg, "credentials") != NULL);
    run_cleanup(&r);
    gf_engine_close(e);
}

static void test_truncated_stream(void)
{
    struct run r;
    do_chat(engine, "{\"model\":\"cut=2\",\"stream\":true}", &r, 5000);
    CHECK(r.deltas == 2);
    CHECK_STREQ(text0(&r), "Hello from ");
    CHECK(r.error && r.http_status == 502 && r.err_code == GF_EUPSTREAM);
    run_cleanup(&r);
}

static void test_timeout(void)
{
    const char *urls[] = {mock.url};
    struct gf_engine *e = open_engine(urls, 1, 300, 0, NULL);
    REQUIRE(e != NULL);
    struct run r;
    do_chat(e, "{\"model\":\"hang\"}", &r, 5000);
    CHECK(r.error && r.http_status == 504 && r.err_code == GF_ETIMEDOUT);
    run_cleanup(&r);
    // A stream that stalls: the deadline counts from the last byte.
    do_chat(e, "{\"model\":\"tokens=3,delay=1000\",\"stream\":true}", &r, 5000);
    CHECK(r.error && r.http_status == 504);
    CHECK(r.deltas >= 1);
    run_cleanup(&r);
    // A slow stream whose chunks come in time ends normally.
    do_chat(e, "{\"model\":\"tokens=4,delay=100\",\"stream\":true}", &r, 5000);
    CHECK(r.done && r.deltas == 5);
    run_cleanup(&r);
    gf_engine_close(e);
}

static void test_failover(void)
{
    const char *urls[] = {dead_url, mock.url};
    struct gf_engine *e = open_engine(urls, 2, 5000, 0, NULL);
    REQUIRE(e != NULL);
    for (int i = 0; i < 4; i++) {
        struct run r;
        do_chat(e, "{\"model\":\"m\",\"stream\":true}", &r, 5000);
        CHECK_MSG(r.done, "request %d: %s", i, r.err_msg);
        run_cleanup(&r);
    }
    CHECK(gf_engine_ready(e));
    gf_engine_close(e);
    // Every URL dead: 502 after trying each.
    const char *dead[] = {dead_url, dead_url};
    e = open_engine(dead, 2, 5000, 0, NULL);
    REQUIRE(e != NULL);
    struct run r;
    do_chat(e, "{\"model\":\"m\"}", &r, 5000);
    CHECK(r.error && r.http_status == 502);
    CHECK(strstr(r.err_msg, "connect") != NULL);
    run_cleanup(&r);
    CHECK(!gf_engine_ready(e));
    gf_engine_close(e);
}

static void test_health_and_models(void)
{
    CHECK(wait_ready(engine, true, 3000));
    const char *const *ids = NULL;
    size_t n = gf_engine_models(engine, &ids);
    CHECK(n == 2);
    if (n == 2) {
        CHECK_STREQ(ids[0], "m1");
        CHECK_STREQ(ids[1], "m2");
    }
    CHECK(mock_child_http(&mock, "POST", "/mock/down", NULL, NULL, NULL, 0) == 200);
    CHECK(wait_ready(engine, false, 3000));
    CHECK(mock_child_http(&mock, "POST", "/mock/up", NULL, NULL, NULL, 0) == 200);
    CHECK(wait_ready(engine, true, 3000));
    // Configured models win over the upstream's list.
    const char *urls[] = {mock.url};
    const char *models[] = {"only-this"};
    struct gf_upstream_config cfg = {.curl_only = curl_only, .urls = urls, .n_urls = 1,
                                     .models = models, .n_models = 1};
    struct gf_engine *e = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_engine_upstream_open(base, &cfg, &e, &err) == 0);
    spin(100);
    n = gf_engine_models(e, &ids);
    CHECK(n == 1 && strcmp(ids[0], "only-this") == 0);
    int count = 0;
    bool est = false;
    CHECK(gf_engine_count_tokens(e, "abcdefghi", 9, &count, &est) == 0);
    CHECK(count == 3 && est);
    gf_engine_close(e);
}

static long mock_open_connections(void)
{
    char out[256];
    if (mock_child_http(&mock, "GET", "/mock/stats", NULL, NULL, out, sizeof(out)) != 200)
        return -1;
    const char *p = strstr(out, "\"open\":");
    return p ? strtol(p + 7, NULL, 10) : -1;
}

static long mock_stat(const char *name)
{
    char out[256], key[32];
    if (mock_child_http(&mock, "GET", "/mock/stats", NULL, NULL, out, sizeof(out)) != 200)
        return -1;
    snprintf(key, sizeof(key), "\"%s\":", name);
    const char *p = strstr(out, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

/* Sequential requests share one kept-alive upstream connection; a reply that says
 * Connection: close is not reused; a kept-alive connection that the upstream closes as the
 * next request arrives (its keep-alive timeout) costs a retry on a new connection, not an
 * error. */
static void test_keepalive(void)
{
    const char *urls[] = {mock.url};
    long before = mock_stat("connections");
    struct gf_engine *e = open_engine(urls, 1, 5000, 0, NULL);
    REQUIRE(e != NULL);
    static const char *const bodies[] = {
        "{\"model\":\"m\"}",
        "{\"model\":\"tokens=3\",\"stream\":true}",
        "{\"model\":\"tokens=2000\"}",  // a reply of several reads
        "{\"model\":\"status=429\"}",   // an error reply keeps the connection too
    };
    for (int i = 0; i < 20; i++) {
        struct run r;
        do_chat(e, bodies[i % 4], &r, 5000);
        CHECK_MSG(i % 4 == 3 ? r.error && r.http_status == 429 : r.done, "request %d: %s", i,
                  r.err_msg);
        run_cleanup(&r);
    }
    // Each stats call is a connection of its own: after counts one more than the requests'.
    long after = mock_stat("connections");
    // The first health check (libcurl) has one; libcurl may carry the requests on it too.
    long opened = after - before - 1;
    CHECK_MSG(curl_only ? opened >= 1 && opened <= 2 : opened == 2,
              "the health check and 20 sequential requests opened %ld connections", opened);
    struct run r;
    do_chat(e, "{\"model\":\"close\"}", &r, 5000);
    CHECK(r.done);
    run_cleanup(&r);
    do_chat(e, "{\"model\":\"m\"}", &r, 5000);
    CHECK(r.done);
    run_cleanup(&r);
    opened = mock_stat("connections") - after - 1;
    CHECK_MSG(curl_only ? opened <= 1 : opened == 1, "after Connection: close: %ld", opened);
    // dropnext: the next request on that connection is met by a close.
    for (int i = 0; i < 3; i++) {
        long requests = mock_stat("requests");
        do_chat(e, "{\"model\":\"dropnext\"}", &r, 5000);
        CHECK(r.done);
        run_cleanup(&r);
        do_chat(e, "{\"model\":\"m\",\"stream\":true}", &r, 5000);
        CHECK_MSG(r.done, "after dropnext %d: %s", i, r.err_msg);
        run_cleanup(&r);
        // dropnext, the dropped request, its retry, and this stats call
        CHECK(mock_stat("requests") - requests == 4);
    }
    gf_engine_close(e);
}

/* A host name: libcurl resolves it (in the health check) and the native client then connects
 * to the address libcurl used; no name is resolved on the loop. */
static void test_hostname(void)
{
    char url[96];
    const char *port = strrchr(mock.url, ':');
    REQUIRE(port != NULL);
    snprintf(url, sizeof(url), "http://localhost%s", port);
    const char *urls[] = {url};
    struct gf_engine *e = open_engine(urls, 1, 5000, 0, NULL);
    REQUIRE(e != NULL);
    CHECK(wait_ready(e, true, 3000));
    for (int i = 0; i < 4; i++) {
        struct run r;
        do_chat(e, i % 2 ? "{\"model\":\"m\",\"stream\":true}" : "{\"model\":\"m\"}", &r, 5000);
        CHECK_MSG(r.done, "request %d: %s", i, r.err_msg);
        run_cleanup(&r);
    }
    gf_engine_close(e);
}

static void test_cancel(void)
{
    const char *urls[] = {mock.url};
    struct gf_engine *e = open_engine(urls, 1, 5000, 0, NULL);
    REQUIRE(e != NULL);
    // From inside an event callback (curl's write callback is on the stack).
    struct gf_gen_request req;
    cJSON *body;
    make_req(&req, &body, "{\"model\":\"tokens=100,delay=10\",\"stream\":true}");
    struct run r;
    run_init(&r, e);
    r.cancel_after = 3;
    struct gf_err err = {0};
    REQUIRE(gf_engine_submit(e, &req, on_event, &r, &r.g, &err) == 0);
    wait_final(&r, 5000);
    CHECK(r.cancelled && r.deltas == 3);
    spin(100);
    CHECK(r.after_cancel == 0 && r.finals == 0);
    run_cleanup(&r);
    // From outside any callback, mid-stream.
    run_init(&r, e);
    REQUIRE(gf_engine_submit(e, &req, on_event, &r, &r.g, &err) == 0);
    wait_deltas(&r, 2, 5000);
    CHECK(r.deltas >= 2 && r.finals == 0);
    long during = mock_open_connections();
    gf_engine_cancel(e, r.g);
    r.cancelled = true;
    spin(100);
    // The transfer is gone: its connection was closed rather than left to finish.
    long after = mock_open_connections();
    CHECK_MSG(after == during - 1, "open connections %ld during the stream, %ld after", during,
              after);
    CHECK(r.after_cancel == 0);
    run_cleanup(&r);
    // Right after submit, before the loop ran.
    run_init(&r, e);
    REQUIRE(gf_engine_submit(e, &req, on_event, &r, &r.g, &err) == 0);
    gf_engine_cancel(e, r.g);
    r.cancelled = true;
    spin(50);
    CHECK(r.after_cancel == 0);
    run_cleanup(&r);
    // Close with a generation in flight cancels it.
    run_init(&r, e);
    REQUIRE(gf_engine_submit(e, &req, on_event, &r, &r.g, &err) == 0);
    wait_deltas(&r, 1, 5000);
    gf_engine_close(e);
    CHECK(r.finals == 0);
    run_cleanup(&r);
    cJSON_Delete(body);
}

static void test_submit_from_callback(void)
{
    struct gf_gen_request req2;
    cJSON *body2;
    make_req(&req2, &body2, "{\"model\":\"tokens=2\",\"stream\":true}");
    struct run sub;
    run_init(&sub, engine);
    struct gf_gen_request req;
    cJSON *body;
    make_req(&req, &body, "{\"model\":\"tokens=3,delay=20\",\"stream\":true}");
    struct run r;
    run_init(&r, engine);
    r.resubmit = &req2;
    r.sub = &sub;
    struct gf_err err = {0};
    REQUIRE(gf_engine_submit(engine, &req, on_event, &r, &r.g, &err) == 0);
    wait_final(&r, 5000);
    wait_final(&sub, 5000);
    CHECK(r.done && sub.done);
    CHECK_STREQ(sub.text[0].data, "w1 w2");
    run_cleanup(&r);
    run_cleanup(&sub);
    cJSON_Delete(body);
    cJSON_Delete(body2);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* N sequential requests on one kept-alive connection to an upstream that writes headers and
 * body separately without TCP_NODELAY (llama.cpp server). Without the workaround each costs a
 * delayed ACK (about 40 ms); the test prints the median and fails only past 30 ms. */
static void test_nagle(void)
{
    enum { N = 15 };
    uint64_t t[N];
    for (int i = 0; i < N; i++) {
        uint64_t t0 = gf_now_ns();
        struct run r;
        do_chat(engine, "{\"model\":\"nagle\",\"messages\":[]}", &r, 5000);
        t[i] = gf_now_ns() - t0;
        CHECK(r.done);
        run_cleanup(&r);
    }
    qsort(t, N, sizeof(t[0]), cmp_u64);
    double med = (double)t[N / 2] / 1e6;
    printf("nagle upstream, %d sequential requests on a kept-alive connection: median %.2f ms\n",
           N, med);
    CHECK_MSG(med < 30.0, "median %.2f ms: the delayed-ACK stall is back", med);
}

/* Fails allocation 1, 2, ... in gf_engine_upstream_open and in submit (libcurl's allocations
 * included: they go through gf_malloc) until the call succeeds. A failed call returns GF_ENOMEM
 * and delivers no event; ASan checks that nothing leaks. */
static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    const char *urls[] = {mock.url, dead_url};
    const char *models[] = {"a", "b"};
    struct gf_upstream_config cfg = {.curl_only = curl_only, .urls = urls, .n_urls = 2,
                                     .api_key = "k", .models = models,
                                     .n_models = 2, .model = "m"};
    // A failure that the code absorbs (rc 0) is fine as long as the result still works; the loop
    // ends at the first N that no allocation reaches.
    bool clean = false;
    long n;
    for (n = 1; n < 5000 && !clean; n++) {
        struct gf_engine *e = NULL;
        struct gf_err err = {0};
        gf_alloc_fail_after(n, false);
        int rc = gf_engine_upstream_open(base, &cfg, &e, &err);
        clean = gf_alloc_failures() == 0;
        gf_alloc_fail_after(0, false);
        if (rc == 0) {
            spin(20);
            gf_engine_close(e);
        } else {
            CHECK_MSG(rc == GF_ENOMEM && e == NULL, "open, allocation %ld: %d %s", n, rc, err.msg);
        }
    }
    CHECK(clean);
    printf("open: allocation failures 1..%ld survived\n", n - 2);
    struct gf_gen_request req;
    cJSON *body;
    make_req(&req, &body, "{\"model\":\"tokens=2\",\"stream\":true,\"tools\":[1]}");
    clean = false;
    for (n = 1; n < 5000 && !clean; n++) {
        struct run r;
        run_init(&r, engine);
        struct gf_err err = {0};
        gf_alloc_fail_after(n, false);
        int rc = gf_engine_submit(engine, &req, on_event, &r, &r.g, &err);
        clean = gf_alloc_failures() == 0;
        gf_alloc_fail_after(0, false);
        if (rc == 0) {
            wait_final(&r, 5000);
            CHECK_MSG(r.finals == 1, "submit, allocation %ld: no final event", n);
            if (clean)
                CHECK(r.done);
        } else {
            CHECK_MSG(rc == GF_ENOMEM, "submit, allocation %ld: %d %s", n, rc, err.msg);
            spin(5);
            CHECK(r.deltas == 0 && r.finals == 0);
        }
        run_cleanup(&r);
    }
    CHECK(clean);
    printf("submit: allocation failures 1..%ld survived\n", n - 2);
    cJSON_Delete(body);
}

int main(int argc, char **argv)
{
    gf_json_init();
    curl_only = argc > 1 && strcmp(argv[1], "curl") == 0;
    printf("client: %s\n", curl_only ? "libcurl only" : "native for http://");
    const char *args[] = {"--models", "m1,m2", "--api-key", "up-secret", NULL};
    if (mock_child_start(&mock, args) != 0)
        return 1;
    // A port nothing listens on: bind, read it, close.
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
        return 1;
    snprintf(dead_url, sizeof(dead_url), "http://127.0.0.1:%d/", ntohs(sa.sin_port));
    close(fd);

    base = event_base_new();
    const char *urls[] = {mock.url};
    engine = open_engine(urls, 1, 5000, 100, NULL);
    if (engine == NULL)
        return 1;
    RUN(test_health_and_models);
    RUN(test_normal);
    RUN(test_stream);
    RUN(test_tools);
    RUN(test_completion);
    RUN(test_pass_through);
    RUN(test_model_override);
    RUN(test_errors);
    RUN(test_truncated_stream);
    RUN(test_timeout);
    RUN(test_failover);
    RUN(test_keepalive);
    RUN(test_hostname);
    RUN(test_cancel);
    RUN(test_submit_from_callback);
    RUN(test_nagle);
    RUN(test_oom);
    gf_engine_close(engine);
    event_base_free(base);
    CHECK(mock_child_stop(&mock) == 0);
    return test_report();
}
