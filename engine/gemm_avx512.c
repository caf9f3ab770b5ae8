/* gemm_avx512.c — the integer prompt product with AVX-512 VNNI (see gemm_int.h for the layout).
 * This file alone is compiled with the AVX-512 F/BW/VL/DQ/VNNI flags; gemm.c checks the CPU
 * before choosing it. One VPDPBUSD multiplies 64 unsigned activation bytes by 64 signed weight
 * bytes and sums them by fours into 16 exact int32 lanes, starting from the weight row's
 * correction so that the +128 of the activations cancels; the lanes of the two blocks of a pair
 * are then scaled by d_w * d_x and accumulated in float. A micro-kernel keeps 4 weight rows x 4
 * tokens of accumulators in registers, so each loaded vector serves four products. */
#include "engine/gemm_int.h"

#include <immintrin.h>

#define ALWAYS_INLINE inline __attribute__((always_inline))

static ALWAYS_INLINE __m512 bcast2(const float *s)
{
    // [s0, s1, s0, s1, ...]: even lanes hold the pair's first block, odd lanes its second
    return _mm512_broadcast_f32x2(_mm_castsi128_ps(_mm_loadl_epi64((const __m128i *)s)));
}

static ALWAYS_INLINE void pair_bytes(__m256i a, __m256i b, __m256i *lo, __m256i *hi)
{
    *lo = _mm256_unpacklo_epi32(a, b);  // dwords A0 B0 A1 B1 | A4 B4 A5 B5
    *hi = _mm256_unpackhi_epi32(a, b);  // dwords A2 B2 A3 B3 | A6 B6 A7 B7
}

static void pack_x(const struct gf_block_q8 *x, int nb, uint8_t *q, float *s)
{
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    for (int k = 0; k < nb; k += 2) {
        __m256i a = _mm256_loadu_si256((const __m256i *)x[k].qs), b = _mm256_setzero_si256();
        s[k] = _cvtsh_ss(x[k].d);
        s[k + 1] = 0.0f;
        if (k + 1 < nb) {
            b = _mm256_loadu_si256((const __m256i *)x[k + 1].qs);
            s[k + 1] = _cvtsh_ss(x[k + 1].d);
        }
        __m256i lo, hi;
        pair_bytes(a, b, &lo, &hi);
        _mm256_storeu_si256((__m256i *)(q + (size_t)k * 32), _mm256_xor_si256(lo, bias));
        _mm256_storeu_si256((__m256i *)(q + (size_t)k * 32 + 32), _mm256_xor_si256(hi, bias));
    }
}

/* The 32 signed values of a Q4_0 block: low nibbles are values 0-15, high nibbles 16-31. */
static ALWAYS_INLINE __m256i q4_values(const struct gf_block_q4 *b)
{
    __m128i v = _mm_loadu_si128((const __m128i *)b->qs), m = _mm_set1_epi8(0x0f);
    __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
    return _mm256_sub_epi8(u, _mm256_set1_epi8(8));
}

static void pack_w(int type, const void *row, int nb, int8_t *q, float *s, int32_t *c)
{
    const __m512i ones = _mm512_set1_epi8(1);
    const struct gf_block_q8 *r8 = row;
    const struct gf_block_q4 *r4 = row;
    for (int k = 0; k < nb; k += 2) {
        __m256i a, b = _mm256_setzero_si256();
        s[k + 1] = 0.0f;
        if (type == GF_WT_Q8_0) {
            a = _mm256_loadu_si256((const __m256i *)r8[k].qs);
            s[k] = _cvtsh_ss(r8[k].d);
            if (k + 1 < nb) {
                b = _mm256_loadu_si256((const __m256i *)r8[k + 1].qs);
                s[k + 1] = _cvtsh_ss(r8[k + 1].d);
            }
        } else {
            a = q4_values(&r4[k]);
            s[k] = _cvtsh_ss(r4[k].d);
            if (k + 1 < nb) {
                b = q4_values(&r4[k + 1]);
                s[k + 1] = _cvtsh_ss(r4[k + 1].d);
            }
        }
        __m256i lo, hi;
        pair_bytes(a, b, &lo, &hi);
        __m512i pair = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
        _mm512_storeu_si512(q + (size_t)k * 32, pair);
        // lane sums of the signed weights (1 * w by fours), times -128
        __m512i sum = _mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, pair);
        _mm512_storeu_si512(c + (size_t)k * 8, _mm512_sub_epi32(_mm512_setzero_si512(),
                                                                 _mm512_slli_epi32(sum, 7)));
    }
}

/* The sums of four vectors, [sum a0, sum a1, sum a2, sum a3], in 13 operations rather than the
 * 32 of four separate reductions (it matters for short rows: stories110M has 12 pairs). */
static ALWAYS_INLINE __m128 sum4(__m512 a0, __m512 a1, __m512 a2, __m512 a3)
{
    __m512 u0 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
    __m512 u1 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
    // per 128-bit lane: u0 = [a0 a1 a0 a1], u1 = [a2 a3 a2 a3] partial sums
    __m512 w = _mm512_add_ps(_mm512_shuffle_ps(u0, u1, _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(u0, u1, _MM_SHUFFLE(3, 2, 3, 2)));
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(w),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(w), 1)));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* RM rows x RN tokens over all np pairs; RM, RN are constants after inlining. */
static ALWAYS_INLINE void micro(int RM, int RN, const uint8_t *xq, const float *xs,
                                const int8_t *wq, const float *ws, const int32_t *wc, int np,
                                float *y, size_t ldy)
{
    __m512 acc[4][4];
    for (int i = 0; i < RM; i++)
        for (int j = 0; j < RN; j++)
            acc[i][j] = _mm512_setzero_ps();
    size_t bst = (size_t)np * GF_GEMM_PAIR, sst = (size_t)np * 2, cst = (size_t)np * 16;
    for (int p = 0; p < np; p++) {
        __m512i xv[4];
        __m512 sx[4];
        for (int j = 0; j < RN; j++) {
            xv[j] = _mm512_loadu_si512(xq + j * bst + (size_t)p * GF_GEMM_PAIR);
            sx[j] = bcast2(xs + j * sst + 2 * (size_t)p);
        }
        for (int i = 0; i < RM; i++) {
            __m512i w = _mm512_loadu_si512(wq + i * bst + (size_t)p * GF_GEMM_PAIR);
            __m512i c = _mm512_loadu_si512(wc + i * cst + 16 * (size_t)p);
            __m512 sw = bcast2(ws + i * sst + 2 * (size_t)p);
            for (int j = 0; j < RN; j++) {
                __m512i d = _mm512_dpbusd_epi32(c, xv[j], w);
                acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_mul_ps(sw, sx[j]),
                                            acc[i][j]);
            }
        }
    }
    for (int i = 0; i < RM; i++) {
        if (RN == 4) {
            float o[4];
            _mm_storeu_ps(o, sum4(acc[i][0], acc[i][1], acc[i][2], acc[i][3]));
            for (int j = 0; j < 4; j++)
                y[(size_t)j * ldy + (size_t)i] = o[j];
        } else {
            for (int j = 0; j < RN; j++)
                y[(size_t)j * ldy + (size_t)i] = _mm512_reduce_add_ps(acc[i][j]);
        }
    }
}

#define MICRO(rm, rn)                                                                          \
    case (rm) * 8 + (rn):                                                                      \
        micro(rm, rn, x, s, w, sw, cw, np, yo, ldy);                                           \
        break;

static void tile(const uint8_t *xq, const float *xs, int T, const int8_t *wq, const float *ws,
                 const int32_t *wc, int R, int np, float *y, size_t ldy)
{
    // 4 weight rows stay in L1 while every token streams past them
    for (int r0 = 0; r0 < R; r0 += 4) {
        int rm = R - r0 < 4 ? R - r0 : 4;
        const int8_t *w = wq + (size_t)r0 * np * GF_GEMM_PAIR;
        const float *sw = ws + (size_t)r0 * np * 2;
        const int32_t *cw = wc + (size_t)r0 * np * 16;
        for (int t0 = 0; t0 < T; t0 += 4) {
            int rn = T - t0 < 4 ? T - t0 : 4;
            const uint8_t *x = xq + (size_t)t0 * np * GF_GEMM_PAIR;
            const float *s = xs + (size_t)t0 * np * 2;
            float *yo = y + (size_t)t0 * ldy + (size_t)r0;
            switch (rm * 8 + rn) {
                MICRO(4, 4) MICRO(4, 3) MICRO(4, 2) MICRO(4, 1)
                MICRO(3, 4) MICRO(3, 3) MICRO(3, 2) MICRO(3, 1)
                MICRO(2, 4) MICRO(2, 3) MICRO(2, 2) MICRO(2, 1)
                MICRO(1, 4) MICRO(1, 3) MICRO(1, 2) MICRO(1, 1)
            default:
                break;
            }
        }
    }
}

/* F32: RM weight rows x RN*16 tokens of accumulators; each step k broadcasts one weight per row
 * and multiplies it with RN vectors of 16 tokens' activations (outer-product form), so the
 * accumulators end up holding finished outputs and no horizontal sums are needed. */
static ALWAYS_INLINE void micro_f32(int RM, int RN, const float *xt, int ldt, int nt,
                                    const float *w, size_t ldw, int K, float *y, size_t ldy)
{
    __m512 acc[8][3];
    for (int i = 0; i < RM; i++)
        for (int j = 0; j < RN; j++)
            acc[i][j] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        __m512 x[3];
        for (int j = 0; j < RN; j++)
            x[j] = _mm512_loadu_ps(xt + (size_t)k * ldt + 16 * j);
        for (int i = 0; i < RM; i++) {
            __m512 b = _mm512_set1_ps(w[(size_t)i * ldw + (size_t)k]);
            for (int j = 0; j < RN; j++)
                acc[i][j] = _mm512_fmadd_ps(x[j], b, acc[i][j]);
        }
    }
    for (int i = 0; i < RM; i++)
        for (int j = 0; j < RN; j++) {
            float o[16];
            _mm512_storeu_ps(o, acc[i][j]);
            for (int l = 0; l < 16 && 16 * j + l < nt; l++)
                y[(size_t)(16 * j + l) * ldy + (size_t)i] = o[l];
        }
}

#define MICRO_F32(rm, rn)                                                                      \
    case (rm) * 8 + (rn):                                                                      \
        micro_f32(rm, rn, x, ldt, nt, wr, ldw, K, yo, ldy);                                    \
        break;

static void f32(const float *xt, int T, int ldt, const float *w, size_t ldw, int R, int K,
                float *y, size_t ldy)
{
    for (int r0 = 0; r0 < R;) {
        int rm = R - r0 >= 8 ? 8 : R - r0 >= 4 ? 4 : R - r0 >= 2 ? 2 : 1;
        const float *wr = w + (size_t)r0 * ldw;
        for (int t0 = 0; t0 < T; t0 += 48) {
            int nt = T - t0 < 48 ? T - t0 : 48, rn = (nt + 15) / 16;
            const float *x = xt + t0;
            float *yo = y + (size_t)t0 * ldy + (size_t)r0;
            switch (rm * 8 + rn) {
                MICRO_F32(8, 3) MICRO_F32(8, 2) MICRO_F32(8, 1)
                MICRO_F32(4, 3) MICRO_F32(4, 2) MICRO_F32(4, 1)
                MICRO_F32(2, 3) MICRO_F32(2, 2) MICRO_F32(2, 1)
                MICRO_F32(1, 3) MICRO_F32(1, 2) MICRO_F32(1, 1)
            default:
                break;
            }
        }
        r0 += rm;
    }
}

const struct gf_gemm gf_gemm_avx512vnni = {
    .name = "avx512vnni",
    .pack_x = pack_x,
    .pack_w = pack_w,
    .tile = tile,
    .f32 = f32,
};
