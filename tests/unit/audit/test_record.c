/* test_record.c — the pieces of a record: the JSON checker, the fixed line head, the chain
 * checker on hand-made lines, the scrubber of retention "redacted", time bounds and the query
 * filters. */
#include "tests/unit/audit/audit_util.h"
#include "test.h"

#include <limits.h>

#include <cjson/cJSON.h>

#include "audit/audit_int.h"

static void test_json_valid(void)
{
    static const char *good[] = {
        "{}", "[]", "0", "-0.5e+10", "\"a\\u00e9\\n\"", "{\"a\":[1,2,{\"b\":null}],\"c\":true}",
        " {\"x\" : false } ", "\"\xc3\xa9\"", "\"\\ud83d\\ude00\"",
    };
    static const char *bad[] = {
        "", "{", "}", "{\"a\"}", "{\"a\":}", "[1,]", "01", "1.", "-", "\"\\x\"", "\"\\u12\"",
        "\"a", "{\"a\":1}x", "tru", "nul", "\"\x01\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "[1 2]",
        "{\"a\":1,}", "+1", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"",
    };
    for (size_t i = 0; i < GF_ARRAY_LEN(good); i++)
        CHECK_MSG(gf_audit_json_valid(good[i], strlen(good[i])), "good %zu", i);
    for (size_t i = 0; i < GF_ARRAY_LEN(bad); i++)
        CHECK_MSG(!gf_audit_json_valid(bad[i], strlen(bad[i])), "bad %zu", i);
    // Nesting: 64 levels are fine, 65 are refused without recursion trouble.
    char deep[200];
    memset(deep, '[', 64);
    memset(deep + 64, ']', 64);
    CHECK(gf_audit_json_valid(deep, 128));
    memset(deep, '[', 65);
    memset(deep + 65, ']', 65);
    CHECK(!gf_audit_json_valid(deep, 130));
    char huge[100000];
    memset(huge, '[', sizeof(huge));
    CHECK(!gf_audit_json_valid(huge, sizeof(huge)));
}

static void test_head(void)
{
    const char *l = "{\"seq\":42,\"prev\":\"000000000000000000000000000000000000000000000000000000"
                    "000000000a\",\"type\":\"request\",\"x\":1}";
    uint64_t seq;
    uint8_t prev[32];
    const char *t;
    size_t tl;
    REQUIRE(gf_audit_parse_head(l, strlen(l), &seq, prev, &t, &tl) == 0);
    CHECK(seq == 42 && prev[31] == 0x0a && tl == 7 && memcmp(t, "request", 7) == 0);
    static const char *bad[] = {
        "{\"seq\":042,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"type\":\"a\"}",
        "{\"seq\":-1,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"type\":\"a\"}",
        "{\"seq\":99999999999999999999999,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"type\":\"a\"}",
        "{\"seq\":1,\"prev\":\"000000000000000000000000000000000000000000000000000000000000000A\",\"type\":\"a\"}",
        "{\"seq\":1,\"prev\":\"00\",\"type\":\"a\"}",
        "{\"seq\":1,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"type\":\"\"}",
        "{\"seq\":1, \"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"type\":\"a\"}",
        "{\"seq\":1,\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"type\":\"a",
        "{\"seq\":",
    };
    for (size_t i = 0; i < GF_ARRAY_LEN(bad); i++)
        CHECK_MSG(gf_audit_parse_head(bad[i], strlen(bad[i]), &seq, prev, &t, &tl) != 0, "bad %zu", i);
}

/* Builds record line number seq after head into out; returns its length. */
static size_t mkline(char *out, size_t cap, uint64_t seq, const uint8_t head[32], const char *rest)
{
    char hex[65];
    gf_hex(head, 32, hex);
    return (size_t)snprintf(out, cap, "{\"seq\":%llu,\"prev\":\"%s\",%s", (unsigned long long)seq,
                            hex, rest);
}

static void test_chain(void)
{
    struct audit_chain c;
    audit_chain_init(&c, NULL);
    char line[512], why[200];
    uint8_t zero[32] = {0};
    size_t n = mkline(line, sizeof(line), 1, zero, "\"type\":\"admin\",\"action\":\"a\"}");
    CHECK(audit_chain_feed(&c, line, n, why, sizeof(why)) == 0);
    uint8_t h1[32];
    gf_audit_line_hash(line, n, h1);
    CHECK(memcmp(c.head, h1, 32) == 0);
    // Same seq again: refused, chain unchanged.
    CHECK(audit_chain_feed(&c, line, n, why, sizeof(why)) == GF_EFORMAT);
    CHECK(c.next_seq == 2);
    // Unknown type.
    n = mkline(line, sizeof(line), 2, h1, "\"type\":\"other\"}");
    CHECK(audit_chain_feed(&c, line, n, why, sizeof(why)) == GF_EFORMAT);
    CHECK(strstr(why, "unknown record type") != NULL);
    // A checkpoint with a proper MAC under a key, then a forged one.
    uint8_t key[32];
    memset(key, 3, sizeof(key));
    c.key = key;
    uint8_t mac[32];
    char mhex[65], kid[17], rest[300];
    audit_ckpt_mac(key, 2, h1, mac);
    gf_hex(mac, 32, mhex);
    audit_key_id(key, kid);
    snprintf(rest, sizeof(rest), "\"type\":\"checkpoint\",\"ts\":\"t\",\"records\":1,\"key_id\":\"%s\",\"mac\":\"%s\"}", kid, mhex);
    n = mkline(line, sizeof(line), 2, h1, rest);
    CHECK(audit_chain_feed(&c, line, n, why, sizeof(why)) == 0);
    CHECK(c.checkpoints == 1 && c.last_ckpt_seq == 2 && c.last_was_ckpt);
    uint8_t h2[32];
    gf_audit_line_hash(line, n, h2);
    audit_ckpt_mac(key, 4, h2, mac); // a MAC for the wrong seq
    gf_hex(mac, 32, mhex);
    snprintf(rest, sizeof(rest), "\"type\":\"checkpoint\",\"ts\":\"t\",\"records\":1,\"key_id\":\"%s\",\"mac\":\"%s\"}", kid, mhex);
    n = mkline(line, sizeof(line), 3, h2, rest);
    CHECK(audit_chain_feed(&c, line, n, why, sizeof(why)) == GF_EFORMAT);
    CHECK(strstr(why, "MAC") != NULL);
}

static void scrub_is(const char *in, const char *want)
{
    struct gf_buf b;
    gf_buf_init(&b, 1 << 16);
    CHECK(audit_scrub(&b, in, strlen(in)) == 0);
    CHECK_STREQ(b.data ? b.data : "", want);
    gf_buf_cleanup(&b);
}

static void test_scrub(void)
{
    scrub_is("mail bob.smith+x@mail.example.org.", "mail [EMAIL].");
    scrub_is("call 555-123-4567 now", "call [NUMBER] now");
    scrub_is("card 4111 1111 1111 1111", "card [NUMBER]");
    scrub_is("only 12345 here", "only 12345 here");
    scrub_is("abc1234567", "abc1234567");
    scrub_is("key gf_abcdefghij0123456789XYZ and sk-ABCDEFGHIJKLMNOPQRST", "key [KEY] and [KEY]");
    scrub_is("gf_short", "gf_short");
    scrub_is("a@b", "a@b");
    scrub_is("", "");
    scrub_is("@@@", "@@@");
    scrub_is("x@y.z@w.v", "[EMAIL]@w.v");
}

static void test_parse_time(void)
{
    int64_t t;
    CHECK(gf_audit_parse_time("1970-01-01T00:00:00Z", 0, &t) == 0 && t == 0);
    CHECK(gf_audit_parse_time("2026-11-30", 0, &t) == 0 && t == 1795996800000LL);
    CHECK(gf_audit_parse_time("2026-11-30T01:02:03.5Z", 0, &t) == 0 &&
          t == 1795996800000LL + 3723500);
    CHECK(gf_audit_parse_time("2026-11-30T01:00:00+01:00", 0, &t) == 0 && t == 1795996800000LL);
    CHECK(gf_audit_parse_time("@1234", 0, &t) == 0 && t == 1234);
    CHECK(gf_audit_parse_time("2h", 10000000, &t) == 0 && t == 10000000 - 7200000);
    static const char *bad[] = {"", "yesterday", "2026-13-01", "2026-11-30T25:00:00Z",
                                "2026-11-30Tx", "2026-11-30T01:02:03.Z", "@", "@x", "-5m"};
    for (size_t i = 0; i < GF_ARRAY_LEN(bad); i++)
        CHECK_MSG(gf_audit_parse_time(bad[i], 0, &t) != 0, "bad %zu", i);
}

static int count_cb(void *ud, const char *line, size_t len, const cJSON *rec)
{
    (void)line;
    (void)len;
    (void)rec;
    (*(int *)ud)++;
    return 0;
}

static int query_count(const char *dir, const struct gf_audit_query *q)
{
    int n = 0;
    struct gf_err err = {0};
    if (gf_audit_query_run(dir, q, count_cb, &n, &err) != 0)
        return -1;
    return n;
}

static void test_query(void)
{
    char base[64], dir[128];
    scratch(base);
    snprintf(dir, sizeof(dir), "%s/audit", base);
    struct gf_audit_config c;
    test_config(&c, dir);
    c.retention = GF_AUDIT_RETAIN_FULL;
    REQUIRE(make_log(&c, 30) == 0);
    struct gf_audit_query q = {.since_ms = INT64_MIN, .until_ms = INT64_MAX};
    CHECK(query_count(dir, &q) == 32); // 30 requests + started + stopped
    q.type = "request";
    CHECK(query_count(dir, &q) == 30);
    q.key_id = "key-odd";
    CHECK(query_count(dir, &q) == 15);
    q.key_id = NULL;
    q.verdict = "block"; // i % 3 == 0 has the output block verdict
    CHECK(query_count(dir, &q) == 10);
    q.verdict = NULL;
    q.category = "pii"; // i % 3 != 2
    CHECK(query_count(dir, &q) == 20);
    q.category = NULL;
    q.grep = "MARMALADE";
    CHECK(query_count(dir, &q) == 30);
    q.grep = "no such text";
    CHECK(query_count(dir, &q) == 0);
    q.grep = NULL;
    q.since_ms = gf_wall_ms() + 3600000;
    CHECK(query_count(dir, &q) == 0);
    q.since_ms = gf_wall_ms() - 3600000;
    CHECK(query_count(dir, &q) == 30);
    q.until_ms = gf_wall_ms() - 1800000;
    CHECK(query_count(dir, &q) == 0);
    q = (struct gf_audit_query){.since_ms = INT64_MIN, .until_ms = INT64_MAX, .type = "checkpoint"};
    CHECK(query_count(dir, &q) >= 6);
    struct gf_err err = {0};
    int n = 0;
    CHECK(gf_audit_query_run("/nonexistent/x", &q, count_cb, &n, &err) < 0);
    rm_rf(base);
}

static void test_admin_detail_invalid_utf8(void)
{
    // cJSON prints string bytes as they are; an admin detail with invalid UTF-8 is refused
    // rather than written as a line that would read as tampering.
    char base[64], dir[128];
    scratch(base);
    snprintf(dir, sizeof(dir), "%s/audit", base);
    struct gf_audit_config c;
    test_config(&c, dir);
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_audit_open(&c, NULL, &a, &err) == 0);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "name", "bad\xff");
    CHECK(gf_audit_log_admin(a, "key_created", "k", d, NULL, NULL) == GF_EINVAL);
    cJSON_Delete(d);
    d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "name", "good \xc3\xa9");
    CHECK(gf_audit_log_admin(a, "key_created", "k", d, NULL, NULL) == 0);
    cJSON_Delete(d);
    gf_audit_close(a);
    struct gf_audit_verify_result r;
    char kf[160];
    snprintf(kf, sizeof(kf), "%s/audit.key", base);
    CHECK(verify_ok(dir, kf, &r));
    rm_rf(base);
}

/* The latency is written as printf's "%.3f" writes it, ties and near-ties included (the record
 * writes it without printf). */
static void test_latency_format(void)
{
    struct gf_buf b;
    gf_buf_init(&b, 1 << 20);
    double fixed[] = {0,       0.0005,   0.0015,    0.0025, 1.0625, 2.0005,    0.1234995,
                      123.4565, 999.9995, 999999.9994, 1e9,   1e9 + 0.0625, 4e11,      1e12,
                      1e15,    0.000499999};
    uint64_t seed = 12345;
    for (int i = 0; i < 20000; i++) {
        double ms;
        if (i < (int)GF_ARRAY_LEN(fixed)) {
            ms = fixed[i];
        } else {
            seed = seed * 6364136223846793005u + 1442695040888963407u;
            uint64_t v = seed >> 20;
            switch (i % 4) {
            case 0: ms = (double)(v % 100000000) / 1e6; break;          // ns / 1e6, as measured
            case 1: ms = (double)(v % 10000000) / 1000.0 + 0.0005; break; // around ties
            case 2: ms = (double)(v % 1000000) / 16.0; break;          // exact binary fractions
            default: ms = (double)v * 1e-3; break;                      // large
            }
        }
        struct gf_audit_request r = {.request_id = "r", .status = 200, .latency_ms = ms};
        gf_buf_reset(&b);
        CHECK(audit_body_request(&b, &r, GF_AUDIT_RETAIN_HASHES) == 0);
        char want[64];
        snprintf(want, sizeof(want), "\"latency_ms\":%.3f,", ms);
        CHECK_MSG(b.data != NULL && strstr(b.data, want) != NULL, "%.17g: %s", ms,
                  b.data ? b.data : "");
    }
    gf_buf_cleanup(&b);
}

static void test_sha256_long(void)
{
    // The chain hash runs on the SHA-extension path when the CPU has it (GF_SHA256_PORTABLE=1
    // forces the portable one): FIPS 180-2's million 'a' and unaligned multi-block inputs.
    static char a[1000000];
    memset(a, 'a', sizeof(a));
    uint8_t d[32], e[32];
    char hex[65];
    gf_sha256(a, sizeof(a), d);
    gf_hex(d, 32, hex);
    CHECK_STREQ(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    struct gf_sha256 s;
    gf_sha256_init(&s);
    gf_sha256_update(&s, a + 1, 333);
    gf_sha256_update(&s, a + 1, sizeof(a) - 334);
    gf_sha256_update(&s, a, 1);
    gf_sha256_final(&s, e);
    CHECK(memcmp(d, e, 32) == 0);
    for (size_t n = 50; n < 70; n++) { // padding across the block boundary
        gf_sha256(a, n, d);
        gf_sha256_init(&s);
        for (size_t i = 0; i < n; i++)
            gf_sha256_update(&s, a, 1);
        gf_sha256_final(&s, e);
        CHECK(memcmp(d, e, 32) == 0);
    }
    gf_sha256(a, 55, d);
    gf_hex(d, 32, hex);
    CHECK_STREQ(hex, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
    gf_sha256(a, 56, d);
    gf_hex(d, 32, hex);
    CHECK_STREQ(hex, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
}

int main(void)
{
    gf_json_init();
    unsetenv("GARDEFOU_AUDIT_KEY");
    gf_log_set_level(GF_LOG_OFF);
    RUN(test_sha256_long);
    RUN(test_latency_format);
    RUN(test_json_valid);
    RUN(test_head);
    RUN(test_chain);
    RUN(test_scrub);
    RUN(test_parse_time);
    RUN(test_query);
    RUN(test_admin_detail_invalid_utf8);
    return test_report();
}
