/* audit.h — the tamper-evident audit log: append-only, hash-chained JSON Lines segments in
 * DATA_DIR/audit/, a writer thread with group commit, and the verifier and query used by
 * `gardefou audit verify|query`.
 *
 * Every line is one JSON record that starts {"seq":N,"prev":"<hex>","type":"...", where prev is
 * the SHA-256 of "gardefou-audit-v1\0" followed by the previous line's bytes (without its
 * newline); seq counts from 1 with no gap across segment files. Every checkpoint_every records or
 * checkpoint_interval_ms a "checkpoint" record carries an HMAC-SHA256, under a key kept outside
 * the log directory, over its seq and the chain head, and MANIFEST.json (also HMAC'd) names the
 * segments and the last checkpoint. See docs/audit.md for the format.
 *
 * Threading: gf_audit_* calls on a struct gf_audit come from one thread (the gateway's loop).
 * Completion callbacks run on that loop (through an eventfd event), or, when the log was opened
 * without an event_base, inside gf_audit_poll / gf_audit_flush / gf_audit_close. */
#ifndef GF_AUDIT_H
#define GF_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/common.h"

struct event_base;
struct cJSON;

/* What a request record keeps of the prompt and completion text. SHA-256 digests and lengths
 * are kept in every mode. */
enum gf_audit_retention {
    GF_AUDIT_RETAIN_HASHES = 0, // digests and lengths only
    GF_AUDIT_RETAIN_REDACTED,   // text after policy redaction and the built-in scrubber
    GF_AUDIT_RETAIN_FULL,       // the text as received and as sent
};

/* When a record counts as done (the completion callback runs). */
enum gf_audit_durability {
    GF_AUDIT_DURABLE_FSYNC = 0, // written and fdatasync'd (group commit)
    GF_AUDIT_DURABLE_WRITE,     // written to the kernel (survives a crash of gardefou, not of the OS)
    GF_AUDIT_DURABLE_NONE,      // queued; the callback does not wait for the disk
};

/* An I/O shim: tests replace these to inject errors and short writes. NULL members mean the
 * system calls. Called on the writer thread only. */
struct gf_audit_io {
    ssize_t (*write)(void *ud, int fd, const void *p, size_t n);
    int (*fsync)(void *ud, int fd);   // returns 0 or -1 with errno set
    void *ud;
};

struct gf_audit_config {
    const char *dir;                 // the log directory, e.g. DATA_DIR/audit (created 0700)
    /* HMAC key file (64 hex digits), created 0600 with a random key when absent. NULL: the
     * sibling "audit.key" of dir (DATA_DIR/audit.key). GARDEFOU_AUDIT_KEY (64 hex digits) in the
     * environment takes precedence over the file. */
    const char *key_file;
    enum gf_audit_retention retention;
    enum gf_audit_durability durability;
    int checkpoint_every;            // records between checkpoints, >= 1
    int checkpoint_interval_ms;      // a checkpoint at most this long after a record; 0 = off
    int64_t segment_max_bytes;       // rotate before a segment would exceed this, >= 4096
    int commit_interval_ms;          // group commit: at most one fsync per interval; 0 = no wait
    int commit_max_records;          // ... unless this many records are waiting, >= 1
    int retry_interval_ms;           // after a write error, how often the writer retries
    const struct gf_audit_io *io;    // borrowed for the log's lifetime; NULL = system calls
};

/* Fills the defaults: hashes, fsync, checkpoint every 1000 records or 10 s, 64 MiB segments,
 * commit every 2 ms or 1024 records, retry every 500 ms. */
void gf_audit_config_default(struct gf_audit_config *cfg);
int gf_audit_retention_parse(const char *s, enum gf_audit_retention *out);
int gf_audit_durability_parse(const char *s, enum gf_audit_durability *out);
const char *gf_audit_retention_name(enum gf_audit_retention r);
const char *gf_audit_durability_name(enum gf_audit_durability d);

/* One policy verdict as the audit keeps it. Strings borrowed for the call. */
struct gf_audit_verdict {
    const char *phase;    // "input" or "output"
    const char *rule_id;  // the policy rule that matched
    const char *category; // e.g. "pii", "self_harm"; may be NULL
    const char *action;   // "allow", "flag", "redact", "block"
    double score;         // in [0, 1]; < 0 = none
};

/* Everything a request record holds. Strings are borrowed for the duration of the call and may
 * be NULL (omitted); text need not be NUL-terminated (lengths given). */
struct gf_audit_request {
    const char *request_id;
    const char *key_id;
    const char *client;         // client address
    const char *endpoint;       // "/v1/chat/completions", ...
    const char *model;
    const char *policy_version;
    const struct gf_audit_verdict *verdicts;
    size_t n_verdicts;
    const char *verdict;        // overall: "allow", "flag", "redact", "block"; NULL = from verdicts
    int prompt_tokens;
    int completion_tokens;
    double latency_ms;
    const char *finish_reason;
    int status;                 // HTTP status answered
    const char *error;          // error code or short message when status >= 400
    bool stream;
    const char *prompt;         // the prompt as received (chat messages flattened by the caller)
    size_t prompt_len;
    const char *prompt_redacted; // after input redaction; NULL = same as prompt
    size_t prompt_redacted_len;
    const char *completion;     // the completion as sent (after output redaction)
    size_t completion_len;
};

struct gf_audit;

/* Runs on the loop once the record is durable per the durability mode (status 0, seq = its
 * sequence number) or failed (status GF_EIO / GF_ENOMEM, seq 0: the record is NOT in the log).
 * Runs exactly once for every append that returned 0. */
typedef void (*gf_audit_done_fn)(void *ud, int status, uint64_t seq);

/* Opens (creating if needed) the log in cfg->dir, sets aside a torn tail (to a .torn file,
 * recorded by an "audit_torn_tail" admin record), starts the writer thread and appends an
 * "audit_started" record. base may be NULL (callbacks then run in gf_audit_poll/flush).
 * Returns 0 and the log in *out (caller closes with gf_audit_close), or GF_EINVAL (config),
 * GF_EIO, GF_EFORMAT (the log or manifest is damaged beyond a torn tail), GF_ENOMEM. */
int gf_audit_open(const struct gf_audit_config *cfg, struct event_base *base, struct gf_audit **out,
                  struct gf_err *err);
/* Appends "audit_stopped" and a final checkpoint, waits for the writer, runs every pending
 * callback, and frees the log. NULL is a no-op. */
void gf_audit_close(struct gf_audit *a);

/* Queues a request record. Returns 0 (cb will run), GF_EIO (the log is failing: nothing was
 * queued, cb will not run) or GF_ENOMEM. cb may be NULL. */
int gf_audit_log_request(struct gf_audit *a, const struct gf_audit_request *r, gf_audit_done_fn cb,
                         void *ud);
/* Queues an admin record: action such as "key_created", "key_revoked", "key_rotated",
 * "policy_reloaded", "key_suspended"; subject (e.g. the key id) and detail (a JSON object,
 * borrowed, printed as is) may be NULL. Same returns as gf_audit_log_request. */
int gf_audit_log_admin(struct gf_audit *a, const char *action, const char *subject,
                       const struct cJSON *detail, gf_audit_done_fn cb, void *ud);

/* False from the first failed write or fsync until the writer has written again; a fail-closed
 * gateway answers 503 with Retry-After: gf_audit_retry_after_s() meanwhile. */
bool gf_audit_writable(const struct gf_audit *a);
int gf_audit_retry_after_s(const struct gf_audit *a);
const struct gf_audit_config *gf_audit_config(const struct gf_audit *a);

/* Runs the callbacks of completed records on the calling thread (the loop thread). */
void gf_audit_poll(struct gf_audit *a);
/* Waits until every record queued so far is done (durable or failed), then polls. */
void gf_audit_flush(struct gf_audit *a);

struct gf_audit_stats {
    uint64_t records;      // records written (including checkpoints and admin records)
    uint64_t checkpoints;
    uint64_t batches;      // group commits (write + optional fsync)
    uint64_t fsyncs;
    uint64_t failed;       // appends that ended with an error status
    uint64_t last_seq;
};
void gf_audit_get_stats(struct gf_audit *a, struct gf_audit_stats *out);

/* ---- keys ------------------------------------------------------------------------------- */

#define GF_AUDIT_KEY_LEN 32

/* Loads the HMAC key: GARDEFOU_AUDIT_KEY when set, else the file (64 hex digits), creating it
 * (mode 0600, random) when create is set and it does not exist. */
int gf_audit_key_load(const char *path, bool create, uint8_t key[GF_AUDIT_KEY_LEN],
                      struct gf_err *err);
/* The default key path for a log directory: its sibling "audit.key". Caller frees. */
char *gf_audit_default_key_path(const char *dir);

/* ---- verify ----------------------------------------------------------------------------- */

struct gf_audit_verify_result {
    bool ok;                // the whole log verified
    char file[256];         // where the first break is (file name within the directory)
    uint64_t line;          // 1-based line within file; 0 = the file as a whole
    uint64_t seq;           // the seq expected at that point
    char reason[256];
    uint64_t segments, records, checkpoints, bytes, last_seq;
    uint64_t unsealed;      // records after the last checkpoint (not yet covered by a MAC)
    uint64_t torn_files;    // tails set aside by recovery (*.torn), listed not verified
    bool key_checked;       // checkpoints and manifest were checked with a key
    char head[2 * GF_SHA256_LEN + 1]; // hash of the last record, hex
};

/* Verifies the log in dir: every line well-formed JSON with the right seq and prev, the chain
 * continuous across segments, every checkpoint's MAC (when key is non-NULL), the manifest's MAC,
 * its segment list and its last checkpoint. Returns 0 when it could run (res->ok says whether
 * the log is intact, res->file/line/seq/reason name the first break) or GF_EIO / GF_ENOMEM /
 * GF_EINVAL (no such directory) with err set. */
int gf_audit_verify(const char *dir, const uint8_t *key, struct gf_audit_verify_result *res,
                    struct gf_err *err);

/* ---- query ------------------------------------------------------------------------------ */

struct gf_audit_query {
    const char *key_id;     // NULL = any
    int64_t since_ms;       // inclusive; INT64_MIN = no bound
    int64_t until_ms;       // exclusive; INT64_MAX = no bound
    const char *verdict;    // the overall verdict or any verdict's action equals it
    const char *category;   // any verdict has this category
    const char *grep;       // substring of prompt or completion text (case-insensitive)
    const char *type;       // "request", "admin", "checkpoint"; NULL = request and admin
};

/* Called for every matching record with its line (not NUL-terminated) and parsed form
 * (borrowed for the call). Returning non-zero stops the query with that value. */
typedef int (*gf_audit_match_fn)(void *ud, const char *line, size_t len, const struct cJSON *rec);

/* Runs q over every segment of dir in order. Returns 0, the callback's non-zero value, or a
 * GF_E* code. Lines that do not parse are skipped (verify reports them). */
int gf_audit_query_run(const char *dir, const struct gf_audit_query *q, gf_audit_match_fn fn,
                       void *ud, struct gf_err *err);
/* Parses a time bound: RFC 3339 ("2026-11-30T10:00:00Z", fractional seconds and offsets
 * allowed), a date ("2026-11-30", UTC midnight), epoch milliseconds ("@1764496800000") or an
 * age relative to now_ms ("15m", "2h", "7d" means now minus that). */
int gf_audit_parse_time(const char *s, int64_t now_ms, int64_t *out_ms);

/* ---- records (for the verifier, query and fuzzing) --------------------------------------- */

/* The fixed head of every line: {"seq":N,"prev":"<64 hex>","type":"<word>",. Returns 0 or
 * GF_EFORMAT; type points into line (not NUL-terminated, type_len bytes). */
int gf_audit_parse_head(const char *line, size_t len, uint64_t *seq,
                        uint8_t prev[GF_SHA256_LEN], const char **type, size_t *type_len);
/* The chain hash of one line (without its newline). */
void gf_audit_line_hash(const char *line, size_t len, uint8_t out[GF_SHA256_LEN]);
/* True when p[0..n) is exactly one JSON value (RFC 8259) with nesting at most 64; no allocation. */
bool gf_audit_json_valid(const char *p, size_t n);

#endif
