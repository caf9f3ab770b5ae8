/* Unit tests of gateway/ratelimit.c with a fake clock: GCRA exactness (burst and sustained),
 * no over-admission with concurrent threads, token reservation and streaming charges, the
 * concurrency cap, the daily quota, the abuse block counter, header formatting and OOM. */
#include "gateway/keys_int.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "test.h"

#define S_NS 1000000000ull
static const int64_t T0_WALL = 1767225600000ll + 3600000; // 2026-01-01T01:00Z

static struct gf_rl_now at(uint64_t ns)
{
    struct gf_rl_now n = {1000 * S_NS + ns, T0_WALL + (int64_t)(ns / 1000000)};
    return n;
}

static void test_gcra_burst_and_sustained(void)
{
    struct gf_limiter *l = NULL;
    REQUIRE(gf_limiter_open_local(&l) == 0);
    struct gf_key_limits lim = {.rpm = 10};
    struct gf_rl_ticket t;
    struct gf_rl_info info;
    // Ten at one instant, the eleventh refused with a six-second wait.
    for (int i = 0; i < 10; i++) {
        CHECK(l->ops->admit(l, "key_a", &lim, 0, at(0), &t, &info) == 0);
        CHECK(info.remaining_requests == 9 - i);
        l->ops->release(l, &t);
    }
    CHECK(l->ops->admit(l, "key_a", &lim, 0, at(0), &t, &info) == GF_ELIMIT);
    CHECK(info.reason == GF_RL_REQUESTS && info.retry_after_s == 6);
    CHECK(info.limit_requests == 10 && info.remaining_requests == 0);
    CHECK(info.reset_requests_ms == 60000);
    CHECK(l->ops->admit(l, "key_a", &lim, 0, at(6 * S_NS - 1), &t, &info) == GF_ELIMIT);
    CHECK(l->ops->admit(l, "key_a", &lim, 0, at(6 * S_NS), &t, &info) == 0);
    l->ops->release(l, &t);
    // Another key has its own bucket.
    CHECK(l->ops->admit(l, "key_b", &lim, 0, at(0), &t, &info) == 0);
    l->ops->release(l, &t);
    // Sustained: one attempt every 100 ms for ten minutes on a fresh key admits the burst of
    // ten and then exactly one per six seconds.
    int admitted = 0;
    for (uint64_t ms = 0; ms < 600000; ms += 100) {
        if (l->ops->admit(l, "key_c", &lim, 0, at(ms * 1000000), &t, &info) == 0) {
            admitted++;
            l->ops->release(l, &t);
        }
    }
    CHECK_MSG(admitted == 10 + 99, "admitted %d", admitted);
    // Odd limits do not lose a request to rounding: rpm 7 admits exactly 7 at once.
    struct gf_key_limits seven = {.rpm = 7};
    admitted = 0;
    for (int i = 0; i < 20; i++)
        if (l->ops->admit(l, "key_d", &seven, 0, at(0), &t, &info) == 0) {
            admitted++;
            l->ops->release(l, &t);
        }
    CHECK(admitted == 7);
    gf_limiter_close(l);
}

struct race {
    struct gf_limiter *l;
    struct gf_key_limits lim;
    atomic_int admitted, inflight, max_inflight;
};

static void *racer(void *p)
{
    struct race *r = p;
    for (int i = 0; i < 2000; i++) {
        struct gf_rl_ticket t;
        struct gf_rl_info info;
        // The clock advances slowly: 1 ms per attempt of this thread.
        if (r->l->ops->admit(r->l, "key_race", &r->lim, 3, at((uint64_t)i * 1000000), &t, &info) ==
            0) {
            atomic_fetch_add(&r->admitted, 1);
            int now = atomic_fetch_add(&r->inflight, 1) + 1;
            int m = atomic_load(&r->max_inflight);
            while (now > m && !atomic_compare_exchange_weak(&r->max_inflight, &m, now))
                ;
            atomic_fetch_sub(&r->inflight, 1);
            r->l->ops->release(r->l, &t);
        }
    }
    return NULL;
}

static void test_concurrent_no_over_admission(void)
{
    struct race r = {0};
    REQUIRE(gf_limiter_open_local(&r.l) == 0);
    r.lim.rpm = 300;
    r.lim.max_concurrent = 2;
    pthread_t th[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, racer, &r);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    // The threads' clocks span 2 s: 300 at once plus at most 2 s / 200 ms = 10 refills.
    int a = atomic_load(&r.admitted);
    CHECK_MSG(a <= 310, "admitted %d", a);
    CHECK(a >= 1);
    CHECK(atomic_load(&r.max_inflight) <= 2);
    gf_limiter_close(r.l);

    // Same instant for everybody: exactly rpm admissions, however the threads interleave.
    struct race r2 = {0};
    REQUIRE(gf_limiter_open_local(&r2.l) == 0);
    r2.lim.rpm = 500;
    for (int i = 0; i < 8; i++)
        pthread_create(&th[i], NULL, racer, &r2);
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    a = atomic_load(&r2.admitted);
    // 500 in the first instant, then one per 120 ms over the 2 s the clocks cover: <= 516.
    CHECK_MSG(a >= 500 && a <= 516, "admitted %d", a);
    gf_limiter_close(r2.l);
}

static void test_tokens(void)
{
    struct gf_limiter *l = NULL;
    REQUIRE(gf_limiter_open_local(&l) == 0);
    struct gf_key_limits lim = {.tpm = 1000};
    struct gf_rl_ticket t1, t2;
    struct gf_rl_info info;
    CHECK(l->ops->admit(l, "key_t", &lim, 600, at(0), &t1, &info) == 0);
    CHECK(info.limit_tokens == 1000 && info.remaining_tokens == 400);
    // The prompt of the next request does not fit: refused, nothing changed.
    CHECK(l->ops->admit(l, "key_t", &lim, 500, at(0), &t2, &info) == GF_ELIMIT);
    CHECK(info.reason == GF_RL_TOKENS && info.remaining_tokens == 400);
    CHECK(info.retry_after_s == 6); // 100 tokens at 1000/min refill in 6 s
    // Completion tokens as they stream: within budget, then exhausted.
    CHECK(l->ops->charge(l, &t1, 300, at(0), &info) == 0);
    CHECK(info.remaining_tokens == 100);
    CHECK(l->ops->charge(l, &t1, 100, at(0), &info) == 0);
    CHECK(info.remaining_tokens == 0);
    CHECK(l->ops->charge(l, &t1, 1, at(0), &info) == GF_ELIMIT);
    CHECK(info.reason == GF_RL_TOKENS);
    CHECK(t1.tokens == 1001);
    l->ops->release(l, &t1);
    // A prompt larger than the whole bucket can never pass.
    CHECK(l->ops->admit(l, "key_t2", &lim, 1001, at(0), &t2, &info) == GF_ELIMIT);
    CHECK(info.retry_after_s == 60);
    // After a minute the bucket is full again (1001 charged: 1 token of debt at 60 ms).
    CHECK(l->ops->admit(l, "key_t", &lim, 1000, at(60 * S_NS), &t2, &info) == GF_ELIMIT);
    CHECK(l->ops->admit(l, "key_t", &lim, 1000, at(60 * S_NS + 60000000), &t2, &info) == 0);
    l->ops->release(l, &t2);
    gf_limiter_close(l);
}

static void test_concurrency_cap(void)
{
    struct gf_limiter *l = NULL;
    REQUIRE(gf_limiter_open_local(&l) == 0);
    struct gf_key_limits lim = {.max_concurrent = 2};
    struct gf_rl_ticket a, b, c;
    struct gf_rl_info info;
    CHECK(l->ops->admit(l, "key_c", &lim, 0, at(0), &a, &info) == 0);
    CHECK(l->ops->admit(l, "key_c", &lim, 0, at(0), &b, &info) == 0);
    CHECK(l->ops->admit(l, "key_c", &lim, 0, at(0), &c, &info) == GF_ELIMIT);
    CHECK(info.reason == GF_RL_CONCURRENCY && info.retry_after_s >= 1);
    l->ops->release(l, &a);
    l->ops->release(l, &a); // idempotent
    CHECK(l->ops->admit(l, "key_c", &lim, 0, at(0), &c, &info) == 0);
    CHECK(l->ops->admit(l, "key_c", &lim, 0, at(0), &a, &info) == GF_ELIMIT);
    l->ops->release(l, &b);
    l->ops->release(l, &c);
    gf_limiter_close(l);
}

static void test_daily_quota(void)
{
    struct gf_limiter *l = NULL;
    REQUIRE(gf_limiter_open_local(&l) == 0);
    struct gf_key_limits lim = {.daily_tokens = 1000};
    struct gf_rl_ticket t;
    struct gf_rl_info info;
    CHECK(l->ops->admit(l, "key_d", &lim, 600, at(0), &t, &info) == 0);
    CHECK(l->ops->charge(l, &t, 300, at(0), &info) == 0);
    CHECK(l->ops->charge(l, &t, 101, at(0), &info) == GF_ELIMIT);
    CHECK(info.reason == GF_RL_DAILY);
    l->ops->release(l, &t);
    CHECK(l->ops->admit(l, "key_d", &lim, 1, at(0), &t, &info) == GF_ELIMIT);
    CHECK(info.reason == GF_RL_DAILY);
    CHECK(info.retry_after_s == 23 * 3600); // until midnight UTC
    // The next UTC day starts afresh.
    CHECK(l->ops->admit(l, "key_d", &lim, 999, at(23 * 3600 * S_NS), &t, &info) == 0);
    l->ops->release(l, &t);
    gf_limiter_close(l);
}

static void test_blocks(void)
{
    struct gf_limiter *l = NULL;
    REQUIRE(gf_limiter_open_local(&l) == 0);
    // More than 3 within 60 s.
    CHECK(!l->ops->note_block(l, "key_x", 3, 60000, at(0)));
    CHECK(!l->ops->note_block(l, "key_x", 3, 60000, at(1 * S_NS)));
    CHECK(!l->ops->note_block(l, "key_x", 3, 60000, at(2 * S_NS)));
    CHECK(l->ops->note_block(l, "key_x", 3, 60000, at(3 * S_NS)));
    // Spread out over more than the window: never.
    for (int i = 0; i < 10; i++)
        CHECK(!l->ops->note_block(l, "key_y", 3, 60000, at((uint64_t)i * 21 * S_NS)));
    l->ops->clear_blocks(l, "key_x");
    CHECK(!l->ops->note_block(l, "key_x", 3, 60000, at(4 * S_NS)));
    CHECK(!l->ops->note_block(l, "key_z", 0, 0, at(0)));   // disabled
    CHECK(l->ops->note_block(l, "key_w", 0, 1000, at(0))); // more than zero
    gf_limiter_close(l);
}

static int collect(void *ud, const char *name, const char *value)
{
    struct gf_buf *b = ud;
    return gf_buf_printf(b, "%s: %s\n", name, value);
}

static void test_headers(void)
{
    char v[32];
    gf_rl_format_reset(0, v, sizeof(v));
    CHECK_STREQ(v, "0ms");
    gf_rl_format_reset(250, v, sizeof(v));
    CHECK_STREQ(v, "250ms");
    gf_rl_format_reset(1000, v, sizeof(v));
    CHECK_STREQ(v, "1s");
    gf_rl_format_reset(6500, v, sizeof(v));
    CHECK_STREQ(v, "6.5s");
    gf_rl_format_reset(360000, v, sizeof(v));
    CHECK_STREQ(v, "6m0s");
    gf_rl_format_reset(90025, v, sizeof(v));
    CHECK_STREQ(v, "1m30.025s");
    gf_rl_format_reset(3723000, v, sizeof(v));
    CHECK_STREQ(v, "1h2m3s");
    struct gf_rl_info info = {.limit_requests = 10,
                              .remaining_requests = 3,
                              .reset_requests_ms = 42000,
                              .limit_tokens = 1000,
                              .remaining_tokens = 5,
                              .reset_tokens_ms = 59700,
                              .retry_after_s = 6};
    struct gf_buf b;
    gf_buf_init(&b, 4096);
    CHECK(gf_rl_headers(&info, true, collect, &b) == 0);
    CHECK_STREQ(b.data, "x-ratelimit-limit-requests: 10\nx-ratelimit-remaining-requests: 3\n"
                        "x-ratelimit-reset-requests: 42s\nx-ratelimit-limit-tokens: 1000\n"
                        "x-ratelimit-remaining-tokens: 5\nx-ratelimit-reset-tokens: 59.7s\n"
                        "Retry-After: 6\n");
    gf_buf_reset(&b);
    info.limit_tokens = -1;
    CHECK(gf_rl_headers(&info, false, collect, &b) == 0);
    CHECK(strstr(b.data, "tokens") == NULL && strstr(b.data, "Retry-After") == NULL);
    gf_buf_cleanup(&b);
    CHECK(strstr(gf_rl_reason_message(GF_RL_TOKENS), "tokens per minute") != NULL);
}

static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    struct gf_limiter *l = NULL;
    REQUIRE(gf_limiter_open_local(&l) == 0);
    struct gf_key_limits lim = {.rpm = 5};
    struct gf_rl_ticket t;
    struct gf_rl_info info;
    int wrong = 0;
    for (long n = 1; n < 100; n++) {
        gf_alloc_fail_after(n, true);
        int rc = l->ops->admit(l, "key_oom", &lim, 0, at(0), &t, &info);
        gf_alloc_fail_after(0, false);
        if (rc == 0)
            break;
        wrong += rc != GF_ENOMEM;
    }
    CHECK(wrong == 0);
    CHECK(info.remaining_requests == 4); // the failed attempts consumed nothing
    l->ops->release(l, &t);
    gf_limiter_close(l);
}

int main(void)
{
    RUN(test_gcra_burst_and_sustained);
    RUN(test_concurrent_no_over_admission);
    RUN(test_tokens);
    RUN(test_concurrency_cap);
    RUN(test_daily_quota);
    RUN(test_blocks);
    RUN(test_headers);
    RUN(test_oom);
    return test_report();
}
