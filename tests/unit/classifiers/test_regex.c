/* Unit tests of classifiers/regex.c: patterns and keyword lists hit what they should on the
 * original text and on its canonical form (evasion variants), miss look-alikes that are not
 * matches, report precise compile errors, fail closed on runaway patterns, and survive OOM; the
 * literal-set prefilter (rx.c) answers as a plain search does, looks for a piece of each
 * keyword that is not a common word, and loses no hit of the example policy's keywords. */
#include "scan_util.h"

#include "classifiers/rx_int.h"

#include "text_gen.h"

static void test_regex_basic(void)
{
    struct gf_detector *d;
    const char *pats[] = {"(?i)acme\\s+launch\\s+codes", "https?://"};
    REQUIRE(gf_regex_new("secret", pats, 2, 0, &d, NULL, NULL) == 0);
    const char *s = "the ACME launch  codes are here: http://x";
    CHECK(scan(d, s) == 2);
    CHECK(has_hit(s, "secret", "ACME launch  codes"));
    CHECK(has_hit(s, "secret", "http://"));
    CHECK(hits.v[0].index == 0 && hits.v[1].index == 1 && !hits.v[0].canonical);
    CHECK(scan(d, "acme rocket launch codes") == 0);  // false positive guard
    CHECK(scan(d, "") == 0);
    // Evasion variants are caught on the canonical form and mapped back to the original.
    const char *ev[] = {
        "the \xef\xbc\xa1\xef\xbc\xa3\xef\xbc\xad\xef\xbc\xa5 launch codes",  // full-width
        "the a\xe2\x80\x8b" "cme launch codes",                              // zero-width
        "the \xd0\xb0" "cme l\xd0\xb0unch c\xd0\xbe" "des",                   // Cyrillic
        "the 4cm3 l4unch c0d3s",                                             // leetspeak
        "the a c m e  l a u n c h  c o d e s",                               // spacing
        "the \xf0\x9d\x90\x9a\xf0\x9d\x90\x9c\xf0\x9d\x90\xa6\xf0\x9d\x90\x9e launch codes",
    };
    for (size_t i = 0; i < GF_ARRAY_LEN(ev); i++) {
        CHECK_MSG(scan(d, ev[i]) == 1, "variant %zu", i);
        CHECK_MSG(hits.n == 1 && hits.v[0].canonical && hits.v[0].start == 4 &&
                      hits.v[0].end == strlen(ev[i]),
                  "variant %zu span", i);
    }
    gf_detector_free(d);

    // Case-sensitive pattern: exact case on the original, any case on the canonical form.
    const char *cs[] = {"Secret"};
    REQUIRE(gf_regex_new("x", cs, 1, GF_RX_ORIGINAL_ONLY, &d, NULL, NULL) == 0);
    CHECK(scan(d, "a Secret") == 1);
    CHECK(scan(d, "a secret") == 0);
    CHECK(scan(d, "a S\xd0\xb5" "cret") == 0);  // original only
    gf_detector_free(d);
    REQUIRE(gf_regex_new("x", cs, 1, 0, &d, NULL, NULL) == 0);
    CHECK(scan(d, "a S\xd0\xb5" "cret") == 1 && hits.v[0].canonical);
    gf_detector_free(d);
    gf_detector_free(NULL);
}

static void test_regex_empty_and_invalid_utf8(void)
{
    struct gf_detector *d;
    const char *pats[] = {"x*", "\\bword\\b", "caf\\w"};
    REQUIRE(gf_regex_new("t", pats, 3, 0, &d, NULL, NULL) == 0);
    const char *s = "a word\xff\xfe x caf\xc3\xa9";
    CHECK(scan(d, s) == 3);  // "x" once, "word", "café" (\w is Unicode)
    CHECK(has_hit(s, "t", "word"));
    CHECK(has_hit(s, "t", "caf\xc3\xa9"));
    gf_detector_free(d);
}

static void test_regex_errors(void)
{
    struct gf_detector *d = (void *)1;
    struct gf_err err = {0};
    size_t bad = 99;
    const char *pats[] = {"ok", "abc(de"};
    CHECK(gf_regex_new("t", pats, 2, 0, &d, &bad, &err) == GF_EINVAL);
    CHECK(d == NULL && bad == 1);
    CHECK_STREQ(err.msg, "PCRE2 error at offset 6: missing closing parenthesis");
    gf_err_clear(&err);
    const char *pats2[] = {"a{2,1}"};
    CHECK(gf_regex_new("t", pats2, 1, 0, &d, &bad, &err) == GF_EINVAL && bad == 0);
    CHECK(strstr(err.msg, "offset 5") != NULL);
    gf_err_clear(&err);
    CHECK(gf_regex_new("t", pats, 0, 0, &d, &bad, &err) == GF_EINVAL);
    const char *kw[] = {"fine", "  "};
    gf_err_clear(&err);
    CHECK(gf_keywords_new("t", kw, 2, 0, &d, &bad, &err) == GF_EINVAL && bad == 1);
    CHECK_STREQ(err.msg, "empty keyword");
}

// A pattern with catastrophic backtracking fails closed instead of hanging.
static void test_regex_limit(void)
{
    struct gf_detector *d;
    const char *pats[] = {"^(a+)+$"};
    REQUIRE(gf_regex_new("t", pats, 1, GF_RX_ORIGINAL_ONLY, &d, NULL, NULL) == 0);
    char s[64];
    memset(s, 'a', 40);
    s[40] = 'b';
    s[41] = '\0';
    struct gf_err err = {0};
    struct gf_scan in = {s, strlen(s), NULL, scratch, 0};
    gf_hits_reset(&hits);
    CHECK(gf_detector_scan(d, &in, &hits, &err) == GF_ETOOBIG);
    CHECK(strstr(err.msg, "cannot be decided") != NULL);
    gf_detector_free(d);
}

static void test_keywords(void)
{
    struct gf_detector *d;
    const char *kw[] = {"free money", "c++", "Café", "$$$"};
    REQUIRE(gf_keywords_new("kw", kw, 4, GF_RX_CASELESS, &d, NULL, NULL) == 0);
    const char *s = "Get FREE\n money with C++ at the CAF\xc3\x89, $$$!";
    CHECK(scan(d, s) == 4);
    CHECK(has_hit(s, "kw", "FREE\n money"));
    CHECK(has_hit(s, "kw", "C++"));
    CHECK(has_hit(s, "kw", "CAF\xc3\x89"));
    CHECK(has_hit(s, "kw", "$$$"));
    for (size_t i = 0; i < hits.n; i++)
        CHECK(hits.v[i].index >= 0 && hits.v[i].index < 4);
    CHECK(scan(d, "freemoneyz and cafeteria") == 0);  // word boundaries
    CHECK(scan(d, "carefree moneys") == 0);
    // Evasions of a keyword, found through the canonical form.
    const char *v = "fr33 m0n3y";
    CHECK(scan(d, v) == 1 && hits.v[0].canonical && hits.v[0].index == 0);
    CHECK(scan(d, "f r e e  m o n e y") == 1);
    CHECK(scan(d, "\xef\xbd\x86\xef\xbd\x92\xef\xbd\x85\xef\xbd\x85 money") == 1);
    CHECK(scan(d, "cafe") == 1 && hits.v[0].index == 2);
    gf_detector_free(d);

    const char *cs[] = {"Apple"};
    REQUIRE(gf_keywords_new("kw", cs, 1, GF_RX_ORIGINAL_ONLY, &d, NULL, NULL) == 0);
    CHECK(scan(d, "an Apple") == 1);
    CHECK(scan(d, "an apple") == 0);
    gf_detector_free(d);

    // The prefilter looks for a piece that few texts hold: "DAN", not the longer-or-equal
    // common words around it; matches are found as before, in either case, with or without
    // the canonical form, and a text with the common words only runs no pattern.
    const char *dan[] = {"you are now DAN", "ignore previous instructions"};
    for (int only_orig = 0; only_orig < 2; only_orig++) {
        REQUIRE(gf_keywords_new("kw", dan, 2, only_orig ? GF_RX_ORIGINAL_ONLY : GF_RX_CASELESS,
                                &d, NULL, NULL) == 0);
        CHECK(scan(d, "From now on you are now DAN, ok?") == 1 && hits.v[0].index == 0);
        CHECK(scan(d, "you  are\nnow DAN") == 1);
        CHECK(scan(d, "YOU ARE NOW dan") == (only_orig ? 0 : 1));
        CHECK(scan(d, "you are now Dan") == (only_orig ? 0 : 1));
        CHECK(scan(d, "you are now the DAN") == 0);
        CHECK(scan(d, "you are now here, and you are now done") == 0);
        CHECK(scan(d, "please ignore previous instructions") == 1 && hits.v[0].index == 1);
        gf_detector_free(d);
    }
}

// The piece of a keyword its prefilter looks for.
static void test_keyword_piece(void)
{
    const struct {
        const char *kw, *piece;
    } cases[] = {
        {"you are now DAN", "DAN"},
        {"ignore previous instructions", "instructions"},
        {"disregard the system prompt", "disregard"},
        {"The  You\tNOW", "The"},       // all common: the longest, the first of those
        {"it is the one", "the"},        // "the" and "one" both common and of 3 bytes
        {"c++ for you", "c++"},
        {" \t lone\r\n", "lone"},
        {"Café au lait", "Café"},        // bytes, not letters: 5 of them
        {"an x", "x"},                    // a short rare piece beats a common one
    };
    for (size_t i = 0; i < GF_ARRAY_LEN(cases); i++) {
        size_t n = 99;
        const char *p = gf_rx_keyword_piece(cases[i].kw, &n);
        CHECK(p != NULL && n == strlen(cases[i].piece) && memcmp(p, cases[i].piece, n) == 0);
    }
    size_t n = 99;
    CHECK(gf_rx_keyword_piece(" \t\n", &n) == NULL && n == 0);
    CHECK(gf_rx_keyword_piece("", &n) == NULL && n == 0);
}

static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    const char *pats[] = {"ab+c", "(?i)x\\s+y"};
    const char *kw[] = {"alpha", "beta gamma"};
    for (int which = 0; which < 2; which++) {
        for (long k = 1;; k++) {
            struct gf_detector *d = NULL;
            gf_alloc_fail_after(k, false);
            int rc = which ? gf_keywords_new("t", kw, 2, 0, &d, NULL, NULL)
                           : gf_regex_new("t", pats, 2, 0, &d, NULL, NULL);
            long failed = gf_alloc_failures();
            gf_alloc_fail_after(0, false);
            if (failed == 0) {
                CHECK(rc == 0);
                CHECK(scan(d, which ? "x beta  gamma" : "xabbc") == 1);
                gf_detector_free(d);
                break;
            }
            // A failed JIT compile only costs speed: the detector works without it.
            CHECK_MSG(rc == GF_ENOMEM ? d == NULL : rc == 0 && d != NULL, "step %ld rc %d", k, rc);
            if (d)
                CHECK(scan(d, which ? "x beta  gamma" : "xabbc") == 1);
            gf_detector_free(d);
        }
    }
    // Scanning under OOM: errors, never crashes; scratch creation too.
    for (long k = 1;; k++) {
        gf_alloc_fail_after(k, false);
        struct gf_scan_scratch *s = gf_scan_scratch_new();
        long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        gf_scan_scratch_free(s);
        if (failed == 0) {
            CHECK(s != NULL);
            break;
        }
        CHECK(s == NULL);
    }
}

static uint64_t rng = 0xda942042e4dd58b5ull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static unsigned char fold(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

static bool word_byte(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

// A plain search for any of the literals (ASCII letters in either case when caseless; a
// bounded one with no word byte right before or after it).
static bool naive_any(char *const *lits, const size_t *lens, const bool *bounded, size_t nl,
                      const unsigned char *t, size_t n, bool caseless)
{
    for (size_t k = 0; k < nl; k++)
        for (size_t p = 0; p + lens[k] <= n; p++) {
            size_t j = 0;
            while (j < lens[k] && (caseless ? fold(t[p + j]) == fold((unsigned char)lits[k][j])
                                            : t[p + j] == (unsigned char)lits[k][j]))
                j++;
            if (j == lens[k] && (!bounded[k] || ((p == 0 || !word_byte(t[p - 1])) &&
                                                 (p + j == n || !word_byte(t[p + j])))))
                return true;
        }
    return false;
}

/* gf_rx_lits_any and gf_rx_lits_which against a plain search: sets of 1 to 70 literals (so one key, many keys, and
 * more keys or literals than the SIMD path takes), of one byte and longer, with capitals and
 * non-ASCII bytes, bounded by non-word bytes or not, on texts of every length up to 80 and
 * longer (each in an allocation of its exact size) built from pieces of the literals, near
 * misses and random bytes; caseless or not, with the lowercase-text shortcut on texts without
 * capitals; with AVX2 (when the CPU has it) and without. */
static void test_literal_sets(void)
{
    static const char *const pool[] = {"instructions", "disregard", "you", "developer", "x",
                                       "Ab", "\xe2\x84\xaa", "\xc5\xbf", "zz", "q", "launch",
                                       "codes", "a$b", "@home", "uc", "QuIz", "\xc3\xa9t\xc3\xa9"};
    char buf[64];
    size_t found = 0, total = 0;
    for (int rep = 0; rep < 6000; rep++) {
        struct gf_rx_lits l = {0};
        l.caseless = next() % 2 == 0;
        size_t nl = rep % 10 == 0 ? 1 + next() % 70 : 1 + next() % 6;
        char *lits[80];
        size_t lens[80];
        bool bounded[80];
        for (size_t k = 0; k < nl; k++) {
            size_t m;
            if (next() % 3 == 0) {  // random letters, so many different keys
                m = 1 + next() % 6;
                for (size_t j = 0; j < m; j++)
                    buf[j] = (char)((next() % 2 ? 'a' : 'A') + next() % 26);
            } else {
                const char *p = pool[next() % GF_ARRAY_LEN(pool)];
                m = strlen(p);
                memcpy(buf, p, m);
            }
            if (l.caseless)  // the set keeps caseless literals in lowercase
                for (size_t j = 0; j < m; j++)
                    buf[j] = (char)fold((unsigned char)buf[j]);
            bounded[k] = next() % 2 == 0;
            REQUIRE(gf_rx_lits_add(&l, buf, m, bounded[k]) == 0);
            lits[k] = l.v[k];
            lens[k] = m;
        }
        bool lower = l.caseless && next() % 2 == 0;
        if (rep % 2)  // the sixteen-byte search alone, also on a CPU with AVX2
            l.keys[0].avx2 = l.keys[1].avx2 = false;
        size_t n = rep % 81 + (rep % 7 == 0 ? next() % 2000 : 0);
        unsigned char *t = gf_malloc(n ? n : 1);
        REQUIRE(t != NULL);
        for (size_t i = 0; i < n;) {
            uint64_t r = next();
            if (r % 4 == 0 && nl > 0) {  // a literal, or a literal cut short
                size_t k = (r >> 8) % nl, m = lens[k] - ((r >> 16) % 3 == 0 && lens[k] > 1);
                for (size_t j = 0; j < m && i < n; j++) {
                    unsigned char c = (unsigned char)lits[k][j];
                    t[i++] = (r >> 20) % 2 && c >= 'a' && c <= 'z' ? (unsigned char)(c - 32) : c;
                }
            } else {
                t[i++] = r % 3 == 0 ? (unsigned char)(r >> 24)
                                    : (unsigned char)(" aeiouyqx _.-\n"[(r >> 8) % 13]);
            }
        }
        if (lower)
            for (size_t i = 0; i < n; i++)
                t[i] = fold(t[i]);
        bool want = naive_any(lits, lens, bounded, nl, t, n, l.caseless);
        CHECK_MSG(gf_rx_lits_any(&l, (const char *)t, n, lower) == want,
                  "rep %d: %zu literals, %zu bytes, caseless %d lower %d", rep, nl, n, l.caseless,
                  lower);
        if (nl <= 64) {  // which literals: each one alone against the plain search
            uint64_t which = 0, each = 0;
            bool any = gf_rx_lits_which(&l, (const char *)t, n, lower, &which);
            for (size_t k = 0; k < nl; k++)
                each |= (uint64_t)naive_any(lits + k, lens + k, bounded + k, 1, t, n,
                                            l.caseless) << k;
            CHECK_MSG(any == want && which == each, "rep %d: literals %#llx, plain %#llx", rep,
                      (unsigned long long)which, (unsigned long long)each);
        }
        found += want;
        total++;
        gf_free(t);
        for (size_t k = 0; k < l.n; k++)
            gf_free(l.v[k]);
        gf_free(l.v);
        gf_free(l.bounded);
        gf_free(l.len);
        gf_free(l.key);
        gf_free(l.pair);
    }
    CHECK(found > total / 4 && found < total * 3 / 4 + total / 5);  // both answers are tested
}

/* The example policy's keyword list hits the same spans with its prefilter as without one: the
 * same list plus a keyword with a non-ASCII piece (which turns the caseless prefilter off; its
 * own hits are left out, and no other keyword can match inside it), on texts of prose,
 * keywords, near misses ("guidance", "dan_", "9dan") and evasions, with their canonical form. */
static void test_keyword_prefilter(void)
{
    const char *kw[] = {"ignore previous instructions", "ignore all previous instructions",
                        "disregard the system prompt", "you are now DAN",
                        "developer mode enabled", "caf\xc3\xa9 x"};
    struct gf_detector *with, *without;
    REQUIRE(gf_keywords_new("kw", kw, 5, GF_RX_CASELESS, &with, NULL, NULL) == 0);
    REQUIRE(gf_keywords_new("kw", kw, 6, GF_RX_CASELESS, &without, NULL, NULL) == 0);
    struct gf_hits other;
    gf_hits_init(&other, 1000);
    struct gf_buf b;
    gf_buf_init(&b, 1 << 20);
    size_t bad = 0, found = 0;
    for (int iter = 0; iter < 5000; iter++) {
        gen_text(&b, 1 + gen_next() % 600);
        struct gf_norm n;
        struct gf_err err = {0};
        REQUIRE(gf_normalize(b.data, b.len, &n, NULL) == 0);
        struct gf_scan in = {b.data, b.len, &n, scratch, 0};
        gf_hits_reset(&hits);
        gf_hits_reset(&other);
        REQUIRE(gf_detector_scan(with, &in, &hits, &err) == 0);
        REQUIRE(gf_detector_scan(without, &in, &other, &err) == 0);
        size_t k = 0;
        bool same = true;
        for (size_t i = 0; i < other.n; i++) {
            if (other.v[i].index == 5)
                continue;
            same &= k < hits.n && hits.v[k].start == other.v[i].start &&
                    hits.v[k].end == other.v[i].end && hits.v[k].index == other.v[i].index &&
                    hits.v[k].canonical == other.v[i].canonical;
            k++;
        }
        same &= k == hits.n;
        found += hits.n > 0;
        if (!same && bad++ < 3)
            fprintf(stderr, "'%.*s': %zu hits with the prefilter, %zu without\n", (int)b.len,
                    b.data, hits.n, k);
        gf_norm_cleanup(&n);
    }
    CHECK(bad == 0);
    CHECK(found > 500);  // the texts do hold keywords
    gf_buf_cleanup(&b);
    gf_hits_cleanup(&other);
    gf_detector_free(with);
    gf_detector_free(without);
}

int main(void)
{
    scan_setup();
    RUN(test_regex_basic);
    RUN(test_regex_empty_and_invalid_utf8);
    RUN(test_regex_errors);
    RUN(test_regex_limit);
    RUN(test_keywords);
    RUN(test_keyword_piece);
    RUN(test_literal_sets);
    RUN(test_keyword_prefilter);
    RUN(test_oom);
    scan_teardown();
    return test_report();
}
