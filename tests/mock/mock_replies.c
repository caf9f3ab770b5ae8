/* mock_replies.c — the scripted replies of the mock upstream: the option list taken from the
 * x-mock header or the model name (see mock_upstream.c for the list), and the OpenAI-shaped
 * replies, streamed or not, errors, echo, models and control routes, each turned into a write
 * script on the connection. */
#include "mock_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>

long mock_opt_num(const char *v, long max)
{
    int64_t n;
    if (gf_parse_i64(v, 0, max, &n) != 0)
        return 0;
    return (long)n;
}

static void parse_opts(const char *s, struct opts *o)
{
    *o = (struct opts){.cut = -1, .nagle = mock_state.all_nagle};
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
        else if (strcmp(t, "nostream") == 0)
            o->nostream = true;
        else if (strcmp(t, "nagle") == 0)
            o->nagle = true;
        else if (strcmp(t, "close") == 0)
            o->close = true;
        else if (strcmp(t, "dropnext") == 0)
            o->dropnext = true;
        else if (strcmp(t, "tokens") == 0)
            o->tokens = mock_opt_num(v, 100000);
        else if (strcmp(t, "delay") == 0)
            o->delay_ms = mock_opt_num(v, 600000);
        else if (strcmp(t, "hdelay") == 0)
            o->hdelay_ms = mock_opt_num(v, 600000);
        else if (strcmp(t, "cut") == 0)
            o->cut = mock_opt_num(v, 1000000);
        else if (strcmp(t, "status") == 0)
            o->status = mock_opt_num(v, 599);
    }
}


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
        mock_oom();
    if (o->nagle) {
        mock_add_step(c, STEP_WRITE, o->hdelay_ms, h.data, h.len);
        mock_add_step(c, STEP_WRITE, 0, body, len);
    } else {
        if (gf_buf_append(&h, body, len) != 0)
            mock_oom();
        mock_add_step(c, STEP_WRITE, o->hdelay_ms, h.data, h.len);
    }
    mock_add_step(c, STEP_END, 0, NULL, 0);
    gf_buf_cleanup(&h);
}

static void respond_json(struct conn *c, const struct opts *o, int status, cJSON *j)
{
    char *s = cJSON_PrintUnformatted(j);
    if (s == NULL)
        mock_oom();
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
        mock_oom();
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
        mock_oom();
    cJSON_AddStringToObject(j, "body", body);
    gf_free(body);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (s == NULL)
        mock_oom();
    return s;
}

/* The pieces of the reply text: one stream chunk each. */
static char **reply_pieces(const struct opts *o, const struct request *r, size_t *n)
{
    static const char *sentence[] = {"Hello ", "from ", "the ", "mock ", "upstream."};
    size_t count = o->echo ? 1 : o->tokens ? (size_t)o->tokens : GF_ARRAY_LEN(sentence);
    char **p = gf_calloc(count, sizeof(*p));
    if (p == NULL)
        mock_oom();
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
            mock_oom();
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

/* The OpenAI logprobs of pieces[from..to) as an upstream would send them when the request asks
 * (chat: "logprobs": true and "top_logprobs" N; completions: "logprobs" N): piece i has the
 * log-probability -(i+1)/8 and n_top alternatives, the first being the piece itself. */
static cJSON *logprobs_json(bool chat, char **pieces, size_t from, size_t to, int n_top)
{
    cJSON *lp = cJSON_CreateObject();
    if (chat) {
        cJSON *content = cJSON_AddArrayToObject(lp, "content");
        for (size_t i = from; i < to; i++) {
            cJSON *e = cJSON_CreateObject(), *bytes = cJSON_CreateArray();
            cJSON_AddStringToObject(e, "token", pieces[i]);
            cJSON_AddNumberToObject(e, "logprob", -(double)(i + 1) / 8);
            for (const char *b = pieces[i]; *b; b++)
                cJSON_AddItemToArray(bytes, cJSON_CreateNumber((unsigned char)*b));
            cJSON_AddItemToObject(e, "bytes", bytes);
            cJSON *tops = cJSON_AddArrayToObject(e, "top_logprobs");
            for (int t = 0; t < n_top; t++) {
                cJSON *te = cJSON_CreateObject();
                char alt[48];
                snprintf(alt, sizeof(alt), "alt%d", t);
                cJSON_AddStringToObject(te, "token", t == 0 ? pieces[i] : alt);
                cJSON_AddNumberToObject(te, "logprob", -(double)(i + 1) / 8 - t);
                cJSON_AddNullToObject(te, "bytes");
                cJSON_AddItemToArray(tops, te);
            }
            cJSON_AddItemToArray(content, e);
        }
        cJSON_AddNullToObject(lp, "refusal");
    } else {
        cJSON *toks = cJSON_AddArrayToObject(lp, "tokens");
        cJSON *vals = cJSON_AddArrayToObject(lp, "token_logprobs");
        cJSON *tops = cJSON_AddArrayToObject(lp, "top_logprobs");
        cJSON *offs = cJSON_AddArrayToObject(lp, "text_offset");
        size_t off = 0;
        for (size_t i = from; i < to; i++) {
            cJSON_AddItemToArray(toks, cJSON_CreateString(pieces[i]));
            cJSON_AddItemToArray(vals, cJSON_CreateNumber(-(double)(i + 1) / 8));
            cJSON *t = cJSON_CreateObject();
            for (int k = 0; k < n_top; k++) {
                char alt[48];
                snprintf(alt, sizeof(alt), "alt%d", k);
                cJSON_AddNumberToObject(t, k == 0 ? pieces[i] : alt, -(double)(i + 1) / 8 - k);
            }
            cJSON_AddItemToArray(tops, t);
            cJSON_AddItemToArray(offs, cJSON_CreateNumber((double)off));
            off += strlen(pieces[i]);
        }
    }
    return lp;
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
    bool stream = !o->nostream && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "stream"));
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
    // logprobs as the request asks for them (never with tool calls or echo)
    const cJSON *jlp = cJSON_GetObjectItemCaseSensitive(req, "logprobs");
    const cJSON *jtop = cJSON_GetObjectItemCaseSensitive(req, "top_logprobs");
    bool want_lp = !o->tools && !o->echo && (chat ? cJSON_IsTrue(jlp) : cJSON_IsNumber(jlp));
    int n_top = chat ? (cJSON_IsNumber(jtop) ? (int)jtop->valuedouble : 0)
                     : (cJSON_IsNumber(jlp) ? (int)jlp->valuedouble : 0);
    n_top = n_top < 0 ? 0 : n_top > 20 ? 20 : n_top;
    size_t n_pieces;
    char **pieces = reply_pieces(o, r, &n_pieces);
    long prompt_tokens = (long)(r->body_len / 4) + 1;
    long completion_tokens = o->tools ? 8 : (long)n_pieces;
    char id[48];
    snprintf(id, sizeof(id), "mock-%ld", mock_state.n_requests);

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
                mock_oom();
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
            if (want_lp)
                cJSON_AddItemToObject(ch, "logprobs", logprobs_json(chat, pieces, 0, n_pieces, n_top));
            cJSON_AddStringToObject(ch, "finish_reason", finish);
            cJSON_AddItemToArray(choices, ch);
        }
        gf_buf_cleanup(&text);
        if (want_usage)
            add_usage(j, prompt_tokens, completion_tokens * n_choices);
        char *s = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        if (s == NULL)
            mock_oom();
        size_t len = strlen(s);
        if (o->badjson)
            len = len > 10 ? len - 10 : len;  // a cut object: syntactically invalid, well framed
        if (o->cut >= 0) {
            char head[256];
            int hl = snprintf(head, sizeof(head),
                              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                              "Content-Length: %zu\r\n\r\n",
                              len);
            mock_add_step(c, STEP_WRITE, o->hdelay_ms, head, (size_t)hl);
            mock_add_step(c, STEP_WRITE, 0, s, len / 2);
            mock_add_step(c, STEP_CUT, 0, NULL, 0);
        } else {
            respond_raw(c, o, 200, "application/json", NULL, s, len);
        }
        gf_free(s);
        goto out;
    }

    // Streaming: chunked transfer encoding, one SSE event per chunk.
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
    mock_add_step(c, STEP_WRITE, o->hdelay_ms, head, sizeof(head) - 1);
    struct gf_buf ev;
    gf_buf_init(&ev, 64 * 1024 * 1024);
    size_t total = o->tools ? 1 : n_pieces;
    for (size_t i = 0; i <= total; i++) {
        bool last = i == total;
        if (!last && o->cut >= 0 && (long)i >= o->cut) {
            mock_add_step(c, STEP_CUT, o->delay_ms, NULL, 0);
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
            if (want_lp && !last)
                cJSON_AddItemToObject(ch, "logprobs", logprobs_json(chat, pieces, i, i + 1, n_top));
            if (last)
                cJSON_AddStringToObject(ch, "finish_reason", finish);
            else
                cJSON_AddNullToObject(ch, "finish_reason");
            cJSON_AddItemToArray(choices, ch);
            char *s = cJSON_PrintUnformatted(j);
            cJSON_Delete(j);
            if (s == NULL)
                mock_oom();
            size_t sl = strlen(s);
            if (o->badjson && i == 1 % (total + 1))
                sl = sl > 10 ? sl - 10 : sl;
            gf_buf_reset(&ev);
            gf_buf_printf(&ev, "%zx\r\ndata: %.*s\n\n\r\n", sl + 8, (int)sl, s);
            gf_free(s);
            mock_add_step(c, STEP_WRITE, k == 0 && i > 0 ? o->delay_ms : 0, ev.data, ev.len);
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
            mock_oom();
        gf_buf_reset(&ev);
        gf_buf_printf(&ev, "%zx\r\ndata: %s\n\n\r\n", strlen(s) + 8, s);
        gf_free(s);
        mock_add_step(c, STEP_WRITE, 0, ev.data, ev.len);
    }
    static const char done[] = "e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n";
    mock_add_step(c, STEP_WRITE, 0, done, sizeof(done) - 1);
    mock_add_step(c, STEP_END, 0, NULL, 0);
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
    for (size_t i = 0; i < mock_state.n_model_ids; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "id", mock_state.model_ids[i]);
        cJSON_AddStringToObject(m, "object", "model");
        cJSON_AddNumberToObject(m, "created", 1700000000);
        cJSON_AddStringToObject(m, "owned_by", "mock");
        cJSON_AddItemToArray(data, m);
    }
    respond_json(c, o, 200, j);
    cJSON_Delete(j);
}

void mock_handle(struct conn *c, const struct request *r)
{
    mock_state.n_requests++;
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
    if (c->drop_next) {
        // A server whose keep-alive timeout closed the connection as the request came in.
        mock_add_step(c, STEP_CUT, 0, NULL, 0);
        return;
    }
    c->close_after = c->close_after || o.close;
    c->drop_next = o.dropnext;
    if (o.nagle) {
        int off = 0;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &off, sizeof(off));
    }
    bool post = strcmp(r->method, "POST") == 0, get = strcmp(r->method, "GET") == 0;
    bool chat = strcmp(r->path, "/v1/chat/completions") == 0;
    bool compl = strcmp(r->path, "/v1/completions") == 0;
    if (get && (strcmp(r->path, "/health") == 0 || strcmp(r->path, "/v1/models") == 0)) {
        if (mock_state.down) {
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
                         mock_state.n_requests, mock_state.n_connections, mock_state.n_open);
        respond_raw(c, &o, 200, "application/json", NULL, s, (size_t)n);
    } else if (post && (strcmp(r->path, "/mock/down") == 0 || strcmp(r->path, "/mock/up") == 0)) {
        mock_state.down = r->path[6] == 'd';
        respond_raw(c, &o, 200, "application/json", NULL, "{}", 2);
    } else if (post && (chat || compl)) {
        const char *auth = header(r, "authorization");
        if (mock_state.api_key && (auth == NULL || strncmp(auth, "Bearer ", 7) != 0 ||
                                   strcmp(auth + 7, mock_state.api_key) != 0)) {
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

