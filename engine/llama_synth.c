/* llama_synth.c — writes random-weight Llama GGUF files of named shapes, for tests, benchmarks
 * and the default model of `gardefou serve`. Weights are normal with sigma 0.02 from a seeded
 * generator (the same seed gives the same file), norms are 1. The vocabulary is copied from a
 * GGUF that has one (the Llama 2 vocabulary) or generated: control tokens, the 256 byte tokens
 * and some English words, with the output rows of non-word tokens zeroed so that the random
 * model writes words rather than stray bytes. */
#include "engine/engine.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/gguf.h"
#include "engine/kernels_int.h"

struct shape {
    const char *name;
    int dim, n_layers, n_heads, n_kv_heads, hidden, ctx;
    bool tied;  // output projection shared with the embedding
};

static const struct shape shapes[] = {
    {"tiny", 64, 2, 4, 2, 128, 256, false},
    {"stories110m", 768, 12, 12, 12, 2048, 1024, true},
    {"tinyllama", 2048, 22, 32, 4, 5632, 2048, false},
};

static const struct shape *shape_find(const char *name)
{
    for (size_t i = 0; i < GF_ARRAY_LEN(shapes); i++)
        if (strcmp(shapes[i].name, name) == 0)
            return &shapes[i];
    return NULL;
}

const char *gf_llama_synth_shapes(void)
{
    return "tiny, stories110m, tinyllama";
}

struct rng {
    uint64_t s;
    bool have;
    float spare;
};

static uint64_t rng_u64(struct rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float rng_normal(struct rng *r)
{
    if (r->have) {
        r->have = false;
        return r->spare;
    }
    double u1 = ((double)(rng_u64(r) >> 11) + 1.0) / 9007199254740993.0;  // (0, 1]
    double u2 = (double)(rng_u64(r) >> 11) / 9007199254740992.0;
    double rad = sqrt(-2.0 * log(u1));
    r->spare = (float)(rad * sin(2.0 * M_PI * u2));
    r->have = true;
    return (float)(rad * cos(2.0 * M_PI * u2));
}

static const char *const words[] = {
    "the", "a", "and", "to", "of", "in", "was", "is", "it", "he", "she", "they", "with", "on",
    "for", "his", "her", "that", "had", "but", "one", "day", "little", "big", "dog", "cat",
    "girl", "boy", "tree", "sun", "park", "ball", "red", "blue", "happy", "sad", "play", "saw",
    "went", "said", "time", "friend", "home", "mom", "dad", "bird", "fish", "water", "run",
    "jump", "very", "not", "so", "then", "there", "once", "upon", "all", "toy", "box", "book",
    "good", "new", "old",
};

/* The vocabulary: copied tokenizer.* keys, or the generated one. Sets *n_vocab and, for the
 * generated one, *word0 to the first word id (output rows below it are zeroed). */
static int add_vocab(struct gf_gguf_writer *w, const char *vocab_path, int *n_vocab, int *word0,
                     struct gf_err *err)
{
    *word0 = 0;
    if (vocab_path != NULL) {
        struct gf_gguf *v = NULL;
        int rc = gf_gguf_open(vocab_path, &v, err);
        if (rc != 0)
            return rc;
        struct gf_gguf_arr toks;
        if (gf_gguf_get_arr(v, "tokenizer.ggml.tokens", &toks) != 0) {
            gf_gguf_close(v);
            return gf_err_set(err, GF_EFORMAT, "%s: no tokenizer.ggml.tokens", vocab_path);
        }
        *n_vocab = (int)toks.n;
        for (size_t i = 0; i < gf_gguf_n_kv(v) && rc == 0; i++) {
            const char *key = gf_gguf_kv_key(v, i);
            if (strncmp(key, "tokenizer.", 10) != 0)
                continue;
            struct gf_gguf_value val;
            gf_gguf_kv_value(v, i, &val);
            switch (val.type) {
            case GF_GGUF_TYPE_STRING:
                rc = gf_gguf_writer_add_str(w, key, val.str, val.len);
                break;
            case GF_GGUF_TYPE_BOOL:
                rc = gf_gguf_writer_add_bool(w, key, val.num.u != 0);
                break;
            case GF_GGUF_TYPE_UINT32:
            case GF_GGUF_TYPE_UINT8:
            case GF_GGUF_TYPE_UINT16:
                rc = gf_gguf_writer_add_u32(w, key, (uint32_t)val.num.u);
                break;
            case GF_GGUF_TYPE_INT32:
                rc = gf_gguf_writer_add_i32(w, key, (int32_t)val.num.i);
                break;
            case GF_GGUF_TYPE_ARRAY: {
                const struct gf_gguf_arr *a = &val.arr;
                if (a->elem_type == GF_GGUF_TYPE_STRING) {
                    const char **s = gf_mallocarray(a->n ? a->n : 1, sizeof(*s));
                    size_t *l = gf_mallocarray(a->n ? a->n : 1, sizeof(*l));
                    if (s == NULL || l == NULL)
                        rc = GF_ENOMEM;
                    for (uint64_t k = 0; rc == 0 && k < a->n; k++)
                        rc = gf_gguf_arr_str(a, k, &s[k], &l[k]);
                    if (rc == 0)
                        rc = gf_gguf_writer_add_arr_str(w, key, s, l, a->n);
                    gf_free(s);
                    gf_free(l);
                } else {
                    rc = gf_gguf_writer_add_arr(w, key, a->elem_type, a->data, a->n);
                }
                break;
            }
            default:
                break;  // other scalar types do not occur in tokenizer keys
            }
        }
        gf_gguf_close(v);
        if (rc != 0)
            return gf_err_set(err, rc, "%s: cannot copy the vocabulary", vocab_path);
        return 0;
    }
    // generated: <unk> <s> </s>, <0x00>..<0xFF>, then the words with the SentencePiece space
    int n = 3 + 256 + (int)GF_ARRAY_LEN(words);
    char **toks = gf_calloc((size_t)n, sizeof(char *));
    float *scores = gf_calloc((size_t)n, sizeof(float));
    int32_t *types = gf_calloc((size_t)n, sizeof(int32_t));
    int rc = toks && scores && types ? 0 : GF_ENOMEM;
    static const char *const ctl[] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; rc == 0 && i < n; i++) {
        char tmp[64];
        if (i < 3) {
            snprintf(tmp, sizeof(tmp), "%s", ctl[i]);
            types[i] = i == 0 ? 2 : 3;  // unknown, control
        } else if (i < 259) {
            snprintf(tmp, sizeof(tmp), "<0x%02X>", i - 3);
            types[i] = 6;  // byte
        } else {
            snprintf(tmp, sizeof(tmp), "\xe2\x96\x81%s", words[i - 259]);
            types[i] = 1;  // normal
            scores[i] = -(float)(i - 259);
        }
        if ((toks[i] = gf_strdup(tmp)) == NULL)
            rc = GF_ENOMEM;
    }
    if (rc == 0)
        rc = gf_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama", 5);
    if (rc == 0)
        rc = gf_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks,
                                        NULL, (uint64_t)n);
    if (rc == 0)
        rc = gf_gguf_writer_add_arr(w, "tokenizer.ggml.scores", GF_GGUF_TYPE_FLOAT32, scores,
                                    (uint64_t)n);
    if (rc == 0)
        rc = gf_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GF_GGUF_TYPE_INT32, types,
                                    (uint64_t)n);
    if (rc == 0)
        rc = gf_gguf_writer_add_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    if (rc == 0)
        rc = gf_gguf_writer_add_u32(w, "tokenizer.ggml.bos_token_id", 1);
    if (rc == 0)
        rc = gf_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 2);
    for (int i = 0; toks != NULL && i < n; i++)
        gf_free(toks[i]);
    gf_free(toks);
    gf_free(scores);
    gf_free(types);
    *n_vocab = n;
    *word0 = 259;
    return rc == 0 ? 0 : gf_err_set(err, rc, "cannot build the vocabulary");
}

/* Adds a [rows][cols] matrix of random normals in type; the data (owned by *bufs) must live
 * until the file is written. zero_rows: rows [0, zero_rows) are zero. */
static int add_matrix(struct gf_gguf_writer *w, const char *name, int type, int rows, int cols,
                      struct rng *r, float sigma, int zero_rows, void **buf)
{
    uint64_t rb = gf_tensor_row_bytes(type, (uint64_t)cols);
    if (rb == 0)
        return GF_EINVAL;
    *buf = gf_mallocarray((size_t)rows, (size_t)rb);
    float *row = gf_mallocarray((size_t)cols, sizeof(float));
    int rc = *buf && row ? 0 : GF_ENOMEM;
    for (int i = 0; rc == 0 && i < rows; i++) {
        for (int j = 0; j < cols; j++)
            row[j] = i < zero_rows ? 0.0f : rng_normal(r) * sigma;
        rc = gf_quantize(type, row, (char *)*buf + (size_t)i * rb, (uint64_t)cols);
    }
    gf_free(row);
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
    if (rc == 0)
        rc = gf_gguf_writer_add_tensor(w, name, type, 2, ne, *buf, rb * (uint64_t)rows, false);
    return rc;
}

static int add_norm(struct gf_gguf_writer *w, const char *name, int n)
{
    float *v = gf_mallocarray((size_t)n, sizeof(float));
    if (v == NULL)
        return GF_ENOMEM;
    for (int i = 0; i < n; i++)
        v[i] = 1.0f;
    uint64_t ne[1] = {(uint64_t)n};
    int rc = gf_gguf_writer_add_tensor(w, name, GF_TYPE_F32, 1, ne, v, (uint64_t)n * 4, true);
    gf_free(v);
    return rc;
}

static int synth(const struct shape *sh, int type, uint64_t seed, const char *vocab_path,
                 const char *out_path, struct gf_err *err)
{
    if (type != GF_TYPE_F32 && type != GF_TYPE_F16 && type != GF_TYPE_Q8_0 &&
        type != GF_TYPE_Q4_0)
        return gf_err_set(err, GF_EINVAL, "type %s: expected f32, f16, q8_0 or q4_0",
                          gf_tensor_type_name(type));
    if (type >= GF_TYPE_Q4_0 && (sh->dim % GF_QK != 0 || sh->hidden % GF_QK != 0))
        return gf_err_set(err, GF_EINVAL, "shape %s cannot be quantized (dims not multiples of 32)",
                          sh->name);
    struct gf_gguf_writer *w = gf_gguf_writer_new();
    int n_bufs = 3 + 7 * sh->n_layers, nb = 0;
    void **bufs = gf_calloc((size_t)n_bufs, sizeof(void *));
    if (w == NULL || bufs == NULL) {
        gf_gguf_writer_free(w);
        gf_free(bufs);
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    }
    struct rng r = {.s = seed};
    int n_vocab = 0, word0 = 0;
    char name[128];
    snprintf(name, sizeof(name), "gardefou synthetic %s (random weights)", sh->name);
    int rc = gf_gguf_writer_add_str(w, "general.architecture", "llama", 5);
    if (rc == 0)
        rc = gf_gguf_writer_add_str(w, "general.name", name, strlen(name));
    if (rc == 0)
        rc = gf_gguf_writer_add_u32(w, "llama.context_length", (uint32_t)sh->ctx);
    if (rc == 0)
        rc = gf_gguf_writer_add_u32(w, "llama.embedding_length", (uint32_t)sh->dim);
    if (rc == 0)
        rc = gf_gguf_writer_add_u32(w, "llama.block_count", (uint32_t)sh->n_layers);
    if (rc == 0)
        rc = gf_gguf_writer_add_u32(w, "llama.feed_forward_length", (uint32_t)sh->hidden);
    if (rc == 0)
        rc = gf_gguf_writer_add_u32(w, "llama.attention.head_count", (uint32_t)sh->n_heads);
    if (rc == 0)
        rc = gf_gguf_writer_add_u32(w, "llama.attention.head_count_kv", (uint32_t)sh->n_kv_heads);
    if (rc == 0)
        rc = gf_gguf_writer_add_u32(w, "llama.rope.dimension_count",
                                    (uint32_t)(sh->dim / sh->n_heads));
    if (rc == 0)
        rc = gf_gguf_writer_add_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    if (rc == 0)
        rc = gf_gguf_writer_add_f32(w, "llama.rope.freq_base", 10000.0f);
    if (rc == 0)
        rc = add_vocab(w, vocab_path, &n_vocab, &word0, err);
    int hd = sh->dim / sh->n_heads, kv_dim = sh->n_kv_heads * hd;
    if (rc == 0)
        rc = add_matrix(w, "token_embd.weight", type, n_vocab, sh->dim, &r, 0.02f, 0, &bufs[nb++]);
    for (int l = 0; rc == 0 && l < sh->n_layers; l++) {
        struct {
            const char *n;
            int rows, cols;
        } m[7] = {{"attn_q", sh->dim, sh->dim},      {"attn_k", kv_dim, sh->dim},
                  {"attn_v", kv_dim, sh->dim},       {"attn_output", sh->dim, sh->dim},
                  {"ffn_gate", sh->hidden, sh->dim}, {"ffn_up", sh->hidden, sh->dim},
                  {"ffn_down", sh->dim, sh->hidden}};
        snprintf(name, sizeof(name), "blk.%d.attn_norm.weight", l);
        rc = add_norm(w, name, sh->dim);
        for (int i = 0; rc == 0 && i < 7; i++) {
            snprintf(name, sizeof(name), "blk.%d.%s.weight", l, m[i].n);
            rc = add_matrix(w, name, type, m[i].rows, m[i].cols, &r, 0.02f, 0, &bufs[nb++]);
        }
        snprintf(name, sizeof(name), "blk.%d.ffn_norm.weight", l);
        if (rc == 0)
            rc = add_norm(w, name, sh->dim);
    }
    if (rc == 0)
        rc = add_norm(w, "output_norm.weight", sh->dim);
    // a generated vocabulary always gets its own output so word rows can be made likelier
    if (rc == 0 && (!sh->tied || word0 > 0))
        rc = add_matrix(w, "output.weight", type, n_vocab, sh->dim, &r, word0 > 0 ? 0.5f : 0.02f,
                        word0, &bufs[nb++]);
    if (rc == 0)
        rc = gf_gguf_writer_write(w, out_path, err);
    else if (err == NULL || err->code == 0)
        gf_err_set(err, rc, "cannot build the model: %s", gf_strerror(rc));
    gf_gguf_writer_free(w);
    for (int i = 0; i < nb; i++)
        gf_free(bufs[i]);
    gf_free(bufs);
    return rc;
}

int gf_llama_synth(const char *shape, const char *type, uint64_t seed, const char *vocab_path,
                   const char *out_path, struct gf_err *err)
{
    const struct shape *sh = shape_find(shape);
    if (sh == NULL)
        return gf_err_set(err, GF_EINVAL, "unknown shape '%s' (known: %s)", shape,
                          gf_llama_synth_shapes());
    int t;
    if (gf_tensor_type_parse(type, &t) != 0)
        return gf_err_set(err, GF_EINVAL, "unknown type '%s' (expected f32, f16, q8_0 or q4_0)",
                          type);
    return synth(sh, t, seed, vocab_path, out_path, err);
}

int gf_llama_default_model(const char *models_dir, char **path, struct gf_err *err)
{
    *path = NULL;
    struct gf_buf b;
    gf_buf_init(&b, 4096);
    if (gf_buf_printf(&b, "%s/%s", models_dir, GF_LLAMA_DEFAULT_MODEL) != 0) {
        gf_buf_cleanup(&b);
        return gf_err_set(err, GF_EINVAL, "%s: path too long", models_dir);
    }
    struct stat st;
    if (stat(b.data, &st) != 0) {
        if (mkdir(models_dir, 0700) != 0 && errno != EEXIST) {
            gf_err_set(err, GF_EIO, "%s: cannot create: %s", models_dir, strerror(errno));
            gf_buf_cleanup(&b);
            return GF_EIO;
        }
        int rc = gf_llama_synth("tiny", "f32", 1234, NULL, b.data, err);
        if (rc != 0) {
            gf_buf_cleanup(&b);
            return rc;
        }
        gf_log(GF_LOG_WARN, "engine",
               "msg=\"created the default synthetic model: random weights, its text is "
               "meaningless; pass --model FILE.gguf (e.g. a TinyLlama GGUF) for a real model\" "
               "path=%s",
               b.data);
    }
    *path = gf_buf_steal(&b);
    if (*path == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    return 0;
}
