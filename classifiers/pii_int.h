/* pii_int.h — private to classifiers/: the validators behind the PII detector and the
 * prefilter of its secrets, exposed for the unit tests. Each validator takes the candidate's
 * bytes as matched (separators included). */
#ifndef GF_PII_INT_H
#define GF_PII_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gf_detector;
struct gf_hits;
struct gf_scan;
struct gf_err;

bool gf_pii_luhn(const char *s, size_t n);          // digits only are summed
bool gf_pii_card_valid(const char *s, size_t n);    // 13-19 digits, known issuer, Luhn
bool gf_pii_iban_valid(const char *s, size_t n);    // country length and mod-97 == 1
bool gf_pii_ssn_valid(const char *s, size_t n);     // AAA-GG-SSSS in issued ranges
bool gf_pii_phone_valid(const char *s, size_t n);   // E.164 with +, or national with separators
bool gf_pii_email_valid(const char *s, size_t n);
bool gf_pii_ipv4_valid(const char *s, size_t n);
bool gf_pii_ipv6_valid(const char *s, size_t n);
bool gf_pii_token_valid(const char *s, size_t n);   // random part mixes letters and digits

#define GF_PII_TYPE_LITERALS 24  // literals of one type at most, NULL included

/* The literals of which a text must hold one for type's pattern to run (NULL-terminated), or
 * NULL when the type has no such prefilter. */
const char *const *gf_pii_literals(int type);
/* The types (bit 1 << type) of pii detector d that have one of their literals in s[0..n). */
uint32_t gf_pii_literal_types(const struct gf_detector *d, const char *s, size_t n);
/* The secrets' literal prefilter (pii_lits.c): literals grouped by their key, a byte or two
 * letters in a row each literal holds at offset off (the letters compared in either case). */
#define GF_PII_LITS 64  // literals of all types together, at most
// Keys of one byte and of two letters in either case searched for sixteen bytes at a time:
// those of the secrets' table (more make a slower search at every byte).
#define GF_PII_SLOTS_1    6
#define GF_PII_SLOTS_FOLD 1

struct gf_pii_key {
    char b[3];  // a string of len bytes
    uint8_t len;
    bool fold;
};

struct gf_pii_lits {
    struct gf_pii_lit {
        const char *s;
        uint16_t len;
        uint8_t off, type, key;
        uint64_t head, head_mask;  // the first (up to) eight bytes, as loaded from memory
    } lit[GF_PII_LITS];
    size_t n_lits;
    struct gf_pii_key key[GF_PII_LITS];
    size_t n_keys;
    uint8_t first[GF_PII_LITS + 1];   // the literals of key k: lit[first[k] .. first[k + 1])
    uint32_t key_types[GF_PII_LITS];  // the types of the literals of each key
    uint32_t types;                   // of all literals
    uint64_t keys_at[256];            // the keys whose first byte may be this one
    // Per key, the bytes right before and after it in its literals; open_*: a literal has none
    // there (and the set holds every byte).
    struct gf_pii_near {
        uint64_t before[4], after[4];
        bool open_before, open_after;
    } near[GF_PII_LITS];
    // The keys by kind in the slots of the sixteen-byte search (all of them unless slots_full).
    unsigned char slot1[GF_PII_SLOTS_1], slotf[GF_PII_SLOTS_FOLD][2];
    size_t used1, usedf;
    bool slots_full;
    bool avx2;  // the CPU has AVX2 (and GF_KERNELS does not say "scalar")
};

// Adds literal lit (kept by reference) of type; -1 when the table is full.
int gf_pii_lits_add(struct gf_pii_lits *l, const char *lit, int type);
// The types that have one of their literals in s[0..n).
uint32_t gf_pii_lits_find(const struct gf_pii_lits *l, const char *s, size_t n);
/* From *i, 32 bytes at a time while 33 remain and cap leaves room for 32 more: the places where
 * a key of the slots starts into at[], how many returned; *i moves past the bytes looked at.
 * AVX2 (pii_lits_avx2.c). */
size_t gf_pii_keys_find_avx2(const struct gf_pii_lits *l, const unsigned char *t, size_t *i,
                             size_t n, size_t *at, size_t cap);

/* The hits of pii detector d as if the census of the text allowed every pattern: what the
 * detector must find with its census. Returns as gf_detector_scan. */
int gf_pii_scan_all(const struct gf_detector *d, const struct gf_scan *in, struct gf_hits *out,
                    struct gf_err *err);

#endif
