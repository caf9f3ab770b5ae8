/* bench_tokenizer.c — speed of the prompt path pieces this component owns: SentencePiece
 * encoding (short chat prompt and long text), streaming decoding, GGUF open of a 32000-token
 * vocabulary, and dequantization per tensor type. Prints medians of repeated runs, in CPU
 * time (the machine is shared by other jobs).
 * Usage: bench_tokenizer VOCAB.gguf */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "engine/tokenizer.h"

/* CPU time of this process: the machine is shared, so wall time mostly measures the others. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_u64);
    return v[n / 2];
}

static const char prompt[] =
    "You are a helpful assistant. Summarize the following text in three sentences, keeping "
    "the names of the people and places, and answer in French if the text is in French. "
    "Once upon a time, in a small village by the sea, there lived an old fisherman named "
    "Jonas who went out every morning before dawn. Café, naïve, 北京, emoji 🦙 included. ";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_tokenizer VOCAB.gguf\n");
        return 2;
    }
    enum { RUNS = 15 };
    uint64_t t[RUNS];
    if (access(argv[1], R_OK) != 0) {
        printf("SKIP: %s is absent\n", argv[1]);
        return 77;
    }
    struct gf_gguf *g = NULL;
    struct gf_tokenizer *tok = NULL;
    struct gf_err err = {0};
    for (int r = 0; r < RUNS; r++) {
        uint64_t t0 = cpu_ns();
        if (gf_gguf_open(argv[1], &g, &err) != 0 || gf_tokenizer_from_gguf(g, &tok, &err) != 0) {
            fprintf(stderr, "%s\n", err.msg);
            return 2;
        }
        t[r] = cpu_ns() - t0;
        if (r + 1 < RUNS) {
            gf_tokenizer_free(tok);
            gf_gguf_close(g);
        }
    }
    printf("open GGUF + build tokenizer (%d tokens): median %.2f ms\n",
           (int)gf_tokenizer_n_vocab(tok), (double)median(t, RUNS) / 1e6);

    // A short chat prompt, as on every request.
    int32_t *ids;
    size_t n = 0;
    size_t plen = strlen(prompt);
    for (int r = 0; r < RUNS; r++) {
        uint64_t t0 = cpu_ns();
        for (int k = 0; k < 100; k++) {
            gf_tokenizer_encode(tok, prompt, plen, GF_TOK_ADD_SPECIAL, &ids, &n);
            gf_free(ids);
        }
        t[r] = (cpu_ns() - t0) / 100;
    }
    uint64_t m = median(t, RUNS);
    printf("encode %zu-byte prompt (%zu tokens): median %.1f us, %.1f MB/s, %.2f M tokens/s\n",
           plen, n, (double)m / 1e3, (double)plen / ((double)m / 1e9) / 1e6,
           (double)n / ((double)m / 1e9) / 1e6);

    // Long text: 1 MiB, to show the cost stays linear-ish.
    size_t big = 1 << 20;
    char *text = malloc(big);
    for (size_t i = 0; i < big; i++)
        text[i] = prompt[i % plen];
    for (int r = 0; r < 5; r++) {
        uint64_t t0 = cpu_ns();
        gf_tokenizer_encode(tok, text, big, 0, &ids, &n);
        t[r] = cpu_ns() - t0;
        if (r < 4)
            gf_free(ids);
    }
    m = median(t, 5);
    printf("encode 1 MiB (%zu tokens): median %.1f ms, %.1f MB/s\n", n, (double)m / 1e6,
           (double)big / ((double)m / 1e9) / 1e6);
    int32_t *ref;
    size_t nref;
    uint64_t whole = cpu_ns();
    gf_tokenizer_encode(tok, text, big, GF_TOK_WHOLE_RUNS, &ref, &nref);
    whole = cpu_ns() - whole;
    printf("  same text merged as one run (reference path): %.1f ms (%.1fx slower), ids %s\n",
           (double)whole / 1e6, (double)whole / (double)m,
           nref == n && memcmp(ref, ids, n * sizeof(*ids)) == 0 ? "identical" : "DIFFER");
    gf_free(ref);
    struct gf_buf out;
    gf_buf_init(&out, 4 * big);
    for (int r = 0; r < 5; r++) {
        gf_buf_reset(&out);
        uint64_t t0 = cpu_ns();
        gf_tokenizer_decode(tok, ids, n, 0, &out);
        t[r] = cpu_ns() - t0;
    }
    m = median(t, 5);
    printf("decode %zu tokens (streaming decoder): median %.2f ms, %.1f M tokens/s\n", n,
           (double)m / 1e6, (double)n / ((double)m / 1e9) / 1e6);
    gf_buf_cleanup(&out);
    gf_free(ids);
    free(text);

    // Dequantization of a 4096 x 256 weight tile per type.
    size_t elems = 4096 * 256;
    float *src = malloc(elems * sizeof(float)), *dst = malloc(elems * sizeof(float));
    uint8_t *q = malloc(elems * 4);
    for (size_t i = 0; i < elems; i++)
        src[i] = (float)((i * 2654435761u) % 2000) / 1000.0f - 1.0f;
    static const int types[] = {GF_TYPE_F16, GF_TYPE_BF16, GF_TYPE_Q8_0, GF_TYPE_Q4_0,
                                GF_TYPE_Q4_1, GF_TYPE_Q5_0, GF_TYPE_Q5_1};
    for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
        gf_quantize(types[k], src, q, elems);
        for (int r = 0; r < 7; r++) {
            uint64_t t0 = cpu_ns();
            gf_dequantize(types[k], q, dst, elems);
            t[r] = cpu_ns() - t0;
        }
        m = median(t, 7);
        printf("dequantize %-5s: %.0f M elements/s (scalar reference path)\n",
               gf_tensor_type_name(types[k]), (double)elems / ((double)m / 1e9) / 1e6);
    }
    free(src);
    free(dst);
    free(q);
    gf_tokenizer_free(tok);
    gf_gguf_close(g);
    return 0;
}
