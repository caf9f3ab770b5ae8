/* clf_test_util.h — helpers several classifier tests share: a seeded generator for random
 * weights and bucket streams, and a feature callback that records the buckets it is given. */
#ifndef GF_CLF_TEST_UTIL_H
#define GF_CLF_TEST_UTIL_H

#include <stdint.h>
#include <string.h>

#include "tests/test.h"

static uint64_t clf_test_rng = 0x9E3779B97F4A7C15ull;

/* xorshift64: the same sequence on every run, so a failure can be replayed. */
static inline uint64_t next(void)
{
    clf_test_rng ^= clf_test_rng << 13;
    clf_test_rng ^= clf_test_rng >> 7;
    clf_test_rng ^= clf_test_rng << 17;
    return clf_test_rng;
}

/* The buckets a text's features gave, in order. Large: give it static storage. */
struct feats {
    uint32_t v[1 << 18];
    size_t n;
};

static inline void record(void *ud, const uint32_t *buckets, size_t n)
{
    struct feats *f = ud;
    REQUIRE(f->n + n <= GF_ARRAY_LEN(f->v));
    memcpy(f->v + f->n, buckets, n * sizeof(uint32_t));
    f->n += n;
}

#endif
