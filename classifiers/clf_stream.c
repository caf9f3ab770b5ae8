/* clf_stream.c — a trained model scoring a text that grows (a streamed completion) with exactly
 * the scores of the whole text scored at once, while hashing each byte about once.
 *
 * The text is cut only where its pieces, each made canonical and hashed on its own, give the
 * canonical form, the features and the shape counts of the whole (gf_clf_stream_cut). What lies
 * before the last cut is hashed once into the stream's integer embedding bag; each score adds
 * the text after it to a copy of the bag, then runs the layers. Integer sums do not depend on
 * the order of their terms, so the scores are the one-shot scores bit for bit.
 * A model with distinct features also keeps the set of buckets of text[0..done): the text after
 * the last cut adds only buckets outside it (and counts each once), as the whole text would.
 * Invariant: acc, n_feats, n_distinct, seen, fs and sh are those of text[0..done), done being 0
 * or a cut. */
#include "classifiers/clf_int.h"

#include <string.h>

struct gf_clf_stream {
    struct gf_clf_model *m;
    int64_t *acc;                 // [dim] the embedding bag of text[0..done)
    size_t n_feats, n_distinct;
    struct gf_clf_seen seen;      // buckets of text[0..done) (distinct features; else NULL)
    struct gf_clf_feat_state fs;  // hashing state after text[0..done)
    struct gf_clf_shape sh;       // shape counts of text[0..done)
    size_t done;
    struct gf_norm_buf norm;      // canonical form of the piece being hashed
};

static bool lower_or_digit(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool ascii_alnum(unsigned char c)
{
    return lower_or_digit(c) || (c >= 'A' && c <= 'Z');
}

/* "ab c": two lowercase ASCII letters or digits, one ASCII whitespace byte, then a letter or a
 * digit. The whitespace ends a word of two characters or more, so no spaced-out run ("f r e e",
 * which the canonical form joins), no word (leetspeak is rewritten per word; features are per
 * token) and no run of capitals (shouted words) crosses the cut; the letter after it starts a
 * word, so the whitespace is not part of a run the canonical form squeezes; and no look-around
 * of the shape scan (e-mail, "www.", "://", lone capitals) reaches across "b c". */
bool gf_clf_stream_cut(const char *text, size_t len, size_t i)
{
    const unsigned char *t = (const unsigned char *)text;
    if (i < 3 || i >= len)
        return false;
    unsigned char sp = t[i - 1];
    return (sp == ' ' || (sp >= '\t' && sp <= '\r')) && lower_or_digit(t[i - 2]) &&
           lower_or_digit(t[i - 3]) && ascii_alnum(t[i]);
}

struct gf_clf_stream *gf_clf_stream_new(struct gf_clf_model *m)
{
    struct gf_clf_stream *st = gf_calloc(1, sizeof(*st));
    if (st == NULL)
        return NULL;
    st->acc = gf_calloc(m->bag_dim, sizeof(int64_t));
    if (gf_clf_model_distinct(m)) {
        // Its bits are never cleared (the stream's text only grows), so it keeps no log.
        st->seen.bits = gf_calloc((m->hash.buckets + 63) / 64, sizeof(uint64_t));
    }
    if (st->acc == NULL || (gf_clf_model_distinct(m) && st->seen.bits == NULL)) {
        gf_free(st->seen.bits);
        gf_free(st->acc);
        gf_free(st);
        return NULL;
    }
    st->m = gf_clf_model_ref(m);
    gf_norm_buf_init(&st->norm, 0);
    return st;
}

void gf_clf_stream_free(struct gf_clf_stream *st)
{
    if (st == NULL)
        return;
    gf_norm_buf_cleanup(&st->norm);
    gf_free(st->seen.bits);
    gf_free(st->acc);
    gf_clf_model_unref(st->m);
    gf_free(st);
}

// Hashes the piece text[0..len) into b (its sums, distinct count and seen set), n_feats, fs
// and sh.
static int add_piece(struct gf_clf_stream *st, const char *text, size_t len,
                     struct gf_clf_bag *b, size_t *n_feats, struct gf_clf_feat_state *fs,
                     struct gf_clf_shape *sh)
{
    struct gf_norm nm;
    int rc = gf_norm_buf_normalize(&st->norm, text, len, GF_NORM_NO_MAP, &nm, NULL);
    if (rc != 0)
        return rc;
    *n_feats += gf_clf_features_tok(&st->m->hash, fs, nm.text, nm.len, gf_clf_bag_add,
                                    gf_clf_bag_token, b);
    gf_clf_bag_finish(b);
    gf_clf_shape_scan(text, len, sh);
    return 0;
}

int gf_clf_stream_score(struct gf_clf_stream *st, const char *text, size_t len, bool final,
                        float *scores, struct gf_clf_scratch *s)
{
    const struct gf_clf_model *m = st->m;
    if (len < st->done || s->dim < m->bag_dim || s->hidden < m->max_hidden)
        return GF_EINVAL;
    // Everything before the last cut joins the stream's bag for good.
    size_t cut = len;
    while (cut > st->done && !gf_clf_stream_cut(text, len, cut))
        cut--;
    if (cut > st->done) {
        struct gf_clf_bag b;
        gf_clf_bag_init(&b, m, st->acc, s->acc32, s->tc, &st->seen, s->fresh);
        int rc = add_piece(st, text + st->done, cut - st->done, &b, &st->n_feats, &st->fs,
                           &st->sh);
        if (rc != 0)
            return rc;
        st->n_distinct += b.n_distinct;
        st->done = cut;
    }
    if (!final && len - st->done > GF_CLF_STREAM_TAIL_MAX)
        return GF_EAGAIN;
    // The rest is hashed into a copy: more text may still change how it reads.
    // With distinct features, its buckets go in the scratch's set, read over the stream's.
    memcpy(s->acc, st->acc, m->bag_dim * sizeof(int64_t));
    size_t n_feats = st->n_feats;
    struct gf_clf_feat_state fs = st->fs;
    struct gf_clf_shape sh = st->sh;
    struct gf_clf_bag b;
    gf_clf_bag_init(&b, m, s->acc, s->acc32, s->tc, &s->seen, s->fresh);
    b.base = st->seen.bits;
    if (len > st->done) {
        int rc = add_piece(st, text + st->done, len - st->done, &b, &n_feats, &fs, &sh);
        if (rc != 0) {
            gf_clf_seen_clear(&s->seen);
            return rc;
        }
    }
    n_feats += gf_clf_shape_emit(&m->hash, &sh, gf_clf_bag_add, &b);
    gf_clf_bag_finish(&b);
    gf_clf_seen_clear(&s->seen);
    gf_clf_model_forward(m, s->acc, n_feats, st->n_distinct + b.n_distinct, s->x, s->hid,
                         scores);
    gf_clf_model_calibrate(m, scores);
    return 0;
}
