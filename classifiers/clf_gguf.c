/* clf_gguf.c — the classifier's file: a GGUF file (general.architecture "gardefou-classifier")
 * read by the engine's GGUF reader and written by its writer. Loading trusts nothing: every key,
 * shape, type, count and number is checked, and the tensors are used in place (mapped). The
 * layout is documented in docs/classifiers.md.
 * Invariant: a loaded model never reads outside its tensors, whatever the file holds. */
#include "classifiers/clf_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "engine/gguf.h"

#define K(s) GF_CLF_ARCH "." s

static int bad(struct gf_err *err, const char *what)
{
    return gf_err_set(err, GF_EFORMAT, "%s", what);
}

static int get_u32(const struct gf_gguf *g, const char *key, uint32_t *v, struct gf_err *err)
{
    int rc = gf_gguf_get_u32(g, key, v);
    if (rc == GF_ENOTFOUND)
        return gf_err_set(err, GF_EFORMAT, "missing key %s", key);
    if (rc != 0)
        return gf_err_set(err, GF_EFORMAT, "key %s: not an unsigned 32-bit integer", key);
    return 0;
}

/* Valid category names are short lowercase identifiers: they become policy and API names. */
/* The optional string key `key` ("mean" or "sqrt", absent: the mean) into *pooling. Files
 * before feature version 5 pooled by the mean only and must not carry the key. */
static int get_pooling(const struct gf_gguf *g, const char *key, uint32_t featv,
                       uint32_t *pooling, struct gf_err *err)
{
    const char *s;
    size_t len;
    *pooling = GF_CLF_POOL_MEAN;
    int rc = gf_gguf_get_str(g, key, &s, &len);
    if (rc == GF_ENOTFOUND)
        return 0;
    if (rc != 0)
        return gf_err_set(err, GF_EFORMAT, "key %s: not a string", key);
    if (featv < 5)
        return gf_err_set(err, GF_EFORMAT, "key %s in a file of feature version %u", key, featv);
    if (len == 4 && memcmp(s, "mean", 4) == 0)
        return 0;
    if (len == 4 && memcmp(s, "sqrt", 4) == 0) {
        *pooling = GF_CLF_POOL_SQRT;
        return 0;
    }
    return gf_err_set(err, GF_EFORMAT, "key %s: '%.*s' (expected mean or sqrt)", key,
                      (int)(len > 16 ? 16 : len), s);
}

/* The optional bool key `key` (absent: false) into *distinct: each bucket once per text, which
 * needs at most GF_CLF_DISTINCT_MAX_BUCKETS buckets; version 5 and later only. */
static int get_distinct(const struct gf_gguf *g, const char *key, uint32_t featv,
                        uint32_t buckets, bool *distinct, struct gf_err *err)
{
    *distinct = false;
    int rc = gf_gguf_get_bool(g, key, distinct);
    if (rc == GF_ENOTFOUND)
        return 0;
    if (rc != 0)
        return gf_err_set(err, GF_EFORMAT, "key %s: not a bool", key);
    if (featv < 5)
        return gf_err_set(err, GF_EFORMAT, "key %s in a file of feature version %u", key, featv);
    if (*distinct && buckets > GF_CLF_DISTINCT_MAX_BUCKETS)
        return gf_err_set(err, GF_EFORMAT, "key %s: distinct features need at most %u buckets",
                          key, GF_CLF_DISTINCT_MAX_BUCKETS);
    return 0;
}

static bool valid_name(const char *s, size_t n)
{
    if (n == 0 || n > 32)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

/* Finds tensor name with exactly the given type and dims (ne[0] first), or fails. */
static const void *tensor(const struct gf_gguf *g, const char *name, int type, int n_dims,
                          uint64_t ne0, uint64_t ne1, struct gf_err *err)
{
    const struct gf_gguf_tensor *t = gf_gguf_find_tensor(g, name);
    if (t == NULL) {
        gf_err_set(err, GF_EFORMAT, "missing tensor %s", name);
        return NULL;
    }
    if (t->type != type) {
        gf_err_set(err, GF_EFORMAT, "tensor %s: type %s, expected %s", name,
                   gf_tensor_type_name(t->type), gf_tensor_type_name(type));
        return NULL;
    }
    uint64_t want[4] = {ne0, n_dims > 1 ? ne1 : 1, 1, 1};
    if (t->n_dims != n_dims || t->ne[0] != want[0] || t->ne[1] != want[1] || t->ne[2] != 1 ||
        t->ne[3] != 1) {
        gf_err_set(err, GF_EFORMAT,
                   "tensor %s: shape [%llu,%llu], expected [%llu,%llu]", name,
                   (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                   (unsigned long long)want[0], (unsigned long long)want[1]);
        return NULL;
    }
    if (type == GF_TYPE_F32 && ((uintptr_t)t->data % sizeof(float)) != 0) {
        gf_err_set(err, GF_EFORMAT, "tensor %s: misaligned data", name);
        return NULL;
    }
    if (type == GF_TYPE_F32) {
        const float *f = t->data;
        for (uint64_t i = 0; i < ne0 * want[1]; i++)
            if (!isfinite(f[i])) {
                gf_err_set(err, GF_EFORMAT, "tensor %s: element %llu is not finite", name,
                           (unsigned long long)i);
                return NULL;
            }
    }
    return t->data;
}

static int load_calib(const struct gf_gguf *g, const char *cat, struct gf_clf_calib *c,
                      struct gf_err *err)
{
    char kx[128], ky[128];
    snprintf(kx, sizeof(kx), K("calibration.%s.x"), cat);
    snprintf(ky, sizeof(ky), K("calibration.%s.y"), cat);
    struct gf_gguf_arr ax, ay;
    int rx = gf_gguf_get_arr(g, kx, &ax), ry = gf_gguf_get_arr(g, ky, &ay);
    c->n = 0;
    if (rx == GF_ENOTFOUND && ry == GF_ENOTFOUND)
        return 0;  // no table: the identity
    if (rx != 0 || ry != 0)
        return gf_err_set(err, GF_EFORMAT, "calibration of %s: need both %s and %s arrays", cat,
                          kx, ky);
    if (ax.elem_type != GF_GGUF_TYPE_FLOAT32 || ay.elem_type != GF_GGUF_TYPE_FLOAT32 ||
        ax.n != ay.n || ax.n > GF_CLF_CALIB_MAX)
        return gf_err_set(err, GF_EFORMAT,
                          "calibration of %s: need two float32 arrays of equal length <= %d",
                          cat, GF_CLF_CALIB_MAX);
    for (uint64_t i = 0; i < ax.n; i++) {
        double x, y;
        if (gf_gguf_arr_f64(&ax, i, &x) != 0 || gf_gguf_arr_f64(&ay, i, &y) != 0)
            return gf_err_set(err, GF_EFORMAT, "calibration of %s: unreadable point", cat);
        c->x[i] = (float)x;
        c->y[i] = (float)y;
    }
    c->n = (uint32_t)ax.n;
    int rc = gf_clf_calib_check(c, err);
    if (rc != 0)
        gf_err_prefix(err, cat);
    return rc;
}

/* The optional head (feature version 4): keys head.categories, head.embedding_length and
 * head.hidden_length, tensors clf.head.*, all of them or none; head.pooling and
 * head.distinct_features optional (version 5). */
static int load_head(struct gf_gguf *g, struct gf_clf_model *m, uint32_t featv,
                     struct gf_err *err)
{
    struct gf_gguf_arr cats;
    int rc = gf_gguf_get_arr(g, K("head.categories"), &cats);
    if (rc == GF_ENOTFOUND) {
        if (gf_gguf_find_tensor(g, "clf.head.embd") != NULL)
            return bad(err, "tensor clf.head.embd present but no key " K("head.categories"));
        return 0;
    }
    if (rc != 0 || cats.elem_type != GF_GGUF_TYPE_STRING)
        return bad(err, "key " K("head.categories") ": not a string array");
    if (cats.n == 0 || cats.n > m->n_cat)
        return gf_err_set(err, GF_EFORMAT, K("head.categories") ": %llu entries (need 1..%u)",
                          (unsigned long long)cats.n, m->n_cat);
    const char *names[GF_CLF_MAX_CATEGORIES];
    for (uint32_t i = 0; i < (uint32_t)cats.n; i++) {
        const char *s;
        size_t len;
        int c = -1;
        if (gf_gguf_arr_str(&cats, i, &s, &len) == 0)
            for (uint32_t k = 0; k < m->n_cat && c < 0; k++)
                if (strlen(m->cat_names[k]) == len && memcmp(m->cat_names[k], s, len) == 0)
                    c = (int)k;
        if (c < 0)
            return gf_err_set(err, GF_EFORMAT,
                              K("head.categories") "[%u]: not one of the model's categories", i);
        for (uint32_t j = 0; j < i; j++)
            if (names[j] == m->cat_names[c])
                return gf_err_set(err, GF_EFORMAT, K("head.categories") ": '%s' twice",
                                  names[j]);
        names[i] = m->cat_names[c];
    }
    uint32_t dim, hidden, pooling;
    bool distinct;
    if ((rc = get_u32(g, K("head.embedding_length"), &dim, err)) ||
        (rc = get_u32(g, K("head.hidden_length"), &hidden, err)) ||
        (rc = get_pooling(g, K("head.pooling"), featv, &pooling, err)) ||
        (rc = get_distinct(g, K("head.distinct_features"), featv, m->hash.buckets, &distinct,
                           err)))
        return rc;
    if (dim == 0 || dim > GF_CLF_MAX_DIM - m->dim || hidden > GF_CLF_MAX_HIDDEN)
        return gf_err_set(err, GF_EFORMAT,
                          "head: embedding_length %u / hidden_length %u out of range", dim,
                          hidden);
    struct gf_clf_model *h = gf_calloc(1, sizeof(*h));
    if (h == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    atomic_init(&h->refs, 1);
    h->id = gf_clf_model_new_id();
    h->n_cat = (uint32_t)cats.n;
    h->hash = m->hash;
    h->dim = h->bag_dim = dim;
    h->hidden = h->max_hidden = hidden;
    h->pooling = pooling;
    h->distinct = distinct;
    h->norm_version = m->norm_version;
    h->bag = m->bag;
    h->dense = m->dense;
    h->cat_names = gf_calloc(h->n_cat, sizeof(char *));
    h->calib = gf_calloc(h->n_cat, sizeof(*h->calib));
    if (h->cat_names == NULL || h->calib == NULL) {
        gf_clf_model_unref(h);
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < h->n_cat; i++)
        if ((h->cat_names[i] = gf_strdup(names[i])) == NULL) {
            gf_clf_model_unref(h);
            return gf_err_set(err, GF_ENOMEM, "out of memory");
        }
    uint32_t in = hidden ? hidden : dim;
    if (!(h->emb_q = tensor(g, "clf.head.embd", GF_TYPE_I8, 2, dim, m->hash.buckets, err)) ||
        !(h->emb_scale = tensor(g, "clf.head.embd_scale", GF_TYPE_F32, 1, dim, 1, err)) ||
        !(h->w2 = tensor(g, "clf.head.output.weight", GF_TYPE_F32, 2, h->n_cat, in, err)) ||
        !(h->b2 = tensor(g, "clf.head.output.bias", GF_TYPE_F32, 1, h->n_cat, 1, err)) ||
        (hidden && (!(h->w1 = tensor(g, "clf.head.hidden.weight", GF_TYPE_F32, 2, hidden, dim,
                                     err)) ||
                    !(h->b1 = tensor(g, "clf.head.hidden.bias", GF_TYPE_F32, 1, hidden, 1,
                                     err))))) {
        gf_clf_model_unref(h);
        return GF_EFORMAT;
    }
    if (!hidden && gf_gguf_find_tensor(g, "clf.head.hidden.weight") != NULL) {
        gf_clf_model_unref(h);
        return bad(err, "tensor clf.head.hidden.weight present but head.hidden_length is 0");
    }
    // The checks above leave nothing for attaching to refuse.
    if ((rc = gf_clf_model_attach_head(m, h, err)) != 0)
        return gf_err_set(err, GF_EFORMAT, "head: cannot attach it");
    return 0;
}

static int from_gguf(struct gf_gguf *g, struct gf_clf_model **out, struct gf_err *err)
{
    struct gf_clf_model *m = NULL;
    const char *s;
    size_t len;
    int rc = gf_gguf_get_str(g, "general.architecture", &s, &len);
    if (rc != 0)
        return bad(err, "missing string general.architecture");
    if (len != strlen(GF_CLF_ARCH) || memcmp(s, GF_CLF_ARCH, len) != 0)
        return gf_err_set(err, GF_EFORMAT, "general.architecture is '%.*s', expected '%s'",
                          (int)(len > 64 ? 64 : len), s, GF_CLF_ARCH);

    struct gf_gguf_arr cats;
    rc = gf_gguf_get_arr(g, K("categories"), &cats);
    if (rc != 0 || cats.elem_type != GF_GGUF_TYPE_STRING)
        return bad(err, "missing string array " K("categories"));
    if (cats.n == 0 || cats.n > GF_CLF_MAX_CATEGORIES)
        return gf_err_set(err, GF_EFORMAT, K("categories") ": %llu entries (need 1..%d)",
                          (unsigned long long)cats.n, GF_CLF_MAX_CATEGORIES);
    uint32_t n_cat = (uint32_t)cats.n;
    char names[GF_CLF_MAX_CATEGORIES][33];
    const char *name_ptrs[GF_CLF_MAX_CATEGORIES];
    for (uint32_t c = 0; c < n_cat; c++) {
        if (gf_gguf_arr_str(&cats, c, &s, &len) != 0 || !valid_name(s, len))
            return gf_err_set(err, GF_EFORMAT,
                              K("categories") "[%u]: not a name of 1-32 characters [a-z0-9_-]",
                              c);
        memcpy(names[c], s, len);
        names[c][len] = '\0';
        name_ptrs[c] = names[c];
        for (uint32_t d = 0; d < c; d++)
            if (strcmp(names[d], names[c]) == 0)
                return gf_err_set(err, GF_EFORMAT, K("categories") ": '%s' twice", names[c]);
    }

    struct gf_clf_hash_params hp;
    uint32_t dim, hidden, normv;
    if ((rc = get_u32(g, K("hash.buckets"), &hp.buckets, err)) ||
        (rc = get_u32(g, K("hash.seed"), &hp.seed, err)) ||
        (rc = get_u32(g, K("hash.word_ngram_min"), &hp.word_min, err)) ||
        (rc = get_u32(g, K("hash.word_ngram_max"), &hp.word_max, err)) ||
        (rc = get_u32(g, K("hash.char_ngram_min"), &hp.char_min, err)) ||
        (rc = get_u32(g, K("hash.char_ngram_max"), &hp.char_max, err)) ||
        (rc = get_u32(g, K("embedding_length"), &dim, err)) ||
        (rc = get_u32(g, K("hidden_length"), &hidden, err)) ||
        (rc = get_u32(g, K("normalization_version"), &normv, err)))
        return rc;
    if ((rc = gf_clf_hash_params_check(&hp, err)) != 0) {
        gf_err_prefix(err, "hash parameters");
        return GF_EFORMAT;
    }
    // Version 1 files have no feature_version key: their features are hashed another way.
    uint32_t featv = 1;
    rc = gf_gguf_get_u32(g, K("feature_version"), &featv);
    if (rc != 0 && rc != GF_ENOTFOUND)
        return bad(err, "key " K("feature_version") ": not an unsigned 32-bit integer");
    // Version 3 files have the features of version 5, no head and the mean; version 4 files
    // have the features of version 5 and the mean.
    if (featv != GF_CLF_FEATURE_VERSION && featv != 3 && featv != 4)
        return gf_err_set(err, GF_EFORMAT,
                          "model uses feature version %u, this build computes version %u "
                          "(retrain it)",
                          featv, GF_CLF_FEATURE_VERSION);
    if (normv != gf_clf_norm_version())
        return gf_err_set(err, GF_EFORMAT,
                          "model was trained with normalization version %u, this build has %u "
                          "(retrain it)",
                          normv, gf_clf_norm_version());
    if (dim == 0 || dim > GF_CLF_MAX_DIM || hidden > GF_CLF_MAX_HIDDEN)
        return gf_err_set(err, GF_EFORMAT, "embedding_length %u / hidden_length %u out of range",
                          dim, hidden);
    uint32_t pooling;
    bool distinct;
    if ((rc = get_pooling(g, K("pooling"), featv, &pooling, err)) != 0 ||
        (rc = get_distinct(g, K("distinct_features"), featv, hp.buckets, &distinct, err)) != 0)
        return rc;

    // Build the model around the mapped tensors (the owned block stays empty).
    m = gf_calloc(1, sizeof(*m));
    if (m == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    atomic_init(&m->refs, 1);
    m->id = gf_clf_model_new_id();
    m->n_cat = n_cat;
    m->hash = hp;
    m->dim = m->bag_dim = dim;
    m->hidden = m->max_hidden = hidden;
    m->pooling = pooling;
    m->distinct = distinct;
    m->norm_version = normv;
    m->bag = gf_clf_bag_kernel_get(NULL);
    m->dense = gf_clf_dense_kernel_get(NULL);
    m->cat_names = gf_calloc(n_cat, sizeof(char *));
    m->calib = gf_calloc(n_cat, sizeof(*m->calib));
    if (m->cat_names == NULL || m->calib == NULL)
        goto oom;
    for (uint32_t c = 0; c < n_cat; c++)
        if ((m->cat_names[c] = gf_strdup(name_ptrs[c])) == NULL)
            goto oom;

    uint32_t in = hidden ? hidden : dim;
    if (!(m->emb_q = tensor(g, "clf.embd", GF_TYPE_I8, 2, dim, hp.buckets, err)) ||
        !(m->emb_scale = tensor(g, "clf.embd_scale", GF_TYPE_F32, 1, dim, 1, err)) ||
        !(m->w2 = tensor(g, "clf.output.weight", GF_TYPE_F32, 2, n_cat, in, err)) ||
        !(m->b2 = tensor(g, "clf.output.bias", GF_TYPE_F32, 1, n_cat, 1, err)))
        goto fail;
    if (hidden) {
        if (!(m->w1 = tensor(g, "clf.hidden.weight", GF_TYPE_F32, 2, hidden, dim, err)) ||
            !(m->b1 = tensor(g, "clf.hidden.bias", GF_TYPE_F32, 1, hidden, 1, err)))
            goto fail;
    } else if (gf_gguf_find_tensor(g, "clf.hidden.weight") != NULL) {
        gf_err_set(err, GF_EFORMAT, "tensor clf.hidden.weight present but hidden_length is 0");
        goto fail;
    }
    for (uint32_t c = 0; c < n_cat; c++)
        if ((rc = load_calib(g, m->cat_names[c], &m->calib[c], err)) != 0)
            goto fail;
    if (featv == 3 && gf_gguf_get_arr(g, K("head.categories"), &cats) != GF_ENOTFOUND) {
        gf_err_set(err, GF_EFORMAT, "key " K("head.categories") " in a file of feature version 3");
        goto fail;
    }
    if ((rc = load_head(g, m, featv, err)) != 0)
        goto fail;
    m->file = g;
    *out = m;
    return 0;
oom:
    gf_err_set(err, GF_ENOMEM, "out of memory");
fail:
    gf_clf_model_unref(m);  // m->file is NULL: the caller still owns g
    return err->code ? err->code : GF_EFORMAT;
}

int gf_clf_model_load(const char *path, struct gf_clf_model **out, struct gf_err *err)
{
    struct gf_err local = {0};
    if (err == NULL)
        err = &local;  // from_gguf reads the code back from err
    *out = NULL;
    struct gf_gguf *g = NULL;
    int rc = gf_gguf_open(path, &g, err);
    if (rc != 0)
        return rc;
    if ((rc = from_gguf(g, out, err)) != 0) {
        gf_err_prefix(err, path);
        gf_gguf_close(g);
    }
    return rc;
}

int gf_clf_model_load_mem(const void *data, size_t len, struct gf_clf_model **out,
                          struct gf_err *err)
{
    struct gf_err local = {0};
    if (err == NULL)
        err = &local;  // from_gguf reads the code back from err
    *out = NULL;
    struct gf_gguf *g = NULL;
    int rc = gf_gguf_open_mem(data, len, &g, err);
    if (rc != 0)
        return rc;
    if ((rc = from_gguf(g, out, err)) != 0) {
        gf_err_prefix(err, "(memory)");
        gf_gguf_close(g);
    }
    return rc;
}

static const char *pooling_name(uint32_t pooling)
{
    return pooling == GF_CLF_POOL_SQRT ? "sqrt" : "mean";
}

static int fill_writer(const struct gf_clf_model *m, struct gf_gguf_writer *w)
{
    int rc;
    uint32_t in = m->hidden ? m->hidden : m->dim;
    uint64_t ne_e[2] = {m->dim, m->hash.buckets}, ne_s[1] = {m->dim};
    uint64_t ne_w2[2] = {m->n_cat, in}, ne_b2[1] = {m->n_cat};
    uint64_t ne_w1[2] = {m->hidden, m->dim}, ne_b1[1] = {m->hidden};
    if ((rc = gf_gguf_writer_add_str(w, "general.architecture", GF_CLF_ARCH,
                                     strlen(GF_CLF_ARCH))) ||
        (rc = gf_gguf_writer_add_str(w, "general.name", "gardefou moderation", 19)) ||
        (rc = gf_gguf_writer_add_arr_str(w, K("categories"), (const char *const *)m->cat_names,
                                         NULL, m->n_cat)) ||
        (rc = gf_gguf_writer_add_u32(w, K("hash.buckets"), m->hash.buckets)) ||
        (rc = gf_gguf_writer_add_u32(w, K("hash.seed"), m->hash.seed)) ||
        (rc = gf_gguf_writer_add_u32(w, K("hash.word_ngram_min"), m->hash.word_min)) ||
        (rc = gf_gguf_writer_add_u32(w, K("hash.word_ngram_max"), m->hash.word_max)) ||
        (rc = gf_gguf_writer_add_u32(w, K("hash.char_ngram_min"), m->hash.char_min)) ||
        (rc = gf_gguf_writer_add_u32(w, K("hash.char_ngram_max"), m->hash.char_max)) ||
        (rc = gf_gguf_writer_add_u32(w, K("embedding_length"), m->dim)) ||
        (rc = gf_gguf_writer_add_u32(w, K("hidden_length"), m->hidden)) ||
        (rc = gf_gguf_writer_add_u32(w, K("normalization_version"), gf_clf_norm_version())) ||
        (rc = gf_gguf_writer_add_u32(w, K("feature_version"), GF_CLF_FEATURE_VERSION)) ||
        (rc = gf_gguf_writer_add_str(w, K("pooling"), pooling_name(m->pooling), 4)) ||
        (rc = gf_gguf_writer_add_bool(w, K("distinct_features"), m->distinct)))
        return rc;
    const struct gf_clf_model *h = m->head;
    if (h != NULL &&
        ((rc = gf_gguf_writer_add_arr_str(w, K("head.categories"),
                                          (const char *const *)h->cat_names, NULL, h->n_cat)) ||
         (rc = gf_gguf_writer_add_u32(w, K("head.embedding_length"), h->dim)) ||
         (rc = gf_gguf_writer_add_u32(w, K("head.hidden_length"), h->hidden)) ||
         (rc = gf_gguf_writer_add_str(w, K("head.pooling"), pooling_name(h->pooling), 4)) ||
         (rc = gf_gguf_writer_add_bool(w, K("head.distinct_features"), h->distinct))))
        return rc;
    for (uint32_t c = 0; c < m->n_cat; c++) {
        const struct gf_clf_calib *cal = &m->calib[c];
        if (cal->n == 0)
            continue;
        char kx[128], ky[128];
        snprintf(kx, sizeof(kx), K("calibration.%s.x"), m->cat_names[c]);
        snprintf(ky, sizeof(ky), K("calibration.%s.y"), m->cat_names[c]);
        if ((rc = gf_gguf_writer_add_arr(w, kx, GF_GGUF_TYPE_FLOAT32, cal->x, cal->n)) ||
            (rc = gf_gguf_writer_add_arr(w, ky, GF_GGUF_TYPE_FLOAT32, cal->y, cal->n)))
            return rc;
    }
    if ((rc = gf_gguf_writer_add_tensor(w, "clf.embd", GF_TYPE_I8, 2, ne_e, m->emb_q,
                                        (uint64_t)m->dim * m->hash.buckets, false)) ||
        (rc = gf_gguf_writer_add_tensor(w, "clf.embd_scale", GF_TYPE_F32, 1, ne_s,
                                        m->emb_scale, 4ull * m->dim, false)) ||
        (rc = gf_gguf_writer_add_tensor(w, "clf.output.weight", GF_TYPE_F32, 2, ne_w2, m->w2,
                                        4ull * in * m->n_cat, false)) ||
        (rc = gf_gguf_writer_add_tensor(w, "clf.output.bias", GF_TYPE_F32, 1, ne_b2, m->b2,
                                        4ull * m->n_cat, false)))
        return rc;
    if (m->hidden &&
        ((rc = gf_gguf_writer_add_tensor(w, "clf.hidden.weight", GF_TYPE_F32, 2, ne_w1, m->w1,
                                         4ull * m->dim * m->hidden, false)) ||
         (rc = gf_gguf_writer_add_tensor(w, "clf.hidden.bias", GF_TYPE_F32, 1, ne_b1, m->b1,
                                         4ull * m->hidden, false))))
        return rc;
    if (h == NULL)
        return 0;
    uint32_t hin = h->hidden ? h->hidden : h->dim;
    uint64_t he[2] = {h->dim, h->hash.buckets}, hs[1] = {h->dim};
    uint64_t hw2[2] = {h->n_cat, hin}, hb2[1] = {h->n_cat};
    uint64_t hw1[2] = {h->hidden, h->dim}, hb1[1] = {h->hidden};
    if ((rc = gf_gguf_writer_add_tensor(w, "clf.head.embd", GF_TYPE_I8, 2, he, h->emb_q,
                                        (uint64_t)h->dim * h->hash.buckets, false)) ||
        (rc = gf_gguf_writer_add_tensor(w, "clf.head.embd_scale", GF_TYPE_F32, 1, hs,
                                        h->emb_scale, 4ull * h->dim, false)) ||
        (rc = gf_gguf_writer_add_tensor(w, "clf.head.output.weight", GF_TYPE_F32, 2, hw2, h->w2,
                                        4ull * hin * h->n_cat, false)) ||
        (rc = gf_gguf_writer_add_tensor(w, "clf.head.output.bias", GF_TYPE_F32, 1, hb2, h->b2,
                                        4ull * h->n_cat, false)))
        return rc;
    if (h->hidden &&
        ((rc = gf_gguf_writer_add_tensor(w, "clf.head.hidden.weight", GF_TYPE_F32, 2, hw1,
                                         h->w1, 4ull * h->dim * h->hidden, false)) ||
         (rc = gf_gguf_writer_add_tensor(w, "clf.head.hidden.bias", GF_TYPE_F32, 1, hb1, h->b1,
                                         4ull * h->hidden, false))))
        return rc;
    return 0;
}

int gf_clf_model_save(const struct gf_clf_model *m, const char *path, struct gf_err *err)
{
    if (m->parent != NULL)  // its calibration tables are the head's for the head's categories
        return gf_err_set(err, GF_EINVAL, "%s: a view without the head is no model file",
                          path);
    struct gf_gguf_writer *w = gf_gguf_writer_new();
    if (w == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    int rc = fill_writer(m, w);
    if (rc != 0)
        gf_err_set(err, rc, "%s: cannot build the model file (%s)", path, gf_strerror(rc));
    else
        rc = gf_gguf_writer_write(w, path, err);
    gf_gguf_writer_free(w);
    return rc;
}

int gf_clf_model_save_mem(const struct gf_clf_model *m, void **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    if (m->parent != NULL)
        return GF_EINVAL;
    struct gf_gguf_writer *w = gf_gguf_writer_new();
    if (w == NULL)
        return GF_ENOMEM;
    int rc = fill_writer(m, w);
    if (rc == 0)
        rc = gf_gguf_writer_write_mem(w, out, len);
    gf_gguf_writer_free(w);
    return rc;
}
