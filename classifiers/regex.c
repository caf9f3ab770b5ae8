/* regex.c — the regex and keyword-list detectors. Each pattern is compiled once (at policy
 * load) twice over at most: as written for the original text, and caselessly for the
 * canonical form, which is lowercase (keywords are themselves normalized for it). A hit found
 * only on the canonical form is mapped back to the original span and marked canonical. */
#include "classifiers/rx_int.h"

#include <string.h>

/* The pieces of one keyword other than the one its list's prefilter looks for, each a set of
 * its own, the likeliest to be missing first; whole is false when some piece cannot be looked
 * for byte-wise (the pattern decides). */
struct kw_rest {
    struct gf_rx_lits **piece;
    size_t n;
    bool whole;
};

struct pat {
    pcre2_code *orig;   // matches the original text
    pcre2_code *canon;  // matches the canonical form; NULL when orig serves (caseless already)
    // Keyword lists: a text holding none of these cannot match (NULL: no prefilter), one
    // piece of each keyword; and per keyword, its other pieces, which a text holding that
    // keyword's piece must hold too (NULL, or a NULL entry: the pattern decides).
    struct gf_rx_lits *orig_lits, *canon_lits;
    struct kw_rest *orig_rest, *canon_rest;
};

struct rx {
    struct gf_detector det;
    char *type;
    unsigned flags;
    bool marks;  // a keyword alternation: the pattern index comes from (*MARK:n)
    size_t words;  // keywords in the alternation
    size_t n;
    struct pat *v;
    pcre2_general_context *gctx;
};

struct walk {
    const struct gf_scan *in;
    struct gf_hits *hits;
    size_t base;
    const struct rx *rx;
    int index;
    bool canonical;
    struct gf_err *err;
};

static int on_match(void *ud, size_t s, size_t e, pcre2_match_data *md)
{
    struct walk *w = ud;
    int index = w->index;
    if (w->rx->marks) {
        PCRE2_SPTR mark = pcre2_get_mark(md);
        index = mark ? (int)strtol((const char *)mark, NULL, 10) : -1;
    }
    if (w->canonical)
        gf_norm_span(w->in->norm, s, e, &s, &e);
    return gf_rx_add_hit(w->hits, w->base, s, e, w->rx->type, index, w->canonical, w->err);
}

/* True when text[0..n) may hold a keyword: it holds the chosen piece of one (rare), and all
 * its other pieces (rest) too, each between non-word bytes. A piece missing from a text is
 * looked for alone (one key: about a third of an instruction per byte), and the common words
 * among them are found early, so a text holding "instructions" but not "ignore" costs one
 * more scan, not the pattern. */
static bool keywords_worth(const struct gf_rx_lits *rare, const struct kw_rest *rest,
                           size_t words, const char *text, size_t n, bool lower)
{
    uint64_t found;
    if (rest == NULL || rare->n > 64)
        return gf_rx_lits_any(rare, text, n, lower);
    if (!gf_rx_lits_which(rare, text, n, lower, &found))
        return false;
    for (; found != 0; found &= found - 1) {
        size_t k = (size_t)__builtin_ctzll(found), j = 0;
        if (k >= words || !rest[k].whole)  // U+212A or U+017F, or a piece not byte-wise
            return true;
        while (j < rest[k].n && gf_rx_lits_any(rest[k].piece[j], text, n, lower))
            j++;
        if (j == rest[k].n)
            return true;
    }
    return false;
}

static int rx_scan(const struct gf_detector *d, const struct gf_scan *in, struct gf_hits *out,
                   struct gf_err *err)
{
    const struct rx *rx = d->impl;
    struct walk w = {in, out, out->n, rx, 0, false, err};
    bool canon = !(rx->flags & GF_RX_ORIGINAL_ONLY) && gf_norm_has_map(in->norm);
    bool differs = canon && gf_rx_canon_differs(in);
    for (size_t i = 0; i < rx->n; i++) {
        w.index = (int)i;
        w.canonical = false;
        int rc = 0;
        if (rx->v[i].orig_lits == NULL ||
            keywords_worth(rx->v[i].orig_lits, rx->v[i].orig_rest, rx->words, in->text, in->len,
                           false))
            rc = gf_rx_each(rx->v[i].orig, in->text, in->len, in->scratch, on_match, &w, err);
        if (rc != 0)
            return rc;
        // The same code on the same bytes finds nothing new.
        if (!canon || (!differs && rx->v[i].canon == NULL))
            continue;
        w.canonical = true;
        const pcre2_code *c = rx->v[i].canon ? rx->v[i].canon : rx->v[i].orig;
        const struct gf_rx_lits *cl = rx->v[i].canon ? rx->v[i].canon_lits : rx->v[i].orig_lits;
        const struct kw_rest *cr = rx->v[i].canon ? rx->v[i].canon_rest : rx->v[i].orig_rest;
        if (cl != NULL && !keywords_worth(cl, cr, rx->words, in->norm->text, in->norm->len, true))
            continue;
        rc = gf_rx_each(c, in->norm->text, in->norm->len, in->scratch, on_match, &w, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static void rest_free(struct kw_rest *rest, size_t n)
{
    for (size_t i = 0; rest != NULL && i < n; i++) {
        for (size_t j = 0; j < rest[i].n; j++)
            gf_rx_lits_free(rest[i].piece[j]);
        gf_free(rest[i].piece);
    }
    gf_free(rest);
}

static void rx_destroy(struct gf_detector *d)
{
    struct rx *rx = d->impl;
    for (size_t i = 0; i < rx->n; i++) {
        pcre2_code_free(rx->v[i].orig);
        pcre2_code_free(rx->v[i].canon);
        gf_rx_lits_free(rx->v[i].orig_lits);
        gf_rx_lits_free(rx->v[i].canon_lits);
        rest_free(rx->v[i].orig_rest, rx->words);
        rest_free(rx->v[i].canon_rest, rx->words);
    }
    gf_free(rx->v);
    gf_free(rx->type);
    pcre2_general_context_free(rx->gctx);
    gf_free(rx);
}

static const struct gf_detector_ops regex_ops = {"regex", rx_scan, rx_destroy};
static const struct gf_detector_ops keywords_ops = {"keywords", rx_scan, rx_destroy};

static struct rx *rx_alloc(const struct gf_detector_ops *ops, const char *type, size_t n,
                           unsigned flags)
{
    struct rx *rx = gf_calloc(1, sizeof(*rx));
    if (rx == NULL)
        return NULL;
    rx->det.ops = ops;
    rx->det.impl = rx;
    rx->flags = flags;
    rx->type = gf_strdup(type);
    rx->v = gf_calloc(n, sizeof(*rx->v));
    rx->gctx = gf_rx_gctx();
    if (rx->type == NULL || rx->v == NULL || rx->gctx == NULL) {
        rx->n = 0;
        rx_destroy(&rx->det);
        return NULL;
    }
    return rx;
}

int gf_regex_new(const char *type, const char *const *patterns, size_t n, unsigned flags,
                 struct gf_detector **out, size_t *bad, struct gf_err *err)
{
    *out = NULL;
    if (n == 0)
        return gf_err_set(err, GF_EINVAL, "no pattern");
    struct rx *rx = rx_alloc(&regex_ops, type, n, flags);
    if (rx == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory building a regex detector");
    uint32_t opts = PCRE2_UCP | ((flags & GF_RX_CASELESS) ? PCRE2_CASELESS : 0);
    int rc = 0;
    for (size_t i = 0; i < n; i++, rx->n++) {
        if (bad)
            *bad = i;
        rc = gf_rx_compile(rx->gctx, patterns[i], strlen(patterns[i]), opts, &rx->v[i].orig,
                           err);
        if (rc == 0 && !(flags & (GF_RX_CASELESS | GF_RX_ORIGINAL_ONLY)))
            rc = gf_rx_compile(rx->gctx, patterns[i], strlen(patterns[i]),
                               opts | PCRE2_CASELESS, &rx->v[i].canon, err);
        if (rc != 0) {
            rx->n++;
            rx_destroy(&rx->det);
            return rc;
        }
    }
    *out = &rx->det;
    return 0;
}

static bool blank(const char *w)
{
    for (; *w; w++)
        if (*w != ' ' && *w != '\t' && *w != '\n' && *w != '\r')
            return false;
    return true;
}

static bool ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';  // what the trie turns into \s+
}

// The commonest English words, lowercase: a prefilter on one of them lets nearly every text
// through to the pattern ("you" of "you are now DAN" is in three 1 KB texts of real prompts,
// mail and comments in four; "dan" in one in fifteen).
static const char *const common_words[] = {
    "a", "about", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been", "but", "by",
    "can", "could", "did", "do", "for", "from", "get", "had", "has", "have", "he", "her", "him",
    "his", "how", "i", "if", "in", "into", "is", "it", "its", "just", "like", "me", "more", "my",
    "new", "no", "not", "now", "of", "on", "one", "only", "or", "our", "out", "she", "so", "some",
    "than", "that", "the", "their", "them", "then", "there", "they", "this", "to", "up", "us",
    "was", "we", "were", "what", "when", "which", "who", "will", "with", "would", "you", "your",
};

static bool common_word(const char *w, size_t n)
{
    for (size_t i = 0; i < GF_ARRAY_LEN(common_words); i++) {
        const char *c = common_words[i];
        size_t k = 0;
        while (k < n && c[k] != '\0' &&
               (w[k] >= 'A' && w[k] <= 'Z' ? w[k] + 32 : w[k]) == c[k])
            k++;
        if (k == n && c[k] == '\0')
            return true;
    }
    return false;
}

const char *gf_rx_keyword_piece(const char *w, size_t *len)
{
    const char *best = NULL;
    size_t best_len = 0;
    bool best_common = true;
    for (size_t a = 0; w[a];) {
        while (w[a] && ws(w[a]))
            a++;
        size_t e = a;
        while (w[e] && !ws(w[e]))
            e++;
        bool common = common_word(w + a, e - a);
        if (e > a && ((best_common && !common) || (best_common == common && e - a > best_len))) {
            best = w + a;
            best_len = e - a;
            best_common = common;
        }
        a = e;
    }
    *len = best_len;
    return best;
}

/* The prefilter of a keyword pattern: a whitespace-free piece of each keyword, which every
 * match holds verbatim, the longest that is not a common word (gf_rx_keyword_piece), between
 * bytes that are not ASCII word bytes: before the piece is the character before the match
 * ((?<!\w): not a word character, so its last byte is not one) or a space of \s+, after it the
 * character after the match ((?!\w)) or a space ("dan" of "guidance" lets no text through,
 * only "dan" as a word does). Returns
 * NULL (no prefilter) when, caseless, a piece holds non-ASCII bytes (Unicode case folding is
 * not byte-wise). Caseless, U+212A and U+017F also match 'k' and 's': a text holding them
 * always runs the pattern, unless it is a canonical form (canon), which never holds them
 * (fold.c spells them 'k' and 's'). */
static struct gf_rx_lits *keyword_lits(char *const *forms, size_t n, bool caseless, bool canon)
{
    struct gf_rx_lits *l = gf_calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->caseless = caseless;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        size_t best_len;
        const char *best = gf_rx_keyword_piece(forms[i], &best_len);
        for (size_t k = 0; caseless && k < best_len; k++)
            ok &= (unsigned char)best[k] < 0x80;
        ok = ok && best_len >= 1 && gf_rx_lits_add(l, best, best_len, true) == 0;
    }
    if (ok && caseless && !canon)
        ok = gf_rx_lits_add(l, "\xe2\x84\xaa", 3, false) == 0 &&
             gf_rx_lits_add(l, "\xc5\xbf", 2, false) == 0;
    if (!ok) {
        gf_rx_lits_free(l);
        return NULL;
    }
    return l;
}

/* Per keyword, its pieces other than the one keyword_lits took, each between non-word bytes
 * in every match as that one is (caseless: ASCII only, else the pattern decides), in the order
 * the prefilter prefers pieces: not a common word first, then the longest. NULL when out of
 * memory or for more than 64 keywords. */
static struct kw_rest *keyword_rest(char *const *forms, size_t n, bool caseless)
{
    if (n > 64)
        return NULL;
    struct kw_rest *rest = gf_calloc(n, sizeof(*rest));
    for (size_t i = 0; rest != NULL && i < n; i++) {
        size_t best_len, count = 0;
        const char *w = forms[i], *best = gf_rx_keyword_piece(w, &best_len);
        for (size_t a = 0; w[a]; count++) {  // pieces, at most
            while (w[a] && !ws(w[a]))
                a++;
            while (w[a] && ws(w[a]))
                a++;
        }
        rest[i].piece = gf_calloc(count + 1, sizeof(*rest[i].piece));
        bool ok = rest[i].piece != NULL;
        for (int pass = 0; ok && pass < 2; pass++)  // uncommon pieces, then common words
            for (size_t a = 0; ok && w[a];) {
                while (w[a] && ws(w[a]))
                    a++;
                size_t e = a;
                while (w[e] && !ws(w[e]))
                    e++;
                bool ascii = true;
                for (size_t k = a; caseless && k < e; k++)
                    ascii &= (unsigned char)w[k] < 0x80;
                ok = ascii;
                if (ok && e > a && w + a != best && common_word(w + a, e - a) == (pass == 1)) {
                    struct gf_rx_lits *l = gf_calloc(1, sizeof(*l));
                    ok = l != NULL;
                    if (ok) {
                        l->caseless = caseless;
                        rest[i].piece[rest[i].n++] = l;
                        ok = gf_rx_lits_add(l, w + a, e - a, true) == 0;
                    }
                }
                a = e;
            }
        // Longest first within each pass (a stable insertion sort of a few pieces).
        for (size_t j = 1; ok && j < rest[i].n; j++)
            for (size_t q = j; q > 0; q--) {
                struct gf_rx_lits *x = rest[i].piece[q - 1], *y = rest[i].piece[q];
                bool xc = common_word(x->v[0], x->len[0]), yc = common_word(y->v[0], y->len[0]);
                if (xc != yc || x->len[0] >= y->len[0])
                    break;
                rest[i].piece[q - 1] = y;
                rest[i].piece[q] = x;
            }
        rest[i].whole = ok;
    }
    return rest;
}

// Builds (?<!\w)(?:TRIE)(?!\w) over the keywords (their canonical forms when canon), with
// (*MARK:i) telling which keyword matched; *lits gets its prefilter (may be NULL).
static int keyword_pattern(const char *const *words, size_t n, bool canon, bool caseless,
                           struct gf_buf *b, struct gf_rx_lits **lits, struct kw_rest **rest,
                           size_t *bad, struct gf_err *err)
{
    char **forms = gf_calloc(n + 1, sizeof(*forms));
    if (forms == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory building a keyword list");
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (bad)
            *bad = i;
        if (blank(words[i])) {
            rc = gf_err_set(err, GF_EINVAL, "empty keyword");
            break;
        }
        if (canon) {
            struct gf_norm nm;
            rc = gf_normalize(words[i], strlen(words[i]), &nm, err);
            if (rc == 0 && (forms[i] = gf_strndup(nm.text, nm.len)) == NULL)
                rc = gf_err_set(err, GF_ENOMEM, "out of memory building a keyword list");
            gf_norm_cleanup(&nm);
            if (rc == 0 && blank(forms[i]))  // only invisible characters: nothing to match
                rc = gf_err_set(err, GF_EINVAL, "empty keyword");
        } else if ((forms[i] = gf_strdup(words[i])) == NULL) {
            rc = gf_err_set(err, GF_ENOMEM, "out of memory building a keyword list");
        }
    }
    if (rc == 0) {
        rc = gf_buf_puts(b, "(?<!\\w)(?:");
        if (rc == 0)
            rc = gf_rx_literal_trie(b, (const char *const *)forms, n);
        if (rc == 0)
            *lits = keyword_lits(forms, n, caseless, canon);
        if (rc == 0 && *lits != NULL)
            *rest = keyword_rest(forms, n, caseless);
        if (rc == 0)
            rc = gf_buf_puts(b, ")(?!\\w)");
        if (rc == GF_ETOOBIG)
            gf_err_set(err, rc, "keyword list too long");
        else if (rc != 0)
            gf_err_set(err, rc, "out of memory building a keyword list");
    }
    for (size_t i = 0; i < n; i++)
        gf_free(forms[i]);
    gf_free(forms);
    return rc;
}

int gf_keywords_new(const char *type, const char *const *words, size_t n, unsigned flags,
                    struct gf_detector **out, size_t *bad, struct gf_err *err)
{
    *out = NULL;
    if (n == 0)
        return gf_err_set(err, GF_EINVAL, "no keyword");
    struct rx *rx = rx_alloc(&keywords_ops, type, 1, flags);
    if (rx == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory building a keyword detector");
    rx->marks = true;
    rx->words = n;
    rx->n = 1;
    uint32_t opts = PCRE2_UCP | ((flags & GF_RX_CASELESS) ? PCRE2_CASELESS : 0);
    struct gf_buf b;
    gf_buf_init(&b, 16u << 20);
    int rc = keyword_pattern(words, n, false, (flags & GF_RX_CASELESS) != 0, &b,
                             &rx->v[0].orig_lits, &rx->v[0].orig_rest, bad, err);
    if (rc == 0)
        rc = gf_rx_compile(rx->gctx, b.data, b.len, opts, &rx->v[0].orig, err);
    if (rc == 0 && !(flags & GF_RX_ORIGINAL_ONLY)) {
        gf_buf_reset(&b);
        rc = keyword_pattern(words, n, true, true, &b, &rx->v[0].canon_lits,
                             &rx->v[0].canon_rest, bad, err);
        if (rc == 0)
            rc = gf_rx_compile(rx->gctx, b.data, b.len, opts | PCRE2_CASELESS, &rx->v[0].canon,
                               err);
    }
    gf_buf_cleanup(&b);
    if (rc != 0) {
        rx_destroy(&rx->det);
        return rc;
    }
    *out = &rx->det;
    return 0;
}

int gf_detector_scan(const struct gf_detector *d, const struct gf_scan *in, struct gf_hits *out,
                     struct gf_err *err)
{
    return d->ops->scan(d, in, out, err);
}

void gf_detector_free(struct gf_detector *d)
{
    if (d)
        d->ops->destroy(d);
}
