/* main.c — the gardefou binary: dispatches to subcommands. Each subcommand lives in its own
 * file and prints its own usage with --help. */
#include "gateway/cli.h"

#include <stdio.h>
#include <string.h>

#include "common/common.h"

static int cmd_version(int argc, char **argv);
static int cmd_help(int argc, char **argv);

const struct gf_cmd gf_commands[] = {
    {"serve", gf_cmd_serve, "run the OpenAI-compatible gateway"},
    {"policy", gf_cmd_policy, "check or test a content policy file (gardefou policy check F)"},
    {"classify", gf_cmd_classify, "print the policy verdict of a text as JSON"},
    {"help", cmd_help, "show this help, or a subcommand's (gardefou help serve)"},
    {"version", cmd_version, "print the version"},
    {"keys", gf_cmd_keys, "create, list, revoke, rotate API keys (admin API)"},
    {"generate", gf_cmd_generate, "generate text with a local GGUF model, printed as it comes"},
    {"model", gf_cmd_model, "inspect or synthesize GGUF model files (model info|synth)"},
    {"audit", gf_cmd_audit, "verify or search the audit log (gardefou audit verify|query)"},
    {"train", gf_cmd_train, "train the moderation classifier from a recipe"},
    {"eval", gf_cmd_eval, "measure a classifier model on labelled JSONL"},
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: gardefou <command> [options]\n\n"
               "gardefou is a content-safety gateway for language models: an OpenAI-compatible\n"
               "HTTP server that filters prompts and completions, revokes keys and audits.\n\n"
               "commands:\n");
    for (const struct gf_cmd *c = gf_commands; c->name; c++)
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f, "\nRun `gardefou <command> --help` for a command's options.\n");
}

static const struct gf_cmd *find(const char *name)
{
    for (const struct gf_cmd *c = gf_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

static int cmd_version(int argc, char **argv)
{
    if (gf_cli_wants_help(argc, argv)) {
        printf("usage: gardefou version\n\nPrints the version of gardefou.\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "gardefou version: unexpected argument '%s'\n", argv[1]);
        return 2;
    }
    printf("gardefou %s\n", GF_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "-h") != 0 && strcmp(argv[1], "--help") != 0) {
        const struct gf_cmd *c = find(argv[1]);
        if (c == NULL) {
            fprintf(stderr, "gardefou: unknown command '%s'\n", argv[1]);
            usage(stderr);
            return 2;
        }
        char *sub[] = {argv[1], (char *)"--help", NULL};
        return c->run(2, sub);
    }
    usage(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    gf_json_init();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(1, argv + 1);
    const struct gf_cmd *c = find(argv[1]);
    if (c == NULL) {
        fprintf(stderr, "gardefou: unknown command '%s'\n\n", argv[1]);
        usage(stderr);
        return 2;
    }
    return c->run(argc - 1, argv + 1);
}
