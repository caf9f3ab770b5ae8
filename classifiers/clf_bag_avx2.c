/* clf_bag_avx2.c — the embedding-bag and dense kernels with AVX2 (this file alone is compiled
 * with -mavx2, without FMA; clf_bag.c calls it only on a CPU that has AVX2). Rows are summed 16
 * columns per register in int16, which cannot overflow within 255 rows of |q| <= 128, then
 * widened into the int32 sum: the same integers as the portable kernel. The dense layer does
 * per lane exactly the multiply and the add of the portable one, in the same order. */
#include "classifiers/clf_int.h"

#include <immintrin.h>

#define PREFETCH 16  // rows are random reads in megabytes: fetch them this many features ahead
#define BLOCK    255 // rows per int16 partial sum

#include "classifiers/clf_bag_strip8.h"

/* Sums columns [d0, d0 + 16 * W) of the rows; W is a constant in each caller, so the
 * accumulators stay in registers. */
static inline __attribute__((always_inline)) void strip(const int8_t *q, uint32_t dim,
                                                        uint32_t d0, int W, const uint32_t *b,
                                                        size_t n, int32_t *acc)
{
    for (size_t i0 = 0; i0 < n; i0 += BLOCK) {
        size_t end = n - i0 < BLOCK ? n : i0 + BLOCK;
        __m256i a[4] = {_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(),
                        _mm256_setzero_si256()};
        for (size_t i = i0; i < end; i++) {
            if (i + PREFETCH < n) {
                const char *pf = (const char *)(q + (size_t)b[i + PREFETCH] * dim + d0);
                _mm_prefetch(pf, _MM_HINT_T0);
                _mm_prefetch(pf + 16 * W - 1, _MM_HINT_T0);
            }
            const int8_t *row = q + (size_t)b[i] * dim + d0;
            for (int w = 0; w < W; w++)
                a[w] = _mm256_add_epi16(
                    a[w], _mm256_cvtepi8_epi16(
                              _mm_loadu_si128((const __m128i *)(const void *)(row + 16 * w))));
        }
        for (int w = 0; w < W; w++) {
            int32_t *o = acc + d0 + 16 * w;
            __m256i lo = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(a[w]));
            __m256i hi = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a[w], 1));
            _mm256_storeu_si256((__m256i *)(void *)o,
                                _mm256_add_epi32(_mm256_loadu_si256((__m256i *)(void *)o), lo));
            _mm256_storeu_si256(
                (__m256i *)(void *)(o + 8),
                _mm256_add_epi32(_mm256_loadu_si256((__m256i *)(void *)(o + 8)), hi));
        }
    }
}

void gf_clf_bag_add_avx2(const int8_t *q, uint32_t dim, const uint32_t *buckets, size_t n,
                         int32_t *acc)
{
    uint32_t d0 = 0;
    for (; dim - d0 >= 64; d0 += 64)
        strip(q, dim, d0, 4, buckets, n, acc);
    switch ((dim - d0) / 16) {
    case 3:
        strip(q, dim, d0, 3, buckets, n, acc);
        break;
    case 2:
        strip(q, dim, d0, 2, buckets, n, acc);
        break;
    case 1:
        strip(q, dim, d0, 1, buckets, n, acc);
        break;
    default:
        break;
    }
    d0 += (dim - d0) / 16 * 16;
    if (dim - d0 >= 8) {
        strip8(q, dim, d0, buckets, n, acc);
        d0 += 8;
    }
    if (d0 < dim)  // the last dim % 16 columns
        for (size_t i = 0; i < n; i++) {
            const int8_t *row = q + (size_t)buckets[i] * dim;
            for (uint32_t d = d0; d < dim; d++)
                acc[d] += row[d];
        }
}

/* Outputs [o0, o0 + 8 * W) over the whole input (W constant in each caller). */
static inline __attribute__((always_inline)) void dense_block(const float *w, const float *b,
                                                              const float *x, uint32_t n_in,
                                                              uint32_t n_out, uint32_t o0,
                                                              int W, float *out)
{
    __m256 z[4];
    for (int k = 0; k < W; k++)
        z[k] = _mm256_loadu_ps(b + o0 + 8 * k);
    for (uint32_t i = 0; i < n_in; i++) {
        const float *wi = w + (size_t)i * n_out + o0;
        const __m256 xi = _mm256_set1_ps(x[i]);
        for (int k = 0; k < W; k++)
            z[k] = _mm256_add_ps(z[k], _mm256_mul_ps(_mm256_loadu_ps(wi + 8 * k), xi));
    }
    for (int k = 0; k < W; k++)
        _mm256_storeu_ps(out + o0 + 8 * k, z[k]);
}

void gf_clf_dense_avx2(const float *w, const float *b, const float *x, uint32_t n_in,
                       uint32_t n_out, float *out)
{
    uint32_t o0 = 0;
    for (; o0 + 32 <= n_out; o0 += 32)
        dense_block(w, b, x, n_in, n_out, o0, 4, out);
    for (; o0 + 8 <= n_out; o0 += 8)
        dense_block(w, b, x, n_in, n_out, o0, 1, out);
    if (o0 < n_out) {
        for (uint32_t o = o0; o < n_out; o++)
            out[o] = b[o];
        for (uint32_t i = 0; i < n_in; i++) {
            const float *wi = w + (size_t)i * n_out;
            for (uint32_t o = o0; o < n_out; o++)
                out[o] += wi[o] * x[i];
        }
    }
}
