/* alloc.c — the one allocator. Every gardefou allocation passes through here so that the OOM
 * loops of the test suite can fail the Nth call and check that nothing leaks or crashes.
 * The countdown is atomic: engine worker threads allocate too. */
#include "common/common.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <sys/mman.h>

#ifdef GF_FAILALLOC
static atomic_long countdown;  // 0: off; otherwise the call that reaches 1 fails
static atomic_bool sticky_fail;
static atomic_long failures;
static atomic_int owner;  // 0: every thread counts down; otherwise only the thread with this id
static atomic_int last_tid;
static _Thread_local int tid;

static int thread_id(void)
{
    if (tid == 0)
        tid = atomic_fetch_add(&last_tid, 1) + 1;
    return tid;
}

static bool should_fail(void)
{
    long c = atomic_load_explicit(&countdown, memory_order_relaxed);
    if (c == 0)
        return false;
    int o = atomic_load_explicit(&owner, memory_order_relaxed);
    if (o != 0 && o != thread_id())
        return false;
    if (c == 1) {
        if (!atomic_load(&sticky_fail))
            atomic_store(&countdown, 0);
        atomic_fetch_add(&failures, 1);
        return true;
    }
    // Another thread may race us here; tests that arm the countdown run single-threaded.
    atomic_fetch_sub(&countdown, 1);
    return false;
}

void gf_alloc_fail_after(long n, bool sticky)
{
    atomic_store(&owner, 0);
    atomic_store(&failures, 0);
    atomic_store(&sticky_fail, sticky);
    atomic_store(&countdown, n < 0 ? 0 : n);
}

void gf_alloc_fail_after_here(long n, bool sticky)
{
    gf_alloc_fail_after(n, sticky);
    atomic_store(&owner, thread_id());
}

long gf_alloc_failures(void)
{
    return atomic_load(&failures);
}

bool gf_alloc_fail_supported(void)
{
    return true;
}
#else
static inline bool should_fail(void)
{
    return false;
}

void gf_alloc_fail_after(long n, bool sticky)
{
    (void)n;
    (void)sticky;
}

void gf_alloc_fail_after_here(long n, bool sticky)
{
    (void)n;
    (void)sticky;
}

long gf_alloc_failures(void)
{
    return 0;
}

bool gf_alloc_fail_supported(void)
{
    return false;
}
#endif

void *gf_malloc(size_t size)
{
    if (should_fail())
        return NULL;
    return malloc(size ? size : 1);
}

/* A small block is malloc'd and cleared: glibc's calloc never takes a block from the thread's
 * cache of freed ones (up to 1 KiB) and goes to the arena each time, about 4x a cached malloc,
 * and the request path allocates zeroed structs many times per request. Larger blocks keep
 * calloc, which skips clearing pages fresh from the kernel. */
void *gf_calloc(size_t n, size_t size)
{
    if (should_fail())
        return NULL;
    if (n == 0 || size == 0)
        return calloc(1, 1);
    if (n <= 1024 / size) {
        void *p = malloc(n * size);
        return p ? memset(p, 0, n * size) : NULL;
    }
    return calloc(n, size);
}

void *gf_realloc(void *p, size_t size)
{
    if (size == 0) {
        free(p);
        return NULL;
    }
    if (should_fail())
        return NULL;
    return realloc(p, size);
}

void gf_free(void *p)
{
    free(p);
}

/* Cache-line aligned arrays for SIMD kernels: a 64-byte load that straddles two lines costs
 * two, and malloc aligns to 16 only (an 8-token F32 decode product over activations 16 bytes
 * off a line ran 1.5x slower). Freed by gf_free. */
void *gf_mallocarray_aligned(size_t n, size_t size)
{
    if (size != 0 && n > (SIZE_MAX - 64) / size)
        return NULL;
    if (should_fail())
        return NULL;
    size_t bytes = (n * size + 63) / 64 * 64;
    return aligned_alloc(64, bytes ? bytes : 64);
}

#define HUGE_PAGE ((size_t)2 << 20)

/* Large read-mostly buffers that are streamed again and again (the engine's weights) sit on
 * 2 MiB pages when the kernel gives them: with 4 KiB pages every page of a stream costs a TLB
 * miss and restarts the hardware prefetcher, which measured 20-40% of a decode step's time.
 * The mapping is aligned to 2 MiB and asks for huge pages with madvise, so it works with
 * transparent huge pages set to "madvise" (a common default) as well as "always"; where the
 * kernel gives none, the buffer is ordinary memory. */
void *gf_malloc_huge(size_t size)
{
    if (should_fail())
        return NULL;
    if (size == 0 || size > SIZE_MAX - 2 * HUGE_PAGE)
        return NULL;
    size_t len = (size + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    // map one huge page more than needed and trim both ends to 2 MiB boundaries
    char *m = mmap(NULL, len + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    uintptr_t a = ((uintptr_t)m + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    char *p = (char *)a;
    if (p > m)
        munmap(m, (size_t)(p - m));
    size_t tail = (size_t)(m + len + HUGE_PAGE - (p + len));
    if (tail > 0)
        munmap(p + len, tail);
#ifdef MADV_HUGEPAGE
    (void)madvise(p, len, MADV_HUGEPAGE);  // advice only: without it the memory still works
#endif
    return p;
}

void gf_free_huge(void *p, size_t size)
{
    if (p != NULL)
        munmap(p, (size + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
}

void *gf_mallocarray(size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    return gf_malloc(n * size);
}

char *gf_strndup(const char *s, size_t n)
{
    char *d = gf_malloc(n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *gf_strdup(const char *s)
{
    return gf_strndup(s, strlen(s));
}

static _Thread_local unsigned long json_failures;
static _Thread_local struct gf_json_arena *arena;
// Read by the free hook on any thread (engine threads free trees of their own); changed only
// while no tree uses the region.
static atomic_uintptr_t region_lo, region_len;

static void *json_malloc(size_t size)
{
    struct gf_json_arena *a = arena;
    size_t n = (size + 15) & ~(size_t)15; // malloc's alignment
    if (a != NULL && n >= size && n <= (size_t)(a->end - a->next)) {
        void *p = a->next;
        a->next += n;
        return p;
    }
    void *p = gf_malloc(size);
    if (p == NULL)
        json_failures++;
    return p;
}

static void json_free(void *p)
{
    uintptr_t lo = atomic_load_explicit(&region_lo, memory_order_relaxed);
    if ((uintptr_t)p - lo < atomic_load_explicit(&region_len, memory_order_relaxed))
        return; // in an arena block: dropped with the block
    gf_free(p);
}

bool gf_json_region_claim(const void *base, size_t size)
{
    uintptr_t none = 0;
    if (base == NULL || size == 0 ||
        !atomic_compare_exchange_strong(&region_lo, &none, (uintptr_t)base))
        return false;
    atomic_store(&region_len, size);
    return true;
}

void gf_json_region_release(const void *base)
{
    if (base == NULL || atomic_load(&region_lo) != (uintptr_t)base)
        return;
    atomic_store(&region_len, 0);
    atomic_store(&region_lo, 0);
}

void gf_json_arena_begin(struct gf_json_arena *a)
{
    arena = a;
}

void gf_json_arena_end(void)
{
    arena = NULL;
}

unsigned long gf_json_alloc_failures(void)
{
    return json_failures;
}

void gf_json_init(void)
{
    cJSON_Hooks hooks = {.malloc_fn = json_malloc, .free_fn = json_free};
    cJSON_InitHooks(&hooks);
}
