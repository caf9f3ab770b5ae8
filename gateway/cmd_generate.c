/* cmd_generate.c — `gardefou generate`: runs the embedded engine on one prompt and prints the
 * text as it comes (stdout), then the counts and speed (stderr). It drives the same engine
 * interface as the server, on its own libevent loop. Exit status: 0 done, 1 the generation
 * failed, 2 bad usage or a model that cannot be loaded. */
#include "gateway/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "common/common.h"
#include "engine/engine.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: gardefou generate --model FILE --prompt TEXT [options]\n\n"
               "Generates text with a GGUF model (Llama 2 family) and prints it as it comes.\n\n"
               "  --model FILE      the GGUF model\n"
               "  --prompt TEXT     the prompt (BOS is added as the vocabulary says)\n"
               "  --chat            treat the prompt as a user message of a chat (template)\n"
               "  -n N              tokens to generate (default 128; -1 = until the context ends)\n"
               "  --temp T          temperature, 0 = greedy (default 0.8)\n"
               "  --top-k K         keep the K likeliest tokens (default 40; 0 = off)\n"
               "  --top-p P         nucleus sampling (default 0.95)\n"
               "  --seed S          random seed (default: random)\n"
               "  --ctx N           context length (default: the model's)\n"
               "  --threads N       compute threads (default: all cores)\n");
}

struct gen_state {
    struct event_base *base;
    int status;
    struct gf_gen_usage usage;
    const char *finish;
    char finish_buf[32];
};

static void on_event(void *ud, const struct gf_gen_event *ev)
{
    struct gen_state *s = ud;
    switch (ev->type) {
    case GF_GEN_EV_DELTA:
        fwrite(ev->text, 1, ev->len, stdout);
        fflush(stdout);
        return;
    case GF_GEN_EV_DONE:
        s->usage = ev->usage;
        snprintf(s->finish_buf, sizeof(s->finish_buf), "%s",
                 ev->finish_reason ? ev->finish_reason : "stop");
        s->finish = s->finish_buf;
        break;
    case GF_GEN_EV_ERROR:
        fprintf(stderr, "\ngardefou generate: %s\n", ev->err_msg ? ev->err_msg : "failed");
        s->usage = ev->usage;
        s->status = 1;
        break;
    }
    event_base_loopbreak(s->base);
}

static int parse_num(const char *opt, const char *v, double lo, double hi, double *out)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end != '\0' || !(d >= lo && d <= hi)) {
        fprintf(stderr, "gardefou generate: %s: expected a number in [%g, %g]\n", opt, lo, hi);
        return 2;
    }
    *out = d;
    return 0;
}

static int parse_int(const char *opt, const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (gf_parse_i64(v, lo, hi, out) != 0) {
        fprintf(stderr, "gardefou generate: %s: expected an integer in [%lld, %lld]\n", opt,
                (long long)lo, (long long)hi);
        return 2;
    }
    return 0;
}

int gf_cmd_generate(int argc, char **argv)
{
    if (gf_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *model = NULL, *prompt = NULL;
    bool chat = false;
    int64_t n = 128, seed = 0, ctx = 0, threads = 0, top_k = 40;
    bool has_seed = false;
    double temp = 0.8, top_p = 0.95;
    int rc = 0;
    for (int i = 1; i < argc && rc == 0; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--chat") == 0) {
            chat = true;
            continue;
        }
        if (v == NULL) {
            fprintf(stderr, "gardefou generate: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--model") == 0)
            model = v;
        else if (strcmp(a, "--prompt") == 0)
            prompt = v;
        else if (strcmp(a, "-n") == 0)
            rc = parse_int(a, v, -1, 1 << 20, &n);
        else if (strcmp(a, "--temp") == 0)
            rc = parse_num(a, v, 0, 2, &temp);
        else if (strcmp(a, "--top-p") == 0)
            rc = parse_num(a, v, 1e-6, 1, &top_p);
        else if (strcmp(a, "--top-k") == 0)
            rc = parse_int(a, v, 0, 1 << 20, &top_k);
        else if (strcmp(a, "--seed") == 0)
            rc = parse_int(a, v, 0, INT64_MAX, &seed), has_seed = true;
        else if (strcmp(a, "--ctx") == 0)
            rc = parse_int(a, v, 0, 1 << 20, &ctx);
        else if (strcmp(a, "--threads") == 0)
            rc = parse_int(a, v, 0, 1024, &threads);
        else {
            fprintf(stderr, "gardefou generate: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (rc != 0)
        return rc;
    if (model == NULL || prompt == NULL || n == 0) {
        fprintf(stderr, "gardefou generate: --model and --prompt are required (and -n not 0)\n");
        usage(stderr);
        return 2;
    }
    struct event_base *base = event_base_new();
    if (base == NULL) {
        fprintf(stderr, "gardefou generate: cannot create the event loop\n");
        return 1;
    }
    struct gf_llama_config cfg = {.model_path = model, .n_ctx = (int)ctx,
                                  .n_threads = (int)threads, .max_seqs = 1};
    struct gf_engine *e = NULL;
    struct gf_err err = {0};
    if (gf_engine_llama_open(base, &cfg, &e, &err) != 0) {
        fprintf(stderr, "gardefou generate: %s\n", err.msg);
        event_base_free(base);
        return 2;
    }
    struct gf_chat_msg msg = {"user", prompt};
    struct gf_gen_request req = {.kind = chat ? GF_GEN_CHAT : GF_GEN_COMPLETION, .prompt = prompt,
                                 .messages = &msg, .n_messages = 1};
    gf_gen_params_default(&req.params);
    req.params.max_tokens = (int)n;
    req.params.temperature = temp;
    req.params.top_k = (int)top_k;
    req.params.top_p = top_p;
    req.params.seed = (uint64_t)seed;
    req.params.has_seed = has_seed;
    struct gen_state s = {.base = base};
    struct gf_gen *g = NULL;
    uint64_t t0 = gf_now_ns();
    if (gf_engine_submit(e, &req, on_event, &s, &g, &err) != 0) {
        fprintf(stderr, "gardefou generate: %s\n", err.msg);
        gf_engine_close(e);
        event_base_free(base);
        return 2;
    }
    event_base_dispatch(base);
    double secs = (double)(gf_now_ns() - t0) / 1e9;
    printf("\n");
    fprintf(stderr, "prompt %d tokens, generated %d tokens in %.2f s (%.1f tokens/s), finish %s\n",
            s.usage.prompt_tokens, s.usage.completion_tokens, secs,
            secs > 0 ? s.usage.completion_tokens / secs : 0.0, s.finish ? s.finish : "error");
    gf_engine_close(e);
    event_base_free(base);
    return s.status;
}
