/* gateway_int.h — private structures shared by the files of the gateway: the server, its
 * client connections, the request lifecycle object, the parsed API request and the metrics.
 * Only the gateway sources and the gateway's tests include this. */
#ifndef GF_GATEWAY_INT_H
#define GF_GATEWAY_INT_H

#include "gateway/gateway.h"
#include "audit/audit.h"
#include "gateway/reqscan_int.h"

#include <event2/event.h>
#include <event2/http.h>

#define GF_MAX_HOOKS  8
#define GF_REQID_MAX  64
#define GF_KEYID_MAX  63

/* ---- parsed API request (api_request.c) ------------------------------------------------ */

/* A validated /v1/chat/completions or /v1/completions body. gen points into body and into the
 * arrays owned here; both stay valid until gf_api_req_cleanup. */
struct gf_api_req {
    struct gf_gen_request gen;
    bool include_usage;          // stream_options.include_usage
    int completion_logprobs;     // /v1/completions "logprobs" (an integer there)
    struct gf_chat_msg *messages; // owned array
    const char **stop;           // owned array of strings borrowed from body
    char **joined;               // owned texts joined from content parts
    size_t n_joined;
    char param[64];              // on error: the field at fault ("messages[2].role")
    uint64_t names;              // which member names the body may hold (api_request.c)
};

/* Validates body (borrowed; must outlive a) as a request of kind. On failure returns GF_EINVAL
 * (or GF_ENOMEM) with err set to "field: reason" and a->param naming the field. */
int gf_api_parse(struct gf_api_req *a, enum gf_gen_kind kind, const struct cJSON *body,
                 const struct gf_config *cfg, struct gf_err *err);
void gf_api_req_cleanup(struct gf_api_req *a);

/* ---- responses (api_response.c) -------------------------------------------------------- */

/* Token log-probabilities of one choice, rendered as they arrive (api_logprobs.c): for
 * non-streamed replies everything, for streams what the next chunk carries. */
struct gf_lp_acc {
    bool on;                     // the request asked for logprobs
    bool chat;                   // chat format, else the legacy completions arrays
    bool withheld;               // an output filter changed the text: no more logprobs
    int count;                   // entries held
    struct gf_buf raw;           // the engine's text of the choice, to compare with the output
    int64_t offset;              // completions text_offset of the next token
    struct gf_buf content;       // chat: content entries, comma-separated
    struct gf_buf tokens, values, tops, offsets; // completions: the four arrays' elements
};

void gf_lp_acc_init(struct gf_lp_acc *a, bool on, bool chat);
void gf_lp_acc_cleanup(struct gf_lp_acc *a);
/* Empties the entries (after a chunk went out); the text offset goes on. */
void gf_lp_acc_reset(struct gf_lp_acc *a);
int gf_lp_acc_add(struct gf_lp_acc *a, const struct gf_gen_logprob *lps, int n);
/* The "logprobs" value: null when off or empty, else the object of the request's format. */
int gf_lp_acc_render(struct gf_buf *out, const struct gf_lp_acc *a);

struct gf_reply_choice {
    struct gf_buf text;          // output after filters
    struct gf_lp_acc lp;         // token log-probabilities (logprobs requests)
    struct gf_buf filtered;      // scratch for the output filter chain
    const char *finish_reason;   // static string or NULL while running
    char *extra_json;            // last non-text delta fields (owned), for non-streamed replies
    bool done;
    bool cut;                    // an output filter ended this choice
    bool role_sent;              // streams: the role went out in this choice's first chunk
    char *final_json;            // streams: members added to the top level of this choice's
                                 // last chunk (e.g. "gardefou":{...}); owned, or NULL
};

/* The start of a stream's chunks ({"id":..,"object":..,"created":..,"model":..), the same in
 * every chunk: written once a stream and copied, rather than put together for each chunk. */
struct gf_chunk_head {
    char text[384];
    size_t len;                  // 0: not written yet (or did not fit)
    char model[128];             // the model it names (a stream learns the upstream's at its end)
};

struct gf_reply_info {
    const char *id;              // "chatcmpl-..." / "cmpl-..."
    const char *model;
    int64_t created;
    enum gf_gen_kind kind;
    const char *top_json;        // chunks: members added at the top level, or NULL
    struct gf_chunk_head *head;  // chunks: the request's kept head (borrowed), or NULL
};

int gf_api_reply_json(struct gf_buf *out, const struct gf_reply_info *ri,
                      const struct gf_reply_choice *choices, int n_choices,
                      const struct gf_gen_usage *usage);
/* One SSE event "data: {chunk}\n\n" for choice index. role and text/extra/finish may be NULL.
 * with_usage_null adds "usage":null (stream_options.include_usage). */
int gf_api_chunk_sse(struct gf_buf *out, const struct gf_reply_info *ri, int index,
                     const char *role, const char *text, size_t len, const char *extra_json,
                     const char *finish_reason, bool with_usage_null);
/* The same with the chunk's logprobs (NULL or an empty accumulator: "logprobs":null). */
int gf_api_chunk_sse_lp(struct gf_buf *out, const struct gf_reply_info *ri, int index,
                        const char *role, const char *text, size_t len, const char *extra_json,
                        const char *finish_reason, bool with_usage_null,
                        const struct gf_lp_acc *lp);
/* The usage chunk of include_usage: "choices":[] and the totals. */
int gf_api_usage_sse(struct gf_buf *out, const struct gf_reply_info *ri,
                     const struct gf_gen_usage *usage);
int gf_api_models_json(struct gf_buf *out, const char *const *ids, size_t n, int64_t created);

/* ---- metrics (metrics.c) --------------------------------------------------------------- */

#define GF_METRIC_STATUSES 20
#define GF_METRIC_BUCKETS  16

struct gf_metrics {
    uint64_t requests[GF_ROUTE_COUNT][GF_METRIC_STATUSES];
    uint64_t latency_bucket[GF_ROUTE_COUNT][GF_METRIC_BUCKETS]; // cumulative at render time
    double latency_sum[GF_ROUTE_COUNT];
    uint64_t latency_count[GF_ROUTE_COUNT];
    uint64_t upstream_errors;
    uint64_t bytes_in, bytes_out;
    uint64_t conns_accepted, conns_refused, conns_timed_out;
    int64_t open_streams;
    int64_t open_conns;
    int64_t inflight;
    uint64_t admission_refused;      // 503s of the global admission limit
};

void gf_metrics_request(struct gf_metrics *m, enum gf_route route, int status, uint64_t ns);
int gf_metrics_render(const struct gf_metrics *m, struct gf_buf *out);
const char *gf_route_name(enum gf_route route);

/* ---- connections (conn.c) -------------------------------------------------------------- */

enum gf_conn_state {
    GF_CONN_IDLE,      // keep-alive, waiting for the first byte of a request
    GF_CONN_HEADERS,   // reading the request line and headers (header deadline)
    GF_CONN_BODY,      // reading the body (body deadline)
    GF_CONN_HANDLING,  // a request was dispatched; no read deadline
};

struct gf_conn {
    struct gf_gateway *gw;
    struct bufferevent *bev;         // owned by evhttp
    struct evhttp_connection *evcon; // owned by evhttp; NULL until registered
    struct event *timer;             // registration, then deadlines and kills
    struct event *watch;             // while handling: notices the client closing
    struct event *hold;              // keeps read interest while evhttp pauses reading (conn.c)
    struct event *flush;             // writes queued reply bytes later in this loop pass
    bool flush_requeued;             // flush ran once and put itself last in the pass
    bool flush_armed;                // flush is due in this pass (gf_conn_flush_soon)
    int fd;
    enum gf_conn_state state;
    int kill_status;                 // != 0: answer this status and close at the next timer run
    const char *kill_reason;         // static text for a 400, or NULL
    struct gf_reqscan scan;          // strict framing check of the current request (reqscan.c)
    struct gf_request *req;          // the request being handled, or NULL
};

/* Looks up the connection of an evhttp request (NULL if not tracked). */
struct gf_conn *gf_conn_of(struct gf_gateway *gw, struct evhttp_request *req);
/* A request on c is finished (reply written): wait for the next one. */
void gf_conn_request_done(struct gf_conn *c);
/* Reply bytes were queued on c (evhttp_send_*): they are written later in this pass of the
 * loop, without waiting for a writability event. c may be NULL (untracked: nothing done). Call
 * it before the evhttp_send_* call that may complete the request, which can free c. */
void gf_conn_flush_soon(struct gf_conn *c);
/* Moves the bytes of b to c's output when a write of queued reply bytes is due in this pass
 * (evhttp was given the first of them and set up the write): they go out in the same write.
 * Returns false, having moved nothing, otherwise (c NULL, nothing queued, out of memory): the
 * caller then sends them the evhttp way. */
bool gf_conn_join_pending(struct gf_conn *c, struct evbuffer *b);
struct bufferevent *gf_conn_bevcb(struct event_base *base, void *arg);
/* A reply header the pipeline keeps for a request until the reply is written (borrowed). */
struct gf_reply_hdr {
    const char *name, *value;
};

/* Sends a complete 200 reply to req on c (conn_reply.c): the request's output headers, the n_hdrs
 * headers hdrs (the pipeline's, not yet given to evhttp), then Content-Type ctype, Server-Timing timing (NULL: none), Date date, Content-Length and body (len
 * bytes, borrowed). Returns false, having sent nothing, when the request
 * is not the common case it covers (c NULL, not HTTP/1.1 keep-alive, HEAD, ...): the caller then
 * sends with evhttp_send_reply. */
bool gf_conn_send_ok(struct gf_conn *c, struct evhttp_request *req,
                     const struct gf_reply_hdr *hdrs, size_t n_hdrs, const char *ctype,
                     const char *timing, const char *date, const char *body, size_t len);
/* Starts a streamed 200 reply to req on c (conn_reply.c): the head evhttp_send_reply_start
 * would write (with hdrs as for gf_conn_send_ok) after Content-Type: text/event-stream, Cache-Control: no-cache,
 * X-Accel-Buffering: no and Date date, then Transfer-Encoding: chunked. scratch is an empty
 * buffer, left empty. Returns false, having sent nothing, when the request is not covered (see
 * gf_conn_send_ok): the caller then starts the reply with evhttp_send_reply_start. Once it
 * returned true the caller frames each chunk itself (gf_conn_frame_chunk) and sends it with
 * evhttp_send_reply_chunk, ends with the last chunk "0\r\n\r\n" sent the same way and then
 * evhttp_send_reply_end. */
bool gf_conn_stream_start(struct gf_conn *c, struct evhttp_request *req,
                          const struct gf_reply_hdr *hdrs, size_t n_hdrs, const char *date,
                          struct evbuffer *scratch);
/* Appends n bytes of p as one chunk of HTTP/1.1 chunked encoding to b, as evhttp frames it.
 * Returns 0 or GF_ENOMEM. */
int gf_conn_frame_chunk(struct evbuffer *b, const char *p, size_t n);

/* ---- the server ------------------------------------------------------------------------ */

#define GF_SPARE_REQUESTS 64
#define GF_JSON_BLOCKS 64      // arena blocks for request bodies (gf_json_arena)
#define GF_JSON_BLOCK 4096     // bytes each: the values of a body up to 1-2 KiB of JSON

struct gf_gateway {
    struct event_base *base;
    const struct gf_config *cfg;
    struct gf_engine *engine;        // borrowed
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    int port;
    struct gf_hooks hooks[GF_MAX_HOOKS];
    size_t n_hooks;
    struct gf_request *inflight;     // doubly linked list of live requests
    // Finished request structs kept for the next requests: at 1.4 KiB a calloc of one was past
    // the allocator's per-thread cache, a slow path on every request.
    struct gf_request *spare_reqs[GF_SPARE_REQUESTS];
    size_t n_spare_reqs;
    // The client body's JSON tree is parsed into a block of this region, one block a request
    // while it lasts, rather than a malloc and a free for every value (gf_json_arena). NULL
    // (out of memory, or another gateway of the process has the region): the heap.
    char *json_region;
    char *json_free[GF_JSON_BLOCKS]; // blocks not in use
    size_t n_json_free;
    struct gf_conn **conns;          // indexed by fd
    size_t conns_cap;
    struct gf_metrics metrics;
    uint64_t id_prefix;              // random per process: request ids are prefix + counter
    uint64_t id_seq;
    int64_t started_s;
    int64_t gen_inflight;            // generation requests admitted (admission.c)
    int64_t rss_last;                // last sampled resident memory, bytes
    uint64_t rss_at_ns;              // when it was sampled
    int64_t date_s;                  // the second date[] shows (gf_gateway_http_date)
    char date[32];                   // "Sun, 06 Nov 1994 08:49:37 GMT"
};

/* ---- admission (admission.c) ----------------------------------------------------------- */

/* Admits one generation request (0), or refuses it with GF_EAGAIN (503 + Retry-After) when
 * limits.max_inflight are in flight or the resident memory is over limits.max_rss_bytes. Each
 * 0 return must be paired with one gf_admission_leave. */
int gf_admission_enter(struct gf_gateway *gw, struct gf_err *err);
void gf_admission_leave(struct gf_gateway *gw);
/* Resident memory of this process in bytes, or -1 when /proc cannot be read. */
int64_t gf_rss_bytes(void);

/* Entry from the HTTP layer: a complete request arrived (pipeline.c). */
void gf_pipeline_dispatch(struct gf_gateway *gw, struct evhttp_request *req);
/* The client connection of r closed. */
void gf_pipeline_client_gone(struct gf_request *r);
/* Ends every in-flight request (503) and frees those still waiting for an audit. */
void gf_pipeline_shutdown(struct gf_gateway *gw);
/* Frees the kept request structs (gf_gateway_free, once no request can end any more). */
void gf_pipeline_free_spares(struct gf_gateway *gw);
/* Sets up gw's JSON arena blocks (none without memory: bodies then parse on the heap), and
 * frees them once no request is left. */
void gf_pipeline_json_open(struct gf_gateway *gw);
void gf_pipeline_json_close(struct gf_gateway *gw);
/* Writes a generated request id into out (at least GF_REQID_MAX + 1 bytes). */
void gf_gateway_new_id(struct gf_gateway *gw, char *out);
/* The current time as an HTTP Date header value (RFC 9110 IMF-fixdate), formatted once a
 * second: borrowed, valid until the next call. */
const char *gf_gateway_http_date(struct gf_gateway *gw);
/* True when s is an acceptable client-supplied request id. */
bool gf_request_id_valid(const char *s);

#endif
