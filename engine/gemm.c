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

static void pack_x(const struct gf_block_q8 *x, int nb, uint8_t *q, float *s)
{
    for (int k = 0; k < nb; k++) {
        for (int i = 0; i < GF_QK; i++)
            q[(size_t)k * GF_QK + i] = (uint8_t)(x[k].qs[i] + 128);
        s[k] = gf_h2f(x[k].d);
    }
}

static void pack_w(int type, const void *rows, size_t row_bytes, int n, int nb, uint8_t *out)
{
    for (int k = 0; k < nb; k++) {
        uint8_t *g = out + (size_t)k * GF_GEMM_GROUP;
        int32_t c[16];
        float sc[16];
        for (int l = 0; l < 16; l++) {
            int r = l / 4;
            int8_t v[GF_QK];
            float d;
            // a row past n reads as zeros (block_values of a row of 0 blocks)
            const void *row = r < n ? (const char *)rows + (size_t)r * row_bytes : rows;
            block_values(type, row, r < n ? nb : 0, k, v, &d);
            int32_t sum = 0;
            for (int b = 0; b < 4; b++) {
                g[4 * l + b] = (uint8_t)v[4 * (l % 4) + b];
                g[64 + 4 * l + b] = (uint8_t)v[16 + 4 * (l % 4) + b];
                sum += v[4 * (l % 4) + b] + v[16 + 4 * (l % 4) + b];
            }
            c[l] = -128 * sum;
            sc[l] = d;
        }
        memcpy(g + 128, c, sizeof(c));
        memcpy(g + 192, sc, sizeof(sc));
    }
}

static void tile(const uint8_t *xq, const float *xs, int T, const uint8_t *wp, int R, int nb,
                 float *y, size_t ldy)
{
    for (int t = 0; t < T; t++) {
        const uint8_t *xt = xq + (size_t)t * nb * GF_QK;
        for (int r = 0; r < R; r++) {
            const uint8_t *grp = wp + (size_t)(r / 4) * nb * GF_GEMM_GROUP;
            float acc = 0.0f;
            for (int k = 0; k < nb; k++) {
                const uint8_t *g = grp + (size_t)k * GF_GEMM_GROUP;
                int32_t c[16];
                float sc[16];
                memcpy(c, g + 128, sizeof(c));
                memcpy(sc, g + 192, sizeof(sc));
                for (int l = 4 * (r % 4); l < 4 * (r % 4) + 4; l++) {
                    int32_t v = c[l];
                    for (int b = 0; b < 4; b++) {
                        v += (int32_t)xt[(size_t)k * GF_QK + 4 * (l % 4) + b] * (int8_t)g[4 * l + b];
                        v += (int32_t)xt[(size_t)k * GF_QK + 16 + 4 * (l % 4) + b] *
                             (int8_t)g[64 + 4 * l + b];
                    }
                    acc += (float)v * (sc[l] * xs[(size_t)t * nb + k]);
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
