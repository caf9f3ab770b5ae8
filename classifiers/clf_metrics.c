/* clf_metrics.c — evaluation measures of a binary decision from scores: counts at a threshold,
 * precision, recall, F1, false-positive rate, and the area under the precision-recall curve
 * (average precision, ties broken pessimistically: negatives first among equal scores).
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
