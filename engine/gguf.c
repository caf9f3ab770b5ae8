/* gguf.c — the GGUF reader: maps a file (or borrows a buffer) and checks all of it before
 * anyone looks inside. Invariant: once gf_gguf_open_* returns 0, every key, string, array
 * element and tensor byte that the accessors can reach lies inside the buffer, tensors lie in
 * the data section without overlapping, and keys and tensor names are unique; the accessors
 * then never check bounds again. Parsing is one pass over the header with a cursor that
 * refuses to move past the end. */
#include "engine/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/gguf_int.h"

/* Encoded sizes of the scalar value types; 0 for STRING/ARRAY (variable) or unknown. */
static const uint8_t scalar_size[GF_GGUF_TYPE_COUNT] = {
    [GF_GGUF_TYPE_UINT8] = 1,   [GF_GGUF_TYPE_INT8] = 1,    [GF_GGUF_TYPE_UINT16] = 2,
    [GF_GGUF_TYPE_INT16] = 2,   [GF_GGUF_TYPE_UINT32] = 4,  [GF_GGUF_TYPE_INT32] = 4,
    [GF_GGUF_TYPE_FLOAT32] = 4, [GF_GGUF_TYPE_BOOL] = 1,    [GF_GGUF_TYPE_UINT64] = 8,
    [GF_GGUF_TYPE_INT64] = 8,   [GF_GGUF_TYPE_FLOAT64] = 8,
};

static const char *const type_names[GF_GGUF_TYPE_COUNT] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
    "bool",  "string", "array", "uint64", "int64", "float64",
};

const char *gf_gguf_type_name(int type)
{
    return type >= 0 && type < GF_GGUF_TYPE_COUNT ? type_names[type] : "?";
}

size_t gf_gguf_scalar_size(int type)
{
    return type >= 0 && type < GF_GGUF_TYPE_COUNT ? scalar_size[type] : 0;
}

/* ---- the cursor ------------------------------------------------------------------------- */

struct rd {
    const uint8_t *p;
    uint64_t len;
    uint64_t pos;
    const char *src;  // file name for messages
    struct gf_err *err;
};

static int fail(struct rd *r, const char *fmt, ...) GF_PRINTF(2, 3);

static int fail(struct rd *r, const char *fmt, ...)
{
    char msg[224];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return gf_err_set(r->err, GF_EFORMAT, "%s: %s", r->src, msg);
}

/* Copies s[0..n) into out (at most 48 bytes shown) with non-printable bytes as '?', so a
 * hostile name cannot break the one-line message. */
static const char *shown(const uint8_t *s, uint64_t n, char out[56])
{
    size_t k = 0;
    for (uint64_t i = 0; i < n && k < 48; i++)
        out[k++] = s[i] >= 0x20 && s[i] < 0x7f ? (char)s[i] : '?';
    if (n > 48) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
    return out;
}

static int need(struct rd *r, uint64_t n, const char *what)
{
    if (n > r->len - r->pos)
        return fail(r, "truncated at offset %llu reading %s (need %llu bytes, %llu left)",
                    (unsigned long long)r->pos, what, (unsigned long long)n,
                    (unsigned long long)(r->len - r->pos));
    return 0;
}

static int rd_u32(struct rd *r, uint32_t *v, const char *what)
{
    if (need(r, 4, what) != 0)
        return GF_EFORMAT;
    memcpy(v, r->p + r->pos, 4);
    r->pos += 4;
    return 0;
}

static int rd_u64(struct rd *r, uint64_t *v, const char *what)
{
    if (need(r, 8, what) != 0)
        return GF_EFORMAT;
    memcpy(v, r->p + r->pos, 8);
    r->pos += 8;
    return 0;
}

/* Reads a GGUF string (u64 length + bytes) of at most max bytes. */
static int rd_str(struct rd *r, const uint8_t **s, uint64_t *n, uint64_t max, const char *what)
{
    uint64_t at = r->pos;
    if (rd_u64(r, n, what) != 0)
        return GF_EFORMAT;
    if (*n > max)
        return fail(r, "%s at offset %llu: length %llu exceeds the limit of %llu", what,
                    (unsigned long long)at, (unsigned long long)*n, (unsigned long long)max);
    if (need(r, *n, what) != 0)
        return GF_EFORMAT;
    *s = r->p + r->pos;
    r->pos += *n;
    return 0;
}

/* ---- hash index of names ---------------------------------------------------------------- */

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Builds an open-addressing table of n names (slot = index + 1, 0 = empty). Returns the index
 * of the first duplicate found in *dup (or -1), GF_ENOMEM. */
static int index_build(struct gf_gguf_index *ix, size_t n, const char *(*name_of)(void *, size_t),
                       void *ud, long *dup)
{
    *dup = -1;
    size_t cap = 8;
    while (cap < 2 * n)
        cap *= 2;
    ix->slots = gf_calloc(cap, sizeof(*ix->slots));
    if (ix->slots == NULL)
        return GF_ENOMEM;
    ix->mask = cap - 1;
    for (size_t i = 0; i < n; i++) {
        const char *name = name_of(ud, i);
        size_t s = (size_t)hash_name(name) & ix->mask;
        while (ix->slots[s] != 0) {
            if (strcmp(name_of(ud, ix->slots[s] - 1), name) == 0) {
                *dup = (long)i;
                return 0;
            }
            s = (s + 1) & ix->mask;
        }
        ix->slots[s] = (uint32_t)(i + 1);
    }
    return 0;
}

static long index_find(const struct gf_gguf_index *ix, const char *name,
                       const char *(*name_of)(void *, size_t), void *ud)
{
    if (ix->slots == NULL)
        return -1;
    size_t s = (size_t)hash_name(name) & ix->mask;
    while (ix->slots[s] != 0) {
        if (strcmp(name_of(ud, ix->slots[s] - 1), name) == 0)
            return (long)ix->slots[s] - 1;
        s = (s + 1) & ix->mask;
    }
    return -1;
}

static const char *kv_name(void *ud, size_t i)
{
    return ((struct gf_gguf *)ud)->kv[i].key;
}

static const char *tensor_name(void *ud, size_t i)
{
    return ((struct gf_gguf *)ud)->tensors[i].name;
}

/* ---- parsing ---------------------------------------------------------------------------- */

/* Reads the value of key/value kv (its type already read). */
static int parse_value(struct rd *r, struct gf_gguf_kv *kv, const char *key)
{
    if (kv->type < 0 || kv->type >= GF_GGUF_TYPE_COUNT)
        return fail(r, "key '%s': unknown value type %d", key, kv->type);
    if (kv->type == GF_GGUF_TYPE_STRING) {
        const uint8_t *s;
        char what[96];
        snprintf(what, sizeof(what), "the string value of key '%s'", key);
        if (rd_str(r, &s, &kv->n, GF_GGUF_MAX_STRING, what) != 0)
            return GF_EFORMAT;
        kv->val = s;
        return 0;
    }
    if (kv->type != GF_GGUF_TYPE_ARRAY) {
        size_t sz = scalar_size[kv->type];
        if (need(r, sz, "value") != 0)
            return GF_EFORMAT;
        kv->val = r->p + r->pos;
        if (kv->type == GF_GGUF_TYPE_BOOL && kv->val[0] > 1)
            return fail(r, "key '%s': bool value %u is not 0 or 1", key, kv->val[0]);
        r->pos += sz;
        return 0;
    }
    uint32_t et;
    uint64_t n;
    if (rd_u32(r, &et, "array element type") != 0 || rd_u64(r, &n, "array length") != 0)
        return GF_EFORMAT;
    kv->elem_type = (int)et;
    kv->n = n;
    if (et == GF_GGUF_TYPE_ARRAY)
        return fail(r, "key '%s': nested arrays are not supported", key);
    if (et >= GF_GGUF_TYPE_COUNT)
        return fail(r, "key '%s': unknown array element type %u", key, et);
    uint64_t left = r->len - r->pos;
    if (et != GF_GGUF_TYPE_STRING) {
        size_t sz = scalar_size[et];
        if (n > left / sz)
            return fail(r, "key '%s': array of %llu %s elements past end of file (%llu bytes left)",
                        key, (unsigned long long)n, type_names[et], (unsigned long long)left);
        kv->val = r->p + r->pos;
        if (et == GF_GGUF_TYPE_BOOL) {
            for (uint64_t i = 0; i < n; i++)
                if (kv->val[i] > 1)
                    return fail(r, "key '%s': bool element %llu is %u, not 0 or 1", key,
                                (unsigned long long)i, kv->val[i]);
        }
        r->pos += n * sz;
        return 0;
    }
    // Strings: each at least its 8-byte length, which bounds n before we allocate.
    if (n > left / 8)
        return fail(r, "key '%s': array of %llu strings past end of file (%llu bytes left)", key,
                    (unsigned long long)n, (unsigned long long)left);
    kv->val = r->p + r->pos;
    if (n > 0) {
        kv->str_off = gf_mallocarray((size_t)n, sizeof(*kv->str_off));
        if (kv->str_off == NULL)
            return gf_err_set(r->err, GF_ENOMEM, "%s: out of memory", r->src);
    }
    for (uint64_t i = 0; i < n; i++) {
        kv->str_off[i] = r->pos - (uint64_t)(kv->val - r->p);
        const uint8_t *s;
        uint64_t len;
        char what[96];
        snprintf(what, sizeof(what), "string %llu of array '%s'", (unsigned long long)i, key);
        if (rd_str(r, &s, &len, GF_GGUF_MAX_STRING, what) != 0)
            return GF_EFORMAT;
    }
    return 0;
}

static int parse_kvs(struct rd *r, struct gf_gguf *g, struct gf_buf *names, size_t *name_off)
{
    for (size_t i = 0; i < g->n_kv; i++) {
        struct gf_gguf_kv *kv = &g->kv[i];
        const uint8_t *k;
        uint64_t klen;
        char what[40];
        snprintf(what, sizeof(what), "key %zu", i);
        if (rd_str(r, &k, &klen, GF_GGUF_MAX_KEY, what) != 0)
            return GF_EFORMAT;
        char show[56];
        if (klen == 0)
            return fail(r, "key %zu is empty", i);
        if (memchr(k, 0, klen) != NULL)
            return fail(r, "key '%s' contains a NUL byte", shown(k, klen, show));
        name_off[i] = names->len;
        if (gf_buf_append(names, k, klen) != 0 || gf_buf_putc(names, '\0') != 0)
            return gf_err_set(r->err, GF_ENOMEM, "%s: out of memory", r->src);
        uint32_t t;
        if (rd_u32(r, &t, "value type") != 0)
            return GF_EFORMAT;
        kv->type = t > INT32_MAX ? -1 : (int)t;
        const char *key = names->data + name_off[i];
        int rc = parse_value(r, kv, shown(k, klen, show));
        if (rc != 0)
            return rc;
        if (strcmp(key, "general.alignment") == 0) {
            uint32_t a;
            if (kv->type != GF_GGUF_TYPE_UINT32)
                return fail(r, "general.alignment has type %s, expected uint32",
                            gf_gguf_type_name(kv->type));
            memcpy(&a, kv->val, 4);
            if (a == 0 || (a & (a - 1)) != 0 || a > GF_GGUF_MAX_ALIGNMENT)
                return fail(r, "general.alignment %u is not a power of two in [1, %u]", a,
                            GF_GGUF_MAX_ALIGNMENT);
            g->alignment = a;
        }
    }
    return 0;
}

static int parse_tensor_infos(struct rd *r, struct gf_gguf *g, struct gf_buf *names,
                              size_t *name_off, uint64_t *rel_off)
{
    for (size_t i = 0; i < g->n_tensors; i++) {
        struct gf_gguf_tensor *t = &g->tensors[i];
        const uint8_t *nm;
        uint64_t nlen;
        char what[40], show[56];
        snprintf(what, sizeof(what), "tensor %zu name", i);
        if (rd_str(r, &nm, &nlen, GF_GGUF_MAX_NAME, what) != 0)
            return GF_EFORMAT;
        if (nlen == 0)
            return fail(r, "tensor %zu has an empty name", i);
        if (memchr(nm, 0, nlen) != NULL)
            return fail(r, "tensor '%s': name contains a NUL byte", shown(nm, nlen, show));
        shown(nm, nlen, show);
        name_off[i] = names->len;
        if (gf_buf_append(names, nm, nlen) != 0 || gf_buf_putc(names, '\0') != 0)
            return gf_err_set(r->err, GF_ENOMEM, "%s: out of memory", r->src);
        uint32_t nd;
        if (rd_u32(r, &nd, "tensor n_dims") != 0)
            return GF_EFORMAT;
        if (nd < 1 || nd > GF_GGUF_MAX_DIMS)
            return fail(r, "tensor '%s': n_dims %u is not in [1, %d]", show, nd,
                        GF_GGUF_MAX_DIMS);
        t->n_dims = (int)nd;
        uint64_t elems = 1;
        for (int d = 0; d < 4; d++)
            t->ne[d] = 1;
        for (uint32_t d = 0; d < nd; d++) {
            if (rd_u64(r, &t->ne[d], "tensor dimension") != 0)
                return GF_EFORMAT;
            if (t->ne[d] == 0 || t->ne[d] > (uint64_t)INT64_MAX / elems)
                return fail(r, "tensor '%s': dimension %u is %llu (zero, or the element count "
                               "overflows)", show, d, (unsigned long long)t->ne[d]);
            elems *= t->ne[d];
        }
        uint32_t type;
        if (rd_u32(r, &type, "tensor type") != 0)
            return GF_EFORMAT;
        if (!gf_tensor_type_valid((int)type))
            return fail(r, "tensor '%s': unknown tensor type %u", show, type);
        t->type = (int)type;
        uint64_t blck = gf_tensor_block_elems(t->type);
        if (t->ne[0] % blck != 0)
            return fail(r, "tensor '%s': row of %llu elements is not a multiple of the %s block "
                           "size %llu", show, (unsigned long long)t->ne[0],
                        gf_tensor_type_name(t->type), (unsigned long long)blck);
        uint64_t row = gf_tensor_row_bytes(t->type, t->ne[0]);
        uint64_t rows = elems / t->ne[0];
        if (row == 0 || rows > UINT64_MAX / row)
            return fail(r, "tensor '%s': size overflows", show);
        t->nbytes = row * rows;
        if (rd_u64(r, &rel_off[i], "tensor offset") != 0)
            return GF_EFORMAT;
    }
    return 0;
}

/* Orders (offset, index) pairs by offset. */
struct off_idx {
    uint64_t off;
    size_t idx;
};

static int by_offset(const void *a, const void *b)
{
    uint64_t x = ((const struct off_idx *)a)->off, y = ((const struct off_idx *)b)->off;
    return x < y ? -1 : x > y;
}

/* Places every tensor in the data section and checks that they fit and do not overlap. */
static int place_tensors(struct rd *r, struct gf_gguf *g, const uint64_t *rel_off)
{
    for (size_t i = 0; i < g->n_tensors; i++) {
        struct gf_gguf_tensor *t = &g->tensors[i];
        char show[56];
        shown((const uint8_t *)t->name, strlen(t->name), show);
        if (rel_off[i] % g->alignment != 0)
            return fail(r, "tensor '%s': data offset %llu is not a multiple of the alignment %llu",
                        show, (unsigned long long)rel_off[i],
                        (unsigned long long)g->alignment);
        uint64_t room = g->size - g->data_offset;
        if (rel_off[i] > room || t->nbytes > room - rel_off[i])
            return fail(r, "tensor '%s': data past end of file (offset %llu + size %llu > %llu)",
                        show, (unsigned long long)(g->data_offset + rel_off[i]),
                        (unsigned long long)t->nbytes, (unsigned long long)g->size);
        t->offset = g->data_offset + rel_off[i];
        t->data = g->base + t->offset;
    }
    if (g->n_tensors < 2)
        return 0;
    struct off_idx *pairs = gf_mallocarray(g->n_tensors, sizeof(*pairs));
    if (pairs == NULL)
        return gf_err_set(r->err, GF_ENOMEM, "%s: out of memory", r->src);
    for (size_t i = 0; i < g->n_tensors; i++)
        pairs[i] = (struct off_idx){g->tensors[i].offset, i};
    qsort(pairs, g->n_tensors, sizeof(*pairs), by_offset);
    int rc = 0;
    for (size_t i = 0; i + 1 < g->n_tensors; i++) {
        const struct gf_gguf_tensor *a = &g->tensors[pairs[i].idx];
        const struct gf_gguf_tensor *b = &g->tensors[pairs[i + 1].idx];
        if (a->offset + a->nbytes > b->offset) {
            char sa[56], sb[56];
            rc = fail(r, "tensors '%s' and '%s' overlap (offset %llu + size %llu > %llu)",
                      shown((const uint8_t *)a->name, strlen(a->name), sa),
                      shown((const uint8_t *)b->name, strlen(b->name), sb),
                      (unsigned long long)a->offset, (unsigned long long)a->nbytes,
                      (unsigned long long)b->offset);
            break;
        }
    }
    gf_free(pairs);
    return rc;
}

static int parse(struct gf_gguf *g, const char *src, struct gf_err *err)
{
    struct rd r = {.p = g->base, .len = g->size, .pos = 0, .src = src, .err = err};
    struct gf_buf names;
    size_t *name_off = NULL;
    uint64_t *rel_off = NULL;
    int rc = GF_EFORMAT;
    gf_buf_init(&names, g->size + 64);

    if (g->size < 4 || memcmp(g->base, "GGUF", 4) != 0) {
        fail(&r, "not a GGUF file (no GGUF magic at offset 0)");
        goto fail;
    }
    r.pos = 4;
    uint32_t version;
    if (rd_u32(&r, &version, "version") != 0)
        goto fail;
    if (version == 1) {
        fail(&r, "GGUF version 1 is not supported (versions 2 and 3 are)");
        goto fail;
    }
    if (version == 0x02000000u || version == 0x03000000u) {
        fail(&r, "big-endian GGUF files are not supported");
        goto fail;
    }
    if (version != 2 && version != 3) {
        fail(&r, "unsupported GGUF version %u (versions 2 and 3 are)", version);
        goto fail;
    }
    g->version = version;
    uint64_t n_tensors, n_kv;
    if (rd_u64(&r, &n_tensors, "tensor count") != 0 || rd_u64(&r, &n_kv, "key/value count") != 0)
        goto fail;
    // Every key/value takes at least 8 + 1 + 4 + 1 bytes and every tensor info 8 + 1 + 4 + 8 +
    // 4 + 8, so counts the remaining bytes cannot hold are refused before any allocation.
    uint64_t left = r.len - r.pos;
    if (n_kv > GF_GGUF_MAX_KV || n_kv > left / 14) {
        fail(&r, "key/value count %llu is more than the file can hold (limit %d)",
             (unsigned long long)n_kv, GF_GGUF_MAX_KV);
        goto fail;
    }
    if (n_tensors > GF_GGUF_MAX_TENSORS || n_tensors > left / 33) {
        fail(&r, "tensor count %llu is more than the file can hold (limit %d)",
             (unsigned long long)n_tensors, GF_GGUF_MAX_TENSORS);
        goto fail;
    }
    g->n_kv = (size_t)n_kv;
    g->n_tensors = (size_t)n_tensors;
    g->alignment = GF_GGUF_DEFAULT_ALIGNMENT;
    // One slot more than needed, so that a file with no keys and no tensors still gets
    // arrays (pointer arithmetic on NULL is undefined).
    name_off = gf_calloc((size_t)(n_kv + n_tensors + 1), sizeof(*name_off));
    g->kv = gf_calloc((size_t)n_kv + 1, sizeof(*g->kv));
    g->tensors = gf_calloc((size_t)n_tensors + 1, sizeof(*g->tensors));
    rel_off = gf_calloc((size_t)n_tensors + 1, sizeof(*rel_off));
    if (name_off == NULL || g->kv == NULL || g->tensors == NULL || rel_off == NULL)
        goto oom;
    if ((rc = parse_kvs(&r, g, &names, name_off)) != 0)
        goto fail;
    rc = GF_EFORMAT;
    if (parse_tensor_infos(&r, g, &names, name_off + g->n_kv, rel_off) != 0) {
        rc = err && err->code ? err->code : GF_EFORMAT;
        goto fail;
    }
    // The data section starts at the next multiple of the alignment. A file without tensors
    // may end before that padding.
    uint64_t pad = (g->alignment - r.pos % g->alignment) % g->alignment;
    g->data_offset = r.pos + pad;
    if (g->data_offset > g->size) {
        if (g->n_tensors > 0) {
            fail(&r, "data section starts at %llu, past end of file (%llu bytes)",
                 (unsigned long long)g->data_offset, (unsigned long long)g->size);
            goto fail;
        }
        g->data_offset = g->size;
    }
    // Names are final now: point keys and tensor names into the blob.
    g->names = names.data;
    names.data = NULL;
    for (size_t i = 0; i < g->n_kv; i++)
        g->kv[i].key = g->names + name_off[i];
    for (size_t i = 0; i < g->n_tensors; i++)
        g->tensors[i].name = g->names + name_off[g->n_kv + i];
    long dup;
    if (index_build(&g->kv_index, g->n_kv, kv_name, g, &dup) != 0)
        goto oom;
    if (dup >= 0) {
        char show[56];
        fail(&r, "duplicate key '%s'",
             shown((const uint8_t *)g->kv[dup].key, strlen(g->kv[dup].key), show));
        goto fail;
    }
    if (index_build(&g->tensor_index, g->n_tensors, tensor_name, g, &dup) != 0)
        goto oom;
    if (dup >= 0) {
        char show[56];
        fail(&r, "duplicate tensor name '%s'",
             shown((const uint8_t *)g->tensors[dup].name, strlen(g->tensors[dup].name), show));
        goto fail;
    }
    rc = place_tensors(&r, g, rel_off);
    if (rc != 0)
        goto fail;
    gf_free(name_off);
    gf_free(rel_off);
    gf_buf_cleanup(&names);
    return 0;
oom:
    rc = gf_err_set(err, GF_ENOMEM, "%s: out of memory", src);
fail:
    if (err != NULL && err->code != 0)
        rc = err->code;
    gf_free(name_off);
    gf_free(rel_off);
    gf_buf_cleanup(&names);
    return rc;
}

static void release(struct gf_gguf *g)
{
    if (g->kv != NULL)
        for (size_t i = 0; i < g->n_kv; i++)
            gf_free(g->kv[i].str_off);
    gf_free(g->kv);
    gf_free(g->tensors);
    gf_free(g->names);
    gf_free(g->kv_index.slots);
    gf_free(g->tensor_index.slots);
    if (g->mapped && g->size > 0)
        munmap((void *)g->base, g->size);
    gf_free(g);
}

int gf_gguf_open_mem(const void *data, size_t len, struct gf_gguf **out, struct gf_err *err)
{
    *out = NULL;
    struct gf_gguf *g = gf_calloc(1, sizeof(*g));
    if (g == NULL)
        return gf_err_set(err, GF_ENOMEM, "(memory): out of memory");
    g->base = data;
    g->size = len;
    int rc = parse(g, "(memory)", err);
    if (rc != 0) {
        release(g);
        return rc;
    }
    *out = g;
    return 0;
}

int gf_gguf_open(const char *path, struct gf_gguf **out, struct gf_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return gf_err_set(err, GF_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return gf_err_set(err, GF_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return gf_err_set(err, GF_EFORMAT, "%s: not a regular file", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return gf_err_set(err, GF_EFORMAT, "%s: empty file, not a GGUF file", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return gf_err_set(err, GF_EFORMAT, "%s: file too large to map", path);
    }
    void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);  // the mapping keeps the file alive
    if (map == MAP_FAILED)
        return gf_err_set(err, GF_EIO, "%s: cannot map: %s", path, strerror(e));
    struct gf_gguf *g = gf_calloc(1, sizeof(*g));
    if (g == NULL) {
        munmap(map, (size_t)st.st_size);
        return gf_err_set(err, GF_ENOMEM, "%s: out of memory", path);
    }
    g->base = map;
    g->size = (size_t)st.st_size;
    g->mapped = true;
    int rc = parse(g, path, err);
    if (rc != 0) {
        release(g);
        return rc;
    }
    *out = g;
    return 0;
}

void gf_gguf_close(struct gf_gguf *g)
{
    if (g != NULL)
        release(g);
}

void gf_gguf_release_pages(const struct gf_gguf *g, const void *p, size_t len)
{
    uintptr_t lo = (uintptr_t)p, hi = lo + len, base = (uintptr_t)g->base;
    if (!g->mapped || lo < base || hi > base + g->size || hi < lo)
        return;
    long ps = sysconf(_SC_PAGESIZE);
    if (ps <= 0)
        return;
    uintptr_t a = (lo + (uintptr_t)ps - 1) / (uintptr_t)ps * (uintptr_t)ps;
    uintptr_t b = hi / (uintptr_t)ps * (uintptr_t)ps;
    // a private read-only file mapping: dropped pages fault back in from the file, unchanged
    if (a < b)
        (void)madvise((void *)a, b - a, MADV_DONTNEED);
}

/* ---- accessors -------------------------------------------------------------------------- */

uint32_t gf_gguf_version(const struct gf_gguf *g)
{
    return g->version;
}

uint64_t gf_gguf_alignment(const struct gf_gguf *g)
{
    return g->alignment;
}

uint64_t gf_gguf_data_offset(const struct gf_gguf *g)
{
    return g->data_offset;
}

uint64_t gf_gguf_file_size(const struct gf_gguf *g)
{
    return g->size;
}

const void *gf_gguf_base(const struct gf_gguf *g)
{
    return g->base;
}

size_t gf_gguf_n_tensors(const struct gf_gguf *g)
{
    return g->n_tensors;
}

const struct gf_gguf_tensor *gf_gguf_tensor_at(const struct gf_gguf *g, size_t i)
{
    return i < g->n_tensors ? &g->tensors[i] : NULL;
}

const struct gf_gguf_tensor *gf_gguf_find_tensor(const struct gf_gguf *g, const char *name)
{
    long i = index_find(&g->tensor_index, name, tensor_name, (void *)g);
    return i < 0 ? NULL : &g->tensors[i];
}

size_t gf_gguf_n_kv(const struct gf_gguf *g)
{
    return g->n_kv;
}

const char *gf_gguf_kv_key(const struct gf_gguf *g, size_t i)
{
    return g->kv[i].key;
}

int gf_gguf_kv_type(const struct gf_gguf *g, size_t i)
{
    return g->kv[i].type;
}

long gf_gguf_find_key(const struct gf_gguf *g, const char *key)
{
    return index_find(&g->kv_index, key, kv_name, (void *)g);
}
