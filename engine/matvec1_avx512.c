/* matvec1_avx512.c — the decode step of one sequence on AVX-512 VNNI: Q8_0 and Q4_0 weight rows
 * times a single token. Every weight byte is used once per step, so the cost is the work per
 * weight byte, and these kernels keep it small: a row is read front to back as one stream (the
 * hardware prefetcher follows it) and met by the token's records (gf_mv_prep1), laid out so
 * that each load of them pairs with the weight bytes as they are unpacked; the sums are
 * reduced once per row. Measured on a CPU that splits 512-bit operations in two (so 256-bit
 * ones cost half as much), per byte of weights in cache: 5% faster than the four-row kernels
 * of kernels_avx512_vnni.c for Q8_0 and 15% for Q4_0; from memory, where those interleave four
 * streams, 40-70% faster.
 *
 * Integer arithmetic as in kernels_avx512_vnni.c: weights are the unsigned operand of
 * vpdpbusd (Q8_0 values + 128, Q4_0 nibbles as stored), and each lane starts at the record's
 * correction, so it holds an exact signed partial sum. This file alone is compiled with
 * -mavx512vnni (plus F/BW/VL); kernels.c installs it only after checking the CPU. */
#include "engine/kernels_int.h"

#include <immintrin.h>
#include <string.h>

#define PF_BYTES 2048  // software prefetch distance along a Q4_0 row stream (measured from
                       // memory: Q4_0 gains 10-15% by it, Q8_0 and F32 rows lose 10-40%)

static inline float hsum256(__m256 s)
{
    __m128 v = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    return _mm_cvtss_f32(_mm_add_ss(v, _mm_movehdup_ps(v)));
}

/* ---- Q8_0: one block (34 bytes) per 256-bit step ---------------------------------------- */

/* sum + block p times the token's block: values x, corrections corr, scale *dx. (Measured:
 * gathering four blocks' scales by one permute, or summing four blocks' lanes pairwise before
 * one conversion, is no faster.) */
static inline __attribute__((always_inline)) __m256 block8(const char *p, const unsigned char *x,
                                                          const unsigned char *corr,
                                                          const unsigned char *dx, __m256 sum)
{
    __m256i q = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(p + 2)),
                                 _mm256_set1_epi8((char)0x80));
    __m256i acc = _mm256_dpbusd_epi32(_mm256_loadu_si256((const __m256i *)corr), q,
                                      _mm256_loadu_si256((const __m256i *)x));
    uint16_t h;
    memcpy(&h, p, 2);
    float d;
    memcpy(&d, dx, sizeof(d));
    __m256 sc = _mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi16((short)h)), _mm256_set1_ps(d));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc), sc, sum);
}

/* Block j (0-3) of the record r. */
#define BLOCK8(p, r, j, s) block8(p, (r) + 32 * (j), (r) + 128 + 32 * (j), (r) + 256 + 4 * (j), s)

static void rows_q8(const char *w, size_t row_bytes, int nr, int nb, const unsigned char *rec,
                    float *y)
{
    const size_t bs = sizeof(struct gf_block_q8);
    for (int i = 0; i < nr; i++) {
        const char *p = w + (size_t)i * row_bytes;
        const unsigned char *r = rec;
        // four blocks per iteration into four sums: the FMA chains overlap
        __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
        __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
        int k = 0;
        for (; k + 4 <= nb; k += 4, p += 4 * bs, r += GF_MV1_Q8_REC) {
            s0 = BLOCK8(p, r, 0, s0);
            s1 = BLOCK8(p + bs, r, 1, s1);
            s2 = BLOCK8(p + 2 * bs, r, 2, s2);
            s3 = BLOCK8(p + 3 * bs, r, 3, s3);
        }
        for (int j = 0; k < nb; k++, j++, p += bs)  // the last 1-3 blocks
            s0 = BLOCK8(p, r, j, s0);
        y[i] = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    }
}

/* ---- Q4_0: four blocks (72 bytes) per 512-bit step --------------------------------------- */

/* Word i of a permute's result is word idx[i] of its first source (0-31) or of its second
 * (32-63). The blocks' offsets in a group (scales at 0, 18, 36, 54, values 2 bytes on) are
 * even, so 16-bit permutes (AVX-512BW) gather them from two unaligned loads, a at the group
 * and b 8 bytes on: no per-block scalar work, and no load past the group. */
static const int16_t q4_idx[32] = {1,  2,  3,  4,  5,  6,  7,  8,  10, 11, 12,
                                   13, 14, 15, 16, 17, 19, 20, 21, 22, 23, 24,
                                   25, 26, 56, 57, 58, 59, 60, 61, 62, 63};
static const int16_t q4_scale_idx[32] = {0, 9, 18, 27};

/* sum + the group whose bytes are a and b (see above) times the token's record r. */
static inline __attribute__((always_inline)) __m512 group4(__m512i a, __m512i b,
                                                          const unsigned char *r, __m512 sum)
{
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    // the four blocks' 16 bytes each; low nibbles are values 0-15, high ones 16-31
    __m512i q = _mm512_permutex2var_epi16(a, _mm512_loadu_si512(q4_idx), b);
    __m512i lo = _mm512_and_si512(q, m4);
    __m512i hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
    __m512i acc = _mm512_dpbusd_epi32(_mm512_loadu_si512(r + 128), lo, _mm512_loadu_si512(r));
    acc = _mm512_dpbusd_epi32(acc, hi, _mm512_loadu_si512(r + 64));
    // the four scales converted and multiplied as four floats, then each spread over its
    // block's four lanes
    __m512i hs = _mm512_permutexvar_epi16(_mm512_loadu_si512(q4_scale_idx), a);
    __m128 d4 = _mm_mul_ps(_mm_cvtph_ps(_mm512_castsi512_si128(hs)),
                           _mm_loadu_ps((const float *)(r + 192)));
    __m512 d = _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
                                     _mm512_castps128_ps512(d4));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), d, sum);
}

static void rows_q4(const char *w, size_t row_bytes, int nr, int nb, const unsigned char *rec,
                    float *y)
{
    const size_t gb = GF_MV1_Q4_BLOCKS * sizeof(struct gf_block_q4), boff = gb - 64;
    const int full = nb / GF_MV1_Q4_BLOCKS;
    // a last, partial group is loaded with byte masks: nothing past the row is read, and the
    // masked-off bytes are zeros (as are the records there)
    size_t tb = (size_t)(nb % GF_MV1_Q4_BLOCKS) * sizeof(struct gf_block_q4);
    __mmask64 ma = ((__mmask64)1 << tb) - 1;  // tb < 64
    __mmask64 mb = tb > boff ? ((__mmask64)1 << (tb - boff)) - 1 : 0;
    for (int i = 0; i < nr; i++) {
        const char *p = w + (size_t)i * row_bytes;
        const unsigned char *r = rec;
        __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
        int g = 0;
        for (; g + 2 <= full; g += 2, p += 2 * gb, r += 2 * GF_MV1_Q4_REC) {
            _mm_prefetch(p + PF_BYTES, _MM_HINT_T0);
            _mm_prefetch(p + PF_BYTES + 64, _MM_HINT_T0);
            s0 = group4(_mm512_loadu_si512(p), _mm512_loadu_si512(p + boff), r, s0);
            s1 = group4(_mm512_loadu_si512(p + gb), _mm512_loadu_si512(p + gb + boff),
                        r + GF_MV1_Q4_REC, s1);
        }
        if (g < full) {
            s0 = group4(_mm512_loadu_si512(p), _mm512_loadu_si512(p + boff), r, s0);
            p += gb;
            r += GF_MV1_Q4_REC;
        }
        if (tb != 0)
            s1 = group4(_mm512_maskz_loadu_epi8(ma, p), _mm512_maskz_loadu_epi8(mb, p + boff), r,
                        s1);
        y[i] = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    }
}

void gf_matvec1_avx512(int type, const void *w, size_t row_bytes, int nr, int nb,
                       const unsigned char *rec1, float *y)
{
    if (type == GF_WT_Q8_0)
        rows_q8(w, row_bytes, nr, nb, rec1, y);
    else
        rows_q4(w, row_bytes, nr, nb, rec1, y);
}
