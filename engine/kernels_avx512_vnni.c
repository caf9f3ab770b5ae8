/* kernels_avx512_vnni.c — matrix-vector products for decode steps on AVX-512 VNNI: Q8_0 and
 * Q4_0 weights with up to 8 tokens at once through vpdpbusd (64 unsigned-by-signed byte
 * products summed into 16 int32 lanes per instruction), and F32 weights with up to 8 tokens
 * (three rows at a time, whose loads each serve every token's FMAs).
 * This file alone is compiled with -mavx512vnni (plus F/BW/VL); kernels.c installs it only
 * after checking the CPU. Decode is bound by memory, so each weight row is loaded and unpacked
 * once per step for all of the step's tokens and prefetched ahead of use, and the work per
 * weight byte is kept small: four rows share every instruction (one per 128-bit lane group,
 * the token's 16-byte half-block broadcast to all four), and the tokens' data sit in
 * interleaved records (gf_mv_prep) reached from one pointer.
 *
 * Integer arithmetic (see gf_mv_prep in kernels_int.h): weights are the unsigned operand of
 * vpdpbusd (Q8_0 values + 128, Q4_0 nibbles as stored) and activations the signed one; each
 * lane starts at the record's correction (-128 or -8 times the sum of its activations), so it
 * holds an exact signed partial sum of the block, as in the AVX2 kernels; only the float
 * summation order differs from the scalar kernels. */
#include "engine/kernels_int.h"

#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

#define MV_T 8            // tokens per pass over a weight row
#define PF_BYTES 4096     // software prefetch distance along an F32 row (measured: 1 KiB
                          // leaves the stream waiting on memory, 4-16 KiB are equal)

#define MV_R 4            // weight rows per pass: one per 128-bit lane group

/* 16 bytes from each of four rows, row g in 128-bit lane group g. */
static inline __m512i load4x16(const char *const p[MV_R], size_t off)
{
    __m512i z = _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(p[0] + off)));
    z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)(p[1] + off)), 1);
    z = _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)(p[2] + off)), 2);
    return _mm512_inserti32x4(z, _mm_loadu_si128((const __m128i *)(p[3] + off)), 3);
}

/* The block scales (halves at p[g] + off) of four rows, each repeated over its lane group. */
static inline __m512 scales4(const char *const p[MV_R], size_t off)
{
    uint16_t h[MV_R];
    for (int g = 0; g < MV_R; g++)
        memcpy(&h[g], p[g] + off, 2);
    __m128i v = _mm_cvtsi32_si128(h[0]);
    v = _mm_insert_epi16(v, h[1], 1);
    v = _mm_insert_epi16(v, h[2], 2);
    v = _mm_insert_epi16(v, h[3], 3);
    const __m512i idx = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
    return _mm512_permutexvar_ps(idx, _mm512_castps128_ps512(_mm_cvtph_ps(v)));
}

static inline __m512i bcast16(const void *p)
{
    return _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)p));
}

/* Four rows [0, 4) of quantized weights (row g at p[g]) times T (1..MV_T) tokens whose
 * records (gf_mv_prep) for block k start at rec + k * rec_stride. T is a compile-time constant
 * in each instantiation, so the token loop unrolls, one pointer reaches every token and the
 * sums stay in registers. Lane group g holds row g; a token's 16-byte halves are broadcast. */
static inline __attribute__((always_inline)) void
mv_quant4(int type, const char *const p[MV_R], int nb, const unsigned char *rec,
          size_t rec_stride, size_t pf, const int T, float out[MV_T][MV_R])
{
    __m512 sum[MV_T];
    for (int t = 0; t < T; t++)
        sum[t] = _mm512_setzero_ps();
    const size_t bs = type == GF_WT_Q8_0 ? sizeof(struct gf_block_q8) : sizeof(struct gf_block_q4);
    const size_t coff = type == GF_WT_Q8_0 ? GF_MV_REC_C8 : GF_MV_REC_C4;
    for (int k = 0; k < nb; k++, rec += rec_stride) {
        size_t off = (size_t)k * bs;
        for (int g = 0; g < MV_R; g++)
            _mm_prefetch(p[g] + off + pf, _MM_HINT_T0);
        __m512i wlo, whi;
        if (type == GF_WT_Q8_0) {  // values + 128: the unsigned operand
            const __m512i flip = _mm512_set1_epi8((char)0x80);
            wlo = _mm512_xor_si512(load4x16(p, off + 2), flip);
            whi = _mm512_xor_si512(load4x16(p, off + 18), flip);
        } else {  // nibbles as stored: low ones are values 0..15, high ones 16..31
            const __m512i m4 = _mm512_set1_epi8(0x0f);
            __m512i z = load4x16(p, off + 2);
            wlo = _mm512_and_si512(z, m4);
            whi = _mm512_and_si512(_mm512_srli_epi16(z, 4), m4);
        }
        __m512 dw = scales4(p, off);
        for (int t = 0; t < T; t++) {
            const unsigned char *r = rec + (size_t)t * GF_MV_REC;
            __m512i acc = _mm512_dpbusd_epi32(bcast16(r + coff), wlo, bcast16(r));
            acc = _mm512_dpbusd_epi32(acc, whi, bcast16(r + 16));
            float d;
            memcpy(&d, r + GF_MV_REC_D, sizeof(d));
            __m512 sc = _mm512_mul_ps(dw, _mm512_set1_ps(d));
            sum[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), sc, sum[t]);
        }
    }
    // each lane group's four lanes sum to its row's product
    for (int t = 0; t < T; t++) {
        __m512 v = _mm512_add_ps(sum[t], _mm512_shuffle_ps(sum[t], sum[t], 0x4e));
        v = _mm512_add_ps(v, _mm512_shuffle_ps(v, v, 0xb1));
        __m128 r = _mm512_castps512_ps128(_mm512_permutexvar_ps(
            _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), v));
        _mm_storeu_ps(out[t], r);
    }
}

/* Rows [0, nr) of quantized weights times tokens [t0, t0 + T) of x, four rows at a time (the
 * last pass repeats the final row where fewer than four remain, and drops those results). */
static inline __attribute__((always_inline)) void
mv_quant(int type, const char *w0, size_t row_bytes, int nr, int nb, const struct gf_mv_x *x,
         int t0, const int T, float *y, size_t ldy)
{
    const unsigned char *rec = x->rec + (size_t)t0 * GF_MV_REC;
    size_t stride = (size_t)x->T * GF_MV_REC;
    for (int r = 0; r < nr; r += MV_R) {
        const char *p[MV_R];
        for (int g = 0; g < MV_R; g++)
            p[g] = w0 + (size_t)(r + g < nr ? r + g : nr - 1) * row_bytes;
        float out[MV_T][MV_R];
        // prefetch the next four rows at the same offset: a fixed distance ahead in this row
        // would mostly land in the rows this pass reads anyway (measured: 25% faster)
        mv_quant4(type, p, nb, rec, stride, (size_t)MV_R * row_bytes, T, out);
        for (int t = 0; t < T; t++)
            for (int g = 0; g < MV_R && r + g < nr; g++)
                y[(size_t)t * ldy + (size_t)(r + g)] = out[t][g];
    }
}

/* Rows [0, nr) of F32 weights times T (1..MV_T) tokens, a row at a time (used for one token,
 * whose product is bound by memory: mv_f32_multi takes several). */
static inline __attribute__((always_inline)) void
mv_f32(const float *w0, size_t row_bytes, int nr, int cols, const struct gf_mv_x *x, int t0,
       const int T, float *y, size_t ldy)
{
    const float *xf[MV_T];
    for (int t = 0; t < T; t++)
        xf[t] = x->f + (size_t)(t0 + t) * x->ldf;
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
            if (T > 1) {  // one token streams rows fastest on the hardware prefetcher alone
                _mm_prefetch((const char *)(row + i) + PF_BYTES, _MM_HINT_T0);
                _mm_prefetch((const char *)(row + i) + PF_BYTES + 64, _MM_HINT_T0);
            }
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

/* The sums of eight vectors v[t], out[t] = sum of v[t]'s 16 lanes: a tree of lane shuffles
 * shared by the eight (about 3 instructions a vector, where a reduction each takes 8). */
static inline __m256 reduce8(const __m512 v[8])
{
    __m512 s[4];
    for (int p = 0; p < 4; p++)  // 128-bit lanes: [a0+a2, a1+a3, b0+b2, b1+b3]
        s[p] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0x44),
                             _mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0xee));
    __m512 q[2];
    for (int p = 0; p < 2; p++)  // lane L: the four partial sums of token 4p + L
        q[p] = _mm512_add_ps(_mm512_shuffle_f32x4(s[2 * p], s[2 * p + 1], 0x88),
                             _mm512_shuffle_f32x4(s[2 * p], s[2 * p + 1], 0xdd));
    __m512 u = _mm512_add_ps(_mm512_unpacklo_ps(q[0], q[1]), _mm512_unpackhi_ps(q[0], q[1]));
    u = _mm512_add_ps(u, _mm512_shuffle_ps(u, u, 0x4e));  // lane L: tokens L, L + 4
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 0, 0, 0, 0, 0, 0, 0, 0);
    return _mm512_castps512_ps256(_mm512_permutexvar_ps(idx, u));
}

/* R rows (row g at p[g]) times T (2..MV_T) tokens: each 16 columns of the R rows are loaded
 * once and meet each token's 16 activations, R * T independent sums (at most 24 of the 32
 * vector registers, with the R weights and one activation beside them), so that with several
 * tokens the step is bound by FMAs rather than by loads. The rows pf bytes further on (the next
 * pass's, at the same offset) are prefetched into L2, not L1: prefetched into L1 they evict
 * the tokens' activations (measured with 8 tokens: 35-45% more FLOP/s into L2). */
static inline __attribute__((always_inline)) void
mv_f32_rows(const int R, const float *const p[], size_t pf, int cols, const float *const xf[],
            const int T, float *y, size_t ldy)
{
    __m512 sum[3][MV_T];
    for (int g = 0; g < R; g++)
        for (int t = 0; t < T; t++)
            sum[g][t] = _mm512_setzero_ps();
    int i = 0;
    for (; i + 16 <= cols; i += 16) {
        __m512 w[3];
        for (int g = 0; g < R; g++) {
            _mm_prefetch((const char *)(p[g] + i) + pf, _MM_HINT_T1);
            w[g] = _mm512_loadu_ps(p[g] + i);
        }
        for (int t = 0; t < T; t++) {
            __m512 a = _mm512_loadu_ps(xf[t] + i);
            for (int g = 0; g < R; g++)
                sum[g][t] = _mm512_fmadd_ps(w[g], a, sum[g][t]);
        }
    }
    if (i < cols) {  // masked tail: lanes past cols load as zero
        __mmask16 m = (__mmask16)((1u << (cols - i)) - 1);
        __m512 w[3];
        for (int g = 0; g < R; g++)
            w[g] = _mm512_maskz_loadu_ps(m, p[g] + i);
        for (int t = 0; t < T; t++) {
            __m512 a = _mm512_maskz_loadu_ps(m, xf[t] + i);
            for (int g = 0; g < R; g++)
                sum[g][t] = _mm512_fmadd_ps(w[g], a, sum[g][t]);
        }
    }
    for (int g = 0; g < R; g++) {
        __m512 v[MV_T];
        for (int t = 0; t < MV_T; t++)
            v[t] = t < T ? sum[g][t] : _mm512_setzero_ps();
        float o[MV_T];
        _mm256_storeu_ps(o, reduce8(v));
        for (int t = 0; t < T; t++)
            y[(size_t)t * ldy + (size_t)g] = o[t];
    }
}

/* Rows [0, nr) of F32 weights times T (2..MV_T) tokens, three rows at a time (then one). */
static inline __attribute__((always_inline)) void
mv_f32_multi(const float *w0, size_t row_bytes, int nr, int cols, const struct gf_mv_x *x,
             int t0, const int T, float *y, size_t ldy)
{
    const float *xf[MV_T];
    for (int t = 0; t < T; t++)
        xf[t] = x->f + (size_t)(t0 + t) * x->ldf;
    int r = 0;
    for (; r + 3 <= nr; r += 3) {
        const float *p[3];
        for (int g = 0; g < 3; g++)
            p[g] = (const float *)((const char *)w0 + (size_t)(r + g) * row_bytes);
        mv_f32_rows(3, p, 3 * row_bytes, cols, xf, T, y + r, ldy);
    }
    for (; r < nr; r++) {
        const float *p[1] = {(const float *)((const char *)w0 + (size_t)r * row_bytes)};
        mv_f32_rows(1, p, row_bytes, cols, xf, T, y + r, ldy);
    }
}

static void matvec(const struct gf_kernels *k, int type, const void *w, size_t row_bytes, int nr,
                   int cols, const struct gf_mv_x *x, float *y, size_t ldy)
{
    bool quant = (type == GF_WT_Q8_0 || type == GF_WT_Q4_0) && x->rec != NULL;
    if ((type == GF_WT_Q8_0 || type == GF_WT_Q4_0) && x->T == 1 && x->rec1 != NULL &&
        x->rec1_type == type) {
        gf_matvec1_avx512(type, w, row_bytes, nr, cols / GF_QK, x->rec1, y);
        return;
    }
    if (!(quant || type == GF_WT_F32)) {
        gf_matvec_generic(k, type, w, row_bytes, nr, cols, x, y, ldy);
        return;
    }
    // tokens in groups of at most MV_T: each group reads the rows once
    for (int t0 = 0; t0 < x->T; t0 += MV_T) {
        int n = x->T - t0 < MV_T ? x->T - t0 : MV_T;
        float *yt = y + (size_t)t0 * ldy;
        if (type == GF_WT_Q8_0) {
#define CALL(N) mv_quant(GF_WT_Q8_0, w, row_bytes, nr, cols / GF_QK, x, t0, N, yt, ldy)
            SWITCH_T(n);
#undef CALL
        } else if (type == GF_WT_Q4_0) {
#define CALL(N) mv_quant(GF_WT_Q4_0, w, row_bytes, nr, cols / GF_QK, x, t0, N, yt, ldy)
            SWITCH_T(n);
#undef CALL
        } else {
#define CALL(N) mv_f32_multi(w, row_bytes, nr, cols, x, t0, N, yt, ldy)
            if (n == 1)
                mv_f32(w, row_bytes, nr, cols, x, t0, 1, yt, ldy);
            else
                SWITCH_T(n);
#undef CALL
        }
    }
}

void gf_kernels_fill_avx512_vnni(struct gf_kernels *k)
{
    k->name = "avx512";
    k->matvec = matvec;
    k->uses_prep = 1;
    k->uses_prep1 = 1;
}
