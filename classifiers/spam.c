/* spam.c — the spam heuristics as a scored detector: link density, repeated word trigrams,
 * shouting (capitals and exclamation marks) and call-to-action phrases, combined by a fixed
 * logistic function into one score in [0, 1] for the whole text. No allocation per scan: the
 * trigram table lives on the stack (sized to the text) and the phrase list is one pattern
 * compiled at build. On the canonical form (lowercase ASCII letters, single spaces) the
 * phrases are matched by a direct scan from word starts that counts exactly what the pattern
 * would: PCRE2 would try the pattern at almost every letter. */
#include "classifiers/rx_int.h"
#include "classifiers/runs_int.h"
#include "classifiers/spam_int.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

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
    uint8_t second[GF_ARRAY_LEN(cta)];    // second byte of phrase first_of[k]
    uint8_t from[129];  // phrases starting with byte b: first_of[from[b]..from[b+1])
    uint64_t first3[128];  // a bit per hash of the first three bytes of some phrase (three_key)
};

struct features {
    size_t words, links, letters, upper, bangs, trigrams, repeats;
    unsigned cta;  // call-to-action phrases seen (counting stops at 8)
};

// Byte classes: B_ALNUM letters, digits and non-ASCII bytes (words of the trigrams), B_WORD the
// \w of the phrase pattern, B_LETTER / B_UPPER ASCII letters / capitals, B_BANG '!'.
enum { B_ALNUM = 1, B_WORD = 2, B_LETTER = 4, B_UPPER = 8, B_BANG = 16 };
static unsigned char byte_class[256];
static unsigned char fold_byte[256];  // how the phrases spell a byte: lowercase, \s as ' '

static void init_classes(void)
{
    for (unsigned c = 0; c < 256; c++) {
        bool lower = c >= 'a' && c <= 'z', upper = c >= 'A' && c <= 'Z', digit = c >= '0' && c <= '9';
        byte_class[c] = (unsigned char)(((lower || upper || digit || c >= 0x80) ? B_ALNUM : 0) |
                                        ((lower || upper || digit || c == '_') ? B_WORD : 0) |
                                        ((lower || upper) ? B_LETTER : 0) | (upper ? B_UPPER : 0) |
                                        (c == '!' ? B_BANG : 0));
        fold_byte[c] = (unsigned char)(upper ? c + 32 : (c == ' ' || (c >= '\t' && c <= '\r')) ? ' ' : c);
    }
}

static bool alnum(unsigned char c)
{
    return byte_class[c] & B_ALNUM;
}

// Links: "://", and at each '.': "www." before it, or a bare domain such as "example.com" or
// "bit.ly/x" that no scheme precedes: an alphanumeric before the dot, then exactly one of the
// top-level domains before a non-alphanumeric. One pass over the dots ('w' is too common a
// letter to look for "www." by its first byte).
static size_t count_links(const char *s, size_t n)
{
    static const char *const tlds[] = {"com", "net", "org", "info", "biz", "ru", "xyz", "top",
                                       "io", "ly", "co", "uk", "click", "online", "site"};
    size_t k = gf_rx_count_literal(s, n, "://", 3);
    for (const char *dot = n > 0 ? memchr(s, '.', n) : NULL; dot != NULL;
         dot = (size_t)(dot + 1 - s) < n ? memchr(dot + 1, '.', n - (size_t)(dot + 1 - s))
                                         : NULL) {
        size_t i = (size_t)(dot - s);
        if (i >= 3 && memcmp(dot - 3, "www", 3) == 0)
            k++;
        if (i == 0 || i + 3 > n || !alnum((unsigned char)s[i - 1]))
            continue;
        // The alphanumeric run after the dot must be a whole top-level domain (2-6 letters).
        size_t m = 0;
        char low[7];
        while (m < 7 && i + 1 + m < n && alnum((unsigned char)s[i + 1 + m])) {
            char c = s[i + 1 + m];
            low[m++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        if (m < 2 || m > 6)
            continue;
        for (size_t t = 0; t < GF_ARRAY_LEN(tlds); t++) {
            if (strlen(tlds[t]) == m && memcmp(low, tlds[t], m) == 0) {
                k++;
                break;
            }
        }
    }
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
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x;
        memcpy(&x, s + i, 8);
        h = mix(h ^ x);
    }
    if (i < n) {
        // The tail's bytes as the low bytes of a number: one masked load when 8 are readable.
        uint64_t x = 0;
        if (avail - i >= 8)
            x = gf_runs_load((const unsigned char *)s + i) & ((1ull << (8 * (n - i))) - 1);
        else
            for (size_t k = 0; i + k < n; k++)
                x |= (uint64_t)(unsigned char)s[i + k] << (8 * k);
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

// 13 bits of the first three bytes of a phrase, as fold_byte spells them.
static unsigned three_key(unsigned b, unsigned c1, unsigned c2)
{
    return (unsigned)(((b << 16 | c1 << 8 | c2) * 0x9E3779B1u) >> 19);
}

/* The end of the longest phrase at p that ends before a non-word byte (what the trie
 * pattern's backtracking picks there), or 0. Most words start no phrase: one bit of a table of
 * the phrases' first three bytes says so before any phrase is looked at (every phrase has
 * three bytes or more, the first two never a space, so the text's bytes p..p+2 spell them). */
static size_t cta_at(const struct spam *sp, const unsigned char *s, size_t n, size_t p)
{
    if (p + 2 >= n)
        return 0;
    unsigned b = fold_byte[s[p]], c1 = fold_byte[s[p + 1]], k = three_key(b, c1, fold_byte[s[p + 2]]);
    if (!(sp->first3[k >> 6] >> (k & 63) & 1) || b >= 128)
        return 0;
    size_t best = 0;
    for (size_t q = sp->from[b]; q < sp->from[b + 1]; q++) {
        if (sp->second[q] != c1)
            continue;
        size_t e = phrase_end(cta[sp->first_of[q]], s, n, p);
        if (e > best)
            best = e;
    }
    return best;
}

// Repeated word trigrams: the hashes of the last three words, a table of the trigrams seen,
// and the counts (locals of scan_words, out of reach of the table's stores).
struct trigrams {
    uint64_t *table;
    size_t slots;
    uint64_t w0, w1, w2;
    size_t words, trigrams, repeats;
};

enum { MAX_SLOTS = 2048, MAX_TRIGRAMS = MAX_SLOTS / 2 };

static inline void add_word(struct trigrams *t, uint64_t hash)
{
    t->words++;
    t->w0 = t->w1;
    t->w1 = t->w2;
    t->w2 = hash;
    if (t->words < 3 || t->trigrams >= MAX_TRIGRAMS)
        return;
    uint64_t h = (t->w0 * 31 + t->w1) * 31 + t->w2;
    h |= 1;  // 0 marks an empty slot
    t->trigrams++;
    for (size_t q = h & (t->slots - 1);; q = (q + 1) & (t->slots - 1)) {
        if (t->table[q] == 0) {
            t->table[q] = h;
            return;
        }
        if (t->table[q] == h) {
            t->repeats++;
            return;
        }
    }
}

/* One pass over the words of the text, 64 bytes at a time by bit masks of byte classes:
 * - the words (runs of ASCII letters, digits and bytes >= 0x80) and the repeated word
 *   trigrams among the first 1024; the table has at least twice as many slots as the text can
 *   have trigrams (words are separated by at least one byte), so it never fills, and a short
 *   text clears a small one;
 * - when phrases, the call-to-action phrases (counting stops at 8): the matches of
 *   (?<!\w)(?:phrases)(?!\w), non-overlapping from the left. Every phrase starts with a
 *   letter or digit, so only starts of \w runs can start one. Exact on canonical text: the only
 *   non-ASCII characters that match ASCII letters caselessly (U+017F, U+212A) are folded to
 *   ASCII there. */
static void scan_words(const struct spam *sp, const char *str, size_t n, bool phrases,
                       struct features *f)
{
    uint64_t table[MAX_SLOTS];
    struct trigrams t = {table, 16, 0, 0, 0, 0, 0, 0};
    while (t.slots < MAX_SLOTS && t.slots < n + 2)
        t.slots *= 2;
    memset(table, 0, t.slots * sizeof(*table));
    const unsigned char *s = (const unsigned char *)str;
    size_t b = 0;                     // start of the word open at the chunk's start
    uint64_t prev_a = 0, prev_w = 0;  // the last byte of the previous chunk: alnum, \w
    size_t from = 0;                  // phrases start at or after the end of the last one
    unsigned seen = phrases ? 0 : 8;
    unsigned char tail[64];
    for (size_t i = 0; i < n; i += 64) {
        const unsigned char *p = s + i;
        if (n - i < 64) {  // zeros after the end: neither alnum nor \w
            memset(tail, 0, sizeof(tail));
            memcpy(tail, p, n - i);
            p = tail;
        }
        struct gf_runs_mask m;
        gf_runs_mask64(p, &m);
        uint64_t a = m.high | m.letter | m.digit, wd = m.letter | m.digit | m.under;
        // Where the class changes: word starts (a set) and ends (a clear).
        for (uint64_t ev = a ^ ((a << 1) | prev_a); ev != 0; ev &= ev - 1) {
            unsigned k = (unsigned)__builtin_ctzll(ev);
            if (a >> k & 1) {
                b = i + k;
                continue;
            }
            add_word(&t, word_hash(str + b, i + k - b, n - b));
        }
        for (uint64_t st = wd & ~((wd << 1) | prev_w); st != 0 && seen < 8; st &= st - 1) {
            size_t at = i + (size_t)__builtin_ctzll(st);
            size_t e = at >= from ? cta_at(sp, s, n, at) : 0;
            if (e > 0) {
                seen++;
                from = e;
            }
        }
        prev_a = a >> 63;
        prev_w = wd >> 63;
    }
    if (prev_a)  // a word runs to the end of a text of whole chunks
        add_word(&t, word_hash(str + b, n - b, n - b));
    f->words = t.words;
    f->trigrams = t.trigrams;
    f->repeats = t.repeats;
    if (phrases)
        f->cta = seen;
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
    // Letters, capitals and '!' by comparisons the compiler vectorizes, in 8-bit counters per
    // block of 255 bytes (a table look-up per byte does not vectorize).
    const unsigned char *t = (const unsigned char *)in->text;
    for (size_t i = 0; i < in->len;) {
        size_t end = in->len - i < 255 ? in->len : i + 255;
        uint8_t letters = 0, upper = 0, bangs = 0;
        for (; i < end; i++) {
            unsigned char c = t[i];
            letters += (unsigned char)((c | 0x20) - 'a') < 26;
            upper += (unsigned char)(c - 'A') < 26;
            bangs += c == '!';
        }
        f.letters += letters;
        f.upper += upper;
        f.bangs += bangs;
    }
    f.links = count_links(in->text, in->len);
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
    for (size_t i = 0; i < GF_ARRAY_LEN(cta); i++)
        if (strlen(cta[i]) < 3 || cta[i][0] == ' ' || cta[i][1] == ' ') {  // a bug in the table
            spam_destroy(&sp->det);
            return gf_err_set(err, GF_EINVAL, "spam phrase \"%s\" is too short", cta[i]);
        }
    for (unsigned b = 0; b < 128; b++) {
        sp->from[b] = (uint8_t)k;
        for (size_t i = 0; i < GF_ARRAY_LEN(cta); i++)
            if ((unsigned char)cta[i][0] == b) {
                const unsigned char *ph = (const unsigned char *)cta[i];
                unsigned key = three_key(ph[0], ph[1], ph[2]);
                sp->second[k] = ph[1];
                sp->first_of[k++] = (uint8_t)i;
                sp->first3[key >> 6] |= 1ull << (key & 63);
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
