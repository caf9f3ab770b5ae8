/* gemm_avx512.c — the prompt products with AVX-512 (see gemm_int.h for the layouts). This file
 * alone is compiled with the AVX-512 F/BW/VL/DQ/VNNI flags; gemm.c checks the CPU before
 * choosing it. Integer product: a register holds 4 values (+128) of each of 16 weight rows;
 * VPDPBUSD multiplies it by the same 4 values of one token, broadcast from the token's record,
 * and eight of them starting from the record's correction leave the exact block product of 16
 * rows in 16 int32 lanes, which is then converted, scaled by d_w * d_x and accumulated in
 * float: 11 vector instructions per 512 products. This CPU issues about one 512-bit vector
 * instruction per cycle, so the count of them is the cost; the micro-kernel keeps one group's
 * block of weights in registers while up to 8 tokens pass. */
#include "engine/gemm_int.h"

#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

#define ALWAYS_INLINE inline __attribute__((always_inline))
#define MICRO_T 8  // tokens per pass over a group's weights
#define PF_BYTES 4096  // software prefetch distance along regrouped weights (decode steps read
                       // each weight byte once, straight from memory)
#define PF_L2_TOKENS 2  // from this many tokens on, that prefetch goes to L2 only: into L1 it
                        // evicted the tokens' records (8 tokens: Q8_0 +30%, Q4_0 +10%); one
                        // token's stream is faster prefetched into L1

static void pack_x(const struct gf_block_q8 *x, int nb, uint8_t *out)
{
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    for (int k = 0; k < nb; k++) {
        uint8_t *r = out + (size_t)k * GF_GEMM_XREC;
        __m256i v = _mm256_loadu_si256((const __m256i *)x[k].qs);
        _mm256_storeu_si256((__m256i *)r, v);
        // sums of (value + 128) by eights, so the sum of the values is theirs less 32 * 128
        __m256i s8 = _mm256_sad_epu8(_mm256_xor_si256(v, bias), _mm256_setzero_si256());
        __m128i s4 = _mm_add_epi64(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
        int32_t sum = (int32_t)(_mm_cvtsi128_si64(s4) + _mm_extract_epi64(s4, 1)) - GF_QK * 128;
        int32_t c = -128 * sum, c4 = -8 * sum, zero = 0;
        float d = _cvtsh_ss(x[k].d);
        memcpy(r + GF_QK, &c, sizeof(c));
        memcpy(r + GF_QK + 4, &d, sizeof(d));
        memcpy(r + GF_QK + 8, &c4, sizeof(c4));
        memcpy(r + GF_QK + 12, &zero, sizeof(zero));
    }
}

/* The 32 values of block k of a weight row, plus 128 (as unsigned bytes). */
static ALWAYS_INLINE __m256i row_block(int type, const char *row, int k)
{
    const __m256i bias = _mm256_set1_epi8((char)0x80);
    if (type == GF_WT_Q8_0) {
        const struct gf_block_q8 *b = (const struct gf_block_q8 *)row + k;
        return _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)b->qs), bias);
    }
    // Q4_0: low nibbles are values 0-15, high nibbles 16-31; value + 128 = nibble + 120
    const struct gf_block_q4 *b = (const struct gf_block_q4 *)row + k;
    __m128i v = _mm_loadu_si128((const __m128i *)b->qs), m = _mm_set1_epi8(0x0f);
    __m256i u = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
    return _mm256_add_epi8(u, _mm256_set1_epi8(120));
}

static void pack_w(int type, const void *rows, size_t row_bytes, int n, int nb, uint8_t *out)
{
    const __m256i pad = _mm256_set1_epi8((char)0x80);  // a zero row
    const __m512i lo = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
    const __m512i hi = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    size_t bs = type == GF_WT_Q8_0 ? sizeof(struct gf_block_q8) : sizeof(struct gf_block_q4);
    for (int k = 0; k < nb; k++) {
        // z[i] = rows i and i + 8 as a 16 x 8 matrix of dwords, two rows per register
        __m512i z[8];
        for (int i = 0; i < 8; i++) {
            const char *a = (const char *)rows + (size_t)i * row_bytes;
            __m256i ra = i < n ? row_block(type, a, k) : pad;
            __m256i rb = i + 8 < n ? row_block(type, a + 8 * row_bytes, k) : pad;
            z[i] = _mm512_inserti64x4(_mm512_castsi256_si512(ra), rb, 1);
        }
        // transpose each 256-bit half as an 8 x 8 matrix of dwords: dword p of rows 0-7 (low
        // half) and of rows 8-15 (high half) end up in 128-bit lanes that the last step joins
        __m512i t[8], u[8];
        for (int i = 0; i < 4; i++) {
            t[2 * i] = _mm512_unpacklo_epi32(z[2 * i], z[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_epi32(z[2 * i], z[2 * i + 1]);
        }
        for (int h = 0; h < 2; h++) {
            __m512i *th = t + 4 * h, *uh = u + 4 * h;
            uh[0] = _mm512_unpacklo_epi64(th[0], th[2]);
            uh[1] = _mm512_unpackhi_epi64(th[0], th[2]);
            uh[2] = _mm512_unpacklo_epi64(th[1], th[3]);
            uh[3] = _mm512_unpackhi_epi64(th[1], th[3]);
        }
        uint8_t *g = out + (size_t)k * GF_GEMM_GROUP;
        for (int p = 0; p < 4; p++) {
            _mm512_storeu_si512(g + 64 * p, _mm512_permutex2var_epi64(u[p], lo, u[p + 4]));
            _mm512_storeu_si512(g + 64 * (p + 4), _mm512_permutex2var_epi64(u[p], hi, u[p + 4]));
        }
        float d[GF_GEMM_ROWS];
        for (int r = 0; r < GF_GEMM_ROWS; r++) {
            uint16_t h = 0;  // a padding row's scale is 0
            if (r < n)
                memcpy(&h, (const char *)rows + (size_t)r * row_bytes + (size_t)k * bs, 2);
            d[r] = _cvtsh_ss(h);
        }
        memcpy(g + 512, d, sizeof(d));
    }
}

static ALWAYS_INLINE __m512i bcast32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof(v));
    return _mm512_set1_epi32(v);
}

/* One group of 16 rows x RN tokens over all nb blocks; RN is a constant after inlining. */
static ALWAYS_INLINE void micro(int RN, const uint8_t *xp, const uint8_t *g, int nb, int nrows,
                                float *y, size_t ldy)
{
    __m512 acc[MICRO_T];
    for (int j = 0; j < RN; j++)
        acc[j] = _mm512_setzero_ps();
    size_t xst = (size_t)nb * GF_GEMM_XREC;
    for (int k = 0; k < nb; k++, g += GF_GEMM_GROUP) {
        __m512i w[8];
        for (int p = 0; p < 8; p++)
            w[p] = _mm512_loadu_si512(g + 64 * p);
        __m512 sw = _mm512_loadu_ps((const float *)(g + 512));
        for (int j = 0; j < RN; j++) {
            const uint8_t *x = xp + j * xst + (size_t)k * GF_GEMM_XREC;
            __m512i t = bcast32(x + GF_QK);
            for (int p = 0; p < 8; p++)
                t = _mm512_dpbusd_epi32(t, w[p], bcast32(x + 4 * p));
            float dx;
            memcpy(&dx, x + GF_QK + 4, sizeof(dx));
            acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(t), _mm512_mul_ps(sw, _mm512_set1_ps(dx)),
                                     acc[j]);
        }
    }
    __mmask16 m = nrows >= GF_GEMM_ROWS ? (__mmask16)0xffff : (__mmask16)((1u << nrows) - 1);
    for (int j = 0; j < RN; j++)
        _mm512_mask_storeu_ps(y + (size_t)j * ldy, m, acc[j]);
}

#define MICRO(rn)                                                                              \
    case rn:                                                                                   \
        micro(rn, x, w, nb, R - GF_GEMM_ROWS * gi, yo, ldy);                                   \
        break;

static void tile(const uint8_t *xp, int T, const uint8_t *wp, int R, int nb, float *y,
                 size_t ldy)
{
    int G = (R + GF_GEMM_ROWS - 1) / GF_GEMM_ROWS;
    for (int gi = 0; gi < G; gi++) {
        const uint8_t *w = wp + (size_t)gi * nb * GF_GEMM_GROUP;
        for (int t0 = 0; t0 < T; t0 += MICRO_T) {
            int rn = T - t0 < MICRO_T ? T - t0 : MICRO_T;
            const uint8_t *x = xp + (size_t)t0 * nb * GF_GEMM_XREC;
            float *yo = y + (size_t)t0 * ldy + (size_t)(GF_GEMM_ROWS * gi);
            switch (rn) {
                MICRO(1) MICRO(2) MICRO(3) MICRO(4) MICRO(5) MICRO(6) MICRO(7) MICRO(8)
            default:
                break;
            }
        }
    }
}

/* acc[j] += the block sums s[j] converted, times the weight scales sw and token j's block scale
 * (in its record at x + j * xst). */
static ALWAYS_INLINE void scale_add(int RN, __m512 *acc, const __m512i *s, __m512 sw,
                                    const uint8_t *x, size_t xst)
{
    for (int j = 0; j < RN; j++) {
        float dx;
        memcpy(&dx, x + j * xst + GF_QK + 4, sizeof(dx));
        acc[j] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[j]), _mm512_mul_ps(sw, _mm512_set1_ps(dx)),
                                 acc[j]);
    }
}

/* micro() on regrouped weights (one group of 16 rows, all of them real): Q8_0 blocks load
 * as they are, Q4_0 blocks split their nibbles into the eight registers (low nibbles are
 * values 0-15, high ones 16-31), with the record's c4 as the start of each lane. With more
 * than two tokens, a block's sums are scaled and accumulated after the next block's products
 * have been issued: the float work (on the same two pipes as VPDPBUSD on Zen 4) then fills gaps
 * instead of waiting for the last product of its block (4% faster from memory at 8 tokens in a
 * micro-benchmark, 2% in cache);
 * each accumulator still adds its blocks in order, so the results are the same. */
static ALWAYS_INLINE void micro_x16(int type, int RN, const uint8_t *xp, const uint8_t *g,
                                    int nb, float *y, size_t ldy)
{
    const size_t gb = type == GF_WT_Q8_0 ? GF_GEMM_Q8X : GF_GEMM_Q4X;
    const size_t coff = type == GF_WT_Q8_0 ? GF_QK : GF_QK + 8;
    __m512 acc[MICRO_T], sw_prev = _mm512_setzero_ps();
    __m512i prev[MICRO_T];  // the previous block's sums (more than two tokens)
    const uint8_t *x_prev = xp;
    for (int j = 0; j < RN; j++) {
        acc[j] = _mm512_setzero_ps();
        prev[j] = _mm512_setzero_si512();
    }
    size_t xst = (size_t)nb * GF_GEMM_XREC;
    for (int k = 0; k < nb; k++, g += gb) {
        for (size_t o = 0; o < gb; o += 64) {  // every cache line of the block ahead
            if (RN >= PF_L2_TOKENS)
                _mm_prefetch((const char *)g + PF_BYTES + o, _MM_HINT_T1);
            else
                _mm_prefetch((const char *)g + PF_BYTES + o, _MM_HINT_T0);
        }
        __m512i w[8];
        if (type == GF_WT_Q8_0) {
            for (int p = 0; p < 8; p++)
                w[p] = _mm512_loadu_si512(g + 64 * p);
        } else {
            const __m512i m4 = _mm512_set1_epi8(0x0f);
            for (int q = 0; q < 4; q++) {
                __m512i n = _mm512_loadu_si512(g + 64 * q);
                w[q] = _mm512_and_si512(n, m4);
                w[q + 4] = _mm512_and_si512(_mm512_srli_epi16(n, 4), m4);
            }
        }
        __m512 sw = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(g + gb - 32)));
        // the eight products of a token depend on each other (4 cycles apiece): they are
        // issued one step for all tokens at a time, and with one or two tokens each chain is
        // cut in two halves that run side by side
        const uint8_t *x = xp + (size_t)k * GF_GEMM_XREC;
        __m512i t[MICRO_T], u[MICRO_T];
        for (int j = 0; j < RN; j++) {
            t[j] = bcast32(x + j * xst + coff);
            u[j] = _mm512_setzero_si512();
        }
        for (int p = 0; p < 8; p++)
            for (int j = 0; j < RN; j++) {
                __m512i xv = bcast32(x + j * xst + 4 * p);
                if (RN <= 2 && p >= 4)
                    u[j] = _mm512_dpbusd_epi32(u[j], w[p], xv);
                else
                    t[j] = _mm512_dpbusd_epi32(t[j], w[p], xv);
            }
        if (RN <= 2) {
            for (int j = 0; j < RN; j++)
                t[j] = _mm512_add_epi32(t[j], u[j]);
            scale_add(RN, acc, t, sw, x, xst);
            continue;
        }
        if (k > 0)
            scale_add(RN, acc, prev, sw_prev, x_prev, xst);
        for (int j = 0; j < RN; j++)
            prev[j] = t[j];
        sw_prev = sw;
        x_prev = x;
    }
    if (RN > 2 && nb > 0)
        scale_add(RN, acc, prev, sw_prev, x_prev, xst);
    for (int j = 0; j < RN; j++)
        _mm512_storeu_ps(y + (size_t)j * ldy, acc[j]);
}

#define MICRO_X16(type, rn)                                                                    \
    case rn:                                                                                   \
        micro_x16(type, rn, x, w, nb, yo, ldy);                                                \
        break;

/* One instantiation per weight type, so that the type is a constant inside micro_x16. */
#define X16_TYPE(type)                                                                         \
    for (int gi = 0; gi < R / GF_GEMM_ROWS; gi++) {                                            \
        const uint8_t *w = wx + (size_t)gi * nb * gf_gemm_x16_block(type);                     \
        for (int t0 = 0; t0 < T; t0 += MICRO_T) {                                              \
            int rn = T - t0 < MICRO_T ? T - t0 : MICRO_T;                                      \
            const uint8_t *x = xp + (size_t)t0 * nb * GF_GEMM_XREC;                            \
            float *yo = y + (size_t)t0 * ldy + (size_t)(GF_GEMM_ROWS * gi);                    \
            switch (rn) {                                                                      \
                MICRO_X16(type, 1) MICRO_X16(type, 2) MICRO_X16(type, 3) MICRO_X16(type, 4)    \
                MICRO_X16(type, 5) MICRO_X16(type, 6) MICRO_X16(type, 7) MICRO_X16(type, 8)    \
            default:                                                                           \
                break;                                                                         \
            }                                                                                  \
        }                                                                                      \
    }

static void x16(int type, const uint8_t *xp, int T, const uint8_t *wx, int R, int nb, float *y,
                size_t ldy)
{
    if (type == GF_WT_Q8_0) {
        X16_TYPE(GF_WT_Q8_0)
    } else {
        X16_TYPE(GF_WT_Q4_0)
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
        micro_f32(rm, rn, x, ldt, nt, wr, ldw, K, yo, lds);                                    \
        break;

#define F32_RB 64  // weight rows whose outputs are staged before they are written

/* The outputs of F32_RB rows x 48 tokens are staged in a small buffer and written out one
 * token's run of rows at a time: written in place, token t's rows are ldy floats apart, and
 * with ldy a multiple of 1024 (2048 rows) the 48 tokens' lines fall in one L1 set and evict
 * each other between the two micro-kernels that fill each line (20% slower). */
static void f32(const float *xt, int T, int ldt, const float *w, size_t ldw, int R, int K,
                float *y, size_t ldy)
{
    float stage[48 * F32_RB];
    for (int b0 = 0; b0 < R; b0 += F32_RB) {
        int rb = R - b0 < F32_RB ? R - b0 : F32_RB;
        for (int t0 = 0; t0 < T; t0 += 48) {
            int nt = T - t0 < 48 ? T - t0 : 48, rn = (nt + 15) / 16;
            const float *x = xt + t0;
            for (int r0 = 0; r0 < rb;) {
                int rm = rb - r0 >= 8 ? 8 : rb - r0 >= 4 ? 4 : rb - r0 >= 2 ? 2 : 1;
                const float *wr = w + (size_t)(b0 + r0) * ldw;
                float *yo = stage + r0;
                size_t lds = F32_RB;
                switch (rm * 8 + rn) {
                    MICRO_F32(8, 3) MICRO_F32(8, 2) MICRO_F32(8, 1)
                    MICRO_F32(4, 3) MICRO_F32(4, 2) MICRO_F32(4, 1)
                    MICRO_F32(2, 3) MICRO_F32(2, 2) MICRO_F32(2, 1)
                    MICRO_F32(1, 3) MICRO_F32(1, 2) MICRO_F32(1, 1)
                default:
                    break;
                }
                r0 += rm;
            }
            for (int t = 0; t < nt; t++)
                memcpy(y + (size_t)(t0 + t) * ldy + (size_t)b0, stage + (size_t)t * F32_RB,
                       (size_t)rb * sizeof(float));
        }
    }
}

/* 16 x 16 floats transposed in registers: r[i] holds row i on entry, column i on return
 * (pairs of rows interleaved, then quads, then 128-bit lanes twice). */
static ALWAYS_INLINE void transpose16(__m512 r[16])
{
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {  // u[4i + e] holds element 4l + e of rows 4i..4i+3, lane l
        u[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
        u[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
    }
    for (int h = 0; h < 2; h++)  // t[8h + e] and t[8h + 4 + e]: lanes 0, 2 and 1, 3 of quads
        for (int e = 0; e < 4; e++) {
            t[8 * h + e] = _mm512_shuffle_f32x4(u[8 * h + e], u[8 * h + 4 + e], 0x88);
            t[8 * h + 4 + e] = _mm512_shuffle_f32x4(u[8 * h + e], u[8 * h + 4 + e], 0xdd);
        }
    for (int e = 0; e < 8; e++) {
        r[e] = _mm512_shuffle_f32x4(t[e], t[8 + e], 0x88);
        r[8 + e] = _mm512_shuffle_f32x4(t[e], t[8 + e], 0xdd);
    }
}

static void f32_pack(const float *x, size_t ldx, int T, int K, float *xt, size_t ldt)
{
    for (int t0 = 0; t0 < T; t0 += 16) {
        int nt = T - t0 < 16 ? T - t0 : 16;
        for (int k0 = 0; k0 < K; k0 += 16) {
            int nk = K - k0 < 16 ? K - k0 : 16;
            __mmask16 m = (__mmask16)((1u << nk) - 1);
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = i < nt ? _mm512_maskz_loadu_ps(m, x + (size_t)(t0 + i) * ldx + k0)
                              : _mm512_setzero_ps();
            transpose16(r);
            for (int i = 0; i < nk; i++)
                _mm512_storeu_ps(xt + (size_t)(k0 + i) * ldt + t0, r[i]);
        }
    }
}

const struct gf_gemm gf_gemm_avx512vnni = {
    .name = "avx512vnni",
    .pack_x = pack_x,
    .pack_w = pack_w,
    .tile = tile,
    .x16 = x16,
    .f32 = f32,
    .f32_pack = f32_pack,
};
