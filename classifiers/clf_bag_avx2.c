/* clf_bag_avx2.c — the embedding-bag kernel with AVX2 (this file alone is compiled with -mavx2;
 * clf_bag.c calls it only on a CPU that has AVX2). Rows are summed 16 columns per register in
 * int16, which cannot overflow within 255 rows of |q| <= 128, then widened into the int32 sum:
 * the same integers as the portable kernel. */
#include "classifiers/clf_int.h"

#include <immintrin.h>

#define PREFETCH 16  // rows are random reads in megabytes: fetch them this many features ahead
#define BLOCK    255 // rows per int16 partial sum

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
    if (d0 < dim)  // the last dim % 16 columns
        for (size_t i = 0; i < n; i++) {
            const int8_t *row = q + (size_t)buckets[i] * dim;
            for (uint32_t d = d0; d < dim; d++)
                acc[d] += row[d];
        }
}
