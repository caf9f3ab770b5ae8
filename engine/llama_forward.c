/* llama_forward.c — the forward pass of a Llama 2 model over a batch of tokens from one or
 * more sequences (continuous batching). Every matrix product reads each weight row once for
 * the whole batch: small batches (decode steps) go through the hand-written dot kernels, with
 * activations quantized to Q8_0 for quantized weights; large batches (prompts) go through
 * OpenBLAS sgemm on weight tiles dequantized per thread. Threads split weight rows; OpenBLAS
 * itself runs single-threaded inside each share so the two never compete for cores. */
#include "engine/llama_int.h"

#include <math.h>
#include <string.h>

#include <cblas.h>

#include "engine/gemm_int.h"
#include "engine/kernels_int.h"
#include "engine/threadpool_int.h"

#define DEFAULT_GEMM_MIN 16  // batches at least this large use sgemm
#define TILE_BYTES       (2 << 20) // dequantized weight tile per sgemm call: large enough that
                                   // OpenBLAS's packing of the activations is amortized
#define TILE_MIN         64
#define TILE_MAX         1024
#define ROW_ALIGN        16  // rows per chunk when splitting among threads
#define MAX_MM           3   // weights sharing one input in one parallel job
#define MIN_PARALLEL     (1 << 18) // multiply-adds below which a job runs on one thread: waking
                                   // the pool costs more than it saves (tiny models)

struct gf_llm_ctx {
    const struct gf_llm *m;
    const struct gf_kernels *k;
    struct gf_tpool *pool;
    int n_threads, max_tokens, max_ctx, gemm_min;
    double min_parallel;     // multiply-adds below which a job runs on one thread
    int max_cols;
    int tile_rows;           // rows per dequantized tile (multiple of TILE_MIN)
    float *x;                // [T][dim] residual stream
    float *xb;               // [T][max(dim, q_dim)] normalized input, attention output
    float *tmp;              // [T][dim] output of wo and down
    float *q;                // [T][q_dim]
    float *kk, *vv;          // [T][kv_dim]
    float *hb, *hb2;         // [T][hidden]
    float *cs;               // [T][n_rot] rope cos/sin per token
    float *att;              // [n_threads][max_ctx] attention scores
    float *attb;             // [n_threads][attb_floats]: prompt attention by products, or NULL
    size_t attb_floats;
    int ld_s;                // max_ctx rounded up to 16: a row of scores in attb
    struct gf_block_q8 *xq;  // [T][max_cols / 32 + 1] quantized activations
    unsigned char *xrec;     // [max_cols / 32][T] records of xq for the kernels (gf_mv_prep)
    unsigned char *xrec1;    // the same for one token (gf_mv_prep1)
    float *tile;             // [n_threads][tile_bytes]: dequantized or packed weights
    size_t tile_bytes;
    const struct gf_gemm *gq; // prompt products on AVX-512 (VNNI), or NULL (sgemm)
    uint8_t *xpq;            // [T][max_cols / 32] activation records for gq (GF_GEMM_XREC)
    float *xt;               // [max_cols][ldt] activations transposed for gq->f32
    int ldt;                 // max_tokens rounded up to 16
};

/* Runs fn on the pool, or inline on this thread when the job is too small to share. */
static void run(struct gf_llm_ctx *c, gf_tpool_fn fn, void *ctx, double work)
{
    if (work < c->min_parallel || c->n_threads == 1)
        fn(ctx, 0, 1);
    else
        gf_tpool_run(c->pool, fn, ctx);
}

/* ---- matrix products -------------------------------------------------------------------- */

struct mm_job {
    struct gf_llm_ctx *c;
    int n_w;
    const struct gf_llm_weight *w[MAX_MM];
    float *y[MAX_MM];       // [T][w->rows]
    const float *x;         // [T][cols]
    struct gf_mv_x mv;      // the activations as the matvec kernels take them
    int T;
    bool gemm;
    bool packed;            // quantized weights go through c->gq with c->xpq
    bool recs;              // c->xpq holds the activations' records (for gq->tile or gq->x16)
    bool f32t;              // F32 weights go through c->gq->f32 with c->xt
    int chunk_rows;         // decode products: rows per chunk (a multiple of ROW_ALIGN)
};

/* Regrouped weights are read in whole groups of 16 rows: rows [r0, r1) qualify when both ends
 * fall on group boundaries (always, as jobs are split in multiples of 16 rows). */
static bool use_x16(const struct mm_job *j, const struct gf_llm_weight *w, int r0, int r1)
{
    return j->recs && w->x16 != NULL && r0 % GF_GEMM_ROWS == 0 && r1 % GF_GEMM_ROWS == 0;
}

static void mm_rows_x16(const struct mm_job *j, const struct gf_llm_weight *w, float *y, int r0,
                        int r1)
{
    int nb = w->cols / GF_QK;
    const uint8_t *wx = (const uint8_t *)w->x16 +
                        (size_t)(r0 / GF_GEMM_ROWS) * nb * gf_gemm_x16_block(w->type);
    j->c->gq->x16(w->type, j->c->xpq, j->T, wx, r1 - r0, nb, y + r0, (size_t)w->rows);
}

static void mm_rows_dot(const struct mm_job *j, const struct gf_llm_weight *w, float *y, int r0,
                        int r1)
{
    if (use_x16(j, w, r0, r1)) {
        mm_rows_x16(j, w, y, r0, r1);
        return;
    }
    const struct gf_kernels *k = j->c->k;
    k->matvec(k, w->type, (const char *)w->data + (size_t)r0 * w->row_bytes, w->row_bytes,
              r1 - r0, w->cols, &j->mv, y + r0, (size_t)w->rows);
}

/* Integer path: packs tiles of weight rows (once per tile, for all T tokens) and runs them
 * against the activations matmul() packed. */
static void mm_rows_packed(const struct mm_job *j, const struct gf_llm_weight *w, float *y, int r0,
                           int r1, int ith)
{
    const struct gf_gemm *g = j->c->gq;
    int nb = w->cols / GF_QK, tr = j->c->tile_rows;
    uint8_t *wp = (uint8_t *)j->c->tile + (size_t)ith * j->c->tile_bytes;
    for (int t0 = r0; t0 < r1; t0 += tr) {
        int nr = r1 - t0 < tr ? r1 - t0 : tr;
        for (int r = 0; r < nr; r += GF_GEMM_ROWS)
            g->pack_w(w->type, (const char *)w->data + (size_t)(t0 + r) * w->row_bytes,
                      w->row_bytes, nr - r < GF_GEMM_ROWS ? nr - r : GF_GEMM_ROWS, nb,
                      wp + (size_t)(r / GF_GEMM_ROWS) * nb * GF_GEMM_GROUP);
        g->tile(j->c->xpq, j->T, wp, nr, nb, y + t0, (size_t)w->rows);
    }
}

static void mm_rows_gemm(const struct mm_job *j, const struct gf_llm_weight *w, float *y, int r0,
                         int r1, int ith)
{
    int cols = w->cols;
    if (use_x16(j, w, r0, r1)) {
        mm_rows_x16(j, w, y, r0, r1);
        return;
    }
    if (j->packed) {
        mm_rows_packed(j, w, y, r0, r1, ith);
        return;
    }
    if (j->f32t && w->type == GF_WT_F32) {
        j->c->gq->f32(j->c->xt, j->T, j->c->ldt, (const float *)w->data + (size_t)r0 * cols,
                      (size_t)cols, r1 - r0, cols, y + r0, (size_t)w->rows);
        return;
    }
    if (w->type == GF_WT_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->T, r1 - r0, cols, 1.0f, j->x,
                    cols, (const float *)w->data + (size_t)r0 * cols, cols, 0.0f, y + r0,
                    w->rows);
        return;
    }
    int tr = j->c->tile_rows;
    float *tile = j->c->tile + (size_t)ith * tr * j->c->max_cols;
    for (int t0 = r0; t0 < r1; t0 += tr) {
        int nr = r1 - t0 < tr ? r1 - t0 : tr;
        for (int r = 0; r < nr; r++)
            gf_wt_row_to_f32(w->type, (const char *)w->data + (size_t)(t0 + r) * w->row_bytes,
                             tile + (size_t)r * cols, cols);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->T, nr, cols, 1.0f, j->x, cols,
                    tile, cols, 0.0f, y + t0, w->rows);
    }
}

/* Splits the rows of all the job's weights, taken end to end, among the threads. */
static void mm_worker(void *arg, int ith, int nth)
{
    const struct mm_job *j = arg;
    int total = 0;
    for (int i = 0; i < j->n_w; i++)
        total += j->w[i]->rows;
    int lo, hi;
    gf_tpool_split(total, ith, nth, j->gemm ? TILE_MIN : ROW_ALIGN, &lo, &hi);
    int base = 0;
    for (int i = 0; i < j->n_w && lo < hi; i++) {
        int rows = j->w[i]->rows;
        int a = lo > base ? lo - base : 0, b = hi - base < rows ? hi - base : rows;
        if (a < b) {
            if (j->gemm)
                mm_rows_gemm(j, j->w[i], j->y[i], a, b, ith);
            else
                mm_rows_dot(j, j->w[i], j->y[i], a, b);
        }
        base += rows;
    }
}

/* Decode products, and prompt products that need no per-thread scratch: chunk i is rows
 * [i * chunk_rows, (i + 1) * chunk_rows) of all the job's weights taken end to end, on
 * whichever thread takes it (gf_tpool_run_chunks). */
static void mm_chunk(void *arg, int i)
{
    const struct mm_job *j = arg;
    int lo = i * j->chunk_rows, hi = lo + j->chunk_rows, base = 0;
    for (int wi = 0; wi < j->n_w && lo < hi; wi++) {
        int rows = j->w[wi]->rows;
        int a = lo > base ? lo - base : 0, b = hi - base < rows ? hi - base : rows;
        if (a < b && j->gemm)  // only products that need no per-thread scratch (ith 0)
            mm_rows_gemm(j, j->w[wi], j->y[wi], a, b, 0);
        else if (a < b)
            mm_rows_dot(j, j->w[wi], j->y[wi], a, b);
        base += rows;
    }
}

/* y_i = x W_i^T for the n_w weights (which share cols), over T input rows. */
static void matmul(struct gf_llm_ctx *c, int n_w, const struct gf_llm_weight *const *w,
                   float *const *y, const float *x, int T)
{
    struct mm_job j = {.c = c, .n_w = n_w, .x = x, .T = T, .gemm = T >= c->gemm_min};
    bool quant = false, x16 = false, all_x16 = c->gq != NULL;
    double work = 0;
    for (int i = 0; i < n_w; i++) {
        j.w[i] = w[i];
        j.y[i] = y[i];
        work += (double)w[i]->rows * w[i]->cols * T;
        quant |= w[i]->type == GF_WT_Q8_0 || w[i]->type == GF_WT_Q4_0;
        x16 |= w[i]->x16 != NULL && c->gq != NULL;
        all_x16 &= w[i]->x16 != NULL;
    }
    if (!j.gemm) {
        // activations quantized once per product (not per row), in every form the kernels read
        int cols = w[0]->cols, nb = cols / GF_QK;
        size_t ldq = (size_t)c->max_cols / GF_QK + 1;
        j.mv = (struct gf_mv_x){.T = T, .f = x, .ldf = (size_t)cols, .q = c->xq, .ldq = ldq};
        if (quant) {
            for (int t = 0; t < T; t++)
                c->k->quantize_q8(x + (size_t)t * cols, c->xq + (size_t)t * ldq, cols);
            // regrouped weights all of them: the jobs' row ranges fall on groups of 16 (each
            // weight's rows are a multiple of 16), so the matrix-vector kernels are not used
            if (c->k->uses_prep && !all_x16) {
                gf_mv_prep(c->xq, ldq, T, nb, c->xrec);
                j.mv.rec = c->xrec;
            }
            if (c->k->uses_prep1 && T == 1 && !all_x16) {  // one sequence's decode step
                j.mv.rec1_type = w[0]->type;
                gf_mv_prep1(j.mv.rec1_type, c->xq, nb, c->xrec1);
                j.mv.rec1 = c->xrec1;
            }
            if (x16) {
                for (int t = 0; t < T; t++)
                    c->gq->pack_x(c->xq + (size_t)t * ldq, nb,
                                  c->xpq + (size_t)t * nb * GF_GEMM_XREC);
                j.recs = true;
            }
        }
    }
    if (j.gemm) {
        if (quant && c->gq != NULL) {
            // every weight of the job shares cols and is quantized (q, k, v or gate, up)
            int cols = w[0]->cols, nb = cols / GF_QK;
            for (int t = 0; t < T; t++) {
                c->k->quantize_q8(x + (size_t)t * cols, c->xq, cols);
                c->gq->pack_x(c->xq, nb, c->xpq + (size_t)t * nb * GF_GEMM_XREC);
            }
            j.packed = j.recs = true;
        } else if (!quant && c->gq != NULL && w[0]->type == GF_WT_F32) {
            c->gq->f32_pack(x, (size_t)w[0]->cols, T, w[0]->cols, c->xt, (size_t)c->ldt);
            j.f32t = true;
        }
        bool all_f32 = true;
        for (int i = 0; i < n_w; i++)
            all_f32 &= w[i]->type == GF_WT_F32;
        // regrouped or F32 weights are read in place: such products are shared out in chunks
        // like decode products, so a descheduled thread costs its share of the work, not a
        // wait; the others unpack weight tiles into per-thread scratch and split statically
        if (!((j.packed && all_x16) || (j.f32t && all_f32))) {
            run(c, mm_worker, &j, work);
            return;
        }
    }
    // about 8 chunks per thread, so a thread that is descheduled or slow costs little
    int total = 0;
    for (int i = 0; i < n_w; i++)
        total += w[i]->rows;
    int per = (total + 8 * c->n_threads - 1) / (8 * c->n_threads);
    j.chunk_rows = (per + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
    int n_chunks = (total + j.chunk_rows - 1) / j.chunk_rows;
    if (work < c->min_parallel || c->n_threads == 1) {
        for (int i = 0; i < n_chunks; i++)
            mm_chunk(&j, i);
    } else {
        gf_tpool_run_chunks(c->pool, mm_chunk, &j, n_chunks);
    }
}

static void matmul1(struct gf_llm_ctx *c, const struct gf_llm_weight *w, float *y, const float *x,
                    int T)
{
    matmul(c, 1, &w, &y, x, T);
}

/* ---- attention -------------------------------------------------------------------------- */

struct att_job {
    struct gf_llm_ctx *c;
    const struct gf_llm_batch *b;
    int layer;
};

static void att_worker(void *arg, int ith, int nth)
{
    const struct att_job *j = arg;
    struct gf_llm_ctx *c = j->c;
    const struct gf_llm_hparams *hp = &c->m->hp;
    const struct gf_kernels *k = c->k;
    int hd = hp->head_dim, q_dim = hp->n_heads * hd, kv_dim = hp->n_kv_heads * hd;
    int group = hp->n_heads / hp->n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    float *att = c->att + (size_t)ith * c->max_ctx;
    int lo, hi;
    gf_tpool_split(j->b->n * hp->n_heads, ith, nth, 1, &lo, &hi);
    for (int it = lo; it < hi; it++) {
        int t = it / hp->n_heads, h = it % hp->n_heads, kvh = h / group;
        const struct gf_llm_kv *kv = j->b->kv[t];
        int pos = j->b->pos[t];
        const float *q = c->q + (size_t)t * q_dim + (size_t)h * hd;
        float *out = c->xb + (size_t)t * q_dim + (size_t)h * hd;
        size_t base = (size_t)j->layer * kv->n_ctx * kv_dim + (size_t)kvh * hd;
        if (kv->type == GF_KV_F16) {
            const uint16_t *K = (const uint16_t *)kv->k + base, *V = (const uint16_t *)kv->v + base;
            for (int p = 0; p <= pos; p++)
                att[p] = k->dot_f16(K + (size_t)p * kv_dim, q, hd) * scale;
            k->softmax(att, pos + 1);
            memset(out, 0, (size_t)hd * sizeof(float));
            for (int p = 0; p <= pos; p++)
                k->axpy_f16(out, att[p], V + (size_t)p * kv_dim, hd);
        } else {
            const float *K = (const float *)kv->k + base, *V = (const float *)kv->v + base;
            for (int p = 0; p <= pos; p++)
                att[p] = k->dot_f32(K + (size_t)p * kv_dim, q, hd) * scale;
            k->softmax(att, pos + 1);
            memset(out, 0, (size_t)hd * sizeof(float));
            for (int p = 0; p <= pos; p++)
                k->axpy_f32(out, att[p], V + (size_t)p * kv_dim, hd);
        }
    }
}

/* Prompt attention as matrix products. When a batch is one run of consecutive positions of
 * one sequence (a prompt) with an F32 cache, each (head, block of ATT_QB queries) takes the
 * scores of all its queries against all its keys in one product (gq->f32, keys read in place
 * as weight rows), masks the future, softmaxes each row, and takes the weighted sums of the
 * values in a second product (values read in place as the transposed operand, so head_dim
 * must be a multiple of 16). The token-by-token path spent most of its time in calls over
 * one key of 64 values at a time. */
#define ATT_QB 64

static bool att_by_products(const struct gf_llm_ctx *c, const struct gf_llm_batch *b)
{
    if (c->attb == NULL || b->n < c->gemm_min || b->kv[0]->type != GF_KV_F32)
        return false;
    for (int t = 1; t < b->n; t++)
        if (b->kv[t] != b->kv[0] || b->pos[t] != b->pos[0] + t)
            return false;
    return true;
}

static void attb_worker(void *arg, int ith, int nth)
{
    const struct att_job *j = arg;
    struct gf_llm_ctx *c = j->c;
    const struct gf_llm_hparams *hp = &c->m->hp;
    int hd = hp->head_dim, q_dim = hp->n_heads * hd, kv_dim = hp->n_kv_heads * hd;
    int group = hp->n_heads / hp->n_kv_heads, T = j->b->n, pos0 = j->b->pos[0];
    int nqb = (T + ATT_QB - 1) / ATT_QB;
    float scale = 1.0f / sqrtf((float)hd);
    const struct gf_llm_kv *kv = j->b->kv[0];
    size_t base = (size_t)j->layer * kv->n_ctx * kv_dim;
    float *qt = c->attb + (size_t)ith * c->attb_floats;  // [hd][ATT_QB] queries, transposed
    float *o = qt + (size_t)hd * ATT_QB;                  // [hd][ATT_QB] outputs, transposed
    float *sc = o + (size_t)hd * ATT_QB;                  // [ATT_QB][ld_s] scores
    int lo, hi;
    gf_tpool_split(hp->n_heads * nqb, ith, nth, 1, &lo, &hi);
    for (int it = lo; it < hi; it++) {
        int h = it / nqb, t0 = it % nqb * ATT_QB, nt = T - t0 < ATT_QB ? T - t0 : ATT_QB;
        int kvh = h / group, P = pos0 + t0 + nt;  // keys [0, P) cover every query of the block
        const float *K = (const float *)kv->k + base + (size_t)kvh * hd;
        const float *V = (const float *)kv->v + base + (size_t)kvh * hd;
        c->gq->f32_pack(c->q + (size_t)t0 * q_dim + (size_t)h * hd, (size_t)q_dim, nt, hd, qt,
                        ATT_QB);
        c->gq->f32(qt, nt, ATT_QB, K, (size_t)kv_dim, P, hd, sc, (size_t)c->ld_s);
        for (int i = 0; i < nt; i++) {
            float *row = sc + (size_t)i * c->ld_s;
            int n = pos0 + t0 + i + 1;  // this query sees keys [0, n)
            for (int p = 0; p < n; p++)
                row[p] *= scale;
            c->k->softmax(row, n);
            memset(row + n, 0, (size_t)(P - n) * sizeof(float));
        }
        // o[d][i] = sum_p sc[i][p] * V[p][d]: the values are the transposed operand
        c->gq->f32(V, hd, kv_dim, sc, (size_t)c->ld_s, nt, P, o, ATT_QB);
        // back to one row per query (hd, a multiple of 16, leaves no padding to write)
        c->gq->f32_pack(o, ATT_QB, hd, nt, c->xb + (size_t)t0 * q_dim + (size_t)h * hd,
                        (size_t)q_dim);
    }
}

/* ---- the pass --------------------------------------------------------------------------- */

static int check_batch(const struct gf_llm_ctx *c, const struct gf_llm_batch *b)
{
    if (b->n < 1 || b->n > c->max_tokens)
        return GF_EINVAL;
    for (int i = 0; i < b->n; i++) {
        if (b->token[i] < 0 || b->token[i] >= c->m->hp.n_vocab)
            return GF_EINVAL;
        const struct gf_llm_kv *kv = b->kv[i];
        if (kv == NULL || kv->n_ctx > c->max_ctx || b->pos[i] < 0 || b->pos[i] >= kv->n_ctx)
            return GF_EINVAL;
    }
    return 0;
}

int gf_llm_forward(struct gf_llm_ctx *c, const struct gf_llm_batch *b)
{
    int rc = check_batch(c, b);
    if (rc != 0)
        return rc;
    const struct gf_llm *m = c->m;
    const struct gf_llm_hparams *hp = &m->hp;
    const struct gf_kernels *k = c->k;
    int T = b->n, dim = hp->dim, hd = hp->head_dim;
    int q_dim = hp->n_heads * hd, kv_dim = hp->n_kv_heads * hd;

    // token embeddings and the rotation of each position
    for (int t = 0; t < T; t++) {
        const char *row = (const char *)m->tok_embd.data + (size_t)b->token[t] * m->tok_embd.row_bytes;
        gf_wt_row_to_f32(m->tok_embd.type, row, c->x + (size_t)t * dim, dim);
        gf_rope_cos_sin(c->cs + (size_t)t * hp->n_rot, hp->n_rot, b->pos[t], hp->rope_base);
    }

    for (int l = 0; l < hp->n_layers; l++) {
        const struct gf_llm_layer *L = &m->layers[l];
        // attention: xb = rmsnorm(x); q, k, v = xb Wq, xb Wk, xb Wv
        for (int t = 0; t < T; t++)
            k->rmsnorm(c->xb + (size_t)t * dim, c->x + (size_t)t * dim, L->attn_norm, dim, hp->eps);
        const struct gf_llm_weight *qkv[3] = {&L->wq, &L->wk, &L->wv};
        float *qkv_out[3] = {c->q, c->kk, c->vv};
        matmul(c, 3, qkv, qkv_out, c->xb, T);
        // rotate q and k, then store k and v at each token's position of its sequence
        for (int t = 0; t < T; t++) {
            const float *cs = c->cs + (size_t)t * hp->n_rot;
            k->rope(c->q + (size_t)t * q_dim, hp->n_heads, hd, hp->n_rot, cs);
            k->rope(c->kk + (size_t)t * kv_dim, hp->n_kv_heads, hd, hp->n_rot, cs);
            struct gf_llm_kv *kv = b->kv[t];
            size_t off = ((size_t)l * kv->n_ctx + (size_t)b->pos[t]) * kv_dim;
            if (kv->type == GF_KV_F16) {
                k->f32_to_f16(c->kk + (size_t)t * kv_dim, (uint16_t *)kv->k + off, kv_dim);
                k->f32_to_f16(c->vv + (size_t)t * kv_dim, (uint16_t *)kv->v + off, kv_dim);
            } else {
                memcpy((float *)kv->k + off, c->kk + (size_t)t * kv_dim, (size_t)kv_dim * 4);
                memcpy((float *)kv->v + off, c->vv + (size_t)t * kv_dim, (size_t)kv_dim * 4);
            }
        }
        // softmax(q k^T / sqrt(hd)) v for every (token, head), into xb
        struct att_job aj = {.c = c, .b = b, .layer = l};
        double att_work = 0;
        for (int t = 0; t < T; t++)
            att_work += 2.0 * (b->pos[t] + 1) * q_dim;
        run(c, att_by_products(c, b) ? attb_worker : att_worker, &aj, att_work);
        // x += xb Wo
        matmul1(c, &L->wo, c->tmp, c->xb, T);
        for (size_t i = 0; i < (size_t)T * dim; i++)
            c->x[i] += c->tmp[i];
        // feed-forward: x += (silu(xb Wgate) * (xb Wup)) Wdown, xb = rmsnorm(x)
        for (int t = 0; t < T; t++)
            k->rmsnorm(c->xb + (size_t)t * dim, c->x + (size_t)t * dim, L->ffn_norm, dim, hp->eps);
        const struct gf_llm_weight *gu[2] = {&L->gate, &L->up};
        float *gu_out[2] = {c->hb, c->hb2};
        matmul(c, 2, gu, gu_out, c->xb, T);
        k->swiglu(c->hb, c->hb, c->hb2, T * hp->hidden);
        matmul1(c, &L->down, c->tmp, c->hb, T);
        for (size_t i = 0; i < (size_t)T * dim; i++)
            c->x[i] += c->tmp[i];
    }

    // logits for the tokens that want them: rmsnorm, then the output projection
    int n_out = 0;
    for (int t = 0; t < T; t++)
        if (b->want[t])
            k->rmsnorm(c->xb + (size_t)n_out++ * dim, c->x + (size_t)t * dim, m->out_norm, dim,
                       hp->eps);
    if (n_out > 0)
        matmul1(c, &m->output, b->logits, c->xb, n_out);
    return 0;
}

/* ---- context ---------------------------------------------------------------------------- */

int gf_llm_ctx_new(const struct gf_llm *m, int max_tokens, int max_ctx, int n_threads,
                   const struct gf_kernels *k, struct gf_llm_ctx **out)
{
    *out = NULL;
    if (max_tokens < 1 || max_ctx < 1 || n_threads < 1)
        return GF_EINVAL;
    const struct gf_llm_hparams *hp = &m->hp;
    struct gf_llm_ctx *c = gf_calloc(1, sizeof(*c));
    if (c == NULL)
        return GF_ENOMEM;
    c->m = m;
    c->k = k != NULL ? k : gf_kernels_get();
    c->n_threads = n_threads;
    c->max_tokens = max_tokens;
    c->max_ctx = max_ctx;
    c->gemm_min = DEFAULT_GEMM_MIN;
    c->min_parallel = MIN_PARALLEL;
    int q_dim = hp->n_heads * hp->head_dim, kv_dim = hp->n_kv_heads * hp->head_dim;
    int wide = q_dim > hp->dim ? q_dim : hp->dim;
    c->max_cols = hp->hidden > wide ? hp->hidden : wide;
    int tr = TILE_BYTES / (4 * c->max_cols) / TILE_MIN * TILE_MIN;
    c->tile_rows = tr < TILE_MIN ? TILE_MIN : tr > TILE_MAX ? TILE_MAX : tr;
    // the integer product follows the kernel table: only with AVX-512 (tests force the others)
    c->gq = strcmp(c->k->name, "avx512") == 0 ? gf_gemm_get() : NULL;
    int max_nb = c->max_cols / GF_QK + 1;
    size_t packed_row = (size_t)max_nb * GF_GEMM_GROUP / GF_GEMM_ROWS; // per row of a full group
    c->tile_bytes = (size_t)c->tile_rows * c->max_cols * sizeof(float);
    if (c->tile_bytes < (size_t)c->tile_rows * packed_row)
        c->tile_bytes = (size_t)c->tile_rows * packed_row;
    c->tile_bytes = (c->tile_bytes + 63) / 64 * 64;
    size_t T = (size_t)max_tokens;
    c->x = gf_mallocarray_aligned(T * hp->dim, sizeof(float));
    c->xb = gf_mallocarray_aligned(T * wide, sizeof(float));
    c->tmp = gf_mallocarray_aligned(T * hp->dim, sizeof(float));
    c->q = gf_mallocarray_aligned(T * q_dim, sizeof(float));
    c->kk = gf_mallocarray_aligned(T * kv_dim, sizeof(float));
    c->vv = gf_mallocarray_aligned(T * kv_dim, sizeof(float));
    c->hb = gf_mallocarray_aligned(T * hp->hidden, sizeof(float));
    c->hb2 = gf_mallocarray_aligned(T * hp->hidden, sizeof(float));
    c->cs = gf_mallocarray_aligned(T * hp->n_rot, sizeof(float));
    c->att = gf_mallocarray_aligned((size_t)n_threads * max_ctx, sizeof(float));
    c->ld_s = (max_ctx + 15) / 16 * 16;
    bool attb = c->gq != NULL && hp->head_dim % 16 == 0;
    if (attb) {
        c->attb_floats = (size_t)2 * hp->head_dim * ATT_QB + (size_t)ATT_QB * c->ld_s;
        c->attb = gf_mallocarray_aligned((size_t)n_threads, c->attb_floats * sizeof(float));
    }
    c->xq = gf_mallocarray_aligned(T * (c->max_cols / GF_QK + 1), sizeof(struct gf_block_q8));
    c->tile = gf_mallocarray_aligned((size_t)n_threads, c->tile_bytes);
    c->xrec = gf_mallocarray_aligned(T * (size_t)(c->max_cols / GF_QK), GF_MV_REC);
    c->xrec1 = gf_mallocarray_aligned(1, gf_mv_prep1_size(c->max_cols / GF_QK));
    c->xpq = gf_mallocarray_aligned(T * max_nb, GF_GEMM_XREC);
    c->ldt = (max_tokens + 15) / 16 * 16;
    // cleared: the padding columns past T are read (never used) by the f32 micro-kernel
    c->xt = gf_mallocarray_aligned((size_t)c->ldt * c->max_cols, sizeof(float));
    if (c->xt != NULL)
        memset(c->xt, 0, (size_t)c->ldt * c->max_cols * sizeof(float));
    int rc = GF_ENOMEM;
    if (!c->x || !c->xb || !c->tmp || !c->q || !c->kk || !c->vv || !c->hb || !c->hb2 || !c->cs ||
        !c->att || (attb && !c->attb) || !c->xq || !c->tile || !c->xrec || !c->xrec1 ||
        !c->xpq || !c->xt)
        goto fail;
    if ((rc = gf_tpool_new(n_threads, &c->pool)) != 0)
        goto fail;
    // our threads split the work; OpenBLAS must not start its own on the same cores
    openblas_set_num_threads(1);
    *out = c;
    return 0;
fail:
    gf_llm_ctx_free(c);
    return rc;
}

void gf_llm_ctx_set_gemm_min(struct gf_llm_ctx *c, int gemm_min)
{
    c->gemm_min = gemm_min > 0 ? gemm_min : DEFAULT_GEMM_MIN;
}

void gf_llm_ctx_set_min_parallel(struct gf_llm_ctx *c, double work)
{
    c->min_parallel = work >= 0 ? work : MIN_PARALLEL;
}

void gf_llm_ctx_free(struct gf_llm_ctx *c)
{
    if (c == NULL)
        return;
    gf_tpool_free(c->pool);
    gf_free(c->x);
    gf_free(c->xb);
    gf_free(c->tmp);
    gf_free(c->q);
    gf_free(c->kk);
    gf_free(c->vv);
    gf_free(c->hb);
    gf_free(c->hb2);
    gf_free(c->cs);
    gf_free(c->att);
    gf_free(c->attb);
    gf_free(c->xq);
    gf_free(c->tile);
    gf_free(c->xpq);
    gf_free(c->xt);
    gf_free(c->xrec);
    gf_free(c->xrec1);
    gf_free(c);
}
