/* threadpool.c — persistent workers released by a generation counter, for two kinds of job.
 * A static job (gf_tpool_run) calls fn once per thread index: its fields (fn, ctx) are written
 * before the generation is bumped, and the caller returns only after every worker has counted
 * itself done for that generation, so a job never outlives its context. A chunked job
 * (gf_tpool_run_chunks) is shared out one chunk at a time to whichever threads show up: the
 * caller works through the chunks too, then closes the job, and waits only for the workers
 * that joined it (a worker joins by counting itself active, then checking that the job is still
 * open; the caller closes, then waits for the count to drop to zero — sequentially consistent
 * on both sides, so a worker either is waited for or never touches the job). On a machine
 * where a worker is descheduled, the caller does its share instead of waiting for it. Waits
 * spin for a short while (a decode step takes microseconds to milliseconds), then block on the
 * condition variable (workers) or yield the CPU (the caller waiting for a joined worker).
 * The job's kind is the low bit of its generation, not a separate field: a worker that woke for
 * a chunked job it never joined may still be looking at that generation while the caller fills
 * in the next job, and a kind read from a field could then belong to the next job (the worker
 * would run a static job it was not counted for, or twice). */
#include "engine/threadpool_int.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "common/common.h"

#define SPIN_ITERS 20000

struct gf_tpool {
    int n;  // threads including the caller
    pthread_t *threads;
    int n_started;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;  // workers wait here for a new generation
    pthread_cond_t cv_done;  // the caller waits here for the last worker
    atomic_uint gen;
    atomic_int pending;      // workers that have not finished the current generation
    atomic_bool stop;
    gf_tpool_fn fn;          // static job
    gf_tpool_chunk_fn cfn;   // chunked job
    void *ctx;
    int n_chunks;
    atomic_int next_chunk;
    atomic_uint open_gen;    // the chunked job's generation while it may be joined; 0 = closed
    atomic_int active;       // workers inside the chunked job
};

struct worker_arg {
    struct gf_tpool *p;
    int ith;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void *worker_main(void *arg)
{
    struct worker_arg *wa = arg;
    struct gf_tpool *p = wa->p;
    int ith = wa->ith;
    gf_free(wa);
    unsigned seen = 0;
    for (;;) {
        unsigned g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen &&
               !atomic_load(&p->stop) && spins < SPIN_ITERS) {
            cpu_relax();
            spins++;
        }
        if (g == seen && !atomic_load(&p->stop)) {
            pthread_mutex_lock(&p->mu);
            while ((g = atomic_load(&p->gen)) == seen && !atomic_load(&p->stop))
                pthread_cond_wait(&p->cv_work, &p->mu);
            pthread_mutex_unlock(&p->mu);
        }
        if (atomic_load(&p->stop))
            return NULL;
        seen = g;
        if (g & 1u) {  // chunked: join only while this very generation is open
            atomic_fetch_add(&p->active, 1);
            if (atomic_load(&p->open_gen) == g) {
                int i;
                while ((i = atomic_fetch_add_explicit(&p->next_chunk, 1, memory_order_relaxed)) <
                       p->n_chunks)
                    p->cfn(p->ctx, i);
            }
            atomic_fetch_sub_explicit(&p->active, 1, memory_order_release);
            continue;
        }
        p->fn(p->ctx, ith, p->n);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

/* The generation of the next job: a sequence number above the kind bit (1 = chunked). Only the
 * caller writes gen, so a plain load is enough. */
static unsigned next_gen(struct gf_tpool *p, bool chunked)
{
    unsigned g = atomic_load_explicit(&p->gen, memory_order_relaxed);
    return (((g >> 1) + 1) << 1) | (chunked ? 1u : 0u);
}

int gf_tpool_new(int n_threads, struct gf_tpool **out)
{
    *out = NULL;
    if (n_threads < 1)
        n_threads = 1;
    struct gf_tpool *p = gf_calloc(1, sizeof(*p));
    if (p == NULL)
        return GF_ENOMEM;
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv_work, NULL);
    pthread_cond_init(&p->cv_done, NULL);
    atomic_init(&p->gen, 0);
    atomic_init(&p->pending, 0);
    atomic_init(&p->stop, false);
    if (n_threads > 1) {
        p->threads = gf_calloc((size_t)n_threads - 1, sizeof(pthread_t));
        if (p->threads == NULL) {
            gf_tpool_free(p);
            return GF_ENOMEM;
        }
    }
    for (int i = 1; i < n_threads; i++) {
        struct worker_arg *wa = gf_malloc(sizeof(*wa));
        if (wa == NULL) {
            gf_tpool_free(p);
            return GF_ENOMEM;
        }
        wa->p = p;
        wa->ith = i;
        if (pthread_create(&p->threads[i - 1], NULL, worker_main, wa) != 0) {
            gf_free(wa);
            gf_tpool_free(p);
            return GF_EAGAIN;
        }
        p->n_started++;
    }
    *out = p;
    return 0;
}

void gf_tpool_free(struct gf_tpool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->stop, true);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->cv_work);
    pthread_cond_destroy(&p->cv_done);
    pthread_mutex_destroy(&p->mu);
    gf_free(p->threads);
    gf_free(p);
}

int gf_tpool_size(const struct gf_tpool *p)
{
    return p->n;
}

void gf_tpool_run(struct gf_tpool *p, gf_tpool_fn fn, void *ctx)
{
    if (p->n == 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->gen, next_gen(p, false), memory_order_release);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, p->n);
    int spins = 0;
    while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0 && spins < SPIN_ITERS) {
        cpu_relax();
        spins++;
    }
    if (atomic_load_explicit(&p->pending, memory_order_acquire) != 0) {
        pthread_mutex_lock(&p->mu);
        while (atomic_load(&p->pending) != 0)
            pthread_cond_wait(&p->cv_done, &p->mu);
        pthread_mutex_unlock(&p->mu);
    }
}

void gf_tpool_run_chunks(struct gf_tpool *p, gf_tpool_chunk_fn fn, void *ctx, int n_chunks)
{
    if (p->n == 1 || n_chunks <= 1) {
        for (int i = 0; i < n_chunks; i++)
            fn(ctx, i);
        return;
    }
    p->cfn = fn;
    p->ctx = ctx;
    p->n_chunks = n_chunks;
    atomic_store_explicit(&p->next_chunk, 0, memory_order_relaxed);
    unsigned g = next_gen(p, true);  // odd, so never 0 ("closed")
    atomic_store(&p->open_gen, g);
    pthread_mutex_lock(&p->mu);
    atomic_store_explicit(&p->gen, g, memory_order_release);
    pthread_cond_broadcast(&p->cv_work);
    pthread_mutex_unlock(&p->mu);
    int i;
    while ((i = atomic_fetch_add_explicit(&p->next_chunk, 1, memory_order_relaxed)) < n_chunks)
        fn(ctx, i);
    atomic_store(&p->open_gen, 0);
    for (int spins = 0; atomic_load(&p->active) != 0; spins++) {
        if (spins < SPIN_ITERS)
            cpu_relax();
        else
            sched_yield();  // a joined worker was descheduled mid-chunk: let it run
    }
}

void gf_tpool_split(int n, int ith, int nth, int align, int *lo, int *hi)
{
    if (align < 1)
        align = 1;
    int chunks = (n + align - 1) / align;
    int per = chunks / nth, extra = chunks % nth;
    int c0 = ith * per + (ith < extra ? ith : extra);
    int c1 = c0 + per + (ith < extra ? 1 : 0);
    *lo = c0 * align < n ? c0 * align : n;
    *hi = c1 * align < n ? c1 * align : n;
}
