/* Unit tests of classifiers/normalize.c and fold.c: each evasion trick folds to the plain
 * spelling, ordinary text is left readable, spans map back to the original bytes, the caller-
 * scratch variant allocates nothing, and an OOM loop over the allocating variants. */
#include "classifiers/classifiers.h"

#include "test.h"

#include "ref_normalize.h"
#include "text_gen.h"

static char *canon(const char *s)
{
    static char out[4096];
    struct gf_norm n;
    struct gf_err err = {0};
    if (gf_normalize(s, strlen(s), &n, &err) != 0)
        return NULL;
    snprintf(out, sizeof(out), "%s", n.text);
    gf_norm_cleanup(&n);
    return out;
}

#define CANON(in, want) CHECK_STREQ(canon(in), want)

static void test_ascii(void)
{
    CANON("", "");
    CANON("Hello, World!", "hello, world!");
    CANON("tabs\tand\nnew\r\nlines   squeezed", "tabs and new lines squeezed");
    CANON("ctrl\x01\x7f" "chars", "ctrlchars");
    CANON("I am a cat.", "i am a cat.");
    CANON("It costs 2024 dollars, $100 or 5 euros", "it costs 2024 dollars, $100 or 5 euros");
}

static void test_fullwidth_and_math(void)
{
    CANON("\xef\xbc\xa6\xef\xbc\xb2\xef\xbc\xa5\xef\xbc\xa5 \xef\xbd\x8d\xef\xbd\x8f\xef\xbd\x8e"
          "\xef\xbd\x85\xef\xbd\x99",
          "free money");                                       // full-width
    CANON("\xf0\x9d\x90\x9f\xf0\x9d\x90\xab\xf0\x9d\x90\x9e\xf0\x9d\x90\x9e", "free");  // bold
    CANON("\xf0\x9d\x93\xaf\xf0\x9d\x93\xbb\xf0\x9d\x93\xae\xf0\x9d\x93\xae", "free");  // script
    CANON("\xf0\x9d\x9f\x8f\xf0\x9d\x9f\x90", "12");           // bold digits
    CANON("\xe2\x93\x95\xe2\x93\xa1\xe2\x93\x94\xe2\x93\x94", "free");  // circled
    CANON("\xf0\x9f\x85\xb5\xf0\x9f\x86\x81\xf0\x9f\x85\xb4\xf0\x9f\x85\xb4", "free");  // negative squared
    CANON("\xef\xac\x81le", "file");                           // ligature fi
    CANON("\xe2\x84\x8d\xe2\x84\xaf\xe2\x84\x93\xe2\x84\x93\xe2\x84\xb4", "hello");  // letterlike
    CANON("\xe1\xb4\x84\xca\x9f\xe1\xb4\x87\xe1\xb4\x80\xca\x80", "clear");  // small capitals
}

static void test_confusables(void)
{
    CANON("fr\xd0\xb5\xd0\xb5", "free");                       // Cyrillic ie
    CANON("\xd0\xa0\xd0\x90\xd0\xa3\xd0\x9f\xd0\x90L", "pay\xd0\xbf" "al");  // Р А У П А L
    CANON("\xd1\x80\xd0\xb0\xd1\x83\xd1\x80\xd0\xb0l", "paypal");
    CANON("\xce\x91\xce\x9c\xce\x91\xce\x96\xce\x9f\xce\x9d", "amazon");  // Greek capitals
    CANON("\xce\xb1\xce\xb9", "ai");
    CANON("\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",  // Привет keeps its look
          "\xd0\xbf" "pu" "\xd0\xb2" "et");
    CANON("caf\xc3\xa9 na\xc3\xafve \xc3\x85ngstr\xc3\xb6m", "cafe naive angstrom");
    CANON("cafe\xcc\x81", "cafe");                             // combining acute
    CANON("stra\xc3\x9f" "e \xc5\x93uvre \xc4\xb3s", "strasse oeuvre ijs");
    CANON("z\xcc\xb7\xcc\xa1\xcd\x8c" "a\xcd\x9e" "lgo", "zalgo");      // combining marks
}

static void test_invisible(void)
{
    CANON("fr\xe2\x80\x8b" "ee", "free");                      // zero-width space
    CANON("f\xe2\x80\x8cr\xe2\x80\x8d" "e\xef\xbb\xbf" "e", "free");  // ZWNJ, ZWJ, BOM
    CANON("\xe2\x80\xae" "free\xe2\x80\xac", "free");           // bidi override
    CANON("fr\xe2\x81\xa6" "ee\xe2\x81\xa9", "free");           // isolates
    CANON("fr\xf3\xa0\x81\x81" "ee", "free");                   // tag character
    CANON("fr\xc2\xad" "ee", "free");                           // soft hyphen
    CANON("fr\xef\xb8\x8f" "ee", "free");                       // variation selector
    CANON("aa\xc2\xa0" "bb\xe3\x80\x80" "cc\xe2\x80\x83" "dd", "aa bb cc dd");  // Unicode spaces
    CANON("fr\xff" "e\xc3" "e\xed\xa0\x80", "free");            // invalid bytes dropped
    CANON("\xe2\x80\x9cquoted\xe2\x80\x9d \xe2\x80\x94 it\xe2\x80\x99s",
          "\"quoted\" - it's");
}

static void test_spacing(void)
{
    CANON("f r e e  m o n e y", "free money");
    CANON("f r e e m o n e y", "freemoney");
    CANON("F.R.E.E money", "free money");
    CANON("f-r-e-e", "free");
    CANON("say f r e e now", "say free now");
    CANON("a b", "a b");                                       // two are not a run
    CANON("1 2 3 4", "1 2 3 4");                                // no letter
    CANON("x, y, z", "x, y, z");                                // separator of two bytes
    CANON("f r 3 3", "free");                                   // spaced leetspeak
    CANON("f\xe2\x80\x8b r e e", "free");                       // hidden character in the run
}

static void test_leet(void)
{
    CANON("fr33 m0n3y", "free money");
    CANON("h@ck th3 pl4n3t", "hack the planet");
    CANON("c@$h", "cash");
    CANON("1d10t", "idiot");
    CANON("l33t 1337", "leet 1337");
    CANON("$5 @ 10am", "$5 @ ioam");
    CANON("k1ll", "kill");
}

// Spans of the canonical form land on the bytes of the original that produced them.
static void test_spans(void)
{
    struct gf_norm n;
    const char *s = "xx \xef\xbc\xa6 r e e yy";  // "xx Ｆ r e e yy"
    REQUIRE(gf_normalize(s, strlen(s), &n, NULL) == 0);
    CHECK_STREQ(n.text, "xx free yy");
    size_t a, b;
    gf_norm_span(&n, 3, 7, &a, &b);
    CHECK(a == 3 && b == 12);
    gf_norm_span(&n, 8, 9, &a, &b);
    CHECK(a == 13 && b == 14);
    gf_norm_span(&n, 4, 4, &a, &b);  // empty span
    CHECK(a == b && a == 7);
    gf_norm_span(&n, n.len, n.len, &a, &b);
    CHECK(a == strlen(s) && b == strlen(s));
    gf_norm_cleanup(&n);
    gf_norm_cleanup(&n);  // twice is harmless

    s = "ab\xe2\x80\x8b\xe2\x80\x8b   \xd0\xb5nd";  // spaces squeezed, "е" Cyrillic
    REQUIRE(gf_normalize(s, strlen(s), &n, NULL) == 0);
    CHECK_STREQ(n.text, "ab end");
    gf_norm_span(&n, 2, 3, &a, &b);  // the squeezed space covers all three
    CHECK(a == 8 && b == 11);
    gf_norm_span(&n, 3, 6, &a, &b);
    CHECK(a == 11 && b == strlen(s));
    gf_norm_cleanup(&n);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

// Random bytes and random code points: the form is valid UTF-8, never longer, spans in range
// and ordered, and the map-less variant gives the same text.
static void test_random(void)
{
    static const uint32_t pool[] = {'a', 'Z', ' ', '1', '@', '.', 0xE9, 0x301, 0x200B, 0x202E,
                                    0x430, 0x3B1, 0xFF21, 0x1D41F, 0xE0041, 0x4E2D, 0x1F600,
                                    0xFB03, 0x2026, 0x3000, 0x85};
    char in[256], scratch2[257];
    int bad = 0;
    for (int iter = 0; iter < 3000; iter++) {
        size_t len = 0;
        size_t want = next_rand() % 60;
        while (len + 4 < sizeof(in) && want--) {
            uint32_t r = next_rand();
            if (r % 5 == 0) {
                in[len++] = (char)(next_rand() & 0xFF);
                continue;
            }
            uint32_t cp = pool[r % GF_ARRAY_LEN(pool)];
            if (cp < 0x80) {
                in[len++] = (char)cp;
            } else if (cp < 0x800) {
                in[len++] = (char)(0xC0 | (cp >> 6));
                in[len++] = (char)(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
                in[len++] = (char)(0xE0 | (cp >> 12));
                in[len++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                in[len++] = (char)(0x80 | (cp & 0x3F));
            } else {
                in[len++] = (char)(0xF0 | (cp >> 18));
                in[len++] = (char)(0x80 | ((cp >> 12) & 0x3F));
                in[len++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                in[len++] = (char)(0x80 | (cp & 0x3F));
            }
        }
        struct gf_norm n, m;
        uint32_t al[(256 * 9 + 1) / 4 + 1];
        if (gf_normalize_into(in, len, al, sizeof(al), 0, &n) != 0 ||
            gf_normalize_into(in, len, scratch2, sizeof(scratch2), GF_NORM_NO_MAP, &m) != 0) {
            bad++;
            continue;
        }
        bool ok = n.len <= len && gf_utf8_valid(n.text, n.len) && n.len == m.len &&
                  memcmp(n.text, m.text, n.len) == 0 && m.start == NULL;
        for (size_t i = 0; ok && i < n.len; i++) {
            ok = n.start[i] < n.end[i] && n.end[i] <= len && (i == 0 || n.start[i - 1] <= n.start[i]);
        }
        if (!ok && bad++ < 3) {
            fprintf(stderr, "bad form for input of %zu bytes:", len);
            for (size_t i = 0; i < len; i++)
                fprintf(stderr, " %02x", (unsigned char)in[i]);
            fputc('\n', stderr);
        }
    }
    CHECK(bad == 0);
}

static void test_scratch(void)
{
    struct gf_norm n;
    uint32_t small[4];
    CHECK(gf_normalize_into("hello world", 11, small, sizeof(small), 0, &n) == GF_ETOOBIG);
    CHECK(gf_norm_scratch_size(11, 0) == 100);
    CHECK(gf_norm_scratch_size(11, GF_NORM_NO_MAP) == 12);
    CHECK(gf_norm_scratch_size(GF_NORM_MAX_LEN + 1, 0) == SIZE_MAX);
    char buf[12];
    CHECK(gf_normalize_into("HELLO World", 11, buf, sizeof(buf), GF_NORM_NO_MAP, &n) == 0);
    CHECK_STREQ(n.text, "hello world");
    gf_norm_cleanup(&n);  // caller-owned: no-op

    // The reusable buffer allocates for its largest text only.
    struct gf_norm_buf b;
    gf_norm_buf_init(&b, 1 << 20);
    CHECK(gf_norm_buf_normalize(&b, "Some Text", 9, 0, &n, NULL) == 0);
    CHECK_STREQ(n.text, "some text");
    if (gf_alloc_fail_supported()) {
        gf_alloc_fail_after(1, true);
        CHECK(gf_norm_buf_normalize(&b, "ＯＫ", 6, 0, &n, NULL) == 0);
        CHECK(gf_alloc_failures() == 0);
        gf_alloc_fail_after(0, false);
        CHECK_STREQ(n.text, "ok");
    }
    static char big[2 << 20];
    memset(big, 'a', sizeof(big));
    struct gf_err err = {0};
    CHECK(gf_norm_buf_normalize(&b, big, sizeof(big), 0, &n, &err) == GF_ETOOBIG);
    CHECK(strstr(err.msg, "too long") != NULL);
    gf_norm_buf_cleanup(&b);
}

/* No code point has ASCII capitals in its canonical form, nor U+212A or U+017F (which match
 * 'k' and 's' caselessly): the keyword prefilter looks for lowercase literals only there. */
static void test_no_capitals(void)
{
    size_t bad = 0;
    for (uint32_t cp = 1; cp < 0x110000; cp++) {
        if (cp >= 0xD800 && cp < 0xE000)
            continue;
        char b[4];
        size_t n = 0;
        if (cp < 0x80) {
            b[n++] = (char)cp;
        } else if (cp < 0x800) {
            b[n++] = (char)(0xC0 | cp >> 6);
        } else if (cp < 0x10000) {
            b[n++] = (char)(0xE0 | cp >> 12);
            b[n++] = (char)(0x80 | ((cp >> 6) & 63));
        } else {
            b[n++] = (char)(0xF0 | cp >> 18);
            b[n++] = (char)(0x80 | ((cp >> 12) & 63));
            b[n++] = (char)(0x80 | ((cp >> 6) & 63));
        }
        if (cp >= 0x80)
            b[n++] = (char)(0x80 | (cp & 63));
        char out[16];
        struct gf_norm nm;
        REQUIRE(gf_normalize_into(b, n, out, sizeof(out), GF_NORM_NO_MAP, &nm) == 0);
        for (size_t i = 0; i < nm.len; i++)
            bad += nm.text[i] >= 'A' && nm.text[i] <= 'Z';
        bad += memmem(nm.text, nm.len, "\xe2\x84\xaa", 3) != NULL ||
               memmem(nm.text, nm.len, "\xc5\xbf", 2) != NULL;
    }
    CHECK(bad == 0);
}

/* A lazy byte map maps every span as the map made at once does, also after the buffer has
 * made other forms since; out of memory, a span maps to the whole original text. */
static void test_lazy_map(void)
{
    const char *texts[] = {"F r e e  m \xd0\xbe n e y at \xef\xbd\x81" "cme, l33t sp34k",
                           "plain ascii text", "a\xe2\x80\x8b" "cme  \t launch \xc2\xa0 c0d3s"};
    struct gf_norm_buf b;
    gf_norm_buf_init(&b, 0);
    for (size_t t = 0; t < GF_ARRAY_LEN(texts); t++) {
        struct gf_norm eager, lazy, other;
        REQUIRE(gf_normalize(texts[t], strlen(texts[t]), &eager, NULL) == 0);
        REQUIRE(gf_norm_buf_normalize(&b, texts[t], strlen(texts[t]), GF_NORM_LAZY_MAP, &lazy,
                                      NULL) == 0);
        CHECK(lazy.start == NULL && gf_norm_has_map(&lazy) && (t > 0 || b.map == NULL));
        CHECK(lazy.len == eager.len && memcmp(lazy.text, eager.text, lazy.len) == 0);
        for (size_t a = 0; a <= eager.len; a++)
            for (size_t e = a; e <= eager.len; e++) {
                size_t x1, y1, x2, y2;
                gf_norm_span(&eager, a, e, &x1, &y1);
                gf_norm_span(&lazy, a, e, &x2, &y2);
                CHECK(x1 == x2 && y1 == y2);
            }
        // A form made since with the same buffer does not leave a stale map behind.
        REQUIRE(gf_norm_buf_normalize(&b, "Other  TEXT", 11, GF_NORM_LAZY_MAP, &other, NULL) == 0);
        size_t x, y;
        gf_norm_span(&other, 6, 10, &x, &y);
        CHECK(x == 7 && y == 11);
        gf_norm_cleanup(&eager);
    }
    struct gf_norm n;
    REQUIRE(gf_normalize_into("abc", 3, (char[4]){0}, 4, GF_NORM_NO_MAP, &n) == 0);
    CHECK(!gf_norm_has_map(&n) && !gf_norm_has_map(NULL));
    if (gf_alloc_fail_supported()) {
        struct gf_norm_buf c;
        gf_norm_buf_init(&c, 0);
        REQUIRE(gf_norm_buf_normalize(&c, "x  Y z", 6, GF_NORM_LAZY_MAP, &n, NULL) == 0);
        gf_alloc_fail_after(1, false);
        size_t x, y;
        gf_norm_span(&n, 2, 3, &x, &y);
        gf_alloc_fail_after(0, false);
        CHECK(x == 0 && y == 6);
        gf_norm_buf_cleanup(&c);
    }
    gf_norm_buf_cleanup(&b);
}

/* The canonical form and its byte map are those of the plain reference (ref_normalize.h) on
 * texts of prose, evasions and random bytes of every length up to 700 bytes and cut at every
 * place (so the eight-byte blocks end everywhere), with and without the map. */
static void test_reference(void)
{
    struct gf_buf b;
    gf_buf_init(&b, 1 << 20);
    size_t cap = 1024;
    char *t = malloc(cap + 1), *nomap = malloc(cap + 1);
    uint32_t *st = malloc(cap * sizeof(*st)), *en = malloc(cap * sizeof(*en));
    void *scratch = malloc(gf_norm_scratch_size(cap, 0));
    REQUIRE(t && nomap && st && en && scratch);
    size_t bad = 0;
    for (int iter = 0; iter < 20000; iter++) {
        gen_text(&b, 1 + gen_next() % 700);
        size_t len = b.len > cap ? cap : b.len;
        if (iter % 4 == 0)
            len = gen_next() % (len + 1);
        size_t want = ref_normalize(b.data, len, t, st, en);
        struct gf_norm n, m;
        REQUIRE(gf_normalize_into(b.data, len, scratch, gf_norm_scratch_size(cap, 0), 0, &n) == 0);
        bool ok = n.len == want && memcmp(n.text, t, want) == 0 && n.text[want] == '\0' &&
                  memcmp(n.start, st, want * sizeof(*st)) == 0 &&
                  memcmp(n.end, en, want * sizeof(*en)) == 0;
        REQUIRE(gf_normalize_into(b.data, len, nomap, cap + 1, GF_NORM_NO_MAP, &m) == 0);
        ok = ok && m.len == want && memcmp(m.text, t, want) == 0;
        if (!ok && bad++ < 3)
            fprintf(stderr, "differs from the reference: '%.*s'\n  want '%s'\n  got  '%.*s'\n",
                    (int)len, b.data, t, (int)n.len, n.text);
    }
    CHECK(bad == 0);
    free(t);
    free(nomap);
    free(st);
    free(en);
    free(scratch);
    gf_buf_cleanup(&b);
}

static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    const char *s = "F r e e  m \xd0\xbe n e y";
    for (long k = 1;; k++) {
        struct gf_norm n;
        struct gf_err err = {0};
        gf_alloc_fail_after(k, false);
        int rc = gf_normalize(s, strlen(s), &n, &err);
        long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        if (failed == 0) {
            CHECK(rc == 0);
            CHECK_STREQ(n.text, "free money");
            gf_norm_cleanup(&n);
            break;
        }
        CHECK(rc == GF_ENOMEM && err.code == GF_ENOMEM && n.text == NULL);
    }
    for (long k = 1;; k++) {
        struct gf_norm_buf b;
        struct gf_norm n;
        gf_norm_buf_init(&b, 0);
        gf_alloc_fail_after(k, false);
        int rc = gf_norm_buf_normalize(&b, s, strlen(s), 0, &n, NULL);
        long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        gf_norm_buf_cleanup(&b);
        if (failed == 0) {
            CHECK(rc == 0);
            break;
        }
        CHECK(rc == GF_ENOMEM);
    }
}

int main(void)
{
    RUN(test_ascii);
    RUN(test_fullwidth_and_math);
    RUN(test_confusables);
    RUN(test_invisible);
    RUN(test_spacing);
    RUN(test_leet);
    RUN(test_spans);
    RUN(test_random);
    RUN(test_reference);
    RUN(test_scratch);
    RUN(test_lazy_map);
    RUN(test_no_capitals);
    RUN(test_oom);
    return test_report();
}
