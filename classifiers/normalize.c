/* normalize.c — the canonical form of text against evasion (classifiers.h says what it is).
 * Three passes over one scratch block: fold decodes UTF-8 and writes each character's folded
 * spelling with the original byte span that produced it; join squeezes whitespace and joins
 * spaced-out letters in place; unleet rewrites leetspeak inside words in place. Invariant: no
 * pass writes more bytes than it reads, so the output fits in len bytes and the in-place passes
 * never overwrite bytes they have yet to read. */
#include "classifiers/classifiers.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "classifiers/fold_int.h"
#include "classifiers/runs_int.h"

// The text being rewritten: bytes and, unless NO_MAP, the original span of each byte.
struct form {
    char *t;
    uint32_t *start, *end;
    size_t n;
};

static void emit(struct form *f, size_t *w, char c, uint32_t s, uint32_t e)
{
    f->t[*w] = c;
    if (f->start) {
        f->start[*w] = s;
        f->end[*w] = e;
    }
    (*w)++;
}

// Printable ASCII folds to itself, capitals to lowercase.
static inline char fold_printable(unsigned char c)
{
    return (char)(c + ((unsigned)(c - 'A') < 26u ? 32 : 0));
}

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

// True when the eight bytes of x are all printable ASCII (0x20..0x7E).
static inline bool printable8(uint64_t x)
{
    uint64_t below = (x - ONES * 0x20) & ~x & HIGHS;  // a byte < 0x20
    uint64_t above = ((x + ONES) | x) & HIGHS;        // a byte >= 0x7F
    return (below | above) == 0;
}

// Lowercases A-Z in eight printable ASCII bytes.
static inline uint64_t lower8(uint64_t x)
{
    uint64_t ge_a = x + ONES * (0x80 - 'A');   // high bit set where byte >= 'A'
    uint64_t gt_z = x + ONES * (0x7F - 'Z');   // high bit set where byte > 'Z'
    return x | (((ge_a & ~gt_z) & HIGHS) >> 2);
}

#if defined(__SSE2__)
// Sixteen bytes at a time with SSE2 (every x86-64 CPU); the eight-byte code above elsewhere.
#define U8(c) _mm_set1_epi8((char)(c))

// Bits of the bytes of x in [lo, lo + span], unsigned: x - lo <= span.
static inline __m128i in_range16(__m128i x, unsigned char lo, unsigned char span)
{
    __m128i d = _mm_sub_epi8(x, U8(lo));
    return _mm_cmpeq_epi8(_mm_min_epu8(d, U8(span)), d);
}

/* Folds the printable ASCII at s[*i..] into t[*w..] sixteen bytes at a time, while all sixteen
 * are printable. */
static inline void fold_printable16(const unsigned char *s, size_t len, char *t, size_t *i,
                                    size_t *w)
{
    while (*i + 16 <= len) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + *i));
        // 0x20..0x7E: above 0x1F as a signed byte (0x80.. are negative), and not 0x7F.
        __m128i ok = _mm_andnot_si128(_mm_cmpeq_epi8(x, U8(0x7F)), _mm_cmpgt_epi8(x, U8(0x1F)));
        if (_mm_movemask_epi8(ok) != 0xFFFF)
            return;
        x = _mm_add_epi8(x, _mm_and_si128(in_range16(x, 'A', 25), U8(0x20)));
        _mm_storeu_si128((__m128i *)(void *)(t + *w), x);
        *i += 16;
        *w += 16;
    }
}
#endif

static size_t fold_pass(const unsigned char *s, size_t len, struct form *f)
{
    size_t w = 0;
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        // Fastest path: a run of printable ASCII, the bulk of most texts, one byte each.
        if (c >= 0x20 && c < 0x7F) {
            char *t = f->t;
            if (f->start) {
                uint32_t *st = f->start, *en = f->end;
                uint64_t x;  // eight bytes at a time while all are printable ASCII
                while (i + 8 <= len && (memcpy(&x, s + i, 8), printable8(x))) {
                    x = lower8(x);
                    memcpy(t + w, &x, 8);
                    for (size_t k = 0; k < 8; k++) {
                        st[w + k] = (uint32_t)(i + k);
                        en[w + k] = (uint32_t)(i + k + 1);
                    }
                    w += 8;
                    i += 8;
                }
                if (i >= len || (c = s[i]) < 0x20 || c >= 0x7F)
                    continue;
                do {
                    t[w] = fold_printable(c);
                    st[w] = (uint32_t)i;
                    en[w] = (uint32_t)(i + 1);
                    w++;
                    i++;
                } while (i < len && (c = s[i]) >= 0x20 && c < 0x7F);
            } else {
                uint64_t x;
#if defined(__SSE2__)
                fold_printable16(s, len, t, &i, &w);
#endif
                while (i + 8 <= len && (memcpy(&x, s + i, 8), printable8(x))) {
                    x = lower8(x);
                    memcpy(t + w, &x, 8);
                    w += 8;
                    i += 8;
                }
                if (i >= len || (c = s[i]) < 0x20 || c >= 0x7F)
                    continue;
                do {
                    t[w++] = fold_printable(c);
                    i++;
                } while (i < len && (c = s[i]) >= 0x20 && c < 0x7F);
            }
            continue;
        }
        if (c < 0x80) {  // fast path: ASCII folds to at most one byte
            char o;
            if (c >= 'A' && c <= 'Z')
                o = (char)(c + 32);
            else if (c >= 0x20 && c != 0x7F)
                o = (char)c;
            else if (c >= '\t' && c <= '\r')
                o = ' ';
            else {
                i++;
                continue;
            }
            emit(f, &w, o, (uint32_t)i, (uint32_t)(i + 1));
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = gf_utf8_decode(s + i, len - i, &cp);
        if (n == 0) {  // invalid byte: dropped like an invisible character
            i++;
            continue;
        }
        char tmp[4];
        size_t k = gf_fold_cp(cp, tmp);
        for (size_t j = 0; j < k; j++)
            emit(f, &w, tmp[j], (uint32_t)i, (uint32_t)(i + n));
        i += n;
    }
    return w;
}

// Byte classes of the folded text: C_WORD for word characters (letters, digits, leetspeak
// signs and every non-ASCII byte), C_LETTER for a-z, C_LEET for what unleet rewrites. A table
// because these tests run on every byte, several times.
enum { C_WORD = 1, C_LETTER = 2, C_LEET = 4 };
static const unsigned char byte_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    5, 5, 1, 5, 5, 5, 1, 5, 1, 1, 0, 0, 0, 0, 0, 0,
    5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

static inline bool is_word(unsigned char c)
{
    return byte_class[c] & C_WORD;
}

static size_t char_len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;  // the text is valid UTF-8 here
}

// The length of the run of word bytes at r (C_WORD, eight bytes at a time).
static size_t token_len(const struct form *f, size_t r)
{
    return gf_runs_folded_word_end((const unsigned char *)f->t, r, f->n) - r;
}

static bool is_single(const struct form *f, size_t r)
{
    size_t cl = char_len((unsigned char)f->t[r]);
    return token_len(f, r) == cl;
}

// Copies bytes [r, r+n) to w, keeping their spans (nothing to move while nothing was removed).
static void copy(struct form *f, size_t *w, size_t r, size_t n)
{
    if (*w != r) {  // w < r: the regions may overlap
        memmove(f->t + *w, f->t + r, n);
        if (f->start) {
            memmove(f->start + *w, f->start + r, n * sizeof(*f->start));
            memmove(f->end + *w, f->end + r, n * sizeof(*f->end));
        }
    }
    *w += n;
}

// Copies one gap byte, or a whole run of spaces as one space covering all of them.
static inline size_t copy_gap(struct form *f, size_t *w, size_t r)
{
    if (f->t[r] != ' ') {
        copy(f, w, r, 1);
        return r + 1;
    }
    size_t q = r;
    while (q < f->n && f->t[q] == ' ')
        q++;
    if (q == r + 1) {  // a single space stays as it is
        copy(f, w, r, 1);
        return q;
    }
    uint32_t s = f->start ? f->start[r] : 0, e = f->start ? f->end[q - 1] : 0;
    emit(f, w, ' ', s, e);
    return q;
}

// High bit of each byte of x that is a word byte of the folded text (C_WORD).
static inline uint64_t word8(uint64_t x)
{
    uint64_t low = x & ~HIGHS;
    return (x | gf_runs_in(low, '0', '9') | gf_runs_in(low, 'a', 'z') | gf_runs_eq(x, '$') |
            gf_runs_eq(x, '@')) & HIGHS;
}

/* The first e >= r where join_pass may do anything but copy bytes as they are: a space followed
 * by a space, or the start of a word that may be a single character (an ASCII word byte that
 * no word byte follows, or any non-ASCII word start); f->n when there is none. r is where
 * join_pass stands: never inside a word or a run of spaces. Eight bytes at a time: most words
 * of prose are longer than one character and most spaces are single, so most texts are
 * copied in a few stretches (one memmove each, when something was removed before them). */
static size_t next_event(const struct form *f, size_t r)
{
    const unsigned char *t = (const unsigned char *)f->t;
    size_t n = f->n, i = r;
    uint64_t prev = r > 0 && is_word(t[r - 1]);  // the word bit of byte i - 1
#if defined(__SSE2__)
    // 64 bytes at a time, a bit per byte (bit k for byte i + k).
    for (; i + 64 < n; i += 64) {
        uint64_t w = 0, sp = 0, hi = 0;
        for (int k = 0; k < 4; k++) {
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(t + i + 16 * k));
            __m128i word = _mm_or_si128(_mm_or_si128(in_range16(x, '0', 9), in_range16(x, 'a', 25)),
                                        _mm_or_si128(_mm_cmpeq_epi8(x, U8('$')),
                                                     _mm_cmpeq_epi8(x, U8('@'))));
            unsigned h = (unsigned)_mm_movemask_epi8(x);
            hi |= (uint64_t)h << (16 * k);
            w |= (uint64_t)((unsigned)_mm_movemask_epi8(word) | h) << (16 * k);
            sp |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(x, U8(' '))) << (16 * k);
        }
        uint64_t after = (w >> 1) | (uint64_t)is_word(t[i + 64]) << 63;
        uint64_t start = w & ~((w << 1) | prev);
        uint64_t ev = (start & (hi | ~after)) | (sp & ((sp >> 1) | (uint64_t)(t[i + 64] == ' ') << 63));
        if (ev != 0)
            return i + (size_t)__builtin_ctzll(ev);
        prev = w >> 63;
    }
#endif
    prev = prev ? 0x80 : 0;  // the same bit as the high bit of a byte below
    for (; i + 8 < n; i += 8) {
        uint64_t x = gf_runs_load(t + i), w = word8(x);
        uint64_t sp = gf_runs_eq(x, ' ');
        uint64_t after = (w >> 8) | (is_word(t[i + 8]) ? 0x80ull << 56 : 0);
        uint64_t start = w & ~((w << 8) | prev);
        uint64_t ev = (start & ((x & HIGHS) | ~after)) |
                      (sp & ((sp >> 8) | (t[i + 8] == ' ' ? 0x80ull << 56 : 0)));
        if (ev != 0)
            return i + (size_t)__builtin_ctzll(ev) / 8;
        prev = w >> 56;
    }
    for (; i < n; i++) {
        unsigned char c = t[i];
        bool after = i + 1 < n && is_word(t[i + 1]);
        if (c == ' ' ? i + 1 < n && t[i + 1] == ' '
                     : is_word(c) && (i == 0 || !is_word(t[i - 1])) && (c >= 0x80 || !after))
            return i;
    }
    return n;
}

/* Joins runs of >= 3 single-character words separated by exactly one non-word byte, when one
 * of them is a letter. A run that does not qualify is copied whole, so each byte is looked at
 * a bounded number of times. Stretches where nothing can change are copied at once
 * (next_event); each event is one step of the byte-by-byte walk. */
static size_t join_pass(struct form *f)
{
    size_t w = 0, r = 0;
    while (r < f->n) {
        size_t e = next_event(f, r);
        if (e > r) {
            copy(f, &w, r, e - r);
            r = e;
            if (r >= f->n)
                break;
        }
        unsigned char c = (unsigned char)f->t[r];
        if (!is_word(c)) {
            r = copy_gap(f, &w, r);
            continue;
        }
        size_t tl = token_len(f, r);
        if (tl != char_len(c)) {  // a word of several characters: kept as it is
            copy(f, &w, r, tl);
            r += tl;
            continue;
        }
        size_t q = r, count = 0, last = r;
        bool letter = false;
        for (;;) {
            unsigned char h = (unsigned char)f->t[q];
            count++;
            letter |= (h >= 'a' && h <= 'z');
            last = q + char_len(h);
            if (last + 1 < f->n && !is_word((unsigned char)f->t[last]) &&
                is_word((unsigned char)f->t[last + 1]) && is_single(f, last + 1))
                q = last + 1;
            else
                break;
        }
        bool join = count >= 3 && letter;
        while (r < last) {
            if (is_word((unsigned char)f->t[r])) {
                size_t cl = char_len((unsigned char)f->t[r]);
                copy(f, &w, r, cl);
                r += cl;
            } else if (join) {
                r++;  // the separator between spaced-out letters
            } else {
                r = copy_gap(f, &w, r);
            }
        }
    }
    return w;
}

static unsigned char unleet(unsigned char c)
{
    // 0→o 1→i 3→e 4→a 5→s 7→t @→a $→s; the other bytes stay.
    static const char digits[] = "oi2eas6t89";
    if ((unsigned)(c - '0') < 10u)
        return (unsigned char)digits[c - '0'];
    return c == '@' ? 'a' : c == '$' ? 's' : c;
}

// The bytes of x that may be leet characters ('0'-'9', ':' to '@', '$'; the byte test
// decides), as their high bits.
static inline uint64_t leet_mask8(uint64_t x)
{
    uint64_t low = x & ~HIGHS;                      // sums below cannot carry between bytes
    uint64_t ge0 = low + ONES * (0x80 - '0');       // high bit where byte >= '0'
    uint64_t gt_at = low + ONES * (0x7F - '@');     // high bit where byte > '@'
    uint64_t y = x ^ (ONES * '$');                  // a zero byte where x has '$'
    uint64_t dollar = (y - ONES) & ~y & HIGHS;
    return (ge0 & ~gt_at & ~x & HIGHS) | dollar;
}

// Eight bytes from p, the first in the low byte.
static inline uint64_t load_le(const char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    return x;
}

/* Rewrites leetspeak inside every word that holds at least one ASCII letter. Only words with a
 * leet character can change, so the pass jumps from one such character to the next (eight
 * bytes at a time, straight to the first candidate byte) and looks at the word around it. */
static void unleet_pass(struct form *f)
{
    size_t r = 0, n = f->n;
    const char *t = f->t;
    while (r < n) {
        uint64_t m = 0;
#if defined(__SSE2__)
        for (; r + 16 <= n; r += 16) {  // '0'..'@' and '$', as leet_mask8
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(t + r));
            unsigned b = (unsigned)_mm_movemask_epi8(
                _mm_or_si128(in_range16(x, '0', '@' - '0'), _mm_cmpeq_epi8(x, U8('$'))));
            if (b != 0) {
                r += (size_t)__builtin_ctz(b);
                break;
            }
        }
        if (r < n && !(byte_class[(unsigned char)t[r]] & C_LEET)) {  // as below, without m
            r++;
            continue;
        }
#endif
        while (r + 8 <= n && (m = leet_mask8(load_le(t + r))) == 0)
            r += 8;
        if (m != 0)
            r += (size_t)__builtin_ctzll(m) / 8;
        if (r >= n)
            break;
        if (!(byte_class[(unsigned char)t[r]] & C_LEET)) {
            r++;
            continue;
        }
        // The word around this leet character (words before it are done and end before it).
        size_t a = r, b = r;
        while (a > 0 && is_word((unsigned char)t[a - 1]))
            a--;
        unsigned seen = 0;
        for (; b < n && is_word((unsigned char)t[b]); b++)
            seen |= byte_class[(unsigned char)t[b]];
        for (size_t k = a; k < r; k++)
            seen |= byte_class[(unsigned char)t[k]];
        if ((seen & C_LETTER) && (seen & C_LEET))
            for (size_t k = a; k < b; k++)
                f->t[k] = (char)unleet((unsigned char)f->t[k]);
        r = b;
    }
}

size_t gf_norm_scratch_size(size_t len, unsigned flags)
{
    size_t per = (flags & GF_NORM_NO_MAP) ? 1 : 1 + 2 * sizeof(uint32_t);
    if (len > GF_NORM_MAX_LEN || len > (SIZE_MAX - 1) / per)
        return SIZE_MAX;
    return len * per + 1;
}

int gf_normalize_into(const char *text, size_t len, void *scratch, size_t scratch_size,
                      unsigned flags, struct gf_norm *out)
{
    memset(out, 0, sizeof(*out));
    size_t need = gf_norm_scratch_size(len, flags);
    if (need == SIZE_MAX || scratch == NULL || scratch_size < need)
        return GF_ETOOBIG;
    struct form f = {0};
    if (flags & GF_NORM_NO_MAP) {
        f.t = scratch;
    } else {
        f.start = scratch;
        f.end = f.start + len;
        f.t = (char *)(f.end + len);
    }
    f.n = fold_pass((const unsigned char *)text, len, &f);
    f.n = join_pass(&f);
    unleet_pass(&f);
    f.t[f.n] = '\0';
    out->text = f.t;
    out->len = f.n;
    out->start = f.start;
    out->end = f.end;
    out->orig_len = len;
    return 0;
}

int gf_normalize(const char *text, size_t len, struct gf_norm *out, struct gf_err *err)
{
    memset(out, 0, sizeof(*out));
    size_t need = gf_norm_scratch_size(len, 0);
    if (need == SIZE_MAX)
        return gf_err_set(err, GF_ETOOBIG, "text of %zu bytes is too long to normalize", len);
    void *block = gf_malloc(need);
    if (block == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory normalizing %zu bytes", len);
    int rc = gf_normalize_into(text, len, block, need, 0, out);
    if (rc != 0) {  // cannot happen: the block has the size asked for
        gf_free(block);
        return gf_err_set(err, rc, "normalization failed");
    }
    out->owned = block;
    return 0;
}

void gf_norm_cleanup(struct gf_norm *n)
{
    if (n == NULL)
        return;
    gf_free(n->owned);
    memset(n, 0, sizeof(*n));
}

void gf_norm_buf_init(struct gf_norm_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void gf_norm_buf_cleanup(struct gf_norm_buf *b)
{
    gf_free(b->p);
    gf_free(b->map);
    size_t max = b->max;
    gf_norm_buf_init(b, max);
}

// A block of at least need bytes at *p (capacity *cap), within max; false when it cannot be.
static bool grow(void **p, size_t *cap, size_t need, size_t max)
{
    if (need <= *cap)
        return true;
    if (max && need > max)
        return false;
    size_t c = *cap ? *cap : 4096;
    while (c < need)
        c = c > SIZE_MAX / 2 ? need : c * 2;
    if (max && c > max)
        c = max;
    void *q = gf_malloc(c);  // not realloc: the old contents are not needed
    if (q == NULL)
        return false;
    gf_free(*p);
    *p = q;
    *cap = c;
    return true;
}

int gf_norm_buf_normalize(struct gf_norm_buf *b, const char *text, size_t len, unsigned flags,
                          struct gf_norm *out, struct gf_err *err)
{
    memset(out, 0, sizeof(*out));
    bool lazy = flags & GF_NORM_LAZY_MAP;
    if (lazy)
        flags = GF_NORM_NO_MAP;
    size_t need = gf_norm_scratch_size(len, flags);
    if (need == SIZE_MAX || (b->max && need > b->max))
        return gf_err_set(err, GF_ETOOBIG, "text of %zu bytes is too long to normalize", len);
    if (!grow(&b->p, &b->cap, need, b->max))
        return gf_err_set(err, GF_ENOMEM, "out of memory normalizing %zu bytes", len);
    int rc = gf_normalize_into(text, len, b->p, b->cap, flags, out);
    b->gen++;
    if (rc == 0 && lazy) {
        out->lazy = b;
        out->src = text;
        out->gen = b->gen;
    }
    return rc;
}

bool gf_norm_has_map(const struct gf_norm *n)
{
    return n != NULL && (n->start != NULL || n->lazy != NULL);
}

// The byte map of n, made now if it is lazy; false when it cannot be made.
static bool map_of(const struct gf_norm *n, const uint32_t **start, const uint32_t **end)
{
    *start = n->start;
    *end = n->end;
    if (*start != NULL)
        return true;
    struct gf_norm_buf *b = n->lazy;
    if (b == NULL)
        return false;
    if (b->map_gen != n->gen || b->map_start == NULL) {
        size_t need = gf_norm_scratch_size(n->orig_len, 0);
        struct gf_norm m;
        if (need == SIZE_MAX || !grow(&b->map, &b->map_cap, need, b->max) ||
            gf_normalize_into(n->src, n->orig_len, b->map, b->map_cap, 0, &m) != 0)
            return false;
        b->map_start = m.start;
        b->map_end = m.end;
        b->map_gen = n->gen;
    }
    *start = b->map_start;
    *end = b->map_end;
    return true;
}

void gf_norm_span(const struct gf_norm *n, size_t a, size_t b, size_t *oa, size_t *ob)
{
    if (a >= n->len) {
        *oa = *ob = n->orig_len;
        return;
    }
    const uint32_t *start, *end;
    if (!map_of(n, &start, &end)) {
        *oa = 0;
        *ob = n->orig_len;
        return;
    }
    if (b <= a) {
        *oa = *ob = start[a];
        return;
    }
    *oa = start[a];
    *ob = end[b - 1];
}
