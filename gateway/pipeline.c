/* pipeline.c — the life of one request, from a complete HTTP request to its one ending.
 *
 * Stages (each a small function below, in this order):
 *   (1) stage_parse      route, method, content type, body size, JSON, schema and ranges
 *   (2) stage_auth       hooks->authenticate: who is calling (gf_request_set_key)
 *   (3) stage_admit      hooks->admit: rate limits, concurrency, token reservation
 *   (4) stage_input      hooks->input: input filters, may rewrite or block the prompt
 *   (5) stage_engine     gf_engine_submit; events arrive in on_gen_event
 *   (6) stage_output     hooks->output on every delta: hold back, rewrite, or cut the choice
 *   (7) release + reply  hooks->release (charge usage), then the reply is built in finish()
 *   (8) audit            hooks->audit, asynchronous; the reply (or the stream's last event) is
 *                        sent only when every audit hook has called done
 *
 * Invariant: every request, whatever ends it (success, 4xx from any stage, engine error, client
 * disconnect, revocation, shutdown), goes through request_end() exactly once; request_end runs
 * (7) and (8), then finish() sends what is left to send, records metrics and frees the request.
 * Streams start lazily: the 200 and its headers go out with the first delta or the first ping,
 * so a generation that fails at once still gets a proper error status (502, 504, ...). */
#include "gateway/gateway_int.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

/* Arena blocks not in use are poisoned for AddressSanitizer, which then still sees a body value
 * used after its request ended, as it did with each value on the heap. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* A request's reply headers are kept by the pipeline: evhttp copies each header it is given
 * into three allocations, and the usual reply, written by conn_reply.c, does not need them
 * there. Past these bounds (a hook's many headers) they go to evhttp as they come. */
#define REPLY_HDRS 12
#define REPLY_HDR_TEXT 512

struct arena_blk {
    struct arena_blk *next;
    char data[];
};

struct gf_request {
    struct gf_gateway *gw;
    struct gf_request *prev, *next;   // the gateway's in-flight list
    struct evhttp_request *http;      // NULL once the client is gone or answered
    struct gf_conn *conn;             // NULL once the connection is gone (or untracked)
    char id[GF_REQID_MAX + 1];
    char key[GF_KEYID_MAX + 1];
    char group[GF_KEYID_MAX + 1];     // the key's policy group ("" = default)
    enum gf_route route;
    uint64_t t_start;
    void *state[GF_MAX_HOOKS];
    struct arena_blk *arena;
    size_t admitted;                  // hooks whose admit succeeded (release runs for these)
    bool counted;                     // passed gf_admission_enter (leave when freed)
    bool api;                         // an API route: audited
    bool ending;                      // request_end has run
    /* outcome */
    int err_code;                     // 0 = success
    int status;                       // HTTP status of the reply
    char err_msg[256];
    char err_param[64];
    /* (1) */
    cJSON *body;
    char *json_block;                 // the arena block of body's values, or NULL (heap)
    struct gf_api_req api_req;
    bool parsed;
    /* (5)-(6) */
    struct gf_gen *gen;
    struct gf_reply_choice *choices;  // &one_choice for one choice (the usual request)
    int n_choices;
    struct gf_reply_choice one_choice;
    struct gf_gen_usage usage;
    int delta_tokens;
    char model[128];
    char reply_id[GF_REQID_MAX + 16];
    int64_t created;
    struct gf_buf scratch[2];         // output filter chain ping-pong
    /* replies */
    struct gf_buf out;                // an immediate reply body (healthz, models, ...)
    const char *out_type;
    bool stream_started;
    bool stream_direct;               // head and chunk framing by conn_reply.c, not evhttp
    struct evbuffer *chunk;           // reused for SSE chunks; kept, empty, with a spare struct
    struct gf_chunk_head chunk_head;  // the start every chunk of the stream has
    struct gf_buf sse;                // a chunk's event, built anew in it for each chunk
    struct event *ping;
    uint64_t last_write;
    size_t audits_left;
    /* for the audit record (gf_request_note_verdict): strings in the arena */
    struct gf_audit_verdict *verdicts;
    size_t n_verdicts, cap_verdicts;
    const char *policy_version;
    char client[64];                  // peer address, taken at dispatch
    /* reply headers (gf_request_add_header, x-request-id) in the order added, names and values
     * copied into hdr_text; given to evhttp only when evhttp writes the reply (hdrs_given) */
    struct gf_reply_hdr hdrs[REPLY_HDRS];
    size_t n_hdrs, hdr_used;
    bool hdrs_given;
    char hdr_text[REPLY_HDR_TEXT];
};

static void request_end(struct gf_request *r, int code, int status, const char *msg,
                        const char *param);
static void give_headers(struct gf_request *r);

/* ---- small helpers --------------------------------------------------------------------- */

bool gf_request_id_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == ':';
        if (!ok || n >= GF_REQID_MAX)
            return false;
    }
    return n > 0;
}

void gf_gateway_new_id(struct gf_gateway *gw, char *out)
{
    // 32 hex digits: the prefix then the sequence (written directly: once per request)
    static const char hex[] = "0123456789abcdef";
    uint64_t v[2] = {gw->id_prefix, ++gw->id_seq};
    for (int w = 0; w < 2; w++)
        for (int i = 0; i < 16; i++)
            out[w * 16 + i] = hex[(v[w] >> (60 - 4 * i)) & 15];
    out[32] = '\0';
}

const char *gf_gateway_http_date(struct gf_gateway *gw)
{
    // libevent formats a Date for every reply that lacks one (gmtime + snprintf, about a
    // tenth of evhttp_send_reply's instructions); the value only changes once a second.
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    if (gw->date[0] != '\0' && (int64_t)now == gw->date_s)
        return gw->date;
    struct tm tm;
    if (gmtime_r(&now, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0)
        memset(&tm, 0, sizeof(tm)); // unreachable on a sane clock; 1900 keeps the format
    char *o = gw->date;
    unsigned year = (unsigned)(tm.tm_year + 1900);
    memcpy(o, days[tm.tm_wday % 7], 3);
    o[3] = ',';
    o[4] = ' ';
    o[5] = (char)('0' + tm.tm_mday / 10);
    o[6] = (char)('0' + tm.tm_mday % 10);
    o[7] = ' ';
    memcpy(o + 8, months[tm.tm_mon % 12], 3);
    o[11] = ' ';
    o[12] = (char)('0' + year / 1000);
    o[13] = (char)('0' + year / 100 % 10);
    o[14] = (char)('0' + year / 10 % 10);
    o[15] = (char)('0' + year % 10);
    o[16] = ' ';
    int hms[3] = {tm.tm_hour, tm.tm_min, tm.tm_sec};
    for (int i = 0; i < 3; i++) {
        o[17 + 3 * i] = (char)('0' + hms[i] / 10);
        o[18 + 3 * i] = (char)('0' + hms[i] % 10);
        o[19 + 3 * i] = i < 2 ? ':' : ' ';
    }
    memcpy(o + 26, "GMT", 4);
    gw->date_s = (int64_t)now;
    return gw->date;
}

char *gf_request_strdup(struct gf_request *r, const char *s, size_t len)
{
    struct arena_blk *b = gf_malloc(sizeof(*b) + len + 1);
    if (b == NULL)
        return NULL;
    memcpy(b->data, s, len);
    b->data[len] = '\0';
    b->next = r->arena;
    r->arena = b;
    return b->data;
}

static void set_error(struct gf_request *r, int code, int status, const char *msg,
                      const char *param)
{
    if (r->err_code != 0 || code == 0)
        return;
    r->err_code = code;
    r->status = status > 0 ? status : gf_http_error_of(code).status;
    gf_strlcpy(r->err_msg, msg ? msg : gf_strerror(code), sizeof(r->err_msg));
    gf_strlcpy(r->err_param, param ? param : "", sizeof(r->err_param));
}

static void reply_now(struct gf_request *r, int status, const char *type)
{
    r->status = status;
    r->out_type = type;
    request_end(r, 0, status, NULL, NULL);
}

/* ---- output ---------------------------------------------------------------------------- */

static void write_chunk(struct gf_request *r, const char *p, size_t n)
{
    if (r->http == NULL || n == 0)
        return;
    if (r->stream_direct) {
        if (gf_conn_frame_chunk(r->chunk, p, n) != 0) {
            evbuffer_drain(r->chunk, evbuffer_get_length(r->chunk));
            return;
        }
    } else {
        evbuffer_add(r->chunk, p, n);
    }
    if (!r->stream_direct || !gf_conn_join_pending(r->conn, r->chunk)) {
        gf_conn_flush_soon(r->conn); // once for all the chunks of this loop pass
        evhttp_send_reply_chunk(r->http, r->chunk);
    }
    evbuffer_drain(r->chunk, evbuffer_get_length(r->chunk));
    r->gw->metrics.bytes_out += n;
    r->last_write = gf_now_ns();
}

static void start_stream(struct gf_request *r)
{
    if (r->stream_started || r->http == NULL)
        return;
    const char *date = gf_gateway_http_date(r->gw);
    r->stream_direct = r->chunk != NULL && gf_conn_stream_start(r->conn, r->http, r->hdrs,
                                                                r->hdrs_given ? 0 : r->n_hdrs,
                                                                date, r->chunk);
    if (!r->stream_direct) {
        give_headers(r);
        struct evkeyvalq *h = evhttp_request_get_output_headers(r->http);
        evhttp_add_header(h, "Content-Type", "text/event-stream");
        evhttp_add_header(h, "Cache-Control", "no-cache");
        evhttp_add_header(h, "X-Accel-Buffering", "no");
        evhttp_add_header(h, "Date", date);
        evhttp_send_reply_start(r->http, 200, "OK");
    }
    r->stream_started = true;
    r->status = 200;
    r->gw->metrics.open_streams++;
}

static void ping_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gf_request *r = arg;
    uint64_t interval = (uint64_t)r->gw->cfg->ping_interval_ms * 1000000ull;
    if (gf_now_ns() - r->last_write + interval / 10 < interval)
        return;
    start_stream(r);
    write_chunk(r, ": ping\n\n", 8);
}

static void send_error_event(struct gf_request *r)
{
    struct gf_http_error he = gf_http_error_of(r->err_code);
    struct gf_buf b;
    gf_buf_init(&b, 4096);
    if (gf_buf_puts(&b, "data: ") == 0 &&
        gf_http_error_json(&b, &he, r->err_msg, r->err_param[0] ? r->err_param : NULL) == 0 &&
        gf_buf_puts(&b, "\n\n") == 0)
        write_chunk(r, b.data, b.len);
    gf_buf_cleanup(&b);
}

static void reply_info(struct gf_request *r, struct gf_reply_info *ri)
{
    ri->id = r->reply_id;
    ri->model = r->model[0] ? r->model : r->api_req.gen.model;
    ri->created = r->created;
    ri->kind = r->api_req.gen.kind;
    ri->top_json = NULL;
    ri->head = &r->chunk_head;
}

/* Sends a reply that is not a stream: r->out with r->out_type and r->status. A plain 200 on a
 * keep-alive connection is written directly (conn_reply.c), anything else by evhttp. */
static void send_whole(struct gf_request *r, struct gf_conn *conn, struct evhttp_request *http)
{
    struct gf_gateway *gw = r->gw;
    const char *ctype = r->out_type ? r->out_type : "application/json";
    char st[96];
    const char *timing = NULL;
    if (r->usage.engine_ns > 0) {
        // what the model cost, and the whole request from its parsed headers and body to this
        // reply: the difference is the gateway's own time around the model
        snprintf(st, sizeof(st), "engine;dur=%.3f, gateway;dur=%.3f",
                 (double)r->usage.engine_ns / 1e6, (double)(gf_now_ns() - r->t_start) / 1e6);
        timing = st;
    }
    gw->metrics.bytes_out += r->out.len;
    const char *date = gf_gateway_http_date(gw);
    if (r->status == 200 && gf_conn_send_ok(conn, http, r->hdrs, r->hdrs_given ? 0 : r->n_hdrs,
                                            ctype, timing, date, r->out.data, r->out.len))
        return;
    give_headers(r);
    struct evkeyvalq *h = evhttp_request_get_output_headers(http);
    evhttp_add_header(h, "Content-Type", ctype);
    if (timing != NULL)
        evhttp_add_header(h, "Server-Timing", timing);
    if (r->status == 405)
        evhttp_add_header(h, "Allow", r->route == GF_ROUTE_CHAT || r->route == GF_ROUTE_COMPLETIONS
                                          ? "POST"
                                          : "GET, HEAD");
    if (r->status == 503 && evhttp_find_header(h, "Retry-After") == NULL)
        evhttp_add_header(h, "Retry-After", "1"); // unless a hook said when
    struct evbuffer *eb = evbuffer_new();
    if (eb != NULL && r->out.len > 0)
        evbuffer_add(eb, r->out.data, r->out.len);
    evhttp_add_header(h, "Date", date);
    gf_conn_flush_soon(conn);
    evhttp_send_reply(http, r->status, NULL, eb);
    if (eb != NULL)
        evbuffer_free(eb);
}

/* Sends what is left to send (the whole reply, or the end of a stream), then records metrics
 * and frees the request. */
static void finish(struct gf_request *r)
{
    struct gf_gateway *gw = r->gw;
    // Detach from the connection first: sending may complete the connection's request at once
    // (and free the connection) for HTTP/1.0 clients.
    struct gf_conn *conn = r->conn;
    if (r->conn != NULL && r->conn->req == r)
        r->conn->req = NULL;
    r->conn = NULL;
    // A successful stream that emitted nothing still answers as a stream.
    if (r->http != NULL && r->err_code == 0 && r->parsed && r->api_req.gen.stream)
        start_stream(r);
    struct evhttp_request *http = r->http;
    if (http != NULL) {
        if (r->stream_started) {
            if (r->err_code != 0) {
                send_error_event(r);
            } else if (r->api_req.include_usage) {
                struct gf_reply_info ri;
                reply_info(r, &ri);
                struct gf_buf b;
                gf_buf_init(&b, 4096);
                if (gf_api_usage_sse(&b, &ri, &r->usage) == 0)
                    write_chunk(r, b.data, b.len);
                gf_buf_cleanup(&b);
            }
            write_chunk(r, "data: [DONE]\n\n", 14);
            if (r->stream_direct && evbuffer_add(r->chunk, "0\r\n\r\n", 5) == 0 &&
                !gf_conn_join_pending(conn, r->chunk))
                evhttp_send_reply_chunk(http, r->chunk); // the last chunk
            gf_conn_flush_soon(conn);
            evhttp_send_reply_end(http);
            gw->metrics.open_streams--;
        } else {
            if (r->err_code == 0 && r->out_type == NULL && r->parsed) {
                // a finished generation that was not streamed
                struct gf_reply_info ri;
                reply_info(r, &ri);
                gf_buf_reset(&r->out);
                // Room for the usual reply at once (its fixed part is about 330 bytes) rather
                // than a buffer that grows; a failure here is the appends' to report.
                size_t room = 480;
                for (int i = 0; i < r->n_choices; i++)
                    room += r->choices[i].text.len + 64;
                (void)gf_buf_reserve(&r->out, room);
                int rc = gf_api_reply_json(&r->out, &ri, r->choices, r->n_choices, &r->usage);
                if (rc != 0)
                    set_error(r, rc, 0, "the reply could not be built", NULL);
                r->out_type = "application/json";
                r->status = 200;
            }
            if (r->err_code != 0) {
                struct gf_http_error he = gf_http_error_of(r->err_code);
                gf_buf_reset(&r->out);
                gf_http_error_json(&r->out, &he, r->err_msg,
                                   r->err_param[0] ? r->err_param : NULL);
                r->out_type = "application/json";
            }
            send_whole(r, conn, http);
        }
        r->http = NULL;
    }
    if (r->status == 0)
        r->status = 499;
    uint64_t ns = gf_now_ns() - r->t_start;
    gf_metrics_request(&gw->metrics, r->route, r->status, ns);
    gf_log(r->status >= 500 ? GF_LOG_WARN : GF_LOG_INFO, "http",
           "req=%s route=%s status=%d ms=%.3f%s%s", r->id, gf_route_name(r->route), r->status,
           (double)ns / 1e6, r->err_code ? " err=" : "", r->err_code ? gf_strerror(r->err_code) : "");

    // unlink and free
    if (r->prev)
        r->prev->next = r->next;
    else
        gw->inflight = r->next;
    if (r->next)
        r->next->prev = r->prev;
    gw->metrics.inflight--;
    if (r->counted)
        gf_admission_leave(gw);
    if (r->ping)
        event_free(r->ping);
    for (int i = 0; i < r->n_choices; i++) {
        gf_buf_cleanup(&r->choices[i].text);
        gf_lp_acc_cleanup(&r->choices[i].lp);
        gf_free(r->choices[i].extra_json);
        gf_free(r->choices[i].final_json);
    }
    if (r->choices != &r->one_choice)
        gf_free(r->choices);
    gf_buf_cleanup(&r->scratch[0]);
    gf_buf_cleanup(&r->scratch[1]);
    gf_free(r->verdicts);
    gf_buf_cleanup(&r->out);
    gf_buf_cleanup(&r->sse);
    gf_api_req_cleanup(&r->api_req);
    cJSON_Delete(r->body);  // frees the values that are not in the arena block
    if (r->json_block != NULL) {
        POISON(r->json_block, GF_JSON_BLOCK);
        gw->json_free[gw->n_json_free++] = r->json_block;
    }
    while (r->arena) {
        struct arena_blk *b = r->arena;
        r->arena = b->next;
        gf_free(b);
    }
    if (gw->n_spare_reqs < GF_SPARE_REQUESTS) { // a spare keeps its chunk buffer, emptied
        if (r->chunk != NULL)
            evbuffer_drain(r->chunk, evbuffer_get_length(r->chunk));
        gw->spare_reqs[gw->n_spare_reqs++] = r;
    } else {
        if (r->chunk)
            evbuffer_free(r->chunk);
        gf_free(r);
    }
}

void gf_pipeline_json_open(struct gf_gateway *gw)
{
    char *region = gf_malloc((size_t)GF_JSON_BLOCKS * GF_JSON_BLOCK);
    if (region == NULL || !gf_json_region_claim(region, (size_t)GF_JSON_BLOCKS * GF_JSON_BLOCK)) {
        gf_free(region);
        return;
    }
    gw->json_region = region;
    POISON(region, (size_t)GF_JSON_BLOCKS * GF_JSON_BLOCK);
    for (size_t i = 0; i < GF_JSON_BLOCKS; i++)
        gw->json_free[gw->n_json_free++] = region + (GF_JSON_BLOCKS - 1 - i) * GF_JSON_BLOCK;
}

void gf_pipeline_json_close(struct gf_gateway *gw)
{
    if (gw->json_region == NULL)
        return;
    gf_json_region_release(gw->json_region);
    UNPOISON(gw->json_region, (size_t)GF_JSON_BLOCKS * GF_JSON_BLOCK);
    gf_free(gw->json_region);
    gw->json_region = NULL;
    gw->n_json_free = 0;
}

void gf_pipeline_free_spares(struct gf_gateway *gw)
{
    while (gw->n_spare_reqs > 0) {
        struct gf_request *r = gw->spare_reqs[--gw->n_spare_reqs];
        if (r->chunk)
            evbuffer_free(r->chunk);
        gf_free(r);
    }
}

/* A zeroed request struct, kept or new (a kept one keeps its empty chunk buffer); NULL
 * without memory. */
static struct gf_request *request_new(struct gf_gateway *gw)
{
    if (gw->n_spare_reqs == 0)
        return gf_calloc(1, sizeof(struct gf_request));
    struct gf_request *r = gw->spare_reqs[--gw->n_spare_reqs];
    struct evbuffer *chunk = r->chunk; // empty; saves an evbuffer_new and evbuffer_free a request
    memset(r, 0, sizeof(*r));
    r->chunk = chunk;
    return r;
}

/* ---- (8) audit ------------------------------------------------------------------------- */

static void audit_next(struct gf_request *r, size_t from);

static void audit_done(struct gf_request *r, int rc)
{
    // GF_EIO: the log cannot be written (disk full, I/O error). Like every request refused
    // during the outage, this one gets 503 + Retry-After: the client may retry, nothing of it
    // was served. Anything else (out of memory) is the server's own error.
    if (rc == GF_EIO && r->err_code == 0 && !r->stream_started)
        set_error(r, GF_EAGAIN, 503, "the audit log cannot be written; retry later", NULL);
    else if (rc != 0 && r->err_code == 0 && !r->stream_started)
        set_error(r, GF_EIO, 500, "the audit record could not be written", NULL);
    else if (rc != 0 && r->err_code == 0)
        set_error(r, GF_EIO, 200, "the audit record could not be written", NULL);
    audit_next(r, r->gw->n_hooks - r->audits_left + 1);
}

static void audit_next(struct gf_request *r, size_t from)
{
    struct gf_gateway *gw = r->gw;
    for (size_t i = from; i < gw->n_hooks; i++) {
        if (gw->hooks[i].audit != NULL) {
            r->audits_left = gw->n_hooks - i;
            gw->hooks[i].audit(gw->hooks[i].ud, r, audit_done);
            return;
        }
    }
    finish(r);
}

/* ---- the one ending -------------------------------------------------------------------- */

static void request_end(struct gf_request *r, int code, int status, const char *msg,
                        const char *param)
{
    if (r->ending)
        return;
    r->ending = true;
    set_error(r, code, status, msg, param);
    if (r->gen != NULL) {
        gf_engine_cancel(r->gw->engine, r->gen);
        r->gen = NULL;
    }
    if (r->ping != NULL)
        event_del(r->ping);
    if (r->n_choices > 0 && r->usage.completion_tokens == 0)
        r->usage.completion_tokens = r->delta_tokens;
    // (7) release what admission reserved, charge usage
    struct gf_gateway *gw = r->gw;
    for (size_t i = 0; i < r->admitted && i < gw->n_hooks; i++)
        if (gw->hooks[i].release != NULL)
            gw->hooks[i].release(gw->hooks[i].ud, r);
    // (8) audit, then the reply
    if (r->api)
        audit_next(r, 0);
    else
        finish(r);
}

void gf_pipeline_client_gone(struct gf_request *r)
{
    r->conn = NULL;
    if (r->http != NULL) {
        // An orphaned request (its connection already detached it) is ours to free; otherwise
        // evhttp frees it with the connection right after this callback.
        if (evhttp_request_get_connection(r->http) == NULL)
            evhttp_send_reply_end(r->http);
        r->http = NULL;
    }
    if (r->stream_started) {
        r->gw->metrics.open_streams--;
        r->stream_started = false;
    }
    request_end(r, GF_ECANCELED, 499, "the client closed the connection", NULL);
}

/* ---- (6) output filters and engine events ---------------------------------------------- */

/* Runs the output hooks over new text of choice idx. On success out and out_len hold the text to
 * send (borrowed until the next call). Returns GF_EPOLICY when a hook cut the choice. */
static int stage_output(struct gf_request *r, int idx, const char *text, size_t len, bool final,
                        const char **out, size_t *out_len, struct gf_err *err)
{
    struct gf_gateway *gw = r->gw;
    const char *in = text;
    size_t in_len = len;
    int which = 0;
    for (size_t i = 0; i < gw->n_hooks; i++) {
        if (gw->hooks[i].output == NULL)
            continue;
        struct gf_buf *b = &r->scratch[which];
        gf_buf_reset(b);
        int rc = gw->hooks[i].output(gw->hooks[i].ud, r, idx, in, in_len, final, b, err);
        if (rc == GF_EPOLICY) {  // the hook may have written a refusal to send instead
            *out = b->data ? b->data : "";
            *out_len = b->len;
        }
        if (rc != 0)
            return rc;
        in = b->data ? b->data : "";
        in_len = b->len;
        which ^= 1;
    }
    *out = in;
    *out_len = in_len;
    return 0;
}

static void emit(struct gf_request *r, int idx, const char *role, const char *text, size_t len,
                 const char *extra, const char *finish_reason, bool with_lp)
{
    struct gf_reply_info ri;
    reply_info(r, &ri);
    if (finish_reason != NULL)  // the choice's last chunk carries what hooks added for it
        ri.top_json = r->choices[idx].final_json;
    struct gf_buf *b = &r->sse; // the stream's one event buffer, emptied for each chunk
    struct gf_lp_acc *lp = with_lp ? &r->choices[idx].lp : NULL;
    gf_buf_reset(b);
    b->max = len + 4096 + (extra ? strlen(extra) : 0) + (ri.top_json ? strlen(ri.top_json) : 0) +
             (lp ? lp->content.len + lp->tokens.len + lp->values.len + lp->tops.len +
                       lp->offsets.len
                 : 0);
    if (gf_api_chunk_sse_lp(b, &ri, idx, role, text, len, extra, finish_reason,
                            r->api_req.include_usage, lp) == 0) {
        start_stream(r);
        write_chunk(r, b->data, b->len);
    }
    if (lp != NULL)
        gf_lp_acc_reset(lp);  // these went out with this chunk
}

static bool all_done(struct gf_request *r)
{
    for (int i = 0; i < r->n_choices; i++)
        if (!r->choices[i].done)
            return false;
    return true;
}

/* The finish reason as a static string: the engine's is borrowed for its callback only, and the
 * choice keeps it until the request ends (release and audit hooks read it). */
static const char *intern_finish(const char *f)
{
    static const char *const known[] = {"stop", "length", "tool_calls", "content_filter",
                                        "function_call"};
    for (size_t i = 0; f && i < GF_ARRAY_LEN(known); i++)
        if (strcmp(f, known[i]) == 0)
            return known[i];
    return "stop";
}

/* Passes new text (possibly empty, with final set at the end of the choice) through the output
 * filters and on to the client. Returns 0, or an error code that ends the request. */
static int choice_text(struct gf_request *r, int idx, const char *text, size_t len, bool final,
                       const char *extra, const char *finish_reason,
                       const struct gf_gen_logprob *lps, int n_lps)
{
    struct gf_reply_choice *ch = &r->choices[idx];
    struct gf_err err = {0};
    const char *out = NULL;
    size_t out_len = 0;
    int rc = stage_output(r, idx, text, len, final, &out, &out_len, &err);
    if (rc == GF_EPOLICY) {
        ch->cut = true;
        ch->done = true;
        ch->finish_reason = "content_filter";
        extra = NULL;
    } else if (rc != 0) {
        set_error(r, rc, 0, err.msg[0] ? err.msg : "an output filter failed", NULL);
        return rc;
    }
    struct gf_lp_acc *lp = &ch->lp;
    if (lp->on && !lp->withheld && !ch->cut) {
        if ((rc = gf_buf_append(&lp->raw, text, len)) != 0 ||
            (rc = gf_lp_acc_add(lp, lps, n_lps)) != 0)
            return rc;
    }
    if (out_len > 0 && (rc = gf_buf_append(&ch->text, out, out_len)) != 0) {
        set_error(r, rc, 502, "the generated text exceeds upstream.max_response_bytes", NULL);
        return rc;
    }
    // Tokens must never reveal what the output filters changed or still hold back: logprobs go
    // out only while the text sent so far equals the engine's, and then only up to what was
    // sent (a stream carries them once the filters have released all the text so far). Once
    // the filters change a choice's text (redaction, a block), its logprobs stop.
    if (lp->on && !lp->withheld &&
        (ch->cut || ch->text.len > lp->raw.len ||
         (ch->text.len > 0 && memcmp(ch->text.data, lp->raw.data, ch->text.len) != 0))) {
        lp->withheld = true;
        gf_lp_acc_reset(lp);
    }
    bool lp_ready = lp->on && !lp->withheld && ch->text.len == lp->raw.len && lp->count > 0;
    if (extra != NULL && !r->api_req.gen.stream) {
        char *copy = gf_strdup(extra);
        if (copy == NULL)
            return GF_ENOMEM;
        gf_free(ch->extra_json);
        ch->extra_json = copy;
    }
    if (final && !ch->cut) {
        ch->done = true;
        ch->finish_reason = intern_finish(finish_reason);
    }
    if (r->api_req.gen.stream) {
        const char *role = ch->role_sent ? NULL : "assistant";
        if (out_len > 0 || extra != NULL || lp_ready || (role != NULL && !ch->cut)) {
            emit(r, idx, role, out, out_len, extra, NULL, lp_ready);
            ch->role_sent = true;
        }
        if (ch->done)
            emit(r, idx, NULL, NULL, 0, NULL, ch->finish_reason, false);
    }
    return 0;
}

static void on_gen_event(void *ud, const struct gf_gen_event *ev)
{
    struct gf_request *r = ud;
    switch (ev->type) {
    case GF_GEN_EV_DELTA: {
        if (ev->index < 0 || ev->index >= r->n_choices || r->choices[ev->index].done)
            return;
        r->delta_tokens += ev->n_tokens;
        int rc = choice_text(r, ev->index, ev->text ? ev->text : "", ev->text ? ev->len : 0,
                             ev->choice_done, ev->extra_json, ev->finish_reason, ev->logprobs,
                             ev->n_logprobs);
        if (rc != 0) {
            request_end(r, rc, 0, NULL, NULL);
            return;
        }
        if (all_done(r) && r->choices[ev->index].cut)
            request_end(r, 0, 0, NULL, NULL);  // cancels the generation; content_filter
        return;
    }
    case GF_GEN_EV_DONE:
        r->gen = NULL;
        r->usage = ev->usage;
        if (ev->model != NULL)
            gf_strlcpy(r->model, ev->model, sizeof(r->model));
        for (int i = 0; i < r->n_choices; i++) {
            if (r->choices[i].done)
                continue;
            int rc = choice_text(r, i, "", 0, true, NULL, ev->finish_reason, NULL, 0);
            if (rc != 0) {
                request_end(r, rc, 0, NULL, NULL);
                return;
            }
        }
        request_end(r, 0, 0, NULL, NULL);
        return;
    case GF_GEN_EV_ERROR:
        r->gen = NULL;
        r->usage = ev->usage;
        if (ev->err_code == GF_EUPSTREAM || ev->err_code == GF_ETIMEDOUT)
            r->gw->metrics.upstream_errors++;
        request_end(r, ev->err_code ? ev->err_code : GF_EUPSTREAM, ev->http_status, ev->err_msg,
                    ev->err_param);
        return;
    }
}

/* ---- (1) parse ------------------------------------------------------------------------- */

static bool is_json_type(const char *ct)
{
    if (ct == NULL)
        return false;
    while (*ct == ' ')
        ct++;
    static const char want[] = "application/json";
    if (strncasecmp(ct, want, sizeof(want) - 1) != 0)
        return false;
    char next = ct[sizeof(want) - 1];
    return next == '\0' || next == ';' || next == ' ';
}

/* Reads the request body as a JSON object into r->body (content type, size, UTF-8, syntax). */
static int read_json_body(struct gf_request *r, struct gf_err *err)
{
    const struct gf_config *cfg = r->gw->cfg;
    struct evkeyvalq *in = evhttp_request_get_input_headers(r->http);
    if (!is_json_type(evhttp_find_header(in, "Content-Type"))) {
        r->status = 415;
        return gf_err_set(err, GF_EINVAL, "Content-Type must be application/json");
    }
    struct evbuffer *body = evhttp_request_get_input_buffer(r->http);
    size_t len = evbuffer_get_length(body);
    r->gw->metrics.bytes_in += len;
    if (len > (size_t)cfg->max_body_bytes)
        return gf_err_set(err, GF_ETOOBIG, "the request body is larger than limits.max_body_bytes");
    if (len == 0)
        return gf_err_set(err, GF_EINVAL, "the request body is empty; expected a JSON object");
    const char *text = (const char *)evbuffer_pullup(body, -1);
    if (text == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    if (!gf_utf8_valid(text, len))
        return gf_err_set(err, GF_EINVAL, "the request body is not valid UTF-8");
    unsigned long oom_before = gf_json_alloc_failures();
    struct gf_json_arena a = {0};
    if (r->json_block == NULL && r->gw->n_json_free > 0) {
        r->json_block = r->gw->json_free[--r->gw->n_json_free];
        UNPOISON(r->json_block, GF_JSON_BLOCK);
        a = (struct gf_json_arena){r->json_block, r->json_block + GF_JSON_BLOCK};
        gf_json_arena_begin(&a);
    }
    r->body = cJSON_ParseWithLength(text, len);
    if (a.end != NULL) {
        gf_json_arena_end();
        POISON(a.next, (size_t)(a.end - a.next)); // what the tree did not take
    }
    if (r->body == NULL && gf_json_alloc_failures() != oom_before)
        return gf_err_set(err, GF_ENOMEM, "out of memory while parsing the request body");
    if (r->body == NULL) {
        const char *at = cJSON_GetErrorPtr();
        if (at != NULL && at >= text && at <= text + len)
            return gf_err_set(err, GF_EINVAL,
                              "the request body is not valid JSON (at byte %zu)",
                              (size_t)(at - text));
        return gf_err_set(err, GF_EINVAL, "the request body is not valid JSON");
    }
    return 0;
}

static int stage_parse(struct gf_request *r, struct gf_err *err, const char **param)
{
    const struct gf_config *cfg = r->gw->cfg;
    int rc = read_json_body(r, err);
    if (rc != 0)
        return rc;
    enum gf_gen_kind kind = r->route == GF_ROUTE_CHAT ? GF_GEN_CHAT : GF_GEN_COMPLETION;
    rc = gf_api_parse(&r->api_req, kind, r->body, cfg, err);
    if (rc) {
        *param = r->api_req.param[0] ? r->api_req.param : NULL;
        return rc;
    }
    r->parsed = true;
    r->api_req.gen.request_id = r->id;
    return 0;
}

/* ---- (2)-(4) hooks --------------------------------------------------------------------- */

static int stage_auth(struct gf_request *r, struct gf_err *err)
{
    struct gf_gateway *gw = r->gw;
    for (size_t i = 0; i < gw->n_hooks; i++) {
        if (gw->hooks[i].authenticate == NULL)
            continue;
        int rc = gw->hooks[i].authenticate(gw->hooks[i].ud, r, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int stage_admit(struct gf_request *r, struct gf_err *err)
{
    struct gf_gateway *gw = r->gw;
    for (size_t i = 0; i < gw->n_hooks; i++) {
        if (gw->hooks[i].admit != NULL) {
            int rc = gw->hooks[i].admit(gw->hooks[i].ud, r, err);
            if (rc)
                return rc;
        }
        r->admitted = i + 1;
    }
    return 0;
}

static int stage_input(struct gf_request *r, struct gf_err *err)
{
    struct gf_gateway *gw = r->gw;
    for (size_t i = 0; i < gw->n_hooks; i++) {
        if (gw->hooks[i].input == NULL)
            continue;
        int rc = gw->hooks[i].input(gw->hooks[i].ud, r, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- (5) engine ------------------------------------------------------------------------ */

static int stage_engine(struct gf_request *r, struct gf_err *err)
{
    struct gf_gateway *gw = r->gw;
    // Readiness is for /readyz (load balancers). A generation still goes to an engine that is
    // not ready: it knows why and answers with the right code (an upstream engine whose servers
    // are all down tries them and answers 502; one that recovered since its last health check
    // just serves). Only a gateway without an engine answers 503 here.
    if (gw->engine == NULL)
        return gf_err_set(err, GF_EAGAIN, "the model is not ready; retry later");
    const struct gf_gen_request *g = &r->api_req.gen;
    // n_choices is set only once choices exists: the ending and the audit record read both
    r->choices = g->params.n == 1 ? &r->one_choice
                                  : gf_calloc((size_t)g->params.n, sizeof(*r->choices));
    if (r->chunk == NULL)
        r->chunk = evbuffer_new();
    if (r->choices == NULL || r->chunk == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    r->n_choices = g->params.n;
    for (int i = 0; i < r->n_choices; i++) {
        gf_buf_init(&r->choices[i].text, (size_t)gw->cfg->upstream_max_response_bytes);
        gf_lp_acc_init(&r->choices[i].lp, g->params.logprobs, g->kind == GF_GEN_CHAT);
    }
    const char *prefix = g->kind == GF_GEN_CHAT ? "chatcmpl-" : "cmpl-"; // no printf per request
    size_t pl = strlen(prefix);
    memcpy(r->reply_id, prefix, pl);
    gf_strlcpy(r->reply_id + pl, r->id, sizeof(r->reply_id) - pl);
    r->created = gf_wall_ms() / 1000;
    r->last_write = gf_now_ns();
    if (g->stream && gw->cfg->ping_interval_ms > 0) {
        r->ping = event_new(gw->base, -1, EV_PERSIST, ping_cb, r);
        if (r->ping == NULL)
            return gf_err_set(err, GF_ENOMEM, "out of memory");
        int64_t ms = gw->cfg->ping_interval_ms;
        struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
        event_add(r->ping, &tv);
    }
    return gf_engine_submit(gw->engine, g, on_gen_event, r, &r->gen, err);
}

/* Stages (1) to (5) of a generation route. Any failure ends the request. */
static void run_generation(struct gf_request *r)
{
    struct gf_err err = {0};
    const char *param = NULL;
    int rc = gf_admission_enter(r->gw, &err);
    if (rc != 0) {
        request_end(r, rc, 503, err.msg, NULL);
        return;
    }
    r->counted = true;
    rc = stage_parse(r, &err, &param);
    if (rc == 0)
        rc = stage_auth(r, &err);
    if (rc == 0)
        rc = stage_admit(r, &err);
    if (rc == 0)
        rc = stage_input(r, &err);
    if (rc == 0)
        rc = stage_engine(r, &err);
    if (rc != 0) {
        if (param == NULL && r->api_req.param[0])
            param = r->api_req.param;
        request_end(r, rc, r->status == 415 ? 415 : 0, err.msg[0] ? err.msg : NULL, param);
    }
}

/* ---- other routes ---------------------------------------------------------------------- */

/* POST /v1/moderations: parse, authenticate, admit, then the first hook with a moderate
 * callback writes the reply (the policy's detectors and classifiers, gateway/filters.c). */
static void route_moderations(struct gf_request *r)
{
    struct gf_gateway *gw = r->gw;
    struct gf_err err = {0};
    int rc = read_json_body(r, &err);
    if (rc == 0)
        rc = stage_auth(r, &err);
    if (rc == 0)
        rc = stage_admit(r, &err);
    bool served = false;
    for (size_t i = 0; rc == 0 && !served && i < gw->n_hooks; i++) {
        if (gw->hooks[i].moderate == NULL)
            continue;
        served = true;
        rc = gw->hooks[i].moderate(gw->hooks[i].ud, r, r->body, &r->out, &err);
    }
    if (rc == 0 && !served)
        rc = gf_err_set(&err, GF_ENOTFOUND, "moderation is not available on this server");
    if (rc != 0) {
        request_end(r, rc, r->status == 415 ? 415 : 0, err.msg[0] ? err.msg : NULL, NULL);
        return;
    }
    reply_now(r, 200, "application/json");
}

static void route_models(struct gf_request *r)
{
    struct gf_gateway *gw = r->gw;
    struct gf_err err = {0};
    int rc = stage_auth(r, &err);
    if (rc) {
        request_end(r, rc, 0, err.msg, NULL);
        return;
    }
    if (gw->engine == NULL || !gf_engine_ready(gw->engine)) {
        request_end(r, GF_EAGAIN, 503, "the model is not ready; retry later", NULL);
        return;
    }
    const char *const *ids = NULL;
    size_t n = gf_engine_models(gw->engine, &ids);
    if (gf_api_models_json(&r->out, ids, n, gw->started_s) != 0) {
        request_end(r, GF_ENOMEM, 0, NULL, NULL);
        return;
    }
    reply_now(r, 200, "application/json");
}

static void route_simple(struct gf_request *r)
{
    struct gf_gateway *gw = r->gw;
    switch (r->route) {
    case GF_ROUTE_HEALTHZ:
        gf_buf_puts(&r->out, "{\"status\":\"ok\"}");
        reply_now(r, 200, "application/json");
        return;
    case GF_ROUTE_READYZ:
        if (gw->engine == NULL || !gf_engine_ready(gw->engine)) {
            request_end(r, GF_EAGAIN, 503, "the model is not ready", NULL);
            return;
        }
        gf_buf_puts(&r->out, "{\"status\":\"ready\"}");
        reply_now(r, 200, "application/json");
        return;
    case GF_ROUTE_METRICS:
        if (gf_metrics_render(&gw->metrics, &r->out) != 0) {
            request_end(r, GF_ENOMEM, 0, NULL, NULL);
            return;
        }
        reply_now(r, 200, "text/plain; version=0.0.4");
        return;
    default:
        request_end(r, GF_ENOTFOUND, 404, "no such route", NULL);
        return;
    }
}

static const struct {
    const char *path;
    enum gf_route route;
    bool post;
} routes[] = {
    {"/v1/chat/completions", GF_ROUTE_CHAT, true},
    {"/v1/completions", GF_ROUTE_COMPLETIONS, true},
    {"/v1/models", GF_ROUTE_MODELS, false},
    {"/healthz", GF_ROUTE_HEALTHZ, false},
    {"/readyz", GF_ROUTE_READYZ, false},
    {"/metrics", GF_ROUTE_METRICS, false},
    {"/v1/moderations", GF_ROUTE_MODERATIONS, true},
};

/* Test hook for the request OOM loop (docs/testing.md, tests/integration/test_failalloc.py).
 * Only when `gardefou serve` runs with GF_FAILALLOC_SERVE=1 in a build with failalloc hooks:
 * a request header x-gf-failalloc: N makes the Nth allocation from the dispatch on fail, and
 * every reply carries x-gf-failalloc-prev: how many allocations failed while the previous armed
 * request ran (0: it ran to its end without reaching N). The countdown is disarmed when a reply
 * has been sent, so nothing between requests is failed. */
static int failalloc_mode = -1; // -1: not yet read from the environment
static long failalloc_prev = -1;

static bool failalloc_on(void)
{
    if (failalloc_mode < 0) {
        const char *e = getenv("GF_FAILALLOC_SERVE");
        failalloc_mode = e != NULL && strcmp(e, "1") == 0 && gf_alloc_fail_supported();
    }
    return failalloc_mode == 1;
}

static void failalloc_arm(struct evhttp_request *http)
{
    char prev[24];
    snprintf(prev, sizeof(prev), "%ld", failalloc_prev);
    evhttp_add_header(evhttp_request_get_output_headers(http), "x-gf-failalloc-prev", prev);
    const char *n = evhttp_find_header(evhttp_request_get_input_headers(http), "x-gf-failalloc");
    if (n == NULL)
        return;
    char *end = NULL;
    long v = strtol(n, &end, 10);
    if (end != n && *end == '\0' && v > 0) {
        failalloc_prev = -1;
        gf_alloc_fail_after(v, false);
    }
}

static void failalloc_done(void)
{
    if (failalloc_on() && failalloc_prev < 0) {
        failalloc_prev = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
    }
}

static void on_complete(struct evhttp_request *req, void *arg)
{
    (void)req;
    failalloc_done();
    gf_conn_request_done(arg);
}

void gf_pipeline_dispatch(struct gf_gateway *gw, struct evhttp_request *http)
{
    struct gf_conn *c = gf_conn_of(gw, http);
    if (c != NULL)
        evhttp_request_set_on_complete_cb(http, on_complete, c);
    if (failalloc_on())
        failalloc_arm(http);
    struct gf_request *r = request_new(gw);
    if (r == NULL) {
        // no request to end: answer the OpenAI error shape directly (libevent's own allocator)
        struct evbuffer *eb = evbuffer_new();
        if (eb != NULL) {
            evbuffer_add_printf(eb, "{\"error\":{\"message\":\"out of memory\",\"type\":"
                                    "\"server_error\",\"param\":null,\"code\":\"internal_error\"}}\n");
            evhttp_add_header(evhttp_request_get_output_headers(http), "Content-Type",
                              "application/json");
        }
        evhttp_send_reply(http, 500, "Internal Server Error", eb);
        if (eb != NULL)
            evbuffer_free(eb);
        return;
    }
    r->gw = gw;
    r->http = http;
    r->conn = c;
    r->t_start = gf_now_ns();
    gf_buf_init(&r->out, 64u << 20);
    gf_buf_init(&r->scratch[0], (size_t)gw->cfg->upstream_max_response_bytes);
    gf_buf_init(&r->scratch[1], (size_t)gw->cfg->upstream_max_response_bytes);
    r->next = gw->inflight;
    if (gw->inflight)
        gw->inflight->prev = r;
    gw->inflight = r;
    gw->metrics.inflight++;
    if (c != NULL)
        c->req = r;

    struct evhttp_connection *hc = evhttp_request_get_connection(http);
    if (hc != NULL) {
        char *addr = NULL; // libevent 2.1 takes char ** (borrowed, owned by the connection)
        ev_uint16_t port = 0;
        evhttp_connection_get_peer(hc, &addr, &port);
        gf_strlcpy(r->client, addr ? addr : "", sizeof(r->client));
    }
    const char *given = evhttp_find_header(evhttp_request_get_input_headers(http), "x-request-id");
    if (given != NULL && gf_request_id_valid(given))
        gf_strlcpy(r->id, given, sizeof(r->id));
    else
        gf_gateway_new_id(gw, r->id);
    gf_request_add_header(r, "x-request-id", r->id);

    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(http));
    enum evhttp_cmd_type cmd = evhttp_request_get_command(http);
    r->route = GF_ROUTE_OTHER;
    for (size_t i = 0; path != NULL && i < GF_ARRAY_LEN(routes); i++) {
        if (strcmp(path, routes[i].path) != 0)
            continue;
        r->route = routes[i].route;
        bool ok = routes[i].post ? cmd == EVHTTP_REQ_POST
                                 : (cmd == EVHTTP_REQ_GET || cmd == EVHTTP_REQ_HEAD);
        if (!ok) {
            request_end(r, GF_EINVAL, 405, "method not allowed on this route", NULL);
            return;
        }
        break;
    }
    r->api = r->route == GF_ROUTE_CHAT || r->route == GF_ROUTE_COMPLETIONS ||
             r->route == GF_ROUTE_MODELS;
    if (r->route == GF_ROUTE_CHAT || r->route == GF_ROUTE_COMPLETIONS)
        run_generation(r);
    else if (r->route == GF_ROUTE_MODELS)
        route_models(r);
    else if (r->route == GF_ROUTE_MODERATIONS)
        route_moderations(r);
    else
        route_simple(r);
}

/* ---- public API ------------------------------------------------------------------------ */

size_t gf_gateway_cancel_key(struct gf_gateway *gw, const char *key_id, int code,
                             const char *message)
{
    size_t n = 0;
    struct gf_request *r = gw->inflight;
    while (r != NULL) {
        struct gf_request *next = r->next;
        if (!r->ending && r->key[0] && strcmp(r->key, key_id) == 0) {
            n++;
            request_end(r, code ? code : GF_EPERM, 0, message ? message : "the key was revoked",
                        NULL);
        }
        r = next;
    }
    return n;
}

void gf_pipeline_shutdown(struct gf_gateway *gw)
{
    struct gf_request *r = gw->inflight;
    while (r != NULL) {
        struct gf_request *next = r->next;
        if (!r->ending)
            request_end(r, GF_EAGAIN, 503, "the server is shutting down", NULL);
        r = next;
    }
    // Requests still waiting for an audit confirmation are finished without it: the audit
    // hooks must not call done after gf_gateway_free.
    while (gw->inflight != NULL)
        finish(gw->inflight);
}

size_t gf_gateway_inflight(const struct gf_gateway *gw)
{
    return (size_t)gw->metrics.inflight;
}

int gf_gateway_add_hooks(struct gf_gateway *gw, const struct gf_hooks *hooks)
{
    if (gw->n_hooks >= GF_MAX_HOOKS)
        return GF_ETOOBIG;
    gw->hooks[gw->n_hooks++] = *hooks;
    return 0;
}

const char *gf_request_id(const struct gf_request *r)
{
    return r->id;
}

enum gf_route gf_request_route(const struct gf_request *r)
{
    return r->route;
}

const char *gf_request_header(struct gf_request *r, const char *name)
{
    if (r->http == NULL)
        return NULL;
    return evhttp_find_header(evhttp_request_get_input_headers(r->http), name);
}

struct gf_gen_request *gf_request_gen(struct gf_request *r)
{
    return r->parsed ? &r->api_req.gen : NULL;
}

struct cJSON *gf_request_body(struct gf_request *r)
{
    return r->body;
}

int gf_request_set_key(struct gf_request *r, const char *key_id)
{
    if (strlen(key_id) > GF_KEYID_MAX)
        return GF_EINVAL;
    gf_strlcpy(r->key, key_id, sizeof(r->key));
    return 0;
}

const char *gf_request_key(const struct gf_request *r)
{
    return r->key;
}

/* What evhttp_add_header refuses: a CR or LF in the name, or a line break in the value that
 * is not followed by a space or a tab (a continuation line). */
static bool header_ok(const char *name, const char *value)
{
    if (strpbrk(name, "\r\n") != NULL)
        return false;
    for (const char *p = value; (p = strpbrk(p, "\r\n")) != NULL;) {
        p += strspn(p, "\r\n");
        if (*p != ' ' && *p != '\t')
            return false;
    }
    return true;
}

/* Hands the kept reply headers to evhttp, which is about to write the reply (or is given the
 * headers that no longer fit here); from then on headers go to it directly. */
static void give_headers(struct gf_request *r)
{
    if (r->hdrs_given || r->http == NULL)
        return;
    r->hdrs_given = true;
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->http);
    for (size_t i = 0; i < r->n_hdrs; i++)
        evhttp_add_header(h, r->hdrs[i].name, r->hdrs[i].value);
}

int gf_request_add_header(struct gf_request *r, const char *name, const char *value)
{
    if (r->http == NULL || r->stream_started || !header_ok(name, value))
        return GF_EINVAL;
    size_t nl = strlen(name) + 1, vl = strlen(value) + 1;
    if (r->hdrs_given || r->n_hdrs == REPLY_HDRS || nl + vl > sizeof(r->hdr_text) - r->hdr_used) {
        give_headers(r);
        struct evkeyvalq *h = evhttp_request_get_output_headers(r->http);
        return evhttp_add_header(h, name, value) == 0 ? 0 : GF_EINVAL;
    }
    char *t = r->hdr_text + r->hdr_used;
    memcpy(t, name, nl);
    memcpy(t + nl, value, vl);
    r->hdr_used += nl + vl;
    r->hdrs[r->n_hdrs++] = (struct gf_reply_hdr){.name = t, .value = t + nl};
    return 0;
}

void gf_request_set_state(struct gf_request *r, size_t slot, void *state)
{
    if (slot < GF_MAX_HOOKS)
        r->state[slot] = state;
}

void *gf_request_state(const struct gf_request *r, size_t slot)
{
    return slot < GF_MAX_HOOKS ? r->state[slot] : NULL;
}

struct gf_gen_usage gf_request_usage(const struct gf_request *r)
{
    return r->usage;
}

const char *gf_request_output(const struct gf_request *r, int index, size_t *len)
{
    if (index < 0 || index >= r->n_choices) {
        *len = 0;
        return NULL;
    }
    *len = r->choices[index].text.len;
    return r->choices[index].text.data ? r->choices[index].text.data : "";
}

int gf_request_set_final_json(struct gf_request *r, int index, const char *members)
{
    if (index < 0 || index >= r->n_choices)
        return GF_EINVAL;
    char *copy = NULL;
    if (members != NULL && (copy = gf_strdup(members)) == NULL)
        return GF_ENOMEM;
    gf_free(r->choices[index].final_json);
    r->choices[index].final_json = copy;
    return 0;
}

int gf_request_n_choices(const struct gf_request *r)
{
    return r->n_choices;
}

int gf_request_status(const struct gf_request *r)
{
    return r->status;
}

int gf_request_error(const struct gf_request *r, const char **message)
{
    if (message)
        *message = r->err_msg;
    return r->err_code;
}

const char *gf_request_finish_reason(const struct gf_request *r)
{
    return r->n_choices > 0 ? r->choices[0].finish_reason : NULL;
}

bool gf_request_streamed(const struct gf_request *r)
{
    return r->parsed && r->api_req.gen.stream;
}

uint64_t gf_request_start_ns(const struct gf_request *r)
{
    return r->t_start;
}

/* ---- what the audit record needs -------------------------------------------------------- */

const char *gf_request_client(const struct gf_request *r)
{
    return r->client;
}

static const char *arena_str(struct gf_request *r, const char *s)
{
    return s ? gf_request_strdup(r, s, strlen(s)) : NULL;
}

int gf_request_note_verdict(struct gf_request *r, const char *phase, const char *rule,
                            const char *category, const char *action, double score)
{
    if (r->n_verdicts == r->cap_verdicts) {
        size_t nc = r->cap_verdicts ? r->cap_verdicts * 2 : 4;
        if (nc > 256)
            return GF_ETOOBIG; // a record lists at most 256 verdicts
        struct gf_audit_verdict *nv = gf_realloc(r->verdicts, nc * sizeof(*nv));
        if (nv == NULL)
            return GF_ENOMEM;
        r->verdicts = nv;
        r->cap_verdicts = nc;
    }
    struct gf_audit_verdict v = {arena_str(r, phase), arena_str(r, rule), arena_str(r, category),
                                 arena_str(r, action), score};
    if ((phase && !v.phase) || (rule && !v.rule_id) || (category && !v.category) ||
        (action && !v.action))
        return GF_ENOMEM;
    r->verdicts[r->n_verdicts++] = v;
    return 0;
}

int gf_request_set_policy_version(struct gf_request *r, const char *version)
{
    // Both phases of a request note the version, almost always the same one: one copy.
    if (version && r->policy_version && strcmp(version, r->policy_version) == 0)
        return 0;
    const char *v = arena_str(r, version);
    if (version && v == NULL)
        return GF_ENOMEM;
    r->policy_version = v;
    return 0;
}

const char *gf_request_policy_version(const struct gf_request *r)
{
    return r->policy_version;
}

size_t gf_request_verdicts(const struct gf_request *r, const struct gf_audit_verdict **out)
{
    *out = r->verdicts;
    return r->n_verdicts;
}

int gf_request_set_group(struct gf_request *r, const char *group)
{
    size_t n = strlen(group);
    if (n >= sizeof(r->group))
        return GF_EINVAL;
    memcpy(r->group, group, n + 1);
    return 0;
}

const char *gf_request_group(const struct gf_request *r)
{
    return r->group[0] ? r->group : NULL;
}

size_t gf_gateway_hooks_count(const struct gf_gateway *gw)
{
    return gw->n_hooks;
}
