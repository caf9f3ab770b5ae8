/* scan_util.h — helpers of the detector tests: scan a text (with its canonical form) and look
 * at the hits. Included by one test file each. */
#ifndef GF_SCAN_UTIL_H
#define GF_SCAN_UTIL_H

#include "classifiers/classifiers.h"

#include "test.h"

static struct gf_hits hits;
static struct gf_scan_scratch *scratch;

static void scan_setup(void)
{
    gf_hits_init(&hits, 1000);
    scratch = gf_scan_scratch_new();
    if (scratch == NULL)
        SKIP("cannot make scan scratch");
}

static void scan_teardown(void)
{
    gf_hits_cleanup(&hits);
    gf_scan_scratch_free(scratch);
}

/* Scans s with d; returns the number of hits (or -1 on error). */
static int scan(const struct gf_detector *d, const char *s)
{
    struct gf_norm n;
    struct gf_err err = {0};
    gf_hits_reset(&hits);
    if (gf_normalize(s, strlen(s), &n, &err) != 0)
        return -1;
    struct gf_scan in = {s, strlen(s), &n, scratch, 0};
    int rc = gf_detector_scan(d, &in, &hits, &err);
    gf_norm_cleanup(&n);
    if (rc != 0) {
        fprintf(stderr, "scan error: %s\n", err.msg);
        return -1;
    }
    return (int)hits.n;
}

/* True when some hit has this type and exactly covers the substring sub of s. */
GF_UNUSED static bool has_hit(const char *s, const char *type, const char *sub)
{
    const char *p = strstr(s, sub);
    if (p == NULL)
        return false;
    size_t a = (size_t)(p - s), b = a + strlen(sub);
    for (size_t i = 0; i < hits.n; i++)
        if (strcmp(hits.v[i].type, type) == 0 && hits.v[i].start == a && hits.v[i].end == b)
            return true;
    return false;
}

#endif
