/* clf_metrics.c — evaluation measures of a binary decision from scores: counts at a threshold,
 * precision, recall, F1, false-positive rate, the area under the precision-recall curve
 * (average precision, ties broken pessimistically: negatives first among equal scores), and a
 * bootstrap interval of F1.
 * Invariant: entries with an unknown label (< 0) are ignored everywhere. */
#include "classifiers/clf_int.h"

#include <stdlib.h>
#include <string.h>

struct sl {
    float s;
    int8_t y;
};

static int cmp_desc(const void *a, const void *b)
{
    const struct sl *p = a, *q = b;
    if (p->s != q->s)
        return p->s > q->s ? -1 : 1;
    return (int)p->y - (int)q->y;  // negatives first among ties
}

static double ratio(double a, double b)
{
    return b > 0 ? a / b : 0.0;
}

int gf_clf_metrics_compute(const float *scores, const int8_t *labels, size_t n, float threshold,
                           struct gf_clf_metrics *out)
{
    memset(out, 0, sizeof(*out));
    struct sl *v = gf_mallocarray(n ? n : 1, sizeof(*v));
    if (v == NULL)
        return GF_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (labels[i] < 0)
            continue;
        bool flag = scores[i] >= threshold;
        if (labels[i]) {
            out->pos++;
            flag ? out->tp++ : out->fn++;
        } else {
            flag ? out->fp++ : out->tn++;
        }
        v[k++] = (struct sl){scores[i], labels[i] ? 1 : 0};
    }
    out->n = k;
    out->precision = ratio((double)out->tp, (double)(out->tp + out->fp));
    out->recall = ratio((double)out->tp, (double)out->pos);
    out->f1 = ratio(2 * out->precision * out->recall, out->precision + out->recall);
    out->fpr = ratio((double)out->fp, (double)(out->fp + out->tn));
    qsort(v, k, sizeof(*v), cmp_desc);
    double ap = 0;
    size_t tp = 0;
    for (size_t i = 0; i < k; i++)
        if (v[i].y) {
            tp++;
            ap += (double)tp / (double)(i + 1);
        }
    out->auprc = ratio(ap, (double)out->pos);
    gf_free(v);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int gf_clf_metrics_f1_interval(const struct gf_clf_metrics *m, unsigned draws, uint64_t seed,
                               double *lo, double *hi)
{
    *lo = *hi = 0;
    if (draws == 0)
        return GF_EINVAL;
    if (m->n == 0)
        return 0;
    if (m->n > UINT32_MAX)  // the index draw below multiplies n by 32 random bits
        return GF_EINVAL;
    double *f = gf_mallocarray(draws, sizeof(*f));
    if (f == NULL)
        return GF_ENOMEM;
    // Only the cell of each entry matters (tp, fp, fn, tn): a resample draws m->n cells with
    // probabilities given by the counts. Cells as ranges of [0, n): tp, then fp, then fn.
    uint64_t n = m->n, c_tp = m->tp, c_fp = c_tp + m->fp, c_fn = c_fp + m->fn;
    uint64_t state = seed;
    for (unsigned d = 0; d < draws; d++) {
        uint64_t tp = 0, wrong = 0;
        for (uint64_t i = 0; i < n; i++) {
            state += 0x9e3779b97f4a7c15ULL;
            // An index in [0, n) from the top 32 bits; the bias, n / 2^32, is far below the
            // interval's own precision for any file eval reads.
            uint64_t k = ((gf_clf_mix64(state) >> 32) * n) >> 32;
            tp += k < c_tp;
            wrong += k >= c_tp && k < c_fn;
        }
        f[d] = tp + wrong ? 2.0 * (double)tp / (double)(2 * tp + wrong) : 0.0;
    }
    qsort(f, draws, sizeof(*f), cmp_double);
    // Nearest-rank percentiles (0.975 * draws < draws: both ranks are in the array).
    *lo = f[(size_t)(0.025 * draws)];
    *hi = f[(size_t)(0.975 * draws)];
    gf_free(f);
    return 0;
}
