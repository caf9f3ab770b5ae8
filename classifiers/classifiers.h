/* classifiers.h — the detectors of gardefou: text in, hits out.
 *
 * Everything that looks at content lives behind this one header: the canonical form of text
 * used against evasion (normalize.c), the detectors (regex and keyword lists, PII with
 * validators, spam heuristics) and the trained classifiers, which all report hits as byte
 * spans of the ORIGINAL text with a type and a score. Detectors and classifiers are immutable
 * once built and may be used from many threads at once; per-call state lives in caller-owned
 * scratch (struct gf_scan_scratch, struct gf_norm_buf) so that scanning allocates nothing in
 * the steady state. The component knows nothing of HTTP or policies. */
#ifndef GF_CLASSIFIERS_H
#define GF_CLASSIFIERS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* ---- canonical form (normalize.c) -------------------------------------------------------- */

/* The version of the canonical form. Trained classifiers hash features of this form and store
 * the version they were trained with; any change to the output of gf_normalize for any input
 * must bump it. */
#define GF_NORM_VERSION 1

/* The canonical form of a text, for matching against evasion:
 *   - compatibility folding to lowercase ASCII of full-width forms, mathematical alphanumerics,
 *     circled/parenthesized/squared letters, small capitals, ligatures, Latin letters with
 *     diacritics (combining marks are dropped) and Cyrillic/Greek look-alikes of Latin letters;
 *     Unicode spaces, dashes and quotes fold to their ASCII forms; other characters are kept
 *     (Cyrillic and Greek lowercased);
 *   - zero-width, bidi, tag, variation-selector and control characters and invalid UTF-8 bytes
 *     are removed; every run of whitespace becomes one space;
 *   - runs of three or more single characters separated by one space or one punctuation mark
 *     ("f r e e", "f.r.e.e"), with at least one letter among them, are joined ("free");
 *   - inside a word that holds at least one ASCII letter, leetspeak digits and signs become
 *     letters: 0→o 1→i 3→e 4→a 5→s 7→t @→a $→s ("fr33 m0n3y" → "free money").
 * The result is valid UTF-8, never longer than the input.
 *
 * text[i] was produced by the original bytes [start[i], end[i]); a span [a, b) of text maps to
 * [start[a], end[b-1]) of the original (gf_norm_span). start and end are NULL when the form was
 * made with GF_NORM_NO_MAP. */
struct gf_norm {
    char *text;       // canonical form, NUL-terminated; owned as described by the maker
    size_t len;       // bytes in text, not counting the NUL
    uint32_t *start;  // len entries, non-decreasing; NULL with GF_NORM_NO_MAP
    uint32_t *end;    // len entries; NULL with GF_NORM_NO_MAP
    size_t orig_len;  // length of the original text
    void *owned;      // the block gf_norm_cleanup frees (NULL when the caller owns the memory)
    // Made with GF_NORM_LAZY_MAP (start and end NULL): the buffer that makes the byte map from
    // src, the original text (borrowed), the first time gf_norm_span needs it, and which of
    // that buffer's forms this is.
    struct gf_norm_buf *lazy;
    const char *src;
    uint64_t gen;
};

/* Flags of gf_normalize_into and gf_norm_buf_normalize. */
#define GF_NORM_NO_MAP   1u  // skip the byte map (feature extraction does not need it)
#define GF_NORM_LAZY_MAP 2u  // gf_norm_buf_normalize only: make the byte map when gf_norm_span
                             // first needs it (most texts have no hit on the canonical form
                             // only, and the map is 8 of the 9 bytes written per byte)

/* The largest text gf_normalize accepts (offsets are kept as uint32_t). */
#define GF_NORM_MAX_LEN ((size_t)UINT32_MAX - 1)

/* Makes the canonical form of text[0..len) into out, allocating one block that
 * gf_norm_cleanup frees. Returns 0, GF_ENOMEM, or GF_ETOOBIG past GF_NORM_MAX_LEN (err says
 * which). text need not be valid UTF-8 nor NUL-terminated. */
int gf_normalize(const char *text, size_t len, struct gf_norm *out, struct gf_err *err);
/* Frees what gf_normalize allocated and zeroes n; a zeroed or caller-owned n is a no-op. */
void gf_norm_cleanup(struct gf_norm *n);

/* Bytes of scratch gf_normalize_into needs for a text of len bytes with these flags. */
size_t gf_norm_scratch_size(size_t len, unsigned flags);
/* Makes the canonical form into caller-provided scratch (aligned for uint32_t, at least
 * gf_norm_scratch_size(len, flags) bytes), allocating nothing. out points into scratch and is
 * valid while scratch is and until the next call with the same scratch; gf_norm_cleanup on it
 * is a no-op. Returns 0, or GF_ETOOBIG when scratch is too small or len too large. */
int gf_normalize_into(const char *text, size_t len, void *scratch, size_t scratch_size,
                      unsigned flags, struct gf_norm *out);

/* A reusable scratch block that grows to the largest text seen and never shrinks, so a caller
 * that normalizes many texts allocates only when a text is longer than all before it. Not
 * thread-safe: one per thread or per request. Zero-initialize it or use gf_norm_buf_init. */
struct gf_norm_buf {
    void *p;
    size_t cap;
    size_t max;  // refuses texts needing more than this many bytes (GF_ETOOBIG); 0 = no cap
    uint64_t gen;      // forms made so far
    void *map;         // lazy byte maps: a block, and the form it maps (map_gen)
    size_t map_cap;
    uint64_t map_gen;
    uint32_t *map_start, *map_end;
};

void gf_norm_buf_init(struct gf_norm_buf *b, size_t max);
void gf_norm_buf_cleanup(struct gf_norm_buf *b);
/* gf_normalize_into over b's block, growing it first if needed (GF_ENOMEM, GF_ETOOBIG). out is
 * valid until the next call on b or its cleanup. */
int gf_norm_buf_normalize(struct gf_norm_buf *b, const char *text, size_t len, unsigned flags,
                          struct gf_norm *out, struct gf_err *err);

/* Maps the canonical span [a, b) (a <= b <= n->len) to the original span [*oa, *ob). An empty
 * span maps to an empty span at the corresponding original position. Needs the byte map, made
 * or lazy; when a lazy map cannot be made (out of memory), the span is the whole original text
 * (the caller redacts or blocks too much rather than too little). */
void gf_norm_span(const struct gf_norm *n, size_t a, size_t b, size_t *oa, size_t *ob);
/* True when n has a byte map, made or lazy (gf_norm_span may be called). */
bool gf_norm_has_map(const struct gf_norm *n);

/* ---- hits --------------------------------------------------------------------------------- */

/* One finding of a detector. */
struct gf_hit {
    size_t start, end;  // byte span in the ORIGINAL text; start == end for a whole-text score
    const char *type;   // static or detector-owned name: "email", "credit_card", "regex", "spam"
    double score;       // in [0, 1]; 1 for exact detectors
    int index;          // which pattern/keyword of the detector's list matched; -1 if none
    bool canonical;     // true when found on the canonical form only (an evasion attempt)
};

/* A growable list of hits with a hard cap (GF_ETOOBIG past it). Reset between texts; memory is
 * kept, so steady-state scanning allocates nothing. */
struct gf_hits {
    struct gf_hit *v;
    size_t n, cap, max;
};

void gf_hits_init(struct gf_hits *h, size_t max);
void gf_hits_cleanup(struct gf_hits *h);
void gf_hits_reset(struct gf_hits *h);
/* Appends a copy of hit; GF_ENOMEM or GF_ETOOBIG leave h unchanged. */
int gf_hits_add(struct gf_hits *h, const struct gf_hit *hit);

/* ---- detectors ---------------------------------------------------------------------------- */

/* Per-thread scanning state (PCRE2 match data, ...): see gf_scan_scratch_new. */
struct gf_scan_scratch;

/* One text handed to a detector. */
struct gf_scan {
    const char *text;            // the original text (borrowed, not NUL-terminated)
    size_t len;
    const struct gf_norm *norm;  // its canonical form with byte map, or NULL to skip it
    struct gf_scan_scratch *scratch;  // the calling thread's scratch (never shared)
    uint64_t id;  // non-zero: names this text (and norm) within scratch, so that detectors of
                  // one evaluation share what they learn about it (the PII census); 0: no sharing
};

struct gf_detector;

/* A detector: built once (per policy load), then immutable and usable from many threads. */
struct gf_detector_ops {
    const char *name;  // "regex", "keywords", "pii", "spam", ...
    /* Appends the hits of in to out (spans of the original text, in any order). Returns 0, or
     * GF_ENOMEM / GF_ETOOBIG (out is full) with err set; hits added before the error stay. */
    int (*scan)(const struct gf_detector *d, const struct gf_scan *in, struct gf_hits *out,
                struct gf_err *err);
    void (*destroy)(struct gf_detector *d);
};

struct gf_detector {
    const struct gf_detector_ops *ops;
    void *impl;
};

/* Scans in with d, appending its hits to out (see gf_detector_ops.scan). */
int gf_detector_scan(const struct gf_detector *d, const struct gf_scan *in, struct gf_hits *out,
                     struct gf_err *err);
/* Frees a detector made by one of the constructors below; NULL is a no-op. */
void gf_detector_free(struct gf_detector *d);

/* Returns new scan scratch for one thread (NULL when out of memory); free with
 * gf_scan_scratch_free. Keep one per thread or per request and reuse it. */
struct gf_scan_scratch *gf_scan_scratch_new(void);
void gf_scan_scratch_free(struct gf_scan_scratch *s);

/* Options of the regex and keyword detectors. */
#define GF_RX_CASELESS      1u  // match regardless of case (the canonical form always is)
#define GF_RX_ORIGINAL_ONLY 2u  // do not also match the canonical form

/* A regex detector over n PCRE2 patterns (UTF and Unicode properties on; JIT when available),
 * each matched on the original text and, caselessly, on its canonical form. Hits carry type
 * (copied) and the index of the pattern. On a bad pattern returns GF_EINVAL with *bad set to
 * its index and err to "PCRE2 error at offset N: ..."; GF_ENOMEM. A pattern that exceeds the
 * match limit on some text makes scan fail with GF_ETOOBIG (callers fail closed). */
int gf_regex_new(const char *type, const char *const *patterns, size_t n, unsigned flags,
                 struct gf_detector **out, size_t *bad, struct gf_err *err);
/* A keyword detector: n literal words or phrases matched at word boundaries (whitespace in a
 * phrase matches any whitespace), on the original text and on the canonical form (against the
 * keywords' own canonical form). Errors as gf_regex_new (an empty keyword is GF_EINVAL). */
int gf_keywords_new(const char *type, const char *const *words, size_t n, unsigned flags,
                    struct gf_detector **out, size_t *bad, struct gf_err *err);

/* PII and secret types of the pii detector; a hit's type is gf_pii_type_name(t). */
enum gf_pii_type {
    GF_PII_EMAIL,
    GF_PII_PHONE,        // E.164 with '+', or national numbers written with separators
    GF_PII_CREDIT_CARD,  // 13-19 digits of a known issuer passing Luhn
    GF_PII_IBAN,         // country length and mod-97
    GF_PII_SSN,          // US social security numbers in issued ranges, AAA-GG-SSSS
    GF_PII_IPV4,
    GF_PII_IPV6,
    GF_PII_PRIVATE_KEY,  // PEM/PGP private key blocks (to the end of text if unterminated)
    GF_PII_AWS_KEY,      // access key ids and secret keys assigned to an aws...key name
    GF_PII_GITHUB_TOKEN, // ghp_/gho_/ghu_/ghs_/ghr_ tokens and github_pat_ tokens
    GF_PII_SLACK_TOKEN,  // xox?- tokens and incoming webhook URLs
    GF_PII_GF_KEY,       // gardefou's own API keys (gf_ + base62)
    GF_PII_API_KEY,      // OpenAI/Anthropic-style sk-, Stripe sk_/rk_, Google AIza keys
    GF_PII_JWT,
    GF_PII_COUNT
};
#define GF_PII_ALL ((1u << GF_PII_COUNT) - 1)
#define GF_PII_SECRETS                                                                        \
    ((1u << GF_PII_PRIVATE_KEY) | (1u << GF_PII_AWS_KEY) | (1u << GF_PII_GITHUB_TOKEN) |     \
     (1u << GF_PII_SLACK_TOKEN) | (1u << GF_PII_GF_KEY) | (1u << GF_PII_API_KEY) |           \
     (1u << GF_PII_JWT))

/* The static name of a type ("credit_card"), NULL past the end. */
const char *gf_pii_type_name(enum gf_pii_type t);
/* Adds the type called name to *mask: a type name, "ip" (both versions), "secret" or
 * "secrets" (every secret type) or "all". Returns GF_EINVAL for an unknown name. */
int gf_pii_type_parse(const char *name, uint32_t *mask);
/* A pii detector for the types in mask (0 means all). */
int gf_pii_new(uint32_t mask, struct gf_detector **out, struct gf_err *err);

/* The spam heuristics detector: one hit of type "spam" spanning the whole text, whose score in
 * [0, 1] combines link density, repeated word trigrams, shouting and call-to-action phrases. */
int gf_spam_new(struct gf_detector **out, struct gf_err *err);

/* ---- trained classifiers and their registry ----------------------------------------------- */

struct gf_classifier;

/* A classifier scores a text for each of its categories. Implementations (the trained models,
 * heuristics) fill the ops; the registry and policies hold references. */
struct gf_classifier_ops {
    const char *name;  // implementation name, e.g. "fasttext"
    /* Writes one score in [0, 1] per category into scores[0..n_categories). norm is the
     * canonical form of text made by gf_normalize (GF_NORM_VERSION), or NULL, in which case
     * the implementation normalizes itself. Must be safe to call concurrently on one
     * classifier. Returns 0 or a GF_E* code with err set. */
    int (*score)(const struct gf_classifier *c, const char *text, size_t len,
                 const struct gf_norm *norm, float *scores, struct gf_err *err);
    /* Optional: scores n texts at once into scores[i * n_categories + k]; NULL when the
     * implementation has no batch path (callers then loop over score). */
    int (*score_batch)(const struct gf_classifier *c, const char *const *texts,
                       const size_t *lens, size_t n, float *scores, struct gf_err *err);
    /* Frees the implementation; called when the last reference goes. */
    void (*destroy)(struct gf_classifier *c);
    /* Optional (NULL when the implementation has none): scoring a text that grows, such as a
     * streamed completion, without hashing it again at each score. stream_new returns a state
     * (NULL when out of memory), stream_free frees it. stream_score writes the scores of
     * text[0..len), which extends the text of the previous call on the state (the same bytes
     * and maybe more): the same scores as score() given that text's canonical form, while each
     * byte is hashed about once over the stream. When final is false and the text since the
     * last place it could be cut is too long to hash again cheaply, it returns GF_EAGAIN
     * without scores (the caller may score a window instead); otherwise 0 or a GF_E* code with
     * err set. */
    void *(*stream_new)(const struct gf_classifier *c);
    int (*stream_score)(const struct gf_classifier *c, void *state, const char *text,
                        size_t len, bool final, float *scores, struct gf_err *err);
    void (*stream_free)(void *state);
    /* Optional (NULL: the classifier always scores everything): a classifier that gives the
     * categories with want[i] set (i in category order) exactly the scores c gives them, and
     * may leave the others unscored (NaN) where that costs less. Returns a new reference (to c
     * itself when nothing can be left out), NULL when out of memory. */
    struct gf_classifier *(*narrow)(const struct gf_classifier *c, const bool *want);
};

struct gf_classifier {
    const struct gf_classifier_ops *ops;
    const char *const *categories;  // n_categories names, owned by the implementation
    size_t n_categories;
    void *impl;
    atomic_int refs;  // set to 1 by whoever builds it (gf_classifier_init)
};

/* Prepares a classifier built by an implementation: sets ops, categories and one reference. */
void gf_classifier_init(struct gf_classifier *c, const struct gf_classifier_ops *ops,
                        const char *const *categories, size_t n_categories, void *impl);
struct gf_classifier *gf_classifier_ref(struct gf_classifier *c);
/* Drops a reference; the last one calls ops->destroy. NULL is a no-op. */
void gf_classifier_unref(struct gf_classifier *c);
/* ops->narrow, or one more reference to c when the implementation has none: a caller that
 * reads only some categories (a policy stage) scores through the result. NULL when out of
 * memory. */
struct gf_classifier *gf_classifier_narrow(const struct gf_classifier *c, const bool *want);

/* A set of loaded classifiers, looked up by category name ("spam", "misinformation", ...).
 * Built at start or reload, then immutable and shared by reference count. */
struct gf_clf_registry;

/* Returns a new, empty registry with one reference, or NULL when out of memory. */
struct gf_clf_registry *gf_clf_registry_new(void);
/* Adds every category of c (taking a reference on c). A category already present is an error
 * (GF_EINVAL, err names it); GF_ENOMEM. Only while the registry is being built. */
int gf_clf_registry_add(struct gf_clf_registry *r, struct gf_classifier *c, struct gf_err *err);
/* Finds the classifier scoring category and its index among the classifier's categories.
 * Returns false when no loaded classifier provides it. Borrowed pointers, valid while r is. */
bool gf_clf_registry_find(const struct gf_clf_registry *r, const char *category,
                          const struct gf_classifier **c, size_t *index);
/* Number of categories and the name of the i-th one (registration order). */
size_t gf_clf_registry_count(const struct gf_clf_registry *r);
const char *gf_clf_registry_category(const struct gf_clf_registry *r, size_t i);
struct gf_clf_registry *gf_clf_registry_ref(struct gf_clf_registry *r);
void gf_clf_registry_unref(struct gf_clf_registry *r);

/* ---- trained models (classifiers/clf_*.c) ------------------------------------------------
 *
 * A multi-label text classifier in the fastText style: hashed word and character n-grams of the
 * normalized text, an embedding bag, an optional hidden layer and one calibrated sigmoid per
 * category ("spam", "hate", "harassment", "violence", "sexual", "self-harm", "illicit",
 * "misinformation", "prompt-injection" in the shipped model). Models are GGUF files with
 * general.architecture = "gardefou-classifier" (format in docs/classifiers.md).
 *
 * A model is immutable and refcounted: load it once, share it between threads, take a ref per
 * user (a policy snapshot, an in-flight request) and drop it with unref. Scoring never allocates:
 * each thread owns a scratch (gf_clf_scratch_new) and passes it to every call. */

struct gf_clf_model;
struct gf_clf_scratch;

/* Loads a model file. On success *out holds a model with refcount 1 and returns 0; otherwise
 * returns GF_EIO (cannot read), GF_EFORMAT (not a valid classifier file: wrong architecture,
 * missing or mis-shaped tensor, bad category list, bad calibration; err says which) or
 * GF_ENOMEM, and *out is NULL. */
int gf_clf_model_load(const char *path, struct gf_clf_model **out, struct gf_err *err);
/* The same over a buffer, which is borrowed: keep it unchanged and alive until the model's last
 * unref. */
int gf_clf_model_load_mem(const void *data, size_t len, struct gf_clf_model **out,
                          struct gf_err *err);
/* Writes m as a GGUF file (atomically replacing path). GF_EIO with err set, or GF_ENOMEM. */
int gf_clf_model_save(const struct gf_clf_model *m, const char *path, struct gf_err *err);

/* Takes a reference (returns m); thread-safe. */
struct gf_clf_model *gf_clf_model_ref(struct gf_clf_model *m);
/* Drops a reference; the last one frees the model. NULL is a no-op. Thread-safe. */
void gf_clf_model_unref(struct gf_clf_model *m);

/* A view of m without its head, for callers that never read the head's categories (a policy
 * without a rule on spam): it scores the other categories bit for bit as m does, at the cost of
 * m without the head, and writes NaN for the head's. A model without a head gives itself (one
 * more reference). The view references m; NULL when out of memory. */
struct gf_clf_model *gf_clf_model_without_head(struct gf_clf_model *m);
/* True when category c (an index of gf_clf_model_categories) is scored by m's head. */
bool gf_clf_model_head_category(const struct gf_clf_model *m, size_t c);

/* The category names, in score order; borrowed, valid while a ref is held. Returns how many. */
size_t gf_clf_model_categories(const struct gf_clf_model *m, const char *const **names);
/* Index of a category in the score array, or -1 when the model has no such category. */
int gf_clf_model_category_index(const struct gf_clf_model *m, const char *name);

/* Per-thread working memory for scoring with m (or any model no larger than m). Caller frees
 * it with gf_clf_scratch_free. Returns 0 or GF_ENOMEM. */
int gf_clf_scratch_new(const struct gf_clf_model *m, struct gf_clf_scratch **out);
void gf_clf_scratch_free(struct gf_clf_scratch *s);

/* Scores text[0..len) (UTF-8; any bytes are accepted): writes one calibrated probability in
 * [0,1] per category to scores (gf_clf_model_categories order). Never allocates. Returns 0, or
 * GF_EINVAL when s is too small for m. Long texts are scored whole (mean over all features). */
int gf_clf_model_score(const struct gf_clf_model *m, const char *text, size_t len, float *scores,
                       struct gf_clf_scratch *s);
/* Scores n texts: scores[i * n_categories + c]. Gives exactly the scores of n single calls. */
int gf_clf_model_score_batch(const struct gf_clf_model *m, const char *const *texts,
                             const size_t *lens, size_t n, float *scores,
                             struct gf_clf_scratch *s);

/* Scores text[0..len) whose canonical form canon[0..clen) (gf_normalize of GF_NORM_VERSION,
 * e.g. the struct gf_norm a filter chain made once for all detectors) is at hand, skipping
 * normalization; the original is still read for its shape (capitals, '!', links), which the
 * canonical form has lost. Same scores as gf_clf_model_score(text) when that is under 16 KiB. */
int gf_clf_model_score_canonical(const struct gf_clf_model *m, const char *text, size_t len,
                                 const char *canon, size_t clen, float *scores,
                                 struct gf_clf_scratch *s);

/* Wraps m as a struct gf_classifier (implementation "fasttext", one category per model
 * category) for gf_clf_registry_add; the classifier takes its own reference on m, dropped when
 * the classifier's last reference goes. Scoring through it uses thread-local scratch. Returns
 * 0 or GF_ENOMEM. */
int gf_clf_model_classifier(struct gf_clf_model *m, struct gf_classifier **out);

/* Where an uninstalled build finds the shipped model: <source tree>/models/moderation.gguf. */
const char *gf_clf_default_model_path(void);

#endif
