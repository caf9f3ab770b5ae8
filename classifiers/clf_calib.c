/* clf_calib.c — per-category calibration of the trained classifiers: an isotonic regression of
 * the validation labels on the raw sigmoid outputs, stored as a short monotone piecewise-linear
 * table, so that a calibrated score of 0.8 means that about 80% of validation texts scoring
 * there carried the label. Invariant: the map is non-decreasing and stays within [0,1]. */
#include "classifiers/clf_int.h"

#include <math.h>
#include <stdlib.h>

float gf_clf_calib_apply(const struct gf_clf_calib *c, float raw)
{
    if (c->n == 0)
        return raw;
    if (!(raw > c->x[0]))  // also catches NaN
        return c->y[0];
    if (raw >= c->x[c->n - 1])
        return c->y[c->n - 1];
    // Binary search for the segment [x[lo], x[lo+1]) holding raw.
    uint32_t lo = 0, hi = c->n - 1;
    while (hi - lo > 1) {
        uint32_t mid = (lo + hi) / 2;
        if (c->x[mid] <= raw)
            lo = mid;
        else
            hi = mid;
    }
    float t = (raw - c->x[lo]) / (c->x[hi] - c->x[lo]);
    return c->y[lo] + t * (c->y[hi] - c->y[lo]);
}

int gf_clf_calib_check(const struct gf_clf_calib *c, struct gf_err *err)
{
    if (c->n > GF_CLF_CALIB_MAX)
        return gf_err_set(err, GF_EFORMAT, "calibration: %u points (max %d)", c->n,
                          GF_CLF_CALIB_MAX);
    for (uint32_t i = 0; i < c->n; i++) {
        if (!(c->x[i] >= 0.0f && c->x[i] <= 1.0f && c->y[i] >= 0.0f && c->y[i] <= 1.0f))
            return gf_err_set(err, GF_EFORMAT, "calibration: point %u outside [0,1]", i);
        if (i > 0 && !(c->x[i] > c->x[i - 1] && c->y[i] >= c->y[i - 1]))
            return gf_err_set(err, GF_EFORMAT, "calibration: point %u not monotone", i);
    }
    return 0;
}

struct pt {
    float x;
    uint8_t y;
};

static int cmp_pt(const void *a, const void *b)
{
    const struct pt *p = a, *q = b;
    if (p->x != q->x)
        return p->x < q->x ? -1 : 1;
    return (int)p->y - (int)q->y;
}

// A PAV block: weight, sum of labels, sum of raw scores (for its x position).
struct block {
    double w, sy, sx;
};

int gf_clf_calib_fit(struct gf_clf_calib *c, const float *raw, const uint8_t *y, size_t n)
{
    c->n = 0;
    struct pt *pts = gf_mallocarray(n + 2, sizeof(*pts));
    struct block *bl = gf_mallocarray(n + 2, sizeof(*bl));
    if (pts == NULL || bl == NULL) {
        gf_free(pts);
        gf_free(bl);
        return GF_ENOMEM;
    }
    size_t m = 0;
    pts[m++] = (struct pt){0.0f, 0};
    for (size_t i = 0; i < n; i++)
        if (raw[i] >= 0.0f && raw[i] <= 1.0f)
            pts[m++] = (struct pt){raw[i], y[i] ? 1 : 0};
    pts[m++] = (struct pt){1.0f, 1};
    qsort(pts, m, sizeof(*pts), cmp_pt);

    // Pool adjacent violators: merge blocks while the mean label decreases.
    size_t nb = 0;
    for (size_t i = 0; i < m; i++) {
        bl[nb++] = (struct block){1.0, pts[i].y, pts[i].x};
        while (nb > 1 && bl[nb - 2].sy * bl[nb - 1].w >= bl[nb - 1].sy * bl[nb - 2].w) {
            // Equal means merge too, so each block's mean is strictly above the previous one.
            bl[nb - 2].w += bl[nb - 1].w;
            bl[nb - 2].sy += bl[nb - 1].sy;
            bl[nb - 2].sx += bl[nb - 1].sx;
            nb--;
        }
    }
    // Too many blocks: merge neighbours of the smallest total weight until they fit. Merging
    // two increasing blocks keeps the sequence increasing.
    while (nb > GF_CLF_CALIB_MAX) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < nb; i++)
            if (bl[i].w + bl[i + 1].w < bl[best].w + bl[best + 1].w)
                best = i;
        bl[best].w += bl[best + 1].w;
        bl[best].sy += bl[best + 1].sy;
        bl[best].sx += bl[best + 1].sx;
        for (size_t i = best + 1; i + 1 < nb; i++)
            bl[i] = bl[i + 1];
        nb--;
    }
    // Each block becomes a point at its mean raw score; keep x strictly increasing.
    for (size_t i = 0; i < nb; i++) {
        float x = (float)(bl[i].sx / bl[i].w), yy = (float)(bl[i].sy / bl[i].w);
        if (x < 0.0f)
            x = 0.0f;
        if (x > 1.0f)
            x = 1.0f;
        if (c->n > 0 && !(x > c->x[c->n - 1])) {
            // Same position as the previous point: keep the larger value there.
            if (yy > c->y[c->n - 1])
                c->y[c->n - 1] = yy;
            continue;
        }
        if (c->n > 0 && yy < c->y[c->n - 1])
            yy = c->y[c->n - 1];
        c->x[c->n] = x;
        c->y[c->n] = yy;
        c->n++;
    }
    gf_free(pts);
    gf_free(bl);
    return 0;
}
