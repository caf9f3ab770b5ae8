/* spam.c — the spam heuristics as a scored detector: link density, repeated word trigrams,
 * shouting (capitals and exclamation marks) and call-to-action phrases, combined by a fixed
 * logistic function into one score in [0, 1] for the whole text. No allocation per scan: the
 * trigram table lives on the stack (sized to the words) and the phrase list is one pattern
 * compiled at build. On the canonical form (lowercase ASCII letters, single spaces) the
 * phrases are matched by a direct scan from word starts that counts exactly what the pattern
 * would: PCRE2 would try the pattern at almost every letter. */
#include "classifiers/rx_int.h"
#include "classifiers/runs_int.h"
#include "classifiers/spam_int.h"

#include <math.h>
#include <stdint.h>
#include <pthread.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

// Call-to-action and bait phrases, written in canonical form (they match the canonical text).
static const char *const cta[] = {
    "click here", "click below", "click the link", "click this link", "buy now", "order now",
    "call now", "act now", "apply now", "sign up now", "subscribe now", "limited time",
    "limited offer", "offer expires", "don't miss", "dont miss", "free money", "free gift",
    "free trial", "100% free", "risk free", "risk-free", "no credit check", "earn money",
    "make money", "earn cash", "extra income", "work from home", "you have won", "you won",
    "you've won", "winner", "congratulations", "claim your", "claim now", "prize", "lottery",
    "cash bonus", "double your", "guaranteed", "miracle", "weight loss", "lose weight", "viagra",
    "casino", "investment opportunity", "exclusive deal", "special promotion", "cheap",
    "discount", "unsubscribe", "dm me", "text stop", "reply stop", "urgent", "act fast",
    "once in a lifetime", "best price", "lowest price", "no obligation", "visit our website",
    "call free", "txt", "ringtone", "free entry", "cash prize", "selected to receive", "bonus",
    "reward", "to opt out", "per week", "per min", "save big",
};

const char *const *gf_spam_phrases(size_t *n)
{
    *n = GF_ARRAY_LEN(cta);
    return cta;
}

struct spam {
    struct gf_detector det;
    pcre2_code *cta;
    pcre2_general_context *gctx;
    uint8_t first_of[GF_ARRAY_LEN(cta)];  // phrase indices grouped by first byte
    // The bytes of phrase first_of[k] up to its first space, at most 8 (byte j in bits 8j..):
    // head[k] & head_mask[k], head_len[k] of them.
    uint64_t head[GF_ARRAY_LEN(cta)], head_mask[GF_ARRAY_LEN(cta)];
    uint8_t head_len[GF_ARRAY_LEN(cta)];
    uint8_t from[129];  // phrases starting with byte b: first_of[from[b]..from[b+1])
    uint64_t first3[128];  // a bit per hash of the first three bytes of some phrase (three_key)
};

struct features {
    size_t words, links, letters, upper, bangs, trigrams, repeats;
    unsigned cta;  // call-to-action phrases seen (counting stops at 8)
};

// Byte classes: B_ALNUM letters, digits and non-ASCII bytes (words of the trigrams), B_WORD the
// \w of the phrase pattern.
enum { B_ALNUM = 1, B_WORD = 2 };
static unsigned char byte_class[256];

static void init_classes(void)
{
    for (unsigned c = 0; c < 256; c++) {
        bool letter = (c | 0x20) >= 'a' && (c | 0x20) <= 'z', digit = c >= '0' && c <= '9';
        byte_class[c] = (unsigned char)(((letter || digit || c >= 0x80) ? B_ALNUM : 0) |
                                        ((letter || digit || c == '_') ? B_WORD : 0));
    }
}

static bool alnum(unsigned char c)
{
    return byte_class[c] & B_ALNUM;
}

// Links: "://", and at each '.': "www." before it, or a bare domain such as "example.com" or
// "bit.ly/x" that no scheme precedes: an alphanumeric before the dot, then exactly one of the
// top-level domains before a non-alphanumeric. The links that s[i], a '.' or a ':', marks.
static size_t links_at(const unsigned char *s, size_t n, size_t i)
{
    static const char *const tlds[] = {"com", "net", "org", "info", "biz", "ru", "xyz", "top",
                                       "io", "ly", "co", "uk", "click", "online", "site"};
    if (s[i] == ':')  // "://" cannot overlap itself: each ':' starts at most one
        return i + 2 < n && s[i + 1] == '/' && s[i + 2] == '/';
    size_t k = i >= 3 && memcmp(s + i - 3, "www", 3) == 0;
    if (i == 0 || i + 3 > n || !alnum(s[i - 1]))
        return k;
    // The alphanumeric run after the dot must be a whole top-level domain (2-6 letters).
    size_t m = 0;
    char low[7];
    while (m < 7 && i + 1 + m < n && alnum(s[i + 1 + m])) {
        unsigned char c = s[i + 1 + m];
        low[m++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    if (m < 2 || m > 6)
        return k;
    for (size_t t = 0; t < GF_ARRAY_LEN(tlds); t++)
        if (strlen(tlds[t]) == m && memcmp(low, tlds[t], m) == 0)
            return k + 1;
    return k;
}

// A word's hash, eight bytes at a time (only equal words need equal hashes; a byte-at-a-time
// hash was a chain of one multiply per byte).
static uint64_t mix(uint64_t h)
{
    h *= 0xbf58476d1ce4e5b9ull;
    return h ^ (h >> 31);
}

// The hash of the word s[0..n); avail >= n bytes are readable from s.
static inline uint64_t word_hash(const char *s, size_t n, size_t avail)
{
    const unsigned char *u = (const unsigned char *)s;
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    // Most words: the value of the general case below, by one masked load.
    if (__builtin_expect(n <= 8 && avail >= 8, 1))
        return mix(h ^ (gf_runs_load(u) & (~0ull >> (64 - 8 * n))));
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        h = mix(h ^ gf_runs_load(u + i));
    if (i < n) {
        // The tail's bytes as the low bytes of a number: one masked load when 8 are readable.
        uint64_t x = 0;
        if (avail - i >= 8)
            x = gf_runs_load(u + i) & ((1ull << (8 * (n - i))) - 1);
        else
            for (size_t k = 0; i + k < n; k++)
                x |= (uint64_t)u[i + k] << (8 * k);
        h = mix(h ^ x);
    }
    return h;
}

static bool word_byte(unsigned char c)  // \w of the pattern: ASCII only (no PCRE2_UCP)
{
    return byte_class[c] & B_WORD;
}

static bool space_byte(unsigned char c)  // \s of the pattern
{
    return c == ' ' || (c >= '\t' && c <= '\r');
}

// End of phrase ph matched at s[p..] as the pattern would (a space matches a run of
// whitespace, letters any case, and no word byte may follow), or 0.
static size_t phrase_end(const char *ph, const unsigned char *s, size_t n, size_t p)
{
    for (; *ph; ph++) {
        if (*ph == ' ') {
            if (p >= n || !space_byte(s[p]))
                return 0;
            while (p < n && space_byte(s[p]))
                p++;
            continue;
        }
        if (p >= n || (s[p] >= 'A' && s[p] <= 'Z' ? s[p] + 32 : s[p]) != (unsigned char)*ph)
            return 0;
        p++;
    }
    return p < n && word_byte(s[p]) ? 0 : p;
}

/* 13 bits of three bytes, the first in the low byte. The text's bytes are taken with their
 * 0x20 bit set: one OR folds capitals, and a phrase's bytes all have that bit (checked at
 * build), so a text spelling a phrase's first three bytes gives the phrase's key, or for a
 * third byte ' ' that one of \t..\r | 0x20 (keys set too). Other bytes folded onto a phrase's
 * only cost a look at the phrases. */
static unsigned three_key(uint32_t v)
{
    return (unsigned)(((v & 0xFFFFFF) * 0x9E3779B1u) >> 19);
}

/* The end of the longest phrase at p that ends before a non-word byte (what the trie
 * pattern's backtracking picks there), or 0, for a p whose first three bytes, read as x, may
 * start one: the phrases of the first byte are compared with the text's first bytes, capitals
 * folded, up to their first space; only a phrase that agrees is followed further. */
static size_t cta_phrases(const struct spam *sp, uint64_t x, const unsigned char *s, size_t n,
                          size_t p)
{
    uint64_t fold = x | (gf_runs_in(x & ~GF_RUNS_HIGHS, 'A', 'Z') & ~x) >> 2;
    unsigned b = (x | 0x20) & 0x7F;
    size_t best = 0;
    for (size_t q = sp->from[b]; q < sp->from[b + 1]; q++) {
        if ((fold ^ sp->head[q]) & sp->head_mask[q])
            continue;
        size_t e = phrase_end(cta[sp->first_of[q]] + sp->head_len[q], s, n, p + sp->head_len[q]);
        if (e > best)
            best = e;
    }
    return best;
}

/* cta_phrases at p, where at = s + p, or a copy of s[p..n) with zeros after, has 8 readable
 * bytes (a zero after the end spells no phrase byte; one read with its 0x20 bit is a space,
 * which the phrase's own test then refuses). p is the start of a run of \w bytes, so s[p] | 0x20
 * is its phrase spelling exactly (letters fold, digits stay, '_' starts none). Most words start
 * no phrase: one bit of a table of the phrases' first three bytes says so before any phrase is
 * looked at (every phrase has three bytes or more, the first two never a space). */
static inline size_t cta_at(const struct spam *sp, const unsigned char *at,
                            const unsigned char *s, size_t n, size_t p)
{
    uint64_t x = gf_runs_load(at);
    unsigned k = three_key((uint32_t)x | 0x202020);
    if (!(sp->first3[k >> 6] >> (k & 63) & 1))
        return 0;
    return cta_phrases(sp, x, s, n, p);
}

// Repeated word trigrams are counted among the first MAX_TRIGRAMS.
enum { MAX_TRIGRAMS = 1024, MAX_WORDS = MAX_TRIGRAMS + 2, MAX_SLOTS = 2 * MAX_TRIGRAMS };

/* The trigrams of the words with hashes w[0..kept), 3 <= kept <= MAX_WORDS, that equal an
 * earlier one. The table has at least twice as many slots as there are trigrams, so it never
 * fills; sized by the words rather than the bytes, it is a quarter as large for prose. It is
 * cleared by a loop of stores: memset takes a string instruction from 2 KB on. */
static size_t repeated_trigrams(const uint64_t *w, size_t kept)
{
    uint64_t table[MAX_SLOTS];
    size_t slots = 16;
    while (slots < 2 * (kept - 2))
        slots *= 2;
#if defined(__SSE2__)
    for (size_t q = 0; q < slots; q += 8)
        for (size_t k = 0; k < 8; k += 2)
            _mm_storeu_si128((__m128i *)(void *)(table + q + k), _mm_setzero_si128());
#else
    memset(table, 0, slots * sizeof(*table));
#endif
    size_t repeats = 0, mask = slots - 1;
    for (const uint64_t *z = w + 2; z < w + kept; z++) {
        // (w0 * 31 + w1) * 31 + w2, one multiply less; | 1: 0 marks an empty slot
        uint64_t h = (z[-2] * 961 + z[-1] * 31 + z[0]) | 1;
        for (size_t q = h & mask;; q = (q + 1) & mask) {
            uint64_t t = table[q];
            if (__builtin_expect(t == 0, 1)) {  // most trigrams are new, most slots free
                table[q] = h;
                break;
            }
            if (t == h) {
                repeats++;
                break;
            }
        }
    }
    return repeats;
}

/* Bit k for p[k], k < 64: in a (a word of the trigrams) for an ASCII letter or digit or a
 * byte >= 0x80, in w for a \w byte. With SSE2 (every x86-64 CPU) two masks of sixteen bytes
 * each take a dozen instructions. */
static inline void word_masks(const unsigned char *p, uint64_t *a, uint64_t *w)
{
#if defined(__SSE2__)
    uint64_t am = 0, wm = 0;
    // x + (0x80 - lo), signed, is below -128 + (hi - lo + 1) for x in [lo, hi] only; | 0x20
    // folds the capitals onto a-z.
    const __m128i c20 = _mm_set1_epi8(0x20), to_a = _mm_set1_epi8(0x80 - 'a'),
                  to_0 = _mm_set1_epi8(0x80 - '0'), below_z = _mm_set1_epi8(-128 + 26),
                  below_9 = _mm_set1_epi8(-128 + 10), under = _mm_set1_epi8('_');
    for (int k = 0; k < 4; k++) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * k));
        __m128i l = _mm_cmplt_epi8(_mm_add_epi8(_mm_or_si128(x, c20), to_a), below_z);
        __m128i ld = _mm_or_si128(l, _mm_cmplt_epi8(_mm_add_epi8(x, to_0), below_9));
        am |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_or_si128(ld, x)) << (16 * k);
        wm |= (uint64_t)(unsigned)_mm_movemask_epi8(_mm_or_si128(ld, _mm_cmpeq_epi8(x, under)))
              << (16 * k);
    }
    *a = am;
    *w = wm;
#else
    struct gf_runs_mask m;
    gf_runs_mask64(p, &m);
    *a = m.high | m.letter | m.digit;
    *w = m.letter | m.digit | m.under;
#endif
}

// The call-to-action phrases found so far.
struct phrases {
    size_t from;    // phrases start at or after the end of the last one
    unsigned seen;  // counting stops at 8
};

// The pass over the words of a text: the hashes of its first MAX_WORDS words, and the phrases.
struct pass {
    const struct spam *sp;
    const unsigned char *s;
    size_t n;
    size_t words;
    size_t open;  // start of the word open at the chunk's start
    struct phrases ph;
    uint64_t *hash;
};

// The bits of the chunk at i at or after from: where phrases may start.
static inline uint64_t bits_from(size_t i, size_t from)
{
    return from <= i ? ~0ull : from - i < 64 ? ~0ull << (from - i) : 0;
}

/* A phrase at the start of a \w run, i + k, of the chunk at p (s + i or a copy with zeros
 * after), one of the places look holds: after a phrase, those it covers are dropped, all once
 * the count stops. The state is the caller's local copy (with -fno-strict-aliasing, every
 * store may change what a pointer reaches). */
static inline void phrase_at(const struct pass *ps, struct phrases *ph, uint64_t *look,
                             const unsigned char *p, size_t i, unsigned k)
{
    size_t e = cta_at(ps->sp, p + k, ps->s, ps->n, i + k);
    if (e > 0) {
        ph->from = e;
        *look &= ++ph->seen < 8 ? bits_from(i, e) : 0;
    }
}

/* Takes the words that end in the chunk of the text at i (read at p): the starts and ends of
 * runs (bits), alternating, the first end that of the open word when one is. The phrases that
 * start at the starts in look go with them (one pass over the starts instead of two). fast: the
 * chunk ends 8 bytes or more before the text and the chunk's words all fit in ps->hash, so
 * neither needs a test per word. */
static inline void chunk_words(struct pass *ps, const unsigned char *p, size_t i, bool open,
                               uint64_t starts, uint64_t ends, uint64_t look, bool fast)
{
    // A start at the chunk's last byte stands for "none left" too: taken past the last end, it
    // is used only if that byte is in a word, and then it is that word's start or after it.
    starts |= 1ull << 63;
    size_t b = ps->open, k = ps->words, n = ps->n;
    struct phrases ph = ps->ph;
    const char *str = (const char *)ps->s;
    uint64_t *hash = ps->hash;
    if (!open) {
        unsigned j = (unsigned)__builtin_ctzll(starts);
        b = i + j;
        starts &= starts - 1;
        if (look >> j & 1)
            phrase_at(ps, &ph, &look, p, i, j);
    }
    for (; ends != 0; ends &= ends - 1) {
        size_t e = i + (unsigned)__builtin_ctzll(ends);
        if (fast)  // 8 bytes readable from every block of the word
            hash[k] = word_hash(str + b, e - b, SIZE_MAX);
        else if (k < MAX_WORDS)
            hash[k] = word_hash(str + b, e - b, n - b);
        k++;
        unsigned j = (unsigned)__builtin_ctzll(starts);
        b = i + j;
        starts &= starts - 1;
        if (look >> j & 1)
            phrase_at(ps, &ph, &look, p, i, j);
    }
    ps->words = k;
    ps->open = b;
    ps->ph = ph;
}

/* One pass over the words of the text, 64 bytes at a time by bit masks of byte classes:
 * - the words (runs of ASCII letters, digits and bytes >= 0x80) and the hashes of the first
 *   MAX_WORDS, for the repeated trigrams; past them only the ends are counted;
 * - when phrases, the call-to-action phrases (counting stops at 8): the matches of
 *   (?<!\w)(?:phrases)(?!\w), non-overlapping from the left. Every phrase starts with a
 *   letter or digit, so only starts of \w runs can start one; those are nearly always starts
 *   of words too, looked at with them. Exact on canonical text: the only non-ASCII characters
 *   that match ASCII letters caselessly (U+017F, U+212A) are folded to ASCII there. */
static void scan_words(const struct spam *sp, const char *str, size_t n, bool phrases,
                       struct features *f)
{
    uint64_t hash[MAX_WORDS];
    struct pass ps;
    ps.hash = hash;
    ps.sp = sp;
    ps.s = (const unsigned char *)str;
    ps.n = n;
    ps.words = ps.open = 0;
    ps.ph.from = 0;
    ps.ph.seen = phrases ? 0 : 8;
    uint64_t prev_a = 0, prev_w = 0;  // the last byte of the previous chunk: alnum, \w
    unsigned char tail[64 + 8];  // the last < 72 bytes; 8 readable from each of the first 64
    for (size_t i = 0; i < n; i += 64) {
        const unsigned char *p = ps.s + i;
        bool far = n - i >= 64 + 8;
        if (!far) {  // zeros after the end: neither alnum nor \w
            memset(tail, 0, sizeof(tail));
            memcpy(tail, p, n - i);
            p = tail;
        }
        uint64_t a, wd;
        word_masks(p, &a, &wd);
        uint64_t before = (a << 1) | prev_a, starts = a & ~before, ends = before & ~a;
        uint64_t look = ps.ph.seen < 8 ? wd & ~((wd << 1) | prev_w) & bits_from(i, ps.ph.from) : 0;
        if (ps.words >= MAX_WORDS) {
            ps.words += gf_runs_popcount64(ends);
        } else if (far && ps.words + 32 <= MAX_WORDS && (look & ~starts) == 0) {
            chunk_words(&ps, p, i, prev_a, starts, ends, look, true);  // a chunk ends <= 32 words
            look = 0;
        } else {
            chunk_words(&ps, p, i, prev_a, starts, ends, 0, false);
        }
        while (look != 0) {
            unsigned k = (unsigned)__builtin_ctzll(look);
            look &= look - 1;
            phrase_at(&ps, &ps.ph, &look, p, i, k);
        }
        prev_a = a >> 63;
        prev_w = wd >> 63;
    }
    if (prev_a) {  // a word runs to the end of a text of whole chunks
        if (ps.words < MAX_WORDS)
            ps.hash[ps.words] = word_hash(str + ps.open, n - ps.open, n - ps.open);
        ps.words++;
    }
    size_t kept = ps.words < MAX_WORDS ? ps.words : MAX_WORDS;
    f->words = ps.words;
    f->trigrams = kept > 2 ? kept - 2 : 0;
    f->repeats = kept > 2 ? repeated_trigrams(ps.hash, kept) : 0;
    if (phrases)
        f->cta = ps.ph.seen;
}

static int on_cta(void *ud, size_t s, size_t e, pcre2_match_data *md)
{
    (void)s;
    (void)e;
    (void)md;
    unsigned *seen = ud;
    (*seen)++;
    return *seen >= 8;  // enough evidence; stop early
}

/* Letters, capitals, '!' and links of s[0..n), in one pass: sixteen bytes at a time with SSE2
 * (every x86-64 CPU), letters and capitals in 8-bit counters per lane summed every 255 steps;
 * the rarer '!', '.' and ':' found on the way are looked at one by one (a search per dot cost
 * more than the pass). The rest by comparisons the compiler vectorizes (a table look-up per
 * byte does not). */
static void count_text(const unsigned char *s, size_t n, struct features *f)
{
    size_t i = 0;
#if defined(__SSE2__)
    const __m128i zero = _mm_setzero_si128();
    // x + (0x80 - lo), signed, is below -128 + 26 for x in [lo, lo + 25] only; | 0x20 folds the
    // capitals onto a-z.
    const __m128i c20 = _mm_set1_epi8(0x20), to_a = _mm_set1_epi8(0x80 - 'a'),
                  to_A = _mm_set1_epi8(0x80 - 'A'), below = _mm_set1_epi8(-128 + 26);
    const __m128i bang = _mm_set1_epi8('!'), dot = _mm_set1_epi8('.'), colon = _mm_set1_epi8(':');
    while (n - i >= 16) {
        size_t end = i + 16 * ((n - i) / 16 < 255 ? (n - i) / 16 : 255);
        __m128i letters = zero, upper = zero;  // minus the counts
        for (; i < end; i += 16) {
            __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            __m128i l = _mm_cmplt_epi8(_mm_add_epi8(_mm_or_si128(x, c20), to_a), below);
            __m128i u = _mm_cmplt_epi8(_mm_add_epi8(x, to_A), below);
            letters = _mm_add_epi8(letters, l);  // a match is -1
            upper = _mm_add_epi8(upper, u);
            __m128i marks = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(x, bang),
                                                      _mm_cmpeq_epi8(x, dot)),
                                         _mm_cmpeq_epi8(x, colon));
            for (unsigned m = (unsigned)_mm_movemask_epi8(marks); m != 0; m &= m - 1) {
                size_t j = i + (unsigned)__builtin_ctz(m);
                if (s[j] == '!')
                    f->bangs++;
                else
                    f->links += links_at(s, n, j);
            }
        }
        __m128i sl = _mm_sad_epu8(_mm_sub_epi8(zero, letters), zero),
                su = _mm_sad_epu8(_mm_sub_epi8(zero, upper), zero);
        f->letters += (size_t)_mm_cvtsi128_si32(sl) + (size_t)_mm_extract_epi16(sl, 4);
        f->upper += (size_t)_mm_cvtsi128_si32(su) + (size_t)_mm_extract_epi16(su, 4);
    }
#endif
    while (i < n) {
        size_t end = n - i < 255 ? n : i + 255;
        uint8_t letters = 0, upper = 0, bangs = 0;
        for (size_t k = i; k < end; k++) {
            unsigned char c = s[k];
            letters += (unsigned char)((c | 0x20) - 'a') < 26;
            upper += (unsigned char)(c - 'A') < 26;
            bangs += c == '!';
        }
        for (; i < end; i++)
            if (s[i] == '.' || s[i] == ':')
                f->links += links_at(s, n, i);
        f->letters += letters;
        f->upper += upper;
        f->bangs += bangs;
    }
}

double gf_spam_score_of(size_t words, size_t links, size_t letters, size_t upper, size_t bangs,
                        size_t trigrams, size_t repeats, unsigned cta_count)
{
    double density = words ? (double)links / (double)words : 0;
    double repeat = trigrams >= 4 ? (double)repeats / (double)trigrams : 0;
    double caps = letters >= 12 ? (double)upper / (double)letters : 0;
    double z = -4.0;
    z += 3.0 * fmin(density * 5.0, 1.5);
    z += 4.0 * repeat;
    z += caps > 0.3 ? 3.0 * (caps - 0.3) / 0.7 : 0;
    z += 1.3 * fmin((double)cta_count, 4.0);
    z += 0.4 * fmin((double)bangs, 5.0);
    return 1.0 / (1.0 + exp(-z));
}

static int spam_scan(const struct gf_detector *d, const struct gf_scan *in, struct gf_hits *out,
                     struct gf_err *err)
{
    const struct spam *sp = d->impl;
    if (in->len == 0)
        return 0;
    struct features f = {0};
    count_text((const unsigned char *)in->text, in->len, &f);
    const char *canon = in->norm ? in->norm->text : in->text;
    size_t clen = in->norm ? in->norm->len : in->len;
    scan_words(sp, canon, clen, in->norm != NULL, &f);
    int rc = 0;
    if (in->norm == NULL &&
        (rc = gf_rx_each(sp->cta, canon, clen, in->scratch, on_cta, &f.cta, err)) < 0)
        return rc;
    double score = gf_spam_score_of(f.words, f.links, f.letters, f.upper, f.bangs, f.trigrams,
                                    f.repeats, f.cta);
    struct gf_hit hit = {0, in->len, "spam", score, -1, false};
    rc = gf_hits_add(out, &hit);
    if (rc != 0)
        return gf_err_set(err, rc, "cannot record the spam score");
    return 0;
}

static void spam_destroy(struct gf_detector *d)
{
    struct spam *sp = d->impl;
    pcre2_code_free(sp->cta);
    pcre2_general_context_free(sp->gctx);
    gf_free(sp);
}

static const struct gf_detector_ops spam_ops = {"spam", spam_scan, spam_destroy};

int gf_spam_new(struct gf_detector **out, struct gf_err *err)
{
    *out = NULL;
    struct spam *sp = gf_calloc(1, sizeof(*sp));
    if (sp == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory building the spam detector");
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, init_classes);
    sp->det.ops = &spam_ops;
    sp->det.impl = sp;
    size_t k = 0;  // the phrases by first byte, for cta_at
    for (size_t i = 0; i < GF_ARRAY_LEN(cta); i++) {  // a bug in the table otherwise
        bool folded = true;  // cta_at looks at the text's bytes | 0x20
        for (const char *c = cta[i]; *c; c++)
            folded = folded && (unsigned char)*c < 0x80 && (*c | 0x20) == *c;
        if (strlen(cta[i]) < 3 || cta[i][0] == ' ' || cta[i][1] == ' ' || !folded) {
            spam_destroy(&sp->det);
            return gf_err_set(err, GF_EINVAL, "spam phrase \"%s\" is too short or not folded",
                              cta[i]);
        }
    }
    for (unsigned b = 0; b < 128; b++) {
        sp->from[b] = (uint8_t)k;
        for (size_t i = 0; i < GF_ARRAY_LEN(cta); i++)
            if ((unsigned char)cta[i][0] == b) {
                const unsigned char *ph = (const unsigned char *)cta[i];
                size_t m = 0;
                for (; m < 8 && ph[m] != '\0' && ph[m] != ' '; m++) {
                    sp->head[k] |= (uint64_t)ph[m] << (8 * m);
                    sp->head_mask[k] |= 0xFFull << (8 * m);
                }
                sp->head_len[k] = (uint8_t)m;
                sp->first_of[k++] = (uint8_t)i;
                for (unsigned c2 = 0; c2 < 128; c2++) {  // ph[2], or what \s | 0x20 gives
                    bool space = ph[2] == ' ' && c2 >= ('\t' | 0x20) && c2 <= ('\r' | 0x20);
                    if (c2 != ph[2] && !space)
                        continue;
                    unsigned key = three_key(ph[0] | ph[1] << 8 | c2 << 16);
                    sp->first3[key >> 6] |= 1ull << (key & 63);
                }
            }
    }
    sp->from[128] = (uint8_t)k;
    struct gf_buf b;
    gf_buf_init(&b, 1 << 16);
    int rc = gf_buf_puts(&b, "(?<!\\w)(?:");
    if (rc == 0)
        rc = gf_rx_literal_trie(&b, cta, GF_ARRAY_LEN(cta));
    if (rc == 0)
        rc = gf_buf_puts(&b, ")(?!\\w)");
    sp->gctx = gf_rx_gctx();
    if (rc != 0 || sp->gctx == NULL)
        rc = gf_err_set(err, GF_ENOMEM, "out of memory building the spam detector");
    else
        rc = gf_rx_compile(sp->gctx, b.data, b.len, PCRE2_CASELESS, &sp->cta, err);
    gf_buf_cleanup(&b);
    if (rc != 0) {
        spam_destroy(&sp->det);
        return rc;
    }
    *out = &sp->det;
    return 0;
}
