/* threadpool_int.h — a small persistent pool of worker threads for the engine's kernels.
 * gf_tpool_run(p, fn, ctx) calls fn(ctx, ith, nth) once for every ith in [0, nth) — ith 0 on the
 * calling thread, the others on the pool's threads — and returns when all calls have returned,
 * so the caller's data is never touched after it returns. Only one thread may call run at a
 * time (the engine's worker). Workers spin briefly, then sleep on a condition variable, so an
 * idle pool costs no CPU. */
#ifndef GF_THREADPOOL_INT_H
#define GF_THREADPOOL_INT_H

typedef void (*gf_tpool_fn)(void *ctx, int ith, int nth);
typedef void (*gf_tpool_chunk_fn)(void *ctx, int chunk);

struct gf_tpool;

/* Starts n_threads - 1 threads (n_threads >= 1; 1 means run on the caller only). Returns 0 or
 * GF_ENOMEM / GF_EAGAIN (thread creation failed); *out is freed with gf_tpool_free. */
int gf_tpool_new(int n_threads, struct gf_tpool **out);
/* Stops and joins the threads and frees p; NULL is a no-op. */
void gf_tpool_free(struct gf_tpool *p);
int gf_tpool_size(const struct gf_tpool *p);
void gf_tpool_run(struct gf_tpool *p, gf_tpool_fn fn, void *ctx);
/* Calls fn(ctx, i) once for every i in [0, n_chunks), each on whichever thread takes it next
 * (the caller takes chunks too), and returns when all calls have returned. Threads that are
 * not scheduled in time simply take none, so an oversubscribed machine slows the job down to
 * the caller's pace instead of stalling it. Only one thread may call run at a time. */
void gf_tpool_run_chunks(struct gf_tpool *p, gf_tpool_chunk_fn fn, void *ctx, int n_chunks);

/* The half-open share [*lo, *hi) of n items that thread ith of nth handles, in chunks of
 * `align` items (the last share takes the remainder). */
void gf_tpool_split(int n, int ith, int nth, int align, int *lo, int *hi);

#endif
