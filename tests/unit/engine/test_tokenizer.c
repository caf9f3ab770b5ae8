/* Unit tests of the SentencePiece tokenizer (engine/tokenizer.c) and the streaming decoder
 * (engine/detok.c): llama.cpp's 46 conformance cases on the Llama 2 vocabulary, the reference
 * prompt ids of the shared models, byte fallback, special tokens, UTF-8 split across tokens,
 * hostile vocabularies and OOM loops. Needs ../shared/models (skips without it). */
#include "engine/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test.h"

static char models[1024];

static char *slurp(const char *name, size_t *len)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/%s", models, name);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    if (p == NULL || fread(p, 1, (size_t)n, f) != (size_t)n) {
        free(p);
        fclose(f);
        return NULL;
    }
    fclose(f);
    p[n] = '\0';
    *len = (size_t)n;
    return p;
}

struct model {
    struct gf_gguf *g;
    struct gf_tokenizer *t;
};

static int load(const char *name, struct model *m)
{
    char path[1200];
    snprintf(path, sizeof(path), "%s/%s", models, name);
    struct gf_err err = {0};
    m->g = NULL;
    m->t = NULL;
    int rc = gf_gguf_open(path, &m->g, &err);
    if (rc == 0)
        rc = gf_tokenizer_from_gguf(m->g, &m->t, &err);
    CHECK_MSG(rc == 0, "%s: %s", name, err.msg);
    return rc;
}

static void unload(struct model *m)
{
    gf_tokenizer_free(m->t);
    gf_gguf_close(m->g);
}

static bool ids_equal(const int32_t *a, size_t na, const int32_t *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof(*a)) == 0);
}

static void print_ids(const char *what, const int32_t *v, size_t n)
{
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, " %d", v[i]);
    fputc('\n', stderr);
}

static void check_encode(const struct gf_tokenizer *t, const char *text, unsigned flags,
                         const int32_t *want, size_t nwant)
{
    int32_t *ids = NULL;
    size_t n = 0;
    CHECK(gf_tokenizer_encode(t, text, strlen(text), flags, &ids, &n) == 0);
    bool ok = ids != NULL && ids_equal(ids, n, want, nwant);
    CHECK_MSG(ok, "encode \"%s\"", text);
    if (!ok && ids != NULL) {
        print_ids("got ", ids, n);
        print_ids("want", want, nwant);
    }
    gf_free(ids);
}

/* llama.cpp's conformance cases: .inp holds strings separated by "\n__ggml_vocab_test__\n",
 * .out one line of ids per string (no BOS, special tokens not parsed). */
static void test_conformance(void)
{
    struct model m;
    if (load("ggml-vocab-llama-spm.gguf", &m) != 0)
        return;
    size_t ilen, olen;
    char *inp = slurp("ggml-vocab-llama-spm.gguf.inp", &ilen);
    char *out = slurp("ggml-vocab-llama-spm.gguf.out", &olen);
    REQUIRE(inp != NULL && out != NULL);
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char *ip = inp, *op = out;
    int cases = 0, passed = 0, round_trips = 0;
    for (;;) {
        char *end = strstr(ip, sep);
        if (end == NULL)
            break;
        char *eol = strchr(op, '\n');
        REQUIRE(eol != NULL);
        *eol = '\0';
        int32_t want[1024];
        size_t nw = 0;
        for (char *tok = op; *tok;) {
            while (*tok == ' ')
                tok++;
            if (*tok == '\0')
                break;
            want[nw++] = (int32_t)strtol(tok, &tok, 10);
        }
        int32_t *ids = NULL;
        size_t n = 0;
        size_t len = (size_t)(end - ip);
        CHECK(gf_tokenizer_encode(m.t, ip, len, 0, &ids, &n) == 0);
        cases++;
        int32_t *ref = NULL;
        size_t nref = 0;
        CHECK(gf_tokenizer_encode(m.t, ip, len, GF_TOK_WHOLE_RUNS, &ref, &nref) == 0);
        CHECK_MSG(ref != NULL && ids_equal(ref, nref, want, nw), "case %d, whole runs", cases);
        gf_free(ref);
        if (ids != NULL && ids_equal(ids, n, want, nw)) {
            passed++;
        } else {
            fprintf(stderr, "case %d \"%.*s\" differs\n", cases, (int)len, ip);
            if (ids != NULL) {
                print_ids("got ", ids, n);
                print_ids("want", want, nw);
            }
        }
        // Decoding gives the input back (the dummy prefix space stripped).
        struct gf_buf b;
        gf_buf_init(&b, 1 << 20);
        CHECK(gf_tokenizer_decode(m.t, ids, n, GF_DETOK_STRIP_SPACE, &b) == 0);
        if (b.len == len && (len == 0 || memcmp(b.data, ip, len) == 0))
            round_trips++;
        else
            fprintf(stderr, "case %d does not decode back: \"%s\"\n", cases, b.data ? b.data : "");
        gf_buf_cleanup(&b);
        gf_free(ids);
        ip = end + strlen(sep);
        op = eol + 1;
    }
    CHECK_MSG(cases == 46, "%d cases", cases);
    CHECK_MSG(passed == cases, "%d of %d cases pass", passed, cases);
    CHECK_MSG(round_trips == cases, "%d of %d decode back", round_trips, cases);
    free(inp);
    free(out);
    unload(&m);
}

static void test_reference_prompts(void)
{
    struct model m;
    if (load("stories260K.gguf", &m) == 0) {
        CHECK(gf_tokenizer_n_vocab(m.t) == 512);
        CHECK(gf_tokenizer_bos(m.t) == 1 && gf_tokenizer_eos(m.t) == 2 &&
              gf_tokenizer_unk(m.t) == 0);
        CHECK(gf_tokenizer_add_bos(m.t) && !gf_tokenizer_add_eos(m.t));
        static const int32_t once[] = {1, 403, 407, 261, 378};
        check_encode(m.t, "Once upon a time", GF_TOK_ADD_SPECIAL, once, 5);
        static const int32_t lily[] = {1, 317, 269, 368, 302, 263, 377, 267, 265, 282, 295, 433};
        check_encode(m.t, "Lily and Ben went to the park", GF_TOK_ADD_SPECIAL, lily, 12);
        static const int32_t dog[] = {1, 291, 376, 400, 428};
        check_encode(m.t, "The little dog", GF_TOK_ADD_SPECIAL, dog, 5);
        // The reference generation decodes to the reference text.
        static const int32_t gen[] = {432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426};
        struct gf_buf b;
        gf_buf_init(&b, 4096);
        CHECK(gf_tokenizer_decode(m.t, gen, GF_ARRAY_LEN(gen), 0, &b) == 0);
        CHECK_STREQ(b.data, ", there was a little girl named Lily.");
        // The whole reference run (prompt without BOS, then 64 generated ids) decodes to
        // llama.cpp's stdout, byte for byte.
        static const int32_t run[] = {
            403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401,
            396, 267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432,
            358, 394, 261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312,
            432, 398, 312, 286, 267, 414, 270, 333, 415, 426, 13,  438, 310, 439, 419, 357, 336};
        gf_buf_reset(&b);
        struct gf_detok d;
        gf_detok_init(&d, m.t, 0);
        CHECK(gf_detok_push(&d, 1, &b) == 0 && b.len == 0);  // BOS: no text
        for (size_t i = 0; i < GF_ARRAY_LEN(run); i++)
            CHECK(gf_detok_push(&d, run[i], &b) == 0);
        CHECK(gf_detok_finish(&d, &b) == 0);
        CHECK_STREQ(b.data, " Once upon a time, there was a little girl named Lily. She loved to "
                            "play outside in the park. One day, she saw a big, red ball. She "
                            "wanted to play with it, but it was too high.\nLily's mom said");
        gf_buf_reset(&b);
        static const int32_t nl[] = {403, 13, 438};
        CHECK(gf_tokenizer_decode(m.t, nl, 3, 0, &b) == 0);
        CHECK(b.len > 6 && memcmp(b.data, " Once\n", 6) == 0);
        gf_buf_cleanup(&b);
        unload(&m);
    }
    if (load("llama-2-tiny-random.gguf", &m) == 0) {
        CHECK(gf_tokenizer_n_vocab(m.t) == 32000);
        static const int32_t once[] = {1, 9038, 2501, 263, 931};
        check_encode(m.t, "Once upon a time", GF_TOK_ADD_SPECIAL, once, 5);
        unload(&m);
    }
}

static void test_special(void)
{
    struct model m;
    if (load("ggml-vocab-llama-spm.gguf", &m) != 0)
        return;
    // Parsed only when asked; the text after a special token gets the prefix space again.
    static const int32_t parsed[] = {1, 15043, 2, 29871, 22172};
    check_encode(m.t, "<s>Hello</s> hello", GF_TOK_PARSE_SPECIAL, parsed, 5);
    int32_t *ids;
    size_t n;
    CHECK(gf_tokenizer_encode(m.t, "<s>Hello</s>", 12, 0, &ids, &n) == 0);
    bool no_control = true;
    for (size_t i = 0; i < n; i++)
        no_control &= gf_tokenizer_type(m.t, ids[i]) != GF_TOKEN_CONTROL;
    CHECK(no_control && n > 3);
    gf_free(ids);
    // Typed-in byte-token text stays text.
    CHECK(gf_tokenizer_encode(m.t, "<0x41>", 6, 0, &ids, &n) == 0);
    bool no_byte = true;
    for (size_t i = 0; i < n; i++)
        no_byte &= gf_tokenizer_type(m.t, ids[i]) != GF_TOKEN_BYTE;
    CHECK(no_byte);
    gf_free(ids);
    // Past the input cap: refused before reading.
    ids = (int32_t *)1;
    CHECK(gf_tokenizer_encode(m.t, "x", (size_t)GF_TOKENIZER_MAX_INPUT + 1, 0, &ids, &n) ==
          GF_ETOOBIG);
    CHECK(ids == NULL);
    // Empty input: [] or [BOS].
    CHECK(gf_tokenizer_encode(m.t, "", 0, 0, &ids, &n) == 0 && ids != NULL && n == 0);
    gf_free(ids);
    CHECK(gf_tokenizer_encode(m.t, "", 0, GF_TOK_ADD_SPECIAL, &ids, &n) == 0 && n == 1 &&
          ids[0] == 1);
    gf_free(ids);
    // Pieces.
    size_t len;
    const char *p = gf_tokenizer_piece(m.t, 1, false, &len);
    CHECK(len == 0);
    p = gf_tokenizer_piece(m.t, 1, true, &len);
    CHECK(len == 3 && memcmp(p, "<s>", 3) == 0);
    p = gf_tokenizer_piece(m.t, 15043, false, &len);
    CHECK(len == 6 && memcmp(p, " Hello", 6) == 0);
    p = gf_tokenizer_piece(m.t, 13, false, &len);  // <0x0A>
    CHECK(len == 1 && p[0] == '\n');
    p = gf_tokenizer_piece(m.t, 32000, true, &len);
    CHECK(len == 0);
    p = gf_tokenizer_piece(m.t, -1, true, &len);
    CHECK(len == 0);
    p = gf_tokenizer_text(m.t, 15043, &len);
    CHECK(p != NULL && len == 8);
    CHECK(gf_tokenizer_text(m.t, 32000, &len) == NULL);
    CHECK(gf_tokenizer_find(m.t, "\xe2\x96\x81Hello", 8) == 15043);
    CHECK(gf_tokenizer_find(m.t, "no such piece", 13) == -1);
    unload(&m);
}

static void test_stream_utf8(void)
{
    struct model m;
    if (load("ggml-vocab-llama-spm.gguf", &m) != 0)
        return;
    // "🦙" is not in the vocabulary: four byte tokens. Nothing comes out until the last one.
    static const int32_t llama[] = {243, 162, 169, 156};
    check_encode(m.t, "\xf0\x9f\xa6\x99", 0, (const int32_t[]){29871, 243, 162, 169, 156}, 5);
    struct gf_detok d;
    struct gf_buf b;
    gf_buf_init(&b, 4096);
    gf_detok_init(&d, m.t, 0);
    CHECK(gf_detok_push(&d, 15043, &b) == 0 && b.len == 6);  // " Hello"
    for (int i = 0; i < 3; i++) {
        CHECK(gf_detok_push(&d, llama[i], &b) == 0);
        CHECK(b.len == 6);
    }
    CHECK(gf_detok_push(&d, llama[3], &b) == 0);
    CHECK(b.len == 10 && memcmp(b.data + 6, "\xf0\x9f\xa6\x99", 4) == 0);
    // A character cut off at the end becomes U+FFFD on finish.
    CHECK(gf_detok_push(&d, llama[0], &b) == 0 && b.len == 10);
    CHECK(gf_detok_finish(&d, &b) == 0);
    CHECK(b.len == 13 && memcmp(b.data + 10, "\xef\xbf\xbd", 3) == 0);
    // Invalid bytes are replaced as soon as they are known to be invalid.
    gf_buf_reset(&b);
    gf_detok_init(&d, m.t, 0);
    CHECK(gf_detok_push(&d, 3 + 0xff, &b) == 0);  // <0xFF>
    CHECK(b.len == 3 && memcmp(b.data, "\xef\xbf\xbd", 3) == 0);
    CHECK(gf_detok_push(&d, 3 + 0xe2, &b) == 0 && b.len == 3);  // start of a 3-byte char
    CHECK(gf_detok_push(&d, 3 + 0x41, &b) == 0);                // 'A' breaks it
    CHECK(b.len == 7 && memcmp(b.data + 3, "\xef\xbf\xbd" "A", 4) == 0);
    // Surrogates and overlongs are invalid.
    gf_buf_reset(&b);
    static const int32_t sur[] = {3 + 0xed, 3 + 0xa0, 3 + 0x80, 3 + 0xc0, 3 + 0xaf};
    CHECK(gf_tokenizer_decode(m.t, sur, 5, 0, &b) == 0);
    CHECK(gf_utf8_valid(b.data, b.len) && b.len == 5 * 3);
    // Invalid UTF-8 input encodes through byte fallback and decodes to U+FFFD.
    int32_t *ids;
    size_t n;
    CHECK(gf_tokenizer_encode(m.t, "a\xff\xfe", 3, 0, &ids, &n) == 0);
    CHECK(n == 3 && ids[1] == 3 + 0xff && ids[2] == 3 + 0xfe);
    gf_buf_reset(&b);
    CHECK(gf_tokenizer_decode(m.t, ids, n, GF_DETOK_STRIP_SPACE, &b) == 0);
    CHECK_STREQ(b.data, "a\xef\xbf\xbd\xef\xbf\xbd");
    gf_free(ids);
    // The output buffer's cap is honoured.
    struct gf_buf small;
    gf_buf_init(&small, 4);
    gf_detok_init(&d, m.t, 0);
    CHECK(gf_detok_push(&d, 15043, &small) == GF_ETOOBIG);
    gf_buf_cleanup(&small);
    gf_buf_cleanup(&b);
    unload(&m);
}

static void test_long_input(void)
{
    struct model m;
    if (load("ggml-vocab-llama-spm.gguf", &m) != 0)
        return;
    // 256 KiB of text: must stay O(n log n) (this would take minutes if quadratic).
    size_t len = 256 * 1024;
    char *s = malloc(len);
    REQUIRE(s != NULL);
    static const char words[] = "the quick brown fox jumps over the lazy dog, naïve café 🦙 ";
    for (size_t i = 0; i < len; i++)
        s[i] = words[i % (sizeof(words) - 1)];
    int32_t *ids;
    size_t n;
    CHECK(gf_tokenizer_encode(m.t, s, len, GF_TOK_ADD_SPECIAL, &ids, &n) == 0);
    CHECK(n > len / 8 && n < len);
    struct gf_buf b;
    gf_buf_init(&b, 2 * len);
    CHECK(gf_tokenizer_decode(m.t, ids + 1, n - 1, GF_DETOK_STRIP_SPACE, &b) == 0);
    // The cut at the end may split the llama emoji: compare the valid prefix.
    size_t valid = gf_utf8_complete_prefix(s, len);
    CHECK(b.len >= valid && memcmp(b.data, s, valid) == 0);
    gf_buf_cleanup(&b);
    gf_free(ids);
    memset(s, 'a', len);  // one long run: many equal-score merges
    CHECK(gf_tokenizer_encode(m.t, s, len, 0, &ids, &n) == 0 && n > 0);
    gf_free(ids);
    free(s);
    unload(&m);
}

/* A tiny vocabulary made with the writer, to test vocab checks, USER_DEFINED tokens and OOM. */
static int tiny_vocab(const char *model, int n_scores, void **mem, size_t *len)
{
    struct gf_gguf_writer *w = gf_gguf_writer_new();
    if (w == NULL)
        return GF_ENOMEM;
    const char *toks[] = {"<unk>", "<s>", "</s>", "<0x61>", "\xe2\x96\x81", "a", "b", "ab",
                          "\xe2\x96\x81" "ab", "<tool>", ""};
    float scores[11] = {0, 0, 0, 0, -1, -2, -2, -1, -0.5f, 0, 0};
    int32_t types[11] = {2, 3, 3, 6, 1, 1, 1, 1, 1, 4, 3};
    int rc = gf_gguf_writer_add_str(w, "tokenizer.ggml.model", model, strlen(model));
    rc |= gf_gguf_writer_add_arr_str(w, "tokenizer.ggml.tokens", toks, NULL, 11);
    rc |= gf_gguf_writer_add_arr(w, "tokenizer.ggml.scores", GF_GGUF_TYPE_FLOAT32, scores,
                                 (uint64_t)n_scores);
    rc |= gf_gguf_writer_add_arr(w, "tokenizer.ggml.token_type", GF_GGUF_TYPE_INT32, types, 11);
    rc |= gf_gguf_writer_add_u32(w, "tokenizer.ggml.eos_token_id", 4294967295u);
    if (rc == 0)
        rc = gf_gguf_writer_write_mem(w, mem, len);
    gf_gguf_writer_free(w);
    return rc;
}

static void test_tiny_vocab(void)
{
    void *mem;
    size_t len;
    REQUIRE(tiny_vocab("llama", 11, &mem, &len) == 0);
    struct gf_gguf *g;
    REQUIRE(gf_gguf_open_mem(mem, len, &g, NULL) == 0);
    struct gf_tokenizer *t;
    struct gf_err err = {0};
    REQUIRE(gf_tokenizer_from_gguf(g, &t, &err) == 0);
    CHECK(gf_tokenizer_eos(t) == -1 && gf_tokenizer_bos(t) == 1);
    // "▁ab" wins over "▁" + "ab"; "a" in "ba" has no byte token other than <0x61>... but "a"
    // is a piece. 'c' has no piece and no byte token: <unk>.
    check_encode(t, "ab", 0, (const int32_t[]){8}, 1);
    check_encode(t, "ab ba", 0, (const int32_t[]){8, 4, 6, 5}, 4);
    check_encode(t, "c", 0, (const int32_t[]){4, 0}, 2);
    // USER_DEFINED tokens match even without GF_TOK_PARSE_SPECIAL; the empty control text
    // (id 10) is ignored rather than matching everywhere.
    check_encode(t, "a<tool>b", 0, (const int32_t[]){4, 5, 9, 4, 6}, 5);
    check_encode(t, "<s>", GF_TOK_PARSE_SPECIAL, (const int32_t[]){1}, 1);
    gf_tokenizer_free(t);

    // OOM loops over building the tokenizer and encoding.
    if (gf_alloc_fail_supported()) {
        for (long k = 1; k < 200; k++) {
            gf_alloc_fail_after(k, false);
            int rc = gf_tokenizer_from_gguf(g, &t, NULL);
            long failed = gf_alloc_failures();
            gf_alloc_fail_after(0, false);
            if (failed == 0) {
                CHECK(rc == 0);
                break;
            }
            CHECK(rc == GF_ENOMEM && t == NULL);
        }
        for (long k = 1; k < 200; k++) {
            int32_t *ids = NULL;
            size_t n;
            gf_alloc_fail_after(k, false);
            int rc = gf_tokenizer_encode(t, "a<tool>b ab", 11, GF_TOK_ADD_SPECIAL, &ids, &n);
            long failed = gf_alloc_failures();
            gf_alloc_fail_after(0, false);
            if (failed == 0) {
                CHECK(rc == 0 && n == 7);
                gf_free(ids);
                break;
            }
            CHECK(rc == GF_ENOMEM && ids == NULL);
        }
        gf_tokenizer_free(t);
    }
    gf_gguf_close(g);
    gf_free(mem);

    // Refusals.
    REQUIRE(tiny_vocab("gpt2", 11, &mem, &len) == 0);
    REQUIRE(gf_gguf_open_mem(mem, len, &g, NULL) == 0);
    err = (struct gf_err){0};
    CHECK(gf_tokenizer_from_gguf(g, &t, &err) == GF_EUNSUPPORTED && t == NULL);
    CHECK(strstr(err.msg, "gpt2") != NULL);
    gf_gguf_close(g);
    gf_free(mem);
    REQUIRE(tiny_vocab("llama", 10, &mem, &len) == 0);
    REQUIRE(gf_gguf_open_mem(mem, len, &g, NULL) == 0);
    err = (struct gf_err){0};
    CHECK(gf_tokenizer_from_gguf(g, &t, &err) == GF_EFORMAT && strstr(err.msg, "scores"));
    gf_gguf_close(g);
    gf_free(mem);
    struct gf_gguf_writer *w = gf_gguf_writer_new();
    REQUIRE(w != NULL);
    CHECK(gf_gguf_writer_add_u32(w, "x", 1) == 0);
    REQUIRE(gf_gguf_writer_write_mem(w, &mem, &len) == 0);
    gf_gguf_writer_free(w);
    REQUIRE(gf_gguf_open_mem(mem, len, &g, NULL) == 0);
    err = (struct gf_err){0};
    CHECK(gf_tokenizer_from_gguf(g, &t, &err) == GF_EFORMAT && strstr(err.msg, "missing"));
    gf_gguf_close(g);
    gf_free(mem);
}

int main(int argc, char **argv)
{
    snprintf(models, sizeof(models), "%s/models", argc > 1 ? argv[1] : "../shared");
    char probe[1200];
    snprintf(probe, sizeof(probe), "%s/ggml-vocab-llama-spm.gguf", models);
    if (access(probe, R_OK) != 0)
        SKIP("%s is absent", probe);
    RUN(test_conformance);
    RUN(test_reference_prompts);
    RUN(test_special);
    RUN(test_stream_utf8);
    RUN(test_long_input);
    RUN(test_tiny_vocab);
    return test_report();
}
