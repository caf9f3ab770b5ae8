/* keys_int.h — API keys, their durable store, per-key rate limits and abuse suspension
 * (private to gateway/).
 *
 * A key is "gf_" + 22 base62 characters of kernel randomness (131 bits) + 6 base62 characters
 * of CRC-32 over the random part; a mistyped key fails the checksum before any lookup. The
 * store keeps only the SHA-256 digest of a secret, never the secret. The store and the limiter
 * sit behind ops structs (struct gf_keystore_ops, struct gf_limiter_ops) so that a shared
 * (e.g. Redis-backed) implementation can replace the local ones; keys.c speaks only to the ops.
 * Threading: the local store and limiter take a mutex per call, so any thread may call them. */
#ifndef GF_KEYS_INT_H
#define GF_KEYS_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* ---- key strings (apikey.c) ------------------------------------------------------------ */

#define GF_APIKEY_RANDOM_LEN 22 // base62 chars
#define GF_APIKEY_CHECK_LEN  6  // base62 chars of CRC-32
#define GF_APIKEY_LEN        (3 + GF_APIKEY_RANDOM_LEN + GF_APIKEY_CHECK_LEN) // 31
#define GF_APIKEY_BUFLEN     (GF_APIKEY_LEN + 1)
#define GF_KEYID_LEN         (4 + 16) // "key_" + 16 base62 chars
#define GF_KEYID_BUFLEN      (GF_KEYID_LEN + 1)
#define GF_KEYPREFIX_LEN     7 // "gf_" + the first 4 random chars, for display
#define GF_KEYPREFIX_BUFLEN  (GF_KEYPREFIX_LEN + 1)

/* Writes a fresh secret key and its NUL into out. Returns 0, or GF_EIO without randomness. */
int gf_apikey_generate(char out[GF_APIKEY_BUFLEN]);
/* Returns 0 when s[0..n) has the key format and a matching checksum, GF_EFORMAT otherwise.
 * Looks at nothing else: it tells a typo from a key, not a valid key from a revoked one. */
int gf_apikey_check(const char *s, size_t n);
/* The digest the store keys on: SHA-256 of the key string. */
void gf_apikey_digest(const char *s, size_t n, uint8_t out[GF_SHA256_LEN]);
/* Writes the display prefix of a well-formed key ("gf_" + 4 chars) into out. */
void gf_apikey_prefix(const char *key, char out[GF_KEYPREFIX_BUFLEN]);
/* Writes a fresh key id "key_XXXXXXXXXXXXXXXX" into out. Returns 0 or GF_EIO. */
int gf_apikey_new_id(char out[GF_KEYID_BUFLEN]);
/* True when s looks like a key id (the "key_" form above). */
bool gf_apikey_id_valid(const char *s);
/* Extracts the token of an Authorization header value "Bearer <token>" (scheme case-insensitive,
 * spaces around the token allowed). On success *tok and *len point into value (borrowed) and it
 * returns 0; a missing or other scheme gives GF_EINVAL, a token that is not a well-formed key
 * GF_EFORMAT. value may be NULL (no header: GF_EINVAL). */
int gf_apikey_from_header(const char *value, const char **tok, size_t *len);
/* Fills out[0..n) with uniform base62 characters from the kernel CSPRNG (no NUL); 0 or GF_EIO. */
int gf_apikey_random_b62(char *out, size_t n);
/* CRC-32 (IEEE 802.3, reflected, as zlib); also frames the journal records. */
uint32_t gf_crc32(uint32_t crc, const void *p, size_t n);

/* ---- key records (keyrec.c) ------------------------------------------------------------ */

#define GF_KEY_NAME_MAX   128 // bytes of UTF-8, no control characters
#define GF_KEY_GROUP_MAX  64  // [A-Za-z0-9_.-]
#define GF_KEY_REASON_MAX 128

/* Limits; 0 means unlimited for each. */
struct gf_key_limits {
    int64_t rpm;            // requests per minute
    int64_t tpm;            // tokens (prompt + completion) per minute
    int64_t max_concurrent; // requests in flight at once
    int64_t daily_tokens;   // tokens per UTC day
};

/* One key as stored. Times are wall-clock ms since the epoch; 0 means "not set". */
struct gf_key {
    char id[GF_KEYID_BUFLEN];
    char prefix[GF_KEYPREFIX_BUFLEN];
    char name[GF_KEY_NAME_MAX + 1];
    char group[GF_KEY_GROUP_MAX + 1];
    uint8_t digest[GF_SHA256_LEN];
    bool has_old;                      // rotation: the previous secret still works until
    uint8_t old_digest[GF_SHA256_LEN]; // old_until (a grace period)
    int64_t old_until;
    struct gf_key_limits limits;
    int64_t created;
    int64_t expires;
    int64_t revoked;
    int64_t suspended;
    char suspend_reason[GF_KEY_REASON_MAX + 1];
    uint64_t seq; // journal sequence of the last change (set by the store)
};

/* Appends k in the store's format, one JSON object without newline, to b. */
int gf_keyrec_write(struct gf_buf *b, const struct gf_key *k);
/* Parses one stored record (JSON text s[0..n)) into *k. Every field is checked; the first
 * problem goes to err ("digest: expected 64 hex digits"). Returns 0, GF_EFORMAT or GF_ENOMEM. */
int gf_keyrec_parse(const char *s, size_t n, struct gf_key *k, struct gf_err *err);
/* Checks a name and a group against the rules above; returns 0 or GF_EINVAL with err set. */
int gf_keyrec_check_name(const char *name, struct gf_err *err);
int gf_keyrec_check_group(const char *group, struct gf_err *err);

/* ---- the store (keystore.c: local file store) ------------------------------------------ */

struct gf_keystore;

typedef int (*gf_key_visit_fn)(void *ud, const struct gf_key *k);

enum gf_key_match { GF_KEY_MATCH_CURRENT, GF_KEY_MATCH_OLD };

struct gf_keystore_ops {
    const char *name;
    /* Finds the key whose current or (rotation) old digest is d and copies it to *out; *match
     * says which digest matched. Returns 0 or GF_ENOTFOUND. Does not judge validity. */
    int (*lookup)(struct gf_keystore *ks, const uint8_t d[GF_SHA256_LEN], struct gf_key *out,
                  enum gf_key_match *match);
    /* Copies the key with this id to *out; 0 or GF_ENOTFOUND. */
    int (*get)(struct gf_keystore *ks, const char *id, struct gf_key *out);
    /* Inserts k or replaces the key with its id, durably: the change is on disk (fsync) when
     * this returns 0. A digest that belongs to another key gives GF_EINVAL. On any error the
     * store is unchanged. k->seq is assigned by the store. */
    int (*put)(struct gf_keystore *ks, const struct gf_key *k, struct gf_err *err);
    /* Calls fn for each key in creation order until fn returns non-zero (that value is
     * returned). fn must not call back into the store. */
    int (*list)(struct gf_keystore *ks, gf_key_visit_fn fn, void *ud);
    size_t (*count)(struct gf_keystore *ks);
    void (*close)(struct gf_keystore *ks);
};

struct gf_keystore {
    const struct gf_keystore_ops *ops;
    void *impl;
};

struct gf_keystore_file_opts {
    size_t snapshot_every; // journal records between snapshots; 0 = 1000
    bool no_fsync;         // tests and benchmarks only: skip fsync (durability off)
};

/* Opens (creating if needed) the store in dir (e.g. DATA_DIR/keys): loads snapshot.json, replays
 * journal.log, truncates a torn last record away (logged), and refuses a corrupted record
 * elsewhere with GF_EFORMAT naming it. opts may be NULL. Close with gf_keystore_close. */
int gf_keystore_open_file(const char *dir, const struct gf_keystore_file_opts *opts,
                          struct gf_keystore **out, struct gf_err *err);
/* Closes ks and frees it; NULL is a no-op. */
void gf_keystore_close(struct gf_keystore *ks);
/* Writes a snapshot now and empties the journal (the file store only; others return 0). */
int gf_keystore_file_snapshot(struct gf_keystore *ks, struct gf_err *err);

/* ---- rate limits (ratelimit.c: local limiter) ------------------------------------------ */

struct gf_limiter;

enum gf_rl_reason {
    GF_RL_OK = 0,
    GF_RL_REQUESTS,    // requests per minute
    GF_RL_TOKENS,      // tokens per minute
    GF_RL_CONCURRENCY, // too many requests in flight
    GF_RL_DAILY,       // the daily token quota
};

/* The clock of a decision: monotonic ns for the minute limits, wall ms for the UTC day. */
struct gf_rl_now {
    uint64_t mono_ns;
    int64_t wall_ms;
};

/* What the answer's x-ratelimit-* headers say. -1 in a limit means unlimited (no header). */
struct gf_rl_info {
    int64_t limit_requests, remaining_requests, reset_requests_ms;
    int64_t limit_tokens, remaining_tokens, reset_tokens_ms;
    int64_t retry_after_s;    // on refusal: seconds until a retry can succeed (>= 1)
    enum gf_rl_reason reason; // on refusal: which limit refused
};

/* A request's hold on the limiter, from admit to release (caller storage). */
struct gf_rl_ticket {
    void *slot; // the limiter's per-key state (opaque)
    struct gf_key_limits limits;
    int64_t tokens;  // tokens charged so far (prompt + completion)
    bool holds_conc; // counted in max_concurrent
    bool active;
};

struct gf_limiter_ops {
    const char *name;
    /* Admits one request of key_id under lim reserving prompt_tokens, or refuses it. On
     * admission fills *t, returns 0; on refusal returns GF_ELIMIT with info->reason and
     * retry_after_s set and changes nothing. info is filled either way. */
    int (*admit)(struct gf_limiter *l, const char *key_id, const struct gf_key_limits *lim,
                 int64_t prompt_tokens, struct gf_rl_now now, struct gf_rl_ticket *t,
                 struct gf_rl_info *info);
    /* Charges n completion tokens to t. Returns 0 while within budget; GF_ELIMIT once the
     * minute or daily budget is exhausted (the tokens are charged anyway: they were made). */
    int (*charge)(struct gf_limiter *l, struct gf_rl_ticket *t, int64_t n, struct gf_rl_now now,
                  struct gf_rl_info *info);
    /* Ends t's hold (max_concurrent); t becomes inactive. Idempotent. */
    void (*release)(struct gf_limiter *l, struct gf_rl_ticket *t);
    /* Counts one policy block for key_id at now; returns true when the key has now been
     * blocked more than max_blocks times within window_ms (the caller suspends it). */
    bool (*note_block)(struct gf_limiter *l, const char *key_id, int64_t max_blocks,
                       int64_t window_ms, struct gf_rl_now now);
    /* Forgets the block history of key_id (after an admin unsuspends it). */
    void (*clear_blocks)(struct gf_limiter *l, const char *key_id);
    /* Fills *info with key_id's state under lim at now and changes nothing: the headers of a
     * route that is not rate limited (GET /v1/models). */
    void (*peek)(struct gf_limiter *l, const char *key_id, const struct gf_key_limits *lim,
                 struct gf_rl_now now, struct gf_rl_info *info);
    /* The daily token counts, so that they survive a restart (keys_usage.c). A shared limiter
     * that keeps its own state leaves these NULL. usage_each calls fn for every key with tokens
     * counted (its UTC day number and tokens) and stops at fn's first non-zero return;
     * usage_restore sets a key's count for a day (a count of another day than the key's
     * current one is ignored when older); usage_version changes whenever a count does. */
    int (*usage_each)(struct gf_limiter *l,
                      int (*fn)(void *ud, const char *key_id, int64_t day, int64_t used),
                      void *ud);
    int (*usage_restore)(struct gf_limiter *l, const char *key_id, int64_t day, int64_t used);
    uint64_t (*usage_version)(struct gf_limiter *l);
    void (*close)(struct gf_limiter *l);
};

struct gf_limiter {
    const struct gf_limiter_ops *ops;
    void *impl;
};

int gf_limiter_open_local(struct gf_limiter **out);
void gf_limiter_close(struct gf_limiter *l);

/* The current time for decisions. */
struct gf_rl_now gf_rl_now(void);
/* Formats a duration as OpenAI's reset headers do: "1m30s", "6s", "250ms" (out >= 32 bytes). */
void gf_rl_format_reset(int64_t ms, char *out, size_t outlen);
typedef int (*gf_header_fn)(void *ud, const char *name, const char *value);
/* Emits the x-ratelimit-* headers of info (and Retry-After when refused) through fn. */
int gf_rl_headers(const struct gf_rl_info *info, bool refused, gf_header_fn fn, void *ud);
/* The OpenAI-style message and code of a refusal. */
const char *gf_rl_reason_message(enum gf_rl_reason r);

/* ---- daily token counts across restarts (keys_usage.c) --------------------------------- */

struct gf_keys;
/* Writes the limiter's daily counts as JSON into out: {"version":1,"saved_at":MS,"keys":[{"id",
 * "day","used"},...]}. */
int gf_keys_usage_dump(struct gf_keys *k, int64_t now_ms, struct gf_buf *out);
/* Replaces path with data atomically and durably (path.tmp, fsync, rename, directory fsync). */
int gf_keys_usage_write(const char *path, const char *data, size_t len, struct gf_err *err);
/* Restores the counts of today (UTC day of now_ms) from path into k's limiter. A missing file is
 * fine (0); a damaged one is GF_EFORMAT naming the entry, an unreadable one GF_EIO. */
int gf_keys_usage_load(struct gf_keys *k, const char *path, int64_t now_ms, struct gf_err *err);

struct gf_keys;
struct event_base;
struct gf_usage_saver;
/* Loads path, then snapshots the counts to it every interval_ms when they changed (the write
 * on a thread of its own) and once more at stop. interval_ms 0: only at stop. *out stays NULL
 * when the limiter keeps its own state (no usage ops). */
int gf_usage_saver_start(struct event_base *base, struct gf_keys *k, const char *path,
                         int interval_ms, struct gf_usage_saver **out, struct gf_err *err);
/* Stops the timer and thread, writes a last snapshot if anything changed; returns 0 or GF_EIO
 * (logged). NULL is a no-op. */
int gf_usage_saver_stop(struct gf_usage_saver *s);

/* ---- the key service (keys.c): what the gateway and the admin API call ---------------- */

/* Outcome of authenticating a request. */
enum gf_auth {
    GF_AUTH_OK = 0,
    GF_AUTH_MISSING,   // no Authorization header, or not "Bearer"          401
    GF_AUTH_MALFORMED, // not a well-formed key (typo, checksum)             401
    GF_AUTH_UNKNOWN,   // well-formed, but no such key                      401
    GF_AUTH_REVOKED,   //                                                   401
    GF_AUTH_EXPIRED,   // past expires, or an old secret past its grace     401
    GF_AUTH_SUSPENDED, // suspended for abuse until an admin re-enables it  401
};

/* An admin event (key created, revoked, ...) for the audit log. k is borrowed for the call. */
typedef void (*gf_keys_event_fn)(void *ud, const char *action, const struct gf_key *k,
                                 const char *detail);

struct gf_keys_config {
    struct gf_key_limits default_limits; // for keys created without a limit
    const char *default_group;           // NULL = "default"
    int64_t rotate_grace_ms;             // default grace of a rotated secret
    size_t snapshot_every;               // see gf_keystore_file_opts
    bool no_fsync;                       // tests/benchmarks only
    gf_keys_event_fn on_event;           // may be NULL
    void *event_ud;
};

struct gf_keys {
    struct gf_keystore *store; // owned
    struct gf_limiter *lim;    // owned
    struct gf_keys_config cfg; // default_group is copied into group_buf
    char group_buf[GF_KEY_GROUP_MAX + 1];
};

/* What to create or change. A negative limit or a NULL string means "leave as is" (update) or
 * "use the default" (create). */
struct gf_key_spec {
    const char *name;
    const char *group;
    struct gf_key_limits limits;
    int64_t expires; // absolute wall ms; 0 = never (create), -1 = leave as is (update)
};

/* Sets every field of spec to "unset". */
void gf_key_spec_init(struct gf_key_spec *spec);

/* Opens the service over DATA_DIR/keys (store) and a local limiter. cfg is copied. */
int gf_keys_open(const char *data_dir, const struct gf_keys_config *cfg, struct gf_keys **out,
                 struct gf_err *err);
void gf_keys_close(struct gf_keys *k);

/* Admin operations. Each is durable when it returns 0, copies the key after the change into
 * *out (may be NULL), and reports a bad argument as GF_EINVAL, a missing id as GF_ENOTFOUND,
 * with err set. Secrets are written into secret (create, rotate) and nowhere else. */
int gf_keys_create(struct gf_keys *k, const struct gf_key_spec *spec, char secret[GF_APIKEY_BUFLEN],
                   struct gf_key *out, struct gf_err *err);
int gf_keys_update(struct gf_keys *k, const char *id, const struct gf_key_spec *spec,
                   struct gf_key *out, struct gf_err *err);
int gf_keys_revoke(struct gf_keys *k, const char *id, struct gf_key *out, struct gf_err *err);
/* New secret; the old one stays valid for grace_ms (< 0: the configured default). */
int gf_keys_rotate(struct gf_keys *k, const char *id, int64_t grace_ms,
                   char secret[GF_APIKEY_BUFLEN], struct gf_key *out, struct gf_err *err);
/* Sets the expiry to at (wall ms; 0 = now). */
int gf_keys_expire(struct gf_keys *k, const char *id, int64_t at, struct gf_key *out,
                   struct gf_err *err);
int gf_keys_suspend(struct gf_keys *k, const char *id, const char *reason, struct gf_key *out,
                    struct gf_err *err);
int gf_keys_unsuspend(struct gf_keys *k, const char *id, struct gf_key *out, struct gf_err *err);

/* Authenticates an Authorization header value (may be NULL) at now_ms; on GF_AUTH_OK copies
 * the key to *out and sets *match (current secret or a rotated one in its grace period). */
enum gf_auth gf_keys_authenticate(struct gf_keys *k, const char *authz, int64_t now_ms,
                                  struct gf_key *out, enum gf_key_match *match);
/* Whether a request admitted on key id (with match) may go on at now_ms: GF_AUTH_OK, or why
 * not. Used to cut open streams after a revocation, expiry or suspension. */
enum gf_auth gf_keys_recheck(struct gf_keys *k, const char *id, enum gf_key_match match,
                             int64_t now_ms);
/* The status word of a key at now_ms: "active", "revoked", "expired", "suspended". */
const char *gf_key_status(const struct gf_key *key, int64_t now_ms);
/* HTTP status, OpenAI error code and message for a failed authentication. */
int gf_auth_http_status(enum gf_auth a);
const char *gf_auth_code(enum gf_auth a);
const char *gf_auth_message(enum gf_auth a);

/* ---- the admin key (adminkey.c) -------------------------------------------------------- */

#define GF_ADMIN_KEY_ENV "GARDEFOU_ADMIN_KEY"
#define GF_ADMIN_KEY_MIN 16 // bytes; a shorter GARDEFOU_ADMIN_KEY is refused

/* Gets the admin secret into *out (caller frees with gf_free): from GARDEFOU_ADMIN_KEY when set,
 * else from DATA_DIR/admin.key. With create, a missing file is made (mode 0600, "gfadm_" + 40
 * base62 characters) and *created is set. A file readable by group or others is refused. */
int gf_admin_key_load(const char *data_dir, bool create, char **out, bool *created,
                      struct gf_err *err);

/* ---- the admin API (admin.c): its own HTTP listener -------------------------------------- */

struct event_base;
struct gf_admin;

/* POST /admin/v1/policy/reload: reloads the policy and appends a JSON object describing the
 * result (e.g. {"version":"..."}) to out; returns 0, or a GF_E* code with err set. */
typedef int (*gf_admin_reload_fn)(void *ud, struct gf_buf *out, struct gf_err *err);
/* Called after an admin call made key id unusable (revoked, expired now, suspended), so the
 * gateway ends the requests in flight on it. */
typedef void (*gf_admin_cut_fn)(void *ud, const char *key_id, enum gf_auth why);

struct gf_admin_config {
    const char *listen;    // "HOST:PORT" (port 0 = any free port)
    const char *admin_key; // borrowed for the call; only its digest is kept
    size_t max_body;       // 0 = 64 KiB
    int timeout_s;         // 0 = 30
};

/* Binds the admin API on base. keys is borrowed and must outlive the admin server. */
int gf_admin_new(struct event_base *base, struct gf_keys *keys, const struct gf_admin_config *cfg,
                 struct gf_admin **out, struct gf_err *err);
int gf_admin_port(const struct gf_admin *a);
void gf_admin_set_policy_reload(struct gf_admin *a, gf_admin_reload_fn fn, void *ud);
void gf_admin_set_cut(struct gf_admin *a, gf_admin_cut_fn fn, void *ud);
/* Closes the listener and frees a; NULL is a no-op. */
void gf_admin_free(struct gf_admin *a);
/* The admin API's address from server.listen and keys.admin_listen (may be NULL): the latter when
 * set, "" when it is "off", else listen's host with port + 1 (0 stays 0). 0 or GF_EINVAL. */
int gf_keys_admin_address(const char *listen, const char *admin_listen, char *out, size_t outlen);
struct cJSON;
/* Fills spec from a create/update body object: name, group, rpm, tpm, max_concurrent,
 * daily_tokens (null = unlimited), expires_in (duration from now; null = never) or expires_at
 * (unix seconds). Strings in spec are borrowed from o. On GF_EINVAL err says why and *param may
 * name the field. Unknown fields are refused. */
int gf_admin_spec_parse(const struct cJSON *o, struct gf_key_spec *spec, const char **param,
                        struct gf_err *err);
/* Parses "HOST:PORT" or "[V6]:PORT" into host (NUL-terminated) and port; 0 or GF_EINVAL. */
int gf_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

/* Counts a policy block against key id; when the key has been blocked more than max_blocks
 * times within window_ms it is suspended (durably, reported through on_event) and this returns
 * true. max_blocks <= 0 or window_ms <= 0 disables suspension. */
bool gf_keys_note_block(struct gf_keys *k, const char *id, int64_t max_blocks, int64_t window_ms,
                        struct gf_rl_now now);

/* ---- keys in the request pipeline (keys_gate.c) ----------------------------------------- */

struct gf_gateway;
struct gf_engine;
struct gf_keys_gate;

struct gf_keys_gate_config {
    bool open_mode;           // requests without Authorization are served, unlimited
    int64_t abuse_max_blocks; // defaults when the policy gives no abuse setting
    int64_t abuse_window_ms;
    int recheck_ms; // how often keys of requests in flight are rechecked; 0 = 250
};

/* The current abuse setting (e.g. from the policy): may overwrite *max_blocks, *window_ms. */
typedef void (*gf_keys_abuse_fn)(void *ud, int64_t *max_blocks, int64_t *window_ms);

/* Adds the keys hooks (authenticate, admit, output, release) to gw and starts the recheck timer
 * on base. keys, gw and engine (may be NULL: tokens are then estimated) are borrowed; free the
 * gate after the gateway (the gateway's shutdown still runs the release hook). */
int gf_keys_gate_new(struct event_base *base, struct gf_gateway *gw, struct gf_keys *keys,
                     struct gf_engine *engine, const struct gf_keys_gate_config *cfg,
                     struct gf_keys_gate **out, struct gf_err *err);
void gf_keys_gate_free(struct gf_keys_gate *g);
void gf_keys_gate_set_abuse(struct gf_keys_gate *g, gf_keys_abuse_fn fn, void *ud);
/* Ends every request in flight on key_id with an error (401 or an error event); returns how
 * many. */
size_t gf_keys_gate_cut(struct gf_keys_gate *g, const char *key_id, enum gf_auth why);
/* gf_admin_cut_fn adapter: ud is the gate. */
void gf_keys_gate_admin_cut(void *ud, const char *key_id, enum gf_auth why);

#endif
