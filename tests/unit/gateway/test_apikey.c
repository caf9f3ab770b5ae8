/* Unit tests of gateway/apikey.c: the key format, that every single-character typo (and every
 * deletion, insertion and adjacent swap) fails the checksum, ids, digests and the Authorization
 * header parser. */
#include "gateway/keys_int.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>

#include "test.h"

/* The kernel's randomness can fail (getrandom(2) before the pool is ready with GRND_NONBLOCK,
 * seccomp, ENOSYS): this test binary's getrandom fails while getrandom_fail is set, and a key or
 * id is then refused rather than made from a partly filled buffer. */
static atomic_int getrandom_fail;

ssize_t getrandom(void *buf, size_t n, unsigned int flags)
{
    if (atomic_load(&getrandom_fail)) {
        errno = EAGAIN;
        return -1;
    }
    ssize_t (*next)(void *, size_t, unsigned int) =
        (ssize_t(*)(void *, size_t, unsigned int))dlsym(RTLD_NEXT, "getrandom");
    return next(buf, n, flags);
}

static void test_no_randomness(void)
{
    char k[GF_APIKEY_BUFLEN], id[GF_KEYID_BUFLEN];
    atomic_store(&getrandom_fail, 1);
    CHECK(gf_apikey_generate(k) == GF_EIO);
    CHECK(gf_apikey_new_id(id) == GF_EIO);
    atomic_store(&getrandom_fail, 0);
    CHECK(gf_apikey_generate(k) == 0 && gf_apikey_check(k, strlen(k)) == 0);
}

static void test_crc32_known(void)
{
    CHECK(gf_crc32(0, "123456789", 9) == 0xCBF43926u);
    CHECK(gf_crc32(0, "", 0) == 0);
    // Incremental equals one-shot.
    CHECK(gf_crc32(gf_crc32(0, "12345", 5), "6789", 4) == 0xCBF43926u);
}

static void test_generate(void)
{
    char a[GF_APIKEY_BUFLEN], b[GF_APIKEY_BUFLEN];
    int bad = 0, same = 0;
    for (int i = 0; i < 2000; i++) {
        REQUIRE(gf_apikey_generate(a) == 0);
        REQUIRE(gf_apikey_generate(b) == 0);
        bad += strlen(a) != GF_APIKEY_LEN || memcmp(a, "gf_", 3) != 0 ||
               gf_apikey_check(a, strlen(a)) != 0;
        same += strcmp(a, b) == 0;
    }
    CHECK(bad == 0);
    CHECK(same == 0);
    char p[GF_KEYPREFIX_BUFLEN];
    gf_apikey_prefix(a, p);
    CHECK(strlen(p) == GF_KEYPREFIX_LEN && memcmp(p, a, GF_KEYPREFIX_LEN) == 0);
}

static void test_every_typo_detected(void)
{
    int missed = 0, tried = 0;
    for (int round = 0; round < 20; round++) {
        char k[GF_APIKEY_BUFLEN], t[GF_APIKEY_BUFLEN + 1];
        REQUIRE(gf_apikey_generate(k) == 0);
        // Every substitution of every character by every other byte value.
        for (size_t i = 0; i < GF_APIKEY_LEN; i++) {
            for (int c = 1; c < 256; c++) {
                if ((char)c == k[i])
                    continue;
                memcpy(t, k, sizeof(k));
                t[i] = (char)c;
                tried++;
                missed += gf_apikey_check(t, GF_APIKEY_LEN) == 0;
            }
        }
        // Deletions and insertions change the length.
        for (size_t i = 0; i < GF_APIKEY_LEN; i++) {
            memcpy(t, k, i);
            memcpy(t + i, k + i + 1, GF_APIKEY_LEN - i - 1);
            missed += gf_apikey_check(t, GF_APIKEY_LEN - 1) == 0;
            memcpy(t, k, i);
            t[i] = 'x';
            memcpy(t + i + 1, k + i, GF_APIKEY_LEN - i);
            missed += gf_apikey_check(t, GF_APIKEY_LEN + 1) == 0;
            tried += 2;
        }
        // Adjacent swaps inside the random part and inside the checksum.
        for (size_t i = 3; i + 1 < GF_APIKEY_LEN; i++) {
            if (i == 3 + GF_APIKEY_RANDOM_LEN - 1 || k[i] == k[i + 1])
                continue;
            memcpy(t, k, sizeof(k));
            t[i] = k[i + 1];
            t[i + 1] = k[i];
            tried++;
            missed += gf_apikey_check(t, GF_APIKEY_LEN) == 0;
        }
        CHECK(gf_apikey_check(k, GF_APIKEY_LEN) == 0);
    }
    CHECK_MSG(missed == 0, "%d of %d typos passed", missed, tried);
}

static void test_check_rejects(void)
{
    CHECK(gf_apikey_check(NULL, 0) == GF_EFORMAT);
    CHECK(gf_apikey_check("", 0) == GF_EFORMAT);
    CHECK(gf_apikey_check("sk-abc", 6) == GF_EFORMAT);
    // The checksum digits can encode values past 2^32: "zzzzzz" must not wrap to a match.
    char k[GF_APIKEY_BUFLEN];
    REQUIRE(gf_apikey_generate(k) == 0);
    memcpy(k + 3 + GF_APIKEY_RANDOM_LEN, "zzzzzz", 6);
    CHECK(gf_apikey_check(k, GF_APIKEY_LEN) == GF_EFORMAT);
}

static void test_digest_and_id(void)
{
    char k[GF_APIKEY_BUFLEN];
    REQUIRE(gf_apikey_generate(k) == 0);
    uint8_t d1[GF_SHA256_LEN], d2[GF_SHA256_LEN];
    gf_apikey_digest(k, GF_APIKEY_LEN, d1);
    gf_sha256(k, GF_APIKEY_LEN, d2);
    CHECK(memcmp(d1, d2, sizeof(d1)) == 0);
    char id[GF_KEYID_BUFLEN], id2[GF_KEYID_BUFLEN];
    REQUIRE(gf_apikey_new_id(id) == 0 && gf_apikey_new_id(id2) == 0);
    CHECK(gf_apikey_id_valid(id));
    CHECK(strcmp(id, id2) != 0);
    CHECK(!gf_apikey_id_valid("key_short"));
    CHECK(!gf_apikey_id_valid("kex_0123456789abcdef"));
    CHECK(!gf_apikey_id_valid("key_0123456789abcde!"));
    CHECK(gf_apikey_id_valid("key_0123456789abcdef"));
    CHECK(!gf_apikey_id_valid(NULL));
}

static void test_header(void)
{
    char k[GF_APIKEY_BUFLEN], h[128];
    REQUIRE(gf_apikey_generate(k) == 0);
    const char *tok = NULL;
    size_t len = 0;
    snprintf(h, sizeof(h), "Bearer %s", k);
    CHECK(gf_apikey_from_header(h, &tok, &len) == 0);
    CHECK(len == GF_APIKEY_LEN && memcmp(tok, k, len) == 0);
    snprintf(h, sizeof(h), "  bEARER \t %s  ", k);
    CHECK(gf_apikey_from_header(h, &tok, &len) == 0 && len == GF_APIKEY_LEN);
    snprintf(h, sizeof(h), "Basic %s", k);
    CHECK(gf_apikey_from_header(h, &tok, &len) == GF_EINVAL);
    snprintf(h, sizeof(h), "Bearer%s", k);
    CHECK(gf_apikey_from_header(h, &tok, &len) == GF_EINVAL);
    CHECK(gf_apikey_from_header(NULL, &tok, &len) == GF_EINVAL);
    CHECK(gf_apikey_from_header("", &tok, &len) == GF_EINVAL);
    CHECK(gf_apikey_from_header("Bearer", &tok, &len) == GF_EINVAL);
    CHECK(gf_apikey_from_header("Bearer ", &tok, &len) == GF_EFORMAT);
    CHECK(gf_apikey_from_header("Bearer sk-123", &tok, &len) == GF_EFORMAT);
    snprintf(h, sizeof(h), "Bearer %s extra", k);
    CHECK(gf_apikey_from_header(h, &tok, &len) == GF_EFORMAT);
    k[10] = k[10] == 'a' ? 'b' : 'a';
    snprintf(h, sizeof(h), "Bearer %s", k);
    CHECK(gf_apikey_from_header(h, &tok, &len) == GF_EFORMAT);
}

int main(void)
{
    RUN(test_crc32_known);
    RUN(test_generate);
    RUN(test_every_typo_detected);
    RUN(test_check_rejects);
    RUN(test_digest_and_id);
    RUN(test_header);
    RUN(test_no_randomness);
    return test_report();
}
