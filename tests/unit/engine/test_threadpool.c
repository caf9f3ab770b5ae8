/* test_threadpool.c — every share of gf_tpool_split covers the range once; gf_tpool_run calls
 * each index once per run and gf_tpool_run_chunks each chunk once, many runs in a row, with 1
 * to 4 threads. */
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

struct chunk_job {
    atomic_int calls[64];
};

static void chunk_work(void *arg, int i)
{
    struct chunk_job *j = arg;
    atomic_fetch_add(&j->calls[i], 1);
}

/* gf_tpool_run_chunks calls every chunk exactly once, and its job never outlives the call:
 * the job lives on the stack of each iteration, so a worker touching it late would be seen by
 * ASan; static and chunked jobs alternate, as in a forward pass. */
static void test_run_chunks(void)
{
    for (int nt = 1; nt <= 4; nt++) {
        struct gf_tpool *p = NULL;
        REQUIRE(gf_tpool_new(nt, &p) == 0);
        int bad = 0;
        for (int r = 0; r < 300; r++) {
            int n = r % 65;
            struct chunk_job j;
            for (int i = 0; i < 64; i++)
                atomic_init(&j.calls[i], 0);
            gf_tpool_run_chunks(p, chunk_work, &j, n);
            for (int i = 0; i < 64; i++)
                bad += atomic_load(&j.calls[i]) != (i < n);
            if (r % 3 == 0) {
                struct job s = {.n = 100};
                gf_tpool_run(p, work, &s);
                long sum = 0;
                for (int t = 0; t < nt; t++)
                    sum += s.sum[t];
                bad += sum != 99L * 100 / 2;
            }
        }
        CHECK_MSG(bad == 0, "%d threads: %d chunks called other than once", nt, bad);
        gf_tpool_free(p);
    }
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
    RUN(test_run_chunks);
    RUN(test_oom);
    return test_report();
}
