/* Unit tests of common/: errors, bounded buffers, JSON string escaping, UTF-8 checks,
 * SHA-256/HMAC known answers, parsing helpers, the allocation-failure hooks, aligned and huge-page
 * allocations, and JSON arenas. */
#include "common/common.h"

#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "test.h"

static void test_err_first_wins(void)
{
    struct gf_err err = {0};
    CHECK(gf_err_set(&err, GF_EINVAL, "a: %d", 1) == GF_EINVAL);
    gf_err_set(&err, GF_EIO, "b");
    CHECK(err.code == GF_EINVAL);
    CHECK_STREQ(err.msg, "a: 1");
    gf_err_prefix(&err, "file.json");
    CHECK_STREQ(err.msg, "file.json: a: 1");
    CHECK(gf_err_set(NULL, GF_ENOMEM, "x") == GF_ENOMEM);
    gf_err_clear(&err);
    CHECK(err.code == 0 && err.msg[0] == '\0');
}

static void test_buf_cap(void)
{
    struct gf_buf b;
    gf_buf_init(&b, 8);
    CHECK(gf_buf_puts(&b, "12345678") == 0);
    CHECK(gf_buf_putc(&b, 'x') == GF_ETOOBIG);
    CHECK(b.len == 8);
    CHECK_STREQ(b.data, "12345678");
    gf_buf_consume(&b, 3);
    CHECK_STREQ(b.data, "45678");
    CHECK(gf_buf_printf(&b, "%d", 123) == 0);
    CHECK_STREQ(b.data, "45678123");
    CHECK(gf_buf_printf(&b, "%d", 4) == GF_ETOOBIG);
    char *s = gf_buf_steal(&b);
    CHECK_STREQ(s, "45678123");
    gf_free(s);
    CHECK(b.data == NULL && b.len == 0);
    gf_buf_cleanup(&b);
}

static void test_json_str(void)
{
    struct gf_buf b;
    gf_buf_init(&b, 1024);
    const char in[] = "a\"b\\c\n\x01\xc3\xa9\xff";
    CHECK(gf_buf_append_json_str(&b, in, sizeof(in) - 1) == 0);
    CHECK_STREQ(b.data, "\"a\\\"b\\\\c\\n\\u0001\xc3\xa9\xef\xbf\xbd\"");
    gf_buf_cleanup(&b);
    // A failed append leaves the buffer as it was.
    gf_buf_init(&b, 4);
    CHECK(gf_buf_puts(&b, "ab") == 0);
    CHECK(gf_buf_append_json_str(&b, "xyz", 3) == GF_ETOOBIG);
    CHECK_STREQ(b.data, "ab");
    gf_buf_cleanup(&b);
}

static void test_utf8(void)
{
    CHECK(gf_utf8_valid("abc", 3));
    CHECK(gf_utf8_valid("\xe2\x82\xac", 3));
    CHECK(!gf_utf8_valid("\xc0\xaf", 2));          // overlong
    CHECK(!gf_utf8_valid("\xed\xa0\x80", 3));      // surrogate
    CHECK(!gf_utf8_valid("\xf4\x90\x80\x80", 4));  // past U+10FFFF
    CHECK(!gf_utf8_valid("\xe2\x82", 2));          // cut
    CHECK(gf_utf8_complete_prefix("ab\xe2\x82", 4) == 2);
    CHECK(gf_utf8_complete_prefix("ab\xe2\x82\xac", 5) == 5);
    CHECK(gf_utf8_complete_prefix("\xf0\x9f\x98", 3) == 0);
    CHECK(gf_utf8_complete_prefix("abc", 3) == 3);
}

static void hex_of(const char *msg, size_t n, char out[65])
{
    uint8_t d[32];
    gf_sha256(msg, n, d);
    gf_hex(d, 32, out);
}

static void test_sha256(void)
{
    char h[65];
    hex_of("", 0, h);
    CHECK_STREQ(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, h);
    CHECK_STREQ(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    hex_of(m, strlen(m), h);
    CHECK_STREQ(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    // Incremental updates of odd sizes give the same digest.
    static char big[1000];
    memset(big, 'a', sizeof(big));
    struct gf_sha256 s;
    gf_sha256_init(&s);
    for (size_t i = 0; i < sizeof(big); i += 7)
        gf_sha256_update(&s, big + i, i + 7 <= sizeof(big) ? 7 : sizeof(big) - i);
    uint8_t d1[32], d2[32];
    gf_sha256_final(&s, d1);
    gf_sha256(big, sizeof(big), d2);
    CHECK(memcmp(d1, d2, 32) == 0);
    // RFC 4231 test case 2.
    uint8_t mac[32];
    const char *data = "what do ya want for nothing?";
    gf_hmac_sha256("Jefe", 4, data, strlen(data), mac);
    gf_hex(mac, 32, h);
    CHECK_STREQ(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    CHECK(gf_ct_equal("abc", "abc", 3));
    CHECK(!gf_ct_equal("abc", "abd", 3));
}

static void test_parse(void)
{
    int64_t v;
    CHECK(gf_parse_i64("42", 0, 100, &v) == 0 && v == 42);
    CHECK(gf_parse_i64("101", 0, 100, &v) == GF_EINVAL);
    CHECK(gf_parse_i64("4x", 0, 100, &v) == GF_EINVAL);
    CHECK(gf_parse_i64("", 0, 100, &v) == GF_EINVAL);
    CHECK(gf_parse_duration_ms("30s", &v) == 0 && v == 30000);
    CHECK(gf_parse_duration_ms("2h", &v) == 0 && v == 7200000);
    CHECK(gf_parse_duration_ms("7d", &v) == 0 && v == 7 * 86400000LL);
    CHECK(gf_parse_duration_ms("5", &v) == 0 && v == 5000);
    CHECK(gf_parse_duration_ms("5y", &v) == GF_EINVAL);
    CHECK(gf_parse_duration_ms("-5s", &v) == GF_EINVAL);
    char ts[40];
    gf_format_time(0, ts, sizeof(ts));
    CHECK_STREQ(ts, "1970-01-01T00:00:00.000Z");
}

static void test_failalloc(void)
{
    if (!gf_alloc_fail_supported())
        return;
    gf_alloc_fail_after(2, false);
    void *a = gf_malloc(8);
    void *b = gf_malloc(8);
    void *c = gf_malloc(8);
    CHECK(a != NULL && b == NULL && c != NULL);
    CHECK(gf_alloc_failures() == 1);
    gf_free(a);
    gf_free(c);
    gf_alloc_fail_after(0, false);
    // OOM loop over a buffer append: each failing step leaves a valid, unchanged buffer.
    for (long n = 1;; n++) {
        struct gf_buf buf;
        gf_buf_init(&buf, 1 << 20);
        gf_alloc_fail_after(n, false);
        int rc = gf_buf_printf(&buf, "%0500d", 7);
        long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        CHECK(rc == 0 || rc == GF_ENOMEM);
        gf_buf_cleanup(&buf);
        if (failed == 0) {
            CHECK(rc == 0);
            break;
        }
    }
}

/* Cache-line aligned arrays and 2 MiB-aligned buffers: aligned whatever the size, usable over
 * their whole length (the sanitizers see any overrun), refused on overflow and failed by the
 * allocation-failure hooks like gf_malloc. */
static void test_aligned_alloc(void)
{
    const size_t sizes[] = {1, 3, 17, 64, 100, 4096, 200000};
    for (size_t i = 0; i < GF_ARRAY_LEN(sizes); i++) {
        unsigned char *p = gf_mallocarray_aligned(sizes[i], 4);
        CHECK(p != NULL && (uintptr_t)p % 64 == 0);
        if (p != NULL)
            memset(p, 0xab, sizes[i] * 4);
        gf_free(p);
    }
    CHECK(gf_mallocarray_aligned(SIZE_MAX / 2, 4) == NULL);
    const size_t huge[] = {1, (size_t)2 << 20, ((size_t)2 << 20) + 1, (size_t)5 << 20};
    for (size_t i = 0; i < GF_ARRAY_LEN(huge); i++) {
        unsigned char *p = gf_malloc_huge(huge[i]);
        CHECK(p != NULL && (uintptr_t)p % ((size_t)2 << 20) == 0);
        if (p != NULL) {
            memset(p, 0xcd, huge[i]);
            CHECK(p[0] == 0xcd && p[huge[i] - 1] == 0xcd);
        }
        gf_free_huge(p, huge[i]);
    }
    CHECK(gf_malloc_huge(0) == NULL);
    CHECK(gf_malloc_huge(SIZE_MAX) == NULL);
    gf_free_huge(NULL, 0);
    if (!gf_alloc_fail_supported())
        return;
    gf_alloc_fail_after(1, false);
    CHECK(gf_malloc_huge(4096) == NULL);
    gf_alloc_fail_after(1, false);
    CHECK(gf_mallocarray_aligned(16, 4) == NULL);
    CHECK(gf_alloc_failures() == 1);
    gf_alloc_fail_after(0, false);
}

/* gf_format_time keeps the last second's text: each result must still be the one the time
 * gives on its own, within a second, across seconds and back to an earlier one. */
static void test_format_time(void)
{
    const int64_t t[] = {0,           999,           1000,          1500,          1000,
                         86399999,    86400000,      1796048109233, 1796048109999, 1796048110000,
                         1796048109001, 951782400000, 4102444799999, 4102444800000, 0};
    for (size_t i = 0; i < GF_ARRAY_LEN(t); i++) {
        time_t secs = (time_t)(t[i] / 1000);
        struct tm tm;
        gmtime_r(&secs, &tm);
        char want[96], got[40];  // want: room for any int the format prints (-O3 checks)
        snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(t[i] % 1000));
        gf_format_time(t[i], got, sizeof(got));
        CHECK_STREQ(got, want);
    }
}

static bool in_region(const void *p, const char *region, size_t size)
{
    return (const char *)p >= region && (const char *)p < region + size;
}

/* A parse in an arena takes what fits from the block and the rest from the heap; cJSON's free
 * hook leaves arena values alone (under ASan a free in the middle of the region is reported),
 * so a tree mixing both, one value replaced after the parse, is deleted cleanly. */
static void test_json_arena(void)
{
    gf_json_init();
    size_t size = 1024;
    char *region = gf_malloc(size);
    CHECK(region != NULL);
    CHECK(gf_json_region_claim(region, size));
    CHECK(!gf_json_region_claim(region, size)); // one region a process
    char long_text[601];
    memset(long_text, 'x', 600);
    long_text[600] = '\0';
    struct gf_buf json;
    gf_buf_init(&json, 4096);
    CHECK(gf_buf_printf(&json, "{\"a\":\"short\",\"b\":\"%s\",\"c\":[1,2,3]}", long_text) == 0);
    struct gf_json_arena a = {region + 512, region + size}; // a block of the region
    gf_json_arena_begin(&a);
    cJSON *t = cJSON_Parse(json.data);
    gf_json_arena_end();
    gf_buf_cleanup(&json);
    CHECK(t != NULL);
    CHECK(in_region(t, region + 512, 512));
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(t, "b");
    CHECK(cJSON_IsString(b) && strlen(b->valuestring) == 600);
    CHECK(!in_region(b->valuestring, region, size)); // did not fit: the heap
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(t, "c");
    CHECK(cJSON_GetArraySize(c) == 3 && in_region(c, region + 512, 512));
    CHECK(a.next > region + 512 && a.next <= a.end);
    CHECK(cJSON_ReplaceItemInObjectCaseSensitive(t, "a", cJSON_CreateString("new")));
    CHECK_STREQ(cJSON_GetObjectItemCaseSensitive(t, "a")->valuestring, "new");
    cJSON_Delete(t);
    cJSON *h = cJSON_CreateObject(); // after gf_json_arena_end: the heap
    CHECK(h != NULL && !in_region(h, region, size));
    cJSON_Delete(h);
    gf_json_region_release(region);
    CHECK(gf_json_region_claim(region, size));
    gf_json_region_release(region);
    gf_free(region);
}

int main(void)
{
    RUN(test_err_first_wins);
    RUN(test_buf_cap);
    RUN(test_json_str);
    RUN(test_utf8);
    RUN(test_sha256);
    RUN(test_parse);
    RUN(test_failalloc);
    RUN(test_aligned_alloc);
    RUN(test_format_time);
    RUN(test_json_arena);
    return test_report();
}
