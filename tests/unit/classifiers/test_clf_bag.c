/* test_clf_bag.c — the classifier kernels: every embedding-bag kernel the CPU has (scalar,
 * AVX2, AVX-512BW) gives the same integer sums as a plain reference, for widths that are and are
 * not multiples of 16, for long bags (past the int16 partial sums) and for extreme weights;
 * every dense kernel gives the same bits as a plain reference; and the kernel choice honours
 * GF_KERNELS. */
#include "classifiers/clf_int.h"

#include <stdlib.h>

#include "tests/test.h"

#define BUCKETS 300
#define MAXD    160
#define MAXN    2000

static int8_t g_q[BUCKETS * MAXD];
static uint32_t g_b[MAXN];

static void reference(uint32_t dim, size_t n, int32_t *acc)
{
    for (size_t i = 0; i < n; i++)
        for (uint32_t d = 0; d < dim; d++)
            acc[d] += g_q[(size_t)g_b[i] * dim + d];
}

static void check_kernel(const char *name, gf_clf_bag_fn k)
{
    static const uint32_t dims[] = {1, 8, 15, 16, 17, 24, 32, 48, 50, 56, 64, 79, 96, 128, 144, 160};
    static const size_t ns[] = {0, 1, 15, 16, 17, 254, 255, 256, 511, 1000, MAXN};
    uint64_t s = 1234;
    int ok = 1;
    for (int extreme = 0; extreme < 2; extreme++) {
        for (size_t i = 0; i < sizeof(g_q); i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            // extreme: only -128 and 127, so int16 partial sums run close to their limits
            g_q[i] = extreme ? ((s >> 40) & 1 ? 127 : -128) : (int8_t)(s >> 56);
        }
        for (size_t i = 0; i < MAXN; i++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            // extreme: one row again and again
            g_b[i] = extreme ? 7 : (uint32_t)((s >> 33) % BUCKETS);
        }
        for (size_t a = 0; a < GF_ARRAY_LEN(dims); a++)
            for (size_t b = 0; b < GF_ARRAY_LEN(ns); b++) {
                int32_t want[MAXD], got[MAXD];
                for (uint32_t d = 0; d < MAXD; d++)
                    want[d] = got[d] = (int32_t)d - 50;  // kernels add to what is there
                reference(dims[a], ns[b], want);
                k(g_q, dims[a], g_b, ns[b], got);
                if (memcmp(want, got, sizeof(want)) != 0) {
                    ok = 0;
                    fprintf(stderr, "%s: dim %u n %zu extreme %d differs\n", name, dims[a],
                            ns[b], extreme);
                }
            }
    }
    CHECK_MSG(ok, "%s", name);
}

static void test_kernels_equal(void)
{
    const char *names[] = {"scalar", "avx2", "avx512"};
    int tested = 0;
    for (size_t i = 0; i < GF_ARRAY_LEN(names); i++) {
        gf_clf_bag_fn k = gf_clf_bag_kernel_get(names[i]);
        if (k == NULL) {
            fprintf(stderr, "     (%s: not on this CPU)\n", names[i]);
            continue;
        }
        check_kernel(names[i], k);
        tested++;
    }
    CHECK(tested >= 1);
    CHECK(gf_clf_bag_kernel_get("sse9") == NULL);
    CHECK(gf_clf_bag_kernel_get(NULL) != NULL);
}

static void test_dense_equal(void)
{
    static float w[130 * 140], b[140], x[130];
    uint64_t s = 99;
    for (size_t i = 0; i < GF_ARRAY_LEN(w); i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        w[i] = (float)((int64_t)(s >> 40) - (1 << 23)) / (float)(1 << 22);
    }
    for (size_t i = 0; i < GF_ARRAY_LEN(b); i++)
        b[i] = (float)i * 0.37f - 20.0f;
    for (size_t i = 0; i < GF_ARRAY_LEN(x); i++)
        x[i] = (float)((int)(i % 17) - 8) * 0.123f;
    static const uint32_t ins[] = {1, 7, 48, 64, 130};
    static const uint32_t outs[] = {1, 7, 8, 9, 16, 33, 64, 128, 140};
    const char *names[] = {"scalar", "avx2", "avx512"};
    for (size_t k = 0; k < GF_ARRAY_LEN(names); k++) {
        gf_clf_dense_fn fn = gf_clf_dense_kernel_get(names[k]);
        if (fn == NULL)
            continue;
        int ok = 1;
        for (size_t a = 0; a < GF_ARRAY_LEN(ins); a++)
            for (size_t c = 0; c < GF_ARRAY_LEN(outs); c++) {
                float want[140], got[140];
                for (uint32_t o = 0; o < outs[c]; o++) {
                    want[o] = b[o];
                    for (uint32_t i = 0; i < ins[a]; i++) {
                        volatile float p = w[(size_t)i * outs[c] + o] * x[i];  // no fused add
                        want[o] += p;
                    }
                }
                fn(w, b, x, ins[a], outs[c], got);
                ok &= memcmp(want, got, outs[c] * sizeof(float)) == 0;
            }
        CHECK_MSG(ok, "%s", names[k]);
    }
    CHECK(gf_clf_dense_kernel_get("sse9") == NULL);
}

static void test_forced(void)
{
    setenv("GF_KERNELS", "scalar", 1);
    CHECK(gf_clf_bag_kernel_get(NULL) == gf_clf_bag_add_scalar);
    CHECK(gf_clf_dense_kernel_get(NULL) == gf_clf_dense_scalar);
    CHECK_STREQ(gf_clf_bag_kernel_name(), "scalar");
    setenv("GF_KERNELS", "avx2", 1);
    gf_clf_bag_fn avx2 = gf_clf_bag_kernel_get("avx2");
    CHECK(gf_clf_bag_kernel_get(NULL) == (avx2 ? avx2 : gf_clf_bag_add_scalar));
    gf_clf_dense_fn davx2 = gf_clf_dense_kernel_get("avx2");
    CHECK(gf_clf_dense_kernel_get(NULL) == (davx2 ? davx2 : gf_clf_dense_scalar));
    unsetenv("GF_KERNELS");
    gf_clf_dense_fn d512 = gf_clf_dense_kernel_get("avx512");
    CHECK(gf_clf_dense_kernel_get(NULL) == (d512 ? d512 : davx2 ? davx2 : gf_clf_dense_scalar));
}

int main(void)
{
    RUN(test_kernels_equal);
    RUN(test_dense_equal);
    RUN(test_forced);
    return test_report();
}
