/* gguf_meta.c — typed access to the metadata of an opened GGUF file. The reader has already
 * checked that every value lies inside the buffer, so these only check types and ranges:
 * an integer getter takes any integer type whose value fits its result. */
#include "engine/gguf.h"

#include <string.h>

#include "engine/gguf_int.h"

/* An integer as sign + value, so every range check is one comparison. */
struct anyint {
    bool neg;    // the value is negative; then i holds it
    uint64_t u;  // the value when not negative
    int64_t i;
};

static bool is_int_type(int t)
{
    return t == GF_GGUF_TYPE_UINT8 || t == GF_GGUF_TYPE_INT8 || t == GF_GGUF_TYPE_UINT16 ||
           t == GF_GGUF_TYPE_INT16 || t == GF_GGUF_TYPE_UINT32 || t == GF_GGUF_TYPE_INT32 ||
           t == GF_GGUF_TYPE_UINT64 || t == GF_GGUF_TYPE_INT64;
}

/* Decodes the scalar of type t at p (little-endian, unaligned) into v. */
static void decode(int t, const uint8_t *p, struct gf_gguf_value *v)
{
    memset(v, 0, sizeof(*v));
    v->type = t;
    switch (t) {
    case GF_GGUF_TYPE_UINT8:
    case GF_GGUF_TYPE_BOOL:
        v->num.u = p[0];
        break;
    case GF_GGUF_TYPE_INT8:
        v->num.i = (int8_t)p[0];
        break;
    case GF_GGUF_TYPE_UINT16: {
        uint16_t x;
        memcpy(&x, p, 2);
        v->num.u = x;
        break;
    }
    case GF_GGUF_TYPE_INT16: {
        int16_t x;
        memcpy(&x, p, 2);
        v->num.i = x;
        break;
    }
    case GF_GGUF_TYPE_UINT32: {
        uint32_t x;
        memcpy(&x, p, 4);
        v->num.u = x;
        break;
    }
    case GF_GGUF_TYPE_INT32: {
        int32_t x;
        memcpy(&x, p, 4);
        v->num.i = x;
        break;
    }
    case GF_GGUF_TYPE_UINT64:
        memcpy(&v->num.u, p, 8);
        break;
    case GF_GGUF_TYPE_INT64:
        memcpy(&v->num.i, p, 8);
        break;
    case GF_GGUF_TYPE_FLOAT32: {
        float x;
        memcpy(&x, p, 4);
        v->num.f = x;
        break;
    }
    case GF_GGUF_TYPE_FLOAT64:
        memcpy(&v->num.f, p, 8);
        break;
    default:
        break;
    }
}

static bool is_signed(int t)
{
    return t == GF_GGUF_TYPE_INT8 || t == GF_GGUF_TYPE_INT16 || t == GF_GGUF_TYPE_INT32 ||
           t == GF_GGUF_TYPE_INT64;
}

static struct anyint to_anyint(const struct gf_gguf_value *v)
{
    struct anyint a = {0};
    if (is_signed(v->type)) {
        a.i = v->num.i;
        a.neg = v->num.i < 0;
        a.u = a.neg ? 0 : (uint64_t)v->num.i;
    } else {
        a.u = v->num.u;
        a.i = a.u > INT64_MAX ? INT64_MAX : (int64_t)a.u;
    }
    return a;
}

void gf_gguf_kv_value(const struct gf_gguf *g, size_t i, struct gf_gguf_value *v)
{
    const struct gf_gguf_kv *kv = &g->kv[i];
    if (kv->type == GF_GGUF_TYPE_STRING) {
        memset(v, 0, sizeof(*v));
        v->type = kv->type;
        v->str = (const char *)kv->val;
        v->len = (size_t)kv->n;
    } else if (kv->type == GF_GGUF_TYPE_ARRAY) {
        memset(v, 0, sizeof(*v));
        v->type = kv->type;
        v->arr = (struct gf_gguf_arr){
            .g = g, .elem_type = kv->elem_type, .n = kv->n, .data = kv->val, .kv = i};
    } else {
        decode(kv->type, kv->val, v);
    }
}

/* Looks key up and decodes it if it is an integer. */
static int get_int(const struct gf_gguf *g, const char *key, struct anyint *a)
{
    long i = gf_gguf_find_key(g, key);
    if (i < 0)
        return GF_ENOTFOUND;
    if (!is_int_type(g->kv[i].type))
        return GF_EFORMAT;
    struct gf_gguf_value v;
    decode(g->kv[i].type, g->kv[i].val, &v);
    *a = to_anyint(&v);
    return 0;
}

int gf_gguf_get_u32(const struct gf_gguf *g, const char *key, uint32_t *out)
{
    struct anyint a;
    int rc = get_int(g, key, &a);
    if (rc != 0)
        return rc;
    if (a.neg || a.u > UINT32_MAX)
        return GF_EFORMAT;
    *out = (uint32_t)a.u;
    return 0;
}

int gf_gguf_get_i32(const struct gf_gguf *g, const char *key, int32_t *out)
{
    struct anyint a;
    int rc = get_int(g, key, &a);
    if (rc != 0)
        return rc;
    if (a.neg ? a.i < INT32_MIN : a.u > INT32_MAX)
        return GF_EFORMAT;
    *out = (int32_t)(a.neg ? a.i : (int64_t)a.u);
    return 0;
}

int gf_gguf_get_u64(const struct gf_gguf *g, const char *key, uint64_t *out)
{
    struct anyint a;
    int rc = get_int(g, key, &a);
    if (rc != 0)
        return rc;
    if (a.neg)
        return GF_EFORMAT;
    *out = a.u;
    return 0;
}

int gf_gguf_get_i64(const struct gf_gguf *g, const char *key, int64_t *out)
{
    struct anyint a;
    int rc = get_int(g, key, &a);
    if (rc != 0)
        return rc;
    if (!a.neg && a.u > INT64_MAX)
        return GF_EFORMAT;
    *out = a.neg ? a.i : (int64_t)a.u;
    return 0;
}

int gf_gguf_get_f64(const struct gf_gguf *g, const char *key, double *out)
{
    long i = gf_gguf_find_key(g, key);
    if (i < 0)
        return GF_ENOTFOUND;
    int t = g->kv[i].type;
    struct gf_gguf_value v;
    decode(t, g->kv[i].val, &v);
    if (t == GF_GGUF_TYPE_FLOAT32 || t == GF_GGUF_TYPE_FLOAT64)
        *out = v.num.f;
    else if (is_int_type(t))
        *out = is_signed(t) ? (double)v.num.i : (double)v.num.u;
    else
        return GF_EFORMAT;
    return 0;
}

int gf_gguf_get_f32(const struct gf_gguf *g, const char *key, float *out)
{
    double d;
    int rc = gf_gguf_get_f64(g, key, &d);
    if (rc == 0)
        *out = (float)d;
    return rc;
}

int gf_gguf_get_bool(const struct gf_gguf *g, const char *key, bool *out)
{
    long i = gf_gguf_find_key(g, key);
    if (i < 0)
        return GF_ENOTFOUND;
    if (g->kv[i].type != GF_GGUF_TYPE_BOOL)
        return GF_EFORMAT;
    *out = g->kv[i].val[0] != 0;
    return 0;
}

int gf_gguf_get_str(const struct gf_gguf *g, const char *key, const char **s, size_t *len)
{
    long i = gf_gguf_find_key(g, key);
    if (i < 0)
        return GF_ENOTFOUND;
    if (g->kv[i].type != GF_GGUF_TYPE_STRING)
        return GF_EFORMAT;
    *s = (const char *)g->kv[i].val;
    *len = (size_t)g->kv[i].n;
    return 0;
}

int gf_gguf_get_arr(const struct gf_gguf *g, const char *key, struct gf_gguf_arr *out)
{
    long i = gf_gguf_find_key(g, key);
    if (i < 0)
        return GF_ENOTFOUND;
    if (g->kv[i].type != GF_GGUF_TYPE_ARRAY)
        return GF_EFORMAT;
    struct gf_gguf_value v;
    gf_gguf_kv_value(g, (size_t)i, &v);
    *out = v.arr;
    return 0;
}

int gf_gguf_arr_str(const struct gf_gguf_arr *a, uint64_t i, const char **s, size_t *len)
{
    if (i >= a->n)
        return GF_EINVAL;
    if (a->elem_type != GF_GGUF_TYPE_STRING)
        return GF_EFORMAT;
    const struct gf_gguf_kv *kv = &a->g->kv[a->kv];
    const uint8_t *p = kv->val + kv->str_off[i];
    uint64_t n;
    memcpy(&n, p, 8);
    *s = (const char *)p + 8;
    *len = (size_t)n;
    return 0;
}

static int arr_elem(const struct gf_gguf_arr *a, uint64_t i, struct gf_gguf_value *v)
{
    if (i >= a->n)
        return GF_EINVAL;
    size_t sz = gf_gguf_scalar_size(a->elem_type);
    if (sz == 0)
        return GF_EFORMAT;
    decode(a->elem_type, (const uint8_t *)a->data + i * sz, v);
    return 0;
}

int gf_gguf_arr_f64(const struct gf_gguf_arr *a, uint64_t i, double *out)
{
    struct gf_gguf_value v;
    int rc = arr_elem(a, i, &v);
    if (rc != 0)
        return rc;
    if (v.type == GF_GGUF_TYPE_FLOAT32 || v.type == GF_GGUF_TYPE_FLOAT64)
        *out = v.num.f;
    else
        *out = is_signed(v.type) ? (double)v.num.i : (double)v.num.u;
    return 0;
}

int gf_gguf_arr_i64(const struct gf_gguf_arr *a, uint64_t i, int64_t *out)
{
    struct gf_gguf_value v;
    int rc = arr_elem(a, i, &v);
    if (rc != 0)
        return rc;
    if (!is_int_type(v.type) && v.type != GF_GGUF_TYPE_BOOL)
        return GF_EFORMAT;
    struct anyint x = to_anyint(&v);
    if (!x.neg && x.u > INT64_MAX)
        return GF_EFORMAT;
    *out = x.neg ? x.i : (int64_t)x.u;
    return 0;
}
