/* gguf.h — reading and writing GGUF files (the model format of llama.cpp/ggml), and the block
 * formats of its tensor types: dequantization, quantization, sizes and names.
 *
 * The reader is a parser of untrusted files: gf_gguf_open refuses anything that does not follow
 * the format (GF_EFORMAT with a one-line message naming the file, the key or tensor and the
 * offending numbers) and never reads outside the mapping. After a successful open every tensor's
 * data lies inside the file, inside the data section, with no two tensors overlapping, and every
 * string and array of the metadata lies inside the header. A gf_gguf is immutable after open and
 * may be read from several threads at once.
 *
 * GGUF versions 2 and 3 are read (v1 is refused); the writer writes version 3. Files are
 * little-endian; big-endian GGUF files are refused. Used by the embedded engine (engine/llama*.c)
 * and by the trained classifiers (architecture "gardefou-classifier"). */
#ifndef GF_GGUF_H
#define GF_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* ---- metadata value types (the numbering of the file format) --------------------------- */

enum gf_gguf_type {
    GF_GGUF_TYPE_UINT8 = 0,
    GF_GGUF_TYPE_INT8 = 1,
    GF_GGUF_TYPE_UINT16 = 2,
    GF_GGUF_TYPE_INT16 = 3,
    GF_GGUF_TYPE_UINT32 = 4,
    GF_GGUF_TYPE_INT32 = 5,
    GF_GGUF_TYPE_FLOAT32 = 6,
    GF_GGUF_TYPE_BOOL = 7,
    GF_GGUF_TYPE_STRING = 8,
    GF_GGUF_TYPE_ARRAY = 9,
    GF_GGUF_TYPE_UINT64 = 10,
    GF_GGUF_TYPE_INT64 = 11,
    GF_GGUF_TYPE_FLOAT64 = 12,
    GF_GGUF_TYPE_COUNT
};

/* A static name for a metadata value type ("uint32", "string", ...; "?" when unknown). */
const char *gf_gguf_type_name(int type);

/* ---- tensor types (ggml's numbering) ---------------------------------------------------- */

/* The reader accepts every type of this list (it knows their block sizes, so it can check that
 * each tensor fits); ids not listed (the removed 4, 5, 31-33, 36-38, or past the end) are refused
 * at open. gf_dequantize implements a subset: see gf_tensor_type_can_dequantize. */
enum gf_tensor_type {
    GF_TYPE_F32 = 0,
    GF_TYPE_F16 = 1,
    GF_TYPE_Q4_0 = 2,
    GF_TYPE_Q4_1 = 3,
    GF_TYPE_Q5_0 = 6,
    GF_TYPE_Q5_1 = 7,
    GF_TYPE_Q8_0 = 8,
    GF_TYPE_Q8_1 = 9,
    GF_TYPE_Q2_K = 10,
    GF_TYPE_Q3_K = 11,
    GF_TYPE_Q4_K = 12,
    GF_TYPE_Q5_K = 13,
    GF_TYPE_Q6_K = 14,
    GF_TYPE_Q8_K = 15,
    GF_TYPE_IQ2_XXS = 16,
    GF_TYPE_IQ2_XS = 17,
    GF_TYPE_IQ3_XXS = 18,
    GF_TYPE_IQ1_S = 19,
    GF_TYPE_IQ4_NL = 20,
    GF_TYPE_IQ3_S = 21,
    GF_TYPE_IQ2_S = 22,
    GF_TYPE_IQ4_XS = 23,
    GF_TYPE_I8 = 24,
    GF_TYPE_I16 = 25,
    GF_TYPE_I32 = 26,
    GF_TYPE_I64 = 27,
    GF_TYPE_F64 = 28,
    GF_TYPE_IQ1_M = 29,
    GF_TYPE_BF16 = 30,
    GF_TYPE_TQ1_0 = 34,
    GF_TYPE_TQ2_0 = 35,
    GF_TYPE_MXFP4 = 39,
    GF_TYPE_COUNT = 40
};

/* Block layouts (elements per block, bytes per block) of the types gf_dequantize handles:
 *   F32 1/4, F16 1/2, BF16 1/2,
 *   Q4_0 32/18 {f16 d; u8 qs[16]}            x = (nibble - 8) * d
 *   Q4_1 32/20 {f16 d, m; u8 qs[16]}         x = nibble * d + m
 *   Q5_0 32/22 {f16 d; u8 qh[4]; u8 qs[16]}  x = (5-bit - 16) * d
 *   Q5_1 32/24 {f16 d, m; u8 qh[4]; qs[16]}  x = 5-bit * d + m
 *   Q8_0 32/34 {f16 d; i8 qs[32]}            x = q * d
 *   Q2_K/Q3_K/Q4_K/Q5_K/Q6_K/Q8_K 256 per super-block (84/110/144/176/210/292 bytes), as
 *   ggml defines them (decoded only: gf_quantize does not write K types).
 * In Q4_0/Q4_1 element j of a block is the low nibble of qs[j] and element j+16 the high one. */
#define GF_QK 32   // elements per block of the *_0 and *_1 types
#define GF_QK_K 256 // elements per super-block of the K types

/* A static name for a tensor type ("F32", "Q8_0", ...); "?" for an unknown id. */
const char *gf_tensor_type_name(int type);
/* Parses a type name, case-insensitively ("q8_0" -> GF_TYPE_Q8_0); GF_EINVAL if unknown. */
int gf_tensor_type_parse(const char *name, int *type);
/* True when type is one of enum gf_tensor_type. */
bool gf_tensor_type_valid(int type);
/* Elements per block (1 for plain types) and bytes per block; 0 for an unknown type. */
uint64_t gf_tensor_block_elems(int type);
uint64_t gf_tensor_block_bytes(int type);
/* Bytes of a row of n elements of type, or 0 when type is unknown, n is not a multiple of the
 * block size, or the size would overflow. */
uint64_t gf_tensor_row_bytes(int type, uint64_t n);
/* True when gf_dequantize handles type (gf_quantize handles the non-K ones among them). */
bool gf_tensor_type_can_dequantize(int type);

/* Converts n elements (a multiple of the type's block size) from src to floats in dst.
 * Bit-exact with ggml's reference dequantizers. Returns 0, GF_EINVAL when n is not a whole
 * number of blocks or type is unknown, GF_EUNSUPPORTED when type is valid but not implemented. */
int gf_dequantize(int type, const void *src, float *dst, uint64_t n);
/* Converts n floats to type (F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), writing
 * gf_tensor_row_bytes(type, n) bytes to dst. Matches ggml's reference quantizers (the
 * quantize_row_*_ref functions). Same return codes as gf_dequantize. */
int gf_quantize(int type, const float *src, void *dst, uint64_t n);

/* IEEE half and bfloat16 conversions (round to nearest even; NaN stays NaN). */
float gf_fp16_to_fp32(uint16_t h);
uint16_t gf_fp32_to_fp16(float f);
float gf_bf16_to_fp32(uint16_t h);
uint16_t gf_fp32_to_bf16(float f);

/* ---- reader ----------------------------------------------------------------------------- */

/* Limits the reader enforces; a file past any of them is refused with GF_EFORMAT. */
#define GF_GGUF_MAX_TENSORS   65536      // tensors per file
#define GF_GGUF_MAX_KV        65536      // metadata key/values per file
#define GF_GGUF_MAX_KEY       1024       // bytes of a key
#define GF_GGUF_MAX_NAME      256        // bytes of a tensor name
#define GF_GGUF_MAX_STRING    (64u << 20) // bytes of a string value
#define GF_GGUF_MAX_DIMS      4
#define GF_GGUF_MAX_ALIGNMENT 65536      // general.alignment: a power of two in [1, this]
#define GF_GGUF_DEFAULT_ALIGNMENT 32

struct gf_gguf;

/* One tensor. All fields are borrowed from the gf_gguf and valid until gf_gguf_close. */
struct gf_gguf_tensor {
    const char *name;  // NUL-terminated, unique in the file
    int type;          // enum gf_tensor_type
    int n_dims;        // 1..4
    uint64_t ne[4];    // elements per dimension, ne[0] fastest (a row); unused ones are 1
    const void *data;  // inside the mapping, aligned to the file's alignment from its start
    uint64_t nbytes;   // gf_tensor_row_bytes(type, ne[0]) * ne[1] * ne[2] * ne[3]
    uint64_t offset;   // of the data, from the start of the file
};

/* Opens path read-only and maps it. On success *out owns the mapping (gf_gguf_close releases
 * it) and returns 0; otherwise returns GF_EIO (cannot open/map), GF_EFORMAT (not a valid GGUF;
 * err->msg starts with the path), or GF_ENOMEM, and *out is NULL. */
int gf_gguf_open(const char *path, struct gf_gguf **out, struct gf_err *err);
/* Like gf_gguf_open over a caller's buffer, which is borrowed: it must stay unchanged and alive
 * until gf_gguf_close. Messages start with "(memory)". */
int gf_gguf_open_mem(const void *data, size_t len, struct gf_gguf **out, struct gf_err *err);
/* Unmaps and frees; NULL is a no-op. Every pointer obtained from g becomes invalid. */
void gf_gguf_close(struct gf_gguf *g);
/* Tells the system that [p, p + len), bytes of g's data, will not be read for a while: the
 * memory pages wholly inside it are released from this process (they are read again from the
 * file if they are used). The data stay valid. A no-op for a buffer of gf_gguf_open_mem. */
void gf_gguf_release_pages(const struct gf_gguf *g, const void *p, size_t len);

uint32_t gf_gguf_version(const struct gf_gguf *g);
uint64_t gf_gguf_alignment(const struct gf_gguf *g);
/* Offset of the data section from the start of the file, and the file's size. */
uint64_t gf_gguf_data_offset(const struct gf_gguf *g);
uint64_t gf_gguf_file_size(const struct gf_gguf *g);
/* The start of the file (the mapping or the caller's buffer); borrowed. */
const void *gf_gguf_base(const struct gf_gguf *g);

/* -- metadata -- */

/* An array value. Borrowed from the gf_gguf; valid until gf_gguf_close. */
struct gf_gguf_arr {
    const struct gf_gguf *g;
    int elem_type;      // enum gf_gguf_type, never ARRAY (nested arrays are refused at open)
    uint64_t n;         // number of elements
    const void *data;   // numeric/bool arrays: the packed little-endian elements (unaligned)
    size_t kv;          // index of the key/value holding it
};

/* A value of any type, for listing metadata (gf_gguf_kv_value). */
struct gf_gguf_value {
    int type;                 // enum gf_gguf_type
    union {
        uint64_t u;           // UINT8..UINT64, BOOL (0/1)
        int64_t i;            // INT8..INT64
        double f;             // FLOAT32, FLOAT64
    } num;
    const char *str;          // STRING: borrowed, not NUL-terminated
    size_t len;
    struct gf_gguf_arr arr;   // ARRAY
};

size_t gf_gguf_n_kv(const struct gf_gguf *g);
/* Key i (NUL-terminated, borrowed), its type, its value; i < gf_gguf_n_kv. */
const char *gf_gguf_kv_key(const struct gf_gguf *g, size_t i);
int gf_gguf_kv_type(const struct gf_gguf *g, size_t i);
void gf_gguf_kv_value(const struct gf_gguf *g, size_t i, struct gf_gguf_value *v);
/* Index of key, or -1 when absent. Keys are unique (duplicates are refused at open). */
long gf_gguf_find_key(const struct gf_gguf *g, const char *key);

/* Typed getters. Each returns 0 and stores the value, GF_ENOTFOUND when the key is absent, or
 * GF_EFORMAT when its type does not fit: the integer getters take any integer type whose value
 * fits the result, gf_gguf_get_f32/f64 take FLOAT32/FLOAT64 (and integers), gf_gguf_get_bool
 * only BOOL, gf_gguf_get_str only STRING. Strings are borrowed from the file (not
 * NUL-terminated; *len bytes) and valid until gf_gguf_close. */
int gf_gguf_get_u32(const struct gf_gguf *g, const char *key, uint32_t *out);
int gf_gguf_get_i32(const struct gf_gguf *g, const char *key, int32_t *out);
int gf_gguf_get_u64(const struct gf_gguf *g, const char *key, uint64_t *out);
int gf_gguf_get_i64(const struct gf_gguf *g, const char *key, int64_t *out);
int gf_gguf_get_f32(const struct gf_gguf *g, const char *key, float *out);
int gf_gguf_get_f64(const struct gf_gguf *g, const char *key, double *out);
int gf_gguf_get_bool(const struct gf_gguf *g, const char *key, bool *out);
int gf_gguf_get_str(const struct gf_gguf *g, const char *key, const char **s, size_t *len);
/* Array getter: GF_ENOTFOUND, or GF_EFORMAT when the value is not an array. */
int gf_gguf_get_arr(const struct gf_gguf *g, const char *key, struct gf_gguf_arr *out);

/* Element i of an array. gf_gguf_arr_str needs a STRING array (borrowed pointer + length);
 * gf_gguf_arr_f64 takes any numeric or bool array; gf_gguf_arr_i64 any integer or bool array
 * (UINT64 values past INT64_MAX give GF_EFORMAT). Returns GF_EINVAL when i >= n, GF_EFORMAT
 * when the element type does not fit. */
int gf_gguf_arr_str(const struct gf_gguf_arr *a, uint64_t i, const char **s, size_t *len);
int gf_gguf_arr_f64(const struct gf_gguf_arr *a, uint64_t i, double *out);
int gf_gguf_arr_i64(const struct gf_gguf_arr *a, uint64_t i, int64_t *out);

/* -- tensors -- */

size_t gf_gguf_n_tensors(const struct gf_gguf *g);
/* Tensor i in file order (i < gf_gguf_n_tensors), borrowed. */
const struct gf_gguf_tensor *gf_gguf_tensor_at(const struct gf_gguf *g, size_t i);
/* The tensor called name, or NULL. */
const struct gf_gguf_tensor *gf_gguf_find_tensor(const struct gf_gguf *g, const char *name);

/* ---- writer ----------------------------------------------------------------------------- */

/* Builds a GGUF v3 file in memory order: metadata in the order added, then tensor infos and
 * the data, each tensor aligned to general.alignment (if added as a UINT32, else 32). */
struct gf_gguf_writer;

/* Returns a new empty writer, or NULL on allocation failure. Free with gf_gguf_writer_free. */
struct gf_gguf_writer *gf_gguf_writer_new(void);
void gf_gguf_writer_free(struct gf_gguf_writer *w);

/* Adds a scalar key/value. key is copied. Returns 0, GF_EINVAL for a duplicate key, an empty
 * or over-long key, or general.alignment that is not a power-of-two UINT32 within the limits;
 * GF_ENOMEM. */
int gf_gguf_writer_add_u8(struct gf_gguf_writer *w, const char *key, uint8_t v);
int gf_gguf_writer_add_i8(struct gf_gguf_writer *w, const char *key, int8_t v);
int gf_gguf_writer_add_u16(struct gf_gguf_writer *w, const char *key, uint16_t v);
int gf_gguf_writer_add_i16(struct gf_gguf_writer *w, const char *key, int16_t v);
int gf_gguf_writer_add_u32(struct gf_gguf_writer *w, const char *key, uint32_t v);
int gf_gguf_writer_add_i32(struct gf_gguf_writer *w, const char *key, int32_t v);
int gf_gguf_writer_add_u64(struct gf_gguf_writer *w, const char *key, uint64_t v);
int gf_gguf_writer_add_i64(struct gf_gguf_writer *w, const char *key, int64_t v);
int gf_gguf_writer_add_f32(struct gf_gguf_writer *w, const char *key, float v);
int gf_gguf_writer_add_f64(struct gf_gguf_writer *w, const char *key, double v);
int gf_gguf_writer_add_bool(struct gf_gguf_writer *w, const char *key, bool v);
/* s[0..len) is copied; it may hold any bytes. */
int gf_gguf_writer_add_str(struct gf_gguf_writer *w, const char *key, const char *s, size_t len);
/* A numeric or bool array: n elements of elem_type packed in host (little-endian) order at
 * data (bool elements are bytes 0/1), copied. GF_EINVAL for STRING/ARRAY elem_type. */
int gf_gguf_writer_add_arr(struct gf_gguf_writer *w, const char *key, int elem_type,
                           const void *data, uint64_t n);
/* A string array: strs[i] of lens[i] bytes (lens NULL: NUL-terminated strings), copied. */
int gf_gguf_writer_add_arr_str(struct gf_gguf_writer *w, const char *key,
                               const char *const *strs, const size_t *lens, uint64_t n);

/* Adds a tensor of n_dims (1..4) dimensions ne[0..n_dims) of type; data holds nbytes, which
 * must equal the size the type and dims imply. With copy the data is copied now; otherwise it
 * is borrowed and must stay valid until the writer is written or freed (useful for big
 * tensors). Returns GF_EINVAL for a duplicate or over-long name, bad dims/type/size. */
int gf_gguf_writer_add_tensor(struct gf_gguf_writer *w, const char *name, int type, int n_dims,
                              const uint64_t *ne, const void *data, uint64_t nbytes, bool copy);

/* Writes the file atomically: to a temporary file in the same directory, fsynced, then renamed
 * over path (and the directory fsynced), so readers see the old file or the whole new one.
 * Returns 0, GF_EIO with err set (naming path), or GF_ENOMEM. The writer can be written again. */
int gf_gguf_writer_write(struct gf_gguf_writer *w, const char *path, struct gf_err *err);
/* Serializes the file into memory: *out (caller frees with gf_free) of *len bytes. */
int gf_gguf_writer_write_mem(struct gf_gguf_writer *w, void **out, size_t *len);

#endif
