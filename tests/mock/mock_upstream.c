/* mock_upstream.c — a scripted OpenAI-compatible server for tests and benchmarks.
 *
 * usage: mock_upstream [--port P] [--host H] [--models a,b] [--api-key K] [--nagle]
 *   --port 0 (the default) binds a free port; the chosen port is printed as "port=N" on one
 *   line of stdout, then stdout is flushed, before the first request is accepted.
 *   --models   ids listed by GET /v1/models (default "mock-model")
 *   --api-key  require "Authorization: Bearer K" on /v1/chat/completions and /v1/completions
 *              (401 with llama.cpp's error JSON otherwise); /v1/models and /health stay open
 *   --nagle    every connection behaves like the nagle option below
 *
 * Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health,
 * GET /mock/stats ({"requests","connections","open"}), POST /mock/down and POST /mock/up
 * (while down, /health and /v1/models answer 503). HTTP/1.1 keep-alive; request bodies need
 * Content-Length.
 *
 * The reply is scripted per request by a comma-separated option list, taken from the request
 * header "x-mock" when present, else from the body's "model" (so it works through a gateway that
 * forwards the model), e.g. model "echo", "tokens=50,delay=10", "status=429", "cut=2":
 *   (none)      normal reply "Hello from the mock upstream." (stream: one chunk per word)
 *   echo        the reply text is a JSON object {"method","path","headers":{lowercased},"body"}
 *               with the raw request body, so tests can check pass-through fields and that no
 *               client credential reached the upstream
 *   tokens=N    the reply is N words "w1 w2 ..." (N <= 100000)
 *   delay=MS    wait MS between stream chunks (slow); hdelay=MS waits before the headers
 *   cut=N       truncated: stream: close the connection after N content chunks, without the
 *               final chunk or [DONE]; non-stream: send the headers and half the body, then close
 *   status=C    answer HTTP C with an OpenAI error JSON {"error":{"message","type","param","code"}}
 *   hang        read the request and never answer
 *   badjson     200 with an invalid JSON body (stream: a data event with invalid JSON)
 *   tools       the reply is a tool call (message.tool_calls / delta.tool_calls), finish
 *               "tool_calls"
 *   length      finish_reason "length" instead of "stop"
 *   nousage     never send usage, even when stream_options.include_usage is set
 *   nagle       llama.cpp server's behaviour: TCP_NODELAY off on this connection and the
 *               headers and the body written with separate write() calls
 * Streams use chunked transfer encoding, OpenAI chunk objects, a usage chunk when the request
 * sets stream_options.include_usage, and "data: [DONE]". "n" in the body (<= 8) gives n choices.
 * Invariant: one request is answered at a time per connection, in order. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "common/common.h"

#define MAX_HEAD    (64 * 1024)
#define MAX_BODY    (16 * 1024 * 1024)
#define MAX_HEADERS 64

struct opts {
    bool echo, hang, badjson, tools, length, nousage, nagle;
    long tokens;  // 0 = the default sentence
    long delay_ms, hdelay_ms;
    long cut;     // -1 = no cut
    long status;  // 0 = 200
};

/* One scripted write: wait delay_ms, write data (its own write() call), then maybe close. */
enum step_kind { STEP_WRITE, STEP_CUT, STEP_END };
struct step {
    enum step_kind kind;
    long delay_ms;
    char *data;
    size_t len;
};

struct conn {
    int fd;
    struct event *rev, *wev, *timer;
    struct gf_buf in;   // bytes read, not yet consumed by a request
    struct gf_buf out;  // bytes of the current step not yet written
    struct step *steps;
    size_t n_steps, cap_steps, cur;
    bool busy;          // a response is in progress
    bool close_after;   // the request said Connection: close
    bool hanging;
    struct conn *prev, *next;  // all open connections, freed at exit
};

static struct event_base *base;
static char **model_ids;
static size_t n_model_ids;
static const char *api_key;
static bool all_nagle;
static bool down;
static long n_requests, n_connections, n_open;
static struct conn *conns;

static void conn_free(struct conn *c);
static void run_steps(struct conn *c);
static void try_parse(struct conn *c);

static void die(const char *what)
{
    fprintf(stderr, "mock_upstream: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void oom(void)
{
    fprintf(stderr, "mock_upstream: out of memory\n");
    exit(1);
}

static void add_step(struct conn *c, enum step_kind kind, long delay_ms, const char *data,
                     size_t len)
{
    if (c->n_steps == c->cap_steps) {
        size_t cap = c->cap_steps ? c->cap_steps * 2 : 16;
        struct step *s = gf_realloc(c->steps, cap * sizeof(*s));
        if (s == NULL)
            oom();
        c->steps = s;
        c->cap_steps = cap;
    }
    struct step *s = &c->steps[c->n_steps++];
    s->kind = kind;
    s->delay_ms = delay_ms;
    s->data = NULL;
    s->len = len;
    if (len) {
        s->data = gf_malloc(len);
        if (s->data == NULL)
            oom();
        memcpy(s->data, data, len);
    }
}

static void clear_steps(struct conn *c)
{
    for (size_t i = 0; i < c->n_steps; i++)
        gf_free(c->steps[i].data);
    c->n_steps = 0;
    c->cur = 0;
}

/* ---- option parsing ------------------------------------------------------------------ */

static long opt_num(const char *v, long max)
{
    int64_t n;
    if (gf_parse_i64(v, 0, max, &n) != 0)
        return 0;
    return (long)n;
}

static void parse_opts(const char *s, struct opts *o)
{
    *o = (struct opts){.cut = -1, .nagle = all_nagle};
    if (s == NULL)
        return;
    char tmp[256];
    size_t n = strlen(s);
    if (n >= sizeof(tmp))
        n = sizeof(tmp) - 1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    for (char *t = tmp, *next; t && *t; t = next) {
        next = strchr(t, ',');
        if (next)
            *next++ = '\0';
        char *eq = strchr(t, '=');
        const char *v = "";
        if (eq) {
            *eq = '\0';
            v = eq + 1;
        }
        if (strcmp(t, "echo") == 0)
            o->echo = true;
        else if (strcmp(t, "hang") == 0)
            o->hang = true;
        else if (strcmp(t, "badjson") == 0)
            o->badjson = true;
        else if (strcmp(t, "tools") == 0)
            o->tools = true;
        else if (strcmp(t, "length") == 0)
            o->length = true;
        else if (strcmp(t, "nousage") == 0)
            o->nousage = true;
        else if (strcmp(t, "nagle") == 0)
            o->nagle = true;
        else if (strcmp(t, "tokens") == 0)
            o->tokens = opt_num(v, 100000);
        else if (strcmp(t, "delay") == 0)
            o->delay_ms = opt_num(v, 600000);
        else if (strcmp(t, "hdelay") == 0)
            o->hdelay_ms = opt_num(v, 600000);
        else if (strcmp(t, "cut") == 0)
            o->cut = opt_num(v, 1000000);
        else if (strcmp(t, "status") == 0)
            o->status = opt_num(v, 599);
    }
}

/* ---- request ------------------------------------------------------------------------- */

struct request {
    char method[16];
    char path[256];
    const char *hname[MAX_HEADERS], *hval[MAX_HEADERS];
    size_t n_headers;
    const char *body;
    size_t body_len;
};

static const char *header(const struct request *r, const char *name)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->hname[i], name) == 0)
            return r->hval[i];
    return NULL;
}

/* ---- responses ----------------------------------------------------------------------- */

static void respond_raw(struct conn *c, const struct opts *o, int status, const char *ctype,
                        const char *extra_headers, const char *body, size_t len)
{
    const char *reason = status == 200   ? "OK"
                         : status == 400 ? "Bad Request"
                         : status == 401 ? "Unauthorized"
                         : status == 404 ? "Not Found"
                         : status == 429 ? "Too Many Requests"
                         : status == 503 ? "Service Unavailable"
                                         : "Error";
    struct gf_buf h;
    gf_buf_init(&h, MAX_HEAD);
    if (gf_buf_printf(&h,
                      "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s\r\n",
                      status, reason, ctype, len, extra_headers ? extra_headers : "",
                      c->close_after ? "Connection: close\r\n" : "") != 0)
        oom();
    if (o->nagle) {
        add_step(c, STEP_WRITE, o->hdelay_ms, h.data, h.len);
        add_step(c, STEP_WRITE, 0, body, len);
    } else {
        if (gf_buf_append(&h, body, len) != 0)
            oom();
        add_step(c, STEP_WRITE, o->hdelay_ms, h.data, h.len);
    }
    add_step(c, STEP_END, 0, NULL, 0);
    gf_buf_cleanup(&h);
}

static void respond_json(struct conn *c, const struct opts *o, int status, cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    if (s == NULL)
        oom();
    respond_raw(c, o, status, "application/json", NULL, s, strlen(s));
    gf_free(s);
}

static void respond_error(struct conn *c, const struct opts *o, int status, const char *msg)
{
    const char *type = status == 429   ? "rate_limit_error"
                       : status == 401 ? "authentication_error"
                       : status < 500  ? "invalid_request_error"
                                       : "server_error";
    struct gf_buf b;
    gf_buf_init(&b, 4096);
    gf_buf_puts(&b, "{\"error\":{\"message\":");
    gf_buf_append_json_str(&b, msg, strlen(msg));
    gf_buf_printf(&b, ",\"type\":\"%s\",\"param\":null,\"code\":%d}}", type, status);
    respond_raw(c, o, status, "application/json",
                status == 429 ? "Retry-After: 1\r\n" : NULL, b.data, b.len);
    gf_buf_cleanup(&b);
}

/* The echo text: what the mock received, as one JSON object. */
static char *echo_text(const struct request *r)
{
    cJSON *j = cJSON_CreateObject(), *h = cJSON_CreateObject();
    if (j == NULL || h == NULL)
        oom();
    cJSON_AddStringToObject(j, "method", r->method);
    cJSON_AddStringToObject(j, "path", r->path);
    for (size_t i = 0; i < r->n_headers; i++) {
        char name[128];
        size_t n = strlen(r->hname[i]);
        if (n >= sizeof(name))
            n = sizeof(name) - 1;
        for (size_t k = 0; k < n; k++)
            name[k] = (char)(r->hname[i][k] >= 'A' && r->hname[i][k] <= 'Z'
                                 ? r->hname[i][k] + 32
                                 : r->hname[i][k]);
        name[n] = '\0';
        cJSON_AddStringToObject(h, name, r->hval[i]);
    }
    cJSON_AddItemToObject(j, "headers", h);
    char *body = gf_strndup(r->body ? r->body : "", r->body_len);
    if (body == NULL)
        oom();
    cJSON_AddStringToObject(j, "body", body);
    gf_free(body);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (s == NULL)
        oom();
    return s;
}

/* The pieces of the reply text: one stream chunk each. */
static char **reply_pieces(const struct opts *o, const struct request *r, size_t *n)
{
    static const char *sentence[] = {"Hello ", "from ", "the ", "mock ", "upstream."};
    size_t count = o->echo ? 1 : o->tokens ? (size_t)o->tokens : GF_ARRAY_LEN(sentence);
    char **p = gf_calloc(count, sizeof(*p));
    if (p == NULL)
        oom();
    for (size_t i = 0; i < count; i++) {
        char w[32];
        if (o->echo)
            p[i] = echo_text(r);
        else if (o->tokens) {
            snprintf(w, sizeof(w), "w%zu%s", i + 1, i + 1 < count ? " " : "");
            p[i] = gf_strdup(w);
        } else
            p[i] = gf_strdup(sentence[i]);
        if (p[i] == NULL)
            oom();
    }
    *n = count;
    return p;
}

static void free_pieces(char **p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gf_free(p[i]);
    gf_free(p);
}

static cJSON *tool_call_json(bool streaming)
{
    cJSON *arr = cJSON_CreateArray(), *tc = cJSON_CreateObject(), *fn = cJSON_CreateObject();
    if (streaming)
        cJSON_AddNumberToObject(tc, "index", 0);
    cJSON_AddStringToObject(tc, "id", "call_mock1");
    cJSON_AddStringToObject(tc, "type", "function");
    cJSON_AddStringToObject(fn, "name", "get_weather");
    cJSON_AddStringToObject(fn, "arguments", "{\"city\":\"Paris\"}");
    cJSON_AddItemToObject(tc, "function", fn);
    cJSON_AddItemToArray(arr, tc);
    return arr;
}

static void add_usage(cJSON *j, long prompt, long completion)
{
    cJSON *u = cJSON_AddObjectToObject(j, "usage");
    cJSON_AddNumberToObject(u, "prompt_tokens", (double)prompt);
    cJSON_AddNumberToObject(u, "completion_tokens", (double)completion);
    cJSON_AddNumberToObject(u, "total_tokens", (double)(prompt + completion));
}

static void generate(struct conn *c, const struct opts *o, const struct request *r, bool chat)
{
    cJSON *req = cJSON_ParseWithLength(r->body ? r->body : "", r->body_len);
    if (req == NULL || !cJSON_IsObject(req)) {
        cJSON_Delete(req);
        respond_error(c, o, 400, "mock: request body is not a JSON object");
        return;
    }
    const cJSON *jm = cJSON_GetObjectItemCaseSensitive(req, "model");
    const char *model = cJSON_IsString(jm) ? jm->valuestring : "mock-model";
    bool stream = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "stream"));
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(req, "stream_options");
    bool want_usage =
        !o->nousage &&
        (!stream || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage")));
    const cJSON *jn = cJSON_GetObjectItemCaseSensitive(req, "n");
    int n_choices = cJSON_IsNumber(jn) && jn->valuedouble >= 1 && jn->valuedouble <= 8
                        ? (int)jn->valuedouble
                        : 1;
    const char *object = chat ? (stream ? "chat.completion.chunk" : "chat.completion")
                              : "text_completion";
    const char *finish = o->tools ? "tool_calls" : o->length ? "length" : "stop";
    size_t n_pieces;
    char **pieces = reply_pieces(o, r, &n_pieces);
    long prompt_tokens = (long)(r->body_len / 4) + 1;
    long completion_tokens = o->tools ? 8 : (long)n_pieces;
    char id[48];
    snprintf(id, sizeof(id), "mock-%ld", n_requests);

    if (!stream) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", id);
        cJSON_AddStringToObject(j, "object", object);
        cJSON_AddNumberToObject(j, "created", 1700000000);
        cJSON_AddStringToObject(j, "model", model);
        cJSON *choices = cJSON_AddArrayToObject(j, "choices");
        struct gf_buf text;
        gf_buf_init(&text, 64 * 1024 * 1024);
        for (size_t i = 0; i < n_pieces; i++)
            if (gf_buf_puts(&text, pieces[i]) != 0)
                oom();
        for (int k = 0; k < n_choices; k++) {
            cJSON *ch = cJSON_CreateObject();
            cJSON_AddNumberToObject(ch, "index", k);
            if (chat) {
                cJSON *m = cJSON_AddObjectToObject(ch, "message");
                cJSON_AddStringToObject(m, "role", "assistant");
                if (o->tools) {
                    cJSON_AddNullToObject(m, "content");
                    cJSON_AddItemToObject(m, "tool_calls", tool_call_json(false));
                } else {
                    cJSON_AddStringToObject(m, "content", text.data ? text.data : "");
                }
            } else {
                cJSON_AddStringToObject(ch, "text", text.data ? text.data : "");
            }
            cJSON_AddStringToObject(ch, "finish_reason", finish);
            cJSON_AddItemToArray(choices, ch);
        }
        gf_buf_cleanup(&text);
        if (want_usage)
            add_usage(j, prompt_tokens, completion_tokens * n_choices);
        char *s = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        if (s == NULL)
            oom();
        size_t len = strlen(s);
        if (o->badjson)
            len = len > 10 ? len - 10 : len;  // a cut object: syntactically invalid, well framed
        if (o->cut >= 0) {
            char head[256];
            int hl = snprintf(head, sizeof(head),
                              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              "Content-Length: %zu\r\n\r\n",
                              len);
            add_step(c, STEP_WRITE, o->hdelay_ms, head, (size_t)hl);
            add_step(c, STEP_WRITE, 0, s, len / 2);
            add_step(c, STEP_CUT, 0, NULL, 0);
        } else {
            respond_raw(c, o, 200, "application/json", NULL, s, len);
        }
        gf_free(s);
        goto out;
    }

    // Streaming: chunked transfer encoding, one SSE event per chunk.
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
    add_step(c, STEP_WRITE, o->hdelay_ms, head, sizeof(head) - 1);
    struct gf_buf ev;
    gf_buf_init(&ev, 64 * 1024 * 1024);
    size_t total = o->tools ? 1 : n_pieces;
    for (size_t i = 0; i <= total; i++) {
        bool last = i == total;
        if (!last && o->cut >= 0 && (long)i >= o->cut) {
            add_step(c, STEP_CUT, o->delay_ms, NULL, 0);
            goto out_ev;
        }
        for (int k = 0; k < n_choices; k++) {
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "id", id);
            cJSON_AddStringToObject(j, "object", object);
            cJSON_AddNumberToObject(j, "created", 1700000000);
            cJSON_AddStringToObject(j, "model", model);
            cJSON *choices = cJSON_AddArrayToObject(j, "choices");
            cJSON *ch = cJSON_CreateObject();
            cJSON_AddNumberToObject(ch, "index", k);
            if (chat) {
                cJSON *d = cJSON_AddObjectToObject(ch, "delta");
                if (i == 0)
                    cJSON_AddStringToObject(d, "role", "assistant");
                if (!last && o->tools)
                    cJSON_AddItemToObject(d, "tool_calls", tool_call_json(true));
                else if (!last)
                    cJSON_AddStringToObject(d, "content", pieces[i]);
            } else {
                cJSON_AddStringToObject(ch, "text", last ? "" : pieces[i]);
            }
            if (last)
                cJSON_AddStringToObject(ch, "finish_reason", finish);
            else
                cJSON_AddNullToObject(ch, "finish_reason");
            cJSON_AddItemToArray(choices, ch);
            char *s = cJSON_PrintUnformatted(j);
            cJSON_Delete(j);
            if (s == NULL)
                oom();
            size_t sl = strlen(s);
            if (o->badjson && i == 1 % (total + 1))
                sl = sl > 10 ? sl - 10 : sl;
            gf_buf_reset(&ev);
            gf_buf_printf(&ev, "%zx\r\ndata: %.*s\n\n\r\n", sl + 8, (int)sl, s);
            gf_free(s);
            add_step(c, STEP_WRITE, k == 0 && i > 0 ? o->delay_ms : 0, ev.data, ev.len);
        }
    }
    if (want_usage) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", id);
        cJSON_AddStringToObject(j, "object", object);
        cJSON_AddNumberToObject(j, "created", 1700000000);
        cJSON_AddStringToObject(j, "model", model);
        cJSON_AddArrayToObject(j, "choices");
        add_usage(j, prompt_tokens, completion_tokens * n_choices);
        char *s = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        if (s == NULL)
            oom();
        gf_buf_reset(&ev);
        gf_buf_printf(&ev, "%zx\r\ndata: %s\n\n\r\n", strlen(s) + 8, s);
        gf_free(s);
        add_step(c, STEP_WRITE, 0, ev.data, ev.len);
    }
    static const char done[] = "e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n";
    add_step(c, STEP_WRITE, 0, done, sizeof(done) - 1);
    add_step(c, STEP_END, 0, NULL, 0);
out_ev:
    gf_buf_cleanup(&ev);
out:
    free_pieces(pieces, n_pieces);
    cJSON_Delete(req);
}

static void models_reply(struct conn *c, const struct opts *o)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(j, "data");
    for (size_t i = 0; i < n_model_ids; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", model_ids[i]);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", 1700000000);
        cJSON_AddStringToObject(m, "owned_by", "mock");
        cJSON_AddItemToArray(data, m);
    }
    respond_json(c, o, 200, j);
    cJSON_Delete(j);
}

static void handle(struct conn *c, const struct request *r)
{
    n_requests++;
    const char *conn_hdr = header(r, "connection");
    c->close_after = conn_hdr && strcasecmp(conn_hdr, "close") == 0;
    struct opts o;
    const char *xm = header(r, "x-mock");
    cJSON *body = NULL;
    if (xm == NULL && r->body_len) {
        body = cJSON_ParseWithLength(r->body, r->body_len);
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(body, "model");
        xm = cJSON_IsString(m) ? m->valuestring : NULL;
    }
    parse_opts(xm, &o);
    cJSON_Delete(body);
    if (o.nagle) {
        int off = 0;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &off, sizeof(off));
    }
    bool post = strcmp(r->method, "POST") == 0, get = strcmp(r->method, "GET") == 0;
    bool chat = strcmp(r->path, "/v1/chat/completions") == 0;
    bool compl = strcmp(r->path, "/v1/completions") == 0;
    if (get && (strcmp(r->path, "/health") == 0 || strcmp(r->path, "/v1/models") == 0)) {
        if (down) {
            respond_error(c, &o, 503, "mock: down");
        } else if (r->path[1] == 'h') {
            static const char ok[] = "{\"status\":\"ok\"}";
            respond_raw(c, &o, 200, "application/json", NULL, ok, sizeof(ok) - 1);
        } else {
            models_reply(c, &o);
        }
    } else if (get && strcmp(r->path, "/mock/stats") == 0) {
        char s[160];
        int n = snprintf(s, sizeof(s), "{\"requests\":%ld,\"connections\":%ld,\"open\":%ld}",
                         n_requests, n_connections, n_open);
        respond_raw(c, &o, 200, "application/json", NULL, s, (size_t)n);
    } else if (post && (strcmp(r->path, "/mock/down") == 0 || strcmp(r->path, "/mock/up") == 0)) {
        down = r->path[6] == 'd';
        respond_raw(c, &o, 200, "application/json", NULL, "{}", 2);
    } else if (post && (chat || compl)) {
        const char *auth = header(r, "authorization");
        if (api_key && (auth == NULL || strncmp(auth, "Bearer ", 7) != 0 ||
                        strcmp(auth + 7, api_key) != 0)) {
            respond_error(c, &o, 401, "Invalid API Key");
        } else if (o.hang) {
            c->hanging = true;
        } else if (o.status && o.status != 200) {
            char msg[64];
            snprintf(msg, sizeof(msg), "mock error %ld", o.status);
            respond_error(c, &o, (int)o.status, msg);
        } else {
            generate(c, &o, r, chat);
        }
    } else if (chat || compl || strcmp(r->path, "/health") == 0 ||
               strcmp(r->path, "/v1/models") == 0) {
        respond_error(c, &o, 405, "mock: method not allowed");
    } else {
        respond_error(c, &o, 404, "mock: no such route");
    }
}

/* Splits s at the first "\r\n" (or the end): returns the line and moves *s past it. */
static char *next_line(char **s)
{
    char *line = *s;
    if (line == NULL || *line == '\0')
        return NULL;
    char *eol = strstr(line, "\r\n");
    if (eol) {
        *eol = '\0';
        *s = eol + 2;
    } else {
        *s = line + strlen(line);
    }
    return line;
}

/* Parses the complete request at the start of c->in (have_request said there is one) and
 * starts its response. */
static void try_parse(struct conn *c)
{
    char *end = strstr(c->in.data, "\r\n\r\n");
    if (end == NULL) {  // only when the head is over MAX_HEAD
        conn_free(c);
        return;
    }
    size_t head_len = (size_t)(end - c->in.data) + 4;
    struct request r = {0};
    end[2] = '\0';  // the head becomes a string; the body follows at head_len
    char *cur = c->in.data;
    char *line = next_line(&cur);
    if (line == NULL || sscanf(line, "%15s %255s", r.method, r.path) != 2) {
        conn_free(c);
        return;
    }
    long clen = 0;
    for (char *h = next_line(&cur); h; h = next_line(&cur)) {
        char *colon = strchr(h, ':');
        if (colon == NULL || r.n_headers == MAX_HEADERS)
            continue;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        r.hname[r.n_headers] = h;
        r.hval[r.n_headers++] = v;
        if (strcasecmp(h, "content-length") == 0)
            clen = opt_num(v, MAX_BODY);
    }
    r.body = c->in.data + head_len;
    r.body_len = (size_t)clen;
    c->busy = true;
    handle(c, &r);
    gf_buf_consume(&c->in, head_len + (size_t)clen);
    run_steps(c);
}

/* True when c->in holds a whole request (head and Content-Length body). */
static bool have_request(struct conn *c)
{
    if (c->in.len == 0)
        return false;
    const char *end = strstr(c->in.data, "\r\n\r\n");
    if (end == NULL)
        return c->in.len > MAX_HEAD;  // let try_parse drop it
    size_t head_len = (size_t)(end - c->in.data) + 4;
    long clen = 0;
    for (const char *p = c->in.data; p < end; p++) {
        if ((p == c->in.data || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
            const char *v = p + 15;
            while (*v == ' ')
                v++;
            char num[24];
            size_t k = 0;
            while (k + 1 < sizeof(num) && v[k] >= '0' && v[k] <= '9') {
                num[k] = v[k];
                k++;
            }
            num[k] = '\0';
            clen = opt_num(num, MAX_BODY);
        }
    }
    return c->in.len >= head_len + (size_t)clen;
}

/* ---- the connection's write script ---------------------------------------------------- */

static bool flush_out(struct conn *c)
{
    while (c->out.len) {
        ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
        if (n > 0) {
            gf_buf_consume(&c->out, (size_t)n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(c->wev, NULL);
            return false;
        }
        conn_free(c);
        return false;
    }
    return true;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    c->steps[c->cur].delay_ms = 0;
    run_steps(c);
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (flush_out(c))
        run_steps(c);
}

/* Runs the script from c->cur until it must wait (timer or a full socket) or ends. */
static void run_steps(struct conn *c)
{
    while (c->cur < c->n_steps) {
        struct step *s = &c->steps[c->cur];
        if (s->delay_ms > 0) {
            struct timeval tv = {s->delay_ms / 1000, (s->delay_ms % 1000) * 1000};
            evtimer_add(c->timer, &tv);
            return;
        }
        if (s->kind == STEP_CUT) {
            conn_free(c);
            return;
        }
        if (s->kind == STEP_END) {
            clear_steps(c);
            c->busy = false;
            if (c->close_after) {
                shutdown(c->fd, SHUT_WR);
                conn_free(c);
                return;
            }
            if (!c->hanging && have_request(c))
                try_parse(c);
            return;
        }
        if (gf_buf_append(&c->out, s->data, s->len) != 0)
            oom();
        c->cur++;
        if (!flush_out(c))
            return;
    }
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    char buf[16384];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_free(c);
        return;
    }
    if (n < 0)
        return;
    if (gf_buf_append(&c->in, buf, (size_t)n) != 0) {
        conn_free(c);
        return;
    }
    if (!c->busy && !c->hanging && have_request(c))
        try_parse(c);
}

static void conn_free(struct conn *c)
{
    event_free(c->rev);
    event_free(c->wev);
    event_free(c->timer);
    close(c->fd);
    clear_steps(c);
    gf_free(c->steps);
    gf_buf_cleanup(&c->in);
    gf_buf_cleanup(&c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    gf_free(c);
    n_open--;
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    (void)what;
    (void)arg;
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (!all_nagle) {
        int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    }
    struct conn *c = gf_calloc(1, sizeof(*c));
    if (c == NULL)
        oom();
    c->fd = fd;
    gf_buf_init(&c->in, MAX_HEAD + MAX_BODY);
    gf_buf_init(&c->out, 128 * 1024 * 1024);
    c->rev = event_new(base, fd, EV_READ | EV_PERSIST, read_cb, c);
    c->wev = event_new(base, fd, EV_WRITE, write_cb, c);
    c->timer = evtimer_new(base, timer_cb, c);
    if (c->rev == NULL || c->wev == NULL || c->timer == NULL)
        oom();
    event_add(c->rev, NULL);
    c->next = conns;
    if (conns)
        conns->prev = c;
    conns = c;
    n_connections++;
    n_open++;
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    event_base_loopbreak(base);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: mock_upstream [--port P] [--host H] [--models a,b] [--api-key K] "
               "[--nagle]\n(see the top of tests/mock/mock_upstream.c for the reply options)\n");
}

int main(int argc, char **argv)
{
    gf_json_init();
    const char *host = "127.0.0.1";
    long port = 0;
    const char *models = "mock-model";
    for (int i = 1; i < argc; i++) {
        bool has_val = i + 1 < argc;
        if (strcmp(argv[i], "--port") == 0 && has_val)
            port = opt_num(argv[++i], 65535);
        else if (strcmp(argv[i], "--host") == 0 && has_val)
            host = argv[++i];
        else if (strcmp(argv[i], "--models") == 0 && has_val)
            models = argv[++i];
        else if (strcmp(argv[i], "--api-key") == 0 && has_val)
            api_key = argv[++i];
        else if (strcmp(argv[i], "--nagle") == 0)
            all_nagle = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    // The model list: split a copy of --models on commas.
    char *mcopy = gf_strdup(models);
    if (mcopy == NULL)
        oom();
    model_ids = gf_calloc(strlen(models) + 1, sizeof(*model_ids));
    if (model_ids == NULL)
        oom();
    for (char *t = mcopy, *next; t && *t; t = next) {
        next = strchr(t, ',');
        if (next)
            *next++ = '\0';
        if (*t)
            model_ids[n_model_ids++] = t;
    }

    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("socket");
    int on = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "mock_upstream: --host: not an IPv4 address: %s\n", host);
        return 2;
    }
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        die("bind");
    if (listen(lfd, 512) != 0)
        die("listen");
    socklen_t sl = sizeof(sa);
    if (getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0)
        die("getsockname");
    printf("port=%d\n", ntohs(sa.sin_port));
    fflush(stdout);

    base = event_base_new();
    if (base == NULL)
        oom();
    struct event *lev = event_new(base, lfd, EV_READ | EV_PERSIST, accept_cb, NULL);
    struct event *sterm = evsignal_new(base, SIGTERM, signal_cb, NULL);
    struct event *sint = evsignal_new(base, SIGINT, signal_cb, NULL);
    if (lev == NULL || sterm == NULL || sint == NULL)
        oom();
    event_add(lev, NULL);
    event_add(sterm, NULL);
    event_add(sint, NULL);
    event_base_dispatch(base);
    while (conns)
        conn_free(conns);
    event_free(lev);
    event_free(sterm);
    event_free(sint);
    event_base_free(base);
    close(lfd);
    gf_free(model_ids);
    gf_free(mcopy);
    return 0;
}
