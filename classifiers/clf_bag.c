/* clf_bag.c — the kernels of the trained classifiers: the embedding bag (adding the int8 rows
 * of a text's features into an integer sum, the inner loop of scoring) and the dense layers.
 * The portable kernels are here; AVX2 and AVX-512BW kernels live in their own files compiled
 * with those instruction sets, and one is chosen at run time after asking the CPU (never
 * -march=native), like the engine's kernels.
 * Invariant: all kernels compute the same integers, so scores do not depend on the CPU. */
#include "classifiers/clf_int.h"

#include <stdlib.h>
#include <string.h>

void gf_clf_bag_add_scalar(const int8_t *q, uint32_t dim, const uint32_t *buckets, size_t n,
                           int32_t *acc)
{
    // Partial sums in int16 (255 rows of |q| <= 128 cannot overflow), which the compiler
    // vectorizes with whatever the baseline has (SSE2, NEON), then widened into acc.
    int16_t part[GF_CLF_MAX_DIM];
    for (size_t i0 = 0; i0 < n; i0 += 255) {
        size_t end = n - i0 < 255 ? n : i0 + 255;
        memset(part, 0, dim * sizeof(int16_t));
        for (size_t i = i0; i < end; i++) {
            if (i + 16 < n)
                __builtin_prefetch(q + (size_t)buckets[i + 16] * dim);
            const int8_t *row = q + (size_t)buckets[i] * dim;
            for (uint32_t d = 0; d < dim; d++)
                part[d] = (int16_t)(part[d] + row[d]);
        }
        for (uint32_t d = 0; d < dim; d++)
            acc[d] += part[d];
    }
}

void gf_clf_dense_scalar(const float *w, const float *b, const float *x, uint32_t n_in,
                         uint32_t n_out, float *out)
{
    uint32_t o0 = 0;
    // Blocks of 16 outputs stay in registers over the whole input.
    for (; o0 + 16 <= n_out; o0 += 16) {
        float z[16];
        memcpy(z, b + o0, sizeof(z));
        for (uint32_t i = 0; i < n_in; i++) {
            const float *wi = w + (size_t)i * n_out + o0;
            const float xi = x[i];
            for (int j = 0; j < 16; j++)
                z[j] += wi[j] * xi;
        }
        memcpy(out + o0, z, sizeof(z));
    }
    if (o0 < n_out) {
        memcpy(out + o0, b + o0, (n_out - o0) * sizeof(float));
        for (uint32_t i = 0; i < n_in; i++) {
            const float *wi = w + (size_t)i * n_out;
            const float xi = x[i];
            for (uint32_t o = o0; o < n_out; o++)
                out[o] += wi[o] * xi;
        }
    }
}

#if defined(__x86_64__) && defined(GF_CLF_HAVE_SIMD)
static bool cpu_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

static bool cpu_avx512(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}
#endif

gf_clf_bag_fn gf_clf_bag_kernel_get(const char *name)
{
    if (name == NULL) {
        // The best the CPU has, unless GF_KERNELS lowers it (scalar|avx2), as for the engine.
        const char *force = getenv("GF_KERNELS");
        gf_clf_bag_fn best = gf_clf_bag_kernel_get("avx512");
        if (best == NULL || (force != NULL && strcmp(force, "avx2") == 0))
            best = gf_clf_bag_kernel_get("avx2");
        if (best == NULL || (force != NULL && strcmp(force, "scalar") == 0))
            best = gf_clf_bag_add_scalar;
        return best;
    }
    if (strcmp(name, "scalar") == 0)
        return gf_clf_bag_add_scalar;
#if defined(__x86_64__) && defined(GF_CLF_HAVE_SIMD)
    if (strcmp(name, "avx2") == 0)
        return cpu_avx2() ? gf_clf_bag_add_avx2 : NULL;
    if (strcmp(name, "avx512") == 0)
        return cpu_avx512() ? gf_clf_bag_add_avx512 : NULL;
#endif
    return NULL;
}

gf_clf_dense_fn gf_clf_dense_kernel_get(const char *name)
{
    if (name == NULL) {
        const char *force = getenv("GF_KERNELS");
        gf_clf_dense_fn best = gf_clf_dense_kernel_get("avx512");
        if (best == NULL || (force != NULL && strcmp(force, "avx2") == 0))
            best = gf_clf_dense_kernel_get("avx2");
        if (best == NULL || (force != NULL && strcmp(force, "scalar") == 0))
            best = gf_clf_dense_scalar;
        return best;
    }
    if (strcmp(name, "scalar") == 0)
        return gf_clf_dense_scalar;
#if defined(__x86_64__) && defined(GF_CLF_HAVE_SIMD)
    if (strcmp(name, "avx2") == 0)
        return cpu_avx2() ? gf_clf_dense_avx2 : NULL;
    if (strcmp(name, "avx512") == 0)
        return cpu_avx512() ? gf_clf_dense_avx512 : NULL;
#endif
    return NULL;
}

const char *gf_clf_bag_kernel_name(void)
{
    gf_clf_bag_fn k = gf_clf_bag_kernel_get(NULL);
#if defined(__x86_64__) && defined(GF_CLF_HAVE_SIMD)
    if (k == gf_clf_bag_add_avx512)
        return "avx512";
    if (k == gf_clf_bag_add_avx2)
        return "avx2";
#endif
    (void)k;
    return "scalar";
}
