/* cmd_train.c — `gardefou train`: trains the moderation classifier from a recipe
 * (classifiers/recipe.json) and writes it as a GGUF model file, printing a progress line
 * (examples/s, loss, ETA). With the same recipe and data it writes the same file: one thread,
 * fixed seed. Optionally writes the held-out test split as JSONL for `gardefou eval`. */
#include "gateway/cli.h"

#include <stdio.h>
#include <string.h>

#include <cblas.h>

#include "classifiers/clf_int.h"
#include "common/common.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gardefou train --recipe FILE --out MODEL.gguf [options]\n\n"
            "Trains the multi-label text classifier described by a recipe (datasets, label maps,\n"
            "splits, hyper-parameters, seed) and writes it as a GGUF model file.\n\n"
            "options:\n"
            "  --recipe FILE     the recipe, e.g. classifiers/recipe.json\n"
            "  --out FILE        the model file to write (replaced atomically)\n"
            "  --data-dir DIR    where the recipe's datasets are (default: the recipe's\n"
            "                    data_dir, relative to the recipe file)\n"
            "  --all-sources     also train on sources marked \"ship\": false (licenses that do\n"
            "                    not allow redistributing the model: for research only)\n"
            "  --test-out FILE   write the held-out test split of every source as JSONL\n"
            "                    (text, labels, source, benign) for `gardefou eval`\n"
            "  --val-out FILE    write the validation split the same way (choose thresholds\n"
            "                    and settings on it, never on the test split)\n"
            "  --epochs N        override the recipe's epochs (quick experiments)\n"
            "  -q, --quiet       no progress line\n");
}

struct progress {
    bool quiet;
    uint64_t t0;
};

static void on_progress(void *ud, uint64_t done, uint64_t total, double loss, double rate)
{
    struct progress *p = ud;
    if (p->quiet)
        return;
    double eta = rate > 0 ? (double)(total - done) / rate : 0;
    fprintf(stderr, "\rtrain: %5.1f%% %llu/%llu examples  %.0f ex/s  loss %.4f  ETA %d:%02d ",
            100.0 * (double)done / (double)total, (unsigned long long)done,
            (unsigned long long)total, rate, loss, (int)eta / 60, (int)eta % 60);
    if (done == total)
        fputc('\n', stderr);
}

/* Frees examples and the head's examples (whose features are their own only where they differ
 * from the model's). */
static void free_examples(struct gf_clf_example *ex, struct gf_clf_example *hex, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (hex != NULL && ex != NULL && hex[i].feats != ex[i].feats)
            gf_free(hex[i].feats);
        if (ex != NULL)
            gf_free(ex[i].feats);
    }
    gf_free(ex);
    gf_free(hex);
}

/* Hashes the rows of one split into examples (features + labels borrowed from the rows). The
 * model's examples are the texts after their head lines (head_skip); with head != NULL, the
 * head's are the whole texts in head[0..n) (the same features when a row has no head lines). */
static int make_examples(const struct gf_clf_recipe *r, struct gf_clf_rows *rows, int split,
                         bool all, struct gf_clf_example **out, struct gf_clf_example **head,
                         size_t *n_out)
{
    size_t n = 0;
    for (size_t i = 0; i < rows->n; i++)
        n += rows->v[i].split == split && (all || r->sources[rows->v[i].source].ship);
    struct gf_clf_example *ex = gf_calloc(n ? n : 1, sizeof(*ex));
    struct gf_clf_example *hex = head ? gf_calloc(n ? n : 1, sizeof(*hex)) : NULL;
    if (ex == NULL || (head != NULL && hex == NULL)) {
        gf_free(ex);
        gf_free(hex);
        return GF_ENOMEM;
    }
    size_t k = 0;
    int rc = 0;
    for (size_t i = 0; i < rows->n && rc == 0; i++) {
        struct gf_clf_row *row = &rows->v[i];
        if (row->split != split || !(all || r->sources[row->source].ship))
            continue;
        ex[k].labels = row->labels;
        rc = gf_clf_example_features(&r->hash, row->text + row->head_skip,
                                     row->len - row->head_skip, r->max_bytes, &ex[k].feats,
                                     &ex[k].n_feats);
        if (rc == 0 && hex != NULL) {
            hex[k] = ex[k];
            if (row->head_skip > 0)
                rc = gf_clf_example_features(&r->hash, row->text, row->len, r->max_bytes,
                                             &hex[k].feats, &hex[k].n_feats);
        }
        k++;
    }
    *out = ex;
    if (head != NULL)
        *head = hex;
    *n_out = k;
    if (rc != 0) {
        free_examples(ex, hex, k);
        *out = NULL;
        if (head != NULL)
            *head = NULL;
        *n_out = 0;
    }
    return rc;
}

static void print_summary(const struct gf_clf_recipe *r, const struct gf_clf_rows *rows,
                          bool all)
{
    fprintf(stderr, "%-28s %-5s %7s %6s %6s  positives (train split)\n", "source", "ship",
            "train", "val", "test");
    for (size_t s = 0; s < r->n_sources; s++) {
        size_t cnt[3] = {0}, pos[GF_CLF_MAX_CATEGORIES] = {0};
        for (size_t i = 0; i < rows->n; i++) {
            if (rows->v[i].source != s)
                continue;
            cnt[rows->v[i].split]++;
            if (rows->v[i].split == GF_CLF_SPLIT_TRAIN)
                for (uint32_t c = 0; c < r->n_cat; c++)
                    pos[c] += rows->v[i].labels[c] == 1;
        }
        if (cnt[0] + cnt[1] + cnt[2] == 0)
            continue;
        fprintf(stderr, "%-28s %-5s %7zu %6zu %6zu ", r->sources[s].name,
                r->sources[s].ship ? "yes" : (all ? "NO*" : "no"), cnt[0], cnt[1], cnt[2]);
        for (uint32_t c = 0; c < r->n_cat; c++)
            if (pos[c])
                fprintf(stderr, " %s=%zu", r->cats[c], pos[c]);
        fputc('\n', stderr);
    }
}

static int write_split(const char *path, const struct gf_clf_recipe *r,
                       const struct gf_clf_rows *rows, int split, struct gf_err *err)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return gf_err_set(err, GF_EIO, "%s: cannot create", path);
    struct gf_buf b;
    gf_buf_init(&b, 256u << 20);
    int rc = 0;
    for (size_t i = 0; i < rows->n && rc == 0; i++) {
        const struct gf_clf_row *row = &rows->v[i];
        if (row->split != split)
            continue;
        gf_buf_reset(&b);
        rc = gf_buf_puts(&b, "{\"text\":");
        rc = rc ? rc : gf_buf_append_json_str(&b, row->text, row->len);
        rc = rc ? rc : gf_buf_puts(&b, ",\"labels\":{");
        bool first = true;
        for (uint32_t c = 0; c < r->n_cat && rc == 0; c++) {
            if (row->labels[c] < 0)
                continue;
            rc = gf_buf_printf(&b, "%s\"%s\":%d", first ? "" : ",", r->cats[c], row->labels[c]);
            first = false;
        }
        rc = rc ? rc : gf_buf_puts(&b, "},\"source\":");
        const char *src = r->sources[row->source].name;
        rc = rc ? rc : gf_buf_append_json_str(&b, src, strlen(src));
        rc = rc ? rc : gf_buf_printf(&b, ",\"ship\":%s,\"benign\":%s}\n",
                                     r->sources[row->source].ship ? "true" : "false",
                                     row->benign ? "true" : "false");
        if (rc == 0 && fwrite(b.data, 1, b.len, f) != b.len)
            rc = GF_EIO;
    }
    gf_buf_cleanup(&b);
    if (fclose(f) != 0 && rc == 0)
        rc = GF_EIO;
    return rc ? gf_err_set(err, rc, "%s: cannot write (%s)", path, gf_strerror(rc)) : 0;
}

/* The head's examples: those of ex that say something about one of the head's categories,
 * with only those labels (in labels[n * n_head], owned by the caller); the features are ex's. */
static int head_examples(const struct gf_clf_recipe *r, const struct gf_clf_example *ex,
                         size_t n, struct gf_clf_example **out, int8_t **labels, size_t *n_out)
{
    int hc[GF_CLF_MAX_CATEGORIES];
    for (uint32_t k = 0; k < r->n_head; k++)
        for (uint32_t c = 0; c < r->n_cat; c++)
            if (strcmp(r->cats[c], r->head_cats[k]) == 0)
                hc[k] = (int)c;
    *out = gf_calloc(n ? n : 1, sizeof(**out));
    *labels = gf_calloc(n ? n * r->n_head : 1, 1);
    if (*out == NULL || *labels == NULL)
        return GF_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int8_t *y = *labels + k * r->n_head;
        bool known = false;
        for (uint32_t h = 0; h < r->n_head; h++) {
            y[h] = ex[i].labels[hc[h]];
            known |= y[h] >= 0;
        }
        if (!known)
            continue;
        (*out)[k++] = (struct gf_clf_example){.feats = ex[i].feats, .n_feats = ex[i].n_feats,
                                              .labels = y};
    }
    *n_out = k;
    return 0;
}

/* Trains the recipe's head on the same features and attaches it to m, with its calibration. */
static int train_head(const struct gf_clf_recipe *r, const struct gf_clf_example *train,
                      size_t n_train, const struct gf_clf_example *val, size_t n_val,
                      struct progress *prog, struct gf_clf_model *m, struct gf_err *err)
{
    struct gf_clf_example *ht = NULL, *hv = NULL;
    int8_t *lt = NULL, *lv = NULL;
    size_t nt = 0, nv = 0;
    struct gf_clf_model *head = NULL;
    int rc = head_examples(r, train, n_train, &ht, &lt, &nt);
    if (rc == 0)
        rc = head_examples(r, val, n_val, &hv, &lv, &nv);
    if (rc != 0) {
        rc = gf_err_set(err, rc, "out of memory");
        goto out;
    }
    fprintf(stderr, "train: head for %u categor%s (%s%s): %zu examples, %zu for calibration; "
            "%u dims, hidden %u, %u epochs, %s pooling%s\n",
            r->n_head, r->n_head == 1 ? "y" : "ies", r->head_cats[0], r->n_head > 1 ? ", ..." : "",
            nt, nv, r->head_train.dim, r->head_train.hidden, r->head_train.epochs,
            r->head_train.pooling == GF_CLF_POOL_SQRT ? "square-root" : "mean",
            r->head_train.distinct ? " of distinct features" : "");
    prog->t0 = gf_now_ns();
    if ((rc = gf_clf_train(r->n_head, r->head_cats, &r->hash, &r->head_train, ht, nt, hv, nv,
                           on_progress, prog, &head, err)) != 0) {
        gf_err_prefix(err, "head");
        goto out;
    }
    if ((rc = gf_clf_model_attach_head(m, head, err)) != 0)
        goto out;
    for (uint32_t i = 0; i < head->n_cat; i++)
        m->calib[m->head_cat[i]] = head->calib[i];
out:
    gf_free(ht);
    gf_free(hv);
    gf_free(lt);
    gf_free(lv);
    return rc;
}

int gf_cmd_train(int argc, char **argv)
{
    if (gf_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *recipe_path = NULL, *out = NULL, *data_dir = NULL, *test_out = NULL;
    const char *val_out = NULL;
    bool all = false;
    int64_t epochs = 0;
    struct progress prog = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if (strcmp(a, "--recipe") == 0 && has_val)
            recipe_path = argv[++i];
        else if (strcmp(a, "--out") == 0 && has_val)
            out = argv[++i];
        else if (strcmp(a, "--data-dir") == 0 && has_val)
            data_dir = argv[++i];
        else if (strcmp(a, "--test-out") == 0 && has_val)
            test_out = argv[++i];
        else if (strcmp(a, "--val-out") == 0 && has_val)
            val_out = argv[++i];
        else if (strcmp(a, "--epochs") == 0 && has_val) {
            if (gf_parse_i64(argv[++i], 1, 1000, &epochs) != 0) {
                fprintf(stderr, "gardefou train: --epochs: expected 1..1000\n");
                return 2;
            }
        } else if (strcmp(a, "--all-sources") == 0)
            all = true;
        else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0)
            prog.quiet = true;
        else {
            fprintf(stderr, "gardefou train: unknown or incomplete option '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (recipe_path == NULL || out == NULL) {
        fprintf(stderr, "gardefou train: --recipe and --out are required\n\n");
        usage(stderr);
        return 2;
    }

    int status = 1;
    struct gf_err err = {0};
    struct gf_clf_recipe *r = NULL;
    struct gf_clf_rows rows = {0};
    struct gf_clf_example *train = NULL, *val = NULL, *htrain = NULL, *hval = NULL;
    size_t n_train = 0, n_val = 0;
    struct gf_clf_model *m = NULL;
    if (gf_clf_recipe_load(recipe_path, &r, &err) != 0) {
        fprintf(stderr, "gardefou train: %s\n", err.msg);
        return 2;
    }
    if (epochs > 0)
        r->train.epochs = (uint32_t)epochs;
    uint64_t t0 = gf_now_ns();
    if (gf_clf_recipe_rows(r, data_dir, all || test_out != NULL || val_out != NULL, &rows, &err) != 0) {
        fprintf(stderr, "gardefou train: %s\n", err.msg);
        goto done;
    }
    print_summary(r, &rows, all);
    bool head = r->n_head > 0;
    if (make_examples(r, &rows, GF_CLF_SPLIT_TRAIN, all, &train, head ? &htrain : NULL,
                      &n_train) != 0 ||
        make_examples(r, &rows, GF_CLF_SPLIT_VAL, all, &val, head ? &hval : NULL, &n_val) != 0) {
        fprintf(stderr, "gardefou train: out of memory\n");
        goto done;
    }
    fprintf(stderr,
            "train: %zu examples, %zu for calibration; %u buckets x %u dims, hidden %u, "
            "%u epochs (read and hashed in %.1f s)\n",
            n_train, n_val, r->hash.buckets, r->train.dim, r->train.hidden, r->train.epochs,
            (double)(gf_now_ns() - t0) / 1e9);
    // One BLAS thread: the result must not depend on the machine, and the CPU is shared.
    openblas_set_num_threads(1);
    prog.t0 = gf_now_ns();
    if (gf_clf_train(r->n_cat, r->cats, &r->hash, &r->train, train, n_train, val, n_val,
                     on_progress, &prog, &m, &err) != 0 ||
        (head && train_head(r, htrain, n_train, hval, n_val, &prog, m, &err) != 0)) {
        fprintf(stderr, "gardefou train: %s\n", err.msg);
        goto done;
    }
    if (gf_clf_model_save(m, out, &err) != 0) {
        fprintf(stderr, "gardefou train: %s\n", err.msg);
        goto done;
    }
    fprintf(stderr, "train: wrote %s in %.1f s%s\n", out, (double)(gf_now_ns() - t0) / 1e9,
            all ? " (NOT redistributable: trained on --all-sources)" : "");
    if (test_out != NULL) {
        if (write_split(test_out, r, &rows, GF_CLF_SPLIT_TEST, &err) != 0) {
            fprintf(stderr, "gardefou train: %s\n", err.msg);
            goto done;
        }
        fprintf(stderr, "train: wrote the test split to %s\n", test_out);
    }
    if (val_out != NULL) {
        if (write_split(val_out, r, &rows, GF_CLF_SPLIT_VAL, &err) != 0) {
            fprintf(stderr, "gardefou train: %s\n", err.msg);
            goto done;
        }
        fprintf(stderr, "train: wrote the validation split to %s\n", val_out);
    }
    status = 0;
done:
    gf_clf_model_unref(m);
    free_examples(train, htrain, n_train);
    free_examples(val, hval, n_val);
    gf_clf_rows_free(&rows);
    gf_clf_recipe_free(r);
    return status;
}
