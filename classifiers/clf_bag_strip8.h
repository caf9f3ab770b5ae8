/* clf_bag_strip8.h — the 128-bit strip of the embedding-bag kernels, shared by the AVX2 and
 * AVX-512 files (each includes it, so it compiles under that file's target flags). Needs
 * <immintrin.h>, PREFETCH and BLOCK from the including file. */
#ifndef GF_CLF_BAG_STRIP8_H
#define GF_CLF_BAG_STRIP8_H

/* Columns [d0, d0 + 8) of the rows in one 128-bit register (a head of 8 dimensions, or 8 left
 * over after the wide strips): same int16 blocks, so the same integers as the portable loop. */
static inline void strip8(const int8_t *q, uint32_t dim, uint32_t d0, const uint32_t *b, size_t n,
                   int32_t *acc)
{
    for (size_t i0 = 0; i0 < n; i0 += BLOCK) {
        size_t end = n - i0 < BLOCK ? n : i0 + BLOCK;
        __m128i a = _mm_setzero_si128();
        for (size_t i = i0; i < end; i++) {
            if (i + PREFETCH < n)
                _mm_prefetch((const char *)(q + (size_t)b[i + PREFETCH] * dim + d0),
                             _MM_HINT_T0);
            const int8_t *row = q + (size_t)b[i] * dim + d0;
            a = _mm_add_epi16(a, _mm_cvtepi8_epi16(
                                     _mm_loadl_epi64((const __m128i *)(const void *)row)));
        }
        __m128i *o = (__m128i *)(void *)(acc + d0);
        _mm_storeu_si128(o, _mm_add_epi32(_mm_loadu_si128(o), _mm_cvtepi16_epi32(a)));
        _mm_storeu_si128(o + 1, _mm_add_epi32(_mm_loadu_si128(o + 1),
                                              _mm_cvtepi16_epi32(_mm_srli_si128(a, 8))));
    }
}

#endif
