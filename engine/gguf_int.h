/* gguf_int.h — the inside of a parsed GGUF file, shared by the reader (gguf.c) and the
 * metadata accessors (gguf_meta.c). Not part of the public surface. */
#ifndef GF_GGUF_INT_H
#define GF_GGUF_INT_H

#include "engine/gguf.h"

/* One key/value. val points into the file: the scalar, the string's bytes, or an array's
 * first element (for string arrays, the first element's length prefix). */
struct gf_gguf_kv {
    const char *key;       // NUL-terminated, in gf_gguf.names
    int type;              // enum gf_gguf_type
    int elem_type;         // ARRAY: element type
    uint64_t n;            // STRING: byte length; ARRAY: element count
    const uint8_t *val;
    uint64_t *str_off;     // string ARRAY: offset of element i's length prefix from val
};

/* Open-addressing hash index of names: slots hold index + 1, 0 = empty. */
struct gf_gguf_index {
    uint32_t *slots;
    size_t mask;
};

struct gf_gguf {
    const uint8_t *base;   // the mapping or the caller's buffer
    size_t size;
    bool mapped;           // base was mmapped by gf_gguf_open and is unmapped on close
    uint32_t version;
    uint64_t alignment;
    uint64_t data_offset;
    size_t n_kv;
    struct gf_gguf_kv *kv;
    size_t n_tensors;
    struct gf_gguf_tensor *tensors;
    char *names;           // all keys and tensor names, NUL-terminated, one allocation
    struct gf_gguf_index kv_index;
    struct gf_gguf_index tensor_index;
};

/* Encoded size of a scalar value type; 0 for STRING, ARRAY or unknown. */
size_t gf_gguf_scalar_size(int type);

#endif
