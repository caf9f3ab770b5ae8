/* cmd_model_synth.c — `gardefou model synth`: writes a random-weight Llama GGUF of a named shape
 * (engine/llama_synth.c) for tests, benchmarks and trying the server without a real model.
 * Exit status: 0 written, 2 bad usage or the file could not be written. */
#include "gateway/cli.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "engine/engine.h"

#define DEFAULT_VOCAB "../shared/models/ggml-vocab-llama-spm.gguf"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gardefou model synth --shape NAME --type TYPE --out FILE [--seed S]\n"
            "                            [--vocab FILE | --no-vocab]\n\n"
            "Writes a Llama GGUF with random weights (normal, sigma 0.02; norms 1) of a named\n"
            "shape, for benchmarks and tests. Its text is meaningless.\n\n"
            "  --shape NAME   %s\n"
            "                 (stories110m: dim 768, 12 layers, 12 heads, ff 2048, tied output;\n"
            "                  tinyllama: dim 2048, 22 layers, 32 heads / 4 kv, ff 5632;\n"
            "                  tiny: dim 64, 2 layers, 4 heads / 2 kv, ff 128)\n"
            "  --type TYPE    f32, f16, q8_0 or q4_0 (every matrix; norms stay f32)\n"
            "  --out FILE     where to write (atomically)\n"
            "  --seed S       random seed (default 1234); the same seed gives the same file\n"
            "  --vocab FILE   copy the vocabulary (tokenizer.* keys) from this GGUF; default\n"
            "                 %s when it exists\n"
            "  --no-vocab     use a small generated vocabulary (bytes and some words)\n",
            gf_llama_synth_shapes(), DEFAULT_VOCAB);
}

int gf_cmd_model_synth(int argc, char **argv)
{
    if (gf_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *shape = NULL, *type = NULL, *out = NULL, *vocab = NULL;
    bool no_vocab = false;
    int64_t seed = 1234;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--no-vocab") == 0) {
            no_vocab = true;
        } else if (has && strcmp(a, "--shape") == 0) {
            shape = argv[++i];
        } else if (has && strcmp(a, "--type") == 0) {
            type = argv[++i];
        } else if (has && strcmp(a, "--out") == 0) {
            out = argv[++i];
        } else if (has && strcmp(a, "--vocab") == 0) {
            vocab = argv[++i];
        } else if (has && strcmp(a, "--seed") == 0) {
            if (gf_parse_i64(argv[++i], 0, INT64_MAX, &seed) != 0) {
                fprintf(stderr, "gardefou model synth: --seed: expected an integer >= 0\n");
                return 2;
            }
        } else {
            fprintf(stderr, "gardefou model synth: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (shape == NULL || type == NULL || out == NULL) {
        fprintf(stderr, "gardefou model synth: --shape, --type and --out are required\n");
        usage(stderr);
        return 2;
    }
    if (no_vocab)
        vocab = NULL;
    else if (vocab == NULL && access(DEFAULT_VOCAB, R_OK) == 0)
        vocab = DEFAULT_VOCAB;
    struct gf_err err = {0};
    if (gf_llama_synth(shape, type, (uint64_t)seed, vocab, out, &err) != 0) {
        fprintf(stderr, "gardefou model synth: %s\n", err.msg);
        return 2;
    }
    fprintf(stderr, "wrote %s (shape %s, type %s, vocabulary %s)\n", out, shape, type,
            vocab != NULL ? vocab : "generated");
    return 0;
}
