/* gemm_avx512.c — the prompt products with AVX-512 (see gemm_int.h for the layouts). This file
 * alone is compiled with the AVX-512 F/BW/VL/DQ/VNNI flags; gemm.c checks the CPU before
 * choosing it. Integer product: VPDPBUSD multiplies a token's unsigned half-block (broadcast to
 * the four 128-bit lanes) by the signed half-blocks of four weight rows and sums them by fours
 * into exact int32 lanes, starting from the rows' correction so that the +128 of the
 * activations cancels; two of them cover a block of four rows, which is then scaled by
 * d_w * d_x and accumulated in float. A micro-kernel keeps 16 weight rows x 4 tokens of
 * accumulators in registers. */
#include "engine/gemm_int.h"

#include <immintrin.h>

#define ALWAYS_INLINE inline __attribute__((always_inline))

static void pack_x(const struct gf_block_q8 *x, int nb, uint8_t *q, float *s)
{
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    for (int k = 0; k < nb; k++) {
        __m256i v = _mm256_loadu_si256((const __m256i *)x[k].qs);
        _mm256_storeu_si256((__m256i *)(q + (size_t)k * GF_QK), _mm256_xor_si256(v, bias));
        s[k] = _cvtsh_ss(x[k].d);
    }
}

/* The 32 signed values of a Q4_0 block: low nibbles are values 0-15, high nibbles 16-31. */
static ALWAYS_INLINE __m256i q4_values(const struct gf_block_q4 *b)
{
    __m128i v = _mm_loadu_si128((const __m128i *)b->qs), m = _mm_set1_epi8(0x0f);
    __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
    return _mm256_sub_epi8(u, _mm256_set1_epi8(8));
}

static void pack_w(int type, const void *rows, size_t row_bytes, int n, int nb, uint8_t *out)
{
    const __m512i ones = _mm512_set1_epi8(1);
    const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    for (int k = 0; k < nb; k++) {
        __m512i w1 = _mm512_setzero_si512(), w2 = _mm512_setzero_si512();
        float d[4] = {0, 0, 0, 0};
        for (int r = 0; r < n; r++) {
            const char *row = (const char *)rows + (size_t)r * row_bytes;
            __m256i v;
            if (type == GF_WT_Q8_0) {
                const struct gf_block_q8 *b = (const struct gf_block_q8 *)row + k;
                v = _mm256_loadu_si256((const __m256i *)b->qs);
                d[r] = _cvtsh_ss(b->d);
            } else {
                const struct gf_block_q4 *b = (const struct gf_block_q4 *)row + k;
                v = q4_values(b);
                d[r] = _cvtsh_ss(b->d);
            }
            // row r's first half-block goes to 128-bit lane r of w1, its second to w2's
            switch (r) {
            case 0:
                w1 = _mm512_inserti32x4(w1, _mm256_castsi256_si128(v), 0);
                w2 = _mm512_inserti32x4(w2, _mm256_extracti128_si256(v, 1), 0);
                break;
            case 1:
                w1 = _mm512_inserti32x4(w1, _mm256_castsi256_si128(v), 1);
                w2 = _mm512_inserti32x4(w2, _mm256_extracti128_si256(v, 1), 1);
                break;
            case 2:
                w1 = _mm512_inserti32x4(w1, _mm256_castsi256_si128(v), 2);
                w2 = _mm512_inserti32x4(w2, _mm256_extracti128_si256(v, 1), 2);
                break;
            default:
                w1 = _mm512_inserti32x4(w1, _mm256_castsi256_si128(v), 3);
                w2 = _mm512_inserti32x4(w2, _mm256_extracti128_si256(v, 1), 3);
                break;
            }
        }
        uint8_t *g = out + (size_t)k * GF_GEMM_GROUP;
        _mm512_storeu_si512(g, w1);
        _mm512_storeu_si512(g + 64, w2);
        // lane sums of the signed weights (1 * w by fours), times -128
        __m512i sum = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), ones, w1),
                                          ones, w2);
        _mm512_storeu_si512(g + 128, _mm512_sub_epi32(_mm512_setzero_si512(),
                                                      _mm512_slli_epi32(sum, 7)));
        __m512 sc = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(_mm_loadu_ps(d)));
        _mm512_storeu_ps((float *)(g + 192), sc);
    }
}

/* RG groups of 4 rows x RN tokens over all nb blocks; RG, RN are constants after inlining.
 * Per block and (group, token): two VPDPBUSD (the two half-blocks of four rows, from the row
 * group's correction), one conversion, the scale product and one FMA, for 128 products. */
static ALWAYS_INLINE void micro(int RG, int RN, const uint8_t *xq, const float *xs,
                                const uint8_t *wp, int nb, int nrows, float *y, size_t ldy)
{
    __m512 acc[4][4];
    for (int i = 0; i < RG; i++)
        for (int j = 0; j < RN; j++)
            acc[i][j] = _mm512_setzero_ps();
    size_t gst = (size_t)nb * GF_GEMM_GROUP, xst = (size_t)nb * GF_QK;
    for (int k = 0; k < nb; k++) {
        __m512i x1[4], x2[4];
        __m512 dx[4];
        for (int j = 0; j < RN; j++) {
            const uint8_t *p = xq + j * xst + (size_t)k * GF_QK;
            x1[j] = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)p));
            x2[j] = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(p + 16)));
            dx[j] = _mm512_set1_ps(xs[(size_t)j * nb + (size_t)k]);
        }
        for (int i = 0; i < RG; i++) {
            const uint8_t *g = wp + i * gst + (size_t)k * GF_GEMM_GROUP;
            __m512i w1 = _mm512_loadu_si512(g), w2 = _mm512_loadu_si512(g + 64);
            __m512 sw = _mm512_loadu_ps((const float *)(g + 192));
            for (int j = 0; j < RN; j++) {
                __m512i t = _mm512_loadu_si512(g + 128);
                t = _mm512_dpbusd_epi32(t, x1[j], w1);
                t = _mm512_dpbusd_epi32(t, x2[j], w2);
                acc[i][j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(sw, dx[j]),
                                            acc[i][j]);
            }
        }
    }
    for (int i = 0; i < RG; i++)
        for (int j = 0; j < RN; j++) {
            // row r of group i is the sum of lanes 4r .. 4r+3 (one 128-bit lane)
            __m512 a = acc[i][j];
            a = _mm512_add_ps(a, _mm512_permute_ps(a, 0x4e));
            a = _mm512_add_ps(a, _mm512_permute_ps(a, 0xb1));
            float o[16];
            _mm512_storeu_ps(o, a);
            for (int r = 0; r < 4 && 4 * i + r < nrows; r++)
                y[(size_t)j * ldy + (size_t)(4 * i + r)] = o[4 * r];
        }
}

#define MICRO(rg, rn)                                                                          \
    case (rg) * 8 + (rn):                                                                      \
        micro(rg, rn, x, s, w, nb, R - 4 * g0, yo, ldy);                                       \
        break;

static void tile(const uint8_t *xq, const float *xs, int T, const uint8_t *wp, int R, int nb,
                 float *y, size_t ldy)
{
    // 16 weight rows stay in L1 while every token streams past them
    int G = (R + 3) / 4;
    for (int g0 = 0; g0 < G; g0 += 4) {
        int rg = G - g0 < 4 ? G - g0 : 4;
        const uint8_t *w = wp + (size_t)g0 * nb * GF_GEMM_GROUP;
        for (int t0 = 0; t0 < T; t0 += 4) {
            int rn = T - t0 < 4 ? T - t0 : 4;
            const uint8_t *x = xq + (size_t)t0 * nb * GF_QK;
            const float *s = xs + (size_t)t0 * nb;
            float *yo = y + (size_t)t0 * ldy + (size_t)(4 * g0);
            switch (rg * 8 + rn) {
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
