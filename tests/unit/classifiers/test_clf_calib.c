/* test_clf_calib.c — isotonic calibration: monotone, within [0,1], close to the observed rate,
 * bounded in size, and tables from files checked. */
#include "classifiers/clf_int.h"

#include <math.h>

#include "tests/test.h"

static void test_identity_and_edges(void)
{
    struct gf_clf_calib c = {0};
    CHECK(gf_clf_calib_apply(&c, 0.3f) == 0.3f);
    c.n = 2;
    c.x[0] = 0.2f;
    c.y[0] = 0.1f;
    c.x[1] = 0.6f;
    c.y[1] = 0.9f;
    CHECK(gf_clf_calib_apply(&c, 0.0f) == 0.1f);
    CHECK(gf_clf_calib_apply(&c, 1.0f) == 0.9f);
    CHECK(fabsf(gf_clf_calib_apply(&c, 0.4f) - 0.5f) < 1e-6f);
    CHECK(gf_clf_calib_apply(&c, NAN) == 0.1f);
    CHECK(gf_clf_calib_check(&c, NULL) == 0);
}

static void test_fit_matches_rates(void)
{
    // Raw score r carries the label with probability r*r: calibration should learn r -> r^2.
    enum { N = 20000 };
    static float raw[N];
    static uint8_t y[N];
    uint64_t s = 1;
    for (int i = 0; i < N; i++) {
        s = s * 6364136223846793005ULL + 1;
        float r = (float)((s >> 11) % 10000) / 10000.0f;
        s = s * 6364136223846793005ULL + 1;
        float u = (float)((s >> 11) % 10000) / 10000.0f;
        raw[i] = r;
        y[i] = u < r * r;
    }
    struct gf_clf_calib c;
    REQUIRE(gf_clf_calib_fit(&c, raw, y, N) == 0);
    CHECK(c.n >= 2 && c.n <= GF_CLF_CALIB_MAX);
    CHECK(gf_clf_calib_check(&c, NULL) == 0);
    for (float r = 0.1f; r < 0.95f; r += 0.1f) {
        float p = gf_clf_calib_apply(&c, r);
        CHECK_MSG(fabsf(p - r * r) < 0.06f, "r=%.2f p=%.3f", r, p);
    }
    float prev = -1;
    int mono = 1;
    for (float r = 0; r <= 1.0f; r += 0.001f) {
        float p = gf_clf_calib_apply(&c, r);
        mono &= p >= prev && p >= 0 && p <= 1;
        prev = p;
    }
    CHECK(mono);
}

static void test_fit_small_and_empty(void)
{
    struct gf_clf_calib c;
    REQUIRE(gf_clf_calib_fit(&c, NULL, NULL, 0) == 0);
    // Only the two anchors: (0,0) and (1,1).
    CHECK(c.n == 2);
    CHECK(gf_clf_calib_apply(&c, 0.5f) > 0.4f && gf_clf_calib_apply(&c, 0.5f) < 0.6f);
    float raw[3] = {0.9f, 0.8f, 0.1f};
    uint8_t y[3] = {1, 1, 0};
    REQUIRE(gf_clf_calib_fit(&c, raw, y, 3) == 0);
    CHECK(gf_clf_calib_check(&c, NULL) == 0);
    CHECK(gf_clf_calib_apply(&c, 0.85f) > gf_clf_calib_apply(&c, 0.1f));
    // Out-of-range raw values are ignored, not trusted.
    float bad[2] = {NAN, 7.0f};
    uint8_t yb[2] = {1, 1};
    REQUIRE(gf_clf_calib_fit(&c, bad, yb, 2) == 0);
    CHECK(c.n == 2);
}

static void test_check_refuses(void)
{
    struct gf_clf_calib c = {.n = 2};
    c.x[0] = 0.5f;
    c.x[1] = 0.5f;  // not strictly increasing
    c.y[0] = 0.1f;
    c.y[1] = 0.2f;
    struct gf_err err = {0};
    CHECK(gf_clf_calib_check(&c, &err) == GF_EFORMAT);
    c.x[1] = 0.6f;
    c.y[1] = 0.05f;  // decreasing
    CHECK(gf_clf_calib_check(&c, NULL) == GF_EFORMAT);
    c.y[1] = 1.5f;   // outside [0,1]
    CHECK(gf_clf_calib_check(&c, NULL) == GF_EFORMAT);
    c.y[1] = NAN;
    CHECK(gf_clf_calib_check(&c, NULL) == GF_EFORMAT);
    c.n = GF_CLF_CALIB_MAX + 1;
    CHECK(gf_clf_calib_check(&c, NULL) == GF_EFORMAT);
}

static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    float raw[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    uint8_t y[4] = {0, 1, 0, 1};
    struct gf_clf_calib c;
    gf_alloc_fail_after(1, false);
    CHECK(gf_clf_calib_fit(&c, raw, y, 4) == GF_ENOMEM);
    gf_alloc_fail_after(2, false);
    CHECK(gf_clf_calib_fit(&c, raw, y, 4) == GF_ENOMEM);
    gf_alloc_fail_after(0, false);
    CHECK(gf_clf_calib_fit(&c, raw, y, 4) == 0);
}

int main(void)
{
    RUN(test_identity_and_edges);
    RUN(test_fit_matches_rates);
    RUN(test_fit_small_and_empty);
    RUN(test_check_refuses);
    RUN(test_oom);
    return test_report();
}
