/* util.c — clocks, the kernel's randomness, strict number and duration parsing. */
#include "common/common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

uint64_t gf_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t gf_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *put_digits(char *p, int v, int width)
{
    for (int i = width - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
    return p + width;
}

void gf_format_time(int64_t wall_ms, char *out, size_t outlen)
{
    // Called for every audit record: digits are written directly rather than through snprintf,
    // and the date and time to the second (gmtime_r is most of the work) are kept from the last
    // call on this thread, as records come many a second.
    static _Thread_local bool have_last;
    static _Thread_local time_t last_secs;
    static _Thread_local char last[20]; // "YYYY-MM-DDTHH:MM:SS."
    time_t secs = (time_t)(wall_ms / 1000);
    if (outlen >= 25 && have_last && secs == last_secs) {
        memcpy(out, last, sizeof(last));
        char *p = put_digits(out + sizeof(last), (int)(wall_ms % 1000), 3);
        *p++ = 'Z';
        *p = '\0';
        return;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    int year = tm.tm_year + 1900;
    if (outlen < 25 || year < 0 || year > 9999) {
        snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(wall_ms % 1000));
        return;
    }
    char *p = put_digits(out, year, 4);
    *p++ = '-';
    p = put_digits(p, tm.tm_mon + 1, 2);
    *p++ = '-';
    p = put_digits(p, tm.tm_mday, 2);
    *p++ = 'T';
    p = put_digits(p, tm.tm_hour, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_min, 2);
    *p++ = ':';
    p = put_digits(p, tm.tm_sec, 2);
    *p++ = '.';
    memcpy(last, out, sizeof(last));
    last_secs = secs;
    have_last = true;
    p = put_digits(p, (int)(wall_ms % 1000), 3);
    *p++ = 'Z';
    *p = '\0';
}

size_t gf_strlcpy(char *dst, const char *src, size_t size)
{
    if (size == 0)
        return 0;
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

int gf_random_bytes(void *p, size_t n)
{
    uint8_t *out = p;
    while (n > 0) {
        ssize_t r = getrandom(out, n, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return GF_EIO;
        }
        out += r;
        n -= (size_t)r;
    }
    return 0;
}

int gf_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (s == NULL || *s == '\0')
        return GF_EINVAL;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end != '\0' || v < min || v > max)
        return GF_EINVAL;
    *out = v;
    return 0;
}

int gf_parse_duration_ms(const char *s, int64_t *out)
{
    if (s == NULL || *s == '\0')
        return GF_EINVAL;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return GF_EINVAL;
    int64_t unit;
    if (strcmp(end, "") == 0 || strcmp(end, "s") == 0)
        unit = 1000;
    else if (strcmp(end, "ms") == 0)
        unit = 1;
    else if (strcmp(end, "m") == 0)
        unit = 60 * 1000;
    else if (strcmp(end, "h") == 0)
        unit = 3600 * 1000;
    else if (strcmp(end, "d") == 0)
        unit = 86400 * 1000;
    else
        return GF_EINVAL;
    if (v > INT64_MAX / unit)
        return GF_EINVAL;
    *out = v * unit;
    return 0;
}
