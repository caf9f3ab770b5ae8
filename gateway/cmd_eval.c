/* cmd_eval.c — `gardefou eval`: measures a classifier model on labelled JSONL (for example the
 * held-out split written by `gardefou train --test-out`): per category precision, recall, F1,
 * AUPRC and false-positive rate at a threshold, with a bootstrap interval of F1;
 * harmful-request and prompt-injection recall with the false-positive rate on benign prompts;
 * optionally the score drift of evasion variants. */
#include "gateway/cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "classifiers/clf_int.h"
#include "common/common.h"

// Resamples behind the F1 interval, and their seed: the same file always prints the same interval.
enum { F1_DRAWS = 1000 };
#define F1_SEED 0x5eedf1ULL

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gardefou eval --data FILE.jsonl [options]\n\n"
            "Scores every line of FILE ({\"text\": ..., \"labels\": {\"spam\": 1, \"hate\": 0, ...},\n"
            "\"benign\": true|false, \"source\": ...}; categories missing from labels are not\n"
            "counted) and prints per category precision, recall, F1, AUPRC and the false-positive\n"
            "rate at the threshold, and the 95%% bootstrap interval of F1 (1,000 resamples of\n"
            "the rows, a fixed seed): how far F1 could move on another sample of the same\n"
            "sources.\n\n"
            "options:\n"
            "  --model FILE      the model (default: the shipped models/moderation.gguf)\n"
            "  --data FILE       labelled JSONL (required)\n"
            "  --threshold T     decision threshold on calibrated scores (default 0.5)\n"
            "  --evasion         also score homoglyph, zero-width, leetspeak and spacing variants\n"
            "                    of every flagged text and report how far the scores move\n"
            "  --by-source       add a table per source (recall, false-positive rate)\n"
            "  --scores-out FILE write every row's scores as JSONL (source, text, scores)\n");
}

struct row {
    char *text;
    size_t len;
    int8_t labels[GF_CLF_MAX_CATEGORIES];
    bool benign;
    int source;  // index into the source names
};

struct data {
    struct row *v;
    size_t n, cap;
    char *sources[256];
    int n_sources;
};

static void data_free(struct data *d)
{
    for (size_t i = 0; i < d->n; i++)
        gf_free(d->v[i].text);
    gf_free(d->v);
    for (int i = 0; i < d->n_sources; i++)
        gf_free(d->sources[i]);
}

static int source_id(struct data *d, const char *name)
{
    for (int i = 0; i < d->n_sources; i++)
        if (strcmp(d->sources[i], name) == 0)
            return i;
    if (d->n_sources == (int)GF_ARRAY_LEN(d->sources))
        return d->n_sources - 1;  // lump the rest together
    d->sources[d->n_sources] = gf_strdup(name);
    return d->sources[d->n_sources] ? d->n_sources++ : 0;
}

static int load_data(const char *path, const struct gf_clf_model *m, struct data *d,
                     struct gf_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = gf_clf_read_file(path, 1u << 30, &buf, &len, err);
    if (rc != 0)
        return rc;
    const char *const *cats;
    size_t n_cat = gf_clf_model_categories(m, &cats);
    size_t line = 0;
    for (char *p = buf, *end = buf + len; p < end && rc == 0;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char *next = nl ? nl + 1 : end;
        line++;
        if (n == 0) {
            p = next;
            continue;
        }
        cJSON *o = cJSON_ParseWithLength(p, n);
        p = next;
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(o, "text");
        const cJSON *labels = cJSON_GetObjectItemCaseSensitive(o, "labels");
        if (!cJSON_IsString(text) || (labels != NULL && !cJSON_IsObject(labels))) {
            cJSON_Delete(o);
            rc = gf_err_set(err, GF_EINVAL, "%s:%zu: expected {\"text\": string, \"labels\": {}}",
                            path, line);
            break;
        }
        if (d->n == d->cap) {
            size_t cap = d->cap ? d->cap * 2 : 1024;
            struct row *v = gf_realloc(d->v, cap * sizeof(*v));
            if (v == NULL) {
                cJSON_Delete(o);
                rc = gf_err_set(err, GF_ENOMEM, "out of memory");
                break;
            }
            d->v = v;
            d->cap = cap;
        }
        struct row *r = &d->v[d->n];
        memset(r->labels, -1, sizeof(r->labels));
        for (size_t c = 0; c < n_cat; c++) {
            const cJSON *l = cJSON_GetObjectItemCaseSensitive(labels, cats[c]);
            if (cJSON_IsNumber(l))
                r->labels[c] = l->valuedouble >= 0.5 ? 1 : 0;
            else if (cJSON_IsBool(l))
                r->labels[c] = cJSON_IsTrue(l) ? 1 : 0;
        }
        r->benign = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "benign"));
        const cJSON *src = cJSON_GetObjectItemCaseSensitive(o, "source");
        r->source = source_id(d, cJSON_IsString(src) ? src->valuestring : "(none)");
        r->len = strlen(text->valuestring);
        r->text = gf_strndup(text->valuestring, r->len);
        cJSON_Delete(o);
        if (r->text == NULL) {
            rc = gf_err_set(err, GF_ENOMEM, "out of memory");
            break;
        }
        d->n++;
    }
    gf_free(buf);
    return rc;
}

/* Recall of the "any of these categories" decision on rows labelled positive for one of them,
 * and its false-positive rate on benign-prompt rows labelled negative for all of them. */
static void group_line(const char *title, const struct data *d, const float *scores,
                       size_t n_cat, const int *idx, int k, float thr)
{
    size_t pos = 0, tp = 0, neg = 0, fp = 0;
    for (size_t i = 0; i < d->n; i++) {
        float best = 0;
        bool any_pos = false, all_neg = true;
        for (int j = 0; j < k; j++) {
            float s = scores[i * n_cat + (size_t)idx[j]];
            best = s > best ? s : best;
            any_pos |= d->v[i].labels[idx[j]] == 1;
            all_neg &= d->v[i].labels[idx[j]] == 0;
        }
        if (any_pos) {
            pos++;
            tp += best >= thr;
        } else if (all_neg && d->v[i].benign) {
            neg++;
            fp += best >= thr;
        }
    }
    printf("%-34s recall %.3f (%zu/%zu)   benign-prompt FP %.2f%% (%zu/%zu)\n", title,
           pos ? (double)tp / (double)pos : 0.0, tp, pos, neg ? 100.0 * (double)fp / (double)neg : 0.0,
           fp, neg);
}

static void by_source(const struct data *d, const float *scores, size_t n_cat, float thr)
{
    printf("\n%-28s %6s %8s %8s\n", "source", "rows", "recall", "fpr");
    for (int s = 0; s < d->n_sources; s++) {
        size_t n = 0, pos = 0, tp = 0, neg = 0, fp = 0;
        for (size_t i = 0; i < d->n; i++) {
            if (d->v[i].source != s)
                continue;
            n++;
            for (size_t c = 0; c < n_cat; c++) {
                bool flag = scores[i * n_cat + c] >= thr;
                if (d->v[i].labels[c] == 1) {
                    pos++;
                    tp += flag;
                } else if (d->v[i].labels[c] == 0) {
                    neg++;
                    fp += flag;
                }
            }
        }
        printf("%-28s %6zu %8.3f %8.4f\n", d->sources[s], n, pos ? (double)tp / (double)pos : 0.0,
               neg ? (double)fp / (double)neg : 0.0);
    }
}

static int write_scores(const char *path, const struct data *d, const float *scores,
                        const char *const *cats, size_t n_cat, struct gf_err *err)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return gf_err_set(err, GF_EIO, "%s: cannot create", path);
    struct gf_buf b;
    gf_buf_init(&b, 64u << 20);
    int rc = 0;
    for (size_t i = 0; i < d->n && rc == 0; i++) {
        gf_buf_reset(&b);
        rc = gf_buf_puts(&b, "{\"source\":");
        const char *src = d->sources[d->v[i].source];
        rc = rc ? rc : gf_buf_append_json_str(&b, src, strlen(src));
        rc = rc ? rc : gf_buf_puts(&b, ",\"text\":");
        rc = rc ? rc : gf_buf_append_json_str(&b, d->v[i].text, d->v[i].len);
        rc = rc ? rc : gf_buf_puts(&b, ",\"labels\":{");
        bool first = true;
        for (size_t c = 0; c < n_cat && rc == 0; c++) {
            if (d->v[i].labels[c] < 0)
                continue;
            rc = gf_buf_printf(&b, "%s\"%s\":%d", first ? "" : ",", cats[c], d->v[i].labels[c]);
            first = false;
        }
        rc = rc ? rc : gf_buf_puts(&b, "},\"scores\":{");
        for (size_t c = 0; c < n_cat && rc == 0; c++)
            rc = gf_buf_printf(&b, "%s\"%s\":%.4f", c ? "," : "", cats[c],
                               (double)scores[i * n_cat + c]);
        rc = rc ? rc : gf_buf_puts(&b, "}}\n");
        if (rc == 0 && fwrite(b.data, 1, b.len, f) != b.len)
            rc = GF_EIO;
    }
    gf_buf_cleanup(&b);
    if (fclose(f) != 0 && rc == 0)
        rc = GF_EIO;
    return rc ? gf_err_set(err, rc, "%s: cannot write (%s)", path, gf_strerror(rc)) : 0;
}

static int evasion(const struct gf_clf_model *m, struct gf_clf_scratch *s, const struct data *d,
                   const float *scores, size_t n_cat, float thr)
{
    struct gf_buf b;
    gf_buf_init(&b, 64u << 20);
    float *v = gf_mallocarray(n_cat, sizeof(float));
    if (v == NULL)
        return GF_ENOMEM;
    printf("\nevasion variants of flagged texts (max |score change| over categories):\n");
    int rc = 0;
    for (int k = 0; k < GF_CLF_EVADE_COUNT && rc == 0; k++) {
        size_t n = 0, within = 0;
        double sum = 0, worst = 0;
        for (size_t i = 0; i < d->n && rc == 0; i++) {
            const float *o = scores + i * n_cat;
            bool flagged = false;
            for (size_t c = 0; c < n_cat; c++)
                flagged |= o[c] >= thr;
            if (!flagged)
                continue;
            if ((rc = gf_clf_evade((enum gf_clf_evasion)k, d->v[i].text, d->v[i].len, &b)) != 0)
                break;
            if ((rc = gf_clf_model_score(m, b.data, b.len, v, s)) != 0)
                break;
            double delta = 0;
            for (size_t c = 0; c < n_cat; c++)
                delta = fmax(delta, fabs((double)v[c] - (double)o[c]));
            n++;
            sum += delta;
            worst = fmax(worst, delta);
            within += delta <= 0.05;
        }
        printf("  %-11s %6zu texts  mean %.4f  max %.4f  within 0.05: %.2f%%\n",
               gf_clf_evasion_name((enum gf_clf_evasion)k), n, n ? sum / (double)n : 0.0, worst,
               n ? 100.0 * (double)within / (double)n : 0.0);
    }
    gf_free(v);
    gf_buf_cleanup(&b);
    return rc;
}

int gf_cmd_eval(int argc, char **argv)
{
    if (gf_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *model = gf_clf_default_model_path(), *data_path = NULL;
    double thr = 0.5;
    bool do_evasion = false, do_sources = false;
    const char *scores_out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (strcmp(a, "--model") == 0 && has_val)
            model = argv[++i];
        else if (strcmp(a, "--data") == 0 && has_val)
            data_path = argv[++i];
        else if (strcmp(a, "--threshold") == 0 && has_val) {
            char *end;
            thr = strtod(argv[++i], &end);
            if (*end != '\0' || !(thr >= 0 && thr <= 1)) {
                fprintf(stderr, "gardefou eval: --threshold: expected a number in [0,1]\n");
                return 2;
            }
        } else if (strcmp(a, "--evasion") == 0)
            do_evasion = true;
        else if (strcmp(a, "--scores-out") == 0 && has_val)
            scores_out = argv[++i];
        else if (strcmp(a, "--by-source") == 0)
            do_sources = true;
        else {
            fprintf(stderr, "gardefou eval: unknown or incomplete option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (data_path == NULL) {
        fprintf(stderr, "gardefou eval: --data is required\n\n");
        usage(stderr);
        return 2;
    }
    struct gf_err err = {0};
    struct gf_clf_model *m = NULL;
    if (gf_clf_model_load(model, &m, &err) != 0) {
        fprintf(stderr, "gardefou eval: %s\n", err.msg);
        return 2;
    }
    int status = 2;
    struct data d = {0};
    float *scores = NULL, *col = NULL;
    int8_t *lab = NULL;
    struct gf_clf_scratch *s = NULL;
    const char *const *cats;
    size_t n_cat = gf_clf_model_categories(m, &cats);
    if (load_data(data_path, m, &d, &err) != 0) {
        fprintf(stderr, "gardefou eval: %s\n", err.msg);
        goto done;
    }
    scores = gf_mallocarray(d.n * n_cat + 1, sizeof(float));
    col = gf_mallocarray(d.n + 1, sizeof(float));
    lab = gf_malloc(d.n + 1);
    if (scores == NULL || col == NULL || lab == NULL || gf_clf_scratch_new(m, &s) != 0) {
        fprintf(stderr, "gardefou eval: out of memory\n");
        goto done;
    }
    uint64_t t0 = gf_now_ns();
    size_t bytes = 0;
    for (size_t i = 0; i < d.n; i++) {
        gf_clf_model_score(m, d.v[i].text, d.v[i].len, scores + i * n_cat, s);
        bytes += d.v[i].len;
    }
    double secs = (double)(gf_now_ns() - t0) / 1e9;
    printf("model %s: %zu categories; data %s: %zu rows (%.1f MB) scored in %.2f s "
           "(%.0f texts/s); threshold %.2f\n\n",
           model, n_cat, data_path, d.n, (double)bytes / 1e6, secs, (double)d.n / (secs + 1e-9),
           thr);
    printf("%-18s %6s %6s %9s %7s %7s %7s %8s  %s\n", "category", "n", "pos", "precision",
           "recall", "f1", "auprc", "fpr", "f1 95% interval");
    for (size_t c = 0; c < n_cat; c++) {
        for (size_t i = 0; i < d.n; i++) {
            col[i] = scores[i * n_cat + c];
            lab[i] = d.v[i].labels[c];
        }
        struct gf_clf_metrics mt;
        if (gf_clf_metrics_compute(col, lab, d.n, (float)thr, &mt) != 0) {
            fprintf(stderr, "gardefou eval: out of memory\n");
            goto done;
        }
        double lo, hi;
        if (gf_clf_metrics_f1_interval(&mt, F1_DRAWS, F1_SEED, &lo, &hi) != 0) {
            fprintf(stderr, "gardefou eval: the F1 interval: out of memory\n");
            goto done;
        }
        printf("%-18s %6zu %6zu %9.3f %7.3f %7.3f %7.3f %8.4f  %.3f-%.3f\n", cats[c], mt.n,
               mt.pos, mt.precision, mt.recall, mt.f1, mt.auprc, mt.fpr, lo, hi);
    }
    printf("\n");
    int harm[3], k = 0;
    const char *harm_names[] = {"illicit", "violence", "self-harm"};
    for (int j = 0; j < 3; j++) {
        int idx = gf_clf_model_category_index(m, harm_names[j]);
        if (idx >= 0)
            harm[k++] = idx;
    }
    if (k > 0)
        group_line("harmful (illicit|violence|self-harm)", &d, scores, n_cat, harm, k,
                   (float)thr);
    int pi = gf_clf_model_category_index(m, "prompt-injection");
    if (pi >= 0)
        group_line("prompt-injection", &d, scores, n_cat, &pi, 1, (float)thr);
    int all[GF_CLF_MAX_CATEGORIES];
    for (size_t c = 0; c < n_cat; c++)
        all[c] = (int)c;
    group_line("any category", &d, scores, n_cat, all, (int)n_cat, (float)thr);
    if (do_sources)
        by_source(&d, scores, n_cat, (float)thr);
    if (scores_out != NULL && write_scores(scores_out, &d, scores, cats, n_cat, &err) != 0) {
        fprintf(stderr, "gardefou eval: %s\n", err.msg);
        goto done;
    }
    if (do_evasion && evasion(m, s, &d, scores, n_cat, (float)thr) != 0) {
        fprintf(stderr, "gardefou eval: evasion variants failed\n");
        goto done;
    }
    status = 0;
done:
    gf_clf_scratch_free(s);
    gf_free(scores);
    gf_free(col);
    gf_free(lab);
    data_free(&d);
    gf_clf_model_unref(m);
    return status;
}
