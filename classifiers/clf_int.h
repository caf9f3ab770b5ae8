/* clf_int.h — internals of the trained classifiers (classifiers/clf_*.c): feature hashing, the
 * model layout, training, calibration and the dataset recipe. Only the classifiers component,
 * its tests and the train/eval commands include it; everyone else uses classifiers.h.
 *
 * Invariant: a model is immutable once built or loaded; every field below is read-only while
 * its refcount is held, so any number of threads may score with it concurrently. */
#ifndef GF_CLF_INT_H
#define GF_CLF_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/common.h"
#include "classifiers/classifiers.h"

/* ---- feature hashing (clf_hash.c) ------------------------------------------------------ */

/* How text becomes bucket ids. Stored in the model file; training and scoring use the same. */
struct gf_clf_hash_params {
    uint32_t buckets;   // rows of the embedding table, >= 1
    uint32_t seed;      // mixed into every hash, so two models can use different hash spaces
    uint32_t word_min;  // word n-gram orders, e.g. 1..2; word_max = 0 disables words
    uint32_t word_max;
    uint32_t char_min;  // character n-gram orders over "<word>", e.g. 3..5; char_max = 0 disables
    uint32_t char_max;
};

#define GF_CLF_MAX_WORD_N   4   // longest word n-gram a model may ask for
#define GF_CLF_MAX_CHAR_N   8   // longest character n-gram
#define GF_CLF_MAX_CHAR_TOK 40  // char n-grams are taken from a token's first 40 bytes only

/* The version of the feature definition below (tokenization, number shapes, hashing) and of
 * what the file may hold; a model records it and is refused by a build that computes other
 * features. Version 1 (no key in the file) hashed char n-grams byte by byte and had no number
 * shapes; version 2 had no shape features of the original text (clf_shape.c); version 3 had
 * the same features as 4 but no head (a build of version 3 would ignore a head and score its
 * categories with the wrong output, so a file of version 4 must be refused there); version 4
 * had the features of 5 and always pooled by the mean (a build of version 4 would ignore the
 * pooling keys of version 5 and score with the wrong pooling, so it must refuse version 5). */
#define GF_CLF_FEATURE_VERSION 5

/* How a text's embedding rows become the vector the layers read: their sum divided by the
 * number of features (the mean, fastText's pooling) or by its square root, which keeps the
 * weight of a few telling features in a long text (a long mail with one spam paragraph). Both
 * are an integer sum scaled once, so streams and batches keep giving the same bits. */
enum gf_clf_pooling { GF_CLF_POOL_MEAN = 0, GF_CLF_POOL_SQRT = 1 };

/* A model with distinct features adds the row of each bucket once per text (its first
 * occurrence), so a word a long mail repeats counts like a word it says once (the sublinear
 * term weights of TF-IDF classifiers, which spam needs: docs/classifiers.md). The set of buckets
 * seen is a bitmap, so such a model has at most this many buckets. */
#define GF_CLF_DISTINCT_MAX_BUCKETS (1u << 18)
#define GF_CLF_DISTINCT_WORDS       (GF_CLF_DISTINCT_MAX_BUCKETS / 64)
/* The buckets first seen in one call of the feature callback are collected in slices of this
 * many (in the scratch's fresh array when the set's log cannot take them). */
#define GF_CLF_FRESH_MAX 512

/* The buckets a text has shown so far, for models with distinct features: a bitmap over the
 * buckets and, while they fit, the buckets set since the last clear, in the order they were
 * first seen (so clearing costs what the text set, and each call's first occurrences are a
 * slice of it). */
#define GF_CLF_SEEN_LOG 4096
struct gf_clf_seen {
    uint64_t *bits;  // [GF_CLF_DISTINCT_WORDS]
    uint32_t *log;   // [GF_CLF_SEEN_LOG] buckets set since the last clear; NULL for a set that
                     // is never cleared (a stream's earlier text)
    size_t n_log;
    bool full;       // more were set than log holds: a clear zeroes every word
    size_t words;    // the words of bits the last model set bits in may use (bag_init)
};
/* Clears the bits set since the last clear. */
void gf_clf_seen_clear(struct gf_clf_seen *s);

/* An embedding-bag kernel (clf_bag.c). */
typedef void (*gf_clf_bag_fn)(const int8_t *q, uint32_t dim, const uint32_t *buckets, size_t n,
                              int32_t *acc);

/* A dense layer (clf_bag.c): out[o] = b[o] + sum over i of w[i * n_out + o] * x[i], the sum
 * taken in index order with a rounding after every multiply and every add (no fused
 * multiply-add), so every version gives the same bits. */
typedef void (*gf_clf_dense_fn)(const float *w, const float *b, const float *x, uint32_t n_in,
                                uint32_t n_out, float *out);

/* Receives the features of a text in chunks of up to ~1,400 buckets. */
typedef void (*gf_clf_feature_fn)(void *ud, const uint32_t *buckets, size_t n);

/* Calls fn with the features of the (already normalized) text s[0..n), in a fixed order: for
 * each token, its word n-grams ending there, then its character n-grams. Tokens are runs of
 * letters, digits and non-ASCII bytes; each other non-space byte is a token of its own. A token
 * of digits only is a shape (its length class) in the word n-grams, keeps its own unigram when
 * at most 4 digits long, and has no character n-grams; in other tokens digits read as '0' for
 * the character n-grams. Returns the number of features emitted. Never allocates. */
size_t gf_clf_features(const struct gf_clf_hash_params *hp, const char *s, size_t n,
                       gf_clf_feature_fn fn, void *ud);
/* What hashing carries from one token to the next: the hashes of the last tokens, newest last
 * (word n-grams and number shapes span them). Zeroed at the start of a text. */
struct gf_clf_feat_state {
    uint64_t hist[GF_CLF_MAX_WORD_N];
    uint32_t have;  // tokens seen, at most GF_CLF_MAX_WORD_N
};
/* gf_clf_features continued from st (updated): the features of a text split after a whitespace
 * byte into s1 and s2 are those of s1 from a zeroed state, then those of s2 from the state s1
 * left, so a growing text is hashed piece by piece (clf_stream.c). */
size_t gf_clf_features_from(const struct gf_clf_hash_params *hp, struct gf_clf_feat_state *st,
                            const char *s, size_t n, gf_clf_feature_fn fn, void *ud);
/* The constants of hashing for one set of parameters (gf_clf_hasher_init). */
struct gf_clf_hasher {
    const struct gf_clf_hash_params *hp;   // borrowed
    uint64_t word_base, shape_base;
    uint64_t mult[GF_CLF_MAX_CHAR_N + 1];  // per character n-gram order: odd multiplier
    uint64_t mask[GF_CLF_MAX_CHAR_N + 1];  // the low k bytes
    uint32_t shift;  // 64 - b when buckets = 2^b with b >= 1, else 0
};
void gf_clf_hasher_init(struct gf_clf_hasher *h, const struct gf_clf_hash_params *hp);
/* Most character n-grams of one token (its first GF_CLF_MAX_CHAR_TOK bytes, framed). */
#define GF_CLF_MAX_TOKEN_CHAR_FEATS (GF_CLF_MAX_CHAR_N * (GF_CLF_MAX_CHAR_TOK + 2))
/* Writes the character n-grams of the word token tok[0..n) into out (room for
 * GF_CLF_MAX_TOKEN_CHAR_FEATS), in the order gf_clf_features emits them; returns their number. */
size_t gf_clf_char_features(const struct gf_clf_hasher *h, const unsigned char *tok, size_t n,
                            uint32_t *out);
/* A token's hash (word n-grams combine them) and its unigram bucket (word n-gram of order 1). */
uint64_t gf_clf_token_hash(const struct gf_clf_hasher *h, const unsigned char *tok, size_t n,
                           size_t avail);
uint32_t gf_clf_unigram(const struct gf_clf_hasher *h, uint64_t th);
/* Takes over the features of one token tok[0..n) (avail >= n bytes readable from tok) that
 * depend on it alone: stores its hash in *th and adds its character n-grams when chars is true
 * and its unigram when uni is true, wherever it keeps them; returns how many it added. */
typedef size_t (*gf_clf_token_fn)(void *ud, const struct gf_clf_hasher *h,
                                  const unsigned char *tok, size_t n, size_t avail, bool chars,
                                  bool uni, uint64_t *th);
/* gf_clf_features_from, except that when tfn is not NULL each token's character n-grams and
 * unigram go to tfn (with the same ud) instead of fn: the same features, grouped by token. */
size_t gf_clf_features_tok(const struct gf_clf_hash_params *hp, struct gf_clf_feat_state *st,
                           const char *s, size_t n, gf_clf_feature_fn fn, gf_clf_token_fn tfn,
                           void *ud);
/* Calls fn once with the shape features of the original (not normalized) text: classes of its
 * share of capitals, shouted words and '!', and whether it has a currency sign, a link or an
 * e-mail address (clf_shape.c, feature version 3). Returns their number (3 to 6). */
size_t gf_clf_shape_features(const struct gf_clf_hash_params *hp, const char *text, size_t len,
                             gf_clf_feature_fn fn, void *ud);
/* The counts the shape features are made of. gf_clf_shape_scan adds those of text[0..len) to sh,
 * so the counts of a text cut where gf_clf_stream_cut allows are those of its pieces added up;
 * gf_clf_shape_emit calls fn with the features of the counts (what gf_clf_shape_features does
 * after one scan from zero) and returns their number. */
struct gf_clf_shape {
    size_t upper, other, bangs, shouted;
    bool currency, link, email;
};
void gf_clf_shape_scan(const char *text, size_t len, struct gf_clf_shape *sh);
size_t gf_clf_shape_emit(const struct gf_clf_hash_params *hp, const struct gf_clf_shape *sh,
                         gf_clf_feature_fn fn, void *ud);
/* Checks ranges (buckets >= 1, orders within the limits above, min <= max, something enabled). */
int gf_clf_hash_params_check(const struct gf_clf_hash_params *hp, struct gf_err *err);

/* Normalizes text[0..len) segment by segment into buf (cap bytes, >= 64) and calls fn for the
 * features of each segment (clf_text.c); tfn as for gf_clf_features_tok. Segments are cut at
 * whitespace, so only n-grams that straddle a cut in a text longer than cap/4 bytes are lost.
 * Returns the feature count. */
size_t gf_clf_text_features(const struct gf_clf_hash_params *hp, const char *text, size_t len,
                            char *buf, size_t cap, gf_clf_feature_fn fn, gf_clf_token_fn tfn,
                            void *ud);

#define GF_CLF_NORM_BUF 16384  // bytes of the normalization buffer of a scratch

/* The version of the normalization the features are computed on; a model records it and is
 * refused by a build whose normalization differs. */
uint32_t gf_clf_norm_version(void);

/* ---- calibration (clf_calib.c) --------------------------------------------------------- */

#define GF_CLF_CALIB_MAX 64  // points per category

/* A monotone piecewise-linear map from raw sigmoid output to calibrated probability. With n = 0
 * the map is the identity. xs strictly increasing, ys non-decreasing, both in [0,1]. */
struct gf_clf_calib {
    uint32_t n;
    float x[GF_CLF_CALIB_MAX];
    float y[GF_CLF_CALIB_MAX];
};

float gf_clf_calib_apply(const struct gf_clf_calib *c, float raw);
/* Fits an isotonic regression (pool-adjacent-violators) of labels y (0/1) on raw scores, with
 * one pseudo-example at (0,0) and one at (1,1) so that few positives do not give a hard step,
 * then keeps at most GF_CLF_CALIB_MAX points. Returns GF_ENOMEM or 0. */
int gf_clf_calib_fit(struct gf_clf_calib *c, const float *raw, const uint8_t *y, size_t n);
/* Checks a calibration table read from a file. */
int gf_clf_calib_check(const struct gf_clf_calib *c, struct gf_err *err);

/* ---- the model (clf_model.c) ----------------------------------------------------------- */

#define GF_CLF_MAX_CATEGORIES 64
#define GF_CLF_MAX_DIM        1024
#define GF_CLF_MAX_HIDDEN     1024
#define GF_CLF_ARCH           "gardefou-classifier"

struct gf_clf_model {
    atomic_int refs;
    uint64_t id;                // unique in the process, renewed when the bag changes (a head
                                // attached): memoized sums of rows (clf_tokcache.c) name it
    uint32_t n_cat;
    char **cat_names;           // n_cat names, owned
    struct gf_clf_hash_params hash;
    uint32_t norm_version;      // GF_NORM_VERSION the model was trained with
    uint32_t dim;               // embedding width
    uint32_t hidden;            // 0 = no hidden layer
    uint32_t pooling;           // enum gf_clf_pooling
    bool distinct;              // each bucket once per text (buckets <= DISTINCT_MAX_BUCKETS)
    const int8_t *emb_q;        // [buckets][dim] int8 embedding rows
    const float *emb_scale;     // [dim] per-dimension scale: value = q * scale[d], so a bag of
                                // rows is an exact integer sum scaled once
    const float *w1;            // [dim][hidden], input-major (hidden > 0)
    const float *b1;            // [hidden]
    const float *w2;            // [hidden ? hidden : dim][n_cat], input-major
    const float *b2;            // [n_cat]
    struct gf_clf_calib *calib; // [n_cat], owned
    /* Optional head: a second, smaller network over the same features with its own embedding
     * table, whose outputs replace this model's outputs for some categories (spam: mail and
     * SMS share little with the prompts the other categories are learnt from, and their
     * category learns better on its own rows and for more epochs). NULL when none; owned, its
     * arrays live in this model's block or file. */
    struct gf_clf_model *head;
    uint32_t head_cat[GF_CLF_MAX_CATEGORIES];  // this model's category of head output i
    /* A view without the head (gf_clf_model_without_head) shares its arrays, names and tables
     * with the model it was made from, which it references here; NULL for a model of its own.
     * It leaves the categories of that model's head unscored (NaN). */
    struct gf_clf_model *parent;
    uint32_t bag_dim;           // dim + the head's dim: width of a text's embedding bag
    uint32_t max_hidden;        // the larger hidden width of this model and its head
    gf_clf_bag_fn bag;          // the embedding-bag kernel for this CPU
    gf_clf_dense_fn dense;      // the dense-layer kernel for this CPU
    void *owned;                // one block holding the arrays above when built in memory
    struct gf_gguf *file;       // the open file the arrays point into when loaded, else NULL
};

/* A fresh model id (gf_clf_model.id), never 0. */
uint64_t gf_clf_model_new_id(void);
/* Allocates a model with room for every array (zeroed) in one block; the arrays then point into
 * it and may be written until the model is shared. names are copied. */
int gf_clf_model_alloc(uint32_t n_cat, const char *const *names,
                       const struct gf_clf_hash_params *hp, uint32_t dim, uint32_t hidden,
                       struct gf_clf_model **out);
/* Makes head (categories that are all names of m, same hash parameters, no head of its own)
 * the head of m: its outputs become m's raw outputs for those categories, which m's calibration
 * tables then map (copy the head's own tables after training it). m takes head over, also on
 * failure. GF_EINVAL with err saying why. */
int gf_clf_model_attach_head(struct gf_clf_model *m, struct gf_clf_model *head,
                             struct gf_err *err);
/* From an embedding-bag sum acc[m->bag_dim] (integer sum of the int8 rows: the model's, then
 * its head's) over n_feats features, n_distinct of them distinct, to the raw sigmoid outputs
 * raw[n_cat]; x holds m->bag_dim floats, hid m->max_hidden. Scoring and calibration share it,
 * so both compute the same bits. */
void gf_clf_model_forward(const struct gf_clf_model *m, const int64_t *acc, size_t n_feats,
                          size_t n_distinct, float *x, float *hid, float *raw);
/* What a bag of n_feats > 0 rows is divided by under pooling: n_feats or its square root. */
float gf_clf_pool_div(uint32_t pooling, size_t n_feats);

/* The raw outputs to calibrated probabilities, in place (the model's calibration tables). */
void gf_clf_model_calibrate(const struct gf_clf_model *m, float *scores);

/* ---- memoized character n-grams (clf_tokcache.c) --------------------------------------- */

/* A word token's character n-grams are most of a text's features, and the same words come back
 * in text after text; the sum of their rows and of its unigram's depends only on the token's
 * bytes and the model. A token cache keeps that sum and the token's hash per short token, so a
 * known word costs one lookup and one add instead of hashing and adding a few dozen rows. The
 * sums are integers, so the bag is the same to the bit. A cache serves one thread and one model
 * at a time (it starts over when the model id changes); the classifier interface keeps one per
 * thread. */
// 8192 entries in sets of two, 2.9 MB with their buckets: on real text (docs/policy.md) 1024
// missed a quarter of the words, 8192 a tenth, and a miss costs ten hits.
#define GF_CLF_TOK_SET_BITS 12
#define GF_CLF_TOK_SLOTS    (2u << GF_CLF_TOK_SET_BITS)
#define GF_CLF_TOK_LEN   16    // tokens of at most this many bytes are kept
#define GF_CLF_TOK_DIM   64    // bags of at most this width use it (model and head)
#define GF_CLF_PEND_MAX  1024  // buckets a bag batches before adding their rows
#define GF_CLF_TOK_BK    48    // buckets of a token kept with its entry (a head with distinct
                               // features): 3..5-grams and unigram of 16 bytes are 46

struct gf_clf_tok_entry {
    uint64_t key[2];                // the token's bytes, zero-padded
    uint64_t th;                    // its hash (gf_clf_token_hash)
    uint8_t len;                    // the token's length, 0 for an empty slot
    uint8_t n;                      // its features in sum: character n-grams and unigram
    uint16_t mag;                   // the largest |sum[d]|
    bool head;                      // filled by a bag with a head (a view without it leaves
                                    // the head's lanes zero: not a hit for the whole model)
    int16_t sum[GF_CLF_TOK_DIM];    // the sum of their rows (model, then head: a head with
                                    // distinct features only when bk keeps the buckets), 0
                                    // past the bag
};

struct gf_clf_tokcache {
    uint64_t model;  // id of the model whose sums the entries hold, 0 for none
    struct gf_clf_tok_entry e[GF_CLF_TOK_SLOTS];
    // For a head with distinct features: each bag gets a number (bags counts them), and a
    // slot's token that has marked its buckets in a bag holds that bag's number in marked, so
    // the same word again in that text adds nothing and is not hashed again.
    uint32_t bags;
    uint32_t marked[GF_CLF_TOK_SLOTS];
    // The buckets of a slot's token, in the order gf_clf_bag_token computes them, when the
    // head has distinct features and they are at most GF_CLF_TOK_BK: a word new to the text
    // then needs no hashing, only the test of its buckets (and the head rows of those the
    // text has shown already, which come out of the entry's sum).
    uint32_t bk[GF_CLF_TOK_SLOTS][GF_CLF_TOK_BK];
    uint32_t looks, misses;  // recent lookups and misses (both halved every 4096 lookups)
    uint32_t skips;          // words sent to the batch without a lookup
};

/* 1 where the head rows of gf_clf_bag.h8 are added with the SSE2 baseline (x86-64). */
#if defined(__SSE2__) && defined(__x86_64__)
#define GF_CLF_H8_SSE2 1
#else
#define GF_CLF_H8_SSE2 0
#endif

/* The feature callback of scoring: adds the embedding rows of each chunk of buckets to acc[dim]
 * (an int32 sum per chunk, added into the int64 sum of the text). */
struct gf_clf_bag {
    const int8_t *q;
    int32_t *acc32;  // [max(dim, hdim)] scratch
    int64_t *acc;    // [dim + hdim] the sum: the model's rows, then the head's
    uint32_t dim;
    const int8_t *hq;  // the head's table, NULL when none
    uint32_t hdim;
    bool distinct, hdistinct;  // the model / the head adds first occurrences only
    gf_clf_bag_fn kernel;
    struct gf_clf_tokcache *tc;    // borrowed, NULL when not used
    uint32_t bound;                // a bound on |t16[d]|: the sum of the entries' mag
    uint32_t folds;                // t16 folded into tsum since tsum was last folded into acc
    int16_t t16[GF_CLF_TOK_DIM];   // memoized token sums not yet in tsum
    int32_t tsum[GF_CLF_TOK_DIM];  // and not yet in acc
    // With distinct features: buckets seen before (a stream's earlier text; NULL for none),
    // buckets seen here (set as they come), the first occurrences of the current slice and
    // their count so far.
    const uint64_t *base;
    struct gf_clf_seen *seen;
    uint32_t *fresh;  // [GF_CLF_FRESH_MAX]
    size_t n_distinct;
    uint32_t number;  // the bag's number in tc (a head with distinct features), never 0
    // A head of 8 dimensions with distinct features adds its rows here, as unsigned bytes
    // (q + 128) in the 16-bit lanes of two words, h8n rows of them, until gf_clf_bag_finish or
    // 256 rows (no lane can carry into the next before 257). With SSE2 (GF_CLF_H8_SSE2) the
    // words are one register of dimensions 0..7 in order; else even bytes, odd bytes.
    uint64_t h8[2];
    uint32_t h8n;
    // Tokens that go to the kernels in batches rather than one by one (long tokens, no cache,
    // or words that miss while most words miss the cache): pend[0..n_pend).
    size_t n_pend;
    uint32_t pend[GF_CLF_PEND_MAX];  // last: gf_clf_bag_init does not clear it
};
/* tc (may be NULL) is used only when the bag is narrow enough and the model (not its head) adds
 * every occurrence; it is emptied when it held another model's sums. seen and fresh (the
 * scratch's) are needed when m or its head has distinct features. Call gf_clf_bag_finish
 * before reading acc. */
void gf_clf_bag_init(struct gf_clf_bag *b, const struct gf_clf_model *m, int64_t *acc,
                     int32_t *acc32, struct gf_clf_tokcache *tc, struct gf_clf_seen *seen,
                     uint32_t *fresh);
/* True when m or its head has distinct features. */
bool gf_clf_model_distinct(const struct gf_clf_model *m);
/* Adds the rows of the buckets of buckets[0..n) first seen in the text to the head's sum, and
 * counts them (a head with distinct features, whose model's rows came from the token cache). */
void gf_clf_bag_add_head_distinct(struct gf_clf_bag *b, const uint32_t *buckets, size_t n);
/* Adds the head rows held in h8 into acc (gf_clf_bag_finish calls it). */
void gf_clf_bag_flush_h8(struct gf_clf_bag *b);
void gf_clf_bag_add(void *ud, const uint32_t *buckets, size_t n);
/* The gf_clf_token_fn of scoring: adds a token's character n-gram and unigram rows to the bag,
 * from the token cache when it has them (clf_tokcache.c). */
size_t gf_clf_bag_token(void *ud, const struct gf_clf_hasher *h, const unsigned char *tok,
                        size_t n, size_t avail, bool chars, bool uni, uint64_t *th);
/* Adds what the bag still holds apart into acc. */
void gf_clf_bag_finish(struct gf_clf_bag *b);

/* ---- scoring a growing text (clf_stream.c) -------------------------------------------- */

/* Text after the last cut longer than this is not hashed again before the end of a stream. */
#define GF_CLF_STREAM_TAIL_MAX 16384

/* True when text[0..len) may be cut before text[i] (gf_clf_stream_score hashes the pieces
 * apart and gets the features and shape counts of the whole). */
bool gf_clf_stream_cut(const char *text, size_t len, size_t i);

struct gf_clf_stream;
/* A stream state for m (which it references); NULL when out of memory. */
struct gf_clf_stream *gf_clf_stream_new(struct gf_clf_model *m);
void gf_clf_stream_free(struct gf_clf_stream *st);
/* The calibrated scores of text[0..len), which extends the text of the previous call on st:
 * exactly gf_clf_model_score_canonical of the text and its whole canonical form. GF_EAGAIN as
 * the classifier interface's stream_score (final false, more than GF_CLF_STREAM_TAIL_MAX bytes
 * after the last cut), GF_EINVAL when len is shorter than before or s too small for the model,
 * GF_ENOMEM, GF_ETOOBIG. */
int gf_clf_stream_score(struct gf_clf_stream *st, const char *text, size_t len, bool final,
                        float *scores, struct gf_clf_scratch *s);

/* ---- embedding bag kernels (clf_bag.c, clf_bag_avx2.c) --------------------------------- */

/* Adds the int8 rows q[b * dim .. + dim) of buckets b = buckets[0..n) to acc[dim]. Integer
 * sums, so every kernel gives the same result in any order. n <= 2^24. */
void gf_clf_bag_add_scalar(const int8_t *q, uint32_t dim, const uint32_t *buckets, size_t n,
                           int32_t *acc);
/* AVX2 and AVX-512BW versions: call only when gf_clf_bag_kernel_get says the CPU has them. */
void gf_clf_bag_add_avx2(const int8_t *q, uint32_t dim, const uint32_t *buckets, size_t n,
                         int32_t *acc);
void gf_clf_bag_add_avx512(const int8_t *q, uint32_t dim, const uint32_t *buckets, size_t n,
                           int32_t *acc);
/* The kernel by name ("scalar", "avx2", "avx512"), NULL when the CPU lacks it; name NULL gives
 * the best one, lowered by GF_KERNELS=scalar|avx2 like the engine's kernels. */
gf_clf_bag_fn gf_clf_bag_kernel_get(const char *name);
void gf_clf_dense_scalar(const float *w, const float *b, const float *x, uint32_t n_in,
                         uint32_t n_out, float *out);
void gf_clf_dense_avx2(const float *w, const float *b, const float *x, uint32_t n_in,
                       uint32_t n_out, float *out);
void gf_clf_dense_avx512(const float *w, const float *b, const float *x, uint32_t n_in,
                         uint32_t n_out, float *out);
/* The dense kernel for the same names, NULL when the CPU lacks it;
 * name NULL gives the best one, lowered by GF_KERNELS. */
gf_clf_dense_fn gf_clf_dense_kernel_get(const char *name);
/* Name of the kernel gf_clf_bag_kernel_get(NULL) returns. */
const char *gf_clf_bag_kernel_name(void);
/* The raw (uncalibrated) sigmoid outputs, n_cat of them; same path as gf_clf_model_score. */
int gf_clf_model_score_raw(const struct gf_clf_model *m, const char *text, size_t len,
                           float *raw, struct gf_clf_scratch *s);

/* Serializes m as a GGUF file into memory: *out (caller frees with gf_free) of *len bytes. */
int gf_clf_model_save_mem(const struct gf_clf_model *m, void **out, size_t *len);

/* Working memory of one scoring thread; the arrays belong to whoever made it. */
struct gf_clf_scratch {
    uint32_t dim, hidden;  // capacities of the arrays below
    int32_t *acc32;        // [dim] the embedding bag of the current chunk of features
    int64_t *acc;          // [dim] the embedding bag of the text
    float *x;              // [dim] its pooled form
    float *hid;            // [hidden]
    struct gf_clf_seen seen;  // buckets of the text so far (distinct features), all clear
                              // between calls
    uint32_t *fresh;       // [GF_CLF_FRESH_MAX]
    char *norm;            // [GF_CLF_NORM_BUF] normalized text of the current segment
    struct gf_clf_tokcache *tc;  // borrowed token cache, NULL for none (gf_clf_scratch_new and
                                 // gf_clf_scratch_over leave it NULL)
};

/* Memory of a scratch for dim and hidden (the thread-local scratch of the classifier interface
 * lays it out with gf_clf_scratch_over). */
#define GF_CLF_SCRATCH_BYTES(dim, hidden) \
    ((size_t)(dim) * (sizeof(int64_t) + sizeof(int32_t) + sizeof(float)) + \
     (size_t)((hidden) ? (hidden) : 1) * sizeof(float) + \
     (size_t)GF_CLF_DISTINCT_WORDS * sizeof(uint64_t) + \
     (size_t)GF_CLF_SEEN_LOG * sizeof(uint32_t) + \
     (size_t)GF_CLF_FRESH_MAX * sizeof(uint32_t) + GF_CLF_NORM_BUF)
/* Points s at caller memory of GF_CLF_SCRATCH_BYTES(dim, hidden) bytes, 8-byte aligned. */
void gf_clf_scratch_over(struct gf_clf_scratch *s, void *mem, uint32_t dim, uint32_t hidden);

/* ---- training (clf_train.c) ------------------------------------------------------------ */

/* One training example: its hashed features and a label per category (1 positive, 0 negative,
 * -1 unknown: the example says nothing about that category and adds no loss for it). */
struct gf_clf_example {
    uint32_t *feats;  // owned by the dataset
    uint32_t n_feats;
    int8_t *labels;   // n_cat entries
};

struct gf_clf_train_params {
    uint32_t dim;
    uint32_t hidden;       // 0 = linear model on the embedding bag
    uint32_t pooling;      // enum gf_clf_pooling
    bool distinct;         // each bucket once per example (first occurrence)
    uint32_t epochs;
    uint32_t batch;
    float lr;              // start learning rate, decays linearly to 0
    float max_pos_weight;  // class weights: positives weigh min(sqrt(neg/pos), this)
    float short_crops;     // fraction of all-negative examples that also train as a short
                           // crop of 2-12 consecutive features (0 = none), so that texts of a
                           // few words, far fewer features than any training text, score low
    uint64_t seed;
    uint32_t seeds;        // linear models trained with this many seeds and averaged into one
                           // (0 or 1 = one model); needs hidden 0 and dim >= 2 * categories
};

/* Called every so often during training with the number of examples seen so far, the total, the
 * mean loss since the last call and the examples/s rate. */
typedef void (*gf_clf_progress_fn)(void *ud, uint64_t done, uint64_t total, double loss,
                                   double rate);

/* Trains a model on train[0..n_train), calibrates it on val[0..n_val) (when n_val > 0) and
 * returns it in *out (refcount 1). Deterministic for a given seed: one thread, fixed order.
 * Returns GF_EINVAL (bad params), GF_ENOMEM. */
int gf_clf_train(uint32_t n_cat, const char *const *names, const struct gf_clf_hash_params *hp,
                 const struct gf_clf_train_params *tp, const struct gf_clf_example *train,
                 size_t n_train, const struct gf_clf_example *val, size_t n_val,
                 gf_clf_progress_fn progress, void *ud, struct gf_clf_model **out,
                 struct gf_err *err);

/* Hashes text (normalizing it first, like scoring does) into a new feature array; the caller
 * frees *feats with gf_free. max_bytes > 0 keeps only the first max_bytes of the text. */
int gf_clf_example_features(const struct gf_clf_hash_params *hp, const char *text, size_t len,
                            size_t max_bytes, uint32_t **feats, uint32_t *n_feats);

/* ---- evaluation (clf_metrics.c) ------------------------------------------------------- */

struct gf_clf_metrics {
    size_t n, pos;            // labelled entries, positives among them
    size_t tp, fp, fn, tn;    // at the threshold (flagged = score >= threshold)
    double precision, recall, f1, fpr;
    double auprc;             // average precision over the ranking by score
};

/* Measures scores[i] against labels[i] (1, 0, or < 0 = unknown, skipped). GF_ENOMEM or 0. */
int gf_clf_metrics_compute(const float *scores, const int8_t *labels, size_t n, float threshold,
                           struct gf_clf_metrics *out);

/* The 95% bootstrap interval of m's F1: draws resamples of its m->n labelled entries, drawn with
 * replacement and keeping each entry's decision, and the 2.5th and 97.5th percentiles of their
 * F1. Deterministic for a seed. An F1 measured on a few hundred positives moves by a few
 * hundredths from one sample of the same sources to another; the interval says how far.
 * GF_EINVAL when draws is 0, GF_ENOMEM or 0; with no entries, *lo = *hi = 0. */
int gf_clf_metrics_f1_interval(const struct gf_clf_metrics *m, unsigned draws, uint64_t seed,
                               double *lo, double *hi);

/* ---- evasion variants (clf_evasion.c) ------------------------------------------------- */

enum gf_clf_evasion {
    GF_CLF_EVADE_HOMOGLYPH,   // Latin letters replaced by Cyrillic look-alikes
    GF_CLF_EVADE_ZERO_WIDTH,  // U+200B after every second letter of a word
    GF_CLF_EVADE_LEET,        // every other a e o i s t of a word as 4 3 0 1 5 7
    GF_CLF_EVADE_SPACING,     // the longest word spelled out with spaces ("b o m b")
    GF_CLF_EVADE_COUNT
};

const char *gf_clf_evasion_name(enum gf_clf_evasion kind);
/* Writes the variant of s[0..n) into out (reset first). GF_ETOOBIG past out's cap, GF_EINVAL
 * for an unknown kind, GF_ENOMEM. */
int gf_clf_evade(enum gf_clf_evasion kind, const char *s, size_t n, struct gf_buf *out);

/* ---- recipe and labelled rows (clf_recipe.c) ------------------------------------------ */

struct cJSON;

/* One dataset of the recipe. Strings are borrowed from the recipe's JSON. */
struct gf_clf_source {
    const char *name, *file, *license;
    bool in_recipe_dir;      // "root": "recipe": file is relative to the recipe, not data_dir
    bool ship;               // the shipped model may be trained on it (license allows it)
    bool benign;             // "benign_prompts": its negatives count for the benign FP rates
    double keep;             // fraction of rows kept (deterministic by text)
    const struct cJSON *spec;  // the source object: "text" fields and "rules"
};

struct gf_clf_recipe {
    struct cJSON *json;      // the parsed recipe, owned
    char *dir;               // directory of the recipe file, owned
    const char *data_dir;    // relative to dir unless absolute
    uint64_t seed;
    uint32_t n_cat;
    const char *cats[GF_CLF_MAX_CATEGORIES];
    struct gf_clf_hash_params hash;
    struct gf_clf_train_params train;
    uint32_t n_head;         // categories of the optional head (0 = no head)
    const char *head_cats[GF_CLF_MAX_CATEGORIES];
    struct gf_clf_train_params head_train;  // "train" with the head's dim, hidden, epochs
    size_t max_bytes;        // training truncates texts to this many bytes (0 = whole)
    double val_frac, test_frac;
    struct gf_clf_source *sources;
    size_t n_sources;
};

/* Parses and checks a recipe (GF_EIO, GF_EINVAL with err naming the file and key, GF_ENOMEM).
 * Free with gf_clf_recipe_free. */
int gf_clf_recipe_load(const char *path, struct gf_clf_recipe **out, struct gf_err *err);
void gf_clf_recipe_free(struct gf_clf_recipe *r);

enum { GF_CLF_SPLIT_TRAIN = 0, GF_CLF_SPLIT_VAL = 1, GF_CLF_SPLIT_TEST = 2 };

struct gf_clf_row {
    char *text;  // owned
    size_t len;
    int8_t labels[GF_CLF_MAX_CATEGORIES];  // 1, 0, -1 unknown
    uint16_t source;                       // index into the recipe's sources
    uint32_t head_skip;  // text starts with this many bytes of the source's "head_lines", which
                         // only the head trains on (the model's features start after them)
    uint8_t split;                         // GF_CLF_SPLIT_*
    bool benign;                           // from a benign-prompt source
};

struct gf_clf_rows {
    struct gf_clf_row *v;
    size_t n, cap;
    uint64_t *seen;  // dedup set
    size_t n_seen, cap_seen;
};

/* Reads every source (only those with ship unless all_sources) from data_dir (NULL: the
 * recipe's) and fills rows, deduplicated and split. Free with gf_clf_rows_free. */
int gf_clf_recipe_rows(const struct gf_clf_recipe *r, const char *data_dir, bool all_sources,
                       struct gf_clf_rows *rows, struct gf_err *err);
void gf_clf_rows_free(struct gf_clf_rows *rows);

/* Reads a whole file of at most max bytes into *out (NUL-terminated; caller frees). */
int gf_clf_read_file(const char *path, size_t max, char **out, size_t *len, struct gf_err *err);

/* The splitmix64 finalizer: every input bit affects every output bit. Feature hashing and the
 * shape features both derive their bucket numbers from it. */
static inline uint64_t gf_clf_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* Eight bytes at p as a little-endian integer on every host: hashes and packed int8 rows are
 * defined by their byte order, not the CPU's. */
static inline uint64_t gf_clf_load_le64(const void *p)
{
    uint64_t v;
    memcpy(&v, p, sizeof(v));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    return v;
}

#endif
