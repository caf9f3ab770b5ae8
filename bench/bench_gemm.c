/* bench_gemm.c — the engine's matrix products alone, on the shapes of the benchmark models, as
 * a share of the core's multiply-add peak:
 *   - F32 prompt products (stories110M: 768 x 768, 2048 x 768, 768 x 2048, 32000 x 768, with
 *     P tokens): the AVX-512 kernel (transposing the activations included) against OpenBLAS
 *     sgemm on one thread, which prompts used before;
 *   - regrouped Q4_0 and Q8_0 products of decode steps (TinyLlama: 2048 x 2048, 5632 x 2048,
 *     2048 x 5632, 32000 x 2048) with 1 and with 8 tokens: 8 x time(1) / time(8) bounds what 8
 *     sequences decoded together can gain over one; once on 2 MiB pages, as the engine holds
 *     them (gf_malloc_huge), and once on ordinary 4 KiB pages.
 * Weights come from memory, as in a prompt or a step: each repetition takes another copy of
 * the matrix, the copies together larger than the L3 cache. Median of REPS by thread CPU time.
 * usage: bench_gemm [REPS] [P] */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "bench/cpu_peak.h"
#include "bench/median.h"
#include "common/common.h"
#include "engine/gemm_int.h"

#define COPY_BYTES ((size_t)96 << 20)  // the copies of a matrix together: past any L3 here

static float frand(void)
{
    return (float)rand() / (float)RAND_MAX - 0.5f;
}

/* n copies of a matrix of `bytes`, n large enough that cycling through them misses the caches. */
static int copies(size_t bytes)
{
    size_t n = COPY_BYTES / bytes + 1;
    return n < 2 ? 2 : n > 64 ? 64 : (int)n;
}

static void bench_f32(const struct gf_gemm *g, int reps, int T, double peak)
{
    const int shapes[][2] = {{768, 768}, {2048, 768}, {768, 2048}, {32000, 768}};
    printf("F32 prompt products, %d tokens, GFLOP/s per core (%% of peak):\n", T);
    printf("%6s %5s %16s %16s\n", "rows", "cols", "engine kernel", "OpenBLAS sgemm");
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        int R = shapes[s][0], K = shapes[s][1], ldt = (T + 15) / 16 * 16;
        size_t per = (size_t)R * K;
        int nc = copies(per * sizeof(float));
        float *w = gf_mallocarray(per * (size_t)nc, sizeof(float));
        float *x = gf_mallocarray((size_t)T * K, sizeof(float));
        float *xt = gf_mallocarray((size_t)K * ldt, sizeof(float));
        float *y = gf_mallocarray((size_t)T * R, sizeof(float));
        if (w == NULL || x == NULL || xt == NULL || y == NULL) {
            fprintf(stderr, "bench_gemm: out of memory\n");
            exit(1);
        }
        for (size_t i = 0; i < per; i++)
            w[i] = frand();
        for (int c = 1; c < nc; c++)
            memcpy(w + per * (size_t)c, w, per * sizeof(float));
        for (size_t i = 0; i < (size_t)T * K; i++)
            x[i] = frand();
        double a[32], b[32], flop = 2.0 * R * K * T;
        for (int r = 0; r < reps; r++) {
            const float *wr = w + per * (size_t)(r % nc);
            double t0 = gf_thread_s();
            if (g != NULL) {
                g->f32_pack(x, (size_t)K, T, K, xt, (size_t)ldt);
                g->f32(xt, T, ldt, wr, (size_t)K, R, K, y, (size_t)R);
            }
            double t1 = gf_thread_s();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, R, K, 1.0f, x, K,
                        w + per * (size_t)((r + nc / 2) % nc), K, 0.0f, y, R);
            double t2 = gf_thread_s();
            a[r] = flop / (t1 - t0) / 1e9;
            b[r] = flop / (t2 - t1) / 1e9;
        }
        double ma = g != NULL ? gf_bench_median(a, reps) : 0, mb = gf_bench_median(b, reps);
        printf("%6d %5d %9.1f (%3.0f%%) %9.1f (%3.0f%%)\n", R, K, ma, 100 * ma / peak, mb,
               100 * mb / peak);
        gf_free(w);
        gf_free(x);
        gf_free(xt);
        gf_free(y);
    }
}

/* Random blocks of a type, then regrouped by 16 rows as the engine does at load time. */
static uint8_t *regrouped(int type, int R, int nb, size_t *bytes)
{
    size_t bs = type == GF_WT_Q8_0 ? sizeof(struct gf_block_q8) : sizeof(struct gf_block_q4);
    size_t row_bytes = (size_t)nb * bs;
    *bytes = (size_t)R * row_bytes;
    uint8_t *rows = gf_malloc(*bytes), *out = gf_malloc(*bytes);
    if (rows == NULL || out == NULL) {
        fprintf(stderr, "bench_gemm: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < *bytes; i++)
        rows[i] = (uint8_t)rand();
    for (size_t b = 0; b < (size_t)R * nb; b++) {
        uint16_t d = gf_f2h(0.01f * (float)rand() / (float)RAND_MAX);
        memcpy(rows + b * bs, &d, sizeof(d));  // the scale leads both block types
    }
    gf_gemm_regroup(type, rows, row_bytes, R, nb, out);
    gf_free(rows);
    return out;
}

static void bench_x16(const struct gf_gemm *g, int reps, int type, bool huge)
{
    const int shapes[][2] = {{2048, 2048}, {5632, 2048}, {2048, 5632}, {32000, 2048}};
    printf("%s decode products (regrouped, %s pages), ns per block of 16 rows x 32 columns:\n",
           type == GF_WT_Q8_0 ? "Q8_0" : "Q4_0", huge ? "2 MiB" : "4 KiB");
    printf("%6s %5s %9s %9s %15s\n", "rows", "cols", "1 token", "8 tokens", "8 x t1 / t8");
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        int R = shapes[s][0], K = shapes[s][1], nb = K / GF_QK;
        size_t bytes;
        uint8_t *one = regrouped(type, R, nb, &bytes);
        int nc = copies(bytes);
        size_t wx_bytes = (size_t)nc * bytes;
        uint8_t *wx = huge ? gf_malloc_huge(wx_bytes) : gf_malloc(wx_bytes);
        struct gf_block_q8 *xq = gf_mallocarray((size_t)8 * nb, sizeof(*xq));
        uint8_t *xp = gf_mallocarray((size_t)8 * nb, GF_GEMM_XREC);
        float *y = gf_mallocarray((size_t)8 * R, sizeof(float));
        if (wx == NULL || xq == NULL || xp == NULL || y == NULL) {
            fprintf(stderr, "bench_gemm: out of memory\n");
            exit(1);
        }
        for (int c = 0; c < nc; c++)
            memcpy(wx + bytes * (size_t)c, one, bytes);
        for (int i = 0; i < 8 * nb; i++) {
            for (int j = 0; j < GF_QK; j++)
                xq[i].qs[j] = (int8_t)(rand() % 255 - 127);
            xq[i].d = gf_f2h(0.01f);
        }
        for (int t = 0; t < 8; t++)
            g->pack_x(xq + (size_t)t * nb, nb, xp + (size_t)t * nb * GF_GEMM_XREC);
        double t1[32], t8[32], blocks = (double)R / GF_GEMM_ROWS * nb;
        for (int r = 0; r < 2 * reps; r++) {
            int T = r % 2 ? 8 : 1;
            double t0 = gf_thread_s();
            g->x16(type, xp, T, wx + bytes * (size_t)(r % nc), R, nb, y, (size_t)R);
            double ns = (gf_thread_s() - t0) * 1e9 / blocks;
            if (T == 1)
                t1[r / 2] = ns;
            else
                t8[r / 2] = ns;
        }
        double a = gf_bench_median(t1, reps), b = gf_bench_median(t8, reps);
        printf("%6d %5d %9.2f %9.2f %14.2fx\n", R, K, a, b, 8 * a / b);
        gf_free(one);
        if (huge)
            gf_free_huge(wx, wx_bytes);
        else
            gf_free(wx);
        gf_free(xq);
        gf_free(xp);
        gf_free(y);
    }
}

int main(int argc, char **argv)
{
    int64_t reps = 7, T = 128;
    if ((argc > 1 && gf_parse_i64(argv[1], 1, 32, &reps) != 0) ||
        (argc > 2 && gf_parse_i64(argv[2], 1, 4096, &T) != 0)) {
        fprintf(stderr, "usage: bench_gemm [REPS 1-32] [P 1-4096]\n");
        return 2;
    }
    openblas_set_num_threads(1);  // as the engine runs it
    const struct gf_gemm *g = gf_gemm_get();
    gf_print_cpu();
    struct gf_cpu_peak pk = gf_cpu_peak_probe();
    printf("peak: %.1f GFLOP/s per core (512-bit FMAs %.1f, 256-bit %.1f)\n", pk.best, pk.w512,
           pk.w256);
    if (g == NULL)
        printf("no AVX-512 VNNI: the engine's prompts use OpenBLAS alone here\n");
    bench_f32(g, (int)reps, (int)T, pk.best);
    if (g != NULL) {
        for (int huge = 1; huge >= 0; huge--) {
            bench_x16(g, (int)reps, GF_WT_Q4_0, huge);
            bench_x16(g, (int)reps, GF_WT_Q8_0, huge);
        }
    }
    return 0;
}
