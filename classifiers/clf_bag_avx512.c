/* clf_bag_avx512.c — the embedding-bag kernel with AVX-512BW (this file alone is compiled with
 * it; clf_bag.c calls it only on a CPU that has it): like clf_bag_avx2.c with 32 int16 columns
 * per register, so a 48-wide row is one 512-bit and one 256-bit add. Same integers as the
 * portable kernel. */
#include "classifiers/clf_int.h"

#include <immintrin.h>

#define PREFETCH 16
#define BLOCK    255

#include "classifiers/clf_bag_strip8.h"

static inline __attribute__((always_inline)) void add32(int32_t *o, __m256i v)
{
    _mm256_storeu_si256((__m256i *)(void *)o,
                        _mm256_add_epi32(_mm256_loadu_si256((__m256i *)(void *)o), v));
}

/* Sums columns [d0, d0 + 32 * Z + 16 * Y) of the rows (Z, Y constants in each caller). */
static inline __attribute__((always_inline)) void strip(const int8_t *q, uint32_t dim,
                                                        uint32_t d0, int Z, int Y,
                                                        const uint32_t *b, size_t n,
                                                        int32_t *acc)
{
    const int width = 32 * Z + 16 * Y;
    for (size_t i0 = 0; i0 < n; i0 += BLOCK) {
        size_t end = n - i0 < BLOCK ? n : i0 + BLOCK;
        __m512i a[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
        __m256i y = _mm256_setzero_si256();
        for (size_t i = i0; i < end; i++) {
            if (i + PREFETCH < n) {
                const char *pf = (const char *)(q + (size_t)b[i + PREFETCH] * dim + d0);
                _mm_prefetch(pf, _MM_HINT_T0);
                _mm_prefetch(pf + width - 1, _MM_HINT_T0);
            }
            const int8_t *row = q + (size_t)b[i] * dim + d0;
            for (int z = 0; z < Z; z++)
                a[z] = _mm512_add_epi16(
                    a[z], _mm512_cvtepi8_epi16(
                              _mm256_loadu_si256((const __m256i *)(const void *)(row + 32 * z))));
            if (Y)
                y = _mm256_add_epi16(
                    y, _mm256_cvtepi8_epi16(
                           _mm_loadu_si128((const __m128i *)(const void *)(row + 32 * Z))));
        }
        for (int z = 0; z < Z; z++) {
            int32_t *o = acc + d0 + 32 * z;
            __m512i lo = _mm512_cvtepi16_epi32(_mm512_castsi512_si256(a[z]));
            __m512i hi = _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(a[z], 1));
            _mm512_storeu_si512(o, _mm512_add_epi32(_mm512_loadu_si512(o), lo));
            _mm512_storeu_si512(o + 16, _mm512_add_epi32(_mm512_loadu_si512(o + 16), hi));
        }
        if (Y) {
            int32_t *o = acc + d0 + 32 * Z;
            add32(o, _mm256_cvtepi16_epi32(_mm256_castsi256_si128(y)));
            add32(o + 8, _mm256_cvtepi16_epi32(_mm256_extracti128_si256(y, 1)));
        }
    }
}

void gf_clf_bag_add_avx512(const int8_t *q, uint32_t dim, const uint32_t *buckets, size_t n,
                           int32_t *acc)
{
    uint32_t d0 = 0;
    for (; dim - d0 >= 64; d0 += 64)
        strip(q, dim, d0, 2, 0, buckets, n, acc);
    switch ((dim - d0) / 16) {
    case 3:
        strip(q, dim, d0, 1, 1, buckets, n, acc);
        break;
    case 2:
        strip(q, dim, d0, 1, 0, buckets, n, acc);
        break;
    case 1:
        strip(q, dim, d0, 0, 1, buckets, n, acc);
        break;
    default:
        break;
    }
    d0 += (dim - d0) / 16 * 16;
    if (dim - d0 >= 8) {
        strip8(q, dim, d0, buckets, n, acc);
        d0 += 8;
    }
    if (d0 < dim)
        for (size_t i = 0; i < n; i++) {
            const int8_t *row = q + (size_t)buckets[i] * dim;
            for (uint32_t d = d0; d < dim; d++)
                acc[d] += row[d];
        }
}

/* Outputs [o0, o0 + 16 * W) over the whole input (W constant in each caller); the last register
 * takes only the outputs in mask. Multiplies and adds apart, never fused, each output adding its
 * inputs in index order: the bits of the portable kernel. */
static inline __attribute__((always_inline)) void dense_block(const float *w, const float *b,
                                                              const float *x, uint32_t n_in,
                                                              uint32_t n_out, uint32_t o0, int W,
                                                              __mmask16 mask, float *out)
{
    __m512 z[4];
    for (int k = 0; k < W; k++)
        z[k] = _mm512_maskz_loadu_ps(k == W - 1 ? mask : 0xffff, b + o0 + 16 * k);
    for (uint32_t i = 0; i < n_in; i++) {
        const float *wi = w + (size_t)i * n_out + o0;
        const __m512 xi = _mm512_set1_ps(x[i]);
        for (int k = 0; k < W; k++)
            z[k] = _mm512_add_ps(
                z[k], _mm512_mul_ps(_mm512_maskz_loadu_ps(k == W - 1 ? mask : 0xffff,
                                                          wi + 16 * k),
                                    xi));
    }
    for (int k = 0; k < W; k++)
        _mm512_mask_storeu_ps(out + o0 + 16 * k, k == W - 1 ? mask : 0xffff, z[k]);
}

void gf_clf_dense_avx512(const float *w, const float *b, const float *x, uint32_t n_in,
                         uint32_t n_out, float *out)
{
    // Blocks of 64 outputs (the shipped hidden layer of 128 is two), then 16, then the rest in
    // one masked register (the 9 outputs of the shipped model: no scalar tail).
    uint32_t o0 = 0;
    for (; o0 + 64 <= n_out; o0 += 64)
        dense_block(w, b, x, n_in, n_out, o0, 4, 0xffff, out);
    for (; o0 + 16 <= n_out; o0 += 16)
        dense_block(w, b, x, n_in, n_out, o0, 1, 0xffff, out);
    if (o0 < n_out)
        dense_block(w, b, x, n_in, n_out, o0, 1, (__mmask16)((1u << (n_out - o0)) - 1), out);
}
