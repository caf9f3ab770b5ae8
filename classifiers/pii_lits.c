/* pii_lits.c — the secrets' literal prefilter: which types have one of their literal prefixes
 * (ghp_, AKIA, -----BEGIN, ...) in a text. Every literal holds a key, a byte (or two letters
 * in a row, in either case) that real text seldom holds; the places of all keys are found
 * sixteen bytes at a time, and only there, when the bytes around the key may be those of one
 * of its literals, are its literals compared. Every occurrence of a literal holds its
 * key at the same offset, so the answer is that of a plain search for each literal. */
#include "classifiers/pii_int.h"
#include "classifiers/rx_int.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <string.h>

/* The keys: a literal takes one another literal took already if it holds one, else the first
 * of these it holds. Each is rare in real text (prompts, mail, comments), per 1 KB: '_' 3.9,
 * 'A' 2.8 (capitals followed by capitals 8), 'J' 0.5, 'x' 2.9, 'k' 5.9, 'G' 1.0, "ws" in either
 * case 0.3 (the "aws" of AWS secrets, eight casings from one key), where the literals' commonest
 * bytes ('w' 12, '-' 16, 'e' or 's') were met every few dozen bytes. A literal holding none
 * gets its first byte as a key of its own. Two keys of two bytes would cost as much as the few
 * more places of a rarer byte (one compare instead of two, and an 'and'). */
static const struct gf_pii_key key_defs[] = {
    {"_", 1, false}, {"A", 1, false}, {"J", 1, false}, {"x", 1, false},
    {"k", 1, false}, {"G", 1, false}, {"ws", 2, true},
};

static unsigned char fold_byte(unsigned char c, bool fold)
{
    return fold ? (unsigned char)(c | 0x20) : c;  // keys fold letters only
}

// Where key k sits in lit[0..len), or -1.
static int key_in(const struct gf_pii_key *k, const char *lit, size_t len)
{
    for (size_t q = 0; q + k->len <= len; q++) {
        bool ok = true;
        for (size_t b = 0; b < k->len; b++)
            ok = ok && fold_byte((unsigned char)lit[q + b], k->fold) == (unsigned char)k->b[b];
        if (ok)
            return (int)q;
    }
    return -1;
}

/* Puts key k in a free slot of its kind (unused slots hold NUL keys, which only cost a look at
 * the NULs of a text), and among the keys starting at each byte. */
static void add_key(struct gf_pii_lits *L, size_t k)
{
    const struct gf_pii_key *key = &L->key[k];
    unsigned char c = (unsigned char)key->b[0];
    L->keys_at[c] |= 1ull << k;
    if (key->fold)
        L->keys_at[c & ~0x20u] |= 1ull << k;
    size_t *used = key->len == 1 ? &L->used1 : &L->usedf;
    size_t slots = key->len == 1 ? GF_PII_SLOTS_1 : GF_PII_SLOTS_FOLD;
    if (*used == slots) {
        L->slots_full = true;
        return;
    }
    if (key->len == 1)
        L->slot1[*used] = c;
    else
        memcpy(L->slotf[*used], key->b, 2);
    ++*used;
}

int gf_pii_lits_add(struct gf_pii_lits *L, const char *lit, int type)
{
    size_t len = strlen(lit);
    if (L->n_lits == GF_PII_LITS || len == 0)
        return -1;
    int key = -1, off = -1;
    bool fresh = true;
    for (size_t k = 0; k < L->n_keys && off < 0; k++)
        if ((off = key_in(&L->key[k], lit, len)) >= 0) {
            key = (int)k;
            fresh = false;
        }
    // There are no more keys than literals: one more fits.
    for (size_t d = 0; d < sizeof(key_defs) / sizeof(key_defs[0]) && off < 0; d++) {
        if ((off = key_in(&key_defs[d], lit, len)) >= 0) {
            key = (int)L->n_keys;
            L->key[L->n_keys++] = key_defs[d];
        }
    }
    if (off < 0) {  // its first byte
        key = (int)L->n_keys;
        L->key[L->n_keys++] = (struct gf_pii_key){{lit[0], 0, 0}, 1, false};
        off = 0;
    }
    struct gf_pii_lit l = {lit, (uint16_t)len, (uint8_t)off, (uint8_t)type, (uint8_t)key, 0, 0};
    unsigned char head[8] = {0}, keep[8] = {0};
    for (size_t q = 0; q < len && q < 8; q++) {
        head[q] = (unsigned char)lit[q];
        keep[q] = 0xFF;
    }
    memcpy(&l.head, head, 8);
    memcpy(&l.head_mask, keep, 8);
    // Kept grouped by key: the literals of key k are [first[k], first[k + 1]).
    size_t at = L->n_lits;
    while (at > 0 && L->lit[at - 1].key > l.key)
        at--;
    memmove(&L->lit[at + 1], &L->lit[at], (L->n_lits - at) * sizeof(l));
    L->lit[at] = l;
    L->n_lits++;
    memset(L->first, 0, sizeof(L->first));
    for (size_t i = 0; i < L->n_lits; i++)
        L->first[L->lit[i].key + 1] = (uint8_t)(i + 1);
    for (size_t k = 1; k <= L->n_keys; k++)
        if (L->first[k] < L->first[k - 1])
            L->first[k] = L->first[k - 1];
    L->types |= 1u << type;
    L->key_types[key] |= 1u << type;
    if (fresh)
        add_key(L, (size_t)key);
    L->avx2 = gf_scan_avx2();
    struct gf_pii_near *near = &L->near[key];
    size_t end = (size_t)off + L->key[key].len;
    const unsigned char prev = off > 0 ? (unsigned char)lit[off - 1] : 0;
    const unsigned char next = end < len ? (unsigned char)lit[end] : 0;
    if (off == 0)
        memset(near->before, 0xFF, sizeof(near->before));
    else
        near->before[prev / 64] |= 1ull << (prev % 64);
    if (end == len)
        memset(near->after, 0xFF, sizeof(near->after));
    else
        near->after[next / 64] |= 1ull << (next % 64);
    near->open_before |= off == 0;
    near->open_after |= end == len;
    return 0;
}

// True when key k is at s[j..] of s[0..n).
static bool key_at(const struct gf_pii_key *k, const unsigned char *s, size_t n, size_t j)
{
    return fold_byte(s[j], k->fold) == (unsigned char)k->b[0] &&
           (k->len == 1 || (j + 1 < n && fold_byte(s[j + 1], k->fold) == (unsigned char)k->b[1]));
}

static bool has(const uint64_t set[4], unsigned char c)
{
    return set[c / 64] >> (c % 64) & 1;
}

/* True when the bytes around key k at s[j..] may be those of one of its literals: most places
 * of a key are not ("A " and "At" of prose, '_' of snake_case), and a look at two bytes costs
 * less than comparing the literals. */
static bool near_ok(const struct gf_pii_lits *L, size_t k, const unsigned char *s, size_t n,
                    size_t j)
{
    const struct gf_pii_near *near = &L->near[k];
    size_t e = j + L->key[k].len;
    return (j > 0 ? has(near->before, s[j - 1]) : near->open_before) &&
           (e < n ? has(near->after, s[e]) : near->open_after);
}

// found plus the types of the literals whose key starts at s[j].
static inline uint32_t literals_at(const struct gf_pii_lits *L, const unsigned char *s, size_t n,
                            size_t j, uint32_t found)
{
    for (uint64_t keys = L->keys_at[s[j]]; keys != 0; keys &= keys - 1) {
        size_t k = (size_t)__builtin_ctzll(keys);
        if ((L->key_types[k] & ~found) == 0 || !key_at(&L->key[k], s, n, j) ||
            !near_ok(L, k, s, n, j))
            continue;
        for (size_t i = L->first[k]; i < L->first[k + 1]; i++) {
            const struct gf_pii_lit *l = &L->lit[i];
            if ((found & (1u << l->type)) || j < l->off || l->len > n - (j - l->off))
                continue;
            const unsigned char *t = s + j - l->off;
            if (n - (j - l->off) >= 8) {  // most candidates differ in their first eight bytes
                uint64_t x;
                memcpy(&x, t, 8);
                if ((x & l->head_mask) != l->head)
                    continue;
            }
            if (memcmp(t, l->s, l->len) == 0)
                found |= 1u << l->type;
        }
    }
    return found;
}

#if defined(__SSE2__)
// The slots' keys as compare vectors, made once per text.
struct slots {
    __m128i one[GF_PII_SLOTS_1], fold[GF_PII_SLOTS_FOLD][2];
};

static void slots_of(const struct gf_pii_lits *L, struct slots *v)
{
    for (size_t k = 0; k < GF_PII_SLOTS_1; k++)
        v->one[k] = _mm_set1_epi8((char)L->slot1[k]);
    for (size_t k = 0; k < GF_PII_SLOTS_FOLD; k++)
        for (int b = 0; b < 2; b++)
            v->fold[k][b] = _mm_set1_epi8((char)L->slotf[k][b]);
}

/* Bit b set where a key starts at p[b] (p[0..17) readable): the keys of one byte, and of two
 * letters in either case (the | 0x20 lets no other byte in), each in its slots. A fixed number
 * of slots lets the compiler unroll it all: about 30 instructions per sixteen bytes. */
static inline unsigned keys_mask(const struct slots *v, const unsigned char *p)
{
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i y = _mm_loadu_si128((const __m128i *)(const void *)(p + 1));
    __m128i m = _mm_setzero_si128();
    for (size_t k = 0; k < GF_PII_SLOTS_1; k++)
        m = _mm_or_si128(m, _mm_cmpeq_epi8(x, v->one[k]));
    __m128i low = _mm_set1_epi8(0x20);
    x = _mm_or_si128(x, low);
    y = _mm_or_si128(y, low);
    for (size_t k = 0; k < GF_PII_SLOTS_FOLD; k++)
        m = _mm_or_si128(m, _mm_and_si128(_mm_cmpeq_epi8(x, v->fold[k][0]),
                                          _mm_cmpeq_epi8(y, v->fold[k][1])));
    return (unsigned)_mm_movemask_epi8(m);
}
#endif

uint32_t gf_pii_lits_find(const struct gf_pii_lits *L, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    uint32_t found = 0;
    if (L->n_lits == 0)
        return 0;
#if defined(__SSE2__)
    if (!L->slots_full) {
        size_t i = 0;
#if defined(__x86_64__) && defined(GF_CLF_HAVE_SIMD)
        size_t at[128];  // 32 bytes at a time where the CPU can: a third of the instructions
        while (L->avx2 && i + 33 <= n) {
            size_t na = gf_pii_keys_find_avx2(L, s, &i, n, at, sizeof(at) / sizeof(at[0]));
            for (size_t q = 0; q < na; q++)
                if ((found = literals_at(L, s, n, at[q], found)) == L->types)
                    return found;
        }
#endif
        struct slots v;
        slots_of(L, &v);
        for (; i + 17 <= n; i += 16)
            for (unsigned bits = keys_mask(&v, s + i); bits != 0; bits &= bits - 1)
                if ((found = literals_at(L, s, n, i + (size_t)__builtin_ctz(bits), found)) ==
                    L->types)
                    return found;
        // The last bytes through a copy padded with NULs (no key holds one: literals are strings).
        unsigned char tail[33] = {0};
        memcpy(tail, s + i, n - i);
        unsigned bits = keys_mask(&v, tail) & ((1u << (n - i)) - 1);
        for (; bits != 0; bits &= bits - 1)
            found = literals_at(L, s, n, i + (size_t)__builtin_ctz(bits), found);
        return found;
    }
#endif
    for (size_t j = 0; j < n && found != L->types; j++)  // keys past the slots: at every byte
        found = literals_at(L, s, n, j, found);
    return found;
}
