/* Unit tests of the GGUF reader, writer and block formats (engine/gguf*.c, engine/quant.c):
 * writer -> reader round trips for every metadata and tensor type, the shared model files,
 * a table of hostile files that must all be refused with
 * GF_EFORMAT, truncation at every offset, and OOM loops.
 * With `--write-corpus DIR` it writes its valid and hostile files as the fuzz seed corpus. */
#include "engine/gguf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

static const char *shared_dir = "../shared";
static const char *corpus_dir;  // --write-corpus

static void save_corpus(const char *name, const void *p, size_t n)
{
    if (corpus_dir == NULL)
        return;
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", corpus_dir, name);
    FILE *f = fopen(path, "wb");
    if (f != NULL) {
        fwrite(p, 1, n, f);
        fclose(f);
    }
}

/* ---- a tiny raw builder for hand-made (hostile) files ----------------------------------- */

struct raw {
    uint8_t b[4096];
    size_t n;
};

static void r_bytes(struct raw *r, const void *p, size_t n)
{
    if (r->n + n <= sizeof(r->b)) {
        memcpy(r->b + r->n, p, n);
        r->n += n;
    }
}

static void r_u32(struct raw *r, uint32_t v)
{
    r_bytes(r, &v, 4);
}

static void r_u64(struct raw *r, uint64_t v)
{
    r_bytes(r, &v, 8);
}

static void r_str(struct raw *r, const char *s)
{
    r_u64(r, strlen(s));
    r_bytes(r, s, strlen(s));
}

static void r_head(struct raw *r, uint32_t version, uint64_t nt, uint64_t nkv)
{
    r->n = 0;
    r_bytes(r, "GGUF", 4);
    r_u32(r, version);
    r_u64(r, nt);
    r_u64(r, nkv);
}

static void r_kv_u32(struct raw *r, const char *key, uint32_t v)
{
    r_str(r, key);
    r_u32(r, GF_GGUF_TYPE_UINT32);
    r_u32(r, v);
}

/* A tensor info: 1-D F32 of n elements at offset off. */
static void r_tensor(struct raw *r, const char *name, uint64_t n, uint64_t off)
{
    r_str(r, name);
    r_u32(r, 1);
    r_u64(r, n);
    r_u32(r, GF_TYPE_F32);
    r_u64(r, off);
}

static void r_pad(struct raw *r, size_t a)
{
    while (r->n % a)
        r->b[r->n++] = 0;
}

static void r_zeros(struct raw *r, size_t n)
{
    for (size_t i = 0; i < n && r->n < sizeof(r->b); i++)
        r->b[r->n++] = 0;
}

/* Expects data to be refused with GF_EFORMAT and a message containing want (if not NULL). */
static void expect_refused(const char *name, const struct raw *r, const char *want)
{
    struct gf_gguf *g = (struct gf_gguf *)1;
    struct gf_err err = {0};
    int rc = gf_gguf_open_mem(r->b, r->n, &g, &err);
    CHECK_MSG(rc == GF_EFORMAT, "%s: rc %d (%s)", name, rc, err.msg);
    CHECK_MSG(g == NULL, "%s: out not reset", name);
    CHECK_MSG(err.code == GF_EFORMAT && strncmp(err.msg, "(memory): ", 10) == 0, "%s: msg '%s'",
              name, err.msg);
    if (want != NULL)
        CHECK_MSG(strstr(err.msg, want) != NULL, "%s: msg '%s' lacks '%s'", name, err.msg, want);
    gf_gguf_close(rc == 0 ? g : NULL);
    char fname[96];
    snprintf(fname, sizeof(fname), "hostile-%s.gguf", name);
    save_corpus(fname, r->b, r->n);
}

static void test_hostile(void)
{
    struct raw r;

    r.n = 0;
    r_bytes(&r, "GGUX\3\0\0\0", 8);
    expect_refused("magic", &r, "not a GGUF file");

    r_head(&r, 1, 0, 0);
    expect_refused("v1", &r, "version 1");
    r_head(&r, 4, 0, 0);
    expect_refused("v4", &r, "unsupported GGUF version 4");
    r_head(&r, 0x03000000u, 0, 0);
    expect_refused("bigendian", &r, "big-endian");

    r_head(&r, 3, 0, 1);
    r_u64(&r, 1ull << 62);  // key length
    r_zeros(&r, 32);
    expect_refused("huge-key", &r, "exceeds the limit");

    r_head(&r, 3, 0, 1);
    r_str(&r, "k");
    r_u32(&r, GF_GGUF_TYPE_STRING);
    r_u64(&r, 1ull << 40);
    expect_refused("huge-string", &r, "exceeds the limit");

    r_head(&r, 3, 0, 1);
    r_str(&r, "k");
    r_u32(&r, GF_GGUF_TYPE_STRING);
    r_u64(&r, 1000);
    r_bytes(&r, "abc", 3);
    expect_refused("string-past-end", &r, "truncated");

    r_head(&r, 3, 0, 1);
    r_str(&r, "k");
    r_u32(&r, GF_GGUF_TYPE_ARRAY);
    r_u32(&r, GF_GGUF_TYPE_UINT32);
    r_u64(&r, 1ull << 60);
    expect_refused("huge-array", &r, "past end of file");

    r_head(&r, 3, 0, 1);
    r_str(&r, "k");
    r_u32(&r, GF_GGUF_TYPE_ARRAY);
    r_u32(&r, GF_GGUF_TYPE_STRING);
    r_u64(&r, 1ull << 61);
    expect_refused("huge-string-array", &r, "past end of file");

    r_head(&r, 3, 0, 1);
    r_str(&r, "k");
    r_u32(&r, GF_GGUF_TYPE_ARRAY);
    r_u32(&r, 99);
    r_u64(&r, 1);
    r_u32(&r, 0);
    expect_refused("array-elem-type", &r, "unknown array element type 99");

    r_head(&r, 3, 0, 1);
    r_str(&r, "k");
    r_u32(&r, GF_GGUF_TYPE_ARRAY);
    r_u32(&r, GF_GGUF_TYPE_ARRAY);
    r_u64(&r, 1);
    r_u32(&r, GF_GGUF_TYPE_UINT8);
    r_u64(&r, 0);
    expect_refused("nested-array", &r, "nested arrays");

    r_head(&r, 3, 0, 1);
    r_str(&r, "k");
    r_u32(&r, 13);
    r_u32(&r, 0);
    expect_refused("value-type", &r, "unknown value type 13");

    r_head(&r, 3, 0, 1);
    r_str(&r, "k");
    r_u32(&r, GF_GGUF_TYPE_BOOL);
    r_bytes(&r, "\2", 1);
    expect_refused("bool-2", &r, "not 0 or 1");

    r_head(&r, 3, 0, 2);
    r_kv_u32(&r, "a.b", 1);
    r_kv_u32(&r, "a.b", 2);
    expect_refused("dup-key", &r, "duplicate key 'a.b'");

    r_head(&r, 3, 0, 1);
    r_str(&r, "");
    r_u32(&r, GF_GGUF_TYPE_UINT8);
    r_bytes(&r, "\0", 1);
    r_zeros(&r, 32);
    expect_refused("empty-key", &r, "empty");

    r_head(&r, 3, 0, 1);
    r_u64(&r, 3);
    r_bytes(&r, "a\0b", 3);
    r_u32(&r, GF_GGUF_TYPE_UINT8);
    r_bytes(&r, "\0", 1);
    expect_refused("nul-key", &r, "NUL");

    static const uint32_t bad_align[] = {0, 3, 48, 1u << 20, 0x80000000u};
    for (size_t i = 0; i < GF_ARRAY_LEN(bad_align); i++) {
        r_head(&r, 3, 0, 1);
        r_kv_u32(&r, "general.alignment", bad_align[i]);
        char nm[32];
        snprintf(nm, sizeof(nm), "align-%u", bad_align[i]);
        expect_refused(nm, &r, "general.alignment");
    }
    r_head(&r, 3, 0, 1);
    r_str(&r, "general.alignment");
    r_u32(&r, GF_GGUF_TYPE_UINT64);
    r_u64(&r, 32);
    expect_refused("align-u64", &r, "expected uint32");

    r_head(&r, 3, 1ull << 40, 0);
    expect_refused("huge-tensor-count", &r, "tensor count");
    r_head(&r, 3, 0, 1ull << 40);
    expect_refused("huge-kv-count", &r, "key/value count");

    // Tensor-info shapes. Each file holds one or two tensors and enough data.
    r_head(&r, 3, 1, 0);
    r_str(&r, "t");
    r_u32(&r, 5);
    for (int i = 0; i < 5; i++)
        r_u64(&r, 1);
    r_u32(&r, GF_TYPE_F32);
    r_u64(&r, 0);
    r_pad(&r, 32);
    r_zeros(&r, 64);
    expect_refused("ndims-5", &r, "n_dims 5");

    r_head(&r, 3, 1, 0);
    r_str(&r, "t");
    r_u32(&r, 0);
    r_u32(&r, GF_TYPE_F32);
    r_u64(&r, 0);
    r_zeros(&r, 32);
    expect_refused("ndims-0", &r, "n_dims 0");

    r_head(&r, 3, 1, 0);
    r_str(&r, "t");
    r_u32(&r, 2);
    r_u64(&r, 4);
    r_u64(&r, 0);
    r_u32(&r, GF_TYPE_F32);
    r_u64(&r, 0);
    expect_refused("dim-zero", &r, "dimension 1 is 0");

    r_head(&r, 3, 1, 0);
    r_str(&r, "t");
    r_u32(&r, 3);
    r_u64(&r, 1ull << 32);
    r_u64(&r, 1ull << 32);
    r_u64(&r, 1ull << 32);
    r_u32(&r, GF_TYPE_F32);
    r_u64(&r, 0);
    expect_refused("dims-overflow", &r, "overflows");

    r_head(&r, 3, 1, 0);
    r_str(&r, "t");
    r_u32(&r, 1);
    r_u64(&r, 1ull << 61);
    r_u32(&r, GF_TYPE_F64);
    r_u64(&r, 0);
    expect_refused("bytes-overflow", &r, "t");

    r_head(&r, 3, 1, 0);
    r_str(&r, "t");
    r_u32(&r, 1);
    r_u64(&r, 32);
    r_u32(&r, 4);  // removed Q4_2
    r_u64(&r, 0);
    expect_refused("tensor-type-4", &r, "unknown tensor type 4");

    r_head(&r, 3, 1, 0);
    r_str(&r, "t");
    r_u32(&r, 1);
    r_u64(&r, 33);
    r_u32(&r, GF_TYPE_Q8_0);
    r_u64(&r, 0);
    expect_refused("q8-row", &r, "not a multiple");

    r_head(&r, 3, 1, 0);
    r_tensor(&r, "blk.0.attn_q.weight", 16, 4096);
    r_pad(&r, 32);
    r_zeros(&r, 64);
    expect_refused("offset-outside", &r,
                   "tensor 'blk.0.attn_q.weight': data past end of file (offset ");

    r_head(&r, 3, 1, 0);
    r_tensor(&r, "t", 16, 0xffffffffffffffe0ull);
    r_pad(&r, 32);
    r_zeros(&r, 64);
    expect_refused("offset-wrap", &r, "past end of file");

    r_head(&r, 3, 1, 0);
    r_tensor(&r, "t", 8, 8);
    r_pad(&r, 32);
    r_zeros(&r, 64);
    expect_refused("offset-misaligned", &r, "not a multiple of the alignment 32");

    r_head(&r, 3, 2, 0);
    r_tensor(&r, "a", 16, 0);
    r_tensor(&r, "b", 16, 32);  // a is 64 bytes
    r_pad(&r, 32);
    r_zeros(&r, 128);
    expect_refused("overlap", &r, "overlap");

    r_head(&r, 3, 2, 0);
    r_tensor(&r, "a", 8, 0);
    r_tensor(&r, "a", 8, 32);
    r_pad(&r, 32);
    r_zeros(&r, 64);
    expect_refused("dup-tensor", &r, "duplicate tensor name 'a'");

    r_head(&r, 3, 1, 0);
    r_tensor(&r, "t", 8, 0);
    expect_refused("no-data", &r, "past end of file");

    r_head(&r, 3, 1, 0);
    r_u64(&r, GF_GGUF_MAX_NAME + 1);
    r_zeros(&r, GF_GGUF_MAX_NAME + 1);
    expect_refused("long-name", &r, "exceeds the limit");
}

/* ---- round trip ------------------------------------------------------------------------- */

static float frand(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

static const int tensor_types[] = {GF_TYPE_F32,  GF_TYPE_F16,  GF_TYPE_BF16, GF_TYPE_Q4_0,
                                   GF_TYPE_Q4_1, GF_TYPE_Q5_0, GF_TYPE_Q5_1, GF_TYPE_Q8_0};

/* Builds a writer with one key of every type and one tensor of every quantizable type. */
static struct gf_gguf_writer *build_all(uint32_t alignment, float *src /* 64 */,
                                        uint8_t qbuf[][64 * 4])
{
    struct gf_gguf_writer *w = gf_gguf_writer_new();
    if (w == NULL)
        return NULL;
    int rc = 0;
    if (alignment)
        rc |= gf_gguf_writer_add_u32(w, "general.alignment", alignment);
    rc |= gf_gguf_writer_add_str(w, "general.architecture", "llama", 5);
    rc |= gf_gguf_writer_add_u8(w, "t.u8", 200);
    rc |= gf_gguf_writer_add_i8(w, "t.i8", -100);
    rc |= gf_gguf_writer_add_u16(w, "t.u16", 60000);
    rc |= gf_gguf_writer_add_i16(w, "t.i16", -30000);
    rc |= gf_gguf_writer_add_u32(w, "t.u32", 4000000000u);
    rc |= gf_gguf_writer_add_i32(w, "t.i32", -2000000000);
    rc |= gf_gguf_writer_add_u64(w, "t.u64", 18000000000000000000ull);
    rc |= gf_gguf_writer_add_i64(w, "t.i64", -9000000000000000000ll);
    rc |= gf_gguf_writer_add_f32(w, "t.f32", 1.5f);
    rc |= gf_gguf_writer_add_f64(w, "t.f64", -2.25);
    rc |= gf_gguf_writer_add_bool(w, "t.bool", true);
    rc |= gf_gguf_writer_add_str(w, "t.bin", "a\0b\xff", 4);
    rc |= gf_gguf_writer_add_str(w, "t.empty", "", 0);
    const char *strs[] = {"<unk>", "", "\xe2\x96\x81the", "z"};
    rc |= gf_gguf_writer_add_arr_str(w, "t.arr.str", strs, NULL, 4);
    float fa[3] = {0.5f, -1.0f, 3.25f};
    rc |= gf_gguf_writer_add_arr(w, "t.arr.f32", GF_GGUF_TYPE_FLOAT32, fa, 3);
    int32_t ia[4] = {-1, 0, 1, 2147483647};
    rc |= gf_gguf_writer_add_arr(w, "t.arr.i32", GF_GGUF_TYPE_INT32, ia, 4);
    uint8_t ba[2] = {1, 0};
    rc |= gf_gguf_writer_add_arr(w, "t.arr.bool", GF_GGUF_TYPE_BOOL, ba, 2);
    uint64_t ua[1] = {UINT64_MAX};
    rc |= gf_gguf_writer_add_arr(w, "t.arr.u64", GF_GGUF_TYPE_UINT64, ua, 1);
    double da[2] = {1e300, -0.0};
    rc |= gf_gguf_writer_add_arr(w, "t.arr.f64", GF_GGUF_TYPE_FLOAT64, da, 2);
    int16_t sa[2] = {-5, 5};
    rc |= gf_gguf_writer_add_arr(w, "t.arr.i16", GF_GGUF_TYPE_INT16, sa, 2);
    rc |= gf_gguf_writer_add_arr(w, "t.arr.empty", GF_GGUF_TYPE_UINT8, NULL, 0);
    for (size_t i = 0; i < GF_ARRAY_LEN(tensor_types); i++) {
        int t = tensor_types[i];
        uint64_t ne[2] = {32, 2};
        uint64_t nb = gf_tensor_row_bytes(t, 32) * 2;
        rc |= gf_quantize(t, src, qbuf[i], 64);
        char name[32];
        snprintf(name, sizeof(name), "w.%s", gf_tensor_type_name(t));
        rc |= gf_gguf_writer_add_tensor(w, name, t, 2, ne, qbuf[i], nb, i % 2 == 0);
    }
    if (rc != 0) {
        gf_gguf_writer_free(w);
        return NULL;
    }
    return w;
}

static void check_all(const struct gf_gguf *g, const float *src, uint32_t alignment)
{
    CHECK(gf_gguf_version(g) == 3);
    CHECK(gf_gguf_alignment(g) == (alignment ? alignment : 32));
    CHECK(gf_gguf_n_kv(g) == 22u + (alignment ? 1 : 0));
    uint32_t u32;
    int32_t i32;
    uint64_t u64;
    int64_t i64;
    float f32;
    double f64;
    bool b;
    const char *s;
    size_t len;
    CHECK(gf_gguf_get_str(g, "general.architecture", &s, &len) == 0 && len == 5 &&
          memcmp(s, "llama", 5) == 0);
    CHECK(gf_gguf_get_u32(g, "t.u8", &u32) == 0 && u32 == 200);
    CHECK(gf_gguf_get_i32(g, "t.i8", &i32) == 0 && i32 == -100);
    CHECK(gf_gguf_get_u32(g, "t.i8", &u32) == GF_EFORMAT);  // negative into unsigned
    CHECK(gf_gguf_get_u32(g, "t.u16", &u32) == 0 && u32 == 60000);
    CHECK(gf_gguf_get_i32(g, "t.i16", &i32) == 0 && i32 == -30000);
    CHECK(gf_gguf_get_u32(g, "t.u32", &u32) == 0 && u32 == 4000000000u);
    CHECK(gf_gguf_get_i32(g, "t.u32", &i32) == GF_EFORMAT);  // too big
    CHECK(gf_gguf_get_i64(g, "t.u32", &i64) == 0 && i64 == 4000000000ll);
    CHECK(gf_gguf_get_i32(g, "t.i32", &i32) == 0 && i32 == -2000000000);
    CHECK(gf_gguf_get_u64(g, "t.u64", &u64) == 0 && u64 == 18000000000000000000ull);
    CHECK(gf_gguf_get_i64(g, "t.u64", &i64) == GF_EFORMAT);
    CHECK(gf_gguf_get_u32(g, "t.u64", &u32) == GF_EFORMAT);
    CHECK(gf_gguf_get_i64(g, "t.i64", &i64) == 0 && i64 == -9000000000000000000ll);
    CHECK(gf_gguf_get_f32(g, "t.f32", &f32) == 0 && f32 == 1.5f);
    CHECK(gf_gguf_get_f64(g, "t.f64", &f64) == 0 && f64 == -2.25);
    CHECK(gf_gguf_get_f64(g, "t.u8", &f64) == 0 && f64 == 200.0);
    CHECK(gf_gguf_get_bool(g, "t.bool", &b) == 0 && b);
    CHECK(gf_gguf_get_bool(g, "t.u8", &b) == GF_EFORMAT);
    CHECK(gf_gguf_get_u32(g, "t.f32", &u32) == GF_EFORMAT);
    CHECK(gf_gguf_get_str(g, "t.u8", &s, &len) == GF_EFORMAT);
    CHECK(gf_gguf_get_u32(g, "nope", &u32) == GF_ENOTFOUND);
    CHECK(gf_gguf_get_str(g, "t.bin", &s, &len) == 0 && len == 4 && memcmp(s, "a\0b\xff", 4) == 0);
    CHECK(gf_gguf_get_str(g, "t.empty", &s, &len) == 0 && len == 0);
    struct gf_gguf_arr a;
    CHECK(gf_gguf_get_arr(g, "t.u8", &a) == GF_EFORMAT);
    CHECK(gf_gguf_get_arr(g, "nope", &a) == GF_ENOTFOUND);
    if (gf_gguf_get_arr(g, "t.arr.str", &a) == 0) {
        CHECK(a.elem_type == GF_GGUF_TYPE_STRING && a.n == 4);
        CHECK(gf_gguf_arr_str(&a, 2, &s, &len) == 0 && len == 6 &&
              memcmp(s, "\xe2\x96\x81the", 6) == 0);
        CHECK(gf_gguf_arr_str(&a, 1, &s, &len) == 0 && len == 0);
        CHECK(gf_gguf_arr_str(&a, 3, &s, &len) == 0 && len == 1 && s[0] == 'z');
        CHECK(gf_gguf_arr_str(&a, 4, &s, &len) == GF_EINVAL);
        CHECK(gf_gguf_arr_f64(&a, 0, &f64) == GF_EFORMAT);
    } else {
        CHECK(!"t.arr.str");
    }
    CHECK(gf_gguf_get_arr(g, "t.arr.f32", &a) == 0 && a.n == 3 &&
          a.elem_type == GF_GGUF_TYPE_FLOAT32);
    CHECK(gf_gguf_arr_f64(&a, 2, &f64) == 0 && f64 == 3.25);
    CHECK(gf_gguf_arr_i64(&a, 2, &i64) == GF_EFORMAT);
    CHECK(gf_gguf_arr_str(&a, 0, &s, &len) == GF_EFORMAT);
    CHECK(gf_gguf_get_arr(g, "t.arr.i32", &a) == 0 && a.n == 4);
    CHECK(gf_gguf_arr_i64(&a, 0, &i64) == 0 && i64 == -1);
    CHECK(gf_gguf_arr_i64(&a, 3, &i64) == 0 && i64 == 2147483647);
    CHECK(gf_gguf_get_arr(g, "t.arr.bool", &a) == 0 && a.n == 2);
    CHECK(gf_gguf_arr_i64(&a, 0, &i64) == 0 && i64 == 1);
    CHECK(gf_gguf_get_arr(g, "t.arr.u64", &a) == 0 && a.n == 1);
    CHECK(gf_gguf_arr_i64(&a, 0, &i64) == GF_EFORMAT);
    CHECK(gf_gguf_arr_f64(&a, 0, &f64) == 0 && f64 == 18446744073709551615.0);
    CHECK(gf_gguf_get_arr(g, "t.arr.f64", &a) == 0 && a.n == 2);
    CHECK(gf_gguf_arr_f64(&a, 0, &f64) == 0 && f64 == 1e300);
    CHECK(gf_gguf_get_arr(g, "t.arr.i16", &a) == 0 && gf_gguf_arr_i64(&a, 0, &i64) == 0 &&
          i64 == -5);
    CHECK(gf_gguf_get_arr(g, "t.arr.empty", &a) == 0 && a.n == 0 &&
          gf_gguf_arr_i64(&a, 0, &i64) == GF_EINVAL);
    // Listing by index sees every key in order.
    long ai = gf_gguf_find_key(g, "t.u16");
    CHECK(ai >= 0 && strcmp(gf_gguf_kv_key(g, (size_t)ai), "t.u16") == 0 &&
          gf_gguf_kv_type(g, (size_t)ai) == GF_GGUF_TYPE_UINT16);
    struct gf_gguf_value v;
    gf_gguf_kv_value(g, (size_t)ai, &v);
    CHECK(v.type == GF_GGUF_TYPE_UINT16 && v.num.u == 60000);

    CHECK(gf_gguf_n_tensors(g) == GF_ARRAY_LEN(tensor_types));
    for (size_t i = 0; i < GF_ARRAY_LEN(tensor_types); i++) {
        int t = tensor_types[i];
        char name[32];
        snprintf(name, sizeof(name), "w.%s", gf_tensor_type_name(t));
        const struct gf_gguf_tensor *ti = gf_gguf_find_tensor(g, name);
        REQUIRE(ti != NULL);
        CHECK(ti == gf_gguf_tensor_at(g, i));
        CHECK(ti->type == t && ti->n_dims == 2 && ti->ne[0] == 32 && ti->ne[1] == 2 &&
              ti->ne[2] == 1 && ti->ne[3] == 1);
        CHECK(ti->nbytes == 2 * gf_tensor_row_bytes(t, 32));
        CHECK(ti->offset % gf_gguf_alignment(g) == 0);
        CHECK((const uint8_t *)ti->data == (const uint8_t *)gf_gguf_base(g) + ti->offset);
        float out[64];
        CHECK(gf_dequantize(t, ti->data, out, 64) == 0);
        // Error bound of each type on values in [-1, 1].
        float tol = t == GF_TYPE_F32 ? 0.0f
                    : t == GF_TYPE_F16 ? 1e-3f
                    : t == GF_TYPE_BF16 ? 8e-3f
                    : t == GF_TYPE_Q8_0 ? 8e-3f
                    : t == GF_TYPE_Q5_0 || t == GF_TYPE_Q5_1 ? 0.07f
                                                             : 0.14f;
        float maxerr = 0;
        for (int k = 0; k < 64; k++)
            maxerr = fmaxf(maxerr, fabsf(out[k] - src[k]));
        CHECK_MSG(maxerr <= tol, "%s: max error %g > %g", name, maxerr, tol);
    }
    CHECK(gf_gguf_find_tensor(g, "w.nope") == NULL);
}

static void test_round_trip(void)
{
    static const uint32_t aligns[] = {0, 1, 64, 4096};
    for (size_t ai = 0; ai < GF_ARRAY_LEN(aligns); ai++) {
        float src[64];
        uint32_t seed = 7;
        for (int i = 0; i < 64; i++)
            src[i] = frand(&seed);
        uint8_t qbuf[GF_ARRAY_LEN(tensor_types)][64 * 4];
        struct gf_gguf_writer *w = build_all(aligns[ai], src, qbuf);
        REQUIRE(w != NULL);
        void *mem = NULL;
        size_t len = 0;
        REQUIRE(gf_gguf_writer_write_mem(w, &mem, &len) == 0);
        struct gf_gguf *g = NULL;
        struct gf_err err = {0};
        CHECK_MSG(gf_gguf_open_mem(mem, len, &g, &err) == 0, "%s", err.msg);
        if (g != NULL)
            check_all(g, src, aligns[ai]);
        gf_gguf_close(g);
        if (aligns[ai] == 64)
            save_corpus("valid-all-types.gguf", mem, len);

        // The same through a file, atomically.
        char path[] = "/tmp/gf-test-gguf-XXXXXX";
        int fd = mkstemp(path);
        REQUIRE(fd >= 0);
        close(fd);
        CHECK(gf_gguf_writer_write(w, path, &err) == 0);
        g = NULL;
        CHECK_MSG(gf_gguf_open(path, &g, &err) == 0, "%s", err.msg);
        if (g != NULL) {
            CHECK(gf_gguf_file_size(g) == len);
            CHECK(memcmp(gf_gguf_base(g), mem, len) == 0);
            check_all(g, src, aligns[ai]);
        }
        gf_gguf_close(g);
        unlink(path);
        gf_free(mem);
        gf_gguf_writer_free(w);
    }
}

static void test_writer_refusals(void)
{
    struct gf_gguf_writer *w = gf_gguf_writer_new();
    REQUIRE(w != NULL);
    CHECK(gf_gguf_writer_add_u32(w, "k", 1) == 0);
    CHECK(gf_gguf_writer_add_u32(w, "k", 2) == GF_EINVAL);
    CHECK(gf_gguf_writer_add_str(w, "k", "x", 1) == GF_EINVAL);
    CHECK(gf_gguf_writer_add_u32(w, "", 2) == GF_EINVAL);
    CHECK(gf_gguf_writer_add_u32(w, "general.alignment", 48) == GF_EINVAL);
    CHECK(gf_gguf_writer_add_u64(w, "general.alignment", 64) == GF_EINVAL);
    CHECK(gf_gguf_writer_add_arr(w, "a", GF_GGUF_TYPE_STRING, "x", 1) == GF_EINVAL);
    uint8_t bad_bool = 2;
    CHECK(gf_gguf_writer_add_arr(w, "a", GF_GGUF_TYPE_BOOL, &bad_bool, 1) == GF_EINVAL);
    float x[64] = {0};
    uint64_t ne[5] = {32, 1, 1, 1, 1};
    CHECK(gf_gguf_writer_add_tensor(w, "t", GF_TYPE_F32, 1, ne, x, 128, true) == 0);
    CHECK(gf_gguf_writer_add_tensor(w, "t", GF_TYPE_F32, 1, ne, x, 128, true) == GF_EINVAL);
    CHECK(gf_gguf_writer_add_tensor(w, "u", GF_TYPE_F32, 1, ne, x, 127, true) == GF_EINVAL);
    CHECK(gf_gguf_writer_add_tensor(w, "u", GF_TYPE_F32, 5, ne, x, 128, true) == GF_EINVAL);
    CHECK(gf_gguf_writer_add_tensor(w, "u", 4, 1, ne, x, 128, true) == GF_EINVAL);
    uint64_t ne33[1] = {33};
    CHECK(gf_gguf_writer_add_tensor(w, "u", GF_TYPE_Q8_0, 1, ne33, x, 36, true) == GF_EINVAL);
    // A failed add leaves the writer usable and the file valid.
    void *mem;
    size_t len;
    REQUIRE(gf_gguf_writer_write_mem(w, &mem, &len) == 0);
    struct gf_gguf *g = NULL;
    CHECK(gf_gguf_open_mem(mem, len, &g, NULL) == 0);
    if (g != NULL)
        CHECK(gf_gguf_n_kv(g) == 1 && gf_gguf_n_tensors(g) == 1);
    gf_gguf_close(g);
    gf_free(mem);
    struct gf_err err = {0};
    CHECK(gf_gguf_writer_write(w, "/nonexistent-dir/x.gguf", &err) == GF_EIO);
    CHECK(strstr(err.msg, "/nonexistent-dir/x.gguf") != NULL);
    gf_gguf_writer_free(w);
    gf_gguf_writer_free(NULL);
    gf_gguf_close(NULL);
}

/* A small valid file: a few keys, a string array and two tensors. */
static int small_valid(void **mem, size_t *len)
{
    struct gf_gguf_writer *w = gf_gguf_writer_new();
    if (w == NULL)
        return GF_ENOMEM;
    const char *toks[] = {"<unk>", "<s>", "a"};
    float data[32], scores[3] = {0, 0, -1};
    for (int i = 0; i < 32; i++)
        data[i] = (float)i;
    uint64_t ne[2] = {8, 4}, ne1[1] = {8};
    int rc = gf_gguf_writer_add_str(w, "general.architecture", "llama", 5);
    rc |= gf_gguf_writer_add_u32(w, "llama.block_count", 1);
    rc |= gf_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 3);
    rc |= gf_gguf_writer_add_arr(w, "tokenizer.ggml.scores", GF_GGUF_TYPE_FLOAT32, scores, 3);
    rc |= gf_gguf_writer_add_tensor(w, "a", GF_TYPE_F32, 2, ne, data, sizeof(data), true);
    rc |= gf_gguf_writer_add_tensor(w, "b", GF_TYPE_F32, 1, ne1, data, 32, true);
    if (rc == 0)
        rc = gf_gguf_writer_write_mem(w, mem, len);
    gf_gguf_writer_free(w);
    return rc;
}

/* A small vocabulary with a chat template, so the fuzz corpus reaches the tokenizer loader. */
static void test_vocab_seed(void)
{
    struct gf_gguf_writer *w = gf_gguf_writer_new();
    REQUIRE(w != NULL);
    const char *toks[] = {"<unk>", "<s>", "</s>", "<0x41>", "<0xE2>", "<0x96>", "<0x81>",
                          "\xe2\x96\x81", "H", "e", "l", "o", "He", "ll", "\xe2\x96\x81He",
                          "<|im_start|>", "<tool>"};
    float scores[17];
    int32_t types[17];
    for (int i = 0; i < 17; i++) {
        scores[i] = -(float)i;
        types[i] = i == 0 ? 2 : i < 3 || i == 15 ? 3 : i < 7 ? 6 : i == 16 ? 4 : 1;
    }
    static const char tmpl[] = "{{ '<|im_start|>' + message['role'] }}";
    int rc = gf_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama", 5);
    rc |= gf_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 17);
    rc |= gf_gguf_writer_add_arr(w, "tokenizer.ggml.scores", GF_GGUF_TYPE_FLOAT32, scores, 17);
    rc |= gf_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GF_GGUF_TYPE_INT32, types, 17);
    rc |= gf_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    rc |= gf_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", true);
    rc |= gf_gguf_writer_add_str(w, "tokenizer.chat_template", tmpl, sizeof(tmpl) - 1);
    void *mem = NULL;
    size_t len;
    if (rc == 0)
        rc = gf_gguf_writer_write_mem(w, &mem, &len);
    CHECK(rc == 0);
    struct gf_gguf *g = NULL;
    CHECK(rc == 0 && gf_gguf_open_mem(mem, len, &g, NULL) == 0);
    gf_gguf_close(g);
    if (rc == 0)
        save_corpus("valid-vocab.gguf", mem, len);
    gf_free(mem);
    gf_gguf_writer_free(w);
}

static void test_truncation(void)
{
    void *mem;
    size_t len;
    REQUIRE(small_valid(&mem, &len) == 0);
    save_corpus("valid-small.gguf", mem, len);
    struct gf_gguf *g = NULL;
    REQUIRE(gf_gguf_open_mem(mem, len, &g, NULL) == 0);
    const struct gf_gguf_tensor *b = gf_gguf_find_tensor(g, "b");
    REQUIRE(b != NULL);
    uint64_t end = b->offset + b->nbytes;  // the file may be cut after this: only padding
    gf_gguf_close(g);
    int refused = 0;
    for (size_t cut = 0; cut < len; cut++) {
        // A fresh heap copy of exactly cut bytes, so ASan catches any read past the end.
        uint8_t *copy = malloc(cut ? cut : 1);
        REQUIRE(copy != NULL);
        memcpy(copy, mem, cut);
        struct gf_err err = {0};
        int rc = gf_gguf_open_mem(copy, cut, &g, &err);
        if (cut < end) {
            CHECK_MSG(rc == GF_EFORMAT, "cut at %zu: rc %d", cut, rc);
            refused += rc == GF_EFORMAT;
        } else {
            CHECK_MSG(rc == 0, "cut at %zu: %s", cut, err.msg);
        }
        gf_gguf_close(rc == 0 ? g : NULL);
        free(copy);
    }
    CHECK(refused == (int)end);

    // Version 2 has the same layout: the same bytes with version 2 open alike.
    uint8_t *v2 = malloc(len);
    REQUIRE(v2 != NULL);
    memcpy(v2, mem, len);
    v2[4] = 2;
    g = NULL;
    CHECK(gf_gguf_open_mem(v2, len, &g, NULL) == 0);
    if (g != NULL)
        CHECK(gf_gguf_version(g) == 2 && gf_gguf_n_tensors(g) == 2 && gf_gguf_n_kv(g) == 4);
    gf_gguf_close(g);
    free(v2);

    // The smallest valid file: a header with no keys and no tensors.
    struct raw r;
    r_head(&r, 3, 0, 0);
    struct gf_err err = {0};
    g = NULL;
    CHECK_MSG(gf_gguf_open_mem(r.b, r.n, &g, &err) == 0, "%s", err.msg);
    if (g != NULL)
        CHECK(gf_gguf_n_kv(g) == 0 && gf_gguf_n_tensors(g) == 0 &&
              gf_gguf_find_key(g, "x") == -1 && gf_gguf_find_tensor(g, "x") == NULL);
    gf_gguf_close(g);
    save_corpus("valid-empty.gguf", r.b, r.n);
    gf_free(mem);
}

static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    void *mem;
    size_t len;
    REQUIRE(small_valid(&mem, &len) == 0);
    int steps = 0;
    for (long n = 1; n < 1000; n++) {
        struct gf_gguf *g = NULL;
        struct gf_err err = {0};
        gf_alloc_fail_after(n, false);
        int rc = gf_gguf_open_mem(mem, len, &g, &err);
        long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        if (failed == 0) {
            CHECK(rc == 0);
            gf_gguf_close(g);
            break;
        }
        CHECK_MSG(rc == GF_ENOMEM && g == NULL, "step %ld: rc %d %s", n, rc, err.msg);
        steps++;
    }
    CHECK(steps >= 3);
    // The mapped-file path, and the atomic file writer (no temporary file may be left behind).
    char path[] = "/tmp/gf-test-gguf-oom-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    CHECK(write(fd, mem, len) == (ssize_t)len);
    close(fd);
    for (long n = 1; n < 1000; n++) {
        struct gf_gguf *g = NULL;
        gf_alloc_fail_after(n, false);
        int rc = gf_gguf_open(path, &g, NULL);
        long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        gf_gguf_close(g);
        if (failed == 0) {
            CHECK(rc == 0);
            break;
        }
        CHECK(rc == GF_ENOMEM && g == NULL);
    }
    struct gf_gguf_writer *w = gf_gguf_writer_new();
    REQUIRE(w != NULL);
    CHECK(gf_gguf_writer_add_str(w, "general.architecture", "llama", 5) == 0);
    for (long n = 1; n < 1000; n++) {
        gf_alloc_fail_after(n, false);
        int rc = gf_gguf_writer_write(w, path, NULL);
        long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        if (failed == 0) {
            CHECK(rc == 0);
            break;
        }
        CHECK(rc == GF_ENOMEM);
    }
    gf_gguf_writer_free(w);
    unlink(path);
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "ls %s.tmp.* >/dev/null 2>&1", path);
    CHECK(system(cmd) != 0);  // no temporary file left
    // The writer, too: every failing step returns GF_ENOMEM and leaks nothing.
    for (long n = 1; n < 1000; n++) {
        gf_alloc_fail_after(n, false);
        void *m2 = NULL;
        size_t l2;
        int rc = small_valid(&m2, &l2);
        long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        if (failed == 0) {
            CHECK(rc == 0 && l2 == len && memcmp(m2, mem, len) == 0);
            gf_free(m2);
            break;
        }
        CHECK_MSG(rc == GF_ENOMEM, "writer step %ld: rc %d", n, rc);
        gf_free(m2);
    }
    gf_free(mem);
}

/* ---- the shared model files ------------------------------------------------------------- */

static struct gf_gguf *open_shared(const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/models/%s", shared_dir, name);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "note: %s absent, its checks are skipped\n", path);
        return NULL;
    }
    struct gf_gguf *g = NULL;
    struct gf_err err = {0};
    int rc = gf_gguf_open(path, &g, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    return g;
}

static int shared_found;

static void test_stories(void)
{
    struct gf_gguf *g = open_shared("stories260K.gguf");
    if (g == NULL)
        return;
    shared_found++;
    CHECK(gf_gguf_version(g) == 3);
    CHECK(gf_gguf_n_kv(g) == 19);
    CHECK(gf_gguf_n_tensors(g) == 48);
    uint32_t u;
    CHECK(gf_gguf_get_u32(g, "llama.context_length", &u) == 0 && u == 128);
    CHECK(gf_gguf_get_u32(g, "llama.embedding_length", &u) == 0 && u == 64);
    CHECK(gf_gguf_get_u32(g, "llama.block_count", &u) == 0 && u == 5);
    CHECK(gf_gguf_get_u32(g, "llama.feed_forward_length", &u) == 0 && u == 172);
    CHECK(gf_gguf_get_u32(g, "llama.attention.head_count", &u) == 0 && u == 8);
    CHECK(gf_gguf_get_u32(g, "llama.attention.head_count_kv", &u) == 0 && u == 4);
    CHECK(gf_gguf_get_u32(g, "general.file_type", &u) == GF_ENOTFOUND);
    CHECK(gf_gguf_get_u32(g, "tokenizer.ggml.seperator_token_id", &u) == 0 && u == 4294967295u);
    const char *s;
    size_t len;
    CHECK(gf_gguf_get_str(g, "tokenizer.ggml.model", &s, &len) == 0 && len == 5 &&
          memcmp(s, "llama", 5) == 0);
    CHECK(gf_gguf_get_str(g, "general.architecture", &s, &len) == 0 && len == 5 &&
          memcmp(s, "llama", 5) == 0);
    struct gf_gguf_arr a;
    CHECK(gf_gguf_get_arr(g, "tokenizer.ggml.tokens", &a) == 0 && a.n == 512 &&
          a.elem_type == GF_GGUF_TYPE_STRING);
    CHECK(gf_gguf_arr_str(&a, 403, &s, &len) == 0 && len == 7 &&
          memcmp(s, "\xe2\x96\x81Once", 7) == 0);
    CHECK(gf_gguf_arr_str(&a, 13, &s, &len) == 0 && len == 6 && memcmp(s, "<0x0A>", 6) == 0);
    int64_t tt;
    CHECK(gf_gguf_get_arr(g, "tokenizer.ggml.token_type", &a) == 0 && a.n == 512);
    CHECK(gf_gguf_arr_i64(&a, 0, &tt) == 0 && tt == 2);
    CHECK(gf_gguf_arr_i64(&a, 1, &tt) == 0 && tt == 3);
    CHECK(gf_gguf_arr_i64(&a, 3, &tt) == 0 && tt == 6);
    CHECK(gf_gguf_arr_i64(&a, 300, &tt) == 0 && tt == 1);
    CHECK(gf_gguf_get_arr(g, "tokenizer.ggml.scores", &a) == 0 && a.n == 512 &&
          a.elem_type == GF_GGUF_TYPE_FLOAT32);
    int all_f32 = 1;
    for (size_t i = 0; i < gf_gguf_n_tensors(g); i++)
        all_f32 &= gf_gguf_tensor_at(g, i)->type == GF_TYPE_F32;
    CHECK(all_f32);
    const struct gf_gguf_tensor *t = gf_gguf_find_tensor(g, "token_embd.weight");
    CHECK(t != NULL && t->n_dims == 2 && t->ne[0] == 64 && t->ne[1] == 512 &&
          t->nbytes == 64 * 512 * 4);
    const struct gf_gguf_tensor *o = gf_gguf_find_tensor(g, "output.weight");
    CHECK(o != NULL && t != NULL && memcmp(o->data, t->data, t->nbytes) == 0);
    t = gf_gguf_find_tensor(g, "blk.4.ffn_down.weight");
    CHECK(t != NULL && t->ne[0] == 172 && t->ne[1] == 64);
    gf_gguf_close(g);
}

static void test_tiny_random(void)
{
    struct gf_gguf *g = open_shared("llama-2-tiny-random.gguf");
    if (g == NULL)
        return;
    shared_found++;
    CHECK(gf_gguf_version(g) == 3);
    CHECK(gf_gguf_n_tensors(g) == 12);
    const char *s;
    size_t len;
    CHECK(gf_gguf_get_str(g, "general.name", &s, &len) == 0 && len == 8 &&
          memcmp(s, "LLaMA v2", 8) == 0);
    uint32_t u;
    float f;
    CHECK(gf_gguf_get_u32(g, "general.file_type", &u) == 0 && u == 1);
    CHECK(gf_gguf_get_u32(g, "llama.block_count", &u) == 0 && u == 1);
    CHECK(gf_gguf_get_u32(g, "llama.embedding_length", &u) == 0 && u == 8);
    CHECK(gf_gguf_get_u32(g, "llama.feed_forward_length", &u) == 0 && u == 32);
    CHECK(gf_gguf_get_u32(g, "llama.attention.head_count", &u) == 0 && u == 2);
    CHECK(gf_gguf_get_u32(g, "llama.rope.dimension_count", &u) == 0 && u == 4);
    CHECK(gf_gguf_get_u32(g, "llama.context_length", &u) == 0 && u == 4096);
    CHECK(gf_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &f) == 0 &&
          fabsf(f - 1e-5f) < 1e-9f);
    CHECK(gf_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u) == 0 && u == 1);
    CHECK(gf_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u) == 0 && u == 2);
    bool b;
    CHECK(gf_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b) == GF_ENOTFOUND);
    const struct gf_gguf_tensor *t = gf_gguf_find_tensor(g, "token_embd.weight");
    CHECK(t != NULL && t->type == GF_TYPE_F16 && t->ne[0] == 8 && t->ne[1] == 32000);
    if (t != NULL) {
        float row[8];
        CHECK(gf_dequantize(t->type, (const uint8_t *)t->data + 31999 * 16, row, 8) == 0);
        int finite = 1;
        for (int i = 0; i < 8; i++)
            finite &= isfinite(row[i]);
        CHECK(finite);
    }
    t = gf_gguf_find_tensor(g, "output_norm.weight");
    CHECK(t != NULL && t->type == GF_TYPE_F32 && t->ne[0] == 8);
    t = gf_gguf_find_tensor(g, "blk.0.ffn_down.weight");
    CHECK(t != NULL && t->type == GF_TYPE_F16 && t->ne[0] == 32 && t->ne[1] == 8);
    gf_gguf_close(g);
}

static void test_vocab(void)
{
    struct gf_gguf *g = open_shared("ggml-vocab-llama-spm.gguf");
    if (g == NULL)
        return;
    shared_found++;
    CHECK(gf_gguf_n_tensors(g) == 0);
    const char *s;
    size_t len;
    CHECK(gf_gguf_get_str(g, "tokenizer.ggml.pre", &s, &len) == 0 && len == 7 &&
          memcmp(s, "default", 7) == 0);
    bool b;
    CHECK(gf_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b) == 0 && b);
    CHECK(gf_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b) == 0 && !b);
    struct gf_gguf_arr a;
    CHECK(gf_gguf_get_arr(g, "tokenizer.ggml.tokens", &a) == 0 && a.n == 32000);
    CHECK(gf_gguf_arr_str(&a, 15043, &s, &len) == 0 && len == 8 &&
          memcmp(s, "\xe2\x96\x81Hello", 8) == 0);
    uint32_t u;
    CHECK(gf_gguf_get_u32(g, "tokenizer.ggml.unknown_token_id", &u) == 0 && u == 0);
    gf_gguf_close(g);

    // Not a GGUF file at all: the Modelfile next to it.
    char path[1024];
    snprintf(path, sizeof(path), "%s/models/llama-2-tiny-random.model", shared_dir);
    struct gf_err err = {0};
    g = NULL;
    if (access(path, R_OK) == 0) {
        CHECK(gf_gguf_open(path, &g, &err) == GF_EFORMAT && g == NULL);
        CHECK(strstr(err.msg, "not a GGUF file") != NULL && strstr(err.msg, path) == err.msg);
    }
    err = (struct gf_err){0};
    CHECK(gf_gguf_open("/nonexistent/x.gguf", &g, &err) == GF_EIO);
    err = (struct gf_err){0};
    CHECK(gf_gguf_open("/tmp", &g, &err) == GF_EFORMAT);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--write-corpus") == 0 && i + 1 < argc)
            corpus_dir = argv[++i];
        else
            shared_dir = argv[i];
    }
    RUN(test_round_trip);
    RUN(test_writer_refusals);
    RUN(test_hostile);
    RUN(test_vocab_seed);
    RUN(test_truncation);
    RUN(test_oom);
    RUN(test_stories);
    RUN(test_tiny_random);
    RUN(test_vocab);
    if (shared_found == 0)
        fprintf(stderr, "note: no shared model file found under %s/models\n", shared_dir);
    return test_report();
}
