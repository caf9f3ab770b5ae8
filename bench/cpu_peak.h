/* cpu_peak.h — for the benchmarks: which CPU this is, and one core's float multiply-add peak,
 * so that a product's speed can be given as a share of what the core computes at most. */
#ifndef GF_BENCH_CPU_PEAK_H
#define GF_BENCH_CPU_PEAK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <immintrin.h>

struct gf_cpu_peak {
    double best, w512, w256;  // GFLOP/s of one core: the better width, 512-bit, 256-bit
};

/* Compute peak of one core: independent chains of float multiply-adds (12: more than the
 * FMA latency times the pipes), with the widest vectors the CPU has and with 256-bit ones,
 * best of 5 runs, by thread CPU time. Both widths are tried because CPUs differ: Zen 4 runs a
 * 512-bit FMA in two halves (one per cycle, the same FLOPs as two 256-bit ones), Zen 5 has
 * two full 512-bit pipes. The prompt's share of this peak says how much room a kernel has. */
#define FMA_STEP(V, fma)                                                                       \
    V##0 = fma(V##0, m, a); V##1 = fma(V##1, m, a); V##2 = fma(V##2, m, a);                   \
    V##3 = fma(V##3, m, a); V##4 = fma(V##4, m, a); V##5 = fma(V##5, m, a);                   \
    V##6 = fma(V##6, m, a); V##7 = fma(V##7, m, a); V##8 = fma(V##8, m, a);                   \
    V##9 = fma(V##9, m, a); V##10 = fma(V##10, m, a); V##11 = fma(V##11, m, a);

static inline double gf_thread_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((target("avx512f"))) static inline double fma_gflops_512(long n)
{
    __m512 m = _mm512_set1_ps(0.999f), a = _mm512_set1_ps(1e-3f);
    // different starting values: equal chains would be computed once
    __m512 v0 = _mm512_set1_ps(0.0f), v1 = _mm512_set1_ps(0.1f), v2 = _mm512_set1_ps(0.2f),
           v3 = _mm512_set1_ps(0.3f), v4 = _mm512_set1_ps(0.4f), v5 = _mm512_set1_ps(0.5f),
           v6 = _mm512_set1_ps(0.6f), v7 = _mm512_set1_ps(0.7f), v8 = _mm512_set1_ps(0.8f),
           v9 = _mm512_set1_ps(0.9f), v10 = _mm512_set1_ps(1.0f), v11 = _mm512_set1_ps(1.1f);
    double t0 = gf_thread_s();
    for (long i = 0; i < n; i++) {
        FMA_STEP(v, _mm512_fmadd_ps)
    }
    double dt = gf_thread_s() - t0;
    float sink = _mm512_reduce_add_ps(_mm512_add_ps(
        _mm512_add_ps(_mm512_add_ps(v0, v1), _mm512_add_ps(v2, v3)),
        _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(v4, v5), _mm512_add_ps(v6, v7)),
                      _mm512_add_ps(_mm512_add_ps(v8, v9), _mm512_add_ps(v10, v11)))));
    return sink == 0.5f ? 0 : 12.0 * 32 * (double)n / dt / 1e9;  // never 0.5: keeps the sums
}

__attribute__((target("avx2,fma"))) static inline double fma_gflops_256(long n)
{
    __m256 m = _mm256_set1_ps(0.999f), a = _mm256_set1_ps(1e-3f);
    // different starting values: equal chains would be computed once
    __m256 v0 = _mm256_set1_ps(0.0f), v1 = _mm256_set1_ps(0.1f), v2 = _mm256_set1_ps(0.2f),
           v3 = _mm256_set1_ps(0.3f), v4 = _mm256_set1_ps(0.4f), v5 = _mm256_set1_ps(0.5f),
           v6 = _mm256_set1_ps(0.6f), v7 = _mm256_set1_ps(0.7f), v8 = _mm256_set1_ps(0.8f),
           v9 = _mm256_set1_ps(0.9f), v10 = _mm256_set1_ps(1.0f), v11 = _mm256_set1_ps(1.1f);
    double t0 = gf_thread_s();
    for (long i = 0; i < n; i++) {
        FMA_STEP(v, _mm256_fmadd_ps)
    }
    double dt = gf_thread_s() - t0;
    float s[8];
    _mm256_storeu_ps(s, _mm256_add_ps(
        _mm256_add_ps(_mm256_add_ps(v0, v1), _mm256_add_ps(v2, v3)),
        _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(v4, v5), _mm256_add_ps(v6, v7)),
                      _mm256_add_ps(_mm256_add_ps(v8, v9), _mm256_add_ps(v10, v11)))));
    return s[0] == 0.5f ? 0 : 12.0 * 16 * (double)n / dt / 1e9;
}

static inline struct gf_cpu_peak gf_cpu_peak_probe(void)
{
    double g512 = 0, g256 = 0;
    for (int r = 0; r < 5; r++) {
        double v;
        if (__builtin_cpu_supports("avx512f") && (v = fma_gflops_512(4000000)) > g512)
            g512 = v;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
            (v = fma_gflops_256(4000000)) > g256)
            g256 = v;
    }
    return (struct gf_cpu_peak){g512 > g256 ? g512 : g256, g512, g256};
}

/* The CPU as /proc/cpuinfo names it (family and model tell Zen 4, 25/17, from Zen 5, 26/2). */
static inline void gf_print_cpu(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256], name[128] = "unknown";
    int family = -1, model = -1;
    while (f != NULL && fgets(line, sizeof(line), f) != NULL && line[0] != '\n') {
        const char *v = strchr(line, ':');
        if (v == NULL)
            continue;
        if (strncmp(line, "cpu family", 10) == 0)
            family = atoi(v + 1);
        else if (strncmp(line, "model name", 10) == 0)
            snprintf(name, sizeof(name), "%.*s", (int)strcspn(v + 2, "\n"), v + 2);
        else if (strncmp(line, "model\t", 6) == 0)
            model = atoi(v + 1);
    }
    if (f != NULL)
        fclose(f);
    printf("cpu=%s, family %d model %d\n", name, family, model);
}

#endif
