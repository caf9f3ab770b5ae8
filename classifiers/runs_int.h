/* runs_int.h — private to classifiers/: where a run of word bytes ends, found eight bytes at a
 * time (SWAR) instead of one table look-up and one hard-to-predict branch per byte. Words of
 * prose are a few bytes long, so most runs end within the first eight bytes looked at.
 * Invariant: each function returns exactly what its byte-at-a-time loop (in the comment)
 * returns, for every byte value. */
#ifndef GF_RUNS_INT_H
#define GF_RUNS_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define GF_RUNS_ONES  0x0101010101010101ull
#define GF_RUNS_HIGHS 0x8080808080808080ull

/* Bits set in x, inline: the baseline x86-64 has no popcnt instruction, and __builtin_popcount
 * is a libgcc call there (1% of the example policy's time on real text, in the shape scan). */
static inline unsigned gf_runs_popcount64(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (unsigned)((x * GF_RUNS_ONES) >> 56);
}

static inline uint64_t gf_runs_load(const unsigned char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);  // byte i of the text in bits 8i..8i+7
#endif
    return x;
}

/* High bit of each byte of x (ASCII part only, x & 0x7f per byte) in [lo, hi]. No carry crosses
 * a byte: a 7-bit value plus at most 0x80 - lo stays below 0x100. */
static inline uint64_t gf_runs_in(uint64_t low7, unsigned lo, unsigned hi)
{
    return (low7 + GF_RUNS_ONES * (0x80 - lo)) & ~(low7 + GF_RUNS_ONES * (0x80 - hi - 1)) &
           GF_RUNS_HIGHS;
}

/* High bit of each byte of x equal to c, exactly (no borrow between bytes). */
static inline uint64_t gf_runs_eq(uint64_t x, unsigned char c)
{
    uint64_t y = x ^ (GF_RUNS_ONES * c);  // a zero byte where x has c
    uint64_t t = (y & ~GF_RUNS_HIGHS) + ~GF_RUNS_HIGHS;
    return ~(t | y | ~GF_RUNS_HIGHS);
}

/* High bit of each byte of x that is an ASCII letter or digit (set for the ASCII range only). */
static inline uint64_t gf_runs_letter_digit(uint64_t x)
{
    uint64_t low = x & ~GF_RUNS_HIGHS;
    return (gf_runs_in(low, '0', '9') | gf_runs_in(low | GF_RUNS_ONES * 0x20, 'a', 'z')) & ~x;
}

/* The first i' >= i with !(s[i'] is an ASCII letter or digit, or >= 0x80), or n:
 * while (i < n && (isalnum_ascii(s[i]) || s[i] >= 0x80)) i++; */
static inline size_t gf_runs_alnum_end(const unsigned char *s, size_t i, size_t n)
{
    for (; i + 8 <= n; i += 8) {
        uint64_t x = gf_runs_load(s + i);
        uint64_t stop = ~(x | gf_runs_letter_digit(x)) & GF_RUNS_HIGHS;
        if (stop != 0)
            return i + (size_t)__builtin_ctzll(stop) / 8;
    }
    for (; i < n; i++) {
        unsigned c = s[i];
        if (!(c >= 0x80 || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z')))
            break;
    }
    return i;
}

/* The first i' >= i with s[i'] not in [0-9A-Za-z_] and below 0x80 (a word byte of the
 * classifiers' tokens: clf_hash.c), or n. */
static inline size_t gf_runs_token_end(const unsigned char *s, size_t i, size_t n)
{
    for (; i + 8 <= n; i += 8) {
        uint64_t x = gf_runs_load(s + i);
        uint64_t stop = ~(x | gf_runs_letter_digit(x) | gf_runs_eq(x, '_')) & GF_RUNS_HIGHS;
        if (stop != 0)
            return i + (size_t)__builtin_ctzll(stop) / 8;
    }
    for (; i < n; i++) {
        unsigned c = s[i];
        if (!(c >= 0x80 || (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
              c == '_'))
            break;
    }
    return i;
}

/* The first i' >= i with s[i'] not in [0-9A-Za-z_] (PCRE2's \w without Unicode), or n. */
static inline size_t gf_runs_word_end(const unsigned char *s, size_t i, size_t n)
{
    for (; i + 8 <= n; i += 8) {
        uint64_t x = gf_runs_load(s + i);
        uint64_t stop = ~(gf_runs_letter_digit(x) | gf_runs_eq(x, '_')) & GF_RUNS_HIGHS;
        if (stop != 0)
            return i + (size_t)__builtin_ctzll(stop) / 8;
    }
    for (; i < n; i++) {
        unsigned c = s[i];
        if (!((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '_'))
            break;
    }
    return i;
}

/* The first i' >= i with s[i'] not a word byte of the folded text (normalize.c's C_WORD:
 * [0-9a-z$@] and every byte >= 0x80), or n. */
static inline size_t gf_runs_folded_word_end(const unsigned char *s, size_t i, size_t n)
{
    for (; i + 8 <= n; i += 8) {
        uint64_t x = gf_runs_load(s + i), low = x & ~GF_RUNS_HIGHS;
        // A byte >= 0x80 is a word byte whatever its low bits say.
        uint64_t word = x | gf_runs_in(low, '0', '9') | gf_runs_in(low, 'a', 'z') |
                        gf_runs_eq(x, '$') | gf_runs_eq(x, '@');
        uint64_t stop = ~word & GF_RUNS_HIGHS;
        if (stop != 0)
            return i + (size_t)__builtin_ctzll(stop) / 8;
    }
    for (; i < n; i++) {
        unsigned c = s[i];
        if (!(c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '$' ||
              c == '@'))
            break;
    }
    return i;
}

/* Byte classes of 64 bytes, one bit per byte (bit k for p[k]): bytes >= 0x80, ASCII letters,
 * digits, '_'. With SSE2 (every x86-64 CPU) sixteen bytes take a dozen instructions; elsewhere
 * a byte loop. */
struct gf_runs_mask {
    uint64_t high, letter, digit, under;
};

static inline void gf_runs_mask64(const unsigned char *p, struct gf_runs_mask *m)
{
#if defined(__SSE2__)
    uint64_t high = 0, letter = 0, digit = 0, under = 0;
    for (int k = 0; k < 4; k++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
        // x - lo <= hi - lo, unsigned, for the ranges; | 0x20 folds the capitals onto a-z.
        __m128i l = _mm_sub_epi8(_mm_or_si128(x, _mm_set1_epi8(0x20)), _mm_set1_epi8('a'));
        __m128i d = _mm_sub_epi8(x, _mm_set1_epi8('0'));
        l = _mm_cmpeq_epi8(_mm_min_epu8(l, _mm_set1_epi8(25)), l);
        d = _mm_cmpeq_epi8(_mm_min_epu8(d, _mm_set1_epi8(9)), d);
        __m128i u = _mm_cmpeq_epi8(x, _mm_set1_epi8('_'));
        high |= (uint64_t)(unsigned)_mm_movemask_epi8(x) << (16 * k);
        letter |= (uint64_t)(unsigned)_mm_movemask_epi8(l) << (16 * k);
        digit |= (uint64_t)(unsigned)_mm_movemask_epi8(d) << (16 * k);
        under |= (uint64_t)(unsigned)_mm_movemask_epi8(u) << (16 * k);
    }
    m->high = high;
    m->letter = letter;
    m->digit = digit;
    m->under = under;
#else
    memset(m, 0, sizeof(*m));
    for (int k = 0; k < 64; k++) {
        unsigned c = p[k];
        m->high |= (uint64_t)(c >= 0x80) << k;
        m->letter |= (uint64_t)((c | 0x20) >= 'a' && (c | 0x20) <= 'z' && c < 0x80) << k;
        m->digit |= (uint64_t)(c >= '0' && c <= '9') << k;
        m->under |= (uint64_t)(c == '_') << k;
    }
#endif
}

#endif
