/* cli.h — the subcommands of the gardefou binary. Each takes the arguments after its name
 * (argv[0] is the subcommand itself) and returns the process exit status: 0 success, 1 a
 * negative answer (e.g. verify found a break), 2 bad usage or invalid input. */
#ifndef GF_CLI_H
#define GF_CLI_H

typedef int (*gf_cmd_fn)(int argc, char **argv);

struct gf_cmd {
    const char *name;
    gf_cmd_fn run;
    const char *summary;
};

/* The table of subcommands, in the order `gardefou help` lists them (main.c). */
extern const struct gf_cmd gf_commands[];

/* `gardefou audit verify|query` (cmd_audit.c). */
int gf_cmd_audit(int argc, char **argv);

/* True when argv holds -h or --help; subcommands print their usage and exit 0 then. */
int gf_cli_wants_help(int argc, char **argv);

/* `gardefou model info|synth`: inspect or write GGUF model files (cmd_model.c). */
int gf_cmd_model(int argc, char **argv);
int gf_cmd_model_synth(int argc, char **argv);  // gardefou model synth (cmd_model_synth.c)
int gf_cmd_generate(int argc, char **argv);
/* `gardefou serve`: the gateway (cmd_serve.c). */
int gf_cmd_serve(int argc, char **argv);
/* gardefou keys: API keys through the admin API (cmd_keys.c). */
int gf_cmd_keys(int argc, char **argv);

/* Content policy tools (cmd_policy.c, cmd_classify.c, docs/policy.md). */
int gf_cmd_policy(int argc, char **argv);
int gf_cmd_classify(int argc, char **argv);

/* Trained classifiers (cmd_train.c, cmd_eval.c; docs/classifiers.md). */
int gf_cmd_train(int argc, char **argv);
int gf_cmd_eval(int argc, char **argv);

#endif
