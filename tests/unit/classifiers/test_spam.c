/* Unit tests of classifiers/spam.c: typical spam scores high and ordinary requests, including
 * ones with a link or an urgent word, score low; each heuristic moves the score on its own; the
 * direct phrase scan agrees with the pattern; the score is that of the plain reference
 * (ref_spam.h) on random prose; the run ends of runs_int.h (spam.c's, the
 * folded-text one of normalize.c, the token one of clf_hash.c) agree with byte loops. */
#include "scan_util.h"

#include "classifiers/runs_int.h"

#include "ref_spam.h"
#include "text_gen.h"

static struct gf_detector *d;

static double score(const char *s)
{
    if (scan(d, s) != 1 || strcmp(hits.v[0].type, "spam") != 0)
        return -1;
    CHECK(hits.v[0].start == 0 && hits.v[0].end == strlen(s));
    return hits.v[0].score;
}

static void test_spam(void)
{
    const char *spam[] = {
        "WINNER!! You have won a FREE iPhone. CLICK HERE to claim your prize: http://win.example",
        "Make money fast!!! Work from home, earn cash, no credit check. Visit cheap-deals.biz now",
        "buy now buy now buy now cheap pills buy now buy now buy now cheap pills",
        "Congratulations! U have been selected to receive a 1000 cash prize. Txt CLAIM to 81010",
        "F R E E  M O N E Y!!! cl1ck h3re www.fr33cash.ru",
    };
    for (size_t i = 0; i < GF_ARRAY_LEN(spam); i++) {
        double s = score(spam[i]);
        CHECK_MSG(s > 0.8, "spam %zu scored %.3f", i, s);
    }
    const char *ham[] = {
        "Can you help me write a Python function that sorts a list of dictionaries by key?",
        "See the documentation at https://docs.python.org/3/library/functions.html for details.",
        "This is urgent: the deploy failed, can you look at the logs before the meeting?",
        "NASA and the ESA announced a joint mission today.",
        "I won the chess game yesterday, and my friend said congratulations.",
        "",
        "ok",
    };
    for (size_t i = 0; i < GF_ARRAY_LEN(ham); i++) {
        if (ham[i][0] == '\0') {
            CHECK(scan(d, "") == 0);
            continue;
        }
        double s = score(ham[i]);
        CHECK_MSG(s >= 0 && s < 0.3, "ham %zu scored %.3f", i, s);
    }
    // Each signal raises the score of a neutral sentence.
    double base = score("please send the report about the budget to the team");
    CHECK(score("PLEASE SEND THE REPORT ABOUT THE BUDGET TO THE TEAM") > base);
    CHECK(score("please send the report http://a.example http://b.example to the team") > base);
    CHECK(score("please send the report about the budget to the team, click here") > base);
    CHECK(score("send the report send the report send the report send the report") > base);
    CHECK(score("please send the report about the budget to the team!!!!") > base);
    // Only A-Z and a-z are letters: the bytes next to their ranges count as nothing.
    CHECK(score("ABCDEFGHIJKL @[`{ ok") == score("ABCDEFGHIJKL .... ok"));
    CHECK(score("ABCDEFGHIJKL @[`{ ok") != score("ABCDEFGHIJKL abcd ok"));
}

static uint64_t rng = 0x853c49e6748fea9bull;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* The score of text[0..len) with its canonical form given (phrases by the direct scan of the
 * canonical form) or without (phrases by the PCRE2 pattern on text itself). */
static double score_with(const char *text, size_t len, const struct gf_norm *norm)
{
    struct gf_err err = {0};
    gf_hits_reset(&hits);
    struct gf_scan in = {text, len, norm, scratch, 0};
    if (gf_detector_scan(d, &in, &hits, &err) != 0 || hits.n != 1)
        return -1;
    return hits.v[0].score;
}

/* On canonical text, the direct phrase scan counts what the pattern matches: texts made of
 * phrases, their first bytes, near misses and random bytes (every byte value, so the letter
 * counts see every class), each scored both ways on its own canonical form. */
static void test_direct_scan(void)
{
    static const char *const parts[] = {
        "click here", "click", "here", "buy now", "buy", "cl", "c", "b", "you won", "you",
        "you've won", "winner", "winners", "free money", "free", "risk-free", "100% free",
        "don't miss", "txt", "tx", "per week", "per min", "dm me", "d", "prize", "prizes",
        "CLICK HERE", "Buy Now", "w", "ww", "!!", "!", "www.example.com", "a.io", "x", "_txt",
        "2txt", "txt2", "\xc3\xa9txt",
    };
    static const char *const seps[] = {" ", "  ", "\n", ".", ", ", "", "-", "_", "\t"};
    struct gf_buf b;
    gf_buf_init(&b, 1 << 16);
    for (int rep = 0; rep < 3000; rep++) {
        gf_buf_reset(&b);
        size_t words = 1 + next() % 30;
        for (size_t i = 0; i < words; i++) {
            if (next() % 8 == 0) {
                for (size_t k = next() % 12; k > 0; k--)
                    gf_buf_putc(&b, (char)(next() % 256));
            } else {
                gf_buf_puts(&b, parts[next() % GF_ARRAY_LEN(parts)]);
            }
            gf_buf_puts(&b, seps[next() % GF_ARRAY_LEN(seps)]);
        }
        struct gf_norm n;
        REQUIRE(gf_normalize(b.data, b.len, &n, NULL) == 0);
        if (n.len > 0) {
            double direct = score_with(n.text, n.len, &n);
            double pattern = score_with(n.text, n.len, NULL);
            CHECK_MSG(direct >= 0 && direct == pattern, "'%.*s': %.6f vs %.6f", (int)n.len, n.text,
                      direct, pattern);
        }
        gf_norm_cleanup(&n);
    }
    gf_buf_cleanup(&b);
}

/* The score with the canonical form given is the plain reference's, on texts of prose, spam
 * phrases, evasions and random bytes of every length up to 2100 bytes (so that the 64-byte
 * chunks end everywhere, and the phrase count reaches its cap of 8). */
static void test_reference(void)
{
    struct gf_buf b;
    gf_buf_init(&b, 1 << 20);
    size_t bad = 0;
    for (int iter = 0; iter < 20000; iter++) {
        gen_text(&b, 1 + gen_next() % (iter % 10 == 0 ? 2100 : 400));
        struct gf_norm n;
        REQUIRE(gf_normalize(b.data, b.len, &n, NULL) == 0);
        double got = score_with(b.data, b.len, &n);
        double want = ref_spam_score(b.data, b.len, n.text, n.len);
        if (got != want && bad++ < 3)
            fprintf(stderr, "'%.*s': %.17g, reference %.17g\n", (int)b.len, b.data, got, want);
        gf_norm_cleanup(&n);
    }
    CHECK(bad == 0);
    gf_buf_cleanup(&b);
}

/* The same on texts of a few words over and over, up to 9000 bytes: many repeated trigrams,
 * more words than the trigrams look at (1026), words and phrases across every chunk boundary,
 * phrases after '_' and non-ASCII bytes and, with the text taken as its own canonical form,
 * phrases spaced by tabs and line breaks. */
static void test_reference_dense(void)
{
    static const char *const words[] = {
        "a", "b", "ab", "buy", "now", "buy now", "dm", "me", "dm me", "click", "here",
        "Click Here", "txt", "_txt", "\xc3\xa9txt", "x_y", "9", "cash", "prize", "you", "won",
        "You've won", "no", "credit check", "abcdefgh", "abcdefghi", "abcdefghijklmnopq",
        "a.io", "www.x", "http://x.com/a",
    };
    static const char *const seps[] = {" ", " ", " ", "  ", "\t", "\n", "\r\n", ".", "-", "_",
                                       "", "!", ":", "\xc2\xa0", "\v"};
    struct gf_buf b;
    gf_buf_init(&b, 1 << 16);
    size_t bad = 0;
    for (int iter = 0; iter < 1200; iter++) {
        gf_buf_reset(&b);
        size_t vocab = 2 + next() % (GF_ARRAY_LEN(words) - 1);  // words[first..first + vocab)
        size_t len = 1 + next() % (iter % 4 == 0 ? 9000 : 700);
        size_t first = next() % (GF_ARRAY_LEN(words) - vocab + 1);
        while (b.len < len) {
            gf_buf_puts(&b, words[first + next() % vocab]);
            gf_buf_puts(&b, seps[next() % (iter % 2 ? 3 : GF_ARRAY_LEN(seps))]);
        }
        struct gf_norm n;
        REQUIRE(gf_normalize(b.data, b.len, &n, NULL) == 0);
        struct gf_norm raw = {.text = b.data, .len = b.len};
        for (int as_is = 0; as_is < 2; as_is++) {
            const struct gf_norm *c = as_is ? &raw : &n;
            double got = score_with(b.data, b.len, c);
            double want = ref_spam_score(b.data, b.len, c->text, c->len);
            if (got != want && bad++ < 3)
                fprintf(stderr, "%s '%.*s': %.17g, reference %.17g\n",
                        as_is ? "as is" : "canonical", (int)c->len, c->text, got, want);
        }
        gf_norm_cleanup(&n);
    }
    CHECK(bad == 0);
    gf_buf_cleanup(&b);
}

static bool ref_alnum(unsigned c)
{
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool ref_folded(unsigned c)  // normalize.c's C_WORD
{
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '$' || c == '@';
}

static bool ref_token(unsigned c)  // clf_hash.c's C_WORD
{
    return ref_alnum(c) || c == '_';
}

static bool ref_word(unsigned c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* The eight-bytes-at-a-time run ends (runs_int.h) against byte loops: every start of random
 * buffers of every length up to 40 (each in an allocation of its exact size, so a read past
 * the end is a sanitizer error), bytes drawn from the edges of every class and from all 256. */
static void test_runs(void)
{
    static const unsigned char edges[] = {
        '/', '0', '9', ':', '@', 'A', 'Z', '[', '_', '`', 'a', 'z', '{', '#', '$', '%', '?',
        0x7f, 0x80, 0xff, 0xc0, 0xc1, 0xda, 0xdf, 0xe0, 0xe1, 0xfa, 0xfb, ' ', 0, 'm', 'M', '5'};
    for (int rep = 0; rep < 4000; rep++) {
        size_t n = (size_t)rep % 41;
        unsigned char *s = gf_malloc(n ? n : 1);
        REQUIRE(s != NULL);
        for (size_t i = 0; i < n; i++) {
            uint64_t r = next();
            // Long runs of word bytes too, so the eight-byte loop runs more than once.
            s[i] = r % 4 == 0 ? (unsigned char)(r >> 8) : r % 4 == 1 ? (unsigned char)('a' + r % 26)
                                                        : edges[(r >> 8) % sizeof(edges)];
        }
        for (size_t i = 0; i <= n; i++) {
            size_t a = i, w = i, f = i, k = i;
            while (k < n && ref_token(s[k]))
                k++;
            CHECK(gf_runs_token_end(s, i, n) == k);
            while (a < n && ref_alnum(s[a]))
                a++;
            while (w < n && ref_word(s[w]))
                w++;
            while (f < n && ref_folded(s[f]))
                f++;
            CHECK(gf_runs_alnum_end(s, i, n) == a);
            CHECK(gf_runs_word_end(s, i, n) == w);
            CHECK(gf_runs_folded_word_end(s, i, n) == f);
        }
        gf_free(s);
    }
    // Every byte value at every position of an eight-byte block.
    unsigned char b[16];
    for (unsigned c = 0; c < 256; c++)
        for (size_t at = 0; at < 8; at++) {
            memset(b, 'q', sizeof(b));
            b[at] = (unsigned char)c;
            CHECK(gf_runs_alnum_end(b, 0, sizeof(b)) == (ref_alnum(c) ? sizeof(b) : at));
            memset(b, '_', sizeof(b));
            b[at] = (unsigned char)c;
            CHECK(gf_runs_word_end(b, 0, sizeof(b)) == (ref_word(c) ? sizeof(b) : at));
            memset(b, 'Q', sizeof(b));
            b[at] = (unsigned char)c;
            CHECK(gf_runs_token_end(b, 0, sizeof(b)) == (ref_token(c) ? sizeof(b) : at));
            memset(b, '$', sizeof(b));
            b[at] = (unsigned char)c;
            CHECK(gf_runs_folded_word_end(b, 0, sizeof(b)) == (ref_folded(c) ? sizeof(b) : at));
        }
}

static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    for (long k = 1;; k++) {
        struct gf_detector *x = NULL;
        gf_alloc_fail_after(k, false);
        int rc = gf_spam_new(&x, NULL);
        long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        if (failed == 0) {
            CHECK(rc == 0 && x != NULL);
            gf_detector_free(x);
            break;
        }
        CHECK(rc == GF_ENOMEM ? x == NULL : rc == 0 && x != NULL);  // JIT may just be skipped
        gf_detector_free(x);
    }
}

int main(void)
{
    scan_setup();
    if (gf_spam_new(&d, NULL) != 0)
        SKIP("cannot build the spam detector");
    RUN(test_spam);
    RUN(test_direct_scan);
    RUN(test_reference);
    RUN(test_reference_dense);
    RUN(test_runs);
    RUN(test_oom);
    gf_detector_free(d);
    scan_teardown();
    return test_report();
}
