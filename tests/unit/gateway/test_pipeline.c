/* test_pipeline.c — the gateway in-process on 127.0.0.1 (a free port) over a scripted engine:
 * routes, the wire format of replies and streams, error statuses, limits and deadlines, hooks
 * (authenticate, output cut, asynchronous audit, revocation). The server loop runs on the main
 * thread; a client thread speaks raw HTTP over blocking sockets. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "gateway/gateway_int.h"
#include "script_engine.h"
#include "test.h"

#define REQUIRE_MAIN(c)                                                                        \
    do {                                                                                       \
        if (!(c)) {                                                                            \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #c);            \
            return 1;                                                                          \
        }                                                                                      \
    } while (0)

static struct event_base *base;
static struct gf_gateway *gw;
static struct gf_config cfg;
static struct script_engine se;
static int port;
static atomic_bool client_done;
static atomic_int audits, releases;
static atomic_int revoked;

/* ---- client side ----------------------------------------------------------------------- */

struct resp {
    int status;
    char head[8192];
    char *body;  // de-chunked, NUL-terminated; caller frees
    size_t len;
};

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends a chat completion request with body on fd; headers (each ending in \r\n) go after
 * Host. */
static void send_chat(int fd, const char *headers, const char *body)
{
    char raw[2048];
    int n = snprintf(raw, sizeof(raw),
                     "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n%s"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                     headers, strlen(body), body);
    send(fd, raw, (size_t)n, MSG_NOSIGNAL);
}

static void read_all(int fd, struct resp *r)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 4096 > cap)
            buf = realloc(buf, cap *= 2);
        ssize_t k = recv(fd, buf + n, cap - n - 1, 0);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    buf[n] = '\0';
    r->status = 0;
    r->head[0] = '\0';
    r->body = NULL;
    r->len = 0;
    char *end = strstr(buf, "\r\n\r\n");
    if (end == NULL || sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1) {
        free(buf);
        return;
    }
    size_t hl = (size_t)(end - buf);
    if (hl >= sizeof(r->head))
        hl = sizeof(r->head) - 1;
    memcpy(r->head, buf, hl);
    r->head[hl] = '\0';
    char *p = end + 4;
    size_t left = n - (size_t)(p - buf);
    r->body = malloc(left + 1);
    if (strcasestr(r->head, "transfer-encoding: chunked")) {
        size_t out = 0;
        while (left > 0) {
            char *e;
            unsigned long sz = strtoul(p, &e, 16);
            char *nl = strstr(p, "\r\n");
            if (nl == NULL || sz == 0)
                break;
            p = nl + 2;
            left = n - (size_t)(p - buf);
            if (sz > left)
                sz = left;
            memcpy(r->body + out, p, sz);
            out += sz;
            p += sz + 2;
            left = p <= buf + n ? n - (size_t)(p - buf) : 0;
        }
        r->len = out;
    } else {
        memcpy(r->body, p, left);
        r->len = left;
    }
    r->body[r->len] = '\0';
    free(buf);
}

static void request(const char *raw, size_t len, struct resp *r)
{
    int fd = dial();
    if (fd < 0) {
        memset(r, 0, sizeof(*r));
        return;
    }
    send(fd, raw, len, MSG_NOSIGNAL);
    read_all(fd, r);
    close(fd);
}

static void post(const char *path, const char *body, const char *extra_headers, struct resp *r)
{
    char raw[16384];
    int n = snprintf(raw, sizeof(raw),
                     "POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n%s",
                     path, strlen(body), extra_headers ? extra_headers : "", body);
    request(raw, (size_t)n, r);
}

static void get(const char *path, const char *extra_headers, struct resp *r)
{
    char raw[4096];
    int n = snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s\r\n",
                     path, extra_headers ? extra_headers : "");
    request(raw, (size_t)n, r);
}

static const char *header(struct resp *r, const char *name, char *out, size_t outlen)
{
    char *p = strcasestr(r->head, name);
    if (p == NULL)
        return NULL;
    p += strlen(name);
    while (*p == ':' || *p == ' ')
        p++;
    size_t k = 0;
    while (p[k] && p[k] != '\r' && k + 1 < outlen) {
        out[k] = p[k];
        k++;
    }
    out[k] = '\0';
    return out;
}

/* The error object of an OpenAI error reply, or NULL. */
static cJSON *error_of(struct resp *r, cJSON **root)
{
    *root = cJSON_Parse(r->body ? r->body : "");
    return cJSON_GetObjectItem(*root, "error");
}

static void check_error(struct resp *r, int status, const char *param)
{
    cJSON *root;
    cJSON *e = error_of(r, &root);
    CHECK_MSG(r->status == status, "status %d, want %d: %s", r->status, status,
              r->body ? r->body : "");
    CHECK(e != NULL);
    CHECK(cJSON_IsString(cJSON_GetObjectItem(e, "message")));
    CHECK(cJSON_IsString(cJSON_GetObjectItem(e, "type")));
    cJSON *p = cJSON_GetObjectItem(e, "param");
    if (param)
        CHECK(cJSON_IsString(p) && strcmp(p->valuestring, param) == 0);
    else
        CHECK(cJSON_IsNull(p));
    CHECK(cJSON_GetObjectItem(e, "code") != NULL);
    char id[128];
    CHECK(header(r, "x-request-id", id, sizeof(id)) != NULL);
    cJSON_Delete(root);
    free(r->body);
}

/* ---- tests (client thread) ------------------------------------------------------------- */

static void test_health_and_ids(void)
{
    struct resp r;
    char id[128];
    get("/healthz", NULL, &r);
    CHECK(r.status == 200);
    CHECK(header(&r, "x-request-id", id, sizeof(id)) && strlen(id) == 32);
    free(r.body);
    get("/healthz", "X-Request-Id: my-trace.42\r\n", &r);
    CHECK(header(&r, "x-request-id", id, sizeof(id)) && strcmp(id, "my-trace.42") == 0);
    free(r.body);
    get("/healthz", "X-Request-Id: bad id with spaces\r\n", &r);
    CHECK(header(&r, "x-request-id", id, sizeof(id)) && strlen(id) == 32);
    free(r.body);
    get("/readyz", NULL, &r);
    CHECK(r.status == 200);
    free(r.body);
}

static void test_models(void)
{
    struct resp r;
    get("/v1/models", NULL, &r);
    CHECK(r.status == 200);
    cJSON *root = cJSON_Parse(r.body);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(root, "object")), "list");
    cJSON *d0 = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "data"), 0);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(d0, "id")), "script-model");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(d0, "object")), "model");
    cJSON_Delete(root);
    free(r.body);
}

static void test_chat(void)
{
    struct resp r;
    post("/v1/chat/completions",
         "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[]}",
         NULL, &r);
    CHECK_MSG(r.status == 200, "%d %s", r.status, r.body);
    cJSON *root = cJSON_Parse(r.body);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(root, "object")), "chat.completion");
    CHECK(strncmp(cJSON_GetStringValue(cJSON_GetObjectItem(root, "id")), "chatcmpl-", 9) == 0);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(root, "model")), "script-model");
    cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "choices"), 0);
    cJSON *msg = cJSON_GetObjectItem(c0, "message");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(msg, "role")), "assistant");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(msg, "content")), "Hello, world!");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(c0, "finish_reason")), "stop");
    cJSON *u = cJSON_GetObjectItem(root, "usage");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(u, "prompt_tokens")) == 3);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(u, "completion_tokens")) == 4);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(u, "total_tokens")) == 7);
    cJSON_Delete(root);
    free(r.body);

    // n = 2 gives two choices; content parts are joined
    post("/v1/chat/completions",
         "{\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"say:"
         "\"},{\"type\":\"text\",\"text\":\"abcdef\"}]}]}",
         NULL, &r);
    root = cJSON_Parse(r.body);
    cJSON *ch = cJSON_GetObjectItem(root, "choices");
    CHECK(cJSON_GetArraySize(ch) == 2);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(
                    cJSON_GetObjectItem(cJSON_GetArrayItem(ch, 1), "message"), "content")),
                "abcdef");
    cJSON_Delete(root);
    free(r.body);
}

static void test_completions(void)
{
    struct resp r;
    post("/v1/completions", "{\"prompt\":\"say:once upon\",\"max_tokens\":5}", NULL, &r);
    CHECK(r.status == 200);
    cJSON *root = cJSON_Parse(r.body);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(root, "object")), "text_completion");
    cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "choices"), 0);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(c0, "text")), "once upon");
    cJSON_Delete(root);
    free(r.body);
}

/* Splits an SSE body into its data payloads; returns how many. */
static int sse_events(char *body, char **ev, int max, int *pings)
{
    int n = 0;
    *pings = 0;
    for (char *line = body, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        if (strncmp(line, "data: ", 6) == 0 && n < max)
            ev[n++] = line + 6;
        else if (strcmp(line, ": ping") == 0)
            (*pings)++;
    }
    return n;
}

static void test_stream(void)
{
    struct resp r;
    post("/v1/chat/completions",
         "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"say:abcdefghij\"}]}", NULL,
         &r);
    CHECK(r.status == 200);
    char ct[128];
    CHECK(header(&r, "content-type", ct, sizeof(ct)) && strcmp(ct, "text/event-stream") == 0);
    char *ev[64];
    int pings;
    int n = sse_events(r.body, ev, 64, &pings);
    REQUIRE(n >= 3);
    CHECK_STREQ(ev[n - 1], "[DONE]");
    char text[256] = "";
    int finishes = 0;
    for (int i = 0; i < n - 1; i++) {
        cJSON *c = cJSON_Parse(ev[i]);
        CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(c, "object")),
                    "chat.completion.chunk");
        CHECK(cJSON_GetObjectItem(c, "usage") == NULL);
        cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "choices"), 0);
        cJSON *d = cJSON_GetObjectItem(c0, "delta");
        if (i == 0)
            CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(d, "role")), "assistant");
        else
            CHECK(cJSON_GetObjectItem(d, "role") == NULL);
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(d, "content"));
        size_t tl = strlen(text);
        if (t && tl + strlen(t) < sizeof(text))
            memcpy(text + tl, t, strlen(t) + 1);
        if (cJSON_IsString(cJSON_GetObjectItem(c0, "finish_reason"))) {
            finishes++;
            CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(c0, "finish_reason")), "stop");
            CHECK(i == n - 2);
        }
        cJSON_Delete(c);
    }
    CHECK_STREQ(text, "abcdefghij");
    CHECK(finishes == 1);
    free(r.body);

    // include_usage: every chunk has "usage": null, then a usage chunk with no choices
    post("/v1/chat/completions",
         "{\"stream\":true,\"stream_options\":{\"include_usage\":true},"
         "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
         NULL, &r);
    n = sse_events(r.body, ev, 64, &pings);
    REQUIRE(n >= 3);
    CHECK_STREQ(ev[n - 1], "[DONE]");
    cJSON *last = cJSON_Parse(ev[n - 2]);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(last, "choices")) == 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(last, "usage"),
                                                   "total_tokens")) == 7);
    cJSON_Delete(last);
    cJSON *first = cJSON_Parse(ev[0]);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(first, "usage")));
    cJSON_Delete(first);
    free(r.body);

    // a slow first token: pings keep the stream alive
    post("/v1/chat/completions",
         "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"slow\"}]}", NULL, &r);
    n = sse_events(r.body, ev, 64, &pings);
    CHECK(pings >= 1);
    CHECK(n >= 2 && strcmp(ev[n - 1], "[DONE]") == 0);
    free(r.body);

    // legacy completions stream
    post("/v1/completions", "{\"stream\":true,\"prompt\":\"say:xyz\"}", NULL, &r);
    n = sse_events(r.body, ev, 64, &pings);
    REQUIRE(n >= 2);
    cJSON *c = cJSON_Parse(ev[0]);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(c, "object")), "text_completion");
    cJSON_Delete(c);
    free(r.body);
}

static void test_engine_errors(void)
{
    struct resp r;
    post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"error:502\"}]}",
         NULL, &r);
    check_error(&r, 502, NULL);
    post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"error:504\"}]}",
         NULL, &r);
    check_error(&r, 504, NULL);
    // before any delta, a failing stream still gets a real status
    post("/v1/chat/completions",
         "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"error:502\"}]}", NULL,
         &r);
    check_error(&r, 502, NULL);
    post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"refuse\"}]}",
         NULL, &r);
    check_error(&r, 400, NULL);

    // a failure mid-stream: an error event, then [DONE]
    post("/v1/chat/completions",
         "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"midfail\"}]}", NULL, &r);
    CHECK(r.status == 200);
    char *ev[64];
    int pings;
    int n = sse_events(r.body, ev, 64, &pings);
    REQUIRE(n >= 3);
    CHECK_STREQ(ev[n - 1], "[DONE]");
    cJSON *e = cJSON_Parse(ev[n - 2]);
    CHECK(cJSON_GetObjectItem(e, "error") != NULL);
    cJSON_Delete(e);
    free(r.body);

    // a not-ready engine: /readyz says so, generations still go to the engine, which decides
    se.ready = false;
    post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", NULL,
         &r);
    CHECK(r.status == 200);
    free(r.body);
    get("/readyz", NULL, &r);
    check_error(&r, 503, NULL);
    se.ready = true;
}

static void test_bad_requests(void)
{
    struct resp r;
    get("/nope", NULL, &r);
    check_error(&r, 404, NULL);
    get("/v1/chat/completions", NULL, &r);
    check_error(&r, 405, NULL);
    post("/v1/models", "{}", NULL, &r);
    check_error(&r, 405, NULL);
    post("/v1/chat/completions", "{\"messages\":", NULL, &r);
    check_error(&r, 400, NULL);
    post("/v1/chat/completions", "[1,2]", NULL, &r);
    check_error(&r, 400, NULL);
    post("/v1/chat/completions", "", NULL, &r);
    check_error(&r, 400, NULL);
    post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                                 "\"temperature\":\"hot\"}",
         NULL, &r);
    check_error(&r, 400, "temperature");
    post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                                 "\"max_tokens\":0}",
         NULL, &r);
    check_error(&r, 400, "max_tokens");
    post("/v1/chat/completions", "{\"messages\":[{\"role\":\"robot\",\"content\":\"x\"}]}", NULL,
         &r);
    check_error(&r, 400, "messages[0].role");
    post("/v1/completions", "{\"prompt\":5}", NULL, &r);
    check_error(&r, 400, "prompt");

    // wrong content type
    const char *raw = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                      "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}";
    request(raw, strlen(raw), &r);
    check_error(&r, 415, NULL);
    // invalid UTF-8
    raw = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
          "Content-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"prompt\":\"\xff\"}";
    request(raw, strlen(raw), &r);
    check_error(&r, 400, NULL);
    // a body over the limit is refused from its Content-Length, before it is sent
    raw = "POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
          "Content-Type: application/json\r\nContent-Length: 999999999\r\n\r\n";
    request(raw, strlen(raw), &r);
    check_error(&r, 413, NULL);
    // malformed request line or header line: our own 400, with an id
    raw = "\x16\x03\x01\x02 junk\r\n\r\n";
    request(raw, strlen(raw), &r);
    check_error(&r, 400, NULL);
    raw = "GET /healthz HTTP/1.1\r\nHost x\r\n\r\n";
    request(raw, strlen(raw), &r);
    check_error(&r, 400, NULL);
    raw = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    request(raw, strlen(raw), &r);
    CHECK(r.status == 200);
    free(r.body);
    // headers over the limit
    char big[12000];
    int n = snprintf(big, sizeof(big), "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ");
    memset(big + n, 'a', 9000);
    n += 9000;
    n += snprintf(big + n, sizeof(big) - (size_t)n, "\r\n\r\n");
    request(big, (size_t)n, &r);
    check_error(&r, 431, NULL);
}

/* Sends raw one byte at a time, every gap_ms, and returns the reply. */
static void dribble(const char *raw, int gap_ms, struct resp *r)
{
    int fd = dial();
    for (const char *p = raw; *p; p++) {
        if (send(fd, p, 1, MSG_NOSIGNAL) != 1)
            break;
        usleep((useconds_t)gap_ms * 1000);
    }
    read_all(fd, r);
    close(fd);
}

static void test_slow_clients(void)
{
    // header_timeout_ms is 400 in this test: a client that keeps sending still gets 408
    struct resp r;
    dribble("GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: bbbbbbbbbbbbbbbbbbbbbbbbb\r\n\r\n", 30, &r);
    check_error(&r, 408, NULL);
    dribble("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 39\r\n\r\n{\"prompt\":\"aaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
            0, &r);
    CHECK(r.status == 200);  // fast enough
    free(r.body);
    // the body deadline (400 ms) counts from the end of the headers
    int fd = dial();
    const char *h = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: 40\r\n\r\n";
    send(fd, h, strlen(h), MSG_NOSIGNAL);
    for (int i = 0; i < 30; i++) {
        if (send(fd, "{", 1, MSG_NOSIGNAL) != 1)
            break;
        usleep(30000);
    }
    read_all(fd, &r);
    close(fd);
    check_error(&r, 408, NULL);
    // a connection that sends nothing is closed with 408 too
    fd = dial();
    read_all(fd, &r);
    close(fd);
    check_error(&r, 408, NULL);
}

static void test_disconnect_and_keys(void)
{
    // a client that goes away cancels its generation
    int fd = dial();
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"hang\"}]}";
    send_chat(fd, "", body);
    usleep(100000);
    close(fd);

    // a revoked key ends its open stream with an error event and [DONE]
    fd = dial();
    body = "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hang\"}]}";
    send_chat(fd, "Connection: close\r\nAuthorization: Bearer revoke-me\r\n", body);
    struct resp r;
    read_all(fd, &r);  // the test's revocation timer fires after 200 ms
    close(fd);
    CHECK(r.status == 200);
    CHECK(r.body && strstr(r.body, "\"error\"") != NULL);
    CHECK(r.body && strstr(r.body, "data: [DONE]") != NULL);
    free(r.body);
    CHECK(atomic_load(&revoked) == 1);
}

/* While a request is handled the connection is still read: a client that goes away at once
 * (before the close watcher would start) cancels its generation, and a request pipelined behind
 * a slow one waits for it and is answered next, in order. */
static void test_read_while_handling(void)
{
    const char *hang = "{\"messages\":[{\"role\":\"user\",\"content\":\"hang\"}]}";
    int fd = dial();
    send_chat(fd, "", hang);
    usleep(5000);
    close(fd);

    const char *slow = "{\"messages\":[{\"role\":\"user\",\"content\":\"slow\"}]}";
    const char *quick = "{\"messages\":[{\"role\":\"user\",\"content\":\"say:second\"}]}";
    fd = dial();
    send_chat(fd, "", slow);
    usleep(50000);  // the first is being handled when the second arrives
    send_chat(fd, "Connection: close\r\n", quick);
    struct resp r;
    read_all(fd, &r);
    close(fd);
    CHECK(r.status == 200);
    // the first body is followed by the whole second reply
    const char *second = r.body ? strstr(r.body, "HTTP/1.1 200") : NULL;
    CHECK(second != NULL);
    CHECK(r.body && strstr(r.body, "Hello") != NULL && strstr(r.body, "Hello") < second);
    CHECK(second && strstr(second, "second") != NULL);
    free(r.body);
}

/* The names of the header lines of a reply head, in order, each with the value of the
 * framing ones (Content-Type, Content-Length, Connection). */
static void head_shape(const char *head, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (const char *l = strstr(head, "\r\n"); l != NULL && l[2] != '\0' && l[2] != '\r';
         l = strstr(l + 2, "\r\n")) {
        const char *colon = strchr(l + 2, ':');
        const char *end = strstr(l + 2, "\r\n");
        if (end == NULL)
            end = l + 2 + strlen(l + 2); // the last line of a head without its blank line
        if (colon == NULL || colon > end)
            break;
        bool framing = strncasecmp(l + 2, "content-", 8) == 0 ||
                       strncasecmp(l + 2, "connection", 10) == 0;
        size_t len = (size_t)((framing ? end : colon) - (l + 2));
        n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, "%.*s|", (int)len, l + 2);
    }
}

/* A plain 200 on a keep-alive HTTP/1.1 connection is written by conn_reply.c, any other by
 * evhttp: the two heads have the same lines in the same order, Connection: close aside. */
static void test_direct_reply_shape(void)
{
    const char *body = "{\"messages\":[{\"role\":\"user\",\"content\":\"say:abc\"}]}";
    char raw[2048];
    int fd = dial();
    int n = 0;
    for (int i = 0; i < 2; i++)
        n += snprintf(raw + n, sizeof(raw) - (size_t)n,
                      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n%s"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                      i ? "Connection: close\r\n" : "", strlen(body), body);
    send(fd, raw, (size_t)n, MSG_NOSIGNAL);
    struct resp r;
    read_all(fd, &r);
    close(fd);
    CHECK(r.status == 200);
    char *second = r.body ? strstr(r.body, "HTTP/1.1 200 OK\r\n") : NULL;
    CHECK(second != NULL);
    if (second == NULL) {
        free(r.body);
        return;
    }
    char a[1024], b[1024];
    head_shape(r.head, a, sizeof(a));
    head_shape(second, b, sizeof(b));
    CHECK(strstr(a, "x-request-id|") == a && strstr(a, "Content-Length: ") != NULL);
    CHECK(strstr(a, "Connection") == NULL);
    char *close_line = strstr(b, "Connection: close|");
    CHECK(close_line != NULL && close_line[18] == '\0'); // evhttp puts it last
    if (close_line != NULL)
        *close_line = '\0';
    CHECK_STREQ(a, b);
    free(r.body);

    // the same for a stream: the head written by conn_reply.c and its chunks framed there
    const char *sbody =
        "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"say:abcdefgh\"}]}";
    fd = dial();
    send_chat(fd, "", sbody);
    struct timeval stv = {0, 500000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &stv, sizeof(stv)); // keep-alive: no end of file
    read_all(fd, &r);
    close(fd);
    struct resp r2;
    post("/v1/chat/completions", sbody, NULL, &r2);
    CHECK(r.status == 200 && r2.status == 200);
    head_shape(r.head, a, sizeof(a));
    head_shape(r2.head, b, sizeof(b));
    close_line = strstr(b, "Connection: close|");
    CHECK(close_line != NULL && close_line[18] == '\0');
    if (close_line != NULL)
        *close_line = '\0';
    CHECK_STREQ(a, b);
    CHECK(strstr(a, "|Transfer-Encoding|") != NULL);
    // the same events once de-chunked, each ending the stream with [DONE]
    CHECK(r.body && r2.body && strstr(r.body, "\"abcd\"") && strstr(r2.body, "\"abcd\""));
    CHECK(r.body && r.len > 14 && strcmp(r.body + r.len - 14, "data: [DONE]\n\n") == 0);
    CHECK(r2.body && r2.len > 14 && strcmp(r2.body + r2.len - 14, "data: [DONE]\n\n") == 0);
    free(r.body);
    free(r2.body);

    // 100-continue: the interim reply, then the reply, on the same connection
    fd = dial();
    n = snprintf(raw, sizeof(raw),
                 "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                 "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                 strlen(body));
    send(fd, raw, (size_t)n, MSG_NOSIGNAL);
    char interim[64] = {0};
    ssize_t k = recv(fd, interim, sizeof(interim) - 1, 0);
    CHECK(k > 0 && strncmp(interim, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0);
    send(fd, body, strlen(body), MSG_NOSIGNAL);
    struct timeval tv = {0, 500000};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)); // keep-alive: no end of file
    read_all(fd, &r);
    close(fd);
    CHECK(r.status == 200);
    CHECK(r.body && strstr(r.body, "abc") != NULL);
    free(r.body);
}

static void test_hooks(void)
{
    struct resp r;
    post("/v1/chat/completions", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
         "Authorization: Bearer deny\r\n", &r);
    check_error(&r, 401, NULL);
    // the output filter cuts a choice that says "BAD"
    post("/v1/chat/completions",
         "{\"messages\":[{\"role\":\"user\",\"content\":\"say:good BAD more text\"}]}", NULL, &r);
    CHECK(r.status == 200);
    cJSON *root = cJSON_Parse(r.body);
    cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "choices"), 0);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(c0, "finish_reason")), "content_filter");
    const char *content =
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "message"), "content"));
    CHECK(content && strstr(content, "BAD") == NULL);
    cJSON_Delete(root);
    free(r.body);
    post("/v1/chat/completions",
         "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"say:good BAD more\"}]}",
         NULL, &r);
    CHECK(r.body && strstr(r.body, "\"content_filter\"") && !strstr(r.body, "BAD"));
    CHECK(r.body && strstr(r.body, "data: [DONE]"));
    free(r.body);
}

static void test_metrics(void)
{
    struct resp r;
    get("/metrics", NULL, &r);
    CHECK(r.status == 200);
    CHECK(strstr(r.body, "gardefou_requests_total{route=\"chat_completions\",status=\"200\"}"));
    CHECK(strstr(r.body, "gardefou_requests_total{route=\"none\",status=\"408\"}"));
    CHECK(strstr(r.body, "gardefou_request_duration_seconds_bucket{route=\"healthz\",le=\"+Inf\"}"));
    CHECK(strstr(r.body, "gardefou_upstream_errors_total"));
    CHECK(strstr(r.body, "gardefou_open_streams 0"));
    free(r.body);
}

static void *client(void *arg)
{
    (void)arg;
    RUN(test_health_and_ids);
    RUN(test_models);
    RUN(test_chat);
    RUN(test_completions);
    RUN(test_stream);
    RUN(test_engine_errors);
    RUN(test_bad_requests);
    RUN(test_slow_clients);
    RUN(test_hooks);
    RUN(test_disconnect_and_keys);
    RUN(test_read_while_handling);
    RUN(test_direct_reply_shape);
    RUN(test_metrics);
    atomic_store(&client_done, true);
    return NULL;
}

/* ---- server side: hooks and loop ------------------------------------------------------- */

static struct event *revoke_ev;

static void revoke_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    atomic_store(&revoked, (int)gf_gateway_cancel_key(gw, "revoke-me", GF_EPERM, "key revoked"));
}

static int hook_auth(void *ud, struct gf_request *r, struct gf_err *err)
{
    (void)ud;
    const char *a = gf_request_header(r, "Authorization");
    if (a && strcmp(a, "Bearer deny") == 0)
        return gf_err_set(err, GF_EPERM, "invalid API key");
    if (a && strcmp(a, "Bearer revoke-me") == 0) {
        gf_request_set_key(r, "revoke-me");
        struct timeval tv = {0, 200000};
        event_add(revoke_ev, &tv);
    }
    return 0;
}

static int hook_output(void *ud, struct gf_request *r, int index, const char *text, size_t len,
                       bool final, struct gf_buf *out, struct gf_err *err)
{
    (void)ud;
    (void)r;
    (void)index;
    (void)final;
    (void)err;
    if (memmem(text, len, "BAD", 3) != NULL)
        return GF_EPOLICY;
    return gf_buf_append(out, text, len);
}

static void hook_release(void *ud, struct gf_request *r)
{
    (void)ud;
    (void)r;
    atomic_fetch_add(&releases, 1);
}

struct pending_audit {
    struct event *ev;
    struct gf_request *r;
    void (*done)(struct gf_request *, int);
};

static void audit_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pending_audit *p = arg;
    event_free(p->ev);
    void (*done)(struct gf_request *, int) = p->done;
    struct gf_request *r = p->r;
    free(p);
    atomic_fetch_add(&audits, 1);
    done(r, 0);
}

/* Confirms each record 1 ms later, as a writer thread would. */
static void hook_audit(void *ud, struct gf_request *r, void (*done)(struct gf_request *, int))
{
    (void)ud;
    struct pending_audit *p = calloc(1, sizeof(*p));
    p->r = r;
    p->done = done;
    p->ev = event_new(base, -1, 0, audit_fire, p);
    struct timeval tv = {0, 1000};
    event_add(p->ev, &tv);
}

static void poll_done(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (atomic_load(&client_done))
        event_base_loopbreak(base);
}

int main(void)
{
    gf_json_init();
    gf_log_set_level(GF_LOG_WARN);
    REQUIRE_MAIN(gf_config_init(&cfg) == 0);
    struct gf_err err = {0};
    gf_config_set(&cfg, "server.listen", "127.0.0.1:0", false, &err);
    gf_config_set(&cfg, "limits.header_timeout_ms", "400", false, &err);
    gf_config_set(&cfg, "limits.body_timeout_ms", "400", false, &err);
    gf_config_set(&cfg, "limits.max_header_bytes", "8192", false, &err);
    gf_config_set(&cfg, "stream.ping_interval_ms", "100", false, &err);
    REQUIRE_MAIN(err.code == 0);
    base = event_base_new();
    script_engine_init(&se, base);
    REQUIRE_MAIN(gf_gateway_new(base, &cfg, &gw, &err) == 0);
    gf_gateway_set_engine(gw, &se.e);
    struct gf_hooks h = {.name = "test",
                         .authenticate = hook_auth,
                         .output = hook_output,
                         .release = hook_release,
                         .audit = hook_audit};
    REQUIRE_MAIN(gf_gateway_add_hooks(gw, &h) == 0);
    REQUIRE_MAIN(gf_gateway_listen(gw, &err) == 0);
    port = gf_gateway_port(gw);
    revoke_ev = event_new(base, -1, 0, revoke_cb, NULL);
    struct event *poll = event_new(base, -1, EV_PERSIST, poll_done, NULL);
    struct timeval tv = {0, 10000};
    event_add(poll, &tv);
    pthread_t th;
    pthread_create(&th, NULL, client, NULL);
    event_base_dispatch(base);
    pthread_join(th, NULL);
    // every generation ended; the disconnected and the revoked ones were cancelled
    CHECK(se.live == 0);
    CHECK(se.cancelled >= 3);
    CHECK(atomic_load(&audits) > 10);
    CHECK(atomic_load(&releases) > 5);
    CHECK(gf_gateway_inflight(gw) == 0);
    gf_gateway_free(gw);
    event_free(poll);
    event_free(revoke_ev);
    event_base_free(base);
    gf_config_cleanup(&cfg);
    return test_report();
}
