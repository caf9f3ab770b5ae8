/* common.h — what every gardefou component shares: error codes and the first-error-wins
 * message buffer, the allocator that tests can make fail, key=value logging, bounded byte
 * buffers, SHA-256/HMAC, clocks and randomness. It depends on libc only. */
#ifndef GF_COMMON_H
#define GF_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define GF_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define GF_UNUSED       __attribute__((unused))
#else
#define GF_PRINTF(f, a)
#define GF_UNUSED
#endif

#define GF_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- errors ---------------------------------------------------------------------------- */

/* Functions return 0 on success or one of these negative codes. */
enum {
    GF_OK = 0,
    GF_ENOMEM = -1,      // an allocation failed
    GF_EINVAL = -2,      // the caller's input is invalid (bad request, bad config value)
    GF_EIO = -3,         // a read, write or fsync failed
    GF_ETOOBIG = -4,     // a bounded buffer or limit would be exceeded (HTTP 413)
    GF_EFORMAT = -5,     // a file or message does not follow its format
    GF_EAGAIN = -6,      // try again later (not ready, overloaded)
    GF_ENOTFOUND = -7,   // no such thing (route, key, model)
    GF_EPERM = -8,       // authentication or authorization refused
    GF_ETIMEDOUT = -9,   // a deadline passed
    GF_EUPSTREAM = -10,  // the upstream server failed or answered badly
    GF_ECANCELED = -11,  // the operation was cancelled
    GF_EUNSUPPORTED = -12, // valid, but this build or engine cannot do it
    GF_ELIMIT = -13,     // a rate limit or quota refused it
    GF_EPOLICY = -14,    // the content policy refused it
};

/* A parser's error: the first error set wins, later ones are ignored, so the message names the
 * root cause. msg is one line that says where: "policy.json: rules[3].threshold: ...". */
struct gf_err {
    int code;
    char msg[256];
};

/* Records code and a formatted message in err unless err already holds an error or is NULL.
 * Returns code, so callers can write `return gf_err_set(err, GF_EINVAL, ...)`. */
int gf_err_set(struct gf_err *err, int code, const char *fmt, ...) GF_PRINTF(3, 4);
/* Like gf_err_set, but prefixes an existing message with "prefix: " (or sets it if empty). */
int gf_err_prefix(struct gf_err *err, const char *prefix);
void gf_err_clear(struct gf_err *err);
/* A static name for a GF_E* code ("out of memory", ...). */
const char *gf_strerror(int code);

/* ---- allocation ------------------------------------------------------------------------ */

/* All heap memory goes through these so tests can fail the Nth allocation (OOM loops).
 * gf_free(NULL) is a no-op; gf_realloc(p, 0) frees p and returns NULL. */
void *gf_malloc(size_t size);
void *gf_calloc(size_t n, size_t size);
void *gf_realloc(void *p, size_t size);
void gf_free(void *p);
char *gf_strdup(const char *s);
char *gf_strndup(const char *s, size_t n);
/* gf_mallocarray with 64-byte (cache line) alignment, for arrays SIMD kernels stream through;
 * freed by gf_free. */
void *gf_mallocarray_aligned(size_t n, size_t size);
/* A large zeroed buffer (fresh anonymous pages) on 2 MiB pages where the kernel gives them
 * (alloc.c says why), failed by the same injection as gf_malloc; freed by gf_free_huge with the
 * size it was allocated with. */
void *gf_malloc_huge(size_t size);
void gf_free_huge(void *p, size_t size);
/* Allocates n*size bytes, refusing (NULL) when the product overflows. */
void *gf_mallocarray(size_t n, size_t size);

/* Allocation-failure injection (meson option failalloc). After gf_alloc_fail_after(n) with n >= 1
 * the nth next allocation fails, and every one after it too if sticky is set; n = 0 disables.
 * gf_alloc_failures() says how many calls were failed since the last arming. Returns false from
 * gf_alloc_fail_supported() when the hooks were compiled out. */
void gf_alloc_fail_after(long n, bool sticky);
/* The same, but only the calling thread's allocations count down and fail: for loops over one
 * API call while a background thread (the audit writer) allocates on its own schedule. */
void gf_alloc_fail_after_here(long n, bool sticky);
long gf_alloc_failures(void);
bool gf_alloc_fail_supported(void);

/* Routes cJSON's allocations through gf_malloc/gf_free (or an arena, below). Call once at
 * start, before threads. */
void gf_json_init(void);
/* How many of cJSON's allocations failed in the calling thread so far. cJSON returns NULL for a
 * syntax error and for an allocation failure alike: compare this before and after a parse to
 * tell the two apart (out of memory is the server's fault, a 500, not the client's 400). */
unsigned long gf_json_alloc_failures(void);

/* JSON trees in an arena. cJSON allocates every value and string of a tree apart; a tree whose
 * nodes end together (a request body) can be parsed into one block instead: while
 * gf_json_arena_begin(a) is in force on a thread, cJSON's allocations there are carved from
 * [a->next, a->end) as long as they fit, the rest come from the heap. Arena blocks lie in the
 * one region a process declares with gf_json_region_claim, and cJSON's free hook leaves memory
 * in it alone: a tree may mix arena and heap values (one replaced after the parse), and
 * cJSON_Delete frees only the heap ones; the block's owner drops the block after it. */
struct gf_json_arena {
    char *next, *end;
};
/* Declares [base, base + size) as the region; false if a region is declared already. */
bool gf_json_region_claim(const void *base, size_t size);
/* Ends the declaration of the region at base; no tree may still use it. */
void gf_json_region_release(const void *base);
/* a (borrowed, in the region) serves this thread's cJSON allocations until gf_json_arena_end. */
void gf_json_arena_begin(struct gf_json_arena *a);
void gf_json_arena_end(void);

/* ---- logging --------------------------------------------------------------------------- */

enum gf_log_level { GF_LOG_DEBUG = 0, GF_LOG_INFO, GF_LOG_WARN, GF_LOG_ERROR, GF_LOG_OFF };

/* Writes one line "ts=... level=... comp=... <fmt>" to the log stream (stderr by default).
 * fmt should itself be key=value pairs. Never pass prompts, completions or secrets. Thread-safe. */
void gf_log(enum gf_log_level level, const char *comp, const char *fmt, ...) GF_PRINTF(3, 4);
void gf_log_set_level(enum gf_log_level level);
enum gf_log_level gf_log_get_level(void);
/* Parses "debug|info|warn|error|off"; returns GF_EINVAL for anything else. */
int gf_log_level_parse(const char *s, enum gf_log_level *out);

/* ---- bounded buffers ------------------------------------------------------------------- */

/* A growable byte string with a hard cap set at init. data is always NUL-terminated when
 * non-NULL (the NUL is not counted in len). Growing past max fails with GF_ETOOBIG and leaves
 * the buffer unchanged. */
struct gf_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
};

void gf_buf_init(struct gf_buf *b, size_t max);
void gf_buf_cleanup(struct gf_buf *b);
void gf_buf_reset(struct gf_buf *b);
int gf_buf_reserve(struct gf_buf *b, size_t extra);
int gf_buf_append(struct gf_buf *b, const void *p, size_t n);

/* Appends the string s. Inline: most callers append literals, whose length is then known at
 * compile time (the JSON writers on the request path make dozens of these calls a request). */
static inline int gf_buf_puts(struct gf_buf *b, const char *s)
{
    return gf_buf_append(b, s, strlen(s));
}

int gf_buf_putc(struct gf_buf *b, char c);
/* Appends the decimal form of v (what printf's %lld writes), without a format pass. */
int gf_buf_put_i64(struct gf_buf *b, int64_t v);
int gf_buf_printf(struct gf_buf *b, const char *fmt, ...) GF_PRINTF(2, 3);
int gf_buf_vprintf(struct gf_buf *b, const char *fmt, va_list ap);
/* Appends s[0..n) as a JSON string literal, quotes included; invalid UTF-8 becomes U+FFFD. */
int gf_buf_append_json_str(struct gf_buf *b, const char *s, size_t n);
/* Removes the first n bytes. */
void gf_buf_consume(struct gf_buf *b, size_t n);
/* Hands the data to the caller (who frees it with gf_free) and resets b. Never NULL on success:
 * an empty buffer yields an empty string; returns NULL only on allocation failure. */
char *gf_buf_steal(struct gf_buf *b);

/* ---- hashing --------------------------------------------------------------------------- */

#define GF_SHA256_LEN 32

struct gf_sha256 {
    uint32_t h[8];
    uint64_t nbytes;
    uint8_t block[64];
    size_t used;
};

void gf_sha256_init(struct gf_sha256 *s);
void gf_sha256_update(struct gf_sha256 *s, const void *p, size_t n);
void gf_sha256_final(struct gf_sha256 *s, uint8_t out[GF_SHA256_LEN]);
void gf_sha256(const void *p, size_t n, uint8_t out[GF_SHA256_LEN]);
void gf_hmac_sha256(const void *key, size_t keylen, const void *p, size_t n,
                    uint8_t out[GF_SHA256_LEN]);
/* Writes 2*n lowercase hex digits and a NUL into out (2*n+1 bytes). */
void gf_hex(const uint8_t *p, size_t n, char *out);
/* The value of one hexadecimal digit (either case), or -1. */
static inline int gf_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
/* Compares n bytes in time independent of where they differ; returns true when equal. */
bool gf_ct_equal(const void *a, const void *b, size_t n);

/* ---- time, randomness, text ------------------------------------------------------------ */

/* Monotonic nanoseconds, for durations and deadlines. */
uint64_t gf_now_ns(void);
/* Wall-clock milliseconds since the Unix epoch, for records that people read. */
int64_t gf_wall_ms(void);
/* Formats ms since the epoch as RFC 3339 UTC with milliseconds into out (at least 32 bytes). */
void gf_format_time(int64_t wall_ms, char *out, size_t outlen);
/* Copies src into dst[size] (size > 0), truncating; always NUL-terminates. Returns the length
 * written. What snprintf(dst, size, "%s", src) does, without a format pass (request paths). */
size_t gf_strlcpy(char *dst, const char *src, size_t size);
/* Fills p with n bytes from the kernel CSPRNG; returns GF_EIO if it cannot. */
int gf_random_bytes(void *p, size_t n);
/* Parses a whole decimal integer in [min, max]; returns GF_EINVAL on junk or range. */
int gf_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* Parses a duration such as "30s", "15m", "12h", "7d" or plain seconds into milliseconds. */
int gf_parse_duration_ms(const char *s, int64_t *out);
/* Length of the longest prefix of s[0..n) that is complete UTF-8 (drops a cut sequence at
 * the end, so streamed text never splits a character). */
size_t gf_utf8_complete_prefix(const char *s, size_t n);
/* True when s[0..n) is valid UTF-8 (no overlongs, surrogates or values past U+10FFFF). */
bool gf_utf8_valid(const char *s, size_t n);

#endif
