/* test_kernels.c — every SIMD kernel against the scalar one on random data (lengths with and
 * without tails), the half conversions exhaustively, and the scalar kernels against plain
 * definitions. Runs each table this CPU supports; says which were skipped. */
#include "engine/kernels_int.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/common.h"
#include "tests/test.h"

static uint64_t rng = 88172645463325252ull;

static float frand(void)  // uniform in [-1, 1)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)(rng >> 40) / 8388608.0f - 1.0f;
}

static bool close_rel(float a, float b, float tol)
{
    float d = fabsf(a - b), m = fmaxf(1.0f, fmaxf(fabsf(a), fabsf(b)));
    return d <= tol * m;
}

static void test_half_exhaustive(void)
{
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = gf_h2f((uint16_t)h);
        if (isnan(f))
            continue;
        if (gf_f2h(f) != h)
            bad++;
    }
    CHECK_MSG(bad == 0, "%d halves do not round-trip", bad);
    CHECK(gf_h2f(0x3c00) == 1.0f);
    CHECK(gf_h2f(0xc000) == -2.0f);
    CHECK(gf_h2f(0x0001) == ldexpf(1.0f, -24));
    CHECK(gf_f2h(65504.0f) == 0x7bff);
    CHECK(gf_f2h(65520.0f) == 0x7c00);             // ties to even: overflows to inf
    CHECK(gf_f2h(1.0f + ldexpf(1.0f, -11)) == 0x3c00); // tie, even mantissa stays
    CHECK(gf_f2h(ldexpf(1.0f, -25)) == 0x0000);   // tie between 0 and the smallest subnormal
    CHECK(gf_f2h(ldexpf(1.5f, -25)) == 0x0001);
    CHECK(isnan(gf_h2f(gf_f2h(NAN))));
}

static void fill(float *x, int n, float scale)
{
    for (int i = 0; i < n; i++)
        x[i] = frand() * scale;
}

static void compare_table(const struct gf_kernels *k)
{
    const struct gf_kernels *s = &gf_kernels_scalar;
    enum { N = 4096 + 32 };
    static float a[N], b[N], y1[N], y2[N], o1[N], o2[N];
    static uint16_t h[N], h1[N], h2[N];
    static struct gf_block_q8 qa[N / GF_QK], qb1[N / GF_QK], qb2[N / GF_QK];
    static struct gf_block_q4 q4[N / GF_QK];
    const int lens[] = {1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 172, 768, 2048, 4096};
    int bad_dot = 0, bad_f16 = 0, bad_axpy = 0, bad_h = 0, bad_norm = 0;
    for (size_t li = 0; li < GF_ARRAY_LEN(lens); li++) {
        int n = lens[li];
        fill(a, n, 1.0f);
        fill(b, n, 3.0f);
        for (int i = 0; i < n; i++)
            h[i] = gf_f2h(a[i]);
        if (!close_rel(k->dot_f32(a, b, n), s->dot_f32(a, b, n), 1e-5f))
            bad_dot++;
        if (!close_rel(k->dot_f16(h, b, n), s->dot_f16(h, b, n), 1e-5f))
            bad_f16++;
        memcpy(y1, b, (size_t)n * 4);
        memcpy(y2, b, (size_t)n * 4);
        k->axpy_f32(y1, 0.37f, a, n);
        s->axpy_f32(y2, 0.37f, a, n);
        k->axpy_f16(y1, -1.5f, h, n);
        s->axpy_f16(y2, -1.5f, h, n);
        for (int i = 0; i < n; i++)
            if (!close_rel(y1[i], y2[i], 1e-6f))
                bad_axpy++;
        // include subnormal and huge values: conversion must be bit-exact
        for (int i = 0; i < n; i++)
            y1[i] = a[i] * (i % 3 == 0 ? 1e-6f : i % 5 == 0 ? 7e4f : 100.0f);
        k->f32_to_f16(y1, h1, n);
        s->f32_to_f16(y1, h2, n);
        if (memcmp(h1, h2, (size_t)n * 2) != 0)
            bad_h++;
        k->rmsnorm(o1, b, a, n, 1e-5f);
        s->rmsnorm(o2, b, a, n, 1e-5f);
        for (int i = 0; i < n; i++)
            if (!close_rel(o1[i], o2[i], 1e-5f))
                bad_norm++;
    }
    CHECK_MSG(bad_dot == 0, "%s dot_f32: %d lengths differ", k->name, bad_dot);
    // four tokens at once equal four single dot products of the scalar table
    int bad4 = 0;
    for (size_t li = 0; li < GF_ARRAY_LEN(lens); li++) {
        int n = lens[li];
        fill(a, n, 1.0f);
        fill(b, n, 1.0f);
        fill(y1, n, 1.0f);
        fill(y2, n, 1.0f);
        fill(o1, n, 1.0f);
        const float *xs[4] = {b, y1, y2, o1};
        float out[4];
        k->dot4_f32(a, xs, n, out);
        for (int i = 0; i < 4; i++)
            bad4 += !close_rel(out[i], s->dot_f32(a, xs[i], n), 1e-5f);
    }
    CHECK_MSG(bad4 == 0, "%s dot4_f32: %d products differ", k->name, bad4);
    CHECK_MSG(bad_f16 == 0, "%s dot_f16: %d lengths differ", k->name, bad_f16);
    CHECK_MSG(bad_axpy == 0, "%s axpy: %d values differ", k->name, bad_axpy);
    CHECK_MSG(bad_h == 0, "%s f32_to_f16: %d lengths differ", k->name, bad_h);
    CHECK_MSG(bad_norm == 0, "%s rmsnorm: %d values differ", k->name, bad_norm);

    // quantized: the same blocks bit for bit, and dot products equal up to float order
    int bad_q = 0, bad_q8 = 0, bad_q4 = 0;
    for (int n = GF_QK; n <= 4096; n *= 2) {
        fill(a, n, 2.0f);
        fill(b, n, 0.5f);
        a[3] = 0.0f;  // an exact tie case: x/d of .5 rounds to even
        for (int i = 0; i < GF_QK; i++)
            b[i] = 0.0f;  // an all-zero block (d = 0)
        k->quantize_q8(b, qb1, n);
        s->quantize_q8(b, qb2, n);
        if (memcmp(qb1, qb2, sizeof(qb1[0]) * (size_t)(n / GF_QK)) != 0)
            bad_q++;
        s->quantize_q8(a, qa, n);
        for (int blk = 0; blk < n / GF_QK; blk++) {
            q4[blk].d = gf_f2h(frand() * 0.1f);
            for (int i = 0; i < GF_QK / 2; i++)
                q4[blk].qs[i] = (uint8_t)(rng >> (i % 7 * 8));
            frand();
        }
        if (!close_rel(k->dot_q8(qa, qb2, n / GF_QK), s->dot_q8(qa, qb2, n / GF_QK), 1e-5f))
            bad_q8++;
        if (!close_rel(k->dot_q4(q4, qb2, n / GF_QK), s->dot_q4(q4, qb2, n / GF_QK), 1e-5f))
            bad_q4++;
    }
    CHECK_MSG(bad_q == 0, "%s quantize_q8: %d lengths differ", k->name, bad_q);
    {
        enum { NB = 4096 / GF_QK };
        static struct gf_block_q8 xs4[4][NB];
        int badq = 0;
        for (int i = 0; i < 4; i++) {
            fill(a, 4096, 1.5f);
            s->quantize_q8(a, xs4[i], 4096);
        }
        const struct gf_block_q8 *xp[4] = {xs4[0], xs4[1], xs4[2], xs4[3]};
        for (int nb = 1; nb <= NB; nb *= 2) {
            float o8[4], o4[4];
            k->dot4_q8(qa, xp, nb, o8);
            k->dot4_q4(q4, xp, nb, o4);
            for (int i = 0; i < 4; i++) {
                badq += !close_rel(o8[i], s->dot_q8(qa, xp[i], nb), 1e-5f);
                badq += !close_rel(o4[i], s->dot_q4(q4, xp[i], nb), 1e-5f);
            }
        }
        CHECK_MSG(badq == 0, "%s dot4_q8/q4: %d products differ", k->name, badq);
    }
    CHECK_MSG(bad_q8 == 0, "%s dot_q8: %d lengths differ", k->name, bad_q8);
    CHECK_MSG(bad_q4 == 0, "%s dot_q4: %d lengths differ", k->name, bad_q4);

    // the rest of the table, whatever it holds, agrees with scalar too
    fill(a, 256, 4.0f);
    memcpy(b, a, 256 * 4);
    k->softmax(a, 256);
    s->softmax(b, 256);
    int bad_sm = 0;
    for (int i = 0; i < 256; i++)
        bad_sm += !close_rel(a[i], b[i], 1e-6f);
    CHECK_MSG(bad_sm == 0, "%s softmax differs", k->name);
    fill(a, 300, 6.0f);
    fill(b, 300, 1.0f);
    k->swiglu(o1, a, b, 300);
    s->swiglu(o2, a, b, 300);
    int bad_sw = 0;
    for (int i = 0; i < 300; i++)
        bad_sw += !close_rel(o1[i], o2[i], 1e-6f);
    CHECK_MSG(bad_sw == 0, "%s swiglu differs", k->name);
    float cs[64];
    gf_rope_cos_sin(cs, 64, 37, 10000.0f);
    fill(a, 4 * 64, 1.0f);
    memcpy(b, a, 4 * 64 * 4);
    k->rope(a, 4, 64, 64, cs);
    s->rope(b, 4, 64, 64, cs);
    CHECK(memcmp(a, b, 4 * 64 * 4) == 0 || close_rel(a[5], b[5], 1e-6f));
}

/* matvec over a few rows and 1..10 tokens equals the scalar dot product of every (row, token),
 * for each weight type, with an even and an odd number of blocks per row. */
static void compare_matvec(const struct gf_kernels *k)
{
    const struct gf_kernels *s = &gf_kernels_scalar;
    enum { ROWS = 5, TOK = 10, COLS_MAX = 2048 + 32, NB_MAX = COLS_MAX / GF_QK };
    static float w32[ROWS][COLS_MAX], x[TOK][COLS_MAX], y[TOK][ROWS + 3];
    static uint16_t w16[ROWS][COLS_MAX];
    static struct gf_block_q8 w8[ROWS][NB_MAX], xq[TOK][NB_MAX];
    static struct gf_block_q4 w4[ROWS][NB_MAX];
    static unsigned char rec[NB_MAX * TOK * GF_MV_REC];
    static unsigned char rec1[(NB_MAX / 4 + 1) * GF_MV1_Q4_REC + NB_MAX / 2 * GF_MV1_Q8_REC];
    // 1 to 7 blocks and 65: every remainder of the single-token kernels' groups of 2 and 4
    const int cols_list[] = {32, 64, 96, 128, 160, 192, 224, 2048 + 32};
    int bad = 0;
    for (size_t ci = 0; ci < GF_ARRAY_LEN(cols_list); ci++) {
        int cols = cols_list[ci], nb = cols / GF_QK;
        for (int r = 0; r < ROWS; r++) {
            fill(w32[r], cols, 1.0f);
            for (int i = 0; i < cols; i++)
                w16[r][i] = gf_f2h(w32[r][i]);
            s->quantize_q8(w32[r], w8[r], cols);
            for (int b = 0; b < nb; b++) {
                w4[r][b].d = gf_f2h(frand() * 0.1f);
                for (int i = 0; i < GF_QK / 2; i++)
                    w4[r][b].qs[i] = (uint8_t)(rng >> (i % 7 * 8));
                frand();
            }
            w8[r][0].qs[0] = -128;  // the most negative weight byte is legal in a file
        }
        for (int t = 0; t < TOK; t++) {
            fill(x[t], cols, 2.0f);
            s->quantize_q8(x[t], xq[t], cols);
        }
        const int types[] = {GF_WT_F32, GF_WT_F16, GF_WT_Q8_0, GF_WT_Q4_0};
        const void *ws[] = {w32, w16, w8, w4};
        size_t strides[] = {sizeof(w32[0]), sizeof(w16[0]), sizeof(w8[0]), sizeof(w4[0])};
        for (size_t ti = 0; ti < GF_ARRAY_LEN(types); ti++) {
            for (int T = 1; T <= TOK; T++) {
                struct gf_mv_x mv = {.T = T, .f = x[0], .ldf = COLS_MAX, .q = xq[0],
                                     .ldq = NB_MAX};
                if (k->uses_prep) {
                    gf_mv_prep(xq[0], NB_MAX, T, nb, rec);
                    mv.rec = rec;
                }
                bool quant = types[ti] == GF_WT_Q8_0 || types[ti] == GF_WT_Q4_0;
                if (k->uses_prep1 && T == 1 && quant) {
                    CHECK(gf_mv_prep1_size(nb) <= sizeof(rec1));
                    gf_mv_prep1(types[ti], xq[0], nb, rec1);
                    mv.rec1 = rec1;
                    mv.rec1_type = types[ti];
                }
                k->matvec(k, types[ti], ws[ti], strides[ti], ROWS, cols, &mv, &y[0][0], ROWS + 3);
                for (int t = 0; t < T; t++) {
                    for (int r = 0; r < ROWS; r++) {
                        float want = 0;
                        switch (types[ti]) {
                        case GF_WT_F32:
                            want = s->dot_f32(w32[r], x[t], cols);
                            break;
                        case GF_WT_F16:
                            want = s->dot_f16(w16[r], x[t], cols);
                            break;
                        case GF_WT_Q8_0:
                            want = s->dot_q8(w8[r], xq[t], nb);
                            break;
                        default:
                            want = s->dot_q4(w4[r], xq[t], nb);
                            break;
                        }
                        // the same terms summed in another order: the difference is bounded
                        // by the sum of |terms| (per value for floats, per block for the
                        // quantized types, whose block sums are exact integers)
                        float mag = 0;
                        if (types[ti] == GF_WT_F32 || types[ti] == GF_WT_F16) {
                            for (int i = 0; i < cols; i++)
                                mag += fabsf(w32[r][i] * x[t][i]);
                        } else {
                            for (int b = 0; b < nb; b++)
                                mag += fabsf(types[ti] == GF_WT_Q8_0
                                                 ? s->dot_q8(&w8[r][b], &xq[t][b], 1)
                                                 : s->dot_q4(&w4[r][b], &xq[t][b], 1));
                        }
                        bad += !(fabsf(y[t][r] - want) <= 2e-6f * fmaxf(mag, 1.0f));
                    }
                }
            }
        }
    }
    CHECK_MSG(bad == 0, "%s matvec: %d products differ", k->name, bad);
}

/* The F32 product on rows and tokens packed back to back in buffers of exactly their size (so
 * that the sanitizers see any read past them), for 1 to 7 rows (the multi-token kernel takes
 * three at a time), 1 to 15 tokens (groups of eight and a rest) and column counts with and
 * without a tail of 16, against the scalar dot product; outputs past the rows stay untouched. */
static void compare_matvec_f32(const struct gf_kernels *k)
{
    const struct gf_kernels *s = &gf_kernels_scalar;
    const int cols_list[] = {1, 5, 16, 17, 31, 33, 48, 100, 769, 2048 + 7};
    enum { NR_MAX = 7, T_MAX = 15, LDY = NR_MAX + 2 };
    int bad = 0, touched = 0;
    for (size_t ci = 0; ci < GF_ARRAY_LEN(cols_list); ci++) {
        int cols = cols_list[ci];
        for (int nr = 1; nr <= NR_MAX; nr++) {
            float *w = malloc((size_t)nr * cols * sizeof(float));
            CHECK(w != NULL);
            fill(w, nr * cols, 1.0f);
            for (int T = 1; T <= T_MAX; T += (T < 9 ? 1 : 2)) {
                float *x = malloc((size_t)T * cols * sizeof(float));
                float y[T_MAX][LDY];
                CHECK(x != NULL);
                fill(x, T * cols, 2.0f);
                for (int t = 0; t < T_MAX; t++)
                    for (int r = 0; r < LDY; r++)
                        y[t][r] = -7.0f;
                struct gf_mv_x mv = {.T = T, .f = x, .ldf = (size_t)cols};
                k->matvec(k, GF_WT_F32, w, (size_t)cols * sizeof(float), nr, cols, &mv, &y[0][0],
                          LDY);
                for (int t = 0; t < T_MAX; t++)
                    for (int r = 0; r < LDY; r++) {
                        if (t >= T || r >= nr) {
                            touched += y[t][r] != -7.0f;
                            continue;
                        }
                        const float *row = w + (size_t)r * cols, *xt = x + (size_t)t * cols;
                        float want = s->dot_f32(row, xt, cols), mag = 0;
                        for (int i = 0; i < cols; i++)
                            mag += fabsf(row[i] * xt[i]);
                        bad += !(fabsf(y[t][r] - want) <= 2e-6f * fmaxf(mag, 1.0f));
                    }
                free(x);
            }
            free(w);
        }
    }
    CHECK_MSG(bad == 0, "%s F32 matvec: %d products differ", k->name, bad);
    CHECK_MSG(touched == 0, "%s F32 matvec: %d outputs written past the rows", k->name, touched);
}

/* The single-token product on rows packed back to back in a buffer of exactly their size (so
 * that the sanitizers see any read past the last row), for 1 to 9 blocks per row and 1 to 7
 * rows, against the scalar dot product; also a record type that does not match the weights,
 * which must fall back to the general records. */
static void compare_matvec1(const struct gf_kernels *k)
{
    const struct gf_kernels *s = &gf_kernels_scalar;
    if (!k->uses_prep1)
        return;
    enum { NB = 9, ROWS = 7 };
    float x[NB * GF_QK], w[NB * GF_QK], y[ROWS];
    struct gf_block_q8 xq[NB];
    static unsigned char rec[NB * GF_MV_REC];
    unsigned char *rec1 = gf_malloc(gf_mv_prep1_size(NB));
    int bad = 0;
    for (int nb = 1; nb <= NB && rec1 != NULL; nb++) {
        fill(x, nb * GF_QK, 3.0f);
        s->quantize_q8(x, xq, nb * GF_QK);
        gf_mv_prep(xq, (size_t)nb, 1, nb, rec);
        for (int type = GF_WT_Q4_0; type <= GF_WT_Q8_0; type += GF_WT_Q8_0 - GF_WT_Q4_0) {
            size_t rb = gf_wt_row_bytes(type, nb * GF_QK);
            for (int nr = 1; nr <= ROWS; nr++) {
                unsigned char *m = gf_malloc((size_t)nr * rb);
                if (m == NULL)
                    break;
                for (int r = 0; r < nr; r++) {
                    fill(w, nb * GF_QK, 1.0f);
                    struct gf_block_q8 wq[NB];
                    s->quantize_q8(w, wq, nb * GF_QK);
                    for (int b = 0; b < nb; b++) {
                        unsigned char *blk = m + (size_t)r * rb + (size_t)b * (rb / (size_t)nb);
                        if (type == GF_WT_Q8_0) {
                            memcpy(blk, &wq[b], sizeof(wq[b]));
                        } else {
                            uint16_t d = gf_f2h(frand() * 0.1f);
                            memcpy(blk, &d, 2);
                            for (int i = 0; i < GF_QK / 2; i++)
                                blk[2 + i] = (uint8_t)(rng >> (i % 7 * 8));
                            frand();
                        }
                    }
                }
                for (int mismatch = 0; mismatch < 2; mismatch++) {
                    int rt = mismatch ? (type == GF_WT_Q8_0 ? GF_WT_Q4_0 : GF_WT_Q8_0) : type;
                    gf_mv_prep1(rt, xq, nb, rec1);
                    struct gf_mv_x mv = {.T = 1, .f = x, .ldf = (size_t)nb * GF_QK, .q = xq,
                                         .ldq = (size_t)nb, .rec = rec, .rec1 = rec1,
                                         .rec1_type = rt};
                    k->matvec(k, type, m, rb, nr, nb * GF_QK, &mv, y, 1);
                    for (int r = 0; r < nr; r++) {
                        const void *row = m + (size_t)r * rb;
                        float want = type == GF_WT_Q8_0 ? s->dot_q8(row, xq, nb)
                                                        : s->dot_q4(row, xq, nb);
                        float mag = 0;
                        for (int b = 0; b < nb; b++)
                            mag += fabsf(type == GF_WT_Q8_0
                                             ? s->dot_q8((const struct gf_block_q8 *)row + b,
                                                         &xq[b], 1)
                                             : s->dot_q4((const struct gf_block_q4 *)row + b,
                                                         &xq[b], 1));
                        bad += !(fabsf(y[r] - want) <= 2e-6f * fmaxf(mag, 1.0f));
                    }
                }
                gf_free(m);
            }
        }
    }
    CHECK(rec1 != NULL);
    gf_free(rec1);
    CHECK_MSG(bad == 0, "%s single-token matvec: %d products differ", k->name, bad);
}

static void test_scalar_definitions(void)
{
    const struct gf_kernels *s = &gf_kernels_scalar;
    // quantize: d = amax/127, values rounded half to even
    float x[GF_QK];
    for (int i = 0; i < GF_QK; i++)
        x[i] = (float)(i - 16) / 16.0f * 1.27f;
    struct gf_block_q8 q;
    s->quantize_q8(x, &q, GF_QK);
    CHECK(fabsf(gf_h2f(q.d) - 1.27f / 127.0f) < 1e-5f);
    CHECK(q.qs[0] == -127);
    CHECK(q.qs[16] == 0);
    // Q4_0 nibble order: value i is the low nibble of qs[i], value i+16 the high one
    struct gf_block_q4 b4 = {.d = gf_f2h(2.0f)};
    b4.qs[0] = 0x9f;  // low 15 -> 7*2 = 14, high 9 -> 1*2 = 2
    float out[GF_QK];
    gf_wt_row_to_f32(GF_WT_Q4_0, &b4, out, GF_QK);
    CHECK(out[0] == 14.0f);
    CHECK(out[16] == 2.0f);
    CHECK(out[1] == -16.0f);
    // rope by 90 degrees: (1, 0) -> (0, 1)
    float v[2] = {1.0f, 0.0f}, cs[2] = {0.0f, 1.0f};
    s->rope(v, 1, 2, 2, cs);
    CHECK(fabsf(v[0]) < 1e-7f && fabsf(v[1] - 1.0f) < 1e-7f);
    float r[4] = {3.0f, 4.0f, 0.0f, 0.0f}, w[4] = {1, 1, 1, 1};
    s->rmsnorm(r, r, w, 4, 0.0f);  // rms = 2.5
    CHECK(fabsf(r[0] - 1.2f) < 1e-6f && fabsf(r[1] - 1.6f) < 1e-6f);
    CHECK(gf_wt_row_bytes(GF_WT_Q8_0, 64) == 68);
    CHECK(gf_wt_row_bytes(GF_WT_Q4_0, 64) == 36);
    CHECK(gf_wt_row_bytes(99, 64) == 0);
}

static void test_tables(void)
{
    const char *names[] = {"avx2", "avx512"};
    for (size_t i = 0; i < GF_ARRAY_LEN(names); i++) {
        const struct gf_kernels *k = gf_kernels_by_name(names[i]);
        if (k == NULL) {
            fprintf(stderr, "note: %s kernels not supported by this CPU; not compared\n",
                    names[i]);
            continue;
        }
        compare_table(k);
        compare_matvec(k);
        compare_matvec_f32(k);
        compare_matvec1(k);
    }
    compare_table(&gf_kernels_scalar);
    compare_matvec(&gf_kernels_scalar);  // trivially equal, but exercises every scalar path
    compare_matvec_f32(&gf_kernels_scalar);
    CHECK(gf_kernels_get() != NULL);
    CHECK(gf_kernels_by_name("nope") == NULL);
    fprintf(stderr, "note: chosen kernels: %s\n", gf_kernels_get()->name);
}

int main(void)
{
    RUN(test_half_exhaustive);
    RUN(test_scalar_definitions);
    RUN(test_tables);
    return test_report();
}
