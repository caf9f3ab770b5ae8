/* pii_lits_avx2.c — the search for the secrets' keys (pii_lits.c) 32 bytes at a time with AVX2
 * (this file alone is compiled with -mavx2; pii_lits.c calls it only on a CPU that has AVX2):
 * the same places as the sixteen-byte search, all of a text's at once. */
#include "classifiers/pii_int.h"

#include <immintrin.h>

size_t gf_pii_keys_find_avx2(const struct gf_pii_lits *L, const unsigned char *t, size_t *i,
                             size_t n, size_t *at, size_t cap)
{
    __m256i one[GF_PII_SLOTS_1], fold[GF_PII_SLOTS_FOLD][2], low = _mm256_set1_epi8(0x20);
    for (size_t k = 0; k < GF_PII_SLOTS_1; k++)
        one[k] = _mm256_set1_epi8((char)L->slot1[k]);
    for (size_t k = 0; k < GF_PII_SLOTS_FOLD; k++)
        for (int b = 0; b < 2; b++)
            fold[k][b] = _mm256_set1_epi8((char)L->slotf[k][b]);
    size_t found = 0;
    for (; *i + 33 <= n && found + 32 <= cap; *i += 32) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(const void *)(t + *i));
        __m256i y = _mm256_loadu_si256((const __m256i *)(const void *)(t + *i + 1));
        __m256i m = _mm256_setzero_si256();
        for (size_t k = 0; k < GF_PII_SLOTS_1; k++)
            m = _mm256_or_si256(m, _mm256_cmpeq_epi8(x, one[k]));
        x = _mm256_or_si256(x, low);
        y = _mm256_or_si256(y, low);
        for (size_t k = 0; k < GF_PII_SLOTS_FOLD; k++)
            m = _mm256_or_si256(m, _mm256_and_si256(_mm256_cmpeq_epi8(x, fold[k][0]),
                                                    _mm256_cmpeq_epi8(y, fold[k][1])));
        for (uint32_t bits = (uint32_t)_mm256_movemask_epi8(m); bits != 0; bits &= bits - 1)
            at[found++] = *i + (size_t)__builtin_ctz(bits);
    }
    return found;
}
