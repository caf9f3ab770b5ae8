/* upstream_int.h — private pieces of the upstream engine, exposed for its unit tests and fuzz
 * targets: the incremental SSE parser (upstream_sse.c), the builder of the upstream request
 * body and the parser of upstream replies into gf_gen events (upstream_json.c). */
#ifndef GF_UPSTREAM_INT_H
#define GF_UPSTREAM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "common/common.h"
#include "engine/engine.h"

/* ---- Server-Sent Events ------------------------------------------------------------------ */

/* Called once per complete event with its type ("message" unless an event: field said
 * otherwise) and its data (the data: lines joined by '\n', NUL-terminated; borrowed for the
 * call). A nonzero return stops gf_sse_feed, which returns it. Events without data are skipped. */
typedef int (*gf_sse_event_fn)(void *ud, const char *type, const char *data, size_t len);

/* An SSE parser that accepts bytes split anywhere: lines end in LF, CRLF or CR (a CRLF split
 * across two feeds counts once), ':' lines are comments, "data:" lines accumulate, a blank line
 * dispatches. An event (or line) larger than max_event bytes makes gf_sse_feed return
 * GF_ETOOBIG; after any error the parser refuses further input with the same code. */
struct gf_sse {
    struct gf_buf line;   // the line being assembled
    struct gf_buf data;   // data of the event being assembled
    char type[32];        // the event: field, "" = message
    bool after_cr;        // the last byte was CR: an LF now ends nothing
    int error;
};

void gf_sse_init(struct gf_sse *s, size_t max_event);
void gf_sse_cleanup(struct gf_sse *s);
/* Feeds n bytes; calls cb for each event completed by them. Returns 0, the first nonzero value
 * cb returned, GF_ETOOBIG (event over the cap) or GF_ENOMEM. */
int gf_sse_feed(struct gf_sse *s, const char *p, size_t n, gf_sse_event_fn cb, void *ud);

/* ---- upstream request body ---------------------------------------------------------------- */

/* Builds the JSON body to send upstream: a copy of req->body with every field kept as is, except
 * "model" (set to model_override when non-NULL, else to req->model when the body has none),
 * "stream" (req->stream) and, when streaming, stream_options.include_usage = true. Without a body
 * it is built from req's messages/prompt and params. The caller frees *out with gf_free. */
int gf_up_build_body(const struct gf_gen_request *req, const char *model_override, char **out,
                     size_t *len, struct gf_err *err);

/* ---- JSON scanning in place (upstream_scan.c) --------------------------------------------- */

#define GF_JS_MAX_DEPTH 512

#define GF_JS_DOC_MAX 64

/* Where the objects and arrays of a validated text end, noted by gf_js_value_doc in the order
 * they open (so by increasing start): walking a member then jumps over a nested value instead
 * of reading it again at every level above it. Past GF_JS_DOC_MAX containers the rest are not
 * noted and are skipped byte by byte. */
struct gf_js_doc {
    const char *base;
    unsigned n;
    struct {
        unsigned start, end;  // offsets from base: the bracket, the byte after its match
    } box[GF_JS_DOC_MAX];
};

/* A JSON value (or an object key, quotes included) inside a text: borrowed from it. doc, when
 * not NULL, is the index of the text it came from (values from gf_js_next inherit it). */
struct gf_js {
    const char *p;
    size_t n;
    const struct gf_js_doc *doc;
};

/* Members of an object or elements of an array, in order. */
struct gf_js_it {
    const char *p, *end;
    const struct gf_js_doc *doc;
};

/* Validates the JSON value starting at p (no leading whitespace), never reading at or past
 * end. Returns the byte after it, or NULL when it is not a value cJSON would accept (or is
 * nested deeper than GF_JS_MAX_DEPTH - depth). Bytes after the value are not looked at. */
const char *gf_js_value(const char *p, const char *end, int depth);
/* gf_js_value at depth 0, noting the containers' ends in doc (borrowed by the values made
 * from it: it must outlive them). */
const char *gf_js_value_doc(const char *p, const char *end, struct gf_js_doc *doc);
/* Walks v (an object or array gf_js_value accepted): gf_js_next gives the next member (key and
 * value; key NULL for an array) and false after the last. */
void gf_js_iter(struct gf_js_it *it, struct gf_js v);
bool gf_js_next(struct gf_js_it *it, struct gf_js *key, struct gf_js *val);
/* Appends the decoded bytes of the string s (quotes included) to out, NUL-terminated (the NUL
 * not counted in out->len; the text may hold NULs of its own from \u0000). 0 or GF_E*. */
int gf_js_str(struct gf_js s, struct gf_buf *out);
/* True when the string s, decoded and read as a C string (as cJSON compares keys), is name.
 * Inline because member names are compared against several literals each (a stream chunk's
 * keys about thirty times): with a literal name the length test and the byte comparison
 * compile to a few instructions, and only a text longer than the name (which must then hold
 * escapes or a NUL to match) that starts like it is decoded, by gf_js_is_decoded. Decoding never lengthens a
 * string and an escape or a NUL shortens it: a text as long as the name matches only byte for
 * byte, a shorter one never. */
bool gf_js_is_decoded(struct gf_js s, const char *name);
static inline bool gf_js_is(struct gf_js s, const char *name)
{
    size_t n = strlen(name);
    if (s.n <= n + 2)
        return s.n == n + 2 && memcmp(s.p + 1, name, n) == 0;
    if (s.p[1] != name[0] && s.p[1] != '\\')
        return false; // the first character is itself and not name's
    return gf_js_is_decoded(s, name);
}
/* The value of the number v (strtod), false when v is not a number. */
bool gf_js_num(struct gf_js v, double *out);
/* Appends v without the whitespace between its tokens (raw control bytes inside strings
 * escaped), NUL-terminated. 0 or GF_E*. */
int gf_js_minify(struct gf_js v, struct gf_buf *out);

/* ---- log-probabilities in upstream replies (upstream_logprobs.c) -------------------------- */

/* The entries of one choice's "logprobs" value; token strings point into strs. Reused from one
 * choice to the next; valid until the next parse or the cleanup. */
struct gf_up_logprobs {
    struct gf_gen_logprob *items;
    int n, cap;
    struct gf_buf strs;
};

void gf_up_logprobs_init(struct gf_up_logprobs *l);
void gf_up_logprobs_cleanup(struct gf_up_logprobs *l);
/* Reads v, a choice's "logprobs" member in chat's shape (chat) or the legacy completions
 * arrays. Entries that do not fit the shape are skipped; null or a non-object gives none.
 * 0 or GF_ENOMEM. */
int gf_up_logprobs_parse(struct gf_up_logprobs *l, struct gf_js v, bool chat);

/* ---- upstream replies ----------------------------------------------------------------------- */

#define GF_UP_MAX_CHOICES 64

/* What the reply parser remembers across the chunks of one generation. */
struct gf_up_reply {
    enum gf_gen_kind kind;
    gf_gen_event_fn cb;  // receives the DELTA events
    void *ud;
    bool *stop;          // when set and *stop turns true inside cb, parsing stops at once
    struct gf_gen_usage usage;
    bool has_usage;
    char model[128];
    int n_choices;       // highest choice index seen + 1
    bool started[GF_UP_MAX_CHOICES];  // the choice's first delta went out (role sent)
    bool finished[GF_UP_MAX_CHOICES];
    char finish[GF_UP_MAX_CHOICES][16];
    char pending[GF_UP_MAX_CHOICES][4];  // bytes of a UTF-8 character cut between chunks
    unsigned char n_pending[GF_UP_MAX_CHOICES];
    int deltas;          // text deltas delivered (a token estimate when no usage came)
    size_t text_bytes;
    bool saw_done;       // "data: [DONE]" arrived
};

void gf_up_reply_init(struct gf_up_reply *r, enum gf_gen_kind kind, gf_gen_event_fn cb, void *ud);

/* Parses one streamed chunk (the data of one SSE event) and delivers its deltas. "[DONE]" sets
 * saw_done. Returns 0, or GF_EUPSTREAM with err set (invalid JSON, an error object from the
 * upstream, a choice index out of range); err->msg is safe to show to a client. */
int gf_up_reply_chunk(struct gf_up_reply *r, const char *data, size_t len, struct gf_err *err);

/* Parses a whole non-streamed reply (chat.completion or text_completion) and delivers one DELTA
 * per choice (text, role, extra fields, finish). Returns 0 or GF_EUPSTREAM with err set. */
int gf_up_reply_full(struct gf_up_reply *r, const char *body, size_t len, struct gf_err *err);

/* The static copy of a well-known finish reason ("stop", "length", "tool_calls", ...), else s. */
const char *gf_up_finish_static(const char *s);

/* Extracts the message of an OpenAI-style error body ({"error":{"message":...}} or
 * {"error":"..."} or {"message":...}) into out; falls back to "upstream answered HTTP <status>". */
void gf_up_error_message(const char *body, size_t len, int status, char *out, size_t outlen);

/* Appends the model ids of a /v1/models reply ({"data":[{"id":...}]}, or Ollama's
 * {"models":[{"name":...}]}) to ids[*n..max) (gf_strdup'd, caller frees), skipping ids already
 * present. Returns 0, GF_EFORMAT for a body that is not such a list, or GF_ENOMEM. */
int gf_up_parse_models(const char *body, size_t len, char **ids, size_t *n, size_t max);

#endif
