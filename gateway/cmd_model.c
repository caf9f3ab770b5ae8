/* cmd_model.c — `gardefou model info|synth`: inspect a GGUF model file, or write a synthetic one
 * (synth: engine/llama's part). `info` prints the version, every metadata key (long strings and
 * arrays abbreviated unless --full), the tensor table, the totals, and what the engine makes of
 * it (tokenizer, chat template). Exit status: 0 success,
 * 2 bad usage or a file that is not a valid GGUF (the reader's message names the problem). */
#include "gateway/cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "engine/gguf.h"
#include "engine/tokenizer.h"

#define SHORT_STRING 64  // bytes of a string shown without --full
#define SHORT_ARRAY  4   // elements of an array shown without --full

static void info_usage(FILE *f)
{
    fprintf(f, "usage: gardefou model info [--full] [--no-tensors] FILE\n\n"
               "Prints what a GGUF model file holds: format version, metadata, tensors (name,\n"
               "type, dimensions, bytes) and totals. The file is checked as the engine checks it;\n"
               "a broken or hostile file is reported with the reason and exit status 2.\n\n"
               "  --full         print strings and arrays whole (default: abbreviated)\n"
               "  --no-tensors   skip the tensor table\n");
}

static int info(int argc, char **argv);

/* The subcommands of `gardefou model`, one row each (synth: engine/llama's model_synth). */
static const struct gf_cmd model_cmds[] = {
    {"info", info, "print the metadata and tensors of a GGUF file"},
    {"synth", gf_cmd_model_synth, "write a random-weight Llama GGUF of a named shape"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: gardefou model <command> [options]\n\n");
    for (const struct gf_cmd *c = model_cmds; c->name; c++)
        fprintf(f, "  %-7s %s\n", c->name, c->summary);
    fprintf(f, "\nRun `gardefou model <command> --help` for its options.\n");
}

/* Prints s[0..n) as a quoted string with C escapes, cut at max bytes (0 = no cut). */
static void put_str(const char *s, size_t n, size_t max)
{
    size_t shown = max && n > max ? max : n;
    putchar('"');
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);  // UTF-8 bytes pass through
    }
    putchar('"');
    if (shown < n)
        printf("... (%zu bytes)", n);
}

static void put_scalar(const struct gf_gguf_value *v)
{
    switch (v->type) {
    case GF_GGUF_TYPE_BOOL:
        fputs(v->num.u ? "true" : "false", stdout);
        break;
    case GF_GGUF_TYPE_INT8:
    case GF_GGUF_TYPE_INT16:
    case GF_GGUF_TYPE_INT32:
    case GF_GGUF_TYPE_INT64:
        printf("%" PRId64, v->num.i);
        break;
    case GF_GGUF_TYPE_FLOAT32:
    case GF_GGUF_TYPE_FLOAT64:
        printf("%.9g", v->num.f);
        break;
    default:
        printf("%" PRIu64, v->num.u);
        break;
    }
}

static void put_array(const struct gf_gguf_arr *a, bool full)
{
    printf("[%s x %" PRIu64 "]", gf_gguf_type_name(a->elem_type), a->n);
    uint64_t shown = full || a->n <= SHORT_ARRAY ? a->n : SHORT_ARRAY;
    for (uint64_t i = 0; i < shown; i++) {
        fputs(i ? ", " : " ", stdout);
        if (a->elem_type == GF_GGUF_TYPE_STRING) {
            const char *s;
            size_t len;
            gf_gguf_arr_str(a, i, &s, &len);
            put_str(s, len, full ? 0 : SHORT_STRING);
        } else {
            int64_t iv;
            double d;
            if (a->elem_type == GF_GGUF_TYPE_FLOAT32 || a->elem_type == GF_GGUF_TYPE_FLOAT64) {
                gf_gguf_arr_f64(a, i, &d);
                printf("%.9g", d);
            } else if (a->elem_type == GF_GGUF_TYPE_BOOL) {
                gf_gguf_arr_i64(a, i, &iv);
                fputs(iv ? "true" : "false", stdout);
            } else if (gf_gguf_arr_i64(a, i, &iv) == 0) {
                printf("%" PRId64, iv);
            } else {  // UINT64 past INT64_MAX
                gf_gguf_arr_f64(a, i, &d);
                printf("%.0f", d);
            }
        }
    }
    if (shown < a->n)
        fputs(", ...", stdout);
}

static void human(uint64_t bytes, char *out, size_t n)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(out, n, u ? "%.2f %s" : "%.0f %s", v, units[u]);
}

/* What the engine would make of the file: its tokenizer and the chat template it would use. */
static void summary(const struct gf_gguf *g)
{
    struct gf_tokenizer *tok = NULL;
    struct gf_err err = {0};
    printf("\ntokenizer: ");
    if (gf_tokenizer_from_gguf(g, &tok, &err) == 0) {
        printf("SentencePiece, %d tokens, BOS %d, EOS %d, UNK %d, adds BOS: %s\n",
               (int)gf_tokenizer_n_vocab(tok), (int)gf_tokenizer_bos(tok),
               (int)gf_tokenizer_eos(tok), (int)gf_tokenizer_unk(tok),
               gf_tokenizer_add_bos(tok) ? "yes" : "no");
        gf_tokenizer_free(tok);
    } else {
        printf("none usable (%s)\n", err.msg);
    }
    int tmpl;
    const char *j;
    size_t len;
    bool in_file = gf_gguf_get_str(g, "tokenizer.chat_template", &j, &len) == 0;
    err = (struct gf_err){0};
    if (gf_template_choose(g, NULL, &tmpl, &err) == 0)
        printf("chat template: %s (%s)\n", gf_template_name(tmpl),
               in_file ? "recognized in tokenizer.chat_template" : "default: the file has none");
    else
        printf("chat template: %s\n", err.msg);
}

static int info(int argc, char **argv)
{
    bool full = false, tensors = true;
    const char *path = NULL;
    if (gf_cli_wants_help(argc, argv)) {
        info_usage(stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--full") == 0) {
            full = true;
        } else if (strcmp(argv[i], "--no-tensors") == 0) {
            tensors = false;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "gardefou model info: unknown option '%s'\n", argv[i]);
            info_usage(stderr);
            return 2;
        } else if (path == NULL) {
            path = argv[i];
        } else {
            fprintf(stderr, "gardefou model info: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (path == NULL) {
        info_usage(stderr);
        return 2;
    }
    struct gf_gguf *g = NULL;
    struct gf_err err = {0};
    if (gf_gguf_open(path, &g, &err) != 0) {
        fprintf(stderr, "gardefou model info: %s\n", err.msg);
        return 2;
    }
    char size[32];
    human(gf_gguf_file_size(g), size, sizeof(size));
    printf("%s: GGUF version %" PRIu32 ", %" PRIu64 " bytes (%s), alignment %" PRIu64
           ", data at offset %" PRIu64 "\n",
           path, gf_gguf_version(g), gf_gguf_file_size(g), size, gf_gguf_alignment(g),
           gf_gguf_data_offset(g));

    size_t nkv = gf_gguf_n_kv(g);
    size_t width = 0;
    for (size_t i = 0; i < nkv; i++) {
        size_t l = strlen(gf_gguf_kv_key(g, i));
        width = l > width ? l : width;
    }
    printf("\nmetadata: %zu keys\n", nkv);
    for (size_t i = 0; i < nkv; i++) {
        struct gf_gguf_value v;
        gf_gguf_kv_value(g, i, &v);
        printf("  %-*s  %-7s  ", (int)width, gf_gguf_kv_key(g, i), gf_gguf_type_name(v.type));
        if (v.type == GF_GGUF_TYPE_STRING)
            put_str(v.str, v.len, full ? 0 : SHORT_STRING);
        else if (v.type == GF_GGUF_TYPE_ARRAY)
            put_array(&v.arr, full);
        else
            put_scalar(&v);
        putchar('\n');
    }

    size_t nt = gf_gguf_n_tensors(g);
    uint64_t total_bytes = 0, total_elems = 0;
    uint64_t per_type[GF_TYPE_COUNT] = {0};
    size_t nwidth = 4;
    for (size_t i = 0; i < nt; i++) {
        size_t l = strlen(gf_gguf_tensor_at(g, i)->name);
        nwidth = l > nwidth ? l : nwidth;
    }
    printf("\ntensors: %zu\n", nt);
    if (tensors && nt > 0)
        printf("  %-*s  %-7s  %-24s  %12s  %12s\n", (int)nwidth, "name", "type", "dims",
               "bytes", "offset");
    for (size_t i = 0; i < nt; i++) {
        const struct gf_gguf_tensor *t = gf_gguf_tensor_at(g, i);
        uint64_t elems = 1;
        char dims[96];
        size_t k = 0;
        for (int d = 0; d < t->n_dims; d++) {
            elems *= t->ne[d];
            k += (size_t)snprintf(dims + k, sizeof(dims) - k, d ? " x %" PRIu64 : "%" PRIu64,
                                  t->ne[d]);
            if (k >= sizeof(dims))
                k = sizeof(dims) - 1;
        }
        total_bytes += t->nbytes;
        total_elems += elems;
        per_type[t->type]++;
        if (tensors)
            printf("  %-*s  %-7s  %-24s  %12" PRIu64 "  %12" PRIu64 "\n", (int)nwidth, t->name,
                   gf_tensor_type_name(t->type), dims, t->nbytes, t->offset);
    }
    human(total_bytes, size, sizeof(size));
    printf("\ntotal: %zu tensors, %" PRIu64 " elements, %" PRIu64 " bytes of tensor data (%s)",
           nt, total_elems, total_bytes, size);
    const char *sep = "; ";
    for (int ty = 0; ty < GF_TYPE_COUNT; ty++) {
        if (per_type[ty] == 0)
            continue;
        printf("%s%s: %" PRIu64, sep, gf_tensor_type_name(ty), per_type[ty]);
        sep = ", ";
    }
    putchar('\n');
    for (int ty = 0; ty < GF_TYPE_COUNT; ty++)
        if (per_type[ty] && !gf_tensor_type_can_dequantize(ty))
            printf("note: gardefou cannot decode %s tensors\n", gf_tensor_type_name(ty));
    summary(g);
    gf_gguf_close(g);
    return fflush(stdout) == 0 ? 0 : 2;
}

int gf_cmd_model(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (const struct gf_cmd *c = model_cmds; c->name; c++) {
        if (strcmp(c->name, argv[1]) != 0)
            continue;
        return c->run(argc - 1, argv + 1);
    }
    fprintf(stderr, "gardefou model: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
