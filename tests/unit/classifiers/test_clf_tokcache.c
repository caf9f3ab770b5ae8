/* test_clf_tokcache.c — the token cache of scoring (clf_tokcache.c): a bag built through the
 * cache equals, integer for integer, the bag of the plain features, and scores are the same
 * bits, for models with and without a head (also a head with distinct features, whose words
 * are hashed again unless already marked in the text, the mark moving with a word between the
 * two ways of its set), with and without unigrams, word or character n-grams, on prose, random
 * bytes (invalid UTF-8), tokens of every length around the 8-byte loads and the 16-byte limit,
 * text ending inside a token (each text in a buffer of its exact size, so a read past it is a
 * sanitizer error), more distinct tokens than slots, rows at the int8 extremes with the widest
 * n-gram range, words that mostly miss (batched, not kept) and then come back, and a cache
 * handed from one model to another; each kept entry's mag is its largest |sum[d]|; and the head
 * rows of distinct buckets against a sum taken row by row. */
#include "classifiers/clf_int.h"

#include <math.h>

#include "tests/test.h"
#include "tests/unit/classifiers/clf_test_util.h"

static const char *const CATS[] = {"spam", "hate", "illicit"};

// fill: 0 random rows, else every row byte is fill.
static struct gf_clf_model *make_model(const struct gf_clf_hash_params *hp, uint32_t dim,
                                       uint32_t head_dim, int fill)
{
    struct gf_clf_model *m = NULL;
    if (gf_clf_model_alloc(3, CATS, hp, dim, 16, &m) != 0)
        return NULL;
    for (size_t i = 0; i < (size_t)hp->buckets * dim; i++)
        ((int8_t *)m->emb_q)[i] = (int8_t)(fill ? fill : (int)(next() % 256) - 128);
    for (size_t i = 0; i < dim; i++)
        ((float *)m->emb_scale)[i] = 0.01f + 0.001f * (float)i;
    for (size_t i = 0; i < (size_t)dim * 16; i++)
        ((float *)m->w1)[i] = (float)((int)(next() % 201) - 100) / 50.0f;
    for (size_t i = 0; i < 16 * 3; i++)
        ((float *)m->w2)[i] = (float)((int)(next() % 201) - 100) / 40.0f;
    if (head_dim > 0) {
        struct gf_clf_model *h = NULL;
        if (gf_clf_model_alloc(1, CATS, hp, head_dim, 4, &h) != 0) {
            gf_clf_model_unref(m);
            return NULL;
        }
        for (size_t i = 0; i < (size_t)hp->buckets * head_dim; i++)
            ((int8_t *)h->emb_q)[i] = (int8_t)(fill ? fill : (int)(next() % 256) - 128);
        for (size_t i = 0; i < head_dim; i++)
            ((float *)h->emb_scale)[i] = 0.02f;
        for (size_t i = 0; i < (size_t)head_dim * 4; i++)
            ((float *)h->w1)[i] = (float)((int)(next() % 201) - 100) / 50.0f;
        struct gf_err err = {0};
        if (gf_clf_model_attach_head(m, h, &err) != 0) {
            gf_clf_model_unref(m);
            return NULL;
        }
    }
    return m;
}

/* A text of kind 0 (prose of a small vocabulary), 1 (random bytes), 2 (words of random
 * lengths 1-20 from a few letters, so some come back), 3 (fresh random words). */
static void make_text(struct gf_buf *b, int kind, size_t len)
{
    static const char *const words[] = {"the", "policy", "a", "gateway", "explain", "caf\xc3\xa9",
                                        "abcdefgh", "abcdefghi", "abcdefghijklmnop",
                                        "abcdefghijklmnopq", "2024", "x1y2", "\xd0\xb0pple"};
    gf_buf_reset(b);
    while (b->len < len) {
        if (kind == 1) {
            gf_buf_putc(b, (char)(next() % 256));
            continue;
        }
        if (kind == 0) {
            gf_buf_puts(b, words[next() % GF_ARRAY_LEN(words)]);
        } else {
            size_t n = 1 + next() % 20;
            for (size_t i = 0; i < n; i++)
                gf_buf_putc(b, (char)('a' + next() % (kind == 2 ? 3 : 26)));
        }
        gf_buf_puts(b, next() % 5 == 0 ? ". " : " ");
    }
    b->len = len;
}

// The bag of text (already canonical or not: the features do not care) with and without the
// cache, and the scores through both, in a buffer of the text's exact size.
static size_t n_feats;  // features compared so far

static void compare(const struct gf_clf_model *m, struct gf_clf_tokcache *tc, const char *src,
                    size_t len)
{
    char *t = gf_malloc(len ? len : 1);
    REQUIRE(t != NULL);
    if (len > 0)
        memcpy(t, src, len);
    int64_t a[GF_CLF_TOK_DIM + 8] = {0}, c[GF_CLF_TOK_DIM + 8] = {0};
    int32_t a32[GF_CLF_TOK_DIM + 8], c32[GF_CLF_TOK_DIM + 8];
    uint32_t bd = m->bag_dim;
    REQUIRE(bd <= GF_CLF_TOK_DIM + 8);
    // Each bag has its own set of seen buckets (a head with distinct features).
    struct gf_clf_scratch *s, *s2;
    REQUIRE(gf_clf_scratch_new(m, &s) == 0);
    REQUIRE(gf_clf_scratch_new(m, &s2) == 0);
    struct gf_clf_bag plain, cached;
    gf_clf_bag_init(&plain, m, a, a32, NULL, &s->seen, s->fresh);
    gf_clf_bag_init(&cached, m, c, c32, tc, &s2->seen, s2->fresh);
    struct gf_clf_feat_state fs = {{0}, 0};
    size_t na = gf_clf_features(&m->hash, t, len, gf_clf_bag_add, &plain);
    size_t nc = gf_clf_features_tok(&m->hash, &fs, t, len, gf_clf_bag_add, gf_clf_bag_token,
                                    &cached);
    gf_clf_bag_finish(&plain);
    gf_clf_bag_finish(&cached);
    gf_clf_seen_clear(&s->seen);
    gf_clf_seen_clear(&s2->seen);
    CHECK(na == nc && plain.n_distinct == cached.n_distinct);
    CHECK(memcmp(a, c, bd * sizeof(int64_t)) == 0);
    gf_clf_scratch_free(s2);

    float ra[GF_CLF_MAX_CATEGORIES], rc[GF_CLF_MAX_CATEGORIES];
    REQUIRE(gf_clf_model_score_canonical(m, t, len, t, len, ra, s) == 0);
    s->tc = tc;
    REQUIRE(gf_clf_model_score_canonical(m, t, len, t, len, rc, s) == 0);
    CHECK(memcmp(ra, rc, m->n_cat * sizeof(float)) == 0);
    s->tc = NULL;
    REQUIRE(gf_clf_model_score(m, t, len, ra, s) == 0);
    s->tc = tc;
    REQUIRE(gf_clf_model_score(m, t, len, rc, s) == 0);
    CHECK(memcmp(ra, rc, m->n_cat * sizeof(float)) == 0);
    gf_clf_scratch_free(s);
    gf_free(t);
    n_feats += na;
}

static void run_texts(const struct gf_clf_model *m, struct gf_clf_tokcache *tc, int reps)
{
    struct gf_buf b;
    gf_buf_init(&b, 1 << 16);
    size_t before = n_feats;
    for (int rep = 0; rep < reps; rep++) {
        int kind = (int)(next() % 4);
        // Lengths around the vector widths and the token limit, then longer texts.
        size_t len = rep < 64 ? (size_t)rep : 1 + next() % 3000;
        make_text(&b, kind, len);
        compare(m, tc, b.data, b.len);
    }
    CHECK(n_feats - before > 1000);
    gf_buf_cleanup(&b);
}

static struct gf_clf_tokcache cache;

// Every kept entry's mag is the largest |sum[d]| (the bound that keeps the int16 lanes exact),
// computed here in int32 one lane at a time; returns the entries checked.
static size_t check_mags(void)
{
    size_t n = 0;
    for (size_t i = 0; i < GF_CLF_TOK_SLOTS; i++) {
        const struct gf_clf_tok_entry *e = &cache.e[i];
        if (e->len == 0)
            continue;
        int32_t mag = 0;
        for (size_t d = 0; d < GF_CLF_TOK_DIM; d++) {
            int32_t a = e->sum[d] < 0 ? -(int32_t)e->sum[d] : e->sum[d];
            mag = a > mag ? a : mag;
        }
        CHECK(e->mag == mag);
        n++;
    }
    return n;
}

// The shipped shape (48 + an 8-wide linear head over distinct features, square-root pooling)
// and the previous one (a head adding every occurrence), one without a head, and one too wide
// for the cache.
static void test_models(void)
{
    const struct gf_clf_hash_params hp = {.buckets = 4096, .seed = 5, .word_min = 1,
                                          .word_max = 2, .char_min = 3, .char_max = 5};
    const struct gf_clf_hash_params odd = {.buckets = 3001, .seed = 9, .word_min = 1,
                                           .word_max = 3, .char_min = 2, .char_max = 4};
    struct gf_clf_model *shipped = make_model(&hp, 48, 8, 0);
    struct gf_clf_model *plain = make_model(&odd, 24, 0, 0);
    struct gf_clf_model *wide = make_model(&hp, 64, 8, 0);
    struct gf_clf_model *distinct = make_model(&hp, 48, 8, 0);
    REQUIRE(shipped != NULL && plain != NULL && wide != NULL && distinct != NULL);
    distinct->head->distinct = true;
    distinct->head->pooling = GF_CLF_POOL_SQRT;
    cache.bags = UINT32_MAX - 2;  // bag numbers wrap around during the run
    run_texts(distinct, &cache, 300);
    CHECK(cache.bags > 0 && cache.bags < 1000);
    CHECK(cache.model == distinct->id);
    gf_clf_model_unref(distinct);
    run_texts(shipped, &cache, 400);
    CHECK(cache.model == shipped->id);
    CHECK(check_mags() > 100);  // sums of random rows, of both signs
    // The same cache, now for another model: its entries must not leak into the new bags.
    run_texts(plain, &cache, 300);
    CHECK(cache.model == plain->id);
    run_texts(shipped, &cache, 100);
    run_texts(wide, &cache, 50);  // bag of 72: scored without the cache
    CHECK(cache.model == shipped->id);
    // Without unigrams (word n-grams from 2), without word n-grams, without character n-grams.
    const struct gf_clf_hash_params variants[] = {
        {.buckets = 1024, .seed = 11, .word_min = 2, .word_max = 3, .char_min = 3, .char_max = 5},
        {.buckets = 1024, .seed = 12, .word_min = 0, .word_max = 0, .char_min = 1, .char_max = 3},
        {.buckets = 1024, .seed = 13, .word_min = 1, .word_max = 2, .char_min = 0, .char_max = 0},
    };
    for (size_t i = 0; i < GF_ARRAY_LEN(variants); i++) {
        struct gf_clf_model *v = make_model(&variants[i], 16, 8, 0);
        REQUIRE(v != NULL);
        run_texts(v, &cache, 100);
        gf_clf_model_unref(v);
    }
    gf_clf_model_unref(shipped);
    gf_clf_model_unref(plain);
    gf_clf_model_unref(wide);
}

// Rows at -128 and 127 with every n-gram order up to 8: the largest sums an entry can hold.
static void test_extremes(void)
{
    const struct gf_clf_hash_params hp = {.buckets = 64, .seed = 1, .word_min = 1,
                                          .word_max = 4, .char_min = 1, .char_max = 8};
    for (int fill = -128; fill <= 127; fill += 255) {
        struct gf_clf_model *m = make_model(&hp, 32, 8, fill);
        REQUIRE(m != NULL);
        const char *t = "abcdefghijklmnop abcdefghijklmnop zzzzzzzzzzzzzzzz zzzzzzzzzzzzzzzzz q";
        for (int i = 0; i < 3; i++)  // a miss, then hits
            compare(m, &cache, t, strlen(t));
        // Each of these tokens sums to about INT16_MAX / 2: the int16 lanes fold into int32
        // after every token or two, and those into the int64 sum after 4096 folds.
        struct gf_buf b;
        gf_buf_init(&b, 1 << 20);
        for (int i = 0; i < 5000; i++)
            gf_buf_puts(&b, i % 3 ? "zzzzzzzzzzzzzzzz " : "yyyyyyyyyyyyyyyy ");
        compare(m, &cache, b.data, b.len);
        gf_buf_cleanup(&b);
        // All-negative sums (fill -128) and all-positive ones (127) at the largest magnitudes.
        CHECK(check_mags() >= 2);
        run_texts(m, &cache, 80);
        CHECK(check_mags() > 100);
        gf_clf_model_unref(m);
    }
}

// Attaching a head renews the model id, so sums cached without the head are not reused.
static void test_head_renews_id(void)
{
    const struct gf_clf_hash_params hp = {.buckets = 512, .seed = 3, .word_min = 1,
                                          .word_max = 2, .char_min = 3, .char_max = 5};
    struct gf_clf_model *m = make_model(&hp, 16, 0, 0), *h = NULL;
    REQUIRE(m != NULL && gf_clf_model_alloc(1, CATS, &hp, 8, 0, &h) == 0);
    for (size_t i = 0; i < 512 * 8; i++)
        ((int8_t *)h->emb_q)[i] = (int8_t)(next() % 200);
    const char *t = "hello there hello";
    compare(m, &cache, t, strlen(t));
    uint64_t before = m->id;
    struct gf_err err = {0};
    REQUIRE(gf_clf_model_attach_head(m, h, &err) == 0);
    CHECK(m->id != before);
    compare(m, &cache, t, strlen(t));
    gf_clf_model_unref(m);
}

// The entry index of the token t in the cache, or -1 (the cache holds it after scoring it).
static long entry_of(const char *t)
{
    uint64_t k[2] = {0, 0};
    memcpy(k, t, strlen(t));
    for (size_t i = 0; i < GF_CLF_TOK_SLOTS; i++)
        if (cache.e[i].len == strlen(t) && memcmp(cache.e[i].key, k, sizeof(k)) == 0)
            return (long)i;
    return -1;
}

/* A word's mark (its buckets went through a distinct-feature head in this text) moves with it
 * between the two ways of its set: three words of one set, C then A filled in one text, then
 * C, B, A in the next (B's miss moves A to the way C held, marked in this text, while A is
 * not yet). */
static void test_marks_move(void)
{
    const struct gf_clf_hash_params hp = {.buckets = 4096, .seed = 5, .word_min = 1,
                                          .word_max = 2, .char_min = 3, .char_max = 5};
    struct gf_clf_model *m = make_model(&hp, 48, 8, 0);
    REQUIRE(m != NULL);
    m->head->distinct = true;
    // Find three words of one set: score each alone in an empty cache, see where it lands.
    static char words[600][8];
    long set_of[600];
    size_t a = 0, b = 0, c = 0;
    bool found = false;
    for (size_t i = 0; i < 600 && !found; i++) {
        size_t len = 3 + next() % 4;
        for (size_t j = 0; j < len; j++)
            words[i][j] = (char)('a' + next() % 26);
        words[i][len] = '\0';
        memset(&cache, 0, sizeof(cache));
        compare(m, &cache, words[i], len);
        set_of[i] = entry_of(words[i]) / 2;
        REQUIRE(set_of[i] >= 0);
        for (size_t j = 0; j < i && !found; j++)
            for (size_t k = j + 1; k < i && !found; k++)
                if (set_of[j] == set_of[i] && set_of[k] == set_of[i] &&
                    strcmp(words[j], words[i]) && strcmp(words[k], words[i]) &&
                    strcmp(words[j], words[k])) {
                    c = j, a = k, b = i;
                    found = true;
                }
    }
    REQUIRE(found);
    char t1[32], t2[32];
    snprintf(t1, sizeof(t1), "%s %s", words[c], words[a]);
    snprintf(t2, sizeof(t2), "%s %s %s", words[c], words[b], words[a]);
    memset(&cache, 0, sizeof(cache));
    compare(m, &cache, t1, strlen(t1));
    CHECK(entry_of(words[a]) % 2 == 0 && entry_of(words[c]) % 2 == 1);
    compare(m, &cache, t2, strlen(t2));  // a full comparison with and without the cache
    gf_clf_model_unref(m);
}

/* Words that mostly miss go to the batches (cold), and the cache warms up again once words
 * come back: the same bags in both regimes. */
static void test_cold_and_back(void)
{
    const struct gf_clf_hash_params hp = {.buckets = 4096, .seed = 5, .word_min = 1,
                                          .word_max = 2, .char_min = 3, .char_max = 5};
    struct gf_clf_model *m = make_model(&hp, 48, 8, 0);
    REQUIRE(m != NULL);
    m->head->distinct = true;
    memset(&cache, 0, sizeof(cache));
    struct gf_buf b;
    gf_buf_init(&b, 1 << 16);
    for (int i = 0; i < 20; i++) {
        make_text(&b, 3, 1500);  // fresh random words
        compare(m, &cache, b.data, b.len);
    }
    CHECK(cache.looks >= 64 && 2 * cache.misses > cache.looks);
    for (int i = 0; i < 200; i++) {
        make_text(&b, 0, 1500);  // a small vocabulary
        compare(m, &cache, b.data, b.len);
    }
    CHECK(2 * cache.misses < cache.looks);
    gf_buf_cleanup(&b);
    gf_clf_model_unref(m);
}


/* A head with distinct features adds the rows of a text's distinct buckets: the head of 8
 * dimensions through its word operations (h8), any other width through the kernels. Both
 * against the sum taken here row by row, with and without the cache, on texts of more than
 * 256 new buckets (h8 is added into the sum every 256 rows) or more than the set's log holds
 * (the set is then cleared word by word) and rows at the int8 extremes; the set is clear after
 * each text. */
static void test_head_rows(void)
{
    const struct gf_clf_hash_params hp = {.buckets = 1 << 16, .seed = 3, .word_min = 1,
                                          .word_max = 2, .char_min = 3, .char_max = 5};
    static struct feats f;
    static uint8_t seen[1 << 16];
    struct gf_buf b;
    gf_buf_init(&b, 1 << 16);
    const uint32_t widths[] = {8, 16, 8, 8};
    const int fills[] = {0, 0, -128, 127};
    for (size_t w = 0; w < GF_ARRAY_LEN(widths); w++) {
        struct gf_clf_model *m = make_model(&hp, 48, widths[w], fills[w]);
        REQUIRE(m != NULL);
        m->head->distinct = true;
        const uint32_t hd = m->head->dim;
        int big = 0;   // texts of more new buckets than h8 holds
        int full = 0;  // and than the log holds
        for (int rep = 0; rep < 40; rep++) {
            // Every tenth text is long: more new buckets than the set's log holds.
            make_text(&b, rep % 2 ? 3 : 0, rep % 10 == 9 ? 20000 : 50 + next() % 3000);
            f.n = 0;
            gf_clf_features(&m->hash, b.data, b.len, record, &f);
            int64_t want[16] = {0};
            size_t distinct = 0;
            memset(seen, 0, sizeof(seen));
            for (size_t i = 0; i < f.n; i++) {
                if (seen[f.v[i]])
                    continue;
                seen[f.v[i]] = 1;
                distinct++;
                for (uint32_t d = 0; d < hd; d++)
                    want[d] += m->head->emb_q[(size_t)f.v[i] * hd + d];
            }
            for (int cached = 0; cached < 2; cached++) {
                int64_t acc[64 + 16] = {0};
                int32_t acc32[64];
                struct gf_clf_scratch *s;
                REQUIRE(gf_clf_scratch_new(m, &s) == 0);
                struct gf_clf_bag bag;
                gf_clf_bag_init(&bag, m, acc, acc32, cached ? &cache : NULL, &s->seen, s->fresh);
                struct gf_clf_feat_state fs = {{0}, 0};
                gf_clf_features_tok(&m->hash, &fs, b.data, b.len, gf_clf_bag_add,
                                    gf_clf_bag_token, &bag);
                gf_clf_bag_finish(&bag);
                full += s->seen.full;
                gf_clf_seen_clear(&s->seen);
                uint64_t any = 0;
                for (size_t i = 0; i < GF_CLF_DISTINCT_WORDS; i++)
                    any |= s->seen.bits[i];
                CHECK(any == 0);
                CHECK(bag.n_distinct == distinct);
                CHECK(memcmp(acc + 48, want, hd * sizeof(int64_t)) == 0);
                gf_clf_scratch_free(s);
            }
            big += distinct > 300;
        }
        CHECK(big > 5 && full > 0);
        gf_clf_model_unref(m);
    }
    gf_buf_cleanup(&b);
}

/* A view without the head (a policy stage that reads no spam) shares the thread's cache with
 * the whole model: texts scored in turn through both, with and without the cache, give the
 * view the whole model's bits for every category but the head's (NaN), and the whole model its
 * own bits, although the view fills entries without the head's lanes; for a head with distinct
 * features (the shipped shape) and one that adds every occurrence. */
static void view_of(bool distinct)
{
    const struct gf_clf_hash_params hp = {.buckets = 4096, .seed = 5, .word_min = 1,
                                          .word_max = 2, .char_min = 3, .char_max = 5};
    struct gf_clf_model *m = make_model(&hp, 48, 8, 0);
    REQUIRE(m != NULL);
    m->head->distinct = distinct;
    m->head->pooling = distinct ? GF_CLF_POOL_SQRT : GF_CLF_POOL_MEAN;
    for (size_t i = 0; i < 4; i++)  // make_model leaves the head's output layer zero
        ((float *)m->head->w2)[i] = (float)((int)(next() % 201) - 100) / 20.0f;
    struct gf_clf_model *v = gf_clf_model_without_head(m);
    REQUIRE(v != NULL && v != m && v->head == NULL);
    CHECK(gf_clf_model_head_category(m, 0) && gf_clf_model_head_category(v, 0));
    CHECK(!gf_clf_model_head_category(m, 1) && !gf_clf_model_head_category(v, 2));
    struct gf_err err = {0};
    CHECK(gf_clf_model_save(v, "/nonexistent/view.gguf", &err) == GF_EINVAL);
    struct gf_clf_scratch *s;
    REQUIRE(gf_clf_scratch_new(m, &s) == 0);
    memset(&cache, 0, sizeof(cache));
    struct gf_buf b;
    gf_buf_init(&b, 1 << 16);
    size_t differ = 0, spam_moves = 0;
    float last_spam = -1;
    for (int rep = 0; rep < 400; rep++) {
        make_text(&b, rep % 2 == 0 ? 0 : 2, 1 + next() % 2000);
        float whole[3], whole_c[3], view[3], view_c[3];
        bool view_first = next() % 2;
        s->tc = &cache;
        if (view_first)
            REQUIRE(gf_clf_model_score(v, b.data, b.len, view_c, s) == 0);
        REQUIRE(gf_clf_model_score(m, b.data, b.len, whole_c, s) == 0);
        if (!view_first)
            REQUIRE(gf_clf_model_score(v, b.data, b.len, view_c, s) == 0);
        s->tc = NULL;
        REQUIRE(gf_clf_model_score(m, b.data, b.len, whole, s) == 0);
        REQUIRE(gf_clf_model_score(v, b.data, b.len, view, s) == 0);
        CHECK(memcmp(whole, whole_c, sizeof(whole)) == 0);
        CHECK(memcmp(view, view_c, sizeof(view)) == 0);
        CHECK(isnan(view[0]) && !isnan(whole[0]));
        CHECK(memcmp(view + 1, whole + 1, 2 * sizeof(float)) == 0);
        differ += whole[1] != whole[2];
        spam_moves += whole[0] != last_spam;
        last_spam = whole[0];
    }
    CHECK(differ > 100 && spam_moves > 100);
    CHECK(cache.model == m->id);  // one cache for both: never emptied between them
    // A view has no head to attach to it, nor is it one.
    struct gf_clf_model *h = NULL;
    REQUIRE(gf_clf_model_alloc(1, CATS, &hp, 8, 0, &h) == 0);
    CHECK(gf_clf_model_attach_head(v, h, &err) == GF_EINVAL);
    // A model without a head is its own view.
    struct gf_clf_model *plain = make_model(&hp, 16, 0, 0);
    REQUIRE(plain != NULL);
    struct gf_clf_model *pv = gf_clf_model_without_head(plain);
    CHECK(pv == plain);
    gf_clf_model_unref(pv);
    gf_clf_model_unref(plain);
    gf_clf_model_unref(m);  // the view keeps the model's arrays alive
    float after[3];
    REQUIRE(gf_clf_model_score(v, "still scoring after the model's unref", 37, after, s) == 0);
    CHECK(isnan(after[0]) && !isnan(after[1]));
    gf_buf_cleanup(&b);
    gf_clf_scratch_free(s);
    gf_clf_model_unref(v);
}

static void test_view(void)
{
    view_of(true);
    view_of(false);
}

int main(void)
{
    test_head_rows();
    test_marks_move();
    test_cold_and_back();
    test_models();
    test_extremes();
    test_head_renews_id();
    test_view();
    return test_report();
}
