/* fuzz_gguf.c — feeds arbitrary bytes to the GGUF reader and, when it accepts them, walks
 * everything the accessors can reach (every key, string, array element, tensor byte), so a
 * bounds check the reader forgot shows up as a sanitizer report. Accepted files also go through
 * the vocabulary loader and template choice, which read hostile metadata too. The corpus is written by
 * tests/unit/engine/test_gguf --write-corpus (valid files and the hostile shapes). */
#include <stdint.h>
#include <string.h>

#include "engine/gguf.h"
#include "engine/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile double sink;

static void walk(const struct gf_gguf *g)
{
    double acc = 0;
    for (size_t i = 0; i < gf_gguf_n_kv(g); i++) {
        const char *key = gf_gguf_kv_key(g, i);
        acc += (double)(gf_gguf_find_key(g, key) == (long)i);
        struct gf_gguf_value v;
        gf_gguf_kv_value(g, i, &v);
        if (v.type == GF_GGUF_TYPE_STRING && v.len > 0)
            acc += (uint8_t)v.str[v.len - 1];
        if (v.type != GF_GGUF_TYPE_ARRAY)
            continue;
        for (uint64_t k = 0; k < v.arr.n && k < 100000; k++) {
            const char *s;
            size_t len;
            double d;
            if (gf_gguf_arr_str(&v.arr, k, &s, &len) == 0 && len > 0)
                acc += (uint8_t)s[0] + (uint8_t)s[len - 1];
            if (gf_gguf_arr_f64(&v.arr, k, &d) == 0)
                acc += d;
        }
    }
    float row[1024];
    for (size_t i = 0; i < gf_gguf_n_tensors(g); i++) {
        const struct gf_gguf_tensor *t = gf_gguf_tensor_at(g, i);
        acc += (double)(gf_gguf_find_tensor(g, t->name) == t);
        if (t->nbytes > 0)
            acc += ((const uint8_t *)t->data)[0] + ((const uint8_t *)t->data)[t->nbytes - 1];
        // Dequantize the first row when it is small enough for the stack buffer.
        if (t->ne[0] <= 1024)
            gf_dequantize(t->type, t->data, row, t->ne[0]);
    }
    // The tokenizer's view of the same metadata.
    struct gf_tokenizer *tok = NULL;
    if (gf_tokenizer_from_gguf(g, &tok, NULL) == 0) {
        static const char text[] = "Hello <s> w\xc3\xb6rld \xf0\x9f\xa6\x99 \xff";
        int32_t *ids;
        size_t n;
        if (gf_tokenizer_encode(tok, text, sizeof(text) - 1, GF_TOK_ADD_SPECIAL |
                                GF_TOK_PARSE_SPECIAL, &ids, &n) == 0) {
            struct gf_buf b;
            gf_buf_init(&b, 1 << 20);
            gf_tokenizer_decode(tok, ids, n, GF_DETOK_SPECIAL, &b);
            acc += (double)b.len;
            gf_buf_cleanup(&b);
            gf_free(ids);
        }
        gf_tokenizer_free(tok);
    }
    int tmpl;
    acc += gf_template_choose(g, NULL, &tmpl, NULL);
    sink = acc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gf_gguf *g = NULL;
    struct gf_err err = {0};
    if (gf_gguf_open_mem(data, size, &g, &err) == 0) {
        walk(g);
        gf_gguf_close(g);
    }
    return 0;
}
