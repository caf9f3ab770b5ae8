/* rx.c — PCRE2 plumbing shared by the pattern detectors: allocation through gf_malloc, compile
 * with precise errors, JIT when available, a match walk with limits, and the per-thread scan
 * scratch. Compiled codes are immutable and shared by threads; match state is per scratch. */
#include "classifiers/rx_int.h"
#include "classifiers/runs_int.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <stdlib.h>
#include <string.h>

static void *rx_malloc(size_t n, void *ud)
{
    (void)ud;
    return gf_malloc(n);
}

static void rx_free(void *p, void *ud)
{
    (void)ud;
    gf_free(p);
}

pcre2_general_context *gf_rx_gctx(void)
{
    return pcre2_general_context_create(rx_malloc, rx_free, NULL);
}

int gf_rx_compile(pcre2_general_context *gctx, const char *pattern, size_t len, uint32_t options,
                  pcre2_code **out, struct gf_err *err)
{
    *out = NULL;
    pcre2_compile_context *cctx = pcre2_compile_context_create(gctx);
    if (cctx == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory compiling a pattern");
    int ec;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, len,
                                     options | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &ec, &off,
                                     cctx);
    pcre2_compile_context_free(cctx);
    if (code == NULL) {
        if (ec == PCRE2_ERROR_NOMEMORY || ec == PCRE2_ERROR_HEAP_FAILED)
            return gf_err_set(err, GF_ENOMEM, "out of memory compiling a pattern");
        PCRE2_UCHAR msg[160];
        if (pcre2_get_error_message(ec, msg, sizeof(msg)) < 0)
            memcpy(msg, "unknown error", sizeof("unknown error"));
        return gf_err_set(err, GF_EINVAL, "PCRE2 error at offset %zu: %s", (size_t)off,
                          (const char *)msg);
    }
    uint32_t jit = 0;
    if (pcre2_config(PCRE2_CONFIG_JIT, &jit) >= 0 && jit)
        (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // on failure the interpreter runs
    *out = code;
    return 0;
}

struct gf_scan_scratch *gf_scan_scratch_new(void)
{
    struct gf_scan_scratch *s = gf_calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->gctx = gf_rx_gctx();
    if (s->gctx == NULL)
        goto fail;
    s->mctx = pcre2_match_context_create(s->gctx);
    s->md = pcre2_match_data_create(GF_RX_PAIRS, s->gctx);
    if (s->mctx == NULL || s->md == NULL)
        goto fail;
    pcre2_set_match_limit(s->mctx, GF_RX_MATCH_LIMIT);
    // The JIT stack (a 512 KiB mapping) is made on the first match: a scratch is created per
    // streamed request, and most never run a pattern (no output rule, or a policy without one).
    return s;
fail:
    gf_scan_scratch_free(s);
    return NULL;
}

void gf_scan_scratch_free(struct gf_scan_scratch *s)
{
    if (s == NULL)
        return;
    pcre2_match_data_free(s->md);
    pcre2_jit_stack_free(s->jit);
    pcre2_match_context_free(s->mctx);
    pcre2_general_context_free(s->gctx);
    gf_free(s);
}

int gf_rx_each(const pcre2_code *code, const char *subj, size_t len,
               struct gf_scan_scratch *s, gf_rx_match_fn fn, void *ud, struct gf_err *err)
{
    uint32_t jit = 0;
    if (s->jit == NULL && pcre2_config(PCRE2_CONFIG_JIT, &jit) >= 0 && jit) {
        s->jit = pcre2_jit_stack_create(32 * 1024, 512 * 1024, s->gctx);
        if (s->jit == NULL)
            return gf_err_set(err, GF_ENOMEM, "out of memory for the pattern matcher");
        pcre2_jit_stack_assign(s->mctx, NULL, s->jit);
    }
    size_t off = 0;
    while (off <= len) {
        int rc = pcre2_match(code, (PCRE2_SPTR)subj, len, off, 0, s->md, s->mctx);
        if (rc == PCRE2_ERROR_NOMATCH)
            return 0;
        if (rc < 0) {
            if (rc == PCRE2_ERROR_NOMEMORY)
                return gf_err_set(err, GF_ENOMEM, "out of memory matching a pattern");
            PCRE2_UCHAR msg[160];
            if (pcre2_get_error_message(rc, msg, sizeof(msg)) < 0)
                memcpy(msg, "unknown error", sizeof("unknown error"));
            return gf_err_set(err, GF_ETOOBIG, "pattern cannot be decided: %s",
                              (const char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
        size_t b = ov[0], e = ov[1];
        if (e > b) {
            int r = fn(ud, b, e, s->md);
            if (r != 0)
                return r;
            off = e;
        } else {  // empty match (or \K trickery): step over one character
            off = (b > off ? b : off) + 1;
            while (off < len && ((unsigned char)subj[off] & 0xC0) == 0x80)
                off++;
        }
    }
    return 0;
}

static int match_error(int rc, struct gf_err *err)
{
    if (rc == PCRE2_ERROR_NOMEMORY)
        return gf_err_set(err, GF_ENOMEM, "out of memory matching a pattern");
    PCRE2_UCHAR msg[160];
    if (pcre2_get_error_message(rc, msg, sizeof(msg)) < 0)
        memcpy(msg, "unknown error", sizeof("unknown error"));
    return gf_err_set(err, GF_ETOOBIG, "pattern cannot be decided: %s", (const char *)msg);
}

int gf_rx_match_at(const pcre2_code *code, const char *subj, size_t len, size_t at,
                   struct gf_scan_scratch *s, size_t *end, struct gf_err *err)
{
    *end = 0;
    int rc = pcre2_match(code, (PCRE2_SPTR)subj, len, at, 0, s->md, s->mctx);
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc < 0)
        return match_error(rc, err);
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(s->md);
    if (ov[0] == at && ov[1] > at)
        *end = ov[1];
    return 0;
}

bool gf_rx_canon_differs(const struct gf_scan *in)
{
    return gf_norm_has_map(in->norm) &&
           (in->norm->len != in->len || memcmp(in->norm->text, in->text, in->len) != 0);
}

int gf_rx_add_hit(struct gf_hits *hits, size_t base, size_t s, size_t e, const char *type,
                  int index, bool canonical, struct gf_err *err)
{
    for (size_t i = base; i < hits->n; i++) {
        const struct gf_hit *h = &hits->v[i];
        if (h->index == index && h->type == type && h->start < e && s < h->end)
            return 0;
    }
    struct gf_hit hit = {s, e, type, 1.0, index, canonical};
    int rc = gf_hits_add(hits, &hit);
    if (rc == GF_ETOOBIG)
        return gf_err_set(err, rc, "too many hits in one text (limit %zu)", hits->max);
    if (rc != 0)
        return gf_err_set(err, rc, "out of memory recording a hit");
    return 0;
}

bool gf_rx_has_literal(const char *s, size_t n, const char *lit, size_t m)
{
    if (m == 0)
        return true;
    const char *p = s, *end = s + n;
    while ((size_t)(end - p) >= m && (p = memchr(p, lit[0], (size_t)(end - p) - m + 1)) != NULL) {
        if (memcmp(p, lit, m) == 0)
            return true;
        p++;
    }
    return false;
}

size_t gf_rx_count_literal(const char *s, size_t n, const char *lit, size_t m)
{
    size_t k = 0;
    const char *p = s, *end = s + n;
    while (m > 0 && (size_t)(end - p) >= m &&
           (p = memchr(p, lit[0], (size_t)(end - p) - m + 1)) != NULL) {
        if (memcmp(p, lit, m) == 0) {
            k++;
            p += m;
        } else {
            p++;
        }
    }
    return k;
}

/* ---- literal sets --------------------------------------------------------------------------- */

static unsigned char lower_ascii(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

// How rare a byte is in text: letters by English frequency, everything else rarer still.
static int rarity(unsigned char c)
{
    static const char by_freq[] = "etaoinshrdlcumwfgypbvkjxqz";
    const char *p = memchr(by_freq, lower_ascii(c), 26);
    return p ? (int)(p - by_freq) : 30;
}

static bool keyset_of(const struct gf_rx_lits *l, bool lower, struct gf_rx_keyset *ks);

bool gf_scan_avx2(void)
{
#if defined(__x86_64__) && defined(GF_CLF_HAVE_SIMD)
    const char *force = getenv("GF_KERNELS");
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && !(force != NULL && strcmp(force, "scalar") == 0);
#else
    return false;
#endif
}

int gf_rx_lits_add(struct gf_rx_lits *l, const char *lit, size_t n, bool bounded)
{
    bool *b = gf_realloc(l->bounded, (l->n + 1) * sizeof(*b));
    if (b == NULL)
        return GF_ENOMEM;
    l->bounded = b;
    b[l->n] = bounded;
    char **v = gf_realloc(l->v, (l->n + 1) * sizeof(*v));
    if (v == NULL)
        return GF_ENOMEM;
    l->v = v;
    size_t *len = gf_realloc(l->len, (l->n + 1) * sizeof(*len));
    if (len == NULL)
        return GF_ENOMEM;
    l->len = len;
    size_t *key = gf_realloc(l->key, (l->n + 1) * sizeof(*key));
    if (key == NULL)
        return GF_ENOMEM;
    l->key = key;
    size_t *pair = gf_realloc(l->pair, (l->n + 1) * sizeof(*pair));
    if (pair == NULL)
        return GF_ENOMEM;
    l->pair = pair;
    char *copy = gf_malloc(n);
    if (copy == NULL)
        return GF_ENOMEM;
    size_t best = 0;
    for (size_t i = 0; i < n; i++) {
        copy[i] = l->caseless ? (char)lower_ascii((unsigned char)lit[i]) : lit[i];
        if (rarity((unsigned char)copy[i]) > rarity((unsigned char)copy[best]))
            best = i;
    }
    size_t two = 0;
    for (size_t i = 1; i + 1 < n; i++)
        if (rarity((unsigned char)copy[i]) + rarity((unsigned char)copy[i + 1]) >
            rarity((unsigned char)copy[two]) + rarity((unsigned char)copy[two + 1]))
            two = i;
    l->v[l->n] = copy;
    l->len[l->n] = n;
    l->pair[l->n] = two;
    l->key[l->n++] = best;
    l->keys[0].ok = keyset_of(l, false, &l->keys[0]);  // made here once, not for every text
    l->keys[1].ok = keyset_of(l, true, &l->keys[1]);
    l->keys[0].avx2 = l->keys[1].avx2 = gf_scan_avx2();
    return 0;
}

// True when lit[0..m) is at t + i (ASCII letters in either case when caseless).
static bool lit_at(const struct gf_rx_lits *l, const unsigned char *t, const char *lit, size_t m)
{
    const unsigned char *q = (const unsigned char *)lit;
    if (!l->caseless)
        return memcmp(t, q, m) == 0;
    for (size_t j = 0; j < m; j++)
        if (lower_ascii(t[j]) != q[j])
            return false;
    return true;
}

static bool ascii_word(unsigned char c)  // [0-9A-Za-z_]
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') || c == '_';
}

// True when literal k is at t[at..] of t[0..n) (it fits there), with its bounds if it has them.
static bool lit_here(const struct gf_rx_lits *l, size_t k, const unsigned char *t, size_t n,
                     size_t at)
{
    size_t m = l->len[k];
    if (!lit_at(l, t + at, l->v[k], m))
        return false;
    return !l->bounded[k] ||
           ((at == 0 || !ascii_word(t[at - 1])) && (at + m == n || !ascii_word(t[at + m])));
}

// Groups l's literals by key; false when there are too many keys or literals.
static bool keyset_of(const struct gf_rx_lits *l, bool lower, struct gf_rx_keyset *ks)
{
    uint8_t slot_of[GF_RX_KEY_LITS], count[GF_RX_KEYS] = {0};
    if (l->n > GF_RX_KEY_LITS)
        return false;
    ks->nk = 0;
    for (size_t k = 0; k < l->n; k++) {
        const unsigned char *v = (const unsigned char *)l->v[k] + l->pair[k];
        bool two = l->len[k] >= 2;
        unsigned char c0 = v[0], c1 = two ? v[1] : 0;
        bool f0 = l->caseless && !lower && c0 >= 'a' && c0 <= 'z';
        bool f1 = l->caseless && !lower && c1 >= 'a' && c1 <= 'z';
        size_t s = 0;
        while (s < ks->nk && !(ks->key[s][0] == c0 && ks->key[s][1] == c1 &&
                               ks->fold[s][0] == f0 && ks->fold[s][1] == f1 && ks->two[s] == two))
            s++;
        if (s == ks->nk) {
            if (ks->nk == GF_RX_KEYS)
                return false;
            ks->key[s][0] = c0;
            ks->key[s][1] = c1;
            ks->fold[s][0] = f0;
            ks->fold[s][1] = f1;
            ks->two[s] = two;
            ks->nk++;
        }
        slot_of[k] = (uint8_t)s;
        count[s]++;
    }
    ks->first[0] = 0;
    for (size_t s = 0; s < ks->nk; s++)
        ks->first[s + 1] = (uint8_t)(ks->first[s] + count[s]);
    uint8_t fill[GF_RX_KEYS];
    memcpy(fill, ks->first, sizeof(fill));
    for (size_t k = 0; k < l->n; k++)
        ks->lit[fill[slot_of[k]]++] = (uint8_t)k;
    memset(ks->keys_at, 0, sizeof(ks->keys_at));
    for (size_t s = 0; s < ks->nk; s++) {
        ks->keys_at[ks->key[s][0]] |= (uint8_t)(1u << s);
        if (ks->fold[s][0])  // a lowercase letter: its capital too
            ks->keys_at[ks->key[s][0] - 32] |= (uint8_t)(1u << s);
    }
    return true;
}

static inline bool key_byte(const struct gf_rx_keyset *ks, size_t s, int b, unsigned char c)
{
    return (ks->fold[s][b] ? (unsigned char)(c | 0x20) : c) == ks->key[s][b];
}

/* Looks at the literals whose key starts at t[j]: with found NULL, true when one is at its
 * place around j; else each one there sets its bit in *found, and true when all have one. */
static bool hit_at(const struct gf_rx_lits *l, const struct gf_rx_keyset *ks,
                   const unsigned char *t, size_t n, size_t j, uint64_t *found)
{
    for (unsigned keys = ks->keys_at[t[j]]; keys != 0; keys &= keys - 1) {
        size_t s = (size_t)__builtin_ctz(keys);
        if (ks->two[s] && (j + 1 >= n || !key_byte(ks, s, 1, t[j + 1])))
            continue;
        for (size_t i = ks->first[s]; i < ks->first[s + 1]; i++) {
            size_t k = ks->lit[i], m = l->len[k], at = l->pair[k];
            if (found != NULL && (*found >> k & 1))
                continue;
            if (j >= at && j - at + m <= n && lit_here(l, k, t, n, j - at)) {
                if (found == NULL)
                    return true;
                *found |= 1ull << k;
            }
        }
    }
    return found != NULL && *found == (l->n == 64 ? ~0ull : (1ull << l->n) - 1);
}

#if defined(__SSE2__)
/* The compare vectors of the keys with a literal still to find (all keys when found is NULL),
 * bytes | low, those starting with an ASCII byte first, and as bytes in *kb; returns how
 * many. */
static size_t live_keys(const struct gf_rx_keyset *ks, const uint64_t *found, __m128i low,
                        __m128i *k0, __m128i *k1, struct gf_rx_keybytes *kb)
{
    size_t na = 0;
    bool all = found == NULL || *found == 0;  // at the start: no literal to look at
    for (int high = 0; high < 2; high++) {
        for (size_t s = 0; s < ks->nk; s++) {
            bool left = all;
            for (size_t i = ks->first[s]; !left && i < ks->first[s + 1]; i++)
                left = !(*found >> ks->lit[i] & 1);
            if (!left || (ks->key[s][0] >= 0x80) != high)
                continue;
            kb->k0[na] = (unsigned char)(ks->key[s][0] | kb->low);
            kb->k1[na] = (unsigned char)(ks->key[s][1] | kb->low);
            k0[na] = _mm_or_si128(_mm_set1_epi8((char)ks->key[s][0]), low);
            k1[na++] = _mm_or_si128(_mm_set1_epi8((char)ks->key[s][1]), low);
        }
        if (!high)
            kb->ascii = na;
    }
    return kb->n = na;
}

/* Bit b set where one of the keys k0/k1 may start at p[b] (p[0..17) readable), bytes | low.
 * The keys starting with a byte >= 0x80 (U+212A, U+017F) are looked at only where the sixteen
 * bytes hold one: in most text, never. The switch unrolls the keys (a loop over them cost as
 * much as the compares). */
static inline unsigned live_mask(const __m128i *k0, const __m128i *k1, size_t ascii, size_t na,
                                 __m128i low, const unsigned char *p)
{
    __m128i raw = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i x = _mm_or_si128(raw, low);
    __m128i y = _mm_or_si128(_mm_loadu_si128((const __m128i *)(const void *)(p + 1)), low);
    __m128i m = _mm_setzero_si128();
#define KEY(s) \
    m = _mm_or_si128(m, _mm_and_si128(_mm_cmpeq_epi8(x, k0[s]), _mm_cmpeq_epi8(y, k1[s])))
    _Static_assert(GF_RX_KEYS == 8, "one case per key");
    switch (ascii) {
    case 8: KEY(7); /* fall through */
    case 7: KEY(6); /* fall through */
    case 6: KEY(5); /* fall through */
    case 5: KEY(4); /* fall through */
    case 4: KEY(3); /* fall through */
    case 3: KEY(2); /* fall through */
    case 2: KEY(1); /* fall through */
    case 1: KEY(0); /* fall through */
    default: break;
    }
    if (ascii < na && _mm_movemask_epi8(raw) != 0)
        for (size_t s = ascii; s < na; s++)
            KEY(s);
#undef KEY
    return (unsigned)_mm_movemask_epi8(m);
}
#endif

/* The keys of all literals at once, eight text bytes at a time: a memchr per literal restarts
 * at every occurrence of its rarest byte, which common letters make a call every few dozen
 * bytes, while two bytes in a row are far rarer. Each place where a key starts (plus rare
 * false alarms of the zero-byte test, which hit_at rejects) is checked against the literals
 * of that key: every occurrence of a literal holds its key, so the answer is the same. */
static bool lits_any_swar(const struct gf_rx_lits *l, const struct gf_rx_keyset *ks,
                          const unsigned char *t, size_t n, uint64_t *found)
{
    size_t i = 0;
#if defined(__SSE2__)
    // Sixteen bytes at a time with SSE2, part of every x86-64 CPU (the SWAR loop below does
    // the rest, and everything on other CPUs).
    bool two = true, fold = false;
    for (size_t s = 0; s < ks->nk; s++) {
        two &= ks->two[s];
        fold |= ks->fold[s][0] || ks->fold[s][1];
    }
    if (two) {
        /* All keys of two bytes (the usual case): when some are caseless, every byte of the
         * text and of the keys gets | 0x20, which lets a few bytes that are not the key through
         * ('_' for 0x7F, say); hit_at checks each place exactly. Four instructions a key.
         * Looking for which literals the text holds, a key is dropped once all its literals
         * are found (a common word is found early, and would be met again and again). */
        __m128i k0[GF_RX_KEYS], k1[GF_RX_KEYS], low = _mm_set1_epi8(fold ? 0x20 : 0);
        struct gf_rx_keybytes kb = {.low = fold ? 0x20 : 0};
        size_t na = live_keys(ks, found, low, k0, k1, &kb);
#if defined(__x86_64__) && defined(GF_CLF_HAVE_SIMD)
        // Thirty-two bytes at a time where the CPU can: a third of the instructions.
        size_t at[128];
        while (ks->avx2 && i + 33 <= n) {
            size_t na_at = gf_rx_keys_find_avx2(&kb, t, &i, n, at, GF_ARRAY_LEN(at));
            for (size_t q = 0; q < na_at; q++) {
                uint64_t before = found != NULL ? *found : 0;
                if (hit_at(l, ks, t, n, at[q], found))
                    return true;
                if (found != NULL && *found != before)
                    na = live_keys(ks, found, low, k0, k1, &kb);
            }
        }
#endif
        unsigned char tail[33];
        for (; i < n; i += 16) {
            const unsigned char *blk = t + i;
            if (i + 17 > n) {  // the last bytes through a copy (hit_at looks at the text itself)
                memset(tail, 0, sizeof(tail));
                memcpy(tail, t + i, n - i);
                blk = tail;
            }
            unsigned bits = live_mask(k0, k1, kb.ascii, na, low, blk);
            if (n - i < 16)
                bits &= (1u << (n - i)) - 1;
            for (; bits != 0; bits &= bits - 1) {
                uint64_t before = found != NULL ? *found : 0;
                if (hit_at(l, ks, t, n, i + (size_t)__builtin_ctz(bits), found))
                    return true;
                if (found != NULL && *found != before)
                    na = live_keys(ks, found, low, k0, k1, &kb);
            }
        }
        return found != NULL && *found != 0;
    }
    // Exact byte compares, no false alarms.
    __m128i k0[GF_RX_KEYS], k1[GF_RX_KEYS], o0[GF_RX_KEYS], o1[GF_RX_KEYS], any1[GF_RX_KEYS];
    for (size_t s = 0; s < ks->nk; s++) {
        k0[s] = _mm_set1_epi8((char)ks->key[s][0]);
        k1[s] = _mm_set1_epi8((char)ks->key[s][1]);
        o0[s] = _mm_set1_epi8(ks->fold[s][0] ? 0x20 : 0);
        o1[s] = _mm_set1_epi8(ks->fold[s][1] ? 0x20 : 0);
        any1[s] = _mm_set1_epi8(ks->two[s] ? 0 : -1);  // a one-byte key: any second byte
    }
    for (; i + 17 <= n; i += 16) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(t + i));
        __m128i y = _mm_loadu_si128((const __m128i *)(const void *)(t + i + 1));
        __m128i m = _mm_setzero_si128();
        for (size_t s = 0; s < ks->nk; s++) {
            __m128i a = _mm_cmpeq_epi8(_mm_or_si128(x, o0[s]), k0[s]);
            __m128i b = _mm_or_si128(_mm_cmpeq_epi8(_mm_or_si128(y, o1[s]), k1[s]), any1[s]);
            m = _mm_or_si128(m, _mm_and_si128(a, b));
        }
        for (unsigned bits = (unsigned)_mm_movemask_epi8(m); bits != 0; bits &= bits - 1)
            if (hit_at(l, ks, t, n, i + (size_t)__builtin_ctz(bits), found))
                return true;
    }
#endif
    for (; i + 9 <= n; i += 8) {
        uint64_t x = gf_runs_load(t + i), xl = x | GF_RUNS_ONES * 0x20;
        uint64_t y = gf_runs_load(t + i + 1), yl = y | GF_RUNS_ONES * 0x20, m = 0;
        for (size_t s = 0; s < ks->nk; s++) {
            // A zero byte's high bit (and rarely one above a zero byte).
            uint64_t a = (ks->fold[s][0] ? xl : x) ^ (GF_RUNS_ONES * ks->key[s][0]);
            uint64_t hit = (a - GF_RUNS_ONES) & ~a;
            if (ks->two[s]) {
                uint64_t b = (ks->fold[s][1] ? yl : y) ^ (GF_RUNS_ONES * ks->key[s][1]);
                hit &= (b - GF_RUNS_ONES) & ~b;
            }
            m |= hit;
        }
        for (m &= GF_RUNS_HIGHS; m != 0; m &= m - 1)
            if (hit_at(l, ks, t, n, i + (size_t)__builtin_ctzll(m) / 8, found))
                return true;
    }
    for (; i < n; i++)
        if (hit_at(l, ks, t, n, i, found))
            return true;
    return found != NULL && *found != 0;
}

// gf_rx_lits_any (found NULL) or gf_rx_lits_which.
static bool scan_lits(const struct gf_rx_lits *l, const char *text, size_t n, bool lower,
                      uint64_t *found)
{
    const unsigned char *t = (const unsigned char *)text;
    const struct gf_rx_keyset *ks = &l->keys[lower];
    if (ks->ok)
        return lits_any_swar(l, ks, t, n, found);
    for (size_t k = 0; k < l->n; k++) {
        size_t m = l->len[k], at = l->key[k];
        if (m > n)
            continue;
        unsigned char c = (unsigned char)l->v[k][at];
        unsigned char variants[2] = {c, c};
        if (l->caseless && !lower && c >= 'a' && c <= 'z')
            variants[1] = (unsigned char)(c - 32);
        for (int u = 0; u < (variants[1] != variants[0] ? 2 : 1); u++) {
            // The key byte sits at [at, n - m + at] for the literal to fit.
            const unsigned char *p = t + at, *last = t + (n - m) + at;
            while (p <= last && (p = memchr(p, variants[u], (size_t)(last - p) + 1)) != NULL) {
                if (lit_here(l, k, t, n, (size_t)(p - at - t))) {
                    if (found == NULL)
                        return true;
                    *found |= 1ull << k;
                    break;
                }
                p++;
            }
        }
    }
    return found != NULL && *found != 0;
}

bool gf_rx_lits_any(const struct gf_rx_lits *l, const char *text, size_t n, bool lower)
{
    return scan_lits(l, text, n, lower, NULL);
}

bool gf_rx_lits_which(const struct gf_rx_lits *l, const char *text, size_t n, bool lower,
                      uint64_t *found)
{
    *found = 0;
    return scan_lits(l, text, n, lower, found);
}

void gf_rx_lits_free(struct gf_rx_lits *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        gf_free(l->v[i]);
    gf_free(l->v);
    gf_free(l->bounded);
    gf_free(l->len);
    gf_free(l->key);
    gf_free(l->pair);
    gf_free(l);
}

/* ---- literal tries -------------------------------------------------------------------------- */

// One unit of a literal: a byte, or a whitespace run (unit value 256).
#define WS_UNIT 256

struct tnode {
    int unit;
    int word;       // index of a word ending here, or -1
    int child;      // first child (index into the node array), or -1
    int sibling;    // next sibling, or -1
};

struct trie {
    struct tnode *v;
    size_t n, cap;
};

static int trie_node(struct trie *t, int unit)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 64;
        struct tnode *v = gf_realloc(t->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        t->v = v;
        t->cap = cap;
    }
    t->v[t->n] = (struct tnode){unit, -1, -1, -1};
    return (int)t->n++;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int trie_add(struct trie *t, const char *w, int index)
{
    int at = 0;
    for (size_t i = 0; w[i];) {
        int unit;
        if (is_space(w[i])) {
            while (is_space(w[i]))
                i++;
            unit = WS_UNIT;
        } else {
            unit = (unsigned char)w[i++];
        }
        int c = t->v[at].child, prev = -1;
        while (c >= 0 && t->v[c].unit != unit) {
            prev = c;
            c = t->v[c].sibling;
        }
        if (c < 0) {
            if ((c = trie_node(t, unit)) < 0)
                return GF_ENOMEM;
            if (prev < 0)
                t->v[at].child = c;
            else
                t->v[prev].sibling = c;
        }
        at = c;
    }
    if (t->v[at].word < 0)
        t->v[at].word = index;
    return 0;
}

static int put_unit(struct gf_buf *b, int unit)
{
    if (unit == WS_UNIT)
        return gf_buf_puts(b, "\\s+");
    unsigned char c = (unsigned char)unit;
    bool plain = c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '_';
    int rc = plain ? 0 : gf_buf_putc(b, '\\');
    return rc ? rc : gf_buf_putc(b, (char)c);
}

// Emits the alternatives below node at (recursion depth is bounded by the longest word).
static int trie_emit(const struct trie *t, int at, struct gf_buf *b)
{
    const struct tnode *nd = &t->v[at];
    int kids = 0;
    for (int c = nd->child; c >= 0; c = t->v[c].sibling)
        kids++;
    int rc = 0;
    if (kids == 0)
        return nd->word >= 0 ? gf_buf_printf(b, "(*MARK:%d)", nd->word) : 0;
    bool group = kids > 1 || nd->word >= 0;
    if (group)
        rc = gf_buf_puts(b, "(?:");
    int k = 0;
    for (int c = nd->child; c >= 0 && rc == 0; c = t->v[c].sibling, k++) {
        if (k)
            rc = gf_buf_putc(b, '|');
        if (rc == 0)
            rc = put_unit(b, t->v[c].unit);
        if (rc == 0)
            rc = trie_emit(t, c, b);
    }
    if (rc == 0 && nd->word >= 0)  // a shorter word ends here: tried after the longer ones
        rc = gf_buf_printf(b, "|(*MARK:%d)", nd->word);
    if (rc == 0 && group)
        rc = gf_buf_putc(b, ')');
    return rc;
}

int gf_rx_literal_trie(struct gf_buf *b, const char *const *words, size_t n)
{
    struct trie t = {0};
    int rc = trie_node(&t, 0) < 0 ? GF_ENOMEM : 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = trie_add(&t, words[i], (int)i);
    if (rc == 0)
        rc = trie_emit(&t, 0, b);
    gf_free(t.v);
    return rc;
}
