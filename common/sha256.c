/* sha256.c — SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104). Used for key digests, the audit
 * hash chain, its checkpoints and policy versions; small enough not to need a crypto library.
 * On x86-64 CPUs with the SHA extensions the block function is picked at run time (about 8x the
 * portable one), which is what lets `audit verify` hash a log at disk speed. */
#include "common/common.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_SHA_NI_PATH 1
#endif

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static inline uint32_t ror(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void compress(uint32_t h[8], const uint8_t *blk)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)blk[4 * i] << 24 | (uint32_t)blk[4 * i + 1] << 16 |
               (uint32_t)blk[4 * i + 2] << 8 | blk[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t S1 = ror(e, 6) ^ ror(e, 11) ^ ror(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = k + S1 + ch + K[i] + w[i];
        uint32_t S0 = ror(a, 2) ^ ror(a, 13) ^ ror(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = S0 + maj;
        k = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += k;
}

#ifdef HAVE_SHA_NI_PATH
/* The block function with the SHA extensions. The state is kept as the two halves the
 * instructions want, ABEF and CDGH; each sha256rnds2 does two rounds, and msg1/msg2 extend the
 * message schedule four words at a time. */
__attribute__((target("sha,sse4.1,ssse3"))) static void blocks_ni(uint32_t h[8],
                                                                   const uint8_t *p, size_t n)
{
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i t = _mm_loadu_si128((const __m128i *)&h[0]);   // D C B A (lane 3..0)
    __m128i s1 = _mm_loadu_si128((const __m128i *)&h[4]);  // H G F E
    t = _mm_shuffle_epi32(t, 0xB1);                        // C D A B
    s1 = _mm_shuffle_epi32(s1, 0x1B);                      // E F G H
    __m128i s0 = _mm_alignr_epi8(t, s1, 8);                // A B E F
    s1 = _mm_blend_epi16(s1, t, 0xF0);                     // C D G H
    for (; n > 0; n--, p += 64) {
        __m128i abef = s0, cdgh = s1, w[4];
        for (int i = 0; i < 16; i++) {
            __m128i m;
            if (i < 4) {
                w[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
            } else {
                // W[t-16] + s0(W[t-15]) + W[t-7], then + s1(W[t-2]) with the dependencies.
                m = _mm_sha256msg1_epu32(w[i & 3], w[(i + 1) & 3]);
                m = _mm_add_epi32(m, _mm_alignr_epi8(w[(i + 3) & 3], w[(i + 2) & 3], 4));
                w[i & 3] = _mm_sha256msg2_epu32(m, w[(i + 3) & 3]);
            }
            m = _mm_add_epi32(w[i & 3], _mm_loadu_si128((const __m128i *)&K[4 * i]));
            s1 = _mm_sha256rnds2_epu32(s1, s0, m);
            m = _mm_shuffle_epi32(m, 0x0E);
            s0 = _mm_sha256rnds2_epu32(s0, s1, m);
        }
        s0 = _mm_add_epi32(s0, abef);
        s1 = _mm_add_epi32(s1, cdgh);
    }
    t = _mm_shuffle_epi32(s0, 0x1B);                       // F E B A
    s1 = _mm_shuffle_epi32(s1, 0xB1);                      // D C H G
    s0 = _mm_blend_epi16(t, s1, 0xF0);                     // D C B A
    s1 = _mm_alignr_epi8(s1, t, 8);                        // H G F E
    _mm_storeu_si128((__m128i *)&h[0], s0);
    _mm_storeu_si128((__m128i *)&h[4], s1);
}

static bool cpu_has_sha_ni(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3))
        return false;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return false;
    return (b & (1u << 29)) != 0; // CPUID.(EAX=7,ECX=0):EBX.SHA[bit 29]
}
#endif

/* Runs the block function over n 64-byte blocks: the SHA-extension one when the CPU has it
 * (decided once; GF_SHA256_PORTABLE=1 in the environment forces the portable one). */
static void blocks(uint32_t h[8], const uint8_t *p, size_t n)
{
#ifdef HAVE_SHA_NI_PATH
    static atomic_int impl; // 0 = not decided, 1 = portable, 2 = SHA extensions
    int i = atomic_load_explicit(&impl, memory_order_relaxed);
    if (i == 0) {
        const char *force = getenv("GF_SHA256_PORTABLE");
        i = cpu_has_sha_ni() && !(force && *force == '1') ? 2 : 1;
        atomic_store_explicit(&impl, i, memory_order_relaxed);
    }
    if (i == 2) {
        blocks_ni(h, p, n);
        return;
    }
#endif
    for (; n > 0; n--, p += 64)
        compress(h, p);
}

void gf_sha256_init(struct gf_sha256 *s)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof(iv));
    s->nbytes = 0;
    s->used = 0;
}

void gf_sha256_update(struct gf_sha256 *s, const void *p, size_t n)
{
    const uint8_t *in = p;
    s->nbytes += n;
    if (s->used) {
        size_t take = 64 - s->used < n ? 64 - s->used : n;
        memcpy(s->block + s->used, in, take);
        s->used += take;
        in += take;
        n -= take;
        if (s->used < 64)
            return;
        blocks(s->h, s->block, 1);
        s->used = 0;
    }
    if (n >= 64) {
        blocks(s->h, in, n / 64);
        in += n & ~(size_t)63;
        n &= 63;
    }
    memcpy(s->block, in, n);
    s->used = n;
}

void gf_sha256_final(struct gf_sha256 *s, uint8_t out[GF_SHA256_LEN])
{
    uint64_t bits = s->nbytes * 8;
    s->block[s->used++] = 0x80; // used < 64 always holds between calls
    if (s->used > 56) {
        memset(s->block + s->used, 0, 64 - s->used);
        blocks(s->h, s->block, 1);
        s->used = 0;
    }
    memset(s->block + s->used, 0, 56 - s->used);
    for (int i = 0; i < 8; i++)
        s->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    blocks(s->h, s->block, 1);
    s->used = 0;
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

void gf_sha256(const void *p, size_t n, uint8_t out[GF_SHA256_LEN])
{
    struct gf_sha256 s;
    gf_sha256_init(&s);
    gf_sha256_update(&s, p, n);
    gf_sha256_final(&s, out);
}

void gf_hmac_sha256(const void *key, size_t keylen, const void *p, size_t n,
                    uint8_t out[GF_SHA256_LEN])
{
    uint8_t k[64] = {0};
    if (keylen > 64)
        gf_sha256(key, keylen, k);
    else if (keylen)
        memcpy(k, key, keylen);
    uint8_t ipad[64], opad[64];
    for (int i = 0; i < 64; i++) {
        ipad[i] = k[i] ^ 0x36;
        opad[i] = k[i] ^ 0x5c;
    }
    uint8_t inner[GF_SHA256_LEN];
    struct gf_sha256 s;
    gf_sha256_init(&s);
    gf_sha256_update(&s, ipad, 64);
    gf_sha256_update(&s, p, n);
    gf_sha256_final(&s, inner);
    gf_sha256_init(&s);
    gf_sha256_update(&s, opad, 64);
    gf_sha256_update(&s, inner, sizeof(inner));
    gf_sha256_final(&s, out);
}

void gf_hex(const uint8_t *p, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * n] = '\0';
}

bool gf_ct_equal(const void *a, const void *b, size_t n)
{
    const volatile uint8_t *x = a, *y = b;
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++)
        d |= x[i] ^ y[i];
    return d == 0;
}
