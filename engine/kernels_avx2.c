/* kernels_avx2.c — AVX2+FMA+F16C versions of the hot kernels (dot products, the decode
 * matrix-vector product of Q8_0/Q4_0 rows with up to 8 tokens, Q8_0 quantization, axpy, half
 * conversion, RMSNorm, SwiGLU). This file alone is compiled with -mavx2 -mfma -mf16c; its functions run
 * only after kernels.c has checked the CPU. Results equal the scalar kernels up to float
 * summation order (integer block sums are exact). */
#include "engine/kernels_int.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

static inline float hsum256(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v);
    __m128 hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

static float dot_f32(const float *a, const float *b, int n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static inline __m256 load_h8(const uint16_t *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static float dot_f16(const uint16_t *a, const float *b, int n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(load_h8(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(load_h8(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(load_h8(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; i++)
        s += gf_h2f(a[i]) * b[i];
    return s;
}

static inline float h2f_fast(uint16_t h)
{
    return _cvtsh_ss(h);
}

/* Signed int8 x int8 products of 32 lanes summed to 8 int32 lanes, as floats. maddubs needs an
 * unsigned first operand, so |x| is paired with y carrying x's sign. */
static inline __m256 mul_sum_i8(__m256i x, __m256i y)
{
    __m256i ax = _mm256_sign_epi8(x, x);
    __m256i sy = _mm256_sign_epi8(y, x);
    __m256i dot16 = _mm256_maddubs_epi16(ax, sy);
    __m256i dot32 = _mm256_madd_epi16(dot16, _mm256_set1_epi16(1));
    return _mm256_cvtepi32_ps(dot32);
}

static float dot_q8(const struct gf_block_q8 *a, const struct gf_block_q8 *b, int nb)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int k = 0;
    for (; k + 2 <= nb; k += 2) {
        __m256 d0 = _mm256_set1_ps(h2f_fast(a[k].d) * h2f_fast(b[k].d));
        __m256 d1 = _mm256_set1_ps(h2f_fast(a[k + 1].d) * h2f_fast(b[k + 1].d));
        __m256i x0 = _mm256_loadu_si256((const __m256i *)a[k].qs);
        __m256i y0 = _mm256_loadu_si256((const __m256i *)b[k].qs);
        __m256i x1 = _mm256_loadu_si256((const __m256i *)a[k + 1].qs);
        __m256i y1 = _mm256_loadu_si256((const __m256i *)b[k + 1].qs);
        acc0 = _mm256_fmadd_ps(d0, mul_sum_i8(x0, y0), acc0);
        acc1 = _mm256_fmadd_ps(d1, mul_sum_i8(x1, y1), acc1);
    }
    for (; k < nb; k++) {
        __m256 d = _mm256_set1_ps(h2f_fast(a[k].d) * h2f_fast(b[k].d));
        __m256i x = _mm256_loadu_si256((const __m256i *)a[k].qs);
        __m256i y = _mm256_loadu_si256((const __m256i *)b[k].qs);
        acc0 = _mm256_fmadd_ps(d, mul_sum_i8(x, y), acc0);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

/* The 32 values of a Q4_0 block as int8 in [-8, 7], in value order: low nibbles are values
 * 0..15 (low 128-bit lane), high nibbles values 16..31 (high lane). */
static inline __m256i unpack_q4(const uint8_t *qs)
{
    __m128i t = _mm_loadu_si128((const __m128i *)qs);
    __m256i v = _mm256_set_m128i(_mm_srli_epi16(t, 4), t);
    v = _mm256_and_si256(v, _mm256_set1_epi8(0x0f));
    return _mm256_sub_epi8(v, _mm256_set1_epi8(8));
}

static float dot_q4(const struct gf_block_q4 *a, const struct gf_block_q8 *b, int nb)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int k = 0;
    for (; k + 2 <= nb; k += 2) {
        __m256 d0 = _mm256_set1_ps(h2f_fast(a[k].d) * h2f_fast(b[k].d));
        __m256 d1 = _mm256_set1_ps(h2f_fast(a[k + 1].d) * h2f_fast(b[k + 1].d));
        __m256i x0 = unpack_q4(a[k].qs);
        __m256i x1 = unpack_q4(a[k + 1].qs);
        __m256i y0 = _mm256_loadu_si256((const __m256i *)b[k].qs);
        __m256i y1 = _mm256_loadu_si256((const __m256i *)b[k + 1].qs);
        acc0 = _mm256_fmadd_ps(d0, mul_sum_i8(x0, y0), acc0);
        acc1 = _mm256_fmadd_ps(d1, mul_sum_i8(x1, y1), acc1);
    }
    for (; k < nb; k++) {
        __m256 d = _mm256_set1_ps(h2f_fast(a[k].d) * h2f_fast(b[k].d));
        __m256i x = unpack_q4(a[k].qs);
        __m256i y = _mm256_loadu_si256((const __m256i *)b[k].qs);
        acc0 = _mm256_fmadd_ps(d, mul_sum_i8(x, y), acc0);
    }
    return hsum256(_mm256_add_ps(acc0, acc1));
}

static void dot4_f32(const float *a, const float *const b[4], int n, float out[4])
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    const float *b0 = b[0], *b1 = b[1], *b2 = b[2], *b3 = b[3];
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 w = _mm256_loadu_ps(a + i);
        s0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(b0 + i), s0);
        s1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(b1 + i), s1);
        s2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(b2 + i), s2);
        s3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(b3 + i), s3);
    }
    out[0] = hsum256(s0);
    out[1] = hsum256(s1);
    out[2] = hsum256(s2);
    out[3] = hsum256(s3);
    for (; i < n; i++) {
        out[0] += a[i] * b0[i];
        out[1] += a[i] * b1[i];
        out[2] += a[i] * b2[i];
        out[3] += a[i] * b3[i];
    }
}

/* The four-token products of one unpacked weight block x (signed int8) with its scale dw. */
static inline void block4(__m256i x, float dw, const struct gf_block_q8 *const b[4], int k,
                          __m256 acc[4])
{
    __m256i ax = _mm256_sign_epi8(x, x);
    const __m256i ones = _mm256_set1_epi16(1);
    for (int i = 0; i < 4; i++) {
        __m256i y = _mm256_loadu_si256((const __m256i *)b[i][k].qs);
        __m256i dot16 = _mm256_maddubs_epi16(ax, _mm256_sign_epi8(y, x));
        __m256 p = _mm256_cvtepi32_ps(_mm256_madd_epi16(dot16, ones));
        acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(dw * h2f_fast(b[i][k].d)), p, acc[i]);
    }
}

static void dot4_q8(const struct gf_block_q8 *a, const struct gf_block_q8 *const b[4], int nb,
                    float out[4])
{
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    for (int k = 0; k < nb; k++)
        block4(_mm256_loadu_si256((const __m256i *)a[k].qs), h2f_fast(a[k].d), b, k, acc);
    for (int i = 0; i < 4; i++)
        out[i] = hsum256(acc[i]);
}

static void dot4_q4(const struct gf_block_q4 *a, const struct gf_block_q8 *const b[4], int nb,
                    float out[4])
{
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                     _mm256_setzero_ps()};
    for (int k = 0; k < nb; k++)
        block4(unpack_q4(a[k].qs), h2f_fast(a[k].d), b, k, acc);
    for (int i = 0; i < 4; i++)
        out[i] = hsum256(acc[i]);
}

static void quantize_q8(const float *x, struct gf_block_q8 *y, int n)
{
    const __m256 signbit = _mm256_set1_ps(-0.0f);
    for (int k = 0; k < n / GF_QK; k++) {
        const float *v = x + k * GF_QK;
        __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8);
        __m256 v2 = _mm256_loadu_ps(v + 16), v3 = _mm256_loadu_ps(v + 24);
        __m256 m = _mm256_andnot_ps(signbit, v0);
        m = _mm256_max_ps(m, _mm256_andnot_ps(signbit, v1));
        m = _mm256_max_ps(m, _mm256_andnot_ps(signbit, v2));
        m = _mm256_max_ps(m, _mm256_andnot_ps(signbit, v3));
        __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
        m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
        m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
        float amax = _mm_cvtss_f32(m4);
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[k].d = gf_f2h(d);
        __m256 mul = _mm256_set1_ps(id);
        // a macro, not a variable: clang requires the rounding mode to be a constant expression
#define rnd (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
        __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, mul), rnd));
        __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, mul), rnd));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, mul), rnd));
        __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, mul), rnd));
#undef rnd
        // packs interleave 128-bit lanes; the permute puts the bytes back in order
        __m256i p01 = _mm256_packs_epi32(i0, i1);
        __m256i p23 = _mm256_packs_epi32(i2, i3);
        __m256i p = _mm256_packs_epi16(p01, p23);
        p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        _mm256_storeu_si256((__m256i *)y[k].qs, p);
    }
}

static void axpy_f32(float *y, float a, const float *x, int n)
{
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * x[i];
}

static void axpy_f16(float *y, float a, const uint16_t *x, int n)
{
    __m256 va = _mm256_set1_ps(a);
    int i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, load_h8(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * gf_h2f(x[i]);
}

static void f32_to_f16(const float *x, uint16_t *y, int n)
{
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
        _mm_storeu_si128((__m128i *)(y + i), h);
    }
    for (; i < n; i++)
        y[i] = gf_f2h(x[i]);
}

static void rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
    float ss = dot_f32(x, x, n);
    float scale = 1.0f / sqrtf(ss / (float)n + eps);
    __m256 vs = _mm256_set1_ps(scale);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), vs);
        _mm256_storeu_ps(o + i, _mm256_mul_ps(v, _mm256_loadu_ps(w + i)));
    }
    for (; i < n; i++)
        o[i] = x[i] * scale * w[i];
}

/* e^x for x in [-87, 88] (inputs outside are clamped, which is exact enough for SwiGLU's
 * 1 / (1 + e^-v)): e^x = 2^n e^r with r = x - n ln 2 in [-ln2/2, ln2/2], e^r by the Cephes
 * degree-6 polynomial (about 1 ulp), 2^n built in the exponent field (n in [-126, 127]). */
static inline __m256 exp256(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static void swiglu(float *h, const float *g, const float *u, int n)
{
    const __m256 one = _mm256_set1_ps(1.0f);
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(g + i);
        __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), v));
        __m256 s = _mm256_div_ps(v, _mm256_add_ps(one, e));
        _mm256_storeu_ps(h + i, _mm256_mul_ps(s, _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) {
        float v = g[i];
        h[i] = v / (1.0f + expf(-v)) * u[i];
    }
}

/* ---- matrix-vector products of quantized weights --------------------------------------- */

#define MV_T 8         // tokens per pass over a weight row
#define PF_BYTES 4096  // software prefetch distance along the weight stream

/* 16 bytes from each of two rows: row 0 in the low 128-bit lane, row 1 in the high one. */
static inline __m256i load2x16(const char *p0, const char *p1, size_t off)
{
    __m128i a = _mm_loadu_si128((const __m128i *)(p0 + off));
    return _mm256_inserti128_si256(_mm256_castsi128_si256(a),
                                   _mm_loadu_si128((const __m128i *)(p1 + off)), 1);
}

/* The block scales (halves at p0 + off, p1 + off) of two rows, each over its lane. */
static inline __m256 scales2(const char *p0, const char *p1, size_t off)
{
    uint16_t h0, h1;
    memcpy(&h0, p0 + off, 2);
    memcpy(&h1, p1 + off, 2);
    __m128 f = _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)h0 | (uint32_t)h1 << 16)));
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(f),
                                    _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
}

static inline __m256i bcast16(const void *p)
{
    return _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)p));
}

static inline float hsum128(__m128 v)
{
    v = _mm_add_ps(v, _mm_movehl_ps(v, v));
    v = _mm_add_ss(v, _mm_movehdup_ps(v));
    return _mm_cvtss_f32(v);
}

/* Two rows of quantized weights (p0, p1) times T (1..MV_T) tokens whose records (gf_mv_prep)
 * for block k start at rec + k * rec_stride. Each 128-bit lane holds one row; a token's
 * 16-byte half-block is broadcast to both. The signed bytes are multiplied as |w| times y with
 * w's sign (maddubs needs an unsigned operand): at most 2 * 128 * 127 per int16 pair, so no
 * saturation, and the block's partial sums are exact integers. */
static inline __attribute__((always_inline)) void
mv_quant2(int type, const char *p0, const char *p1, int nb, const unsigned char *rec,
          size_t rec_stride, const int T, float out[MV_T][2])
{
    __m256 sum[MV_T];
    for (int t = 0; t < T; t++)
        sum[t] = _mm256_setzero_ps();
    const __m256i ones = _mm256_set1_epi16(1);
    const size_t bs = type == GF_WT_Q8_0 ? sizeof(struct gf_block_q8) : sizeof(struct gf_block_q4);
    for (int k = 0; k < nb; k++, rec += rec_stride) {
        size_t off = (size_t)k * bs;
        _mm_prefetch(p0 + off + PF_BYTES, _MM_HINT_T0);
        _mm_prefetch(p1 + off + PF_BYTES, _MM_HINT_T0);
        __m256i wlo, whi;
        if (type == GF_WT_Q8_0) {
            wlo = load2x16(p0, p1, off + 2);
            whi = load2x16(p0, p1, off + 18);
        } else {
            const __m256i m4 = _mm256_set1_epi8(0x0f), eight = _mm256_set1_epi8(8);
            __m256i z = load2x16(p0, p1, off + 2);
            wlo = _mm256_sub_epi8(_mm256_and_si256(z, m4), eight);
            whi = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(z, 4), m4), eight);
        }
        __m256i alo = _mm256_sign_epi8(wlo, wlo), ahi = _mm256_sign_epi8(whi, whi);
        __m256 dw = scales2(p0, p1, off);
        for (int t = 0; t < T; t++) {
            const unsigned char *r = rec + (size_t)t * GF_MV_REC;
            __m256i plo = _mm256_maddubs_epi16(alo, _mm256_sign_epi8(bcast16(r), wlo));
            __m256i phi = _mm256_maddubs_epi16(ahi, _mm256_sign_epi8(bcast16(r + 16), whi));
            __m256i i32;
            if (type == GF_WT_Q4_0)  // |w| <= 8: the two halves add without overflow in int16
                i32 = _mm256_madd_epi16(_mm256_add_epi16(plo, phi), ones);
            else
                i32 = _mm256_add_epi32(_mm256_madd_epi16(plo, ones), _mm256_madd_epi16(phi, ones));
            float d;
            memcpy(&d, r + GF_MV_REC_D, sizeof(d));
            sum[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i32), _mm256_mul_ps(dw, _mm256_set1_ps(d)),
                                     sum[t]);
        }
    }
    for (int t = 0; t < T; t++) {
        out[t][0] = hsum128(_mm256_castps256_ps128(sum[t]));
        out[t][1] = hsum128(_mm256_extractf128_ps(sum[t], 1));
    }
}

/* Rows [0, nr) times tokens [t0, t0 + T), two rows at a time (an odd last row is paired with
 * itself and its second result dropped). */
static inline __attribute__((always_inline)) void
mv_quant(int type, const char *w0, size_t row_bytes, int nr, int nb, const struct gf_mv_x *x,
         int t0, const int T, float *y, size_t ldy)
{
    const unsigned char *rec = x->rec + (size_t)t0 * GF_MV_REC;
    size_t stride = (size_t)x->T * GF_MV_REC;
    for (int r = 0; r < nr; r += 2) {
        const char *p0 = w0 + (size_t)r * row_bytes;
        const char *p1 = r + 1 < nr ? p0 + row_bytes : p0;
        float out[MV_T][2];
        mv_quant2(type, p0, p1, nb, rec, stride, T, out);
        for (int t = 0; t < T; t++) {
            y[(size_t)t * ldy + (size_t)r] = out[t][0];
            if (r + 1 < nr)
                y[(size_t)t * ldy + (size_t)r + 1] = out[t][1];
        }
    }
}


static void matvec(const struct gf_kernels *k, int type, const void *w, size_t row_bytes, int nr,
                   int cols, const struct gf_mv_x *x, float *y, size_t ldy)
{
    if (!((type == GF_WT_Q8_0 || type == GF_WT_Q4_0) && x->rec != NULL)) {
        gf_matvec_generic(k, type, w, row_bytes, nr, cols, x, y, ldy);
        return;
    }
    if (type == GF_WT_Q8_0 && x->T == 1) {
        // one token: each row as one stream, which memory serves twice as fast as two rows
        // interleaved (measured; for Q4_0 the two are equal from memory and mv_quant2 is
        // faster in cache)
        for (int r = 0; r < nr; r++)
            y[r] = dot_q8((const struct gf_block_q8 *)((const char *)w + (size_t)r * row_bytes),
                          x->q, cols / GF_QK);
        return;
    }
    for (int t0 = 0; t0 < x->T; t0 += MV_T) {  // each group of tokens reads the rows once
        int n = x->T - t0 < MV_T ? x->T - t0 : MV_T;
        float *yt = y + (size_t)t0 * ldy;
        if (type == GF_WT_Q8_0) {
#define CALL(N) mv_quant(GF_WT_Q8_0, w, row_bytes, nr, cols / GF_QK, x, t0, N, yt, ldy)
            SWITCH_T(n);
#undef CALL
        } else {
#define CALL(N) mv_quant(GF_WT_Q4_0, w, row_bytes, nr, cols / GF_QK, x, t0, N, yt, ldy)
            SWITCH_T(n);
#undef CALL
        }
    }
}

void gf_kernels_fill_avx2(struct gf_kernels *k)
{
    k->name = "avx2";
    k->dot_f32 = dot_f32;
    k->dot_f16 = dot_f16;
    k->dot_q8 = dot_q8;
    k->dot_q4 = dot_q4;
    k->dot4_f32 = dot4_f32;
    k->dot4_q8 = dot4_q8;
    k->dot4_q4 = dot4_q4;
    k->matvec = matvec;
    k->uses_prep = 1;
    k->quantize_q8 = quantize_q8;
    k->axpy_f32 = axpy_f32;
    k->axpy_f16 = axpy_f16;
    k->f32_to_f16 = f32_to_f16;
    k->rmsnorm = rmsnorm;
    k->swiglu = swiglu;
}
