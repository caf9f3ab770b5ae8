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
/* The hits of pii detector d as if the census of the text allowed every pattern: what the
 * detector must find with its census. Returns as gf_detector_scan. */
int gf_pii_scan_all(const struct gf_detector *d, const struct gf_scan *in, struct gf_hits *out,
                    struct gf_err *err);

#endif
