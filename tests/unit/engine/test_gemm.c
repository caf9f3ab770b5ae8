/* test_gemm.c — the integer prompt product (engine/gemm*.c): the scalar implementation against
 * the decode dot kernels (dot_q8/dot_q4 on the same Q8_0 activations), then the SIMD one
 * against the scalar one, byte for byte for the packed layouts and within float rounding for
 * the products, over row counts that leave a group of 16 rows part empty and token counts that
 * are not multiples of the micro-kernel's 8; the F32 kernel likewise. */
#include "engine/gemm_int.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "common/common.h"
#include "tests/test.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

static float frand(void)  // uniform in [-1, 1)
{
    return (float)(next() >> 8) / 8388608.0f - 1.0f;
}

enum { MAX_NB = 9, MAX_T = 19, MAX_R = 37, MAX_G = (MAX_R + GF_GEMM_ROWS - 1) / GF_GEMM_ROWS };

/* Random weight rows of a type, with block scales of sane size. */
static void make_rows(int type, int nb, int R, uint8_t *w, size_t row_bytes)
{
    size_t bb = type == GF_WT_Q8_0 ? sizeof(struct gf_block_q8) : sizeof(struct gf_block_q4);
    for (size_t i = 0; i < row_bytes * (size_t)R; i++)
        w[i] = (uint8_t)next();
    for (int r = 0; r < R; r++)
        for (int b = 0; b < nb; b++) {
            uint16_t d = gf_f2h(0.002f + 0.01f * (float)(next() % 100) / 100.0f);
            memcpy(w + (size_t)r * row_bytes + (size_t)b * bb, &d, sizeof(d));
        }
}

struct packed {
    uint8_t xp[MAX_T * MAX_NB * GF_GEMM_XREC];
    uint8_t wp[MAX_G * MAX_NB * GF_GEMM_GROUP];
    float y[MAX_T * MAX_R];
};

static void run(const struct gf_gemm *g, int type, const struct gf_block_q8 *xq, int T,
                const uint8_t *w, size_t row_bytes, int R, int nb, struct packed *p)
{
    memset(p, 0, sizeof(*p));
    for (int t = 0; t < T; t++)
        g->pack_x(xq + (size_t)t * nb, nb, p->xp + (size_t)t * nb * GF_GEMM_XREC);
    for (int r = 0; r < R; r += GF_GEMM_ROWS)
        g->pack_w(type, w + (size_t)r * row_bytes, row_bytes,
                  R - r < GF_GEMM_ROWS ? R - r : GF_GEMM_ROWS, nb,
                  p->wp + (size_t)(r / GF_GEMM_ROWS) * nb * GF_GEMM_GROUP);
    g->tile(p->xp, T, p->wp, R, nb, p->y, MAX_R);
}

static void check_case(int type, int nb, int T, int R)
{
    const struct gf_kernels *k = &gf_kernels_scalar;
    const struct gf_gemm *simd = gf_gemm_get();
    static float x[MAX_T * MAX_NB * GF_QK];
    static struct gf_block_q8 xq[MAX_T * MAX_NB];
    static uint8_t w[MAX_R * MAX_NB * sizeof(struct gf_block_q8)];
    static struct packed ps, pv;
    int cols = nb * GF_QK;
    size_t row_bytes = gf_wt_row_bytes(type, cols);
    for (int i = 0; i < T * cols; i++)
        x[i] = frand() * 3.0f;
    for (int t = 0; t < T; t++)
        k->quantize_q8(x + (size_t)t * cols, xq + (size_t)t * nb, cols);
    make_rows(type, nb, R, w, row_bytes);
    // the rows in a buffer of their exact size, so that a read past row R is caught (ASan)
    uint8_t *wh = gf_malloc(row_bytes * (size_t)R);
    CHECK(wh != NULL);
    if (wh == NULL)
        return;
    memcpy(wh, w, row_bytes * (size_t)R);
    run(&gf_gemm_scalar, type, xq, T, wh, row_bytes, R, nb, &ps);
    double worst = 0;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++) {
            const void *row = w + (size_t)r * row_bytes;
            float ref = type == GF_WT_Q8_0 ? k->dot_q8(row, xq + (size_t)t * nb, nb)
                                           : k->dot_q4(row, xq + (size_t)t * nb, nb);
            worst = fmax(worst, fabs(ref - ps.y[t * MAX_R + r]) / fmax(1.0, fabs(ref)));
        }
    CHECK_MSG(worst < 1e-4, "scalar type %d nb %d T %d R %d: error %g", type, nb, T, R, worst);
    if (simd == NULL) {
        gf_free(wh);
        return;
    }
    run(simd, type, xq, T, wh, row_bytes, R, nb, &pv);
    gf_free(wh);
    CHECK_MSG(memcmp(ps.xp, pv.xp, sizeof(ps.xp)) == 0,
              "%s: packed activations differ (nb %d)", simd->name, nb);
    CHECK_MSG(memcmp(ps.wp, pv.wp, sizeof(ps.wp)) == 0,
              "%s: packed weights differ (type %d nb %d R %d)", simd->name, type, nb, R);
    worst = 0;
    bool clean = true;  // nothing written past R rows or T tokens
    for (int t = 0; t < MAX_T; t++)
        for (int r = 0; r < MAX_R; r++) {
            float a = ps.y[t * MAX_R + r], b = pv.y[t * MAX_R + r];
            if (t < T && r < R)
                worst = fmax(worst, fabs(a - b) / fmax(1.0, fabs(a)));
            else
                clean &= b == 0.0f;
        }
    CHECK_MSG(worst < 1e-4, "%s type %d nb %d T %d R %d: error %g", simd->name, type, nb, T, R,
              worst);
    CHECK_MSG(clean, "%s type %d T %d R %d wrote past its rows or tokens", simd->name, type, T, R);
}

static void test_products(void)
{
    const int types[] = {GF_WT_Q8_0, GF_WT_Q4_0};
    const int nbs[] = {1, 2, 3, 8, 9};
    const int ts[] = {1, 3, 8, 9, 19};
    const int rs[] = {1, 3, 15, 16, 17, 37};
    for (size_t a = 0; a < 2; a++)
        for (size_t b = 0; b < GF_ARRAY_LEN(nbs); b++)
            for (size_t c = 0; c < GF_ARRAY_LEN(ts); c++)
                for (size_t d = 0; d < GF_ARRAY_LEN(rs); d++)
                    check_case(types[a], nbs[b], ts[c], rs[d]);
    if (gf_gemm_get() == NULL)
        fprintf(stderr, "note: no AVX-512 VNNI here: only the scalar product was checked\n");
}

/* Regrouped weights (x16): the scalar product against the dot kernels, the SIMD one against the
 * scalar one, for 1-3 groups of 16 rows and token counts around the micro-kernel's 8. */
static void check_x16(int type, int nb, int T, int R)
{
    const struct gf_kernels *k = &gf_kernels_scalar;
    const struct gf_gemm *simd = gf_gemm_get();
    static float x[MAX_T * MAX_NB * GF_QK];
    static struct gf_block_q8 xq[MAX_T * MAX_NB];
    static uint8_t w[48 * MAX_NB * sizeof(struct gf_block_q8)];
    static uint8_t xp[MAX_T * MAX_NB * GF_GEMM_XREC];
    static float y1[MAX_T * 48], y2[MAX_T * 48];
    int cols = nb * GF_QK;
    size_t row_bytes = gf_wt_row_bytes(type, cols);
    for (int i = 0; i < T * cols; i++)
        x[i] = frand() * 3.0f;
    for (int t = 0; t < T; t++) {
        k->quantize_q8(x + (size_t)t * cols, xq + (size_t)t * nb, cols);
        gf_gemm_scalar.pack_x(xq + (size_t)t * nb, nb, xp + (size_t)t * nb * GF_GEMM_XREC);
    }
    make_rows(type, nb, R, w, row_bytes);
    // the regrouped rows in a buffer of their exact size (reads past it are caught by ASan)
    uint8_t *wh = gf_malloc(row_bytes * (size_t)R);
    CHECK(wh != NULL);
    if (wh == NULL)
        return;
    gf_gemm_regroup(type, w, row_bytes, R, nb, wh);
    gf_gemm_scalar.x16(type, xp, T, wh, R, nb, y1, 48);
    double worst = 0;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < R; r++) {
            const void *row = w + (size_t)r * row_bytes;
            float ref = type == GF_WT_Q8_0 ? k->dot_q8(row, xq + (size_t)t * nb, nb)
                                           : k->dot_q4(row, xq + (size_t)t * nb, nb);
            worst = fmax(worst, fabs(ref - y1[t * 48 + r]) / fmax(1.0, fabs(ref)));
        }
    CHECK_MSG(worst < 1e-4, "x16 scalar type %d nb %d T %d R %d: error %g", type, nb, T, R, worst);
    if (simd != NULL) {
        memset(y2, 0, sizeof(y2));
        simd->x16(type, xp, T, wh, R, nb, y2, 48);
        worst = 0;
        bool clean = true;
        for (int t = 0; t < MAX_T; t++)
            for (int r = 0; r < 48; r++) {
                if (t < T && r < R)
                    worst = fmax(worst, fabs(y1[t * 48 + r] - y2[t * 48 + r]) /
                                            fmax(1.0, fabs(y1[t * 48 + r])));
                else
                    clean &= y2[t * 48 + r] == 0.0f;
            }
        CHECK_MSG(worst < 1e-4, "x16 %s type %d nb %d T %d R %d: error %g", simd->name, type, nb,
                  T, R, worst);
        CHECK_MSG(clean, "x16 %s type %d T %d R %d wrote past its rows or tokens", simd->name,
                  type, T, R);
    }
    gf_free(wh);
}

static void test_x16(void)
{
    const int types[] = {GF_WT_Q8_0, GF_WT_Q4_0};
    const int nbs[] = {1, 2, 3, 9};
    const int ts[] = {1, 2, 7, 8, 9, 19};
    const int rs[] = {16, 32, 48};
    for (size_t a = 0; a < 2; a++)
        for (size_t b = 0; b < GF_ARRAY_LEN(nbs); b++)
            for (size_t c = 0; c < GF_ARRAY_LEN(ts); c++)
                for (size_t d = 0; d < GF_ARRAY_LEN(rs); d++)
                    check_x16(types[a], nbs[b], ts[c], rs[d]);
}

/* The +128 offset of the activations cancels exactly even at the extremes of both ranges. */
static void test_extremes(void)
{
    const struct gf_gemm *impls[2] = {&gf_gemm_scalar, gf_gemm_get()};
    struct gf_block_q8 x, w;
    x.d = w.d = gf_f2h(1.0f);
    for (int i = 0; i < GF_QK; i++) {
        x.qs[i] = (int8_t)(i % 2 ? -127 : 127);
        w.qs[i] = (int8_t)(i % 2 ? -128 : 127);
    }
    int32_t expect = 0;
    for (int i = 0; i < GF_QK; i++)
        expect += x.qs[i] * w.qs[i];
    for (int i = 0; i < 2; i++) {
        if (impls[i] == NULL)
            continue;
        static struct packed p;
        run(impls[i], GF_WT_Q8_0, &x, 1, (const uint8_t *)&w, sizeof(w), 1, 1, &p);
        CHECK_MSG(p.y[0] == (float)expect, "%s: %g, expected %d", impls[i]->name, p.y[0], expect);
    }
}

/* F32 weights (outer-product kernel): the SIMD kernel against the scalar one, over token and row
 * counts that exercise every micro-kernel shape and the padded token lanes. */
static void test_f32(void)
{
    const struct gf_gemm *simd = gf_gemm_get();
    if (simd == NULL)
        return;
    enum { T = 53, R = 70, K = 37, LDT = 64 };
    static float xt[K * LDT], w[R * K], y1[T * R], y2[T * R];
    for (int i = 0; i < K * LDT; i++)
        xt[i] = frand();
    for (int i = 0; i < R * K; i++)
        w[i] = frand();
    const int ts[] = {1, 16, 17, 48, 53}, rs[] = {1, 2, 3, 4, 8, 9, 15, 64, 70};
    for (size_t a = 0; a < GF_ARRAY_LEN(ts); a++)
        for (size_t b = 0; b < GF_ARRAY_LEN(rs); b++) {
            memset(y2, 0, sizeof(y2));
            gf_gemm_scalar.f32(xt, ts[a], LDT, w, K, rs[b], K, y1, R);
            simd->f32(xt, ts[a], LDT, w, K, rs[b], K, y2, R);
            double worst = 0;
            for (int t = 0; t < ts[a]; t++)
                for (int r = 0; r < rs[b]; r++)
                    worst = fmax(worst, fabs(y1[t * R + r] - y2[t * R + r]));
            CHECK_MSG(worst < 1e-4, "f32 T %d R %d: error %g", ts[a], rs[b], worst);
            // nothing past T rows of the output is written
            bool clean = true;
            for (int i = ts[a] * R; i < T * R; i++)
                clean &= y2[i] == 0.0f;
            CHECK_MSG(clean, "f32 T %d R %d wrote past its tokens", ts[a], rs[b]);
        }
}

/* The transposed operand of the F32 product, against the scalar one, for shapes around the
 * 16 x 16 blocks, with the padding columns (zeros up to a multiple of 16) and nothing past. */
static void test_f32_pack(void)
{
    const struct gf_gemm *simd = gf_gemm_get();
    if (simd == NULL)
        return;
    enum { TM = 40, KM = 37, LDX = 41, LDT = 56 };
    static float x[TM * LDX], a[KM * LDT], b[KM * LDT];
    for (int i = 0; i < TM * LDX; i++)
        x[i] = frand();
    const int ts[] = {1, 15, 16, 17, 33, 40}, ks[] = {1, 2, 15, 16, 17, 37};
    for (size_t i = 0; i < GF_ARRAY_LEN(ts); i++)
        for (size_t j = 0; j < GF_ARRAY_LEN(ks); j++) {
            for (int e = 0; e < KM * LDT; e++)
                a[e] = b[e] = 7.0f;
            gf_gemm_scalar.f32_pack(x, LDX, ts[i], ks[j], a, LDT);
            simd->f32_pack(x, LDX, ts[i], ks[j], b, LDT);
            bool same = memcmp(a, b, sizeof(a)) == 0, ok = true;
            int tp = (ts[i] + 15) / 16 * 16;
            for (int k = 0; k < KM; k++)
                for (int t = 0; t < LDT; t++) {
                    float want = k >= ks[j] || t >= tp ? 7.0f : t >= ts[i] ? 0.0f : x[t * LDX + k];
                    ok &= a[k * LDT + t] == want;
                }
            CHECK_MSG(same && ok, "f32_pack T %d K %d: same %d, as expected %d", ts[i], ks[j],
                      same, ok);
        }
}

int main(void)
{
    RUN(test_products);
    RUN(test_x16);
    RUN(test_f32);
    RUN(test_f32_pack);
    RUN(test_extremes);
    return test_report();
}
