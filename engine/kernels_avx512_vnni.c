/* kernels_avx512_vnni.c — matrix-vector products of Q8_0 and Q4_0 weights with up to 8 token
 * activations at once, on AVX-512 VNNI (vpdpbusd: 64 unsigned-by-signed byte products summed
 * into 16 int32 lanes per instruction), and of F32 weights with up to 8 tokens. This file alone
 * is compiled with -mavx512vnni (plus F/BW/VL); kernels.c installs it only after checking the
 * CPU. Decode is bound by memory: each weight row is loaded and unpacked once per step for all
 * the step's tokens, and prefetched ahead of use.
 *
 * Integer arithmetic (see gf_mv_prep in kernels_int.h): weights are the unsigned operand of
 * vpdpbusd (Q8_0 values + 128, Q4_0 nibbles without their -8) and activations the signed one;
 * each lane starts at the activation's precomputed correction (-128 or -8 times the sum of its
 * four values), so it holds an exact signed partial sum of the block, as in the AVX2 kernels;
 * only the float summation order differs from the scalar kernels. */
#include "engine/kernels_int.h"

#include <immintrin.h>
#include <stdbool.h>

#define MV_T 8            // tokens per pass over a weight row
#define PF_BYTES 4096     // software prefetch distance along the weight stream (measured:
                          // 1 KiB leaves the stream waiting on memory, 4-16 KiB are equal)

/* Two Q8_0 weight blocks plus 128, as 64 unsigned bytes in the u layout: [A0..15, B0..15,
 * A16..31, B16..31]. With b == NULL the second block is zero (the odd last block of a row). */
static inline __m512i w_q8(const struct gf_block_q8 *a, const struct gf_block_q8 *b)
{
    __m256i x = _mm256_loadu_si256((const __m256i *)a->qs);
    __m512i z = b != NULL ? _mm512_inserti64x4(_mm512_castsi256_si512(x),
                                               _mm256_loadu_si256((const __m256i *)b->qs), 1)
                          : _mm512_zextsi256_si512(x);
    z = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 4, 5, 2, 3, 6, 7), z);
    return _mm512_xor_si512(z, _mm512_set1_epi8((char)0x80));
}

/* Two Q4_0 weight blocks as their nibbles (0..15, unsigned) in the u layout: low nibbles are
 * values 0..15, high nibbles 16..31. With b == NULL the second block reads as zero. */
static inline __m512i w_q4(const struct gf_block_q4 *a, const struct gf_block_q4 *b)
{
    __m128i lo = _mm_loadu_si128((const __m128i *)a->qs);
    __m256i v = b != NULL ? _mm256_inserti128_si256(_mm256_castsi128_si256(lo),
                                                    _mm_loadu_si128((const __m128i *)b->qs), 1)
                          : _mm256_zextsi128_si256(lo);
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(v), _mm256_srli_epi16(v, 4), 1);
    return _mm512_and_si512(z, _mm512_set1_epi8(0x0f));
}

/* The weight scales of a pair in the lanes of the u layout: [da x4, db x4, da x4, db x4]. */
static inline __m512 w_scales(const uint16_t *da, const uint16_t *db)
{
    __m128i h = _mm_cvtsi32_si128(*da);
    if (db != NULL)
        h = _mm_insert_epi16(h, *db, 1);
    const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(_mm_cvtph_ps(h)));
}

/* 8 floats repeated in both halves of a vector (AVX-512F only: no DQ broadcast needed). */
static inline __m512 bcast8f(const float *p)
{
    return _mm512_castpd_ps(_mm512_broadcast_f64x4(_mm256_loadu_pd((const double *)p)));
}

/* The products of one weight pair (w unsigned, dw its scales) with T tokens, at pair p. */
#define MV_PAIR(T, C)                                                                         \
    do {                                                                                      \
        for (int t = 0; t < (T); t++) {                                                       \
            __m512i acc = _mm512_dpbusd_epi32(_mm512_loadu_si512(x[t].C + 16 * (size_t)p), w,             \
                                              _mm512_loadu_si512(x[t].u + 64 * (size_t)p));   \
            __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), bcast8f(x[t].ud + 8 * (size_t)p)); \
            sum[t] = _mm512_fmadd_ps(v, dw, sum[t]);                                          \
        }                                                                                     \
    } while (0)

/* Rows [0, nr) of quantized weights times T (1..MV_T) tokens. T is a compile-time constant in
 * each instantiation below, so the token loops unroll and the sums stay in registers. */
static inline __attribute__((always_inline)) void
mv_quant(int type, const char *w0, size_t row_bytes, int nr, int nb, const struct gf_mv_x *x,
         const int T, float *y, size_t ldy)
{
    int np = nb / 2;
    for (int r = 0; r < nr; r++) {
        const char *row = w0 + (size_t)r * row_bytes;
        __m512 sum[MV_T];
        for (int t = 0; t < T; t++)
            sum[t] = _mm512_setzero_ps();
        if (type == GF_WT_Q8_0) {
            const struct gf_block_q8 *b = (const struct gf_block_q8 *)row;
            int p = 0;
            for (; p < np; p++, b += 2) {
                _mm_prefetch((const char *)b + PF_BYTES, _MM_HINT_T0);
                __m512i w = w_q8(&b[0], &b[1]);
                __m512 dw = w_scales(&b[0].d, &b[1].d);
                MV_PAIR(T, c8);
            }
            if (nb & 1) {
                __m512i w = w_q8(&b[0], NULL);
                __m512 dw = w_scales(&b[0].d, NULL);
                MV_PAIR(T, c8);
            }
        } else {
            const struct gf_block_q4 *b = (const struct gf_block_q4 *)row;
            int p = 0;
            for (; p < np; p++, b += 2) {
                _mm_prefetch((const char *)b + PF_BYTES, _MM_HINT_T0);
                __m512i w = w_q4(&b[0], &b[1]);
                __m512 dw = w_scales(&b[0].d, &b[1].d);
                MV_PAIR(T, c4);
            }
            if (nb & 1) {
                __m512i w = w_q4(&b[0], NULL);
                __m512 dw = w_scales(&b[0].d, NULL);
                MV_PAIR(T, c4);
            }
        }
        for (int t = 0; t < T; t++)
            y[(size_t)t * ldy + r] = _mm512_reduce_add_ps(sum[t]);
    }
}

/* Rows [0, nr) of F32 weights times T (1..MV_T) tokens. */
static inline __attribute__((always_inline)) void
mv_f32(const float *w0, size_t row_bytes, int nr, int cols, const struct gf_mv_x *x, const int T,
       float *y, size_t ldy)
{
    const float *xf[MV_T];
    for (int t = 0; t < T; t++)
        xf[t] = x[t].f;
    int tail = cols % 16;
    __mmask16 m = (__mmask16)((1u << tail) - 1);
    for (int r = 0; r < nr; r++) {
        const float *row = (const float *)((const char *)w0 + (size_t)r * row_bytes);
        __m512 sum[MV_T], sum2[MV_T];
        for (int t = 0; t < T; t++)
            sum[t] = sum2[t] = _mm512_setzero_ps();
        int i = 0;
        // two independent sums per token hide the FMA latency when T is small
        for (; i + 32 <= cols; i += 32) {
            _mm_prefetch((const char *)(row + i) + PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)(row + i) + PF_BYTES + 64, _MM_HINT_T0);
            __m512 w = _mm512_loadu_ps(row + i), w2 = _mm512_loadu_ps(row + i + 16);
            for (int t = 0; t < T; t++) {
                sum[t] = _mm512_fmadd_ps(w, _mm512_loadu_ps(xf[t] + i), sum[t]);
                sum2[t] = _mm512_fmadd_ps(w2, _mm512_loadu_ps(xf[t] + i + 16), sum2[t]);
            }
        }
        for (; i + 16 <= cols; i += 16) {
            __m512 w = _mm512_loadu_ps(row + i);
            for (int t = 0; t < T; t++)
                sum[t] = _mm512_fmadd_ps(w, _mm512_loadu_ps(xf[t] + i), sum[t]);
        }
        if (tail) {  // masked tail: lanes past cols load as zero
            __m512 w = _mm512_maskz_loadu_ps(m, row + i);
            for (int t = 0; t < T; t++)
                sum2[t] = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m, xf[t] + i), sum2[t]);
        }
        for (int t = 0; t < T; t++)
            y[(size_t)t * ldy + r] = _mm512_reduce_add_ps(_mm512_add_ps(sum[t], sum2[t]));
    }
}

static void matvec(const struct gf_kernels *k, int type, const void *w, size_t row_bytes, int nr,
                   int cols, const struct gf_mv_x *x, int T, float *y, size_t ldy)
{
    bool quant = type == GF_WT_Q8_0 || type == GF_WT_Q4_0;
    if (!(quant || type == GF_WT_F32)) {
        gf_matvec_generic(k, type, w, row_bytes, nr, cols, x, T, y, ldy);
        return;
    }
    // tokens in groups of at most MV_T: each group reads the rows once
    for (int t0 = 0; t0 < T; t0 += MV_T) {
        int n = T - t0 < MV_T ? T - t0 : MV_T;
        const struct gf_mv_x *xt = x + t0;
        float *yt = y + (size_t)t0 * ldy;
        if (quant) {
            int nb = cols / GF_QK;
            if (type == GF_WT_Q8_0) {
#define CALL_Q8(N) mv_quant(GF_WT_Q8_0, w, row_bytes, nr, nb, xt, N, yt, ldy)
                switch (n) {
                case 1: CALL_Q8(1); break;
                case 2: CALL_Q8(2); break;
                case 3: CALL_Q8(3); break;
                case 4: CALL_Q8(4); break;
                case 5: CALL_Q8(5); break;
                case 6: CALL_Q8(6); break;
                case 7: CALL_Q8(7); break;
                default: CALL_Q8(8); break;
                }
#undef CALL_Q8
            } else {
#define CALL_Q4(N) mv_quant(GF_WT_Q4_0, w, row_bytes, nr, nb, xt, N, yt, ldy)
                switch (n) {
                case 1: CALL_Q4(1); break;
                case 2: CALL_Q4(2); break;
                case 3: CALL_Q4(3); break;
                case 4: CALL_Q4(4); break;
                case 5: CALL_Q4(5); break;
                case 6: CALL_Q4(6); break;
                case 7: CALL_Q4(7); break;
                default: CALL_Q4(8); break;
                }
#undef CALL_Q4
            }
        } else {
#define CALL_F32(N) mv_f32(w, row_bytes, nr, cols, xt, N, yt, ldy)
            switch (n) {
            case 1: CALL_F32(1); break;
            case 2: CALL_F32(2); break;
            case 3: CALL_F32(3); break;
            case 4: CALL_F32(4); break;
            case 5: CALL_F32(5); break;
            case 6: CALL_F32(6); break;
            case 7: CALL_F32(7); break;
            default: CALL_F32(8); break;
            }
#undef CALL_F32
        }
    }
}

void gf_kernels_fill_avx512_vnni(struct gf_kernels *k)
{
    k->name = "avx512";
    k->matvec = matvec;
    k->uses_u = 1;
}
