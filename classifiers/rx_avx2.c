/* rx_avx2.c — the keyword prefilter's search for its keys (rx.c) 32 bytes at a time with AVX2
 * (this file alone is compiled with -mavx2; rx.c calls it only on a CPU that has AVX2). The
 * same places as the sixteen-byte search: a key's two bytes, each | low, in a row. The places
 * of a whole text come back at once: setting the keys up costs as much as a hundred bytes. */
#include "classifiers/rx_int.h"

#include <immintrin.h>

size_t gf_rx_keys_find_avx2(const struct gf_rx_keybytes *k, const unsigned char *t, size_t *i,
                            size_t n, size_t *at, size_t cap)
{
    size_t found = 0;
    __m256i k0[GF_RX_KEYS], k1[GF_RX_KEYS], low = _mm256_set1_epi8((char)k->low);
    for (size_t s = 0; s < k->n; s++) {
        k0[s] = _mm256_set1_epi8((char)k->k0[s]);
        k1[s] = _mm256_set1_epi8((char)k->k1[s]);
    }
    for (; *i + 33 <= n && found + 32 <= cap; *i += 32) {
        __m256i raw = _mm256_loadu_si256((const __m256i *)(const void *)(t + *i));
        __m256i x = _mm256_or_si256(raw, low);
        __m256i y =
            _mm256_or_si256(_mm256_loadu_si256((const __m256i *)(const void *)(t + *i + 1)), low);
        __m256i m = _mm256_setzero_si256();
        for (size_t s = 0; s < k->ascii; s++)
            m = _mm256_or_si256(m, _mm256_and_si256(_mm256_cmpeq_epi8(x, k0[s]),
                                                    _mm256_cmpeq_epi8(y, k1[s])));
        // Keys starting with a byte >= 0x80 only where there is one (in most text, nowhere).
        if (k->ascii < k->n && _mm256_movemask_epi8(raw) != 0)
            for (size_t s = k->ascii; s < k->n; s++)
                m = _mm256_or_si256(m, _mm256_and_si256(_mm256_cmpeq_epi8(x, k0[s]),
                                                        _mm256_cmpeq_epi8(y, k1[s])));
        for (uint32_t bits = (uint32_t)_mm256_movemask_epi8(m); bits != 0; bits &= bits - 1)
            at[found++] = *i + (size_t)__builtin_ctz(bits);
    }
    return found;
}
