/* gemm.c — the scalar integer matrix product of prompt processing (the reference for the SIMD
 * one; see gemm_int.h for the packed layout) and the run-time choice of an implementation. */
#include "engine/gemm_int.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* The 32 signed values of block k of a weight row of the given type (0 past the row). */
static void block_values(int type, const void *row, int nb, int k, int8_t out[GF_QK], float *d)
{
    if (k >= nb) {
        memset(out, 0, GF_QK);
        *d = 0.0f;
        return;
    }
    if (type == GF_WT_Q8_0) {
        const struct gf_block_q8 *b = (const struct gf_block_q8 *)row + k;
        memcpy(out, b->qs, GF_QK);
        *d = gf_h2f(b->d);
    } else {
        const struct gf_block_q4 *b = (const struct gf_block_q4 *)row + k;
        for (int i = 0; i < GF_QK / 2; i++) {
            out[i] = (int8_t)((b->qs[i] & 0x0f) - 8);
            out[i + GF_QK / 2] = (int8_t)((b->qs[i] >> 4) - 8);
        }
        *d = gf_h2f(b->d);
    }
}

/* Places the bytes of blocks a and b (32 each) into one 64-byte pair. */
static void interleave(const int8_t a[GF_QK], const int8_t b[GF_QK], int8_t out[GF_GEMM_PAIR])
{
    for (int l = 0; l < 16; l++) {
        const int8_t *src = (l & 1) ? b : a;
        memcpy(out + 4 * l, src + 4 * GF_GEMM_PERM[l >> 1], 4);
    }
}

static void pack_x(const struct gf_block_q8 *x, int nb, uint8_t *q, float *s)
{
    int np = (nb + 1) / 2;
    for (int p = 0; p < np; p++) {
        int8_t a[GF_QK], b[GF_QK], pair[GF_GEMM_PAIR];
        block_values(GF_WT_Q8_0, x, nb, 2 * p, a, &s[2 * p]);
        block_values(GF_WT_Q8_0, x, nb, 2 * p + 1, b, &s[2 * p + 1]);
        interleave(a, b, pair);
        for (int i = 0; i < GF_GEMM_PAIR; i++)
            q[(size_t)p * GF_GEMM_PAIR + i] = (uint8_t)(pair[i] + 128);
    }
}

static void pack_w(int type, const void *row, int nb, int8_t *q, float *s, int32_t *c)
{
    int np = (nb + 1) / 2;
    for (int p = 0; p < np; p++) {
        int8_t a[GF_QK], b[GF_QK];
        int8_t *pair = q + (size_t)p * GF_GEMM_PAIR;
        block_values(type, row, nb, 2 * p, a, &s[2 * p]);
        block_values(type, row, nb, 2 * p + 1, b, &s[2 * p + 1]);
        interleave(a, b, pair);
        for (int l = 0; l < 16; l++)
            c[p * 16 + l] = -128 * (pair[4 * l] + pair[4 * l + 1] + pair[4 * l + 2] + pair[4 * l + 3]);
    }
}

static void tile(const uint8_t *xq, const float *xs, int T, const int8_t *wq, const float *ws,
                 const int32_t *wc, int R, int np, float *y, size_t ldy)
{
    for (int t = 0; t < T; t++) {
        const uint8_t *xt = xq + (size_t)t * np * GF_GEMM_PAIR;
        const float *st = xs + (size_t)t * np * 2;
        for (int r = 0; r < R; r++) {
            const int8_t *wr = wq + (size_t)r * np * GF_GEMM_PAIR;
            const float *sr = ws + (size_t)r * np * 2;
            const int32_t *cr = wc + (size_t)r * np * 16;
            float acc = 0.0f;
            for (int p = 0; p < np; p++) {
                for (int l = 0; l < 16; l++) {
                    int32_t v = cr[p * 16 + l];
                    for (int i = 0; i < 4; i++) {
                        size_t o = (size_t)p * GF_GEMM_PAIR + 4 * (size_t)l + (size_t)i;
                        v += (int32_t)xt[o] * (int32_t)wr[o];
                    }
                    acc += (float)v * (sr[2 * p + (l & 1)] * st[2 * p + (l & 1)]);
                }
            }
            y[(size_t)t * ldy + (size_t)r] = acc;
        }
    }
}

static void f32(const float *xt, int T, int ldt, const float *w, size_t ldw, int R, int K,
                float *y, size_t ldy)
{
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++) {
            float acc = 0.0f;
            for (int k = 0; k < K; k++)
                acc += w[(size_t)r * ldw + (size_t)k] * xt[(size_t)k * ldt + (size_t)t];
            y[(size_t)t * ldy + (size_t)r] = acc;
        }
}

const struct gf_gemm gf_gemm_scalar = {
    .name = "scalar",
    .pack_x = pack_x,
    .pack_w = pack_w,
    .tile = tile,
    .f32 = f32,
};

static const struct gf_gemm *best;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void choose(void)
{
    __builtin_cpu_init();
    bool vnni = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                __builtin_cpu_supports("avx512vnni");
    const char *force = getenv("GF_KERNELS");
    if (force != NULL && (strcmp(force, "scalar") == 0 || strcmp(force, "avx2") == 0))
        vnni = false;
    best = vnni ? &gf_gemm_avx512vnni : NULL;
}

const struct gf_gemm *gf_gemm_get(void)
{
    pthread_once(&once, choose);
    return best;
}
