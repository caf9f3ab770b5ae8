/* fold_int.h — private to classifiers/: the per-character folding table and the strict UTF-8
 * decoder that the canonical form (normalize.c) and the detectors share. */
#ifndef GF_FOLD_INT_H
#define GF_FOLD_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Writes the folded UTF-8 spelling of cp into out and returns its length (0 when the character
 * is dropped). The length never exceeds the length of cp's own UTF-8 encoding. */
size_t gf_fold_cp(uint32_t cp, char out[4]);

/* Decodes one UTF-8 character from s[0..n) (n >= 1) into *cp and returns its length 1-4, or 0
 * when s does not start with a valid, complete, shortest-form character. */
size_t gf_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

#endif
