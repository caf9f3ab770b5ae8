/* spam_int.h — private to classifiers/: the spam heuristics' call-to-action phrases, exposed
 * so that the unit tests' byte-at-a-time reference (tests/unit/classifiers/ref_spam.h) counts
 * the very list spam.c matches. */
#ifndef GF_SPAM_INT_H
#define GF_SPAM_INT_H

#include <stddef.h>

/* The phrases in canonical form; *n receives their count. */
const char *const *gf_spam_phrases(size_t *n);

#endif
