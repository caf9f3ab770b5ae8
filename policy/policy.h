/* policy.h — the content policy: a JSON file of ordered rules over detectors and classifiers,
 * compiled once into an immutable, refcounted object, and evaluated on texts (whole or
 * streamed) into verdicts.
 *
 * Lifecycle: gf_policy_load/gf_policy_parse validate and compile a policy (patterns compiled,
 * classifiers resolved in a registry) and return it with one reference. Hot reload builds a new
 * one and swaps a pointer; requests in flight keep the reference they took. Evaluation never
 * changes a policy, so one policy serves every thread; per-caller state lives in a struct
 * gf_policy_ctx (one per thread or request). Format: docs/policy.md. */
#ifndef GF_POLICY_H
#define GF_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

struct gf_clf_registry;
struct gf_policy;

/* Actions, ordered by severity: the verdict of a text is the most severe action among the
 * rules that fired (an allow rule that fires exempts the text from the rules after it). */
enum gf_action { GF_ACTION_ALLOW = 0, GF_ACTION_FLAG, GF_ACTION_REDACT, GF_ACTION_BLOCK };

enum gf_stage { GF_STAGE_INPUT = 1, GF_STAGE_OUTPUT = 2, GF_STAGE_BOTH = 3 };

/* "allow", "flag", "redact", "block". */
const char *gf_action_name(enum gf_action a);
/* "input", "output", "both". */
const char *gf_stage_name(enum gf_stage s);
/* Parses "input"/"output" (and "both" when allow_both); GF_EINVAL otherwise. */
int gf_stage_parse(const char *s, bool allow_both, enum gf_stage *out);

/* ---- loading ------------------------------------------------------------------------------ */

/* The largest policy file accepted. */
#define GF_POLICY_MAX_FILE (4u << 20)

/* Reads, validates and compiles the policy file at path. registry (borrowed; the policy takes
 * its own reference) provides classifier categories; NULL means none is loaded. On success
 * stores a policy with one reference in *out. On error returns GF_EIO (unreadable),
 * GF_ETOOBIG, GF_EFORMAT (invalid JSON), GF_EINVAL (invalid policy) or GF_ENOMEM, with err set
 * to one line "FILE: JSON.PATH: what is wrong", e.g.
 * "p.json: rules[2].pattern: PCRE2 error at offset 5: missing closing parenthesis". */
int gf_policy_load(const char *path, struct gf_clf_registry *registry, struct gf_policy **out,
                   struct gf_err *err);
/* Same from memory; name is used in messages and as the policy's source. */
int gf_policy_parse(const char *json, size_t len, const char *name,
                    struct gf_clf_registry *registry, struct gf_policy **out, struct gf_err *err);
/* The built-in policy that applies when no file is given (docs/policy.md shows it). */
const char *gf_policy_default_json(void);
int gf_policy_load_default(struct gf_clf_registry *registry, struct gf_policy **out,
                           struct gf_err *err);

struct gf_policy *gf_policy_ref(struct gf_policy *p);
/* Drops a reference; the last one frees the policy. NULL is a no-op. */
void gf_policy_unref(struct gf_policy *p);

/* The policy version: lowercase hex SHA-256 of the file's bytes (borrowed, lives with p). */
const char *gf_policy_version(const struct gf_policy *p);
/* Where it came from: the path given to gf_policy_load, or the name given to parse. */
const char *gf_policy_source(const struct gf_policy *p);
/* Warnings collected while loading (optional rules skipped because their classifier is not
 * loaded), one per line; "" when none. Borrowed. */
const char *gf_policy_warnings(const struct gf_policy *p);
/* True when the policy has a group of that name ("default" always exists). */
bool gf_policy_has_group(const struct gf_policy *p, const char *group);
/* Number of rules of a group that apply at stage (skipped optional rules not counted). */
size_t gf_policy_rule_count(const struct gf_policy *p, const char *group, enum gf_stage stage);
/* The abuse setting for the key store: a key whose requests were blocked more than
 * blocks times within window_ms is suspended. blocks == 0 disables suspension. */
void gf_policy_abuse(const struct gf_policy *p, int *blocks, int64_t *window_ms);
/* Hold-back window of streamed output, in bytes (policy "streaming.holdback_bytes"). */
size_t gf_policy_holdback(const struct gf_policy *p);
/* The category thresholds of /v1/moderations: the policy's "categories" entry for category,
 * or 0.5 when it has none. */
double gf_policy_category_threshold(const struct gf_policy *p, const char *category);
/* The classifier registry the policy was compiled against (borrowed; may be NULL). */
struct gf_clf_registry *gf_policy_registry(const struct gf_policy *p);

/* ---- verdicts ----------------------------------------------------------------------------- */

/* A rule that fired. */
struct gf_fired {
    const char *rule;      // rule id, borrowed from the policy
    enum gf_action action;
    const char *type;      // hit type ("credit_card", "regex") or classifier category; borrowed
    double score;          // 1 for exact detectors
    bool canonical;        // found only on the canonical form (evasion)
};

/* A classifier score computed while evaluating. */
struct gf_score {
    const char *category;  // borrowed from the registry the policy holds
    double score;
};

/* A redacted span of the evaluated text. */
struct gf_span {
    size_t start, end;
    const char *type;      // what [REDACTED:<type>] says; borrowed from the policy
};

/* The result of evaluating one text. All arrays are owned by the verdict (gf_verdict_cleanup);
 * strings inside are borrowed from the policy, which the caller keeps referenced while it uses
 * the verdict. */
struct gf_verdict {
    enum gf_action action;
    const char *policy_version;  // borrowed from the policy
    const char *message;         // block: the refusal message of the rule or policy
    struct gf_fired *fired;
    size_t n_fired;
    struct gf_score *scores;
    size_t n_scores;
    struct gf_span *spans;       // redact: sorted, disjoint
    size_t n_spans;
    char *redacted;              // redact: the text with each span replaced; else NULL
    size_t redacted_len;
    bool fail_closed;            // a detector could not decide and the rule fired anyway
};

void gf_verdict_init(struct gf_verdict *v);
void gf_verdict_cleanup(struct gf_verdict *v);
/* Folds from into into (the verdict of several texts, e.g. all messages of a request): the
 * more severe action and its message, fired rules and scores appended (scores keep the
 * highest per category). Spans and redacted text are not merged. GF_ENOMEM. */
int gf_verdict_merge(struct gf_verdict *into, const struct gf_verdict *from);
/* Appends the verdict as a JSON object: {"action":..,"policy_version":..,"rules":[..],
 * "fired":[{"rule","action","type","score","canonical"}],"scores":{cat:score},
 * "redactions":[{"start","end","type"}],"message":..}. Never contains the matched text. */
int gf_verdict_json(const struct gf_verdict *v, struct gf_buf *out);

/* ---- evaluation --------------------------------------------------------------------------- */

/* Per-caller evaluation state: scan scratch, canonical form buffer, hit list. Not shared
 * between threads; reuse it so that evaluation stops allocating once warmed up. */
struct gf_policy_ctx;

struct gf_policy_ctx *gf_policy_ctx_new(void);
void gf_policy_ctx_free(struct gf_policy_ctx *c);

/* Evaluates text[0..len) at stage (input or output) under group's rules (an unknown or NULL
 * group falls back to "default"). Fills v (initialized here; the caller cleans it up). Returns
 * 0, or GF_ENOMEM / GF_ETOOBIG with err set; v is then cleaned up. */
int gf_policy_eval(const struct gf_policy *p, struct gf_policy_ctx *c, const char *group,
                   enum gf_stage stage, const char *text, size_t len, struct gf_verdict *v,
                   struct gf_err *err);

/* Scores text with every loaded classifier of the policy's registry, for /v1/moderations:
 * writes up to cap scores (category, score) and returns how many through *n. */
int gf_policy_moderate(const struct gf_policy *p, struct gf_policy_ctx *c, const char *text,
                       size_t len, struct gf_score *scores, size_t cap, size_t *n,
                       struct gf_err *err);

/* ---- streaming ---------------------------------------------------------------------------- */

/* Moderation of streamed output. Text is fed as it arrives; the stream releases what can no
 * longer be part of a match (all but the last holdback bytes, never cutting a UTF-8 sequence or
 * a redaction), so a match of up to holdback bytes split across chunks is caught before its
 * last byte is released. Text is scanned and released in steps of holdback/2 bytes. Rules over
 * the whole text (classifiers, spam) run on each new stretch of four windows (with one window
 * of context before it) and on the whole text at finish. */
struct gf_stream;

/* Starts a stream under p and group (p is referenced until gf_stream_free); holdback 0 takes
 * the policy's. max is the cap on the whole text kept (GF_ETOOBIG past it). */
int gf_stream_new(struct gf_policy *p, const char *group, size_t holdback, size_t max,
                  struct gf_stream **out, struct gf_err *err);
void gf_stream_free(struct gf_stream *s);
/* Feeds a chunk (any bytes; UTF-8 sequences may be cut anywhere). Appends what can be released
 * now to out (redactions applied). Returns 0, or GF_EPOLICY when the text is blocked: nothing
 * more is released, and gf_stream_verdict says why. GF_ENOMEM / GF_ETOOBIG with err set. */
int gf_stream_feed(struct gf_stream *s, const char *chunk, size_t n, struct gf_buf *out,
                   struct gf_err *err);
/* Ends the text: runs the whole-text rules, then releases the rest into out. Returns 0 or
 * GF_EPOLICY (blocked: nothing more is released) or an error. */
int gf_stream_finish(struct gf_stream *s, struct gf_buf *out, struct gf_err *err);
/* The verdict so far (the block that stopped it, or what fired: flag, redact). Borrowed. */
const struct gf_verdict *gf_stream_verdict(const struct gf_stream *s);
/* Bytes released so far. */
size_t gf_stream_released(const struct gf_stream *s);

#endif
