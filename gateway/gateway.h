/* gateway.h — the gateway component: configuration, the OpenAI-compatible HTTP server and the
 * request pipeline that other components (keys, rate limits, policy, audit) plug into.
 *
 * Everything here runs on one libevent loop. A request moves through the stages of
 * gateway/pipeline.c: (1) parse + limits, (2) authenticate, (3) admit, (4) input filters,
 * (5) engine, (6) output filters per delta, (7) reply + charge, (8) audit; every request ends in
 * exactly one place (request_end in pipeline.c), which records metrics and runs the end hooks. */
#ifndef GF_GATEWAY_H
#define GF_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "engine/engine.h"

struct event_base;
struct cJSON;

/* ---- configuration (gateway/config.c) -------------------------------------------------- */

/* The whole configuration of `gardefou serve`. Filled by gf_config_init (defaults), then a JSON
 * file (gf_config_load_file), then command-line overrides (gf_config_set). Strings and lists are
 * owned by the struct; gf_config_cleanup frees them. To add a setting: add a field here and one
 * row to the table in config.c, and document it in docs/config.md. */
struct gf_config {
    /* server */
    char *listen;               // "HOST:PORT"
    char *data_dir;
    char *log_level;            // debug|info|warn|error|off
    int64_t shutdown_grace_ms;  // on SIGTERM, time given to in-flight requests
    /* limits */
    int64_t max_header_bytes;   // request line + headers
    int64_t max_body_bytes;
    int64_t header_timeout_ms;  // absolute: from connection start (or end of previous reply)
    int64_t body_timeout_ms;    // absolute: from the end of the headers
    int64_t idle_timeout_ms;    // keep-alive connection without a request
    int64_t write_timeout_ms;   // a reply that the client does not read
    int64_t max_connections;
    int64_t max_inflight;       // generation requests at once; 0 = no limit (admission.c)
    int64_t max_rss_bytes;      // refuse generations above this resident memory; 0 = off
    int64_t max_choices;        // upper bound of "n"
    int64_t max_messages;
    int64_t max_stop;           // entries of "stop"
    /* streaming */
    int64_t ping_interval_ms;   // SSE comment pings while a stream waits; 0 = off
    /* upstream engine */
    char **upstream_urls;
    size_t n_upstream_urls;
    char *upstream_api_key;
    char **upstream_models;
    size_t n_upstream_models;
    int64_t upstream_connect_timeout_ms;
    int64_t upstream_request_timeout_ms;
    int64_t upstream_health_interval_ms;
    int64_t upstream_max_response_bytes;
    char *upstream_client;          // auto|curl
    /* embedded engine */
    char *model_path;
    char *model_id;
    int64_t model_ctx;
    int64_t model_threads;
    int64_t model_max_seqs;
    char *model_chat_template;
    /* keys and per-key limits (docs/keys.md) */
    bool keys_open_mode;        // serve requests without a key (unlimited)
    char *keys_admin_listen;    // admin API "HOST:PORT"; NULL = listen's port + 1; "off"
    char *keys_default_group;
    int64_t keys_rotate_grace_ms;
    int64_t keys_abuse_max_blocks;
    int64_t keys_abuse_window_ms;
    int64_t keys_recheck_ms;
    int64_t keys_snapshot_every;
    int64_t keys_usage_snapshot_ms;
    bool keys_allow_core_dumps;
    int64_t limits_default_rpm; // limits of keys created without them; 0 = unlimited
    int64_t limits_default_tpm;
    int64_t limits_default_max_concurrent;
    int64_t limits_default_daily_tokens;
    /* content policy (docs/policy.md) */
    char *policy_file;              // NULL = the built-in default policy
    char *policy_classifiers;       // NULL = the default model if present; "none" = no model
    /* audit log (docs/audit.md) */
    char *audit_dir;                // NULL = DATA_DIR/audit
    char *audit_hmac_key_file;      // NULL = DATA_DIR/audit.key
    char *audit_retention;          // hashes|redacted|full
    char *audit_durability;         // fsync|write|none
    bool audit_fail_closed;
    int64_t audit_checkpoint_every;
    int64_t audit_checkpoint_interval_ms;
    int64_t audit_segment_max_bytes;
    int64_t audit_commit_interval_ms;
    int64_t audit_commit_max_records;
    int64_t audit_retry_interval_ms;
};

enum gf_config_type { GF_CFG_STRING, GF_CFG_INT, GF_CFG_BOOL, GF_CFG_STRING_LIST };

/* One row of the configuration table: the dotted key path in the JSON file, the type, the
 * range (ints) and the default written as a string, parsed like a command-line value. For a
 * STRING_LIST, offset is the char ** field and count_offset the size_t count beside it. */
struct gf_config_row {
    const char *path;
    enum gf_config_type type;
    int64_t min, max;
    const char *def;            // NULL: no default (empty string/list)
    size_t offset;
    size_t count_offset;
    const char *doc;            // one line for --help and docs/config.md
};

/* The table (config.c), terminated by a row with path NULL. */
extern const struct gf_config_row gf_config_rows[];

/* Sets every field to its default. Returns GF_ENOMEM (and leaves cfg cleaned up) on failure. */
int gf_config_init(struct gf_config *cfg);
void gf_config_cleanup(struct gf_config *cfg);
/* Loads a JSON config file over cfg. Errors read "FILE: key.path: reason" in err; returns
 * GF_EIO (unreadable), GF_EFORMAT (not JSON) or GF_EINVAL (unknown key, type, range). */
int gf_config_load_file(struct gf_config *cfg, const char *file, struct gf_err *err);
/* Same over a JSON text; name is used in messages. */
int gf_config_load_text(struct gf_config *cfg, const char *name, const char *text, size_t len,
                        struct gf_err *err);
/* Sets one key from a string as given on the command line ("8080", "true", "a,b"). A
 * STRING_LIST value is appended to when append is true, replaced otherwise. */
int gf_config_set(struct gf_config *cfg, const char *path, const char *value, bool append,
                  struct gf_err *err);
const struct gf_config_row *gf_config_find(const char *path);

/* ---- errors (gateway/errors.c) --------------------------------------------------------- */

/* Maps a GF_E* code to the HTTP status and the OpenAI error "type" and "code" strings. */
struct gf_http_error {
    int status;
    const char *type;   // "invalid_request_error", "server_error", ...
    const char *code;   // machine-readable code or NULL
};
struct gf_http_error gf_http_error_of(int code);
/* Appends {"error":{"message":..,"type":..,"param":..,"code":..}} to out. param may be NULL. */
int gf_http_error_json(struct gf_buf *out, const struct gf_http_error *he, const char *message,
                       const char *param);

/* ---- the server (gateway/server.c) ----------------------------------------------------- */

struct gf_gateway;
struct gf_request;

/* Creates the server on base with cfg (borrowed; must outlive the gateway) and engine (borrowed;
 * may be NULL until gf_gateway_set_engine, the gateway answers 503 on /readyz and API routes
 * meanwhile). Does not bind yet. */
int gf_gateway_new(struct event_base *base, const struct gf_config *cfg, struct gf_gateway **out,
                   struct gf_err *err);
void gf_gateway_set_engine(struct gf_gateway *gw, struct gf_engine *engine);
/* Binds cfg->listen (port 0 picks a free port; gf_gateway_port tells which). */
int gf_gateway_listen(struct gf_gateway *gw, struct gf_err *err);
int gf_gateway_port(const struct gf_gateway *gw);
/* Closes the listening socket (graceful stop); open connections are served on. */
void gf_gateway_stop_listening(struct gf_gateway *gw);
/* Stops accepting, cancels in-flight generations (their clients get an error) and frees
 * everything. NULL is a no-op. The engine is not closed. */
void gf_gateway_free(struct gf_gateway *gw);
/* Number of requests in flight (between parse and end). */
size_t gf_gateway_inflight(const struct gf_gateway *gw);
/* True when no request is in flight and every reply has been written to its socket: a
 * graceful stop may free the gateway without cutting a reply short. */
bool gf_gateway_idle(const struct gf_gateway *gw);

/* Ends every in-flight request whose key id equals key_id (a revoked key): streams get an error
 * event and [DONE], waiting requests an error reply, generations are cancelled. Returns how many
 * requests were ended. Safe to call from a hook. */
size_t gf_gateway_cancel_key(struct gf_gateway *gw, const char *key_id, int code,
                             const char *message);

/* ---- pipeline hooks (gateway/pipeline.c) ----------------------------------------------- */

/* Components plug into the request pipeline through a struct of optional callbacks, added at
 * start with gf_gateway_add_hooks (before any request). Hooks run in the order added. Each
 * synchronous hook returns 0 to go on, or a GF_E* code with err set to end the request with
 * the mapped HTTP status (gf_http_error_of), e.g. GF_EPERM → 401, GF_ELIMIT → 429,
 * GF_EPOLICY → 400 content_policy_violation. ud is the hooks' own pointer. */
struct gf_hooks {
    const char *name;
    void *ud;
    /* (2) Authenticate: read headers with gf_request_header, then gf_request_set_key. */
    int (*authenticate)(void *ud, struct gf_request *r, struct gf_err *err);
    /* (3) Admission: rate limits, concurrency, token reservation. */
    int (*admit)(void *ud, struct gf_request *r, struct gf_err *err);
    /* (4) Input filters: may rewrite the messages/prompt through gf_request_gen (the strings
     * must then live in the request arena: gf_request_strdup). */
    int (*input)(void *ud, struct gf_request *r, struct gf_err *err);
    /* (6) Output filter for one choice: text[0..len) is new text (after earlier hooks); append
     * what may be sent now to out (hold back or rewrite as needed). final is set on the last
     * call of a choice: flush what was held back. Return GF_EPOLICY to cut the choice: the
     * client then sees finish_reason "content_filter". */
    int (*output)(void *ud, struct gf_request *r, int index, const char *text, size_t len,
                  bool final, struct gf_buf *out, struct gf_err *err);
    /* (7) End of any request that passed admission (success, error, disconnect, revocation):
     * release reservations, charge usage (gf_request_usage). Never fails. */
    void (*release)(void *ud, struct gf_request *r);
    /* (8) Audit: record the request (gf_request_* accessors) and call done(r, rc) once the
     * record is durable; the reply is sent only then. done may be called from inside audit.
     * A failing rc turns a not-yet-started reply into a 500. */
    void (*audit)(void *ud, struct gf_request *r, void (*done)(struct gf_request *r, int rc));
    /* POST /v1/moderations (after authenticate and admit): the first hook that has it writes
     * the whole JSON reply body to out. body is the parsed request (borrowed). */
    int (*moderate)(void *ud, struct gf_request *r, const struct cJSON *body, struct gf_buf *out,
                    struct gf_err *err);
};

/* Adds hooks (copied). Returns GF_ENOMEM or GF_ETOOBIG (too many hook sets). */
int gf_gateway_add_hooks(struct gf_gateway *gw, const struct gf_hooks *hooks);

/* ---- request accessors for hooks (gateway/pipeline.c) ------------------------------------ */

enum gf_route {
    GF_ROUTE_NONE = 0,
    GF_ROUTE_CHAT,
    GF_ROUTE_COMPLETIONS,
    GF_ROUTE_MODELS,
    GF_ROUTE_HEALTHZ,
    GF_ROUTE_READYZ,
    GF_ROUTE_METRICS,
    GF_ROUTE_OTHER,
    GF_ROUTE_MODERATIONS,
    GF_ROUTE_COUNT
};

const char *gf_request_id(const struct gf_request *r);
enum gf_route gf_request_route(const struct gf_request *r);
/* A request header (case-insensitive name), borrowed for the request's life; NULL if absent
 * or the client is gone. */
const char *gf_request_header(struct gf_request *r, const char *name);
/* The generation request as parsed (stage 1 on). Hooks may modify it in stage (4). */
struct gf_gen_request *gf_request_gen(struct gf_request *r);
/* The parsed JSON body (borrowed), or NULL for routes without one. */
struct cJSON *gf_request_body(struct gf_request *r);
/* Records the authenticated key id (copied, at most 63 bytes) used by gf_gateway_cancel_key. */
int gf_request_set_key(struct gf_request *r, const char *key_id);
const char *gf_request_key(const struct gf_request *r);
/* Adds a header to the reply (e.g. x-ratelimit-*), for hooks up to the start of the reply;
 * GF_EINVAL once the reply has started or the client is gone (keys_gate.c). */
int gf_request_add_header(struct gf_request *r, const char *name, const char *value);
/* Per-hook state: slot is the hooks' position (0-based, in add order). */
void gf_request_set_state(struct gf_request *r, size_t slot, void *state);
void *gf_request_state(const struct gf_request *r, size_t slot);
/* Arena-lifetime string copy, freed when the request ends. NULL on allocation failure. */
char *gf_request_strdup(struct gf_request *r, const char *s, size_t len);
/* Usage so far (final at release/audit). */
struct gf_gen_usage gf_request_usage(const struct gf_request *r);
/* The text produced for choice index so far (after output filters), or NULL. */
const char *gf_request_output(const struct gf_request *r, int index, size_t *len);
int gf_request_n_choices(const struct gf_request *r);
/* Streams: members (e.g. "\"gardefou\":{...}", valid JSON object members without the braces)
 * added to the top level of choice index's last chunk, the one with its finish_reason; an
 * output hook sets them before it reports the choice final or cut. NULL removes them.
 * GF_EINVAL (no such choice), GF_ENOMEM. */
int gf_request_set_final_json(struct gf_request *r, int index, const char *members);
/* How the request ended (valid in release/audit): HTTP status, GF_E* code (0 = success), the
 * finish reason of choice 0 (or NULL) and the error message (or ""). */
int gf_request_status(const struct gf_request *r);
int gf_request_error(const struct gf_request *r, const char **message);
const char *gf_request_finish_reason(const struct gf_request *r);
bool gf_request_streamed(const struct gf_request *r);
uint64_t gf_request_start_ns(const struct gf_request *r);
/* The policy group of the request's key (copied, at most 63 bytes; set by the authenticate
 * hook). gf_request_group returns NULL when none was set: the policy's default group applies. */
int gf_request_set_group(struct gf_request *r, const char *group);
const char *gf_request_group(const struct gf_request *r);
/* Number of hook sets added so far: the slot the next gf_gateway_add_hooks will occupy. */
size_t gf_gateway_hooks_count(const struct gf_gateway *gw);

/* ---- keys, limits and the admin API in `gardefou serve` (gateway/keys_serve.c) ------------ */

struct gf_keys_serve;

/* Opens the key store (DATA_DIR/keys), joins the pipeline (authenticate, admit, output,
 * release hooks: add it before the policy and audit hooks), loads or creates the admin key and
 * starts the admin API on keys.admin_listen. Logs whether keys are enforced or open. Stop it
 * with gf_keys_serve_stop after gf_gateway_free. engine may be NULL (tokens are estimated). */
int gf_keys_serve_start(struct event_base *base, struct gf_gateway *gw, struct gf_engine *engine,
                        const struct gf_config *cfg, struct gf_keys_serve **out,
                        struct gf_err *err);
void gf_keys_serve_stop(struct gf_keys_serve *ks);
/* The admin API's port, or 0 when keys.admin_listen is "off". */
int gf_keys_serve_admin_port(const struct gf_keys_serve *ks);
/* Writes "http://HOST:PORT" of the admin API into out, or "" when it is off. */
void gf_keys_serve_admin_url(const struct gf_keys_serve *ks, char *out, size_t outlen);
/* POST /admin/v1/policy/reload: reloads and appends a JSON object about the result to out. */
void gf_keys_serve_set_policy_reload(struct gf_keys_serve *ks,
                                     int (*fn)(void *ud, struct gf_buf *out, struct gf_err *err),
                                     void *ud);
/* The abuse setting of the current policy, asked at each policy block: may overwrite
 * *max_blocks and *window_ms (the keys.abuse_* config otherwise). */
void gf_keys_serve_set_abuse(struct gf_keys_serve *ks,
                             void (*fn)(void *ud, int64_t *max_blocks, int64_t *window_ms),
                             void *ud);
/* Admin events for the audit log: action ("key_created", "key_revoked", "key_rotated",
 * "key_updated", "key_expiry_set", "key_suspended", "key_unsuspended"), key id, group, and a
 * detail text or NULL (e.g. why a key was suspended). Never a secret. */
void gf_keys_serve_set_events(struct gf_keys_serve *ks,
                              void (*fn)(void *ud, const char *action, const char *key_id,
                                         const char *group, const char *detail),
                              void *ud);

/* ---- content policy (gateway/moderation_load.c, gateway/filters.c) ---------------------- */

struct gf_clf_registry;
struct gf_policy;

/* Loads the classifier registry: the trained model at model, or when model is NULL the
 * default model (gf_clf_default_model_path) if that file exists; "" loads none. The registry
 * may be empty. Caller unrefs *out. */
int gf_moderation_load_classifiers(const char *model, struct gf_clf_registry **out,
                                   struct gf_err *err);
/* Loads the policy file, or the built-in default policy when file is NULL or "". */
int gf_moderation_load_policy(const char *file, struct gf_clf_registry *reg,
                              struct gf_policy **out, struct gf_err *err);

/* The content policy in `serve` (gateway/filters.c): loads the classifiers (model, as in
 * gf_moderation_load_classifiers) and the policy (policy_file, or the built-in default), plugs
 * the input/output/moderation hooks into gw (add it after keys and limits, before audit), and
 * reloads the policy on SIGHUP. On error nothing is left behind. */
struct gf_filters;
int gf_filters_start(struct event_base *base, struct gf_gateway *gw, const char *policy_file,
                     const char *model, struct gf_filters **out, struct gf_err *err);
/* Frees f; call after gf_gateway_free. NULL is a no-op. */
void gf_filters_stop(struct gf_filters *f);
/* Loads the policy file again: validated first; on error the current policy stays, the error is
 * logged and returned. On success appends {"reloaded":true,"policy_version":..,"source":..,
 * "warnings":..} to out (when out is not NULL). Requests in flight keep their policy. */
int gf_filters_reload(struct gf_filters *f, struct gf_buf *out, struct gf_err *err);
/* The same with the admin API's callback shape (ud = f): gf_admin_set_policy_reload(admin,
 * gf_filters_admin_reload, f) serves POST /admin/v1/policy/reload. */
int gf_filters_admin_reload(void *ud, struct gf_buf *out, struct gf_err *err);
/* Makes SIGHUP reload through fn(ud, out, err) instead of gf_filters_reload, so that a signal
 * reload is recorded like the admin call (serve passes gf_audit_gate_reload and the gate). */
typedef int (*gf_filters_reload_fn)(void *ud, struct gf_buf *out, struct gf_err *err);
void gf_filters_set_sighup(struct gf_filters *f, gf_filters_reload_fn fn, void *ud);
/* The current policy (borrowed; take a reference to keep it), e.g. for gf_policy_abuse. */
struct gf_policy *gf_filters_policy(const struct gf_filters *f);
/* The current policy's abuse setting in the shape of gf_keys_serve_set_abuse's callback (ud =
 * f): overwrites *max_blocks and *window_ms when the policy has an "abuse" entry. */
void gf_filters_abuse(void *ud, int64_t *max_blocks, int64_t *window_ms);
/* Called on every block by the policy (phase "input" or "output"), e.g. to count blocks per
 * key for abuse suspension. */
typedef void (*gf_filters_block_fn)(void *ud, struct gf_request *r, const char *phase);
void gf_filters_set_block_cb(struct gf_filters *f, gf_filters_block_fn fn, void *ud);

/* ---- what the audit record holds (gateway/pipeline.c, gateway/audit_gate.c) -------------- */

struct gf_audit_verdict;
struct gf_audit;
struct gf_verdict;

/* The client's address, as the connection saw it ("" if unknown). */
const char *gf_request_client(const struct gf_request *r);
/* Policy hooks report each rule that fired, so the audit record lists it: phase "input" or
 * "output", the rule id, its category, its action (allow/flag/redact/block) and score (< 0 for
 * none). Strings are copied. Returns 0, GF_ENOMEM or GF_ETOOBIG (more than 256). */
int gf_request_note_verdict(struct gf_request *r, const char *phase, const char *rule,
                            const char *category, const char *action, double score);
/* The same for a whole policy verdict (every fired rule, and the policy version). */
int gf_audit_note_policy(struct gf_request *r, const char *phase, const struct gf_verdict *v);
int gf_request_set_policy_version(struct gf_request *r, const char *version);
const char *gf_request_policy_version(const struct gf_request *r);
/* The verdicts noted so far (borrowed until the request ends); returns how many. */
size_t gf_request_verdicts(const struct gf_request *r, const struct gf_audit_verdict **out);

/* The audit log in `gardefou serve` (gateway/audit_gate.c): opens the log from cfg's audit.*
 * keys and plugs two hooks into gw: a fail-closed check (503 + Retry-After while the log cannot
 * be written, unless audit.fail_closed is false) and the record of every API request, whose
 * reply waits for it. Add it before the other components' hooks so the check runs first. */
struct gf_audit_gate;
int gf_audit_gate_start(struct event_base *base, struct gf_gateway *gw,
                        const struct gf_config *cfg, struct gf_audit_gate **out,
                        struct gf_err *err);
/* Flushes and closes the log; call after gf_gateway_free (pending callbacks are dropped). NULL
 * is a no-op. */
void gf_audit_gate_stop(struct gf_audit_gate *g);
/* The log (borrowed), for admin actions: gf_audit_log_admin(gf_audit_gate_log(g), ...). */
struct gf_audit *gf_audit_gate_log(struct gf_audit_gate *g);
/* An admin event in the shape of gf_keys_serve_set_events' callback (ud = the gate): records
 * {"action","subject":key_id,"detail":{"group","detail"}}. */
void gf_audit_gate_admin_event(void *ud, const char *action, const char *key_id,
                               const char *group, const char *detail);
/* Policy reloads through the admin API, recorded: give the gate the real reload with
 * gf_audit_gate_set_reload, and hand gf_audit_gate_reload (ud = the gate) to the admin API in its
 * place; each call writes "policy_reloaded" {policy_version} or "policy_reload_failed" {error}. */
typedef int (*gf_audit_reload_fn)(void *ud, struct gf_buf *out, struct gf_err *err);
void gf_audit_gate_set_reload(struct gf_audit_gate *g, gf_audit_reload_fn fn, void *ud);
int gf_audit_gate_reload(void *ud, struct gf_buf *out, struct gf_err *err);

#endif
