/* bench_engine.c — speed of the embedded engine's forward pass on one model: prompt processing
 * (one batch of P tokens), generation (G single-token steps), aggregate generation of S
 * sequences decoded together, and the memory read bandwidth of this machine (probed as for
 * llama.cpp's baseline), so that generation can be given as a share of the bandwidth limit
 * (weight bytes per token over bandwidth). Prints key=value lines; bench/engine.sh turns them into a table with ratios.
 * It also names the CPU and probes one core's float multiply-add peak, so that the prompt's
 * rate can be given as a share of what the CPU computes at most.
 * GF_BENCH_PARTS (default "pp,tg,agg,bw,peak") picks the measurements, for quick experiments.
 * usage: bench_engine MODEL THREADS [REPS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <immintrin.h>

#include "bench/cpu_peak.h"
#include "bench/median.h"
#include "common/common.h"
#include "engine/kernels_int.h"
#include "engine/llama_int.h"
#include "engine/threadpool_int.h"

#define P 128
#define G 64
#define AGG_STEPS 32

/* Process CPU time in seconds: on a machine shared with other work it counts only the time this
 * process really ran, so with 1 thread it estimates the speed of an idle machine. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Read bandwidth probe, measured as llama.cpp's baseline was: a read-only sum over a 1 GiB
 * float buffer with the widest loads the CPU has (chosen at run time) into 8 independent
 * accumulators, the buffer split among the threads, best of 10 passes. */
struct bw_job {
    const float *a;
    size_t n;
    float sum[64];
};

__attribute__((target("avx512f"))) static float sum_avx512(const float *a, size_t n)
{
    __m512 s[8];
    for (int i = 0; i < 8; i++)
        s[i] = _mm512_setzero_ps();
    for (size_t i = 0; i + 128 <= n; i += 128)
        for (int j = 0; j < 8; j++)
            s[j] = _mm512_add_ps(s[j], _mm512_loadu_ps(a + i + 16 * j));
    for (int i = 1; i < 8; i++)
        s[0] = _mm512_add_ps(s[0], s[i]);
    return _mm512_reduce_add_ps(s[0]);
}

__attribute__((target("avx2"))) static float sum_avx2(const float *a, size_t n)
{
    __m256 s[8];
    for (int i = 0; i < 8; i++)
        s[i] = _mm256_setzero_ps();
    for (size_t i = 0; i + 64 <= n; i += 64)
        for (int j = 0; j < 8; j++)
            s[j] = _mm256_add_ps(s[j], _mm256_loadu_ps(a + i + 8 * j));
    for (int i = 1; i < 8; i++)
        s[0] = _mm256_add_ps(s[0], s[i]);
    float v[8], t = 0;
    _mm256_storeu_ps(v, s[0]);
    for (int i = 0; i < 8; i++)
        t += v[i];
    return t;
}

static float sum_plain(const float *a, size_t n)
{
    float s[8] = {0};
    for (size_t i = 0; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++)
            s[j] += a[i + j];
    return s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7];
}

static void bw_worker(void *arg, int ith, int nth)
{
    struct bw_job *j = arg;
    size_t per = j->n / (size_t)nth / 128 * 128;
    const float *a = j->a + per * (size_t)ith;
    if (__builtin_cpu_supports("avx512f"))
        j->sum[ith] = sum_avx512(a, per);
    else if (__builtin_cpu_supports("avx2"))
        j->sum[ith] = sum_avx2(a, per);
    else
        j->sum[ith] = sum_plain(a, per);
}

/* Multiply-adds of the matrix products per prompt token, times 2: every layer matrix, and the
 * output projection once per prompt (only the last token's logits are wanted). */
static double prompt_flop_per_token(const struct gf_llm *m, int p)
{
    double madds = 0;
    for (int l = 0; l < m->hp.n_layers; l++) {
        const struct gf_llm_layer *L = &m->layers[l];
        const struct gf_llm_weight *w[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->gate, &L->up,
                                           &L->down};
        for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++)
            madds += (double)w[i]->rows * w[i]->cols;
    }
    madds += (double)m->output.rows * m->output.cols / p;
    return 2 * madds;
}

static double bandwidth(struct gf_tpool *pool)
{
    size_t n = (size_t)256 << 20;  // floats: 1 GiB
    float *a = gf_mallocarray(n, 4);
    if (a == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        a[i] = 1.0f;
    struct bw_job j = {.a = a, .n = n};
    int nth = gf_tpool_size(pool);
    size_t bytes = n / (size_t)nth / 128 * 128 * (size_t)nth * 4;
    double best = 0;
    for (int r = 0; r < 10; r++) {
        uint64_t t0 = gf_now_ns();
        gf_tpool_run(pool, bw_worker, &j);
        double gbs = (double)bytes / ((double)(gf_now_ns() - t0) / 1e9) / 1e9;
        if (gbs > best)
            best = gbs;
    }
    gf_free(a);
    return best;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: bench_engine MODEL THREADS [REPS]\n");
        return 2;
    }
    int64_t threads = 1, reps = 3;
    if (gf_parse_i64(argv[2], 1, 64, &threads) != 0 ||
        (argc > 3 && gf_parse_i64(argv[3], 1, 16, &reps) != 0)) {
        fprintf(stderr, "bench_engine: THREADS in [1, 64], REPS in [1, 16]\n");
        return 2;
    }
    struct gf_err err = {0};
    struct gf_llm *m = NULL;
    if (gf_llm_open(argv[1], &m, &err) != 0) {
        fprintf(stderr, "bench_engine: %s\n", err.msg);
        return 2;
    }
    int ctx = P + G + 8;
    struct gf_llm_ctx *c = NULL;
    if (gf_llm_ctx_new(m, P, ctx, (int)threads, NULL, &c) != 0)
        return 1;
    const char *gm = getenv("GF_GEMM_MIN");  // experiments: batches from this size use sgemm
    int64_t gemm_min = 0;
    if (gm != NULL && gf_parse_i64(gm, 1, 100000, &gemm_min) == 0)
        gf_llm_ctx_set_gemm_min(c, (int)gemm_min);
    enum { S_MAX = 8 };
    struct gf_llm_kv kv[S_MAX];
    for (int s = 0; s < S_MAX; s++)
        if (gf_llm_kv_init(&kv[s], m, ctx, GF_KV_F32) != 0)
            return 1;
    int nv = m->hp.n_vocab;
    float *logits = gf_mallocarray((size_t)S_MAX * nv, sizeof(float));
    int tok[P], pos[P];
    struct gf_llm_kv *kvs[P];
    bool want[P];
    for (int i = 0; i < P; i++) {
        tok[i] = 1 + (i * 7919) % (nv - 1);
        pos[i] = i;
        kvs[i] = &kv[0];
        want[i] = i == P - 1;
    }
    printf("model=%s threads=%lld kernels=%s\nweight_bytes=%llu\n", argv[1], (long long)threads,
           gf_kernels_get()->name, (unsigned long long)m->weight_bytes);
    gf_print_cpu();
    printf("pp_gflop_per_token=%.4f\n", prompt_flop_per_token(m, P) / 1e9);
    // warm-up: maps the weights in
    struct gf_llm_batch b = {P, tok, pos, kvs, want, logits};
    gf_llm_forward(c, &b);
    const char *parts = getenv("GF_BENCH_PARTS");
    if (parts == NULL || parts[0] == '\0')
        parts = "pp,tg,agg,bw,peak";
    int n = (int)reps;
    double pp[16], tg[16], ppc[16], tgc[16];
    for (int r = 0; r < n && strstr(parts, "pp") != NULL; r++) {
        uint64_t t0 = gf_now_ns();
        double c0 = cpu_s();
        gf_llm_forward(c, &b);
        pp[r] = P / ((double)(gf_now_ns() - t0) / 1e9);
        ppc[r] = P / (cpu_s() - c0);
    }
    if (strstr(parts, "pp") != NULL)
        printf("pp%d=%.2f\npp%d_cpu=%.2f\n", P, gf_bench_median(pp, n), P, gf_bench_median(ppc, n));
    for (int r = 0; r < n && strstr(parts, "tg") != NULL; r++) {
        // generation: G single-token steps from an empty context
        uint64_t t0 = gf_now_ns();
        double c0 = cpu_s();
        for (int i = 0; i < G; i++) {
            int p = i, t = tok[i];
            bool w = true;
            struct gf_llm_batch b1 = {1, &t, &p, kvs, &w, logits};
            gf_llm_forward(c, &b1);
        }
        tg[r] = G / ((double)(gf_now_ns() - t0) / 1e9);
        tgc[r] = G / (cpu_s() - c0);
    }
    if (strstr(parts, "tg") != NULL)
        printf("tg%d=%.2f\ntg%d_cpu=%.2f\n", G, gf_bench_median(tg, n), G, gf_bench_median(tgc, n));
    // aggregate: S sequences, one token each per step, all in one batch
    const int seqs[] = {1, 4, 8};
    for (size_t si = 0; si < 3 && strstr(parts, "agg") != NULL; si++) {
        int S = seqs[si];
        double agg[16], aggc[16];
        for (int r = 0; r < n; r++) {
            uint64_t t0 = gf_now_ns();
            double c0 = cpu_s();
            for (int step = 0; step < AGG_STEPS; step++) {
                int t[S_MAX], p[S_MAX];
                struct gf_llm_kv *k[S_MAX];
                bool w[S_MAX];
                for (int s = 0; s < S; s++) {
                    t[s] = tok[(step + s) % P];
                    p[s] = step;
                    k[s] = &kv[s];
                    w[s] = true;
                }
                struct gf_llm_batch bs = {S, t, p, k, w, logits};
                gf_llm_forward(c, &bs);
            }
            agg[r] = (double)S * AGG_STEPS / ((double)(gf_now_ns() - t0) / 1e9);
            aggc[r] = (double)S * AGG_STEPS / (cpu_s() - c0);
        }
        printf("agg%d=%.2f\nagg%d_cpu=%.2f\n", S, gf_bench_median(agg, n), S, gf_bench_median(aggc, n));
    }
    if (strstr(parts, "peak") != NULL) {
        struct gf_cpu_peak pk = gf_cpu_peak_probe();
        printf("peak_gflops=%.1f\npeak_gflops_512=%.1f\npeak_gflops_256=%.1f\n", pk.best, pk.w512,
               pk.w256);
    }
    struct gf_tpool *pool = NULL;
    if (strstr(parts, "bw") != NULL && gf_tpool_new((int)threads, &pool) == 0) {
        printf("bandwidth_gbs=%.2f\n", bandwidth(pool));
        gf_tpool_free(pool);
    }
    for (int s = 0; s < S_MAX; s++)
        gf_llm_kv_cleanup(&kv[s]);
    gf_free(logits);
    gf_llm_ctx_free(c);
    gf_llm_free(m);
    return 0;
}
