/* rx_int.h — private to classifiers/: the PCRE2 plumbing every pattern-based detector shares.
 * All PCRE2 memory goes through gf_malloc/gf_free (so OOM loops reach it); patterns are
 * compiled once, JIT-compiled when the library can, and matched with per-thread scratch. */
#ifndef GF_RX_INT_H
#define GF_RX_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "classifiers/classifiers.h"

/* What the PII census learns about a text (pii.c): the same for every pii detector. */
struct gf_rx_census {
    size_t ats, colons;
    size_t group;    // most digits in a row separated by at most one [ -] each
    size_t dotted;   // most digits in a row separated by at most one '.' each
    bool phone;      // a stretch of [0-9 ().-] of 10 digits, or of 8 right after a '+
    bool iban;       // [A-Z]{2}[0-9]{2} and the rest of an IBAN's shape (pii.c)
    bool ssn;        // [0-9]{3}([- ])[0-9]{2}\1[0-9]{4} between non-digits
};

/* The per-thread scratch behind struct gf_scan_scratch. */
struct gf_scan_scratch {
    // The census of the text (and of its canonical form) named by census_id (gf_scan.id).
    uint64_t census_id;
    bool census_orig, census_canon;
    struct gf_rx_census orig, canon;
    pcre2_general_context *gctx;
    pcre2_match_context *mctx;  // match and depth limits, the JIT stack
    pcre2_jit_stack *jit;
    pcre2_match_data *md;       // GF_RX_PAIRS capture pairs
};

#define GF_RX_PAIRS       4
#define GF_RX_MATCH_LIMIT 2000000u  // guards against catastrophic backtracking (fails closed)

/* A general context whose allocator is gf_malloc/gf_free; NULL when out of memory. */
pcre2_general_context *gf_rx_gctx(void);

/* Compiles pattern with options (PCRE2_UTF and PCRE2_MATCH_INVALID_UTF are always added) and
 * JIT-compiles it when available. On a bad pattern returns GF_EINVAL with err set to
 * "PCRE2 error at offset N: message"; GF_ENOMEM when out of memory. */
int gf_rx_compile(pcre2_general_context *gctx, const char *pattern, size_t len, uint32_t options,
                  pcre2_code **out, struct gf_err *err);

/* Called for each non-empty match [s, e) of gf_rx_each; md holds its captures. A non-zero
 * return stops the walk and is returned by gf_rx_each. */
typedef int (*gf_rx_match_fn)(void *ud, size_t s, size_t e, pcre2_match_data *md);

/* Walks every non-overlapping match of code in subj[0..len). Returns 0, the callback's
 * non-zero code, GF_ENOMEM, or GF_ETOOBIG when the match or stack limit was hit (err says
 * which pattern cannot be decided; callers fail closed). */
int gf_rx_each(const pcre2_code *code, const char *subj, size_t len,
               struct gf_scan_scratch *s, gf_rx_match_fn fn, void *ud, struct gf_err *err);

/* One match attempt of code (compiled with PCRE2_ANCHORED) at offset at of subj[0..len) (the
 * bytes before at are seen by lookbehinds). Sets *end past a non-empty match starting at at, or
 * to 0. Returns 0, GF_ENOMEM, or GF_ETOOBIG when the match limit was hit. */
int gf_rx_match_at(const pcre2_code *code, const char *subj, size_t len, size_t at,
                   struct gf_scan_scratch *s, size_t *end, struct gf_err *err);

/* True when the canonical form of in differs from the original text byte for byte. */
bool gf_rx_canon_differs(const struct gf_scan *in);

/* Adds a hit for the original span [s, e) unless an earlier hit of hits[base..] with the same
 * index already overlaps it (a match found on both forms is reported once). */
int gf_rx_add_hit(struct gf_hits *hits, size_t base, size_t s, size_t e, const char *type,
                  int index, bool canonical, struct gf_err *err);

/* True when s[0..n) contains lit (a short literal): memchr on its first byte, then a compare;
 * faster than memmem for the short, rare literals of prefilters. */
bool gf_rx_has_literal(const char *s, size_t n, const char *lit, size_t m);
/* Number of non-overlapping occurrences of lit in s[0..n). */
size_t gf_rx_count_literal(const char *s, size_t n, const char *lit, size_t m);

/* A set of literals, the keyword detector's prefilter: every keyword match holds each of its
 * whitespace-free pieces verbatim (ASCII letters in either case when caseless), between bytes
 * that are not ASCII word bytes (the pattern's \b-like lookarounds and \s+ put a non-word
 * character or a space there). A few literals are looked for together, eight bytes at a time,
 * by their rarest two bytes in a row (by English letter frequency); many, each with memchr on
 * its rarest byte. */
#define GF_RX_KEYS     8   // past these: one memchr pass per literal
#define GF_RX_KEY_LITS 64

/* The literals grouped by key (made as literals are added, for a text as it is and for a text
 * without capitals): slot s is the byte key[s][0] followed by key[s][1]
 * (only the first when !two[s]: literals of one byte), each compared with the text byte | 0x20
 * when its fold bit is set (an ASCII letter in either case); it holds the literals
 * lit[first[s] .. first[s + 1]). */
struct gf_rx_keyset {
    unsigned char key[GF_RX_KEYS][2];
    bool fold[GF_RX_KEYS][2], two[GF_RX_KEYS];
    size_t nk;
    uint8_t first[GF_RX_KEYS + 1];
    uint8_t lit[GF_RX_KEY_LITS];
    uint8_t keys_at[256];  // bit s: key s starts with this byte
    bool ok;    // false: too many keys or literals
    bool avx2;  // the CPU has AVX2 (and GF_KERNELS does not say "scalar")
};

/* The keys still looked for, as bytes to compare with the text's bytes | low; the first ascii
 * of them start with an ASCII byte. */
struct gf_rx_keybytes {
    unsigned char k0[GF_RX_KEYS], k1[GF_RX_KEYS], low;
    size_t ascii, n;
};

/* True when the searches for literals may use AVX2: the CPU has it, and GF_KERNELS (as for the
 * engine and the classifiers' kernels) does not say "scalar". */
bool gf_scan_avx2(void);

/* From *i, 32 bytes at a time while 33 remain and cap leaves room for 32 more: the places
 * where a key starts (and a few others the | low lets in) into at[], how many returned; *i
 * moves past the bytes looked at. AVX2 (rx_avx2.c). */
size_t gf_rx_keys_find_avx2(const struct gf_rx_keybytes *k, const unsigned char *t, size_t *i,
                            size_t n, size_t *at, size_t cap);

struct gf_rx_lits {
    char **v;        // the literals (owned), lowercase when caseless
    bool *bounded;   // found only with no [0-9A-Za-z_] byte right before and right after it
    size_t *len;
    size_t *key;     // position of the byte memchr looks for
    size_t *pair;    // position of the rarest two bytes in a row (0 for a literal of one byte)
    size_t n;
    bool caseless;   // ASCII letters match in either case (set before adding literals)
    struct gf_rx_keyset keys[2];  // for the text as it is, and for a text without capitals
};

/* The piece of keyword w (NUL-terminated) that its prefilter looks for: a run of bytes other
 * than space, tab, CR, LF, which every match holds verbatim; the longest that is not one of
 * the commonest English words (ASCII case ignored), the longest of all when every piece is
 * one. Sets *len (0 and NULL for a keyword of whitespace only). */
const char *gf_rx_keyword_piece(const char *w, size_t *len);
/* Adds lit[0..n) (n >= 1), bounded or not. GF_ENOMEM. */
int gf_rx_lits_add(struct gf_rx_lits *l, const char *lit, size_t n, bool bounded);
/* True when text[0..n) holds one of the literals (a bounded one between non-word bytes). lower: the text has no ASCII capitals (a
 * canonical form), so caseless literals are looked for in lowercase only. */
bool gf_rx_lits_any(const struct gf_rx_lits *l, const char *text, size_t n, bool lower);
/* For a set of at most 64 literals: sets bit k of *found for each literal k that text[0..n)
 * holds (as gf_rx_lits_any finds them); true when it holds one. */
bool gf_rx_lits_which(const struct gf_rx_lits *l, const char *text, size_t n, bool lower,
                      uint64_t *found);
void gf_rx_lits_free(struct gf_rx_lits *l);

/* Appends to b a regex matching any of the n literals words[i] (escaped; runs of whitespace
 * match \s+), as a trie of alternatives so that PCRE2 tries one branch per position instead of
 * all n, with (*MARK:i) at the end of each word. GF_ETOOBIG, GF_ENOMEM. */
int gf_rx_literal_trie(struct gf_buf *b, const char *const *words, size_t n);

#endif
