/* apikey.c — the API key string: generation, format and checksum check, digest, ids, and the
 * Authorization header. Invariant: a string passes gf_apikey_check only when it is exactly
 * "gf_" + 22 base62 + 6 base62 encoding CRC-32 of the 22; since CRC-32 catches every error
 * burst up to 32 bits and the 6 digits encode one value each, any single-character typo fails. */
#include "gateway/keys_int.h"

#include <pthread.h>
#include <string.h>

static const char b62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

static int b62_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 36;
    return -1;
}

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t gf_crc32(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const uint32_t *table = crc_table;
    const uint8_t *s = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ s[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* Fills out[0..n) with uniform base62 characters: bytes >= 248 are rejected so that the
 * modulo is unbiased (248 = 4 * 62). */
int gf_apikey_random_b62(char *out, size_t n)
{
    uint8_t pool[64];
    size_t have = 0, used = 0, done = 0;
    while (done < n) {
        if (used == have) {
            if (gf_random_bytes(pool, sizeof(pool)) != 0)
                return GF_EIO;
            have = sizeof(pool);
            used = 0;
        }
        uint8_t b = pool[used++];
        if (b < 248)
            out[done++] = b62[b % 62];
    }
    return 0;
}

static void encode_check(uint32_t v, char out[GF_APIKEY_CHECK_LEN])
{
    for (int i = GF_APIKEY_CHECK_LEN - 1; i >= 0; i--) {
        out[i] = b62[v % 62];
        v /= 62;
    }
}

int gf_apikey_generate(char out[GF_APIKEY_BUFLEN])
{
    memcpy(out, "gf_", 3);
    if (gf_apikey_random_b62(out + 3, GF_APIKEY_RANDOM_LEN) != 0)
        return GF_EIO;
    encode_check(gf_crc32(0, out + 3, GF_APIKEY_RANDOM_LEN), out + 3 + GF_APIKEY_RANDOM_LEN);
    out[GF_APIKEY_LEN] = '\0';
    return 0;
}

int gf_apikey_check(const char *s, size_t n)
{
    if (s == NULL || n != GF_APIKEY_LEN || memcmp(s, "gf_", 3) != 0)
        return GF_EFORMAT;
    for (size_t i = 3; i < n; i++)
        if (b62_value((unsigned char)s[i]) < 0)
            return GF_EFORMAT;
    uint64_t v = 0;
    for (size_t i = 3 + GF_APIKEY_RANDOM_LEN; i < n; i++)
        v = v * 62 + (uint64_t)b62_value((unsigned char)s[i]);
    if (v > UINT32_MAX || (uint32_t)v != gf_crc32(0, s + 3, GF_APIKEY_RANDOM_LEN))
        return GF_EFORMAT;
    return 0;
}

void gf_apikey_digest(const char *s, size_t n, uint8_t out[GF_SHA256_LEN])
{
    gf_sha256(s, n, out);
}

void gf_apikey_prefix(const char *key, char out[GF_KEYPREFIX_BUFLEN])
{
    memcpy(out, key, GF_KEYPREFIX_LEN);
    out[GF_KEYPREFIX_LEN] = '\0';
}

int gf_apikey_new_id(char out[GF_KEYID_BUFLEN])
{
    memcpy(out, "key_", 4);
    if (gf_apikey_random_b62(out + 4, GF_KEYID_LEN - 4) != 0)
        return GF_EIO;
    out[GF_KEYID_LEN] = '\0';
    return 0;
}

bool gf_apikey_id_valid(const char *s)
{
    if (s == NULL || strlen(s) != GF_KEYID_LEN || memcmp(s, "key_", 4) != 0)
        return false;
    for (size_t i = 4; i < GF_KEYID_LEN; i++)
        if (b62_value((unsigned char)s[i]) < 0)
            return false;
    return true;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t';
}

int gf_apikey_from_header(const char *value, const char **tok, size_t *len)
{
    if (value == NULL)
        return GF_EINVAL;
    const char *p = value;
    while (is_space(*p))
        p++;
    static const char scheme[] = "bearer";
    for (size_t i = 0; i < sizeof(scheme) - 1; i++, p++) {
        char c = *p;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != scheme[i])
            return GF_EINVAL;
    }
    if (!is_space(*p))
        return GF_EINVAL;
    while (is_space(*p))
        p++;
    const char *start = p;
    while (*p && !is_space(*p))
        p++;
    const char *end = p;
    while (is_space(*p))
        p++;
    if (*p != '\0' || end == start)
        return GF_EFORMAT;
    if (gf_apikey_check(start, (size_t)(end - start)) != 0)
        return GF_EFORMAT;
    *tok = start;
    *len = (size_t)(end - start);
    return 0;
}
