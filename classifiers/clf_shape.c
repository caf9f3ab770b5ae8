/* clf_shape.c — the text's shape, read from the original text before normalization lowercases
 * and unleets it: how much of it is in capitals, how many words are shouted ("WINNER", "FREE"),
 * how many '!', and whether it holds a currency sign, a link or an e-mail address. Much SMS and
 * mail spam is marked by exactly these ("WINNER!! Claim your £1000 at www...."), and the
 * canonical form has lost the capitals and turns '$' and '@' inside words into letters.
 * Feature version 3. Each property is bucketed coarsely and hashed into a feature of its own.
 * Invariant: the evasion variants of clf_evasion.c (Cyrillic look-alikes of lowercase letters,
 * zero-width characters, leetspeak digits for lowercase letters, a spaced-out word) leave every
 * count here unchanged or in the same bucket: a look-alike or a leet digit counts like the
 * lowercase letter it replaces, zero-width characters count for nothing, and a shouted word
 * is a run of capitals, which spacing a lowercase word does not touch. One pass, one table
 * lookup per byte, no allocation. */
#include "classifiers/clf_int.h"
#include "classifiers/runs_int.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

// Byte classes of the original text.
enum {
    S_UPPER = 1,   // A-Z
    S_OTHER = 2,   // a-z, 0-9: non-capital word characters
    S_LEAD = 4,    // first byte of a multi-byte UTF-8 character
    S_BANG = 8,    // '!'
    S_DOLLAR = 16, // '$'
    S_AT = 32,     // '@'
    S_COLON = 64,  // ':' (of "://")
    S_DOT = 128,   // '.' (of "www.")
};

static const uint8_t shape_class[256] = {
    ['A' ... 'Z'] = S_UPPER, ['a' ... 'z'] = S_OTHER, ['0' ... '9'] = S_OTHER, [0xc2 ... 0xf4] = S_LEAD, ['!'] = S_BANG,
    ['$'] = S_DOLLAR, ['@'] = S_AT, [':'] = S_COLON, ['.'] = S_DOT,
};


// Code points that are invisible formatting (zero-width space/joiners, word joiner, soft
// hyphen, byte-order mark): evasion inserts them, so they count as nothing.
static bool invisible(const unsigned char *p, size_t avail)
{
    if (p[0] == 0xc2)
        return avail >= 2 && p[1] == 0xad;
    if (p[0] == 0xe2)
        return avail >= 3 && ((p[1] == 0x80 && p[2] >= 0x8b && p[2] <= 0x8f) ||
                              (p[1] == 0x81 && p[2] >= 0xa0 && p[2] <= 0xa4));
    if (p[0] == 0xef)
        return avail >= 3 && p[1] == 0xbb && p[2] == 0xbf;
    return false;
}

// Currency signs other than '$': £ ¥ € (the sign of most SMS spam amounts).
static bool currency_sign(const unsigned char *p, size_t avail)
{
    if (p[0] == 0xc2)
        return avail >= 2 && (p[1] == 0xa3 || p[1] == 0xa5);
    return p[0] == 0xe2 && avail >= 3 && p[1] == 0x82 && p[2] == 0xac;
}

// Letters, digits and non-ASCII bytes (a look-alike letter is one).
static bool alnum(unsigned char c)
{
    return (shape_class[c] & (S_UPPER | S_OTHER)) != 0 || c >= 0x80;
}

static bool word_byte(unsigned char c)
{
    return alnum(c) || c == '_' || c == '-' || c == '.' || c == '+';
}

// An e-mail address around the '@' at p[i]: a word byte before it, and after it a domain of
// word bytes holding a '.' followed by a letter.
static bool email_at(const unsigned char *p, size_t n, size_t i)
{
    if (i == 0 || !word_byte(p[i - 1]))
        return false;
    bool dot = false;
    for (size_t j = i + 1; j < n && j < i + 64 && word_byte(p[j]); j++) {
        if (p[j] == '.' && j + 1 < n && alnum(p[j + 1]))
            dot = true;
    }
    return dot;
}

// True when p[i] is a capital standing alone: "R" in "E R!", not "D" in "L DAMMIT".
static bool lone_capital(const unsigned char *p, size_t n, size_t i)
{
    return i < n && (shape_class[p[i]] & S_UPPER) &&
           (i + 1 == n || !(shape_class[p[i + 1]] & (S_UPPER | S_OTHER | S_LEAD)));
}

#if !defined(__SSE2__)
#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

// For eight ASCII bytes (below 0x80, so no sum below carries into the next byte): the high bit
// of each byte that is in [lo, hi], or equal to c; and the number of such bytes.
static inline uint64_t range8(uint64_t x, unsigned lo, unsigned hi)
{
    return (x + ONES * (0x80 - lo)) & ~(x + ONES * (0x7f - hi)) & HIGHS;
}

static inline uint64_t eq8(uint64_t x, unsigned c)
{
    return ~((x ^ (ONES * c)) + ONES * 0x7f) & HIGHS;
}

static inline size_t count8(uint64_t m)
{
    return (size_t)(((m >> 7) * ONES) >> 56);
}

// True when the eight bytes are ASCII without capitals, '$', '@', ':', '!' or a '.' after a 'w'
// (prev_w: the byte before them may end a 'w' or an invisible character).
static inline bool plain8(uint64_t x, bool prev_w)
{
    uint64_t wdot = eq8(x, '.') & ((eq8(x, 'w') << 8) | (prev_w ? 0x80 : 0));
    // '@' is 'A' - 1: one range covers the capitals and '@'.
    return ((x & HIGHS) | range8(x, '@', 'Z') | eq8(x, '$') | eq8(x, ':') | eq8(x, '!') |
            wdot) == 0;
}
#endif

#if defined(__SSE2__)
/* The test of the portable eight-byte path (plain8) for the sixteen bytes at p, exactly: a bit
 * per byte the fast path cannot take, and in *plain a bit per lowercase letter or digit. */
static inline unsigned special16(const unsigned char *p, bool prev_w, unsigned *plain)
{
    const __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
    // Signed compares: bytes from 0x80 are negative, in no range below, and in x's own mask.
#define IN(lo, hi) \
    _mm_and_si128(_mm_cmpgt_epi8(x, _mm_set1_epi8((char)((lo) - 1))), \
                  _mm_cmplt_epi8(x, _mm_set1_epi8((char)((hi) + 1))))
#define EQ(c) _mm_cmpeq_epi8(x, _mm_set1_epi8(c))
    const __m128i sign = _mm_or_si128(_mm_or_si128(IN('@', 'Z'), EQ('$')),
                                      _mm_or_si128(EQ(':'), EQ('!')));
    unsigned w = (unsigned)_mm_movemask_epi8(EQ('w')), dot = (unsigned)_mm_movemask_epi8(EQ('.'));
    *plain = (unsigned)_mm_movemask_epi8(_mm_or_si128(IN('a', 'z'), IN('0', '9')));
#undef IN
#undef EQ
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(sign, x)) | (dot & ((w << 1) | prev_w));
}
#endif

// True when the byte before p[i] may end a 'w' or an invisible character.
static inline bool after_w(const unsigned char *p, size_t i)
{
    return i > 0 && (p[i - 1] == 'w' || p[i - 1] >= 0x80);
}

static bool is_w(unsigned char c)
{
    return c == 'w' || c == 'W';
}

// Start of the visible character before p[j], skipping invisible ones; SIZE_MAX if none.
static size_t visible_before(const unsigned char *p, size_t j)
{
    while (j > 0) {
        size_t k = j - 1;
        while (k > 0 && (p[k] & 0xc0) == 0x80 && j - k < 4)
            k--;  // back to the lead byte of a multi-byte character
        if (!(p[k] >= 0xc2 && invisible(p + k, j - k)))
            return k;
        j = k;
    }
    return SIZE_MAX;
}

// True when "www" (the first w lowercase) comes right before the '.' at p[i].
static bool www_before(const unsigned char *p, size_t i)
{
    size_t a = visible_before(p, i), b = a != SIZE_MAX ? visible_before(p, a) : SIZE_MAX,
           c = b != SIZE_MAX ? visible_before(p, b) : SIZE_MAX;
    return c != SIZE_MAX && p[c] == 'w' && is_w(p[b]) && is_w(p[a]);
}

/* Counts over p[0..n). A shouted word is a run of 3 or more capitals; the run goes on across
 * invisible characters and across single spaces between lone capitals, so that "W I N N E R"
 * and "WIN\u200bNER" are the one shouted word "WINNER" is (and "B E A U T I F U L DAMMIT"
 * two, like "BEAUTIFUL DAMMIT"). */
static void scan(const unsigned char *p, size_t n, struct gf_clf_shape *sh)
{
    size_t run = 0, seg = 0;  // capitals in the run, and in its last space-free segment
    size_t slow = 0;          // bytes to go one by one before trying eight at a time again
    for (size_t i = 0; i < n; i++) {
        if (slow == 0) {
            // Fast path, most of a text: ASCII bytes without capitals or signs, outside a run
            // of capitals, only add to the count of letters and digits.
#if defined(__SSE2__)
            // Sixteen at a time up to the first byte it cannot take, which goes by the byte
            // path, and the fast path tries again after it; after it failed at once, eight
            // bytes go one by one (a run of signs or of non-ASCII text).
            slow = 1;
            while (run == 0 && i + 16 <= n) {
                unsigned plain, sp = special16(p + i, after_w(p, i), &plain);
                if (sp == 0) {
                    sh->other += gf_runs_popcount64(plain);
                    i += 16;
                    continue;
                }
                unsigned t = (unsigned)__builtin_ctz(sp);
                sh->other += gf_runs_popcount64(plain & ((1u << t) - 1));
                i += t;
                slow = t == 0 ? 8 : 1;
                break;
            }
            if (i >= n)
                break;
#else
            // Eight at a time; the eight bytes where it fails go one by one (retrying at
            // every byte would cost more than it saves).
            uint64_t x;
            while (run == 0 && i + 8 <= n && (memcpy(&x, p + i, 8), plain8(x, after_w(p, i)))) {
                sh->other += count8(range8(x, 'a', 'z') | range8(x, '0', '9'));
                i += 8;
            }
            if (i >= n)
                break;
            slow = 8;
#endif
        }
        slow--;
        uint8_t c = shape_class[p[i]];
        if (c & S_UPPER) {
            sh->upper++;
            run++;
            seg++;
            continue;
        }
        if (c & S_LEAD && invisible(p + i, n - i)) {
            i += p[i] == 0xc2 ? 1 : 2;  // skip the whole character
            continue;
        }
        if (p[i] == ' ' && seg == 1 && lone_capital(p, n, i + 1)) {
            seg = 0;
            continue;
        }
        if (run >= 3)
            sh->shouted++;
        run = seg = 0;
        if (c & S_OTHER) {
            sh->other++;
        } else if (c & S_LEAD) {
            sh->other++;
            sh->currency |= currency_sign(p + i, n - i);
        } else if (c & S_BANG) {
            sh->bangs++;
        } else if (c & S_DOLLAR) {
            sh->currency = true;
        } else if (c & S_DOT) {
            sh->link |= www_before(p, i);
        } else if (c & S_COLON) {
            sh->link |= i + 2 < n && p[i + 1] == '/' && p[i + 2] == '/';
        } else if (c & S_AT) {
            sh->email |= email_at(p, n, i);
        }
    }
    if (run >= 3)
        sh->shouted++;
}

/* Capitals as a share of the word characters, in six classes; texts of fewer than 8 word
 * characters say too little and get a class of their own. */
static uint64_t caps_class(const struct gf_clf_shape *sh)
{
    size_t all = sh->upper + sh->other;
    if (all < 8)
        return 0;
    // Compare upper/all against 5%, 15%, 30%, 50%, 75% without division. Leet digits and
    // look-alikes count in `other` like the lowercase letters they replace.
    static const unsigned pct[] = {5, 15, 30, 50, 75};
    uint64_t k = 1;
    for (size_t i = 0; i < sizeof(pct) / sizeof(pct[0]); i++)
        k += (uint64_t)sh->upper * 100 >= (uint64_t)all * pct[i];
    return k;
}

static uint64_t count_class(size_t n)
{
    return n == 0 ? 0 : n == 1 ? 1 : n <= 3 ? 2 : n <= 7 ? 3 : 4;
}

/* Each shape feature goes into the mean this many times: a text's mean pools hundreds of
 * n-grams, among which a single feature would hardly count (1, 4 and 8 were tried on the
 * validation split; docs/classifiers.md). */
#define SHAPE_REPEAT 8

enum { F_CAPS = 1, F_SHOUTED, F_BANGS, F_CURRENCY, F_LINK, F_EMAIL };

void gf_clf_shape_scan(const char *text, size_t len, struct gf_clf_shape *sh)
{
    scan((const unsigned char *)text, len, sh);
}

size_t gf_clf_shape_emit(const struct gf_clf_hash_params *hp, const struct gf_clf_shape *sh,
                         gf_clf_feature_fn fn, void *ud)
{
    const uint64_t base = gf_clf_mix64(0x6766736870ULL ^ (uint64_t)hp->seed);  // "gfshp"
    uint64_t f[6];
    size_t k = 0;
    f[k++] = ((uint64_t)F_CAPS << 8) | caps_class(sh);
    f[k++] = ((uint64_t)F_SHOUTED << 8) | count_class(sh->shouted);
    f[k++] = ((uint64_t)F_BANGS << 8) | count_class(sh->bangs);
    if (sh->currency)
        f[k++] = (uint64_t)F_CURRENCY << 8;
    if (sh->link)
        f[k++] = (uint64_t)F_LINK << 8;
    if (sh->email)
        f[k++] = (uint64_t)F_EMAIL << 8;
    uint32_t out[6 * SHAPE_REPEAT];
    for (size_t i = 0; i < k; i++) {
        uint32_t b = (uint32_t)(((gf_clf_mix64(base ^ f[i]) >> 32) * (uint64_t)hp->buckets) >> 32);
        for (size_t r = 0; r < SHAPE_REPEAT; r++)
            out[i * SHAPE_REPEAT + r] = b;
    }
    fn(ud, out, k * SHAPE_REPEAT);
    return k * SHAPE_REPEAT;
}

size_t gf_clf_shape_features(const struct gf_clf_hash_params *hp, const char *text, size_t len,
                             gf_clf_feature_fn fn, void *ud)
{
    struct gf_clf_shape sh;
    memset(&sh, 0, sizeof(sh));
    gf_clf_shape_scan(text, len, &sh);
    return gf_clf_shape_emit(hp, &sh, fn, ud);
}
