/* gguf_write.c — the GGUF writer: collects metadata and tensors, then writes a version 3 file
 * in one pass (header, tensor infos, aligned data). Invariant: what it writes is accepted by
 * gf_gguf_open (every check of the reader holds by construction), and a file on disk is either
 * the previous one or the complete new one (temporary file, fsync, rename). */
#include "engine/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/gguf_int.h"

struct wtensor {
    char *name;
    int type;
    int n_dims;
    uint64_t ne[4];
    const void *data;  // borrowed, or owned (== owned)
    void *owned;
    uint64_t nbytes;
};

struct gf_gguf_writer {
    struct gf_buf kvs;        // the serialized key/values, in the order added
    char **keys;              // for duplicate checks
    size_t n_kv, cap_kv;
    struct wtensor *tensors;
    size_t n_tensors, cap_tensors;
    uint32_t alignment;
};

struct gf_gguf_writer *gf_gguf_writer_new(void)
{
    struct gf_gguf_writer *w = gf_calloc(1, sizeof(*w));
    if (w == NULL)
        return NULL;
    gf_buf_init(&w->kvs, SIZE_MAX / 4);
    w->alignment = GF_GGUF_DEFAULT_ALIGNMENT;
    return w;
}

void gf_gguf_writer_free(struct gf_gguf_writer *w)
{
    if (w == NULL)
        return;
    gf_buf_cleanup(&w->kvs);
    for (size_t i = 0; i < w->n_kv; i++)
        gf_free(w->keys[i]);
    gf_free(w->keys);
    for (size_t i = 0; i < w->n_tensors; i++) {
        gf_free(w->tensors[i].name);
        gf_free(w->tensors[i].owned);
    }
    gf_free(w->tensors);
    gf_free(w);
}

static int put_u32(struct gf_buf *b, uint32_t v)
{
    return gf_buf_append(b, &v, 4);
}

static int put_u64(struct gf_buf *b, uint64_t v)
{
    return gf_buf_append(b, &v, 8);
}

static int put_str(struct gf_buf *b, const char *s, size_t n)
{
    int rc = put_u64(b, n);
    return rc ? rc : gf_buf_append(b, s, n);
}

/* Starts key/value `key` of type t: checks the key and appends it and its type. On failure
 * the caller must call kv_abort(w, mark). */
static int kv_begin(struct gf_gguf_writer *w, const char *key, int t)
{
    size_t klen = key ? strlen(key) : 0;
    if (klen == 0 || klen > GF_GGUF_MAX_KEY || w->n_kv >= GF_GGUF_MAX_KV)
        return GF_EINVAL;
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0)
            return GF_EINVAL;
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
        char **k = gf_realloc(w->keys, cap * sizeof(*k));
        if (k == NULL)
            return GF_ENOMEM;
        w->keys = k;
        w->cap_kv = cap;
    }
    int rc = put_str(&w->kvs, key, klen);
    if (rc == 0)
        rc = put_u32(&w->kvs, (uint32_t)t);
    return rc;
}

/* Finishes a key/value whose bytes were appended since mark, or rolls it back when rc != 0. */
static int kv_end(struct gf_gguf_writer *w, const char *key, size_t mark, int rc)
{
    if (rc == 0) {
        char *k = gf_strdup(key);
        if (k == NULL) {
            rc = GF_ENOMEM;
        } else {
            w->keys[w->n_kv++] = k;
            return 0;
        }
    }
    w->kvs.len = mark;  // drop the partial entry
    if (w->kvs.data != NULL)
        w->kvs.data[mark] = '\0';
    return rc;
}

static int add_scalar(struct gf_gguf_writer *w, const char *key, int t, const void *v, size_t n)
{
    size_t mark = w->kvs.len;
    bool is_align = key != NULL && strcmp(key, "general.alignment") == 0;
    uint32_t a = 0;
    if (is_align) {
        if (t != GF_GGUF_TYPE_UINT32 || n != sizeof(a))
            return GF_EINVAL;
        memcpy(&a, v, sizeof(a));
        if (a == 0 || (a & (a - 1)) != 0 || a > GF_GGUF_MAX_ALIGNMENT)
            return GF_EINVAL;
    }
    int rc = kv_begin(w, key, t);
    if (rc == 0)
        rc = gf_buf_append(&w->kvs, v, n);
    rc = kv_end(w, key, mark, rc);
    if (rc == 0 && is_align)
        w->alignment = a;
    return rc;
}

int gf_gguf_writer_add_u8(struct gf_gguf_writer *w, const char *key, uint8_t v)
{
    return add_scalar(w, key, GF_GGUF_TYPE_UINT8, &v, 1);
}

int gf_gguf_writer_add_i8(struct gf_gguf_writer *w, const char *key, int8_t v)
{
    return add_scalar(w, key, GF_GGUF_TYPE_INT8, &v, 1);
}

int gf_gguf_writer_add_u16(struct gf_gguf_writer *w, const char *key, uint16_t v)
{
    return add_scalar(w, key, GF_GGUF_TYPE_UINT16, &v, 2);
}

int gf_gguf_writer_add_i16(struct gf_gguf_writer *w, const char *key, int16_t v)
{
    return add_scalar(w, key, GF_GGUF_TYPE_INT16, &v, 2);
}

int gf_gguf_writer_add_u32(struct gf_gguf_writer *w, const char *key, uint32_t v)
{
    return add_scalar(w, key, GF_GGUF_TYPE_UINT32, &v, 4);
}

int gf_gguf_writer_add_i32(struct gf_gguf_writer *w, const char *key, int32_t v)
{
    return add_scalar(w, key, GF_GGUF_TYPE_INT32, &v, 4);
}

int gf_gguf_writer_add_u64(struct gf_gguf_writer *w, const char *key, uint64_t v)
{
    return add_scalar(w, key, GF_GGUF_TYPE_UINT64, &v, 8);
}

int gf_gguf_writer_add_i64(struct gf_gguf_writer *w, const char *key, int64_t v)
{
    return add_scalar(w, key, GF_GGUF_TYPE_INT64, &v, 8);
}

int gf_gguf_writer_add_f32(struct gf_gguf_writer *w, const char *key, float v)
{
    return add_scalar(w, key, GF_GGUF_TYPE_FLOAT32, &v, 4);
}

int gf_gguf_writer_add_f64(struct gf_gguf_writer *w, const char *key, double v)
{
    return add_scalar(w, key, GF_GGUF_TYPE_FLOAT64, &v, 8);
}

int gf_gguf_writer_add_bool(struct gf_gguf_writer *w, const char *key, bool v)
{
    uint8_t b = v ? 1 : 0;
    return add_scalar(w, key, GF_GGUF_TYPE_BOOL, &b, 1);
}

int gf_gguf_writer_add_str(struct gf_gguf_writer *w, const char *key, const char *s, size_t len)
{
    if (len > GF_GGUF_MAX_STRING || (s == NULL && len > 0))
        return GF_EINVAL;
    size_t mark = w->kvs.len;
    int rc = kv_begin(w, key, GF_GGUF_TYPE_STRING);
    if (rc == 0)
        rc = put_str(&w->kvs, s, len);
    return kv_end(w, key, mark, rc);
}

int gf_gguf_writer_add_arr(struct gf_gguf_writer *w, const char *key, int elem_type,
                           const void *data, uint64_t n)
{
    size_t sz = gf_gguf_scalar_size(elem_type);
    if (sz == 0 || n > SIZE_MAX / 4 / sz || (data == NULL && n > 0))
        return GF_EINVAL;
    if (elem_type == GF_GGUF_TYPE_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (((const uint8_t *)data)[i] > 1)
                return GF_EINVAL;
    size_t mark = w->kvs.len;
    int rc = kv_begin(w, key, GF_GGUF_TYPE_ARRAY);
    if (rc == 0)
        rc = put_u32(&w->kvs, (uint32_t)elem_type);
    if (rc == 0)
        rc = put_u64(&w->kvs, n);
    if (rc == 0 && n > 0)
        rc = gf_buf_append(&w->kvs, data, (size_t)n * sz);
    return kv_end(w, key, mark, rc);
}

int gf_gguf_writer_add_arr_str(struct gf_gguf_writer *w, const char *key,
                               const char *const *strs, const size_t *lens, uint64_t n)
{
    if (strs == NULL && n > 0)
        return GF_EINVAL;
    for (uint64_t i = 0; i < n; i++) {
        size_t len = lens ? lens[i] : (strs[i] ? strlen(strs[i]) : 0);
        if (len > GF_GGUF_MAX_STRING || (strs[i] == NULL && len > 0))
            return GF_EINVAL;
    }
    size_t mark = w->kvs.len;
    int rc = kv_begin(w, key, GF_GGUF_TYPE_ARRAY);
    if (rc == 0)
        rc = put_u32(&w->kvs, GF_GGUF_TYPE_STRING);
    if (rc == 0)
        rc = put_u64(&w->kvs, n);
    for (uint64_t i = 0; rc == 0 && i < n; i++)
        rc = put_str(&w->kvs, strs[i], lens ? lens[i] : (strs[i] ? strlen(strs[i]) : 0));
    return kv_end(w, key, mark, rc);
}

int gf_gguf_writer_add_tensor(struct gf_gguf_writer *w, const char *name, int type, int n_dims,
                              const uint64_t *ne, const void *data, uint64_t nbytes, bool copy)
{
    size_t nlen = name ? strlen(name) : 0;
    if (nlen == 0 || nlen > GF_GGUF_MAX_NAME || n_dims < 1 || n_dims > GF_GGUF_MAX_DIMS ||
        !gf_tensor_type_valid(type) || w->n_tensors >= GF_GGUF_MAX_TENSORS ||
        (data == NULL && nbytes > 0))
        return GF_EINVAL;
    uint64_t elems = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] == 0 || ne[d] > (uint64_t)INT64_MAX / elems)
            return GF_EINVAL;
        elems *= ne[d];
    }
    uint64_t row = gf_tensor_row_bytes(type, ne[0]);
    if (row == 0 || elems / ne[0] > UINT64_MAX / row || row * (elems / ne[0]) != nbytes)
        return GF_EINVAL;
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return GF_EINVAL;
    if (w->n_tensors == w->cap_tensors) {
        size_t cap = w->cap_tensors ? 2 * w->cap_tensors : 16;
        struct wtensor *t = gf_realloc(w->tensors, cap * sizeof(*t));
        if (t == NULL)
            return GF_ENOMEM;
        w->tensors = t;
        w->cap_tensors = cap;
    }
    struct wtensor t = {.type = type, .n_dims = n_dims, .nbytes = nbytes, .data = data};
    for (int d = 0; d < 4; d++)
        t.ne[d] = d < n_dims ? ne[d] : 1;
    t.name = gf_strdup(name);
    if (t.name == NULL)
        return GF_ENOMEM;
    if (copy && nbytes > 0) {
        if (nbytes > SIZE_MAX || (t.owned = gf_malloc((size_t)nbytes)) == NULL) {
            gf_free(t.name);
            return GF_ENOMEM;
        }
        memcpy(t.owned, data, (size_t)nbytes);
        t.data = t.owned;
    }
    w->tensors[w->n_tensors++] = t;
    return 0;
}

/* ---- serialization ---------------------------------------------------------------------- */

/* Where bytes go: a FILE or a memory buffer. The first failure sticks. */
struct sink {
    FILE *f;
    struct gf_buf *b;
    int rc;
    uint64_t pos;
};

static void emit(struct sink *s, const void *p, uint64_t n)
{
    if (s->rc != 0 || n == 0)
        return;
    if (s->f != NULL) {
        if (fwrite(p, 1, (size_t)n, s->f) != n)
            s->rc = GF_EIO;
    } else if (n > SIZE_MAX || gf_buf_append(s->b, p, (size_t)n) != 0) {
        s->rc = GF_ENOMEM;
    }
    s->pos += n;
}

static void emit_pad(struct sink *s, uint64_t align)
{
    static const uint8_t zeros[256];
    uint64_t pad = (align - s->pos % align) % align;
    while (pad > 0) {
        uint64_t k = pad < sizeof(zeros) ? pad : sizeof(zeros);
        emit(s, zeros, k);
        pad -= k;
    }
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) / a * a;
}

static int serialize(struct gf_gguf_writer *w, struct sink *s)
{
    uint32_t version = 3;
    uint64_t nt = w->n_tensors, nkv = w->n_kv;
    emit(s, "GGUF", 4);
    emit(s, &version, 4);
    emit(s, &nt, 8);
    emit(s, &nkv, 8);
    emit(s, w->kvs.data, w->kvs.len);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_tensors; i++) {
        const struct wtensor *t = &w->tensors[i];
        uint64_t nlen = strlen(t->name);
        uint32_t nd = (uint32_t)t->n_dims, type = (uint32_t)t->type;
        emit(s, &nlen, 8);
        emit(s, t->name, nlen);
        emit(s, &nd, 4);
        emit(s, t->ne, 8 * (uint64_t)t->n_dims);
        emit(s, &type, 4);
        emit(s, &off, 8);
        off = align_up(off + t->nbytes, w->alignment);
    }
    emit_pad(s, w->alignment);
    for (size_t i = 0; i < w->n_tensors; i++) {
        emit(s, w->tensors[i].data, w->tensors[i].nbytes);
        emit_pad(s, w->alignment);
    }
    return s->rc;
}

int gf_gguf_writer_write_mem(struct gf_gguf_writer *w, void **out, size_t *len)
{
    struct gf_buf b;
    gf_buf_init(&b, SIZE_MAX / 4);
    struct sink s = {.b = &b};
    int rc = serialize(w, &s);
    if (rc != 0) {
        gf_buf_cleanup(&b);
        return rc;
    }
    *len = b.len;
    *out = gf_buf_steal(&b);
    return *out == NULL ? GF_ENOMEM : 0;
}

/* The directory holding path ("." for a bare name); caller frees. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return gf_strdup(".");
    return gf_strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

/* fsyncs directory dir, so a rename inside it is durable. */
static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return GF_EIO;
    int rc = fsync(fd) == 0 ? 0 : GF_EIO;
    close(fd);
    return rc;
}

int gf_gguf_writer_write(struct gf_gguf_writer *w, const char *path, struct gf_err *err)
{
    // Everything allocated up front, so running out of memory never leaves a file behind.
    struct gf_buf tmp;
    gf_buf_init(&tmp, 8192);
    char *dir = dir_of(path);
    if (dir == NULL || gf_buf_printf(&tmp, "%s.tmp.XXXXXX", path) != 0) {
        gf_free(dir);
        gf_buf_cleanup(&tmp);
        return gf_err_set(err, GF_ENOMEM, "%s: out of memory or path too long", path);
    }
    int fd = mkstemp(tmp.data);
    if (fd < 0) {
        int e = errno;
        gf_free(dir);
        gf_buf_cleanup(&tmp);
        return gf_err_set(err, GF_EIO, "%s: cannot create a temporary file: %s", path,
                          strerror(e));
    }
    (void)fchmod(fd, 0644);  // model files are not secret; mkstemp made it 0600
    FILE *f = fdopen(fd, "wb");
    if (f == NULL) {
        close(fd);
        unlink(tmp.data);
        gf_free(dir);
        gf_buf_cleanup(&tmp);
        return gf_err_set(err, GF_ENOMEM, "%s: out of memory", path);
    }
    struct sink s = {.f = f};
    int rc = serialize(w, &s);
    const char *what = "write";
    if (rc == 0 && fflush(f) != 0)
        rc = GF_EIO;
    if (rc == 0 && fsync(fileno(f)) != 0) {
        rc = GF_EIO;
        what = "fsync";
    }
    int e = errno;
    if (fclose(f) != 0 && rc == 0) {
        rc = GF_EIO;
        e = errno;
    }
    if (rc == 0 && rename(tmp.data, path) != 0) {
        rc = GF_EIO;
        e = errno;
        what = "rename";
    }
    if (rc != 0) {
        unlink(tmp.data);
        gf_free(dir);
        gf_buf_cleanup(&tmp);
        if (rc == GF_ENOMEM)
            return gf_err_set(err, rc, "%s: out of memory", path);
        return gf_err_set(err, rc, "%s: cannot %s: %s", path, what, strerror(e));
    }
    gf_buf_cleanup(&tmp);
    rc = sync_dir(dir);
    gf_free(dir);
    if (rc != 0)
        return gf_err_set(err, GF_EIO, "%s: cannot fsync its directory", path);
    return 0;
}
