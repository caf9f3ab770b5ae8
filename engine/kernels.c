/* kernels.c — the scalar kernels (the reference every SIMD kernel is tested against) and the
 * run-time choice of a kernel table. The choice is made once from __builtin_cpu_supports and
 * can only be lowered by GF_KERNELS (scalar|avx2|avx512), never raised past what the CPU has. */
#include "engine/kernels_int.h"

#include <cpuid.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static float dot_f32(const float *a, const float *b, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static float dot_f16(const uint16_t *a, const float *b, int n)
{
    float s = 0.0f;
    for (int i = 0; i < n; i++)
        s += gf_h2f(a[i]) * b[i];
    return s;
}

static float dot_q8(const struct gf_block_q8 *a, const struct gf_block_q8 *b, int nb)
{
    float s = 0.0f;
    for (int k = 0; k < nb; k++) {
        int32_t acc = 0;
        for (int i = 0; i < GF_QK; i++)
            acc += (int32_t)a[k].qs[i] * (int32_t)b[k].qs[i];
        s += (float)acc * (gf_h2f(a[k].d) * gf_h2f(b[k].d));
    }
    return s;
}

static float dot_q4(const struct gf_block_q4 *a, const struct gf_block_q8 *b, int nb)
{
    float s = 0.0f;
    for (int k = 0; k < nb; k++) {
        int32_t acc = 0;
        for (int i = 0; i < GF_QK / 2; i++) {
            int lo = (a[k].qs[i] & 0x0f) - 8;
            int hi = (a[k].qs[i] >> 4) - 8;
            acc += lo * b[k].qs[i] + hi * b[k].qs[i + GF_QK / 2];
        }
        s += (float)acc * (gf_h2f(a[k].d) * gf_h2f(b[k].d));
    }
    return s;
}

static void dot4_f32(const float *a, const float *const b[4], int n, float out[4])
{
    for (int i = 0; i < 4; i++)
        out[i] = dot_f32(a, b[i], n);
}

static void dot4_q8(const struct gf_block_q8 *a, const struct gf_block_q8 *const b[4], int nb,
                    float out[4])
{
    for (int i = 0; i < 4; i++)
        out[i] = dot_q8(a, b[i], nb);
}

static void dot4_q4(const struct gf_block_q4 *a, const struct gf_block_q8 *const b[4], int nb,
                    float out[4])
{
    for (int i = 0; i < 4; i++)
        out[i] = dot_q4(a, b[i], nb);
}

void gf_matvec_generic(const struct gf_kernels *k, int type, const void *w, size_t row_bytes,
                       int nr, int cols, const struct gf_mv_x *x, float *y, size_t ldy)
{
    int nb = cols / GF_QK, T = x->T;
    // rows stream from memory: prefetch about 4 KiB ahead, a whole row at a time
    int ahead = (int)((4096 + row_bytes - 1) / row_bytes);
    for (int r = 0; r < nr; r++) {
        const void *row = (const char *)w + (size_t)r * row_bytes;
        if (r + ahead < nr)
            for (size_t o = 0; o < row_bytes; o += 64)
                __builtin_prefetch((const char *)row + (size_t)ahead * row_bytes + o);
        int t = 0;
        // four tokens at a time: the row is loaded (and unpacked) once for all four
        for (; t + 4 <= T; t += 4) {
            float o[4];
            if (type == GF_WT_F32) {
                const float *x4[4];
                for (int i = 0; i < 4; i++)
                    x4[i] = x->f + (size_t)(t + i) * x->ldf;
                k->dot4_f32(row, x4, cols, o);
            } else if (type == GF_WT_Q8_0 || type == GF_WT_Q4_0) {
                const struct gf_block_q8 *x4[4];
                for (int i = 0; i < 4; i++)
                    x4[i] = x->q + (size_t)(t + i) * x->ldq;
                if (type == GF_WT_Q8_0)
                    k->dot4_q8(row, x4, nb, o);
                else
                    k->dot4_q4(row, x4, nb, o);
            } else {
                break;
            }
            for (int i = 0; i < 4; i++)
                y[(size_t)(t + i) * ldy + r] = o[i];
        }
        for (; t < T; t++) {
            const float *xf = x->f + (size_t)t * x->ldf;
            const struct gf_block_q8 *xq = x->q + (size_t)t * x->ldq;
            float v = 0.0f;
            switch (type) {
            case GF_WT_F32:
                v = k->dot_f32(row, xf, cols);
                break;
            case GF_WT_F16:
                v = k->dot_f16(row, xf, cols);
                break;
            case GF_WT_Q8_0:
                v = k->dot_q8(row, xq, nb);
                break;
            case GF_WT_Q4_0:
                v = k->dot_q4(row, xq, nb);
                break;
            default:
                break;
            }
            y[(size_t)t * ldy + r] = v;
        }
    }
}

void gf_mv_prep(const struct gf_block_q8 *q, size_t ldq, int T, int nb, void *mem)
{
    unsigned char *rec = mem;
    for (int b = 0; b < nb; b++) {
        for (int t = 0; t < T; t++, rec += GF_MV_REC) {
            const struct gf_block_q8 *blk = q + (size_t)t * ldq + b;
            int32_t c8[4], c4[4];
            for (int j = 0; j < 4; j++) {
                const int8_t *v = blk->qs;
                int32_t s = v[4 * j] + v[4 * j + 1] + v[4 * j + 2] + v[4 * j + 3] +
                            v[16 + 4 * j] + v[17 + 4 * j] + v[18 + 4 * j] + v[19 + 4 * j];
                c8[j] = -128 * s;
                c4[j] = -8 * s;
            }
            float d = gf_h2f(blk->d);
            memcpy(rec, blk->qs, GF_QK);
            memcpy(rec + GF_MV_REC_C8, c8, sizeof(c8));
            memcpy(rec + GF_MV_REC_C4, c4, sizeof(c4));
            memcpy(rec + GF_MV_REC_D, &d, sizeof(d));
            memset(rec + GF_MV_REC_D + 4, 0, GF_MV_REC - GF_MV_REC_D - 4);
        }
    }
}

size_t gf_mv_prep1_size(int nb)
{
    size_t q8 = (size_t)(nb + GF_MV1_Q8_BLOCKS - 1) / GF_MV1_Q8_BLOCKS * GF_MV1_Q8_REC;
    size_t q4 = (size_t)(nb + GF_MV1_Q4_BLOCKS - 1) / GF_MV1_Q4_BLOCKS * GF_MV1_Q4_REC;
    return q8 > q4 ? q8 : q4;
}

void gf_mv_prep1(int type, const struct gf_block_q8 *q, int nb, void *mem)
{
    unsigned char *rec = mem;
    bool q8 = type == GF_WT_Q8_0;
    int g = q8 ? GF_MV1_Q8_BLOCKS : GF_MV1_Q4_BLOCKS;
    size_t rec_bytes = q8 ? GF_MV1_Q8_REC : GF_MV1_Q4_REC;
    for (int k0 = 0; k0 < nb; k0 += g, rec += rec_bytes) {
        int8_t v[128] = {0};  // the record's values in its own order
        float d[4] = {0};
        for (int j = 0; j < g && k0 + j < nb; j++) {
            const struct gf_block_q8 *b = &q[k0 + j];
            float dj = gf_h2f(b->d);
            if (q8) {
                memcpy(v + 32 * j, b->qs, GF_QK);
            } else {
                memcpy(v + 16 * j, b->qs, GF_QK / 2);
                memcpy(v + 64 + 16 * j, b->qs + GF_QK / 2, GF_QK / 2);
            }
            d[j] = dj;
        }
        // Q8_0: one correction per 4 values; Q4_0: per 4 low-nibble values and the 4 high ones
        // that share their int32 lane
        int32_t corr[32] = {0};
        int n_corr = q8 ? 32 : 16;
        for (int l = 0; l < n_corr; l++) {
            int32_t s = 0;
            for (int i = 0; i < 4; i++)
                s += v[4 * l + i] + (q8 ? 0 : v[64 + 4 * l + i]);
            corr[l] = (q8 ? -128 : -8) * s;
        }
        memset(rec, 0, rec_bytes);
        memcpy(rec, v, sizeof(v));
        memcpy(rec + sizeof(v), corr, (size_t)n_corr * sizeof(int32_t));
        memcpy(rec + sizeof(v) + (size_t)n_corr * sizeof(int32_t), d, sizeof(d));
    }
}

static void quantize_q8(const float *x, struct gf_block_q8 *y, int n)
{
    for (int k = 0; k < n / GF_QK; k++) {
        const float *v = x + k * GF_QK;
        float amax = 0.0f;
        for (int i = 0; i < GF_QK; i++)
            amax = fmaxf(amax, fabsf(v[i]));
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        y[k].d = gf_f2h(d);
        // nearbyintf rounds half to even, as the SIMD versions do
        for (int i = 0; i < GF_QK; i++)
            y[k].qs[i] = (int8_t)nearbyintf(v[i] * id);
    }
}

static void axpy_f32(float *y, float a, const float *x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += a * x[i];
}

static void axpy_f16(float *y, float a, const uint16_t *x, int n)
{
    for (int i = 0; i < n; i++)
        y[i] += a * gf_h2f(x[i]);
}

static void f32_to_f16(const float *x, uint16_t *y, int n)
{
    for (int i = 0; i < n; i++)
        y[i] = gf_f2h(x[i]);
}

static void rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
    float ss = 0.0f;
    for (int i = 0; i < n; i++)
        ss += x[i] * x[i];
    float scale = 1.0f / sqrtf(ss / (float)n + eps);
    for (int i = 0; i < n; i++)
        o[i] = x[i] * scale * w[i];
}

static void softmax(float *x, int n)
{
    float max = x[0];
    for (int i = 1; i < n; i++)  // not fmaxf: it is a library call here (NaN rules)
        max = x[i] > max ? x[i] : max;
    float sum = 0.0f;
    for (int i = 0; i < n; i++) {
        x[i] = expf(x[i] - max);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++)
        x[i] *= inv;
}

static void swiglu(float *h, const float *g, const float *u, int n)
{
    for (int i = 0; i < n; i++) {
        float v = g[i];
        h[i] = v / (1.0f + expf(-v)) * u[i];
    }
}

static void rope(float *v, int n_heads, int head_dim, int n_rot, const float *cs)
{
    for (int h = 0; h < n_heads; h++) {
        float *p = v + (size_t)h * head_dim;
        for (int i = 0; i < n_rot; i += 2) {
            float c = cs[i], s = cs[i + 1];
            float x0 = p[i], x1 = p[i + 1];
            p[i] = x0 * c - x1 * s;
            p[i + 1] = x0 * s + x1 * c;
        }
    }
}

void gf_rope_cos_sin(float *cs, int n_rot, int pos, float theta)
{
    for (int i = 0; i < n_rot; i += 2) {
        // the angle in double, then rounded: agrees with llama.cpp and llama2.c within 1e-6
        double freq = pow((double)theta, -(double)i / (double)n_rot);
        double ang = (double)pos * freq;
        cs[i] = (float)cos(ang);
        cs[i + 1] = (float)sin(ang);
    }
}

const struct gf_kernels gf_kernels_scalar = {
    .name = "scalar",
    .dot_f32 = dot_f32,
    .dot_f16 = dot_f16,
    .dot_q8 = dot_q8,
    .dot_q4 = dot_q4,
    .dot4_f32 = dot4_f32,
    .dot4_q8 = dot4_q8,
    .dot4_q4 = dot4_q4,
    .matvec = gf_matvec_generic,
    .quantize_q8 = quantize_q8,
    .axpy_f32 = axpy_f32,
    .axpy_f16 = axpy_f16,
    .f32_to_f16 = f32_to_f16,
    .rmsnorm = rmsnorm,
    .softmax = softmax,
    .swiglu = swiglu,
    .rope = rope,
};

static struct gf_kernels avx2_table, avx512_table;
static int have_avx2, have_avx512;
static const struct gf_kernels *best;
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* CPUID leaf 1, ECX bit 29. Asked directly: clang's __builtin_cpu_supports has no "f16c". */
static int cpu_has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
}

static void choose(void)
{
    __builtin_cpu_init();
    have_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
    have_avx512 = have_avx2 && __builtin_cpu_supports("avx512f") &&
                  __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    if (have_avx2) {
        avx2_table = gf_kernels_scalar;
        gf_kernels_fill_avx2(&avx2_table);
    }
    if (have_avx512) {
        avx512_table = avx2_table;
        gf_kernels_fill_avx512(&avx512_table);
        if (__builtin_cpu_supports("avx512vnni"))
            gf_kernels_fill_avx512_vnni(&avx512_table);
    }
    best = have_avx512 ? &avx512_table : have_avx2 ? &avx2_table : &gf_kernels_scalar;
    const char *force = getenv("GF_KERNELS");
    if (force != NULL && force[0] != '\0') {
        if (strcmp(force, "scalar") == 0)
            best = &gf_kernels_scalar;
        else if (strcmp(force, "avx2") == 0 && have_avx2)
            best = &avx2_table;
    }
}

const struct gf_kernels *gf_kernels_get(void)
{
    pthread_once(&once, choose);
    return best;
}

const struct gf_kernels *gf_kernels_by_name(const char *name)
{
    pthread_once(&once, choose);
    if (strcmp(name, "scalar") == 0)
        return &gf_kernels_scalar;
    if (strcmp(name, "avx2") == 0)
        return have_avx2 ? &avx2_table : NULL;
    if (strcmp(name, "avx512") == 0)
        return have_avx512 ? &avx512_table : NULL;
    return NULL;
}

size_t gf_wt_row_bytes(int type, int n)
{
    switch (type) {
    case GF_WT_F32:
        return (size_t)n * 4;
    case GF_WT_F16:
        return (size_t)n * 2;
    case GF_WT_Q8_0:
        return (size_t)(n / GF_QK) * sizeof(struct gf_block_q8);
    case GF_WT_Q4_0:
        return (size_t)(n / GF_QK) * sizeof(struct gf_block_q4);
    default:
        return 0;
    }
}

void gf_wt_row_to_f32(int type, const void *row, float *out, int n)
{
    switch (type) {
    case GF_WT_F32:
        memcpy(out, row, (size_t)n * sizeof(float));
        break;
    case GF_WT_F16: {
        const uint16_t *h = row;
        for (int i = 0; i < n; i++)
            out[i] = gf_h2f(h[i]);
        break;
    }
    case GF_WT_Q8_0: {
        const struct gf_block_q8 *b = row;
        for (int k = 0; k < n / GF_QK; k++) {
            float d = gf_h2f(b[k].d);
            for (int i = 0; i < GF_QK; i++)
                out[k * GF_QK + i] = d * (float)b[k].qs[i];
        }
        break;
    }
    case GF_WT_Q4_0: {
        const struct gf_block_q4 *b = row;
        for (int k = 0; k < n / GF_QK; k++) {
            float d = gf_h2f(b[k].d);
            for (int i = 0; i < GF_QK / 2; i++) {
                out[k * GF_QK + i] = d * (float)((b[k].qs[i] & 0x0f) - 8);
                out[k * GF_QK + i + GF_QK / 2] = d * (float)((b[k].qs[i] >> 4) - 8);
            }
        }
        break;
    }
    default:
        memset(out, 0, (size_t)n * sizeof(float));
        break;
    }
}
