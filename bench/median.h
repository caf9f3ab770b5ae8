/* median.h — the median of a benchmark's repeated measurements (sorts v in place). Medians,
 * not means: on a shared machine one run that another process slowed would move a mean. */
#ifndef GF_BENCH_MEDIAN_H
#define GF_BENCH_MEDIAN_H

#include <stdlib.h>

static int gf_bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static inline double gf_bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(double), gf_bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

#endif
