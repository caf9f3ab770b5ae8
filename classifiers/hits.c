/* hits.c — the growable, capped list of detector hits. Memory is kept across resets so that a
 * scanner reused for many texts stops allocating once it has seen its largest text. */
#include "classifiers/classifiers.h"

#include <string.h>

void gf_hits_init(struct gf_hits *h, size_t max)
{
    h->v = NULL;
    h->n = h->cap = 0;
    h->max = max;
}

void gf_hits_cleanup(struct gf_hits *h)
{
    gf_free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}

void gf_hits_reset(struct gf_hits *h)
{
    h->n = 0;
}

int gf_hits_add(struct gf_hits *h, const struct gf_hit *hit)
{
    if (h->n >= h->max)
        return GF_ETOOBIG;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        if (cap > h->max)
            cap = h->max;
        struct gf_hit *v = gf_realloc(h->v, cap * sizeof(*v));
        if (v == NULL)
            return GF_ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    h->v[h->n++] = *hit;
    return 0;
}
