/* test_sampler.c — greedy, temperature, top-k, top-p, min-p, the three penalties, seeded
 * reproducibility, the drawn distribution, log-probabilities and allocation failures. */
#include "engine/sampler_int.h"

#include <math.h>

#include "common/common.h"
#include "tests/test.h"

static struct gf_sampler_params greedy_params(void)
{
    return (struct gf_sampler_params){.temperature = 0, .top_p = 1, .repetition_penalty = 1};
}

static void test_greedy_and_truncation(void)
{
    float base[6] = {1.0f, 3.0f, 2.9f, -1.0f, 0.5f, 2.0f};
    float l[6];
    struct gf_sampler s;
    struct gf_sampler_params p = greedy_params();
    REQUIRE(gf_sampler_init(&s, &p, 6) == 0);
    memcpy(l, base, sizeof(l));
    CHECK(gf_sampler_sample(&s, l, NULL, NULL, 0) == 1);
    gf_sampler_cleanup(&s);
    // top-k 1, top-p tiny and min-p 1 each leave only the best token, whatever the seed
    struct gf_sampler_params cut[3] = {
        {.temperature = 1.5f, .top_k = 1, .top_p = 1, .repetition_penalty = 1},
        {.temperature = 1.5f, .top_p = 0.01f, .repetition_penalty = 1},
        {.temperature = 1.5f, .top_p = 1, .min_p = 1.0f, .repetition_penalty = 1},
    };
    for (int i = 0; i < 3; i++) {
        int bad = 0;
        for (uint64_t seed = 0; seed < 50; seed++) {
            cut[i].seed = seed;
            REQUIRE(gf_sampler_init(&s, &cut[i], 6) == 0);
            memcpy(l, base, sizeof(l));
            bad += gf_sampler_sample(&s, l, NULL, NULL, 0) != 1;
            gf_sampler_cleanup(&s);
        }
        CHECK_MSG(bad == 0, "truncation %d let %d other tokens through", i, bad);
    }
    // top-k 2 keeps tokens 1 and 2 only
    struct gf_sampler_params k2 = {.temperature = 1, .top_k = 2, .top_p = 1, .repetition_penalty = 1};
    int seen[6] = {0};
    REQUIRE(gf_sampler_init(&s, &k2, 6) == 0);
    for (int i = 0; i < 400; i++) {
        memcpy(l, base, sizeof(l));
        seen[gf_sampler_sample(&s, l, NULL, NULL, 0)]++;
    }
    gf_sampler_cleanup(&s);
    CHECK(seen[1] > 0 && seen[2] > 0 && seen[0] + seen[3] + seen[4] + seen[5] == 0);
}

static void test_distribution_and_seed(void)
{
    // p(1) = 0.75 at temperature 1: the draw follows it; the same seed repeats the draws
    struct gf_sampler_params p = {.temperature = 1, .top_p = 1, .repetition_penalty = 1,
                                  .seed = 42};
    struct gf_sampler a, b;
    REQUIRE(gf_sampler_init(&a, &p, 2) == 0);
    REQUIRE(gf_sampler_init(&b, &p, 2) == 0);
    int ones = 0, same = 0, n = 20000;
    for (int i = 0; i < n; i++) {
        float la[2] = {logf(0.25f), logf(0.75f)}, lb[2] = {logf(0.25f), logf(0.75f)};
        int x = gf_sampler_sample(&a, la, NULL, NULL, 0), y = gf_sampler_sample(&b, lb, NULL, NULL, 0);
        ones += x;
        same += x == y;
    }
    CHECK(same == n);
    CHECK_MSG(fabs((double)ones / n - 0.75) < 0.02, "share %f", (double)ones / n);
    gf_sampler_cleanup(&a);
    gf_sampler_cleanup(&b);
    // temperature 2 flattens: p(1) = sqrt(3)/(1+sqrt(3)) = 0.634
    p.temperature = 2;
    REQUIRE(gf_sampler_init(&a, &p, 2) == 0);
    ones = 0;
    for (int i = 0; i < n; i++) {
        float la[2] = {logf(0.25f), logf(0.75f)};
        ones += gf_sampler_sample(&a, la, NULL, NULL, 0);
    }
    CHECK_MSG(fabs((double)ones / n - 0.634) < 0.02, "share at T=2 %f", (double)ones / n);
    gf_sampler_cleanup(&a);
    float u0 = 0;
    REQUIRE(gf_sampler_init(&a, &p, 2) == 0);
    for (int i = 0; i < 1000; i++) {
        float u = gf_sampler_uniform(&a);
        CHECK(u >= 0.0f && u < 1.0f);
        u0 += u;
    }
    CHECK(fabsf(u0 / 1000 - 0.5f) < 0.05f);
    gf_sampler_cleanup(&a);
}

static void test_penalties(void)
{
    struct gf_sampler s;
    struct gf_sampler_params p = greedy_params();
    float l[3];
    // repetition: token 0 (logit 2) seen once, divided by 1.5 -> 1.33 < 1.5 of token 1
    p.repetition_penalty = 1.5f;
    REQUIRE(gf_sampler_init(&s, &p, 3) == 0);
    gf_sampler_accept(&s, 0);
    l[0] = 2.0f, l[1] = 1.5f, l[2] = -1.0f;
    CHECK(gf_sampler_sample(&s, l, NULL, NULL, 0) == 1);
    CHECK(fabsf(l[0] - 2.0f / 1.5f) < 1e-6f);
    gf_sampler_cleanup(&s);
    // frequency: 0.3 per occurrence; token 0 seen twice: 2 - 0.6 = 1.4 < 1.5
    p = greedy_params();
    p.frequency_penalty = 0.3f;
    REQUIRE(gf_sampler_init(&s, &p, 3) == 0);
    gf_sampler_accept(&s, 0);
    gf_sampler_accept(&s, 0);
    l[0] = 2.0f, l[1] = 1.5f, l[2] = -1.0f;
    CHECK(gf_sampler_sample(&s, l, NULL, NULL, 0) == 1);
    gf_sampler_cleanup(&s);
    // presence: once, however often; a negative penalty favours seen tokens
    p = greedy_params();
    p.presence_penalty = -1.0f;
    REQUIRE(gf_sampler_init(&s, &p, 3) == 0);
    gf_sampler_accept(&s, 2);
    gf_sampler_accept(&s, 2);
    gf_sampler_accept(&s, 99);  // out of range: ignored
    l[0] = 2.0f, l[1] = 1.5f, l[2] = 1.2f;
    CHECK(gf_sampler_sample(&s, l, NULL, NULL, 0) == 2);
    CHECK(fabsf(l[2] - 2.2f) < 1e-6f);
    gf_sampler_cleanup(&s);
}

static void test_logprobs(void)
{
    struct gf_sampler s;
    struct gf_sampler_params p = greedy_params();
    REQUIRE(gf_sampler_init(&s, &p, 4) == 0);
    float l[4] = {logf(0.1f), logf(0.2f), logf(0.3f), logf(0.4f)};
    struct gf_logprob lp, top[3];
    CHECK(gf_sampler_sample(&s, l, &lp, top, 3) == 3);
    CHECK(lp.token == 3 && fabsf(lp.logprob - logf(0.4f)) < 1e-5f);
    CHECK(top[0].token == 3 && top[1].token == 2 && top[2].token == 1);
    CHECK(fabsf(top[2].logprob - logf(0.2f)) < 1e-5f);
    float nan4[4] = {NAN, NAN, NAN, NAN};
    p.temperature = 1;
    gf_sampler_cleanup(&s);
    REQUIRE(gf_sampler_init(&s, &p, 4) == 0);
    int t = gf_sampler_sample(&s, nan4, NULL, NULL, 0);  // no crash, some valid id
    CHECK(t >= 0 && t < 4);
    gf_sampler_cleanup(&s);
    CHECK(gf_sampler_init(&s, &p, 0) == GF_EINVAL);
}

static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    struct gf_sampler_params p = greedy_params();
    for (long n = 1; n < 10; n++) {
        struct gf_sampler s;
        gf_alloc_fail_after(n, false);
        int rc = gf_sampler_init(&s, &p, 100);
        bool failed = gf_alloc_failures() > 0;
        gf_alloc_fail_after(0, false);
        if (!failed) {
            CHECK(rc == 0);
            gf_sampler_cleanup(&s);
            break;
        }
        CHECK(rc == GF_ENOMEM);
    }
}

int main(void)
{
    RUN(test_greedy_and_truncation);
    RUN(test_distribution_and_seed);
    RUN(test_penalties);
    RUN(test_logprobs);
    RUN(test_oom);
    return test_report();
}
