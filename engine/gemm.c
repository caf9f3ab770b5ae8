/* gemm.c — the scalar integer matrix product of prompt processing (the reference for the SIMD
 * one; see gemm_int.h for the packed layouts) and the run-time choice of an implementation. */
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

static void pack_x(const struct gf_block_q8 *x, int nb, uint8_t *out)
{
    for (int k = 0; k < nb; k++) {
        uint8_t *r = out + (size_t)k * GF_GEMM_XREC;
        int32_t sum = 0;
        for (int i = 0; i < GF_QK; i++)
            sum += x[k].qs[i];
        int32_t c = -128 * sum;
        float d = gf_h2f(x[k].d);
        int32_t c4 = -8 * sum, zero = 0;
        memcpy(r, x[k].qs, GF_QK);
        memcpy(r + GF_QK, &c, sizeof(c));
        memcpy(r + GF_QK + 4, &d, sizeof(d));
        memcpy(r + GF_QK + 8, &c4, sizeof(c4));
        memcpy(r + GF_QK + 12, &zero, sizeof(zero));
    }
}

static void pack_w(int type, const void *rows, size_t row_bytes, int n, int nb, uint8_t *out)
{
    for (int k = 0; k < nb; k++) {
        uint8_t *g = out + (size_t)k * GF_GEMM_GROUP;
        float sc[GF_GEMM_ROWS];
        for (int r = 0; r < GF_GEMM_ROWS; r++) {
            int8_t v[GF_QK];
            // a row past n reads as zeros (block_values of a row of 0 blocks)
            const void *row = r < n ? (const char *)rows + (size_t)r * row_bytes : rows;
            block_values(type, row, r < n ? nb : 0, k, v, &sc[r]);
            for (int i = 0; i < GF_QK; i++)
                g[64 * (i / 4) + 4 * r + i % 4] = (uint8_t)(v[i] + 128);
        }
        memcpy(g + 512, sc, sizeof(sc));
    }
}

static void tile(const uint8_t *xp, int T, const uint8_t *wp, int R, int nb, float *y,
                 size_t ldy)
{
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++) {
            const uint8_t *grp = wp + (size_t)(r / GF_GEMM_ROWS) * nb * GF_GEMM_GROUP;
            int l = r % GF_GEMM_ROWS;
            float acc = 0.0f;
            for (int k = 0; k < nb; k++) {
                const uint8_t *g = grp + (size_t)k * GF_GEMM_GROUP;
                const uint8_t *x = xp + ((size_t)t * nb + (size_t)k) * GF_GEMM_XREC;
                int32_t v;
                float dw, dx;
                memcpy(&v, x + GF_QK, sizeof(v));
                memcpy(&dx, x + GF_QK + 4, sizeof(dx));
                memcpy(&dw, g + 512 + 4 * l, sizeof(dw));
                for (int i = 0; i < GF_QK; i++)
                    v += (int32_t)g[64 * (i / 4) + 4 * l + i % 4] * (int8_t)x[i];
                acc += (float)v * (dw * dx);
            }
            y[(size_t)t * ldy + (size_t)r] = acc;
        }
}

void gf_gemm_regroup(int type, const void *rows, size_t row_bytes, int R, int nb, uint8_t *out)
{
    size_t gb = gf_gemm_x16_block(type);
    for (int g = 0; g < R / GF_GEMM_ROWS; g++)
        for (int k = 0; k < nb; k++) {
            uint8_t *o = out + ((size_t)g * nb + (size_t)k) * gb;
            for (int r = 0; r < GF_GEMM_ROWS; r++) {
                const char *row = (const char *)rows + (size_t)(g * GF_GEMM_ROWS + r) * row_bytes;
                // four bytes at a time (this runs over every weight byte at load)
                if (type == GF_WT_Q8_0) {
                    const struct gf_block_q8 *b = (const struct gf_block_q8 *)row + k;
                    for (int p = 0; p < GF_QK / 4; p++) {
                        uint32_t v;
                        memcpy(&v, b->qs + 4 * p, 4);
                        v ^= 0x80808080u;  // + 128 in each byte
                        memcpy(o + 64 * p + 4 * r, &v, 4);
                    }
                    memcpy(o + gb - 32 + 2 * r, &b->d, 2);
                } else {
                    const struct gf_block_q4 *b = (const struct gf_block_q4 *)row + k;
                    for (int p = 0; p < GF_QK / 8; p++)
                        memcpy(o + 64 * p + 4 * r, b->qs + 4 * p, 4);
                    memcpy(o + gb - 32 + 2 * r, &b->d, 2);
                }
            }
        }
}

/* The unsigned weight operand of value i of row l in a block of a regrouped group. */
static int32_t x16_value(int type, const uint8_t *g, int l, int i)
{
    if (type == GF_WT_Q8_0)
        return g[64 * (i / 4) + 4 * l + i % 4];
    int j = i % 16;
    uint8_t b = g[64 * (j / 4) + 4 * l + j % 4];
    return i < 16 ? (b & 0x0f) : (b >> 4);
}

static void x16(int type, const uint8_t *xp, int T, const uint8_t *wx, int R, int nb, float *y,
                size_t ldy)
{
    size_t gb = gf_gemm_x16_block(type);
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++) {
            const uint8_t *grp = wx + (size_t)(r / GF_GEMM_ROWS) * nb * gb;
            int l = r % GF_GEMM_ROWS;
            float acc = 0.0f;
            for (int k = 0; k < nb; k++) {
                const uint8_t *g = grp + (size_t)k * gb;
                const uint8_t *x = xp + ((size_t)t * nb + (size_t)k) * GF_GEMM_XREC;
                int32_t v;
                float dx;
                uint16_t h;
                memcpy(&v, x + (type == GF_WT_Q8_0 ? GF_QK : GF_QK + 8), sizeof(v));
                memcpy(&dx, x + GF_QK + 4, sizeof(dx));
                memcpy(&h, g + gb - 32 + 2 * l, sizeof(h));
                for (int i = 0; i < GF_QK; i++)
                    v += x16_value(type, g, l, i) * (int8_t)x[i];
                acc += (float)v * (gf_h2f(h) * dx);
            }
            y[(size_t)t * ldy + (size_t)r] = acc;
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

static void f32_pack(const float *x, size_t ldx, int T, int K, float *xt, size_t ldt)
{
    int tp = (T + 15) / 16 * 16;
    for (int k = 0; k < K; k++)
        for (int t = 0; t < tp; t++)
            xt[(size_t)k * ldt + (size_t)t] = t < T ? x[(size_t)t * ldx + (size_t)k] : 0.0f;
}

const struct gf_gemm gf_gemm_scalar = {
    .name = "scalar",
    .pack_x = pack_x,
    .pack_w = pack_w,
    .tile = tile,
    .x16 = x16,
    .f32 = f32,
    .f32_pack = f32_pack,
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
