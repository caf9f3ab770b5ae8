/* fuzz_llama_model.c — feeds arbitrary bytes to the GGUF reader and, when it accepts them, to
 * the Llama model loader; a model it accepts runs a two-token forward pass, so a shape or type
 * check the loader forgot shows up as a sanitizer report. The corpus holds tiny valid models of
 * each weight type (dim 32, one layer, GQA), written by gf_gguf_writer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "engine/gguf.h"
#include "engine/llama_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    // an aligned copy, as a mapped file would be
    void *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    struct gf_gguf *g = NULL;
    struct gf_llm *m = NULL;
    struct gf_llm_ctx *c = NULL;
    struct gf_llm_kv kv = {0};
    struct gf_err err = {0};
    if (gf_gguf_open_mem(buf, size, &g, &err) != 0 || gf_llm_load(g, &m, &err) != 0)
        goto done;
    if (m->hp.dim > 4096 || m->hp.hidden > 16384 || m->hp.n_vocab > 65536)
        goto done;  // valid but too big to run quickly
    if (gf_llm_ctx_new(m, 2, 4, 1, NULL, &c) != 0 || gf_llm_kv_init(&kv, m, 4, GF_KV_F16) != 0)
        goto done;
    float *logits = malloc(sizeof(float) * 2 * (size_t)m->hp.n_vocab);
    if (logits != NULL) {
        int tok[2] = {0, m->hp.n_vocab - 1}, pos[2] = {0, 1};
        struct gf_llm_kv *kvs[2] = {&kv, &kv};
        bool want[2] = {true, true};
        struct gf_llm_batch b = {2, tok, pos, kvs, want, logits};
        gf_llm_forward(c, &b);
        free(logits);
    }
done:
    gf_llm_kv_cleanup(&kv);
    gf_llm_ctx_free(c);
    gf_llm_free(m);
    gf_gguf_close(g);
    free(buf);
    return 0;
}
