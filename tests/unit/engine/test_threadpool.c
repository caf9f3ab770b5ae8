/* test_threadpool.c — every share of gf_tpool_split covers the range once; gf_tpool_run calls
 * each index once per run, many runs in a row, with 1 to 4 threads. */
#include "engine/threadpool_int.h"

#include <stdatomic.h>

#include "common/common.h"
#include "tests/test.h"

struct job {
    atomic_int calls[8];
    int n;
    long sum[8];
};

static void work(void *arg, int ith, int nth)
{
    struct job *j = arg;
    atomic_fetch_add(&j->calls[ith], 1);
    int lo, hi;
    gf_tpool_split(j->n, ith, nth, 4, &lo, &hi);
    long s = 0;
    for (int i = lo; i < hi; i++)
        s += i;
    j->sum[ith] = s;
}

static void test_split(void)
{
    for (int n = 0; n < 70; n++)
        for (int nth = 1; nth <= 5; nth++)
            for (int align = 1; align <= 16; align *= 4) {
                int next = 0, ok = 1;
                for (int t = 0; t < nth; t++) {
                    int lo, hi;
                    gf_tpool_split(n, t, nth, align, &lo, &hi);
                    if (lo != next || hi < lo)
                        ok = 0;
                    next = hi;
                }
                CHECK(ok && next == n);
            }
}

static void test_run(void)
{
    for (int nt = 1; nt <= 4; nt++) {
        struct gf_tpool *p = NULL;
        REQUIRE(gf_tpool_new(nt, &p) == 0);
        CHECK(gf_tpool_size(p) == nt);
        struct job j = {.n = 1000};
        int bad = 0;
        for (int r = 0; r < 200; r++) {
            gf_tpool_run(p, work, &j);
            long s = 0;
            for (int t = 0; t < nt; t++)
                s += j.sum[t];
            bad += s != 999L * 1000 / 2;
        }
        CHECK(bad == 0);
        for (int t = 0; t < nt; t++)
            CHECK(atomic_load(&j.calls[t]) == 200);
        gf_tpool_free(p);
    }
    gf_tpool_free(NULL);
}

static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    for (long n = 1;; n++) {
        struct gf_tpool *p = NULL;
        gf_alloc_fail_after(n, false);
        int rc = gf_tpool_new(3, &p);
        gf_alloc_fail_after(0, false);
        if (rc == 0) {
            gf_tpool_free(p);
            break;
        }
        CHECK(rc == GF_ENOMEM && p == NULL);
    }
}

int main(void)
{
    RUN(test_split);
    RUN(test_run);
    RUN(test_oom);
    return test_report();
}
