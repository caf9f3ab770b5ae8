/* upstream_engine_int.h — the state shared by the files of the upstream engine: the engine
 * (struct gf_up), its targets and their health checks, and one generation (struct gf_gen).
 * upstream.c owns generations and the engine ops, upstream_loop.c the libcurl/libevent glue,
 * upstream_health.c the targets. Everything here runs on the engine's event loop thread. */
#ifndef GF_UPSTREAM_ENGINE_INT_H
#define GF_UPSTREAM_ENGINE_INT_H

#include <curl/curl.h>
#include <event2/event.h>
#include <sys/socket.h>

#include "engine/engine.h"

#define GF_UP_USER_AGENT "User-Agent: gardefou/" GF_VERSION
#include "engine/upstream_int.h"

#define GF_UP_MAX_MODELS  256

enum gf_up_xfer_kind { GF_UP_XFER_GEN, GF_UP_XFER_HEALTH };

/* What CURLOPT_PRIVATE points at: the first member of a gen and of a health check. */
struct gf_up_xfer {
    enum gf_up_xfer_kind kind;
};

struct gf_up_target;
struct gf_up_conn;

struct gf_up_health {
    struct gf_up_xfer x;
    struct gf_up_target *t;
    CURL *easy;
    struct curl_slist *headers;
    struct gf_buf body;
    bool running;
};

struct gf_up_target {
    char *chat_url, *compl_url, *models_url;  // base + "/v1/..."
    // The generation URLs parsed once: curl otherwise parses the URL string on every transfer.
    // NULL when curl's parser refused it (the transfer then fails with curl's own error).
    CURLU *chat_uh, *compl_uh;
    size_t index;
    bool healthy;
    struct gf_up_health hc;
    /* The native client (upstream_native.c) for a plain http:// URL without user, query or
     * fragment: the heads it sends ([0] chat, [1] completions; [.][1] streamed) up to the
     * request id and length, and the address it connects to. An IP literal's address is known
     * at once; a host name's is the one libcurl last connected to (its health check), so no
     * name is resolved on the loop, and it is forgotten when a connect to it fails. */
    bool native;
    bool addr_literal, have_addr;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char *nat_head[2][2];
    size_t nat_head_len[2][2];
    struct gf_up_conn *idle;     // kept-alive native connections, most recent first
};

#define GF_UP_SPARE_EASY 32
/* Finished generations kept for reuse (their struct, timer event and reply buffer). */
#define GF_UP_SPARE_GENS 32
/* A kept generation keeps its reply buffer only up to this capacity. */
#define GF_UP_SPARE_RAW  (64 * 1024)

struct gf_up {
    struct gf_engine engine;
    struct event_base *base;
    CURLM *multi;
    struct event *curl_timer;    // curl's own timeouts
    struct event *health_timer;
    struct gf_up_target *targets;
    size_t n_targets, rr;
    char *auth_header;           // "Authorization: Bearer KEY" or NULL
    char *model_override;
    char **models;               // configured, or learned from /v1/models: a fixed array,
                                 // appended to only, so ids handed out stay valid
    size_t n_models;
    bool models_configured;
    int connect_ms, request_ms, health_ms;
    size_t max_reply;
    bool no_quickack;
    int in_curl;                 // > 0 while inside curl_multi_socket_action
    size_t n_deferred;           // gens waiting to be added or destroyed after it returns
    struct gf_gen *gens;         // every live generation
    // Easy handles of finished generations, kept for the next ones: creating and freeing one
    // per request (a large zeroed struct, its buffers, ~90 option frees) was a tenth of the
    // loop's instructions. They keep the options every generation sets (common ones included).
    CURL *spare[GF_UP_SPARE_EASY];
    size_t n_spare;
    // Generation structs of finished transfers: a fresh one was a 2 KiB calloc, a timer event
    // and a reply buffer grown from nothing per request.
    struct gf_gen *spare_gens[GF_UP_SPARE_GENS];
    size_t n_spare_gens;
    // The request headers every generation sends, built once: [0] non-streamed, [1] streamed
    // (Content-Type, Accept, Expect, Authorization). A generation puts its own nodes in front
    // (struct gf_gen's ua_header, then rid_header with a request id); curl only reads the
    // list. The User-Agent is one of these rather than CURLOPT_USERAGENT, from which curl
    // formats the line anew, a byte at a time, for every transfer.
    struct curl_slist *fixed_headers[2];
    bool curl_only;              // upstream.client = curl: no native client
    size_t n_idle;               // idle native connections over all targets
    // Watches of curl's sockets, indexed by fd: they outlive curl's interest in a kept-alive
    // connection between transfers (upstream_loop.c) and are freed when curl closes the fd.
    struct gf_up_sock **socks;
    size_t socks_cap;
};

struct gf_gen {
    struct gf_up_xfer x;
    struct gf_up *u;
    struct gf_gen *prev, *next;
    CURL *easy;                    // a libcurl transfer, or NULL
    struct gf_up_conn *conn;       // a native transfer's connection, or NULL
    bool native;                   // the current attempt runs on the native client
    bool in_native;                // inside the native client's read handler: cancel defers
    bool native_retried;           // a dead kept-alive connection was replaced once
    struct curl_slist ua_header;   // GF_UP_USER_AGENT, first
    struct curl_slist rid_header;  // "x-request-id: ..." in front of u->fixed_headers[stream]
    char rid[96];
    struct curl_slist *headers;    // what a libcurl attempt sends: ua_header and what follows
    char *body;
    size_t body_len;
    gf_gen_event_fn cb;
    void *ud;
    enum gf_gen_kind kind;
    bool stream;
    struct event *timer;         // total (non-streamed) or idle (streamed) deadline
    size_t target;               // index of the target in use
    size_t attempts;
    int prompt_est;
    curl_socket_t sock;          // the socket curl last reported for this transfer, or BAD
    bool in_multi, add_pending, zombie;
    bool cancelled;              // no event may be delivered any more
    bool busy;                   // gen_finish is delivering events: cancel must not free
    bool got_bytes, sent_any, is_sse, headers_seen;
    bool head_acked;             // the ACK of a response head read by another call was forced
    long status;
    int fail_code, fail_status;  // an error found inside curl's write callback
    char fail_msg[256];
    struct gf_sse sse;
    struct gf_buf raw;           // a non-streamed body, or an error body
    struct gf_up_reply reply;
};

/* Idle upstream connections kept open for reuse (over all targets). */
#define GF_UP_IDLE_CONNECTIONS 64

/* ---- upstream_loop.c: libcurl driven by libevent ------------------------------------------- */

/* Sends a pending delayed ACK on fd at once (TCP_QUICKACK, not sticky): the workaround for an
 * upstream that writes head and body apart without TCP_NODELAY; both clients use it. */
void gf_up_quickack(int fd);
/* Sets the multi handle's socket and timer callbacks and creates curl's timer event. */
int gf_up_loop_setup(struct gf_up *u);
/* Frees the socket watches left after curl_multi_cleanup (normally none). */
void gf_up_loop_cleanup(struct gf_up *u);
/* Adds g's transfer to the multi handle now, or after the current curl call returns. */
int gf_up_gen_start(struct gf_gen *g);
/* Removes g's transfer from the multi handle if it is there. */
void gf_up_gen_stop(struct gf_gen *g);
/* Sets the easy options every transfer (generation or health check) shares; GF_ENOMEM when
 * curl could not copy one. */
int gf_up_common_easy_opts(struct gf_up *u, CURL *easy);
/* Points easy at target t's URL for a generation of kind: 0 or GF_ENOMEM. */
int gf_up_set_gen_url(CURL *easy, const struct gf_up_target *t, enum gf_gen_kind kind);

/* ---- upstream_native.c: the own HTTP/1.1 client of plain http:// targets -------------------- */

/* Sets up target t's native client from its parsed URLs when they qualify (t->native). False
 * only when out of memory. */
bool gf_up_native_target_init(struct gf_up *u, struct gf_up_target *t);
void gf_up_native_target_cleanup(struct gf_up *u, struct gf_up_target *t);
/* Notes the address libcurl connected to for target t (after a health check or a transfer), for
 * a host-name target whose address is not known. */
void gf_up_native_learn(struct gf_up_target *t, CURL *easy);
/* True when g's next attempt (on g->target) can use the native client. */
bool gf_up_native_usable(const struct gf_gen *g);
/* Starts g on the native client: an idle connection of its target or a new one. Never delivers
 * an event from inside the call; failures come later through gf_up_gen_finish. 0 or GF_EIO
 * (no socket could be made) or GF_ENOMEM. */
int gf_up_native_start(struct gf_gen *g);
/* Drops g's native connection (closed: its reply is not complete). */
void gf_up_native_abort(struct gf_gen *g);

/* ---- upstream_health.c: targets ------------------------------------------------------------ */

bool gf_up_any_healthy(const struct gf_up *u);
/* The next target in round-robin order, preferring healthy ones, skipping avoid (SIZE_MAX for
 * none) unless it is the only one. */
size_t gf_up_pick_target(struct gf_up *u, size_t avoid);
void gf_up_set_health(struct gf_up_target *t, bool ok, const char *why);
/* Sets up target i's URLs and health-check handle; returns false on allocation failure. */
bool gf_up_target_init(struct gf_up *u, size_t i, const char *base_url);
void gf_up_target_cleanup(struct gf_up *u, struct gf_up_target *t);
/* The health timer: probes every target, then re-arms itself when checks are periodic. */
void gf_up_health_timer_cb(evutil_socket_t fd, short what, void *arg);
void gf_up_health_done(struct gf_up *u, struct gf_up_health *h, CURLcode rc);

/* ---- upstream.c: generations --------------------------------------------------------------- */

/* A finished transfer: fail over, or deliver the remaining events and the final one. The native
 * client reports its outcomes with the CURLcode libcurl would give for them. */
void gf_up_gen_finish(struct gf_gen *g, CURLcode rc);
/* Starts g's transfer on g->target with the native client or libcurl. */
int gf_up_gen_launch(struct gf_gen *g);
/* Body bytes of g's reply (status and content type already noted); false stops the transfer. */
bool gf_up_gen_body(struct gf_gen *g, const char *p, size_t len);
/* Notes the reply's status and content type, once, before its first body byte. */
void gf_up_gen_head(struct gf_gen *g, long status, const char *ctype);
void gf_up_gen_destroy(struct gf_gen *g);

#endif
