/* fuzz_tokenizer.c — arbitrary bytes (any UTF-8 validity) through the tokenizer, the streaming
 * decoder and the chat templates, over a small vocabulary built in memory (byte fallback,
 * merges, control and user-defined tokens). Checks, and aborts when one fails: every id is in
 * the vocabulary; merging word by word equals merging whole runs; valid UTF-8 without '<' decodes back to itself; decoded text is always valid
 * UTF-8; a message's content can never add a control token to a rendered chat. The first input
 * byte picks the encode flags and where the text splits into two messages. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"
#include "engine/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct gf_tokenizer *tok;
static void *vocab_mem;
static struct gf_gguf *vocab;

/* ids: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then pieces, then special texts. */
static void build_vocab(void)
{
    static const char *pieces[] = {
        "\xe2\x96\x81", "\xe2\x96\x81t", "\xe2\x96\x81th", "\xe2\x96\x81the", "th", "he", "in",
        "an", "er", "e", "t", "h", "a", "n", "i", "r", "\xe2\x96\x81\xe2\x96\x81", "\xc3\xa9",
        "caf\xc3\xa9", "ca", "f", "c", "<", ">", "s", "/",
    };
    const char *toks[300];
    char bytes[256][7];
    float scores[300];
    int32_t types[300];
    size_t n = 0;
    toks[n] = "<unk>", types[n] = GF_TOKEN_UNKNOWN, scores[n++] = 0;
    toks[n] = "<s>", types[n] = GF_TOKEN_CONTROL, scores[n++] = 0;
    toks[n] = "</s>", types[n] = GF_TOKEN_CONTROL, scores[n++] = 0;
    for (int b = 0; b < 256; b++) {
        snprintf(bytes[b], sizeof(bytes[b]), "<0x%02X>", b);
        toks[n] = bytes[b], types[n] = GF_TOKEN_BYTE, scores[n++] = 0;
    }
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++)
        toks[n] = pieces[i], types[n] = GF_TOKEN_NORMAL, scores[n++] = -(float)i;
    toks[n] = "<|im_start|>", types[n] = GF_TOKEN_CONTROL, scores[n++] = 0;
    toks[n] = "<|im_end|>", types[n] = GF_TOKEN_CONTROL, scores[n++] = 0;
    toks[n] = "<tool>", types[n] = GF_TOKEN_USER_DEFINED, scores[n++] = 0;
    struct gf_gguf_writer *w = gf_gguf_writer_new();
    size_t len;
    if (w == NULL || gf_gguf_writer_add_str(w, "tokenizer.ggml.model", "llama", 5) ||
        gf_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, n) ||
        gf_gguf_writer_add_arr(w, "tokenizer.ggml.scores", GF_GGUF_TYPE_FLOAT32, scores, n) ||
        gf_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GF_GGUF_TYPE_INT32, types, n) ||
        gf_gguf_writer_write_mem(w, &vocab_mem, &len) ||
        gf_gguf_open_mem(vocab_mem, len, &vocab, NULL) ||
        gf_tokenizer_from_gguf(vocab, &tok, NULL))
        abort();
    gf_gguf_writer_free(w);
}

static size_t count(const int32_t *ids, size_t n, int32_t id)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ids[i] == id;
    return c;
}

static void check_templates(const char *a, size_t an, const char *b, size_t bn)
{
    char *sa = gf_strndup(a, an), *sb = gf_strndup(b, bn);
    if (sa == NULL || sb == NULL)
        abort();
    struct gf_chat_msg msgs[2] = {{"system", sa}, {"user", sb}};
    int32_t im_start = gf_tokenizer_find(tok, "<|im_start|>", 12);
    int32_t im_end = gf_tokenizer_find(tok, "<|im_end|>", 10);
    for (int tmpl = 0; tmpl < GF_TEMPLATE_COUNT; tmpl++) {
        int32_t *ids;
        size_t n;
        if (gf_template_encode(tok, tmpl, msgs, 2, &ids, &n) != 0)
            abort();
        size_t bos = count(ids, n, 1), eos = count(ids, n, 2);
        size_t ims = count(ids, n, im_start), ime = count(ids, n, im_end);
        bool ok = tmpl == GF_TEMPLATE_LLAMA2   ? bos == 1 && eos == 0 && ims == 0 && ime == 0
                  : tmpl == GF_TEMPLATE_CHATML ? bos == 1 && eos == 0 && ims == 3 && ime == 2
                                               : bos == 1 && eos == 2 && ims == 0 && ime == 0;
        if (!ok) {
            fprintf(stderr, "template %d: bos %zu eos %zu im_start %zu im_end %zu\n", tmpl, bos,
                    eos, ims, ime);
            abort();
        }
        gf_free(ids);
    }
    gf_free(sa);
    gf_free(sb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (tok == NULL)
        build_vocab();
    if (size == 0)
        return 0;
    unsigned flags = data[0] & 3;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    int32_t *ids;
    size_t n;
    if (gf_tokenizer_encode(tok, text, len, flags, &ids, &n) != 0)
        abort();
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= gf_tokenizer_n_vocab(tok))
            abort();
    // Merging word by word gives exactly what merging whole runs gives.
    int32_t *ref;
    size_t nref;
    if (gf_tokenizer_encode(tok, text, len, flags | GF_TOK_WHOLE_RUNS, &ref, &nref) != 0)
        abort();
    if (nref != n || (n > 0 && memcmp(ref, ids, n * sizeof(*ids)) != 0))
        abort();
    gf_free(ref);
    // Streaming decode: each step's output is valid UTF-8; so is the whole.
    struct gf_buf out;
    gf_buf_init(&out, 1 << 24);
    struct gf_detok d;
    gf_detok_init(&d, tok, (flags & 1) ? 0 : GF_DETOK_STRIP_SPACE);
    size_t skip = (flags & GF_TOK_ADD_SPECIAL) && n > 0 ? 1 : 0;
    for (size_t i = skip; i < n; i++) {
        if (gf_detok_push(&d, ids[i], &out) != 0)
            abort();
        if (!gf_utf8_valid(out.data ? out.data : "", out.len))
            abort();
    }
    if (gf_detok_finish(&d, &out) != 0 || !gf_utf8_valid(out.data ? out.data : "", out.len))
        abort();
    if (!(flags & 1) && gf_utf8_valid(text, len) && memchr(text, '<', len) == NULL &&
        memmem(text, len, "\xe2\x96\x81", 3) == NULL) {
        if (out.len != len || (len > 0 && memcmp(out.data, text, len) != 0))
            abort();
    }
    gf_buf_cleanup(&out);
    gf_free(ids);
    size_t cut = len > 0 ? data[0] % (len + 1) : 0;
    check_templates(text, cut, text + cut, len - cut);
    return 0;
}
