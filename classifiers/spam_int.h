/* spam_int.h — private to classifiers/: the spam heuristics' call-to-action phrases and score,
 * exposed so that the unit tests' byte-at-a-time reference (tests/unit/classifiers/ref_spam.h)
 * checks the features against the very list and formula spam.c uses. */
#ifndef GF_SPAM_INT_H
#define GF_SPAM_INT_H

#include <stddef.h>

/* The phrases in canonical form; *n receives their count. */
const char *const *gf_spam_phrases(size_t *n);
/* The score in (0, 1) of a text's features: link density, repeated word trigrams, capitals,
 * call-to-action phrases and exclamation marks. */
double gf_spam_score_of(size_t words, size_t links, size_t letters, size_t upper, size_t bangs,
                        size_t trigrams, size_t repeats, unsigned cta_count);

#endif
