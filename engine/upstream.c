/* upstream.c — the upstream engine: forwards generations to OpenAI-compatible servers (llama.cpp
 * server, vLLM, Ollama) with libcurl's multi-socket API driven by the caller's libevent loop
 * (upstream_loop.c); no thread, no blocking call. This file owns generations: the request sent,
 * the reply parsed as bytes arrive (each streamed chunk becomes a DELTA at once), the final
 * event, failover, timeouts and cancel. Invariant: no event is delivered for a cancelled
 * generation, and exactly one final event (DONE or ERROR) for every other one. */
#include "engine/engine.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "engine/upstream_engine_int.h"


#define DEFAULT_CONNECT_MS  5000
#define DEFAULT_REQUEST_MS  600000
#define DEFAULT_MAX_REPLY   (16u * 1024 * 1024)
#define MAX_ERROR_BODY      (64 * 1024)

static int curl_users;

static void gen_free(struct gf_gen *g);

static void arm_timer(struct gf_gen *g)
{
    int ms = g->u->request_ms;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(g->timer, &tv);
}

static void deliver(struct gf_gen *g, const struct gf_gen_event *ev)
{
    if (!g->cancelled && g->cb != NULL)
        g->cb(g->ud, ev);
}

/* The reply parser's DELTA sink. */
static void on_delta(void *ud, const struct gf_gen_event *ev)
{
    struct gf_gen *g = ud;
    g->sent_any = true;
    deliver(g, ev);
}

static void fail_in_write(struct gf_gen *g, int code, int status, const char *msg)
{
    if (g->fail_code == 0) {
        g->fail_code = code;
        g->fail_status = status;
        gf_strlcpy(g->fail_msg, msg, sizeof(g->fail_msg));
    }
}

static int on_sse_event(void *ud, const char *type, const char *data, size_t len)
{
    struct gf_gen *g = ud;
    struct gf_err err = {0};
    if (strcmp(type, "error") == 0) {
        char msg[200];
        gf_up_error_message(data, len, 200, msg, sizeof(msg));
        snprintf(err.msg, sizeof(err.msg), "upstream error: %s", msg);
        fail_in_write(g, GF_EUPSTREAM, 502, err.msg);
        return GF_EUPSTREAM;
    }
    int rc = gf_up_reply_chunk(&g->reply, data, len, &err);
    if (rc != 0) {
        fail_in_write(g, rc, 502, err.msg);
        return rc;
    }
    return g->cancelled ? GF_ECANCELED : 0;
}

void gf_up_gen_head(struct gf_gen *g, long status, const char *ctype)
{
    if (g->headers_seen)
        return;
    g->headers_seen = true;
    g->status = status;
    g->is_sse = status == 200 && ctype != NULL && strncmp(ctype, "text/event-stream", 17) == 0;
}

bool gf_up_gen_body(struct gf_gen *g, const char *p, size_t len)
{
    if (g->cancelled || g->fail_code)
        return false;
    g->got_bytes = true;
    if (g->stream)
        arm_timer(g);  // streams: the deadline counts from the last byte
    if (g->status != 200) {
        // Keep the start of an error body for its message; the rest does not matter.
        size_t room = g->raw.len < MAX_ERROR_BODY ? MAX_ERROR_BODY - g->raw.len : 0;
        gf_buf_append(&g->raw, p, len < room ? len : room);
        return true;
    }
    if (g->is_sse) {
        int rc = gf_sse_feed(&g->sse, p, len, on_sse_event, g);
        if (rc == GF_ETOOBIG)
            fail_in_write(g, GF_EUPSTREAM, 502, "upstream sent a stream event over the size cap");
        else if (rc == GF_ENOMEM)
            fail_in_write(g, GF_ENOMEM, 503, "out of memory reading the upstream stream");
        return rc == 0;
    }
    int rc = gf_buf_append(&g->raw, p, len);
    if (rc != 0) {
        fail_in_write(g, GF_EUPSTREAM, 502,
                      rc == GF_ETOOBIG ? "upstream reply over the size cap"
                                       : "out of memory reading the upstream reply");
        return false;
    }
    return true;
}

static size_t gen_write_cb(char *p, size_t size, size_t n, void *ud)
{
    struct gf_gen *g = ud;
    if (!g->headers_seen) {
        long status = 0;
        char *ctype = NULL;
        curl_easy_getinfo(g->easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_getinfo(g->easy, CURLINFO_CONTENT_TYPE, &ctype);
        gf_up_gen_head(g, status, ctype);
    }
    return gf_up_gen_body(g, p, size * n) ? size * n : 0;
}

static void final_error(struct gf_gen *g, int code, int status, const char *msg)
{
    struct gf_gen_event ev = {
        .type = GF_GEN_EV_ERROR,
        .err_code = code,
        .err_msg = msg,
        .http_status = status,
        .usage = {.prompt_tokens = g->prompt_est, .completion_tokens = g->reply.deltas},
    };
    deliver(g, &ev);
}

static void final_done(struct gf_gen *g)
{
    struct gf_up_reply *r = &g->reply;
    struct gf_gen_usage usage = r->usage;
    if (!r->has_usage) {
        usage.prompt_tokens = g->prompt_est;
        usage.completion_tokens = g->is_sse ? r->deltas : (int)((r->text_bytes + 3) / 4);
    }
    struct gf_gen_event ev = {
        .type = GF_GEN_EV_DONE,
        .finish_reason = r->finish[0][0] ? gf_up_finish_static(r->finish[0]) : "stop",
        .usage = usage,
        .model = r->model[0] ? r->model : NULL,
    };
    deliver(g, &ev);
}

/* The final event for an upstream HTTP error status; 4xx the client caused go back as they are,
 * the upstream's refusal of our own key or its failures become 502. */
static void final_http_error(struct gf_gen *g)
{
    char msg[200], full[256];
    gf_up_error_message(g->raw.data, g->raw.len, (int)g->status, msg, sizeof(msg));
    int status = (int)g->status, code = GF_EUPSTREAM;
    if (status == 401 || status == 403) {
        snprintf(full, sizeof(full), "upstream refused gardefou's credentials (HTTP %d)",
                 status);
        final_error(g, GF_EUPSTREAM, 502, full);
        return;
    }
    if (status == 429)
        code = GF_ELIMIT;
    else if (status == 404)
        code = GF_ENOTFOUND;
    else if (status == 408 || status == 504)
        code = GF_ETIMEDOUT, status = 504;
    else if (status == 503)
        code = GF_EAGAIN;
    else if (status >= 400 && status < 500)
        code = GF_EINVAL, status = status == 422 ? 400 : status;
    else
        status = 502;
    snprintf(full, sizeof(full), "upstream: %s", msg);
    final_error(g, code, status, full);
}

static bool is_connect_error(CURLcode rc)
{
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
           rc == CURLE_OPERATION_TIMEDOUT;
}

void gf_up_gen_finish(struct gf_gen *g, CURLcode rc)
{
    struct gf_up *u = g->u;
    gf_up_gen_stop(g);
    struct gf_up_target *t = &u->targets[g->target];
    if (is_connect_error(rc) && !g->got_bytes && !g->sent_any) {
        gf_up_set_health(t, false, curl_easy_strerror(rc));
        if (++g->attempts < u->n_targets) {
            g->target = gf_up_pick_target(u, g->target);
            g->head_acked = false;
            if (gf_up_gen_launch(g) == 0)
                return;
        }
        g->busy = true;
        if (rc == CURLE_OPERATION_TIMEDOUT)
            final_error(g, GF_ETIMEDOUT, 504, "timed out connecting to the upstream");
        else
            final_error(g, GF_EUPSTREAM, 502, "cannot connect to the upstream");
        goto out;
    }
    g->busy = true;
    if (g->fail_code) {
        final_error(g, g->fail_code, g->fail_status, g->fail_msg);
        goto out;
    }
    if (rc != CURLE_OK) {
        char msg[200];
        snprintf(msg, sizeof(msg), "upstream connection failed%s: %s",
                 g->got_bytes ? " mid-reply" : "", curl_easy_strerror(rc));
        final_error(g, GF_EUPSTREAM, 502, msg);
        goto out;
    }
    gf_up_set_health(t, true, "a request succeeded");
    if (t->native && !t->have_addr && !g->native && g->easy != NULL)
        gf_up_native_learn(t, g->easy);  // libcurl served this attempt: its address is t's
    if (g->status != 200) {
        final_http_error(g);
        goto out;
    }
    struct gf_err err = {0};
    if (g->is_sse) {
        // A last event without its blank line still counts.
        if (gf_sse_feed(&g->sse, "\n\n", 2, on_sse_event, g) != 0 && g->fail_code) {
            final_error(g, g->fail_code, g->fail_status, g->fail_msg);
            goto out;
        }
        bool all_done = g->reply.n_choices > 0;
        for (int i = 0; i < g->reply.n_choices; i++)
            all_done = all_done && g->reply.finished[i];
        if (g->reply.saw_done || all_done)
            final_done(g);
        else
            final_error(g, GF_EUPSTREAM, 502, "upstream ended the stream before its end");
        goto out;
    }
    if (gf_up_reply_full(&g->reply, g->raw.data ? g->raw.data : "", g->raw.len, &err) != 0)
        final_error(g, err.code == GF_ENOMEM ? GF_ENOMEM : GF_EUPSTREAM, 502, err.msg);
    else
        final_done(g);
out:
    gf_up_gen_destroy(g);
}

static void gen_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gf_gen *g = arg;
    gf_up_gen_stop(g);
    g->busy = true;
    final_error(g, GF_ETIMEDOUT, 504,
                g->stream && g->got_bytes ? "upstream stream stalled past the request timeout"
                                          : "upstream timed out");
    gf_up_gen_destroy(g);
}

void gf_up_gen_destroy(struct gf_gen *g)
{
    struct gf_up *u = g->u;
    gf_up_gen_stop(g);
    if (g->prev)
        g->prev->next = g->next;
    else if (u->gens == g)
        u->gens = g->next;
    if (g->next)
        g->next->prev = g->prev;
    if (g->easy && u->n_spare < GF_UP_SPARE_EASY) {
        // Out of the multi handle now: drop what points into g, keep the rest for reuse.
        curl_easy_setopt(g->easy, CURLOPT_PRIVATE, NULL);
        curl_easy_setopt(g->easy, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(g->easy, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(g->easy, CURLOPT_WRITEDATA, NULL);
        u->spare[u->n_spare++] = g->easy;
    } else if (g->easy) {
        curl_easy_cleanup(g->easy);
    }
    g->easy = NULL;
    gf_free(g->body);
    g->body = NULL;
    gf_sse_cleanup(&g->sse);
    if (u->n_spare_gens < GF_UP_SPARE_GENS && g->timer != NULL) {
        evtimer_del(g->timer);
        if (g->raw.cap > GF_UP_SPARE_RAW)
            gf_buf_cleanup(&g->raw);
        u->spare_gens[u->n_spare_gens++] = g;
        return;
    }
    gen_free(g);
}

/* Frees a generation that is in no list. */
static void gen_free(struct gf_gen *g)
{
    if (g->timer)
        event_free(g->timer);
    gf_buf_cleanup(&g->raw);
    gf_free(g);
}

/* A zeroed generation with a timer event and a reply buffer, kept or new; NULL without memory. */
static struct gf_gen *gen_new(struct gf_up *u)
{
    if (u->n_spare_gens > 0) {
        struct gf_gen *g = u->spare_gens[--u->n_spare_gens];
        struct event *timer = g->timer;
        struct gf_buf raw = g->raw;
        memset(g, 0, sizeof(*g));
        g->timer = timer;
        g->raw = raw;
        gf_buf_reset(&g->raw);
        return g;
    }
    struct gf_gen *g = gf_calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->timer = evtimer_new(u->base, gen_timeout_cb, g);
    if (g->timer == NULL) {
        gf_free(g);
        return NULL;
    }
    gf_buf_init(&g->raw, u->max_reply);
    return g;
}

static int prompt_estimate(const struct gf_gen_request *req, size_t body_len)
{
    size_t bytes = 0;
    if (req->kind == GF_GEN_CHAT)
        for (size_t i = 0; i < req->n_messages; i++)
            bytes += req->messages[i].content ? strlen(req->messages[i].content) + 16 : 16;
    else if (req->prompt)
        bytes = strlen(req->prompt);
    if (bytes == 0)
        bytes = body_len;
    return (int)((bytes + 3) / 4);
}

static struct curl_slist *add_header(struct curl_slist *l, const char *h, bool *ok)
{
    if (!*ok)
        return l;
    struct curl_slist *n = curl_slist_append(l, h);
    if (n == NULL) {
        *ok = false;
        return l;
    }
    return n;
}

/* A libcurl transfer for g: an easy handle (kept or new) pointed at g's target. */
static int curl_launch(struct gf_gen *g)
{
    struct gf_up *u = g->u;
    if (g->easy == NULL) {
        bool reused = u->n_spare > 0;
        g->easy = reused ? u->spare[--u->n_spare] : curl_easy_init();
        if (g->easy == NULL)
            return GF_ENOMEM;
        if (!reused && gf_up_common_easy_opts(u, g->easy) != 0)
            return GF_ENOMEM;
        curl_easy_setopt(g->easy, CURLOPT_PRIVATE, (char *)&g->x);
        curl_easy_setopt(g->easy, CURLOPT_POST, 1L);
        curl_easy_setopt(g->easy, CURLOPT_POSTFIELDS, g->body);
        curl_easy_setopt(g->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)g->body_len);
        curl_easy_setopt(g->easy, CURLOPT_HTTPHEADER, g->headers);
        curl_easy_setopt(g->easy, CURLOPT_WRITEFUNCTION, gen_write_cb);
        curl_easy_setopt(g->easy, CURLOPT_WRITEDATA, g);
    }
    if (gf_up_set_gen_url(g->easy, &g->u->targets[g->target], g->kind) != 0)
        return GF_ENOMEM;
    return gf_up_gen_start(g);
}

int gf_up_gen_launch(struct gf_gen *g)
{
    g->native = gf_up_native_usable(g);
    return g->native ? gf_up_native_start(g) : curl_launch(g);
}

static int up_submit(struct gf_engine *e, const struct gf_gen_request *req, gf_gen_event_fn cb,
                     void *ud, struct gf_gen **out, struct gf_err *err)
{
    struct gf_up *u = e->impl;
    *out = NULL;
    if (req->kind == GF_GEN_COMPLETION && req->prompt == NULL && req->body == NULL)
        return gf_err_set(err, GF_EINVAL, "prompt: missing");
    struct gf_gen *g = gen_new(u);
    if (g == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    g->x.kind = GF_UP_XFER_GEN;
    g->u = u;
    g->sock = CURL_SOCKET_BAD;
    g->cb = cb;
    g->ud = ud;
    g->kind = req->kind;
    g->stream = req->stream;
    gf_sse_init(&g->sse, u->max_reply);
    gf_up_reply_init(&g->reply, req->kind, on_delta, g);
    g->reply.stop = &g->cancelled;
    int rc = gf_up_build_body(req, u->model_override, &g->body, &g->body_len, err);
    if (rc != 0)
        goto fail;
    g->prompt_est = prompt_estimate(req, g->body_len);
    struct curl_slist *headers = u->fixed_headers[req->stream];
    size_t rid_len = req->request_id ? strlen(req->request_id) : 0;
    if (rid_len > 0 && rid_len < 64 && !strpbrk(req->request_id, "\r\n")) {
        memcpy(g->rid, "x-request-id: ", 14);
        memcpy(g->rid + 14, req->request_id, rid_len + 1);
        g->rid_header.data = g->rid;
        g->rid_header.next = headers;
        headers = &g->rid_header;
    }
    g->ua_header.data = (char *)GF_UP_USER_AGENT; // curl does not write to the list
    g->ua_header.next = headers;
    g->headers = &g->ua_header;
    g->target = gf_up_pick_target(u, SIZE_MAX);
    g->next = u->gens;
    if (u->gens)
        u->gens->prev = g;
    u->gens = g;
    if ((rc = gf_up_gen_launch(g)) != 0) {
        rc = gf_err_set(err, rc, rc == GF_ENOMEM ? "out of memory"
                                                 : "cannot start the upstream transfer");
        gf_up_gen_destroy(g);
        return rc;
    }
    arm_timer(g);
    *out = g;
    return 0;
fail:
    gf_up_gen_destroy(g);
    return rc;
}

static void up_cancel(struct gf_engine *e, struct gf_gen *g)
{
    struct gf_up *u = e->impl;
    g->cancelled = true;
    if (g->busy || g->zombie)
        return;  // gen_finish or after_curl frees it
    if (g->in_native) {
        g->zombie = true;  // the native read handler frees it when the parser returns
        evtimer_del(g->timer);
        return;
    }
    if (u->in_curl > 0) {
        // curl may not be re-entered now; after_curl destroys it. No event is delivered.
        if (g->add_pending)
            g->add_pending = false;
        else
            u->n_deferred++;
        g->zombie = true;
        evtimer_del(g->timer);
        return;
    }
    gf_up_gen_destroy(g);
}

static bool up_ready(struct gf_engine *e)
{
    return gf_up_any_healthy(e->impl);
}

static size_t up_models(struct gf_engine *e, const char *const **ids)
{
    struct gf_up *u = e->impl;
    *ids = (const char *const *)u->models;
    return u->n_models;
}

static int up_count_tokens(struct gf_engine *e, const char *text, size_t len, int *count,
                           bool *estimated)
{
    (void)e;
    (void)text;
    // No tokenizer for a remote model: about four bytes a token for English text.
    *count = (int)(len / 4 + (len % 4 != 0));
    *estimated = true;
    return 0;
}

static void up_close(struct gf_engine *e)
{
    struct gf_up *u = e->impl;
    while (u->gens)
        gf_up_gen_destroy(u->gens);
    while (u->n_spare > 0)
        curl_easy_cleanup(u->spare[--u->n_spare]);
    while (u->n_spare_gens > 0)
        gen_free(u->spare_gens[--u->n_spare_gens]);
    curl_slist_free_all(u->fixed_headers[0]);
    curl_slist_free_all(u->fixed_headers[1]);
    for (size_t i = 0; u->targets && i < u->n_targets; i++)
        gf_up_target_cleanup(u, &u->targets[i]);
    if (u->multi)
        curl_multi_cleanup(u->multi);  // closes cached connections through socket_cb
    gf_up_loop_cleanup(u);
    if (u->curl_timer)
        event_free(u->curl_timer);
    if (u->health_timer)
        event_free(u->health_timer);
    gf_free(u->targets);
    for (size_t i = 0; i < u->n_models; i++)
        gf_free(u->models[i]);
    gf_free(u->models);
    gf_free(u->auth_header);
    gf_free(u->model_override);
    gf_free(u);
    if (--curl_users == 0)
        curl_global_cleanup();
}

static const struct gf_engine_ops upstream_ops = {
    .name = "upstream",
    .submit = up_submit,
    .cancel = up_cancel,
    .ready = up_ready,
    .models = up_models,
    .count_tokens = up_count_tokens,
    .close = up_close,
};

static bool url_ok(const char *s)
{
    return (strncmp(s, "http://", 7) == 0 && s[7] != '\0') ||
           (strncmp(s, "https://", 8) == 0 && s[8] != '\0');
}

int gf_engine_upstream_open(struct event_base *base, const struct gf_upstream_config *cfg,
                            struct gf_engine **out, struct gf_err *err)
{
    *out = NULL;
    if (cfg->n_urls == 0)
        return gf_err_set(err, GF_EINVAL, "upstream.urls: at least one URL is needed");
    for (size_t i = 0; i < cfg->n_urls; i++)
        if (cfg->urls[i] == NULL || !url_ok(cfg->urls[i]) || strpbrk(cfg->urls[i], " \r\n"))
            return gf_err_set(err, GF_EINVAL,
                              "upstream.urls[%zu]: expected an http:// or https:// URL", i);
    if (cfg->connect_timeout_ms < 0 || cfg->request_timeout_ms < 0 || cfg->health_interval_ms < 0)
        return gf_err_set(err, GF_EINVAL, "upstream: timeouts must not be negative");
    if (cfg->api_key && strpbrk(cfg->api_key, "\r\n"))
        return gf_err_set(err, GF_EINVAL, "upstream.api_key: must be one line");
    // Under the request OOM loop of `gardefou serve` (GF_FAILALLOC_SERVE=1, docs/testing.md)
    // libcurl gets the plain allocator: libcurl 7.88.1 can die of SIGFPE in
    // curl_multi_socket_action after some of its own allocations fail, which is not ours to test.
    const char *fa = getenv("GF_FAILALLOC_SERVE");
    bool plain = fa != NULL && strcmp(fa, "1") == 0;
    if (curl_users++ == 0 &&
        (plain ? curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, free, realloc, strdup, calloc)
               : curl_global_init_mem(CURL_GLOBAL_DEFAULT, gf_malloc, gf_free, gf_realloc,
                                      gf_strdup, gf_calloc)) != CURLE_OK) {
        curl_users--;
        return gf_err_set(err, GF_EIO, "upstream: libcurl failed to initialize");
    }
    struct gf_up *u = gf_calloc(1, sizeof(*u));
    if (u == NULL) {
        if (--curl_users == 0)
            curl_global_cleanup();
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    }
    u->engine.ops = &upstream_ops;
    u->engine.impl = u;
    u->base = base;
    u->connect_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : DEFAULT_CONNECT_MS;
    u->request_ms = cfg->request_timeout_ms ? cfg->request_timeout_ms : DEFAULT_REQUEST_MS;
    u->health_ms = cfg->health_interval_ms;
    u->max_reply = cfg->max_response_bytes ? cfg->max_response_bytes : DEFAULT_MAX_REPLY;
    u->no_quickack = cfg->no_quickack;
    u->curl_only = cfg->curl_only;
    bool ok = true;
    u->targets = gf_calloc(cfg->n_urls, sizeof(*u->targets));
    ok = u->targets != NULL;
    u->n_targets = ok ? cfg->n_urls : 0;
    if (ok && cfg->api_key && cfg->api_key[0]) {
        struct gf_buf b;
        gf_buf_init(&b, strlen(cfg->api_key) + 64);
        ok = gf_buf_printf(&b, "Authorization: Bearer %s", cfg->api_key) == 0 &&
             (u->auth_header = gf_buf_steal(&b)) != NULL;
        gf_buf_cleanup(&b);
    }
    for (int st = 0; st < 2; st++) {
        struct curl_slist **h = &u->fixed_headers[st];
        *h = add_header(*h, "Content-Type: application/json", &ok);
        *h = add_header(*h, st ? "Accept: text/event-stream" : "Accept: application/json", &ok);
        *h = add_header(*h, "Expect:", &ok); // no 100-continue round trip
        if (u->auth_header)
            *h = add_header(*h, u->auth_header, &ok);
    }
    if (ok && cfg->model)
        ok = (u->model_override = gf_strdup(cfg->model)) != NULL;
    u->models_configured = cfg->n_models > 0;
    if (ok) {
        u->models = gf_calloc(u->models_configured ? cfg->n_models : GF_UP_MAX_MODELS,
                              sizeof(*u->models));
        ok = u->models != NULL;
        for (size_t i = 0; ok && i < cfg->n_models; i++, u->n_models++)
            ok = (u->models[i] = gf_strdup(cfg->models[i])) != NULL;
    }
    u->multi = ok ? curl_multi_init() : NULL;
    u->health_timer = evtimer_new(base, gf_up_health_timer_cb, u);
    ok = ok && u->multi && u->health_timer && gf_up_loop_setup(u) == 0;
    for (size_t i = 0; ok && i < u->n_targets; i++)
        ok = gf_up_target_init(u, i, cfg->urls[i]);
    if (!ok) {
        up_close(&u->engine);
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    }
    // A first check at once (on the loop), even without periodic ones: it learns the models.
    struct timeval now = {0, 0};
    evtimer_add(u->health_timer, &now);
    *out = &u->engine;
    return 0;
}
