/* Unit tests of classifiers/pii.c and pii_validate.c: for each type, real values are found
 * with exact spans and look-alikes that fail the validator are not; numbers written with
 * full-width digits or hidden characters are found through the canonical form; the literal
 * prefilter of the secrets (and of other sets of literals) finds what a plain search finds; the
 * census loses no hit; type masks and names; an OOM loop over construction. */
#include "scan_util.h"

#include "classifiers/pii_int.h"

#include <stdio.h>

#include "text_gen.h"

static struct gf_detector *all;

// Each true value must be found, alone and inside a sentence, with exactly its span.
static void expect_found(const char *type, const char *value)
{
    char s[512];
    snprintf(s, sizeof(s), "see %s, thanks", value);
    int n = scan(all, s);
    CHECK_MSG(n >= 1 && has_hit(s, type, value), "%s not found: %s", type, value);
}

static void expect_none(const char *type, const char *value)
{
    char s[512];
    snprintf(s, sizeof(s), "see %s, thanks", value);
    scan(all, s);
    bool found = false;
    for (size_t i = 0; i < hits.n; i++)
        found |= strcmp(hits.v[i].type, type) == 0;
    CHECK_MSG(!found, "false %s: %s", type, value);
}

static void test_email(void)
{
    expect_found("email", "john.doe@example.com");
    expect_found("email", "a+tag@mail.example.co.uk");
    expect_none("email", "user@localhost");
    expect_none("email", "a..b@example.com");
    expect_none("email", "@example.com");
    expect_none("email", "name@example");
}

static void test_phone(void)
{
    expect_found("phone", "+1 212 555 1234");
    expect_found("phone", "(212) 555-1234");
    expect_found("phone", "212-555-1234");
    expect_found("phone", "212.555.1234");
    expect_found("phone", "+44 20 7946 0958");
    expect_found("phone", "020 7946 0958");
    expect_found("phone", "+33612345678");
    expect_none("phone", "2125551234");    // a bare run of digits
    expect_none("phone", "2024-01-15");    // a date
    expect_none("phone", "112-555-1234");  // no area code starts with 1
    expect_none("phone", "555-1234");      // too short to identify anyone
    expect_none("phone", "+1 111 111 1111");
    const char *s = "call 212-555-1234 5 times";  // a following number is not swallowed
    CHECK(scan(all, s) >= 1 && has_hit(s, "phone", "212-555-1234"));
}

static void test_card(void)
{
    expect_found("credit_card", "4111 1111 1111 1111");
    expect_found("credit_card", "4111-1111-1111-1111");
    expect_found("credit_card", "4111111111111111");
    expect_found("credit_card", "378282246310005");   // American Express
    expect_found("credit_card", "5555555555554444");  // Mastercard
    expect_found("credit_card", "2223003122003222");  // Mastercard 2-series
    expect_found("credit_card", "6011111111111117");  // Discover
    expect_found("credit_card", "3530111333300000");  // JCB
    expect_none("credit_card", "4111 1111 1111 1112");  // Luhn fails
    expect_none("credit_card", "1234 5678 9012 3452");  // Luhn passes, no such issuer
    expect_none("credit_card", "0000 0000 0000 0000");
    expect_none("credit_card", "4111 1111-1111 1111");  // mixed separators
    expect_none("credit_card", "41111111111111111111111");  // too long
    CHECK(gf_pii_luhn("79927398713", 11));
    CHECK(!gf_pii_luhn("79927398710", 11));
    CHECK(!gf_pii_luhn("", 0));
}

static void test_iban(void)
{
    expect_found("iban", "DE89 3704 0044 0532 0130 00");
    expect_found("iban", "GB82WEST12345698765432");
    expect_found("iban", "FR14 2004 1010 0505 0001 3M02 606");
    expect_found("iban", "NL91ABNA0417164300");
    expect_none("iban", "DE89 3704 0044 0532 0130 01");  // checksum
    expect_none("iban", "DE89 3704 0044 0532 0130");     // length for DE
    expect_none("iban", "XX89370400440532013000");       // no such country
    CHECK(gf_pii_iban_valid("de89370400440532013000", 22));  // case does not matter
}

static void test_ssn(void)
{
    expect_found("ssn", "123-45-6789");
    expect_found("ssn", "123 45 6789");
    expect_none("ssn", "000-12-3456");
    expect_none("ssn", "666-12-3456");
    expect_none("ssn", "912-12-3456");
    expect_none("ssn", "123-00-6789");
    expect_none("ssn", "123-45-0000");
    expect_none("ssn", "078-05-1120");
    expect_none("ssn", "123-45 6789");
    expect_none("ssn", "123-45-67890");
}

static void test_ip(void)
{
    expect_found("ipv4", "192.168.1.1");
    expect_found("ipv4", "8.8.8.8");
    expect_none("ipv4", "256.1.1.1");
    expect_none("ipv4", "1.2.3");
    expect_none("ipv4", "v1.2.3.4");
    expect_none("ipv4", "192.168.01.1");
    expect_none("ipv4", "1.2.3.4.5");
    expect_found("ipv6", "2001:db8::1");
    expect_found("ipv6", "fe80::1ff:fe23:4567:890a");
    expect_found("ipv6", "::1");
    expect_found("ipv6", "2001:0db8:85a3:0000:0000:8a2e:0370:7334");
    expect_found("ipv6", "::ffff:192.0.2.128");
    expect_none("ipv6", "12:30:45");
    expect_none("ipv6", "std::vector");
    expect_none("ipv6", "00:1a:2b:3c:4d:5e");
}

static void test_secrets(void)
{
    expect_found("private_key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n"
                                "-----END RSA PRIVATE KEY-----");
    expect_found("private_key", "-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n"
                                "-----END PGP PRIVATE KEY BLOCK-----");
    const char *s = "key: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk";
    CHECK(scan(all, s) >= 1 && has_hit(s, "private_key", s + 5));  // cut off: to the end
    expect_none("private_key", "-----BEGIN PUBLIC KEY-----\nMIIBIjAN\n-----END PUBLIC KEY-----");
    expect_found("aws_key", "AKIAIOSFODNN7EXAMPLE");
    s = "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n";
    CHECK(scan(all, s) >= 1 && has_hit(s, "aws_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"));
    expect_none("aws_key", "AKIA1234");
    // every access-key prefix the pattern accepts gets past the literal prefilter too
    static const char *const prefixes[] = {"AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA",
                                           "AIPA", "ANPA", "ANVA", "AROA", "APKA", "ASCA"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        char id[32];
        snprintf(id, sizeof(id), "%sIOSFODNN7EXAMPLE", prefixes[i]);
        expect_found("aws_key", id);
    }
    s = "Aws_Secret = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n";  // the name in any casing
    CHECK(scan(all, s) >= 1 && has_hit(s, "aws_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"));
    s = "aWS.key: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n";
    CHECK(scan(all, s) >= 1 && has_hit(s, "aws_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"));
    expect_found("github_token", "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789");
    expect_found("github_token", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz");
    expect_none("github_token", "ghp_short");
    expect_none("github_token", "ghp_abcdefghijklmnopqrstuvwxyzabcdefghij");  // no digit
    expect_found("slack_token", "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx");
    expect_found("slack_token",
                 "https://hooks.slack.com/services/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");
    expect_none("slack_token", "xoxb-nope");
    expect_found("gf_key", "gf_4fT9kLmQ2xZ7pR8sV1wY3bN6cD0eH5jG");
    expect_none("gf_key", "gf_policy_load");
    expect_found("api_key", "sk-proj-abc123DEF456ghi789JKL012mno345");
    expect_found("api_key", "sk_live_4eC39HqLyjWDarjtT1zdp7dc");
    expect_found("api_key", "AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW");
    expect_none("api_key", "sk-this-is-not-a-real-key-at-all");
    expect_found("jwt", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0");
}

// Numbers hidden with full-width digits or invisible characters, found via the canonical form.
static void test_canonical(void)
{
    const char *s = "card \xef\xbc\x94\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91 1111 1111 1111 ok";
    CHECK(scan(all, s) == 1);
    CHECK(hits.n == 1 && hits.v[0].canonical && strcmp(hits.v[0].type, "credit_card") == 0 &&
          hits.v[0].start == 5 && hits.v[0].end == strlen(s) - 3);
    s = "ssn 123\xe2\x80\x8b-45-6789.";
    CHECK(scan(all, s) == 1 && has_hit(s, "ssn", "123\xe2\x80\x8b-45-6789"));
    s = "4111 1111 1111 1111";  // same text: reported once
    CHECK(scan(all, s) == 1 && !hits.v[0].canonical);
}

// The types with a literal in s[0..n), by a plain search for each literal.
static uint32_t plain_literal_types(const char *s, size_t n)
{
    uint32_t found = 0;
    for (int t = 0; t < GF_PII_COUNT; t++) {
        const char *const *lits = gf_pii_literals(t);
        for (size_t k = 0; lits != NULL && k < GF_PII_TYPE_LITERALS && lits[k] != NULL; k++) {
            size_t m = strlen(lits[k]);
            for (size_t i = 0; i + m <= n && !(found & (1u << t)); i++)
                if (memcmp(s + i, lits[k], m) == 0)
                    found |= 1u << t;
        }
    }
    return found;
}

/* Appends to b a literal of the secrets, or one cut short or with a letter in the other case,
 * between bytes that are or are not those around the keys ("Aws", "xo", "-B", "_x"). */
static void literal_piece(struct gf_buf *b)
{
    const char *const *lits = NULL;
    while (lits == NULL)
        lits = gf_pii_literals((int)(gen_next() % GF_PII_COUNT));
    size_t k = 0;
    while (lits[k + 1] != NULL && gen_next() % 3 != 0)
        k++;
    char lit[64];
    size_t m = strlen(lits[k]);
    memcpy(lit, lits[k], m);
    if (gen_next() % 4 == 0)  // a near miss: cut short, or a letter in the other case
        m -= m > 1;
    if (gen_next() % 4 == 0) {
        size_t q = gen_next() % m;
        if ((lit[q] | 0x20) >= 'a' && (lit[q] | 0x20) <= 'z')
            lit[q] ^= 0x20;
    }
    gf_buf_putc(b, "A_JxkGws-. "[gen_next() % 11]);
    gf_buf_append(b, lit, m);
    gf_buf_putc(b, "A_JxkGws-. "[gen_next() % 11]);
}

/* The secrets' literal prefilter finds the types a plain search finds, on texts of prose,
 * secrets' prefixes whole, cut short and in other casings, and random bytes of every length,
 * cut anywhere: the detector's, and the same table's without AVX2 (sixteen bytes at a time). */
static void test_literals(void)
{
    struct gf_buf b;
    gf_buf_init(&b, 1 << 20);
    size_t bad = 0, with = 0;
    struct gf_pii_lits *sse = calloc(1, sizeof(*sse));
    REQUIRE(sse != NULL);
    for (int t = 0; t < GF_PII_COUNT; t++)
        for (const char *const *l = gf_pii_literals(t); l != NULL && *l != NULL; l++)
            REQUIRE(gf_pii_lits_add(sse, *l, t) == 0);
    sse->avx2 = false;
    for (int iter = 0; iter < 30000; iter++) {
        gen_text(&b, 1 + gen_next() % 300);
        for (size_t k = gen_next() % 4; k > 0; k--) {
            literal_piece(&b);
            gen_append(&b, b.len + gen_next() % 40);
        }
        size_t len = iter % 3 == 0 ? gen_next() % (b.len + 1) : b.len;
        char *t = malloc(len ? len : 1);  // exactly the text: a read past it is a sanitizer error
        REQUIRE(t != NULL);
        memcpy(t, b.data, len);
        uint32_t got = gf_pii_literal_types(all, t, len), want = plain_literal_types(t, len);
        uint32_t got_sse = gf_pii_lits_find(sse, t, len);
        if ((got != want || got_sse != want) && bad++ < 3)
            fprintf(stderr, "'%.*s': types %#x (%#x without AVX2), plain search %#x\n", (int)len,
                    t, got, got_sse, want);
        with += want != 0;
        free(t);
    }
    CHECK(bad == 0);
    CHECK(with > 10000);
    free(sse);
    gf_buf_cleanup(&b);
}

/* Sets of literals other than the secrets' (random, of letters, '_', '-' and bytes >= 0x80, up
 * to the table's size): keys beyond the sixteen-byte search's slots, literals holding no key,
 * keys shared by many literals; the types found are those of a plain search. */
static void test_literal_sets(void)
{
    static const char alphabet[] = "AJxkGwsWS_-.aeB\xc3\xa9";
    size_t bad = 0;
    for (int rep = 0; rep < 3000; rep++) {
        struct gf_pii_lits *L = calloc(1, sizeof(*L));
        REQUIRE(L != NULL);
        static char lits[GF_PII_LITS][8];
        size_t nl = 1 + gen_next() % (rep % 5 == 0 ? GF_PII_LITS : 8);
        for (size_t k = 0; k < nl; k++) {
            size_t m = 1 + gen_next() % 6;
            for (size_t j = 0; j < m; j++)
                lits[k][j] = alphabet[gen_next() % (sizeof(alphabet) - 1)];
            lits[k][m] = '\0';
            REQUIRE(gf_pii_lits_add(L, lits[k], (int)(k % 31)) == 0);
        }
        L->avx2 = L->avx2 && rep % 2 == 0;  // and sixteen bytes at a time
        size_t n = gen_next() % (rep % 7 == 0 ? 3000 : 200);
        char *t = malloc(n ? n : 1);
        REQUIRE(t != NULL);
        for (size_t i = 0; i < n;) {
            if (gen_next() % 5 == 0) {
                const char *l = lits[gen_next() % nl];
                for (size_t j = 0; l[j] && i < n; j++)
                    t[i++] = l[j];
            } else {
                t[i++] = gen_next() % 7 == 0 ? (char)gen_next() : alphabet[gen_next() % 16];
            }
        }
        uint32_t want = 0;
        for (size_t k = 0; k < nl; k++) {
            size_t m = strlen(lits[k]);
            for (size_t i = 0; i + m <= n && !(want >> (k % 31) & 1); i++)
                if (memcmp(t + i, lits[k], m) == 0)
                    want |= 1u << (k % 31);
        }
        uint32_t got = gf_pii_lits_find(L, t, n);
        if (got != want && bad++ < 3)
            fprintf(stderr, "%zu literals, %zu bytes: types %#x, plain search %#x\n", nl, n, got,
                    want);
        free(t);
        free(L);
    }
    CHECK(bad == 0);
    CHECK(gf_pii_lits_add(&(struct gf_pii_lits){.n_lits = GF_PII_LITS}, "x", 0) != 0);
}

/* Texts of prose with numbers of every shape: runs of digits, spaces, dots, dashes,
 * parentheses, '+' and letters, so that phone numbers, cards, SSNs, IBANs and addresses valid
 * and almost valid turn up with their neighbours. */
static void numeric_text(struct gf_buf *b)
{
    gen_text(b, gen_next() % 200);
    for (size_t k = gen_next() % 6; k > 0; k--) {
        for (size_t m = 4 + gen_next() % 24; m > 0; m--) {
            uint64_t r = gen_next() % 20;
            gf_buf_putc(b, r < 11 ? (char)('0' + gen_next() % 10)
                                  : " ().-+ :@AZx\xef"[r - 11]);
        }
        gen_append(b, b->len + gen_next() % 40);
    }
}

/* The census skips no pattern that would have found a hit: the detector's hits are those of
 * every pattern run on the text and its canonical form, on texts dense in numbers. */
static void test_census(void)
{
    struct gf_buf b;
    gf_buf_init(&b, 1 << 20);
    struct gf_hits ref;
    gf_hits_init(&ref, 1000);
    size_t bad = 0, found = 0;
    for (int iter = 0; iter < 20000; iter++) {
        numeric_text(&b);
        struct gf_norm n;
        struct gf_err err = {0};
        REQUIRE(gf_normalize(b.data, b.len, &n, NULL) == 0);
        struct gf_scan in = {b.data, b.len, &n, scratch, 0};
        gf_hits_reset(&hits);
        gf_hits_reset(&ref);
        REQUIRE(gf_detector_scan(all, &in, &hits, &err) == 0);
        REQUIRE(gf_pii_scan_all(all, &in, &ref, &err) == 0);
        bool same = hits.n == ref.n;
        for (size_t i = 0; same && i < hits.n; i++)
            same = hits.v[i].start == ref.v[i].start && hits.v[i].end == ref.v[i].end &&
                   hits.v[i].type == ref.v[i].type && hits.v[i].canonical == ref.v[i].canonical;
        found += hits.n;
        if (!same && bad++ < 3)
            fprintf(stderr, "'%.*s': %zu hits, %zu without the census\n", (int)b.len, b.data,
                    hits.n, ref.n);
        gf_norm_cleanup(&n);
    }
    CHECK(bad == 0);
    CHECK(found > 2000);
    gf_hits_cleanup(&ref);
    gf_buf_cleanup(&b);
}

static void test_mask(void)
{
    uint32_t m = 0;
    CHECK(gf_pii_type_parse("credit_card", &m) == 0 && m == 1u << GF_PII_CREDIT_CARD);
    CHECK(gf_pii_type_parse("ip", &m) == 0);
    CHECK(m & (1u << GF_PII_IPV6));
    CHECK(gf_pii_type_parse("passport", &m) == GF_EINVAL);
    uint32_t sec = 0;
    CHECK(gf_pii_type_parse("secrets", &sec) == 0 && sec == GF_PII_SECRETS);
    CHECK_STREQ(gf_pii_type_name(GF_PII_IBAN), "iban");
    CHECK(gf_pii_type_name(GF_PII_COUNT) == NULL);
    struct gf_detector *d;
    REQUIRE(gf_pii_new(1u << GF_PII_CREDIT_CARD, &d, NULL) == 0);
    CHECK(scan(d, "mail me at a@example.com, card 4111111111111111") == 1);
    CHECK(strcmp(hits.v[0].type, "credit_card") == 0);
    gf_detector_free(d);
    // Prose without candidates yields nothing.
    CHECK(scan(all, "The quick brown fox jumps over the lazy dog. It was 3 pm.") == 0);
}

static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    for (long k = 1;; k++) {
        struct gf_detector *d = NULL;
        gf_alloc_fail_after(k, false);
        int rc = gf_pii_new(0, &d, NULL);
        long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        if (failed == 0) {
            CHECK(rc == 0 && scan(d, "x@example.com") == 1);
            gf_detector_free(d);
            break;
        }
        CHECK(rc == GF_ENOMEM ? d == NULL : rc == 0 && d != NULL);  // JIT may just be skipped
        if (d)
            CHECK(scan(d, "x@example.com") == 1);
        gf_detector_free(d);
    }
}

int main(void)
{
    scan_setup();
    if (gf_pii_new(0, &all, NULL) != 0)
        SKIP("cannot build the pii detector");
    RUN(test_email);
    RUN(test_phone);
    RUN(test_card);
    RUN(test_iban);
    RUN(test_ssn);
    RUN(test_ip);
    RUN(test_secrets);
    RUN(test_canonical);
    RUN(test_literals);
    RUN(test_literal_sets);
    RUN(test_census);
    RUN(test_mask);
    RUN(test_oom);
    gf_detector_free(all);
    scan_teardown();
    return test_report();
}
