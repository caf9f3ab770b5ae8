/* bench_prefill.c — prompt processing alone: one batch of P tokens (default 128) through the
 * forward pass, REPS times, printing the median tokens/s by wall clock and by CPU time of this
 * process (on a shared machine the CPU figure is the repeatable one), and how far the prompt
 * path's last logits are from the token-by-token (decode kernel) path's.
 * usage: bench_prefill MODEL THREADS [REPS] [P] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/common.h"
#include "engine/llama_int.h"

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int run(struct gf_llm_ctx *c, struct gf_llm_kv *kv, const int *tok, int P, float *logits)
{
    enum { MAX_P = 1024 };
    static int pos[MAX_P];
    static struct gf_llm_kv *kvs[MAX_P];
    static bool want[MAX_P];
    for (int i = 0; i < P; i++) {
        pos[i] = i;
        kvs[i] = kv;
        want[i] = i == P - 1;
    }
    struct gf_llm_batch b = {P, tok, pos, kvs, want, logits};
    return gf_llm_forward(c, &b);
}

int main(int argc, char **argv)
{
    int64_t threads = 1, reps = 5, P = 128;
    if (argc < 3 || gf_parse_i64(argv[2], 1, 64, &threads) != 0 ||
        (argc > 3 && gf_parse_i64(argv[3], 1, 64, &reps) != 0) ||
        (argc > 4 && gf_parse_i64(argv[4], 1, 1024, &P) != 0)) {
        fprintf(stderr, "usage: bench_prefill MODEL THREADS [REPS 1-64] [P 1-1024]\n");
        return 2;
    }
    struct gf_err err = {0};
    struct gf_llm *m = NULL;
    if (gf_llm_open(argv[1], &m, &err) != 0) {
        fprintf(stderr, "bench_prefill: %s\n", err.msg);
        return 2;
    }
    struct gf_llm_ctx *c = NULL;
    struct gf_llm_kv kv;
    int nv = m->hp.n_vocab;
    float *a = gf_mallocarray((size_t)nv, sizeof(float)), *b = gf_mallocarray((size_t)nv, 4);
    int *tok = gf_mallocarray((size_t)P, sizeof(int));
    if (gf_llm_ctx_new(m, (int)P, (int)P, (int)threads, NULL, &c) != 0 || a == NULL ||
        b == NULL || tok == NULL || gf_llm_kv_init(&kv, m, (int)P, GF_KV_F32) != 0)
        return 1;
    for (int i = 0; i < P; i++)
        tok[i] = 1 + (i * 7919) % (nv - 1);
    run(c, &kv, tok, (int)P, a);  // warm-up: maps the weights in
    double wall[64], cpu[64];
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = gf_now_ns();
        double c0 = cpu_s();
        run(c, &kv, tok, (int)P, a);
        cpu[r] = (double)P / (cpu_s() - c0);
        wall[r] = (double)P / ((double)(gf_now_ns() - t0) / 1e9);
    }
    qsort(wall, (size_t)reps, sizeof(double), cmp_d);
    qsort(cpu, (size_t)reps, sizeof(double), cmp_d);
    // the same prompt through the decode kernels (batches below the gemm threshold)
    gf_llm_ctx_set_gemm_min(c, 1 << 20);
    run(c, &kv, tok, (int)P, b);
    double md = 0, mb = 0;
    for (int i = 0; i < nv; i++) {
        md = fmax(md, fabs((double)a[i] - b[i]));
        mb = fmax(mb, fabs((double)b[i]));
    }
    printf("pp%d=%.2f\npp%d_cpu=%.2f\nrel_diff_vs_dot=%.3g\n", (int)P, wall[reps / 2], (int)P,
           cpu[reps / 2], md / mb);
    gf_llm_kv_cleanup(&kv);
    gf_free(a);
    gf_free(b);
    gf_free(tok);
    gf_llm_ctx_free(c);
    gf_llm_free(m);
    return 0;
}
