/* llama_int.h — the Llama 2 model of the embedded engine: hyper-parameters and weights read
 * from a GGUF file (weights used in place from the mapping, never copied), per-sequence KV
 * caches, and a forward pass over a batch of tokens that may belong to several sequences.
 * A loaded struct gf_llm is immutable and may be shared by threads; a struct gf_llm_ctx (the
 * scratch buffers and the thread pool of one forward pass) belongs to one thread at a time. */
#ifndef GF_LLAMA_INT_H
#define GF_LLAMA_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

struct gf_gguf;
struct gf_tpool;
struct gf_kernels;

/* A weight matrix W[rows][cols] (y = W x), row-major, rows of row_bytes bytes. */
struct gf_llm_weight {
    int type;          // GF_WT_F32, GF_WT_F16, GF_WT_Q8_0 or GF_WT_Q4_0
    int rows, cols;
    size_t row_bytes;
    const void *data;  // in the model's mapping, or its copy in wmem
    const void *x16;   // Q8_0/Q4_0 rows regrouped for the integer kernels (gemm_int.h), or NULL
};

struct gf_llm_hparams {
    int n_vocab;
    int dim;           // embedding_length
    int n_layers;      // block_count
    int n_heads;       // attention.head_count
    int n_kv_heads;    // attention.head_count_kv (GQA when < n_heads)
    int head_dim;      // dim / n_heads
    int hidden;        // feed_forward_length
    int n_ctx_train;   // context_length
    int n_rot;         // rope.dimension_count (<= head_dim, even)
    float eps;         // attention.layer_norm_rms_epsilon
    float rope_base;   // rope.freq_base
};

struct gf_llm_layer {
    const float *attn_norm;     // [dim]
    struct gf_llm_weight wq;    // [n_heads*head_dim][dim]
    struct gf_llm_weight wk;    // [n_kv_heads*head_dim][dim]
    struct gf_llm_weight wv;    // [n_kv_heads*head_dim][dim]
    struct gf_llm_weight wo;    // [dim][n_heads*head_dim]
    const float *ffn_norm;      // [dim]
    struct gf_llm_weight gate;  // [hidden][dim]
    struct gf_llm_weight up;    // [hidden][dim]
    struct gf_llm_weight down;  // [dim][hidden]
};

struct gf_llm {
    struct gf_gguf *gguf;       // owned when owns_gguf
    bool owns_gguf;
    struct gf_llm_hparams hp;
    struct gf_llm_weight tok_embd;  // [n_vocab][dim]
    struct gf_llm_layer *layers;    // [n_layers]
    const float *out_norm;          // [dim]
    struct gf_llm_weight output;    // [n_vocab][dim]; token_embd when tied
    uint64_t weight_bytes;          // bytes a decode step reads (all matrices, norms, output)
    void *wmem;                     // the layer matrices and output, copied (place_weights)
    size_t wmem_bytes;              // and its size (gf_malloc_huge)
};

/* Reads the hyper-parameters and weights of g (architecture "llama" only) and checks every
 * shape and type. On success *out borrows g (which must outlive it) and returns 0; otherwise
 * GF_EFORMAT/GF_EUNSUPPORTED with err naming the key or tensor, or GF_ENOMEM. */
int gf_llm_load(struct gf_gguf *g, struct gf_llm **out, struct gf_err *err);
/* Opens path with the GGUF reader and loads it; the model then owns the file. */
int gf_llm_open(const char *path, struct gf_llm **out, struct gf_err *err);
void gf_llm_free(struct gf_llm *m);

/* ---- KV cache ----------------------------------------------------------------------------- */

enum { GF_KV_F32 = 0, GF_KV_F16 = 1 };

/* One sequence's keys and values: k and v are [n_layers][n_ctx][n_kv_heads*head_dim] of
 * type (f32 or half). Positions [0, n_past) hold valid entries. */
struct gf_llm_kv {
    int type;
    int n_ctx;
    void *k, *v;
};

int gf_llm_kv_init(struct gf_llm_kv *kv, const struct gf_llm *m, int n_ctx, int type);
void gf_llm_kv_cleanup(struct gf_llm_kv *kv);

/* ---- forward pass ------------------------------------------------------------------------- */

/* A batch: token i is at position pos[i] of the sequence whose cache is kv[i]. Tokens of one
 * sequence appear in increasing position order, and pos[i] < kv[i]->n_ctx; the cache must hold
 * positions [0, pos[i]) of that sequence (from earlier batches or earlier in this one). Logits
 * are computed for the tokens with want[i] set, in batch order, into logits[j*n_vocab...]. */
struct gf_llm_batch {
    int n;
    const int *token;          // [n], each in [0, n_vocab)
    const int *pos;            // [n]
    struct gf_llm_kv *const *kv; // [n]
    const bool *want;          // [n]
    float *logits;             // [number of want][n_vocab], caller's
};

struct gf_llm_ctx;

/* Scratch for batches of up to max_tokens tokens and caches of up to max_ctx positions, with a
 * pool of n_threads threads. k is the kernel table (NULL = gf_kernels_get()). gemm_min: batches
 * of at least this many tokens go through sgemm (0 = default). */
int gf_llm_ctx_new(const struct gf_llm *m, int max_tokens, int max_ctx, int n_threads,
                   const struct gf_kernels *k, struct gf_llm_ctx **out);
void gf_llm_ctx_free(struct gf_llm_ctx *c);
void gf_llm_ctx_set_gemm_min(struct gf_llm_ctx *c, int gemm_min);
/* Jobs of fewer multiply-adds than work run on the calling thread only (negative = default;
 * 0 = always share, which tests use to cover the threaded path on tiny models). */
void gf_llm_ctx_set_min_parallel(struct gf_llm_ctx *c, double work);

/* Runs the batch. Returns 0, or GF_EINVAL when the batch breaks the rules above (n out of
 * [1, max_tokens], a token or position out of range). */
int gf_llm_forward(struct gf_llm_ctx *c, const struct gf_llm_batch *b);

#endif
