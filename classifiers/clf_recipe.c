/* clf_recipe.c — the training recipe (classifiers/recipe.json) and the labelled rows it yields:
 * which JSONL files to read, how each dataset's own labels map onto the model's categories
 * (positive, negative, or unknown for the categories a dataset says nothing about), which rows
 * go to the train, validation and test splits, and the hyper-parameters. Rows are deduplicated
 * on their text (whitespace collapsed, case folded) across all sources, and each row's split is
 * a hash of that key and the recipe seed, so a text can never be in two splits.
 * Invariant: the same recipe and files always give the same rows in the same order. */
#include "classifiers/clf_int.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#define MAX_FILE (256u << 20)  // a source file larger than this is refused

static char *path_join(const char *dir, const char *rel)
{
    if (rel[0] == '/' || dir == NULL || dir[0] == '\0')
        return gf_strdup(rel);
    size_t a = strlen(dir), b = strlen(rel);
    char *p = gf_malloc(a + b + 2);
    if (p == NULL)
        return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, rel, b + 1);
    return p;
}

int gf_clf_read_file(const char *path, size_t max, char **out, size_t *len, struct gf_err *err)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return gf_err_set(err, GF_EIO, "%s: cannot open", path);
    struct gf_buf b;
    gf_buf_init(&b, max);
    char chunk[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if ((rc = gf_buf_append(&b, chunk, n)) != 0)
            break;
    if (rc == 0 && ferror(f))
        rc = GF_EIO;
    fclose(f);
    if (rc != 0) {
        gf_buf_cleanup(&b);
        return gf_err_set(err, rc, "%s: %s", path,
                          rc == GF_ETOOBIG ? "file too large" : gf_strerror(rc));
    }
    *len = b.len;
    *out = gf_buf_steal(&b);
    return *out ? 0 : gf_err_set(err, GF_ENOMEM, "%s: out of memory", path);
}

/* ---- recipe ---------------------------------------------------------------------------- */

static int cat_index(const struct gf_clf_recipe *r, const char *name)
{
    for (uint32_t c = 0; c < r->n_cat; c++)
        if (strcmp(r->cats[c], name) == 0)
            return (int)c;
    return -1;
}

static int get_num(const cJSON *o, const char *key, double lo, double hi, double *v,
                   const char *where, struct gf_err *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (it == NULL)
        return 0;  // keep the default
    if (!cJSON_IsNumber(it) || !(it->valuedouble >= lo && it->valuedouble <= hi))
        return gf_err_set(err, GF_EINVAL, "%s.%s: expected a number in [%g, %g]", where, key, lo,
                          hi);
    *v = it->valuedouble;
    return 0;
}

/* "pooling": "mean" or "sqrt" (enum gf_clf_pooling); absent keeps *v. */
static int get_pooling(const cJSON *o, uint32_t *v, const char *where, struct gf_err *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, "pooling");
    if (it == NULL)
        return 0;
    if (cJSON_IsString(it) && strcmp(it->valuestring, "mean") == 0)
        *v = GF_CLF_POOL_MEAN;
    else if (cJSON_IsString(it) && strcmp(it->valuestring, "sqrt") == 0)
        *v = GF_CLF_POOL_SQRT;
    else
        return gf_err_set(err, GF_EINVAL, "%s.pooling: expected \"mean\" or \"sqrt\"", where);
    return 0;
}

/* "distinct": true or false; absent keeps *v. */
static int get_distinct(const cJSON *o, bool *v, const char *where, struct gf_err *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, "distinct");
    if (it == NULL)
        return 0;
    if (!cJSON_IsBool(it))
        return gf_err_set(err, GF_EINVAL, "%s.distinct: expected true or false", where);
    *v = cJSON_IsTrue(it);
    return 0;
}

static int get_range(const cJSON *o, const char *key, uint32_t *lo, uint32_t *hi, uint32_t max,
                     struct gf_err *err)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);
    if (it == NULL)
        return 0;
    const cJSON *a = cJSON_GetArrayItem(it, 0), *b = cJSON_GetArrayItem(it, 1);
    if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2 || !cJSON_IsNumber(a) ||
        !cJSON_IsNumber(b) || a->valuedouble < 0 || b->valuedouble > max ||
        a->valuedouble > b->valuedouble)
        return gf_err_set(err, GF_EINVAL, "hash.%s: expected [min, max] within 0..%u", key, max);
    *lo = (uint32_t)a->valuedouble;
    *hi = (uint32_t)b->valuedouble;
    return 0;
}

/* Category list of a rule ("pos"/"neg"): an array of known names, or "*" for the rest. */
static int check_cat_list(const struct gf_clf_recipe *r, const cJSON *v, bool star_ok,
                          const char *where, struct gf_err *err)
{
    if (v == NULL)
        return 0;
    if (star_ok && cJSON_IsString(v) && strcmp(v->valuestring, "*") == 0)
        return 0;
    if (!cJSON_IsArray(v))
        return gf_err_set(err, GF_EINVAL, "%s: expected an array of categories%s", where,
                          star_ok ? " or \"*\"" : "");
    const cJSON *e;
    cJSON_ArrayForEach(e, v)
    {
        if (!cJSON_IsString(e) || cat_index(r, e->valuestring) < 0)
            return gf_err_set(err, GF_EINVAL, "%s: unknown category %s", where,
                              cJSON_IsString(e) ? e->valuestring : "(not a string)");
    }
    return 0;
}

/* The optional "head": {"categories": [...], "dim", "hidden", "epochs", "lr", "pooling",
 * "distinct"}; its other training parameters are those of "train" (the last three too when
 * absent). */
static int parse_head(struct gf_clf_recipe *r, const cJSON *h, struct gf_err *err)
{
    r->n_head = 0;
    if (h == NULL)
        return 0;
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(h, "categories");
    int rc = check_cat_list(r, cats, false, "head.categories", err);
    if (rc != 0)
        return rc;
    if (cats == NULL || cJSON_GetArraySize(cats) < 1)
        return gf_err_set(err, GF_EINVAL, "head.categories: expected an array of categories");
    const cJSON *c;
    cJSON_ArrayForEach(c, cats)
    {
        for (uint32_t i = 0; i < r->n_head; i++)
            if (strcmp(r->head_cats[i], c->valuestring) == 0)
                return gf_err_set(err, GF_EINVAL, "head.categories: %s twice", c->valuestring);
        r->head_cats[r->n_head++] = c->valuestring;
    }
    double dim = 8, hidden = 0, epochs = r->train.epochs, lr = r->train.lr, seeds = 1;
    r->head_train = r->train;
    if ((rc = get_num(h, "dim", 1, GF_CLF_MAX_DIM - r->train.dim, &dim, "head", err)) ||
        (rc = get_num(h, "hidden", 0, GF_CLF_MAX_HIDDEN, &hidden, "head", err)) ||
        (rc = get_num(h, "epochs", 1, 1000, &epochs, "head", err)) ||
        (rc = get_num(h, "lr", 1e-6, 100, &lr, "head", err)) ||
        (rc = get_num(h, "seeds", 1, 64, &seeds, "head", err)) ||
        (rc = get_pooling(h, &r->head_train.pooling, "head", err)) ||
        (rc = get_distinct(h, &r->head_train.distinct, "head", err)))
        return rc;
    r->head_train.dim = (uint32_t)dim;
    r->head_train.hidden = (uint32_t)hidden;
    r->head_train.epochs = (uint32_t)epochs;
    r->head_train.lr = (float)lr;
    r->head_train.seeds = (uint32_t)seeds;
    if (r->head_train.seeds > 1 && (r->head_train.hidden != 0 || dim < 2 * r->n_head))
        return gf_err_set(err, GF_EINVAL,
                          "head.seeds: averaging needs a linear head (hidden 0) of at least 2 "
                          "dims per category");
    return 0;
}

/* A source's optional "head_lines": [{"if": {field: value or [values]}, "line": "..."}]. */
static int check_head_lines(const cJSON *hl, const char *where, struct gf_err *err)
{
    if (hl == NULL)
        return 0;
    if (!cJSON_IsArray(hl))
        return gf_err_set(err, GF_EINVAL, "%s.head_lines: expected an array", where);
    const cJSON *e;
    cJSON_ArrayForEach(e, hl)
    {
        const cJSON *cond = cJSON_GetObjectItemCaseSensitive(e, "if");
        const cJSON *line = cJSON_GetObjectItemCaseSensitive(e, "line");
        if (!cJSON_IsObject(e) || !cJSON_IsObject(cond) || !cJSON_IsString(line) ||
            line->valuestring[0] == '\0' || strlen(line->valuestring) > 200 ||
            strchr(line->valuestring, '\n') != NULL)
            return gf_err_set(err, GF_EINVAL,
                              "%s.head_lines: expected {\"if\": {...}, \"line\": \"...\"} with a "
                              "line of 1-200 bytes and no newline",
                              where);
    }
    return 0;
}

static int parse_sources(struct gf_clf_recipe *r, const cJSON *arr, struct gf_err *err)
{
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
        return gf_err_set(err, GF_EINVAL, "sources: expected a non-empty array");
    r->n_sources = (size_t)cJSON_GetArraySize(arr);
    if (r->n_sources > 1000)
        return gf_err_set(err, GF_EINVAL, "sources: more than 1000");
    r->sources = gf_calloc(r->n_sources, sizeof(*r->sources));
    if (r->sources == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    size_t i = 0;
    const cJSON *s;
    cJSON_ArrayForEach(s, arr)
    {
        struct gf_clf_source *src = &r->sources[i];
        char where[64];
        snprintf(where, sizeof(where), "sources[%zu]", i);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(s, "name");
        const cJSON *file = cJSON_GetObjectItemCaseSensitive(s, "file");
        const cJSON *lic = cJSON_GetObjectItemCaseSensitive(s, "license");
        const cJSON *root = cJSON_GetObjectItemCaseSensitive(s, "root");
        if (!cJSON_IsObject(s) || !cJSON_IsString(name) || !cJSON_IsString(file) ||
            !cJSON_IsString(lic))
            return gf_err_set(err, GF_EINVAL, "%s: needs string name, file and license", where);
        if (root != NULL && !(cJSON_IsString(root) && (strcmp(root->valuestring, "data") == 0 ||
                                                      strcmp(root->valuestring, "recipe") == 0)))
            return gf_err_set(err, GF_EINVAL, "%s.root: expected \"data\" or \"recipe\"", where);
        src->spec = s;
        src->name = name->valuestring;
        src->file = file->valuestring;
        src->license = lic->valuestring;
        src->in_recipe_dir = root != NULL && strcmp(root->valuestring, "recipe") == 0;
        src->ship = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "ship"));
        src->benign = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "benign_prompts"));
        src->keep = 1.0;
        int rc = get_num(s, "keep", 0.0, 1.0, &src->keep, where, err);
        if (rc == 0)
            rc = check_head_lines(cJSON_GetObjectItemCaseSensitive(s, "head_lines"), where, err);
        if (rc != 0)
            return rc;
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(s, "text");
        if (text != NULL && !cJSON_IsArray(text))
            return gf_err_set(err, GF_EINVAL, "%s.text: expected an array of field names", where);
        const cJSON *rules = cJSON_GetObjectItemCaseSensitive(s, "rules");
        if (!cJSON_IsArray(rules) || cJSON_GetArraySize(rules) == 0)
            return gf_err_set(err, GF_EINVAL, "%s.rules: expected a non-empty array", where);
        size_t k = 0;
        const cJSON *rule;
        cJSON_ArrayForEach(rule, rules)
        {
            char rw[96];
            snprintf(rw, sizeof(rw), "%s.rules[%zu]", where, k++);
            const cJSON *cond = cJSON_GetObjectItemCaseSensitive(rule, "if");
            if (!cJSON_IsObject(rule) || (cond != NULL && !cJSON_IsObject(cond)))
                return gf_err_set(err, GF_EINVAL, "%s: expected {\"if\": {...}, ...}", rw);
            char pw[128];
            snprintf(pw, sizeof(pw), "%s.pos", rw);
            if ((rc = check_cat_list(r, cJSON_GetObjectItemCaseSensitive(rule, "pos"), false, pw,
                                     err)) != 0)
                return rc;
            snprintf(pw, sizeof(pw), "%s.neg", rw);
            if ((rc = check_cat_list(r, cJSON_GetObjectItemCaseSensitive(rule, "neg"), true, pw,
                                     err)) != 0)
                return rc;
        }
        i++;
    }
    return 0;
}

int gf_clf_recipe_load(const char *path, struct gf_clf_recipe **out, struct gf_err *err)
{
    *out = NULL;
    char *text = NULL;
    size_t len = 0;
    int rc = gf_clf_read_file(path, 16u << 20, &text, &len, err);
    if (rc != 0)
        return rc;
    struct gf_clf_recipe *r = gf_calloc(1, sizeof(*r));
    if (r == NULL) {
        gf_free(text);
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    }
    r->json = cJSON_ParseWithLength(text, len);
    gf_free(text);
    if (r->json == NULL) {
        rc = gf_err_set(err, GF_EINVAL, "not valid JSON");
        goto fail;
    }
    // The directory of the recipe: relative paths in it are relative to it.
    const char *slash = strrchr(path, '/');
    r->dir = slash ? gf_strndup(path, (size_t)(slash - path)) : gf_strdup(".");
    if (r->dir == NULL) {
        rc = gf_err_set(err, GF_ENOMEM, "out of memory");
        goto fail;
    }
    const cJSON *j = r->json;
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(j, "categories");
    if (!cJSON_IsArray(cats) || cJSON_GetArraySize(cats) < 1 ||
        cJSON_GetArraySize(cats) > GF_CLF_MAX_CATEGORIES) {
        rc = gf_err_set(err, GF_EINVAL, "categories: expected an array of 1..%d names",
                        GF_CLF_MAX_CATEGORIES);
        goto fail;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, cats)
    {
        if (!cJSON_IsString(c) || c->valuestring[0] == '\0' || strlen(c->valuestring) > 32 ||
            cat_index(r, c->valuestring) >= 0) {
            rc = gf_err_set(err, GF_EINVAL, "categories[%u]: expected a new name", r->n_cat);
            goto fail;
        }
        r->cats[r->n_cat++] = c->valuestring;
    }
    double seed = 1;
    const cJSON *dd = cJSON_GetObjectItemCaseSensitive(j, "data_dir");
    if (dd != NULL && !cJSON_IsString(dd)) {
        rc = gf_err_set(err, GF_EINVAL, "data_dir: expected a string");
        goto fail;
    }
    r->data_dir = dd ? dd->valuestring : ".";
    if ((rc = get_num(j, "seed", 0, 4294967295.0, &seed, "recipe", err)) != 0)
        goto fail;
    r->seed = (uint64_t)seed;

    // Hashing parameters.
    r->hash = (struct gf_clf_hash_params){.buckets = 1u << 17, .seed = (uint32_t)seed,
                                          .word_min = 1, .word_max = 2, .char_min = 3,
                                          .char_max = 5};
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(j, "hash");
    if (h != NULL) {
        double b = r->hash.buckets, hs = r->hash.seed;
        if ((rc = get_num(h, "buckets", 1, 1 << 26, &b, "hash", err)) ||
            (rc = get_num(h, "seed", 0, 4294967295.0, &hs, "hash", err)) ||
            (rc = get_range(h, "word_ngrams", &r->hash.word_min, &r->hash.word_max,
                            GF_CLF_MAX_WORD_N, err)) ||
            (rc = get_range(h, "char_ngrams", &r->hash.char_min, &r->hash.char_max,
                            GF_CLF_MAX_CHAR_N, err)))
            goto fail;
        r->hash.buckets = (uint32_t)b;
        r->hash.seed = (uint32_t)hs;
    }
    if ((rc = gf_clf_hash_params_check(&r->hash, err)) != 0) {
        gf_err_prefix(err, "hash");
        goto fail;
    }

    // Training parameters.
    double dim = 32, hidden = 0, epochs = 5, batch = 32, lr = 0.5, mpw = 10, maxb = 4096,
           crops = 0;
    uint32_t pooling = GF_CLF_POOL_MEAN;
    bool distinct = false;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "train");
    if (t != NULL &&
        ((rc = get_num(t, "dim", 1, GF_CLF_MAX_DIM, &dim, "train", err)) ||
         (rc = get_num(t, "hidden", 0, GF_CLF_MAX_HIDDEN, &hidden, "train", err)) ||
         (rc = get_num(t, "epochs", 1, 1000, &epochs, "train", err)) ||
         (rc = get_num(t, "batch", 1, 4096, &batch, "train", err)) ||
         (rc = get_num(t, "lr", 1e-6, 100, &lr, "train", err)) ||
         (rc = get_num(t, "max_pos_weight", 1, 1000, &mpw, "train", err)) ||
         (rc = get_num(t, "max_bytes", 0, 1 << 24, &maxb, "train", err)) ||
         (rc = get_num(t, "short_crops", 0, 1, &crops, "train", err)) ||
         (rc = get_pooling(t, &pooling, "train", err)) ||
         (rc = get_distinct(t, &distinct, "train", err))))
        goto fail;
    r->train = (struct gf_clf_train_params){.dim = (uint32_t)dim, .hidden = (uint32_t)hidden,
                                            .pooling = pooling, .distinct = distinct,
                                            .epochs = (uint32_t)epochs, .batch = (uint32_t)batch,
                                            .lr = (float)lr, .max_pos_weight = (float)mpw,
                                            .short_crops = (float)crops, .seed = r->seed};
    r->max_bytes = (size_t)maxb;
    r->val_frac = 0.1;
    r->test_frac = 0.1;
    const cJSON *sp = cJSON_GetObjectItemCaseSensitive(j, "split");
    if (sp != NULL && ((rc = get_num(sp, "val", 0, 0.5, &r->val_frac, "split", err)) ||
                       (rc = get_num(sp, "test", 0, 0.5, &r->test_frac, "split", err))))
        goto fail;
    if ((rc = parse_head(r, cJSON_GetObjectItemCaseSensitive(j, "head"), err)) != 0 ||
        (rc = parse_sources(r, cJSON_GetObjectItemCaseSensitive(j, "sources"), err)) != 0)
        goto fail;
    *out = r;
    return 0;
fail:
    gf_err_prefix(err, path);
    gf_clf_recipe_free(r);
    return rc;
}

void gf_clf_recipe_free(struct gf_clf_recipe *r)
{
    if (r == NULL)
        return;
    cJSON_Delete(r->json);
    gf_free(r->sources);
    gf_free(r->dir);
    gf_free(r);
}

/* ---- rows ------------------------------------------------------------------------------ */

void gf_clf_rows_free(struct gf_clf_rows *rows)
{
    for (size_t i = 0; i < rows->n; i++)
        gf_free(rows->v[i].text);
    gf_free(rows->v);
    gf_free(rows->seen);
    memset(rows, 0, sizeof(*rows));
}

static int rows_push(struct gf_clf_rows *rows, const struct gf_clf_row *row)
{
    if (rows->n == rows->cap) {
        size_t cap = rows->cap ? rows->cap * 2 : 1024;
        struct gf_clf_row *v = gf_realloc(rows->v, cap * sizeof(*v));
        if (v == NULL)
            return GF_ENOMEM;
        rows->v = v;
        rows->cap = cap;
    }
    rows->v[rows->n++] = *row;
    return 0;
}

/* The dedup key of a text: FNV-1a over its ASCII-case-folded, whitespace-collapsed bytes. */
static uint64_t text_key(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    bool space = true;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            space = true;
            continue;
        }
        if (space && h != 0xcbf29ce484222325ULL) {
            h ^= ' ';
            h *= 0x100000001b3ULL;
        }
        space = false;
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* Open-addressing set of dedup keys; returns true when key was already there. */
static int seen_insert(struct gf_clf_rows *rows, uint64_t key, bool *dup)
{
    if (key == 0)
        key = 1;  // 0 marks an empty slot
    if ((rows->n_seen + 1) * 2 > rows->cap_seen) {
        size_t cap = rows->cap_seen ? rows->cap_seen * 2 : 4096;
        uint64_t *t = gf_calloc(cap, sizeof(uint64_t));
        if (t == NULL)
            return GF_ENOMEM;
        for (size_t i = 0; i < rows->cap_seen; i++) {
            uint64_t k = rows->seen[i];
            if (k == 0)
                continue;
            size_t j = (size_t)(mix(k) & (cap - 1));
            while (t[j] != 0)
                j = (j + 1) & (cap - 1);
            t[j] = k;
        }
        gf_free(rows->seen);
        rows->seen = t;
        rows->cap_seen = cap;
    }
    size_t j = (size_t)(mix(key) & (rows->cap_seen - 1));
    while (rows->seen[j] != 0) {
        if (rows->seen[j] == key) {
            *dup = true;
            return 0;
        }
        j = (j + 1) & (rows->cap_seen - 1);
    }
    rows->seen[j] = key;
    rows->n_seen++;
    *dup = false;
    return 0;
}

/* The string form of a field for rule matching: strings as they are, numbers as integers or
 * %g, booleans as true/false; NULL for anything else. */
static const char *field_str(const cJSON *v, char *tmp, size_t n)
{
    if (cJSON_IsString(v))
        return v->valuestring;
    if (cJSON_IsBool(v))
        return cJSON_IsTrue(v) ? "true" : "false";
    if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;  // range first: an out-of-range cast is undefined
        if (d >= -9.2e18 && d <= 9.2e18 && d == (double)(long long)d)
            snprintf(tmp, n, "%lld", (long long)v->valuedouble);
        else
            snprintf(tmp, n, "%g", v->valuedouble);
        return tmp;
    }
    return NULL;
}

static bool rule_matches(const cJSON *cond, const cJSON *obj)
{
    const cJSON *want;
    cJSON_ArrayForEach(want, cond)
    {
        char tmp[64];
        const char *have = field_str(cJSON_GetObjectItemCaseSensitive(obj, want->string), tmp,
                                     sizeof(tmp));
        if (have == NULL)
            return false;
        bool any = false;
        if (cJSON_IsArray(want)) {
            const cJSON *w;
            cJSON_ArrayForEach(w, want)
            {
                char t2[64];
                const char *ws = field_str(w, t2, sizeof(t2));
                if (ws && strcmp(ws, have) == 0)
                    any = true;
            }
        } else {
            char t2[64];
            const char *ws = field_str(want, t2, sizeof(t2));
            any = ws && strcmp(ws, have) == 0;
        }
        if (!any)
            return false;
    }
    return true;
}

/* Applies the first matching rule to labels; returns false when no rule matches or the rule
 * says skip. */
static bool apply_rules(const struct gf_clf_recipe *r, const cJSON *rules, const cJSON *obj,
                        int8_t *labels)
{
    const cJSON *rule;
    cJSON_ArrayForEach(rule, rules)
    {
        const cJSON *cond = cJSON_GetObjectItemCaseSensitive(rule, "if");
        if (cond != NULL && !rule_matches(cond, obj))
            continue;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(rule, "skip")))
            return false;
        memset(labels, -1, GF_CLF_MAX_CATEGORIES);
        const cJSON *neg = cJSON_GetObjectItemCaseSensitive(rule, "neg");
        const cJSON *pos = cJSON_GetObjectItemCaseSensitive(rule, "pos");
        const cJSON *e;
        if (cJSON_IsString(neg)) {  // "*": every category
            for (uint32_t c = 0; c < r->n_cat; c++)
                labels[c] = 0;
        } else {
            cJSON_ArrayForEach(e, neg) labels[cat_index(r, e->valuestring)] = 0;
        }
        cJSON_ArrayForEach(e, pos) labels[cat_index(r, e->valuestring)] = 1;
        return true;
    }
    return false;
}

/* The text of a row: the listed fields joined by a newline (default: "text"). */
static int row_text(const cJSON *fields, const cJSON *obj, struct gf_buf *b)
{
    gf_buf_reset(b);
    if (fields == NULL) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(obj, "text");
        return cJSON_IsString(t) ? gf_buf_puts(b, t->valuestring) : GF_EINVAL;
    }
    const cJSON *f;
    int rc = 0;
    cJSON_ArrayForEach(f, fields)
    {
        const cJSON *t = cJSON_IsString(f) ? cJSON_GetObjectItemCaseSensitive(obj, f->valuestring)
                                           : NULL;
        if (!cJSON_IsString(t) || t->valuestring[0] == '\0')
            continue;
        if (b->len > 0 && (rc = gf_buf_putc(b, '\n')) != 0)
            return rc;
        if ((rc = gf_buf_puts(b, t->valuestring)) != 0)
            return rc;
    }
    return b->len > 0 ? 0 : GF_EINVAL;
}

/* Puts the lines of the source's "head_lines" whose "if" the row matches before the text in tb,
 * each followed by a newline, and their length in *skip: the head trains on the whole text, the
 * model on what follows the lines (tmp is a scratch buffer). The split and deduplication keys
 * are computed before, from the text alone, so lines never move a row to another split. */
static int prefix_head_lines(const cJSON *head_lines, const cJSON *obj, struct gf_buf *tb,
                             struct gf_buf *tmp, size_t *skip)
{
    *skip = 0;
    gf_buf_reset(tmp);
    int rc = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, head_lines)
    {
        if (!rule_matches(cJSON_GetObjectItemCaseSensitive(e, "if"), obj))
            continue;
        const char *line = cJSON_GetObjectItemCaseSensitive(e, "line")->valuestring;
        if ((rc = gf_buf_puts(tmp, line)) != 0 || (rc = gf_buf_putc(tmp, '\n')) != 0)
            return rc;
    }
    if (tmp->len == 0)
        return 0;
    *skip = tmp->len;
    if ((rc = gf_buf_append(tmp, tb->data, tb->len)) != 0)
        return rc;
    gf_buf_reset(tb);
    return gf_buf_append(tb, tmp->data, tmp->len);
}

/* Reads one source's file (data_dir is already resolved) and appends its rows. */
static int load_source(const struct gf_clf_recipe *r, size_t si, const char *data_dir,
                       struct gf_clf_rows *rows, struct gf_err *err)
{
    const struct gf_clf_source *src = &r->sources[si];
    char *path = path_join(src->in_recipe_dir ? r->dir : data_dir, src->file);
    if (path == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    char *buf = NULL;
    size_t len = 0;
    int rc = gf_clf_read_file(path, MAX_FILE, &buf, &len, err);
    if (rc != 0) {
        gf_free(path);
        return rc;
    }
    const cJSON *fields = cJSON_GetObjectItemCaseSensitive(src->spec, "text");
    const cJSON *rules = cJSON_GetObjectItemCaseSensitive(src->spec, "rules");
    const cJSON *group = cJSON_GetObjectItemCaseSensitive(src->spec, "group");
    const cJSON *head_lines = cJSON_GetObjectItemCaseSensitive(src->spec, "head_lines");
    if (group != NULL && !cJSON_IsString(group))
        group = NULL;
    struct gf_buf tb, lb;
    gf_buf_init(&tb, 64u << 20);
    gf_buf_init(&lb, 64u << 20);
    size_t line = 0;
    for (char *p = buf, *end = buf + len; p < end && rc == 0;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        line++;
        char *next = nl ? nl + 1 : end;
        if (n == 0) {
            p = next;
            continue;
        }
        cJSON *obj = cJSON_ParseWithLength(p, n);
        p = next;
        if (obj == NULL) {
            rc = gf_err_set(err, GF_EINVAL, "%s:%zu: not valid JSON", path, line);
            break;
        }
        struct gf_clf_row row = {0};
        if (!apply_rules(r, rules, obj, row.labels) || row_text(fields, obj, &tb) != 0) {
            cJSON_Delete(obj);
            continue;
        }
        // The split follows the group field when the source names one (all rows of a template
        // land in the same split), else the text itself.
        uint64_t key = text_key(tb.data, tb.len), split_key = key;
        const cJSON *g = group ? cJSON_GetObjectItemCaseSensitive(obj, group->valuestring) : NULL;
        if (cJSON_IsString(g))
            split_key = text_key(g->valuestring, strlen(g->valuestring));
        size_t skip = 0;
        if (head_lines != NULL && (rc = prefix_head_lines(head_lines, obj, &tb, &lb, &skip)) != 0) {
            cJSON_Delete(obj);
            gf_err_set(err, rc, "out of memory");
            break;
        }
        cJSON_Delete(obj);
        uint64_t u = mix(split_key ^ mix(r->seed + 0x9e3779b97f4a7c15ULL));
        double x = (double)(u >> 11) / 9007199254740992.0;  // uniform in [0,1)
        if (src->keep < 1.0 &&
            (double)(mix(key ^ r->seed) >> 11) / 9007199254740992.0 >= src->keep)
            continue;
        bool dup;
        if ((rc = seen_insert(rows, key, &dup)) != 0) {
            gf_err_set(err, rc, "out of memory");
            break;
        }
        if (dup)
            continue;
        row.split = x < r->test_frac ? GF_CLF_SPLIT_TEST
                    : x < r->test_frac + r->val_frac ? GF_CLF_SPLIT_VAL
                                                     : GF_CLF_SPLIT_TRAIN;
        row.source = (uint16_t)si;
        row.head_skip = (uint32_t)skip;
        row.benign = src->benign;
        row.len = tb.len;
        row.text = gf_buf_steal(&tb);
        if (row.text == NULL || rows_push(rows, &row) != 0) {
            gf_free(row.text);
            rc = gf_err_set(err, GF_ENOMEM, "out of memory");
        }
    }
    gf_buf_cleanup(&tb);
    gf_buf_cleanup(&lb);
    gf_free(buf);
    gf_free(path);
    return rc;
}

int gf_clf_recipe_rows(const struct gf_clf_recipe *r, const char *data_dir, bool all_sources,
                       struct gf_clf_rows *rows, struct gf_err *err)
{
    memset(rows, 0, sizeof(*rows));
    // The recipe's data_dir is relative to the recipe; one given by the caller is used as is.
    char *dir = data_dir ? gf_strdup(data_dir) : path_join(r->dir, r->data_dir);
    if (dir == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < r->n_sources && rc == 0; i++)
        if (r->sources[i].ship || all_sources)
            rc = load_source(r, i, dir, rows, err);
    gf_free(dir);
    if (rc != 0)
        gf_clf_rows_free(rows);
    return rc;
}
