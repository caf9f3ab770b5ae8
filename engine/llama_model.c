/* llama_model.c — reads a Llama 2 family model from GGUF metadata and tensors. Invariant: after
 * gf_llm_load succeeds every weight has exactly the shape the hyper-parameters imply and a type
 * the kernels handle, so the forward pass never checks shapes again. Weights point into the
 * file's mapping; nothing is copied. */
#include "engine/llama_int.h"

#include <stdio.h>
#include <string.h>

#include "engine/gemm_int.h"
#include "engine/gguf.h"
#include "engine/kernels_int.h"

#define MAX_DIM     65536
#define MAX_LAYERS  1024
#define MAX_HIDDEN  (1 << 20)
#define MAX_VOCAB   (1 << 22)
#define MAX_CTX     (1 << 22)

static int get_int(const struct gf_gguf *g, const char *key, bool required, int dflt, int lo,
                   int hi, int *out, struct gf_err *err)
{
    int64_t v;
    int rc = gf_gguf_get_i64(g, key, &v);
    if (rc == GF_ENOTFOUND && !required) {
        *out = dflt;
        return 0;
    }
    if (rc == GF_ENOTFOUND)
        return gf_err_set(err, GF_EFORMAT, "missing metadata key %s", key);
    if (rc != 0)
        return gf_err_set(err, GF_EFORMAT, "metadata %s: expected an integer", key);
    if (v < lo || v > hi)
        return gf_err_set(err, GF_EFORMAT, "metadata %s = %lld: expected [%d, %d]", key,
                          (long long)v, lo, hi);
    *out = (int)v;
    return 0;
}

static int get_float(const struct gf_gguf *g, const char *key, float dflt, float lo, float hi,
                     float *out, struct gf_err *err)
{
    double v;
    int rc = gf_gguf_get_f64(g, key, &v);
    if (rc == GF_ENOTFOUND) {
        *out = dflt;
        return 0;
    }
    if (rc != 0)
        return gf_err_set(err, GF_EFORMAT, "metadata %s: expected a number", key);
    if (!(v >= lo && v <= hi))
        return gf_err_set(err, GF_EFORMAT, "metadata %s = %g: expected [%g, %g]", key, v,
                          (double)lo, (double)hi);
    *out = (float)v;
    return 0;
}

static int read_hparams(const struct gf_gguf *g, struct gf_llm_hparams *hp, struct gf_err *err)
{
    const char *arch;
    size_t arch_len;
    if (gf_gguf_get_str(g, "general.architecture", &arch, &arch_len) != 0)
        return gf_err_set(err, GF_EFORMAT, "missing metadata key general.architecture");
    if (arch_len != 5 || memcmp(arch, "llama", 5) != 0)
        return gf_err_set(err, GF_EUNSUPPORTED,
                          "architecture '%.*s' is not supported (only 'llama', the Llama 2 family)",
                          (int)(arch_len > 64 ? 64 : arch_len), arch);
    int rc;
    if ((rc = get_int(g, "llama.embedding_length", true, 0, 1, MAX_DIM, &hp->dim, err)) ||
        (rc = get_int(g, "llama.block_count", true, 0, 1, MAX_LAYERS, &hp->n_layers, err)) ||
        (rc = get_int(g, "llama.feed_forward_length", true, 0, 1, MAX_HIDDEN, &hp->hidden,
                      err)) ||
        (rc = get_int(g, "llama.attention.head_count", true, 0, 1, MAX_DIM, &hp->n_heads, err)))
        return rc;
    if ((rc = get_int(g, "llama.attention.head_count_kv", false, hp->n_heads, 1, hp->n_heads,
                      &hp->n_kv_heads, err)) ||
        (rc = get_int(g, "llama.context_length", false, 2048, 1, MAX_CTX, &hp->n_ctx_train,
                      err)))
        return rc;
    if (hp->dim % hp->n_heads != 0)
        return gf_err_set(err, GF_EFORMAT,
                          "llama.embedding_length %d is not a multiple of head_count %d",
                          hp->dim, hp->n_heads);
    if (hp->n_heads % hp->n_kv_heads != 0)
        return gf_err_set(err, GF_EFORMAT,
                          "llama.attention.head_count %d is not a multiple of head_count_kv %d",
                          hp->n_heads, hp->n_kv_heads);
    hp->head_dim = hp->dim / hp->n_heads;
    if ((rc = get_int(g, "llama.rope.dimension_count", false, hp->head_dim, 2, hp->head_dim,
                      &hp->n_rot, err)))
        return rc;
    if (hp->n_rot % 2 != 0)
        return gf_err_set(err, GF_EFORMAT, "llama.rope.dimension_count %d is odd", hp->n_rot);
    if ((rc = get_float(g, "llama.attention.layer_norm_rms_epsilon", 1e-5f, 0.0f, 1.0f, &hp->eps,
                        err)) ||
        (rc = get_float(g, "llama.rope.freq_base", 10000.0f, 1.0f, 1e12f, &hp->rope_base, err)))
        return rc;
    return 0;
}

static bool kernel_type(int type)
{
    return type == GF_WT_F32 || type == GF_WT_F16 || type == GF_WT_Q8_0 || type == GF_WT_Q4_0;
}

/* Finds name with shape [cols, rows] (GGUF order, cols fastest) and a matrix type. */
static int get_matrix(const struct gf_gguf *g, const char *name, int rows, int cols,
                      struct gf_llm_weight *w, struct gf_err *err)
{
    const struct gf_gguf_tensor *t = gf_gguf_find_tensor(g, name);
    if (t == NULL)
        return gf_err_set(err, GF_EFORMAT, "missing tensor %s", name);
    if (!kernel_type(t->type))
        return gf_err_set(err, GF_EUNSUPPORTED,
                          "tensor %s has type %s; supported: F32, F16, Q8_0, Q4_0", name,
                          gf_tensor_type_name(t->type));
    if (t->n_dims != 2 || t->ne[0] != (uint64_t)cols || t->ne[1] != (uint64_t)rows)
        return gf_err_set(err, GF_EFORMAT,
                          "tensor %s has shape [%llu, %llu, %llu, %llu], expected [%d, %d]", name,
                          (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                          (unsigned long long)t->ne[2], (unsigned long long)t->ne[3], cols, rows);
    size_t rb = gf_wt_row_bytes(t->type, cols);
    if (rb == 0 || (t->type >= GF_WT_Q4_0 && cols % GF_QK != 0) ||
        t->nbytes != (uint64_t)rb * (uint64_t)rows)
        return gf_err_set(err, GF_EFORMAT, "tensor %s: size %llu does not match its shape", name,
                          (unsigned long long)t->nbytes);
    if (((uintptr_t)t->data % (t->type == GF_WT_F32 ? 4u : 2u)) != 0)
        return gf_err_set(err, GF_EFORMAT, "tensor %s is not aligned for its type", name);
    *w = (struct gf_llm_weight){
        .type = t->type, .rows = rows, .cols = cols, .row_bytes = rb, .data = t->data};
    return 0;
}

static int get_norm(const struct gf_gguf *g, const char *name, int n, const float **out,
                    struct gf_err *err)
{
    const struct gf_gguf_tensor *t = gf_gguf_find_tensor(g, name);
    if (t == NULL)
        return gf_err_set(err, GF_EFORMAT, "missing tensor %s", name);
    if (t->type != GF_WT_F32)
        return gf_err_set(err, GF_EUNSUPPORTED, "tensor %s has type %s; norms must be F32", name,
                          gf_tensor_type_name(t->type));
    if (t->n_dims != 1 || t->ne[0] != (uint64_t)n)
        return gf_err_set(err, GF_EFORMAT, "tensor %s has %llu elements in %d dims, expected [%d]",
                          name, (unsigned long long)t->ne[0], t->n_dims, n);
    if (((uintptr_t)t->data % sizeof(float)) != 0)
        return gf_err_set(err, GF_EFORMAT, "tensor %s is not 4-byte aligned", name);
    *out = t->data;
    return 0;
}

static uint64_t wbytes(const struct gf_llm_weight *w)
{
    return (uint64_t)w->row_bytes * (uint64_t)w->rows;
}

/* The weights the integer kernels can read regrouped: Q8_0 and Q4_0 with whole groups of rows
 * (every real model's layer matrices; an odd vocabulary leaves the output projection as it is). */
static bool regroupable(const struct gf_llm_weight *w)
{
    return (w->type == GF_WT_Q8_0 || w->type == GF_WT_Q4_0) && w->rows % GF_GEMM_ROWS == 0;
}

/* Copies every layer matrix and the output projection out of the file's mapping into one
 * buffer on 2 MiB pages (gf_malloc_huge): a decode step streams all of them, and on 4 KiB
 * pages each page costs a TLB miss and restarts the hardware prefetcher (one sequence's step
 * measured 1.5x faster for F32 and Q4_0 weights). Regroupable weights, when this CPU has the
 * integer kernels, are copied regrouped (x16), so that decode steps and prompts read 16 rows'
 * blocks as one stream with no packing; the others keep their layout and data points at the
 * copy. The mapped originals stay valid (the embedding lookup, and the kernels of the other
 * tables, read them) but their pages are released once copied, so the model's memory stays
 * about the size of its weights. */
static int place_weights(struct gf_llm *m)
{
    bool gemm = gf_gemm_get() != NULL;
    struct gf_llm_weight *ws[8];
    size_t total = 0;
    for (int pass = 0; pass < 2; pass++) {
        uint8_t *at = m->wmem;
        for (int l = -1; l < m->hp.n_layers; l++) {
            int n = 0;
            if (l < 0) {
                ws[n++] = &m->output;
            } else {
                struct gf_llm_layer *L = &m->layers[l];
                ws[n++] = &L->wq, ws[n++] = &L->wk, ws[n++] = &L->wv, ws[n++] = &L->wo;
                ws[n++] = &L->gate, ws[n++] = &L->up, ws[n++] = &L->down;
            }
            for (int i = 0; i < n; i++) {
                struct gf_llm_weight *w = ws[i];
                size_t bytes = w->row_bytes * (size_t)w->rows;
                if (pass == 0) {
                    total += bytes;
                    continue;
                }
                const void *mapped = w->data;
                if (gemm && regroupable(w)) {
                    gf_gemm_regroup(w->type, mapped, w->row_bytes, w->rows, w->cols / GF_QK, at);
                    w->x16 = at;
                } else {
                    memcpy(at, mapped, bytes);
                    w->data = at;
                }
                gf_gguf_release_pages(m->gguf, mapped, bytes);
                at += bytes;
            }
        }
        if (pass == 0) {
            if (total == 0)
                return 0;
            if ((m->wmem = gf_malloc_huge(total)) == NULL)
                return GF_ENOMEM;
            m->wmem_bytes = total;
        }
    }
    return 0;
}

int gf_llm_load(struct gf_gguf *g, struct gf_llm **out, struct gf_err *err)
{
    *out = NULL;
    struct gf_llm *m = gf_calloc(1, sizeof(*m));
    if (m == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    m->gguf = g;
    struct gf_llm_hparams *hp = &m->hp;
    int rc = read_hparams(g, hp, err);
    if (rc != 0)
        goto fail;

    const struct gf_gguf_tensor *emb = gf_gguf_find_tensor(g, "token_embd.weight");
    if (emb == NULL) {
        rc = gf_err_set(err, GF_EFORMAT, "missing tensor token_embd.weight");
        goto fail;
    }
    if (emb->n_dims != 2 || emb->ne[1] < 1 || emb->ne[1] > MAX_VOCAB) {
        rc = gf_err_set(err, GF_EFORMAT, "tensor token_embd.weight: bad vocabulary dimension");
        goto fail;
    }
    hp->n_vocab = (int)emb->ne[1];
    int32_t vocab_kv;
    if (gf_gguf_get_i32(g, "llama.vocab_size", &vocab_kv) == 0 && vocab_kv != hp->n_vocab) {
        rc = gf_err_set(err, GF_EFORMAT, "llama.vocab_size %d differs from token_embd rows %d",
                        (int)vocab_kv, hp->n_vocab);
        goto fail;
    }
    int q_dim = hp->n_heads * hp->head_dim, kv_dim = hp->n_kv_heads * hp->head_dim;
    if ((rc = get_matrix(g, "token_embd.weight", hp->n_vocab, hp->dim, &m->tok_embd, err)))
        goto fail;
    if ((rc = get_norm(g, "output_norm.weight", hp->dim, &m->out_norm, err)))
        goto fail;
    if (gf_gguf_find_tensor(g, "output.weight") != NULL) {
        if ((rc = get_matrix(g, "output.weight", hp->n_vocab, hp->dim, &m->output, err)))
            goto fail;
    } else {
        m->output = m->tok_embd;  // tied to the embedding, as in llama2.c's exports
    }
    m->layers = gf_calloc((size_t)hp->n_layers, sizeof(*m->layers));
    if (m->layers == NULL) {
        rc = gf_err_set(err, GF_ENOMEM, "out of memory");
        goto fail;
    }
    uint64_t total = wbytes(&m->output) + (uint64_t)hp->dim * 4;
    for (int l = 0; l < hp->n_layers; l++) {
        struct gf_llm_layer *L = &m->layers[l];
        char name[96];
#define NAME(s) (snprintf(name, sizeof(name), "blk.%d." s, l), name)
        if ((rc = get_norm(g, NAME("attn_norm.weight"), hp->dim, &L->attn_norm, err)) ||
            (rc = get_matrix(g, NAME("attn_q.weight"), q_dim, hp->dim, &L->wq, err)) ||
            (rc = get_matrix(g, NAME("attn_k.weight"), kv_dim, hp->dim, &L->wk, err)) ||
            (rc = get_matrix(g, NAME("attn_v.weight"), kv_dim, hp->dim, &L->wv, err)) ||
            (rc = get_matrix(g, NAME("attn_output.weight"), hp->dim, q_dim, &L->wo, err)) ||
            (rc = get_norm(g, NAME("ffn_norm.weight"), hp->dim, &L->ffn_norm, err)) ||
            (rc = get_matrix(g, NAME("ffn_gate.weight"), hp->hidden, hp->dim, &L->gate, err)) ||
            (rc = get_matrix(g, NAME("ffn_up.weight"), hp->hidden, hp->dim, &L->up, err)) ||
            (rc = get_matrix(g, NAME("ffn_down.weight"), hp->dim, hp->hidden, &L->down, err)))
            goto fail;
#undef NAME
        total += wbytes(&L->wq) + wbytes(&L->wk) + wbytes(&L->wv) + wbytes(&L->wo) +
                 wbytes(&L->gate) + wbytes(&L->up) + wbytes(&L->down) + (uint64_t)hp->dim * 8;
    }
    m->weight_bytes = total;
    if (place_weights(m) != 0) {
        rc = gf_err_set(err, GF_ENOMEM, "out of memory");
        goto fail;
    }
    *out = m;
    return 0;
fail:
    gf_free_huge(m->wmem, m->wmem_bytes);
    gf_free(m->layers);
    gf_free(m);
    return rc;
}

int gf_llm_open(const char *path, struct gf_llm **out, struct gf_err *err)
{
    *out = NULL;
    struct gf_gguf *g = NULL;
    int rc = gf_gguf_open(path, &g, err);
    if (rc != 0)
        return rc;
    rc = gf_llm_load(g, out, err);
    if (rc != 0) {
        gf_err_prefix(err, path);
        gf_gguf_close(g);
        return rc;
    }
    (*out)->owns_gguf = true;
    return 0;
}

void gf_llm_free(struct gf_llm *m)
{
    if (m == NULL)
        return;
    if (m->owns_gguf)
        gf_gguf_close(m->gguf);
    gf_free_huge(m->wmem, m->wmem_bytes);
    gf_free(m->layers);
    gf_free(m);
}

int gf_llm_kv_init(struct gf_llm_kv *kv, const struct gf_llm *m, int n_ctx, int type)
{
    memset(kv, 0, sizeof(*kv));
    size_t elt = type == GF_KV_F16 ? 2 : 4;
    size_t n = (size_t)m->hp.n_layers * (size_t)n_ctx * (size_t)(m->hp.n_kv_heads * m->hp.head_dim);
    kv->k = gf_mallocarray_aligned(n, elt);
    kv->v = gf_mallocarray_aligned(n, elt);
    if (kv->k == NULL || kv->v == NULL) {
        gf_llm_kv_cleanup(kv);
        return GF_ENOMEM;
    }
    kv->type = type;
    kv->n_ctx = n_ctx;
    return 0;
}

void gf_llm_kv_cleanup(struct gf_llm_kv *kv)
{
    gf_free(kv->k);
    gf_free(kv->v);
    kv->k = kv->v = NULL;
}
