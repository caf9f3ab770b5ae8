/* test_llama_engine.c — the embedded engine through struct gf_engine_ops on a real libevent
 * loop, with stories260K.gguf: greedy text equals the reference generations (64 tokens after a
 * prompt, 256 after BOS alone with a context larger than the file's), several concurrent
 * requests give what each gives alone, stop strings, seeds, chat, cancellation (before and
 * during a generation, the slot is reused), a prompt longer than the context, exact token
 * counts, closing with requests in flight, and an OOM loop over open.
 * args: the shared directory. Exits 77 when its models are absent. */
#include "engine/engine.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "engine/gguf.h"
#include "engine/tokenizer.h"
#include "tests/test.h"

static const char *shared_dir = "../shared";
static char model_path[512];

struct run {
    struct event_base *base;
    struct gf_engine *e;
    struct gf_gen *gen;
    struct gf_buf text;
    int n_deltas, n_tokens, n_done, n_error, n_after_final;
    int cancel_after;          // cancel from inside the nth delta (0 = never)
    bool cancelled;
    bool role_seen;
    char finish[32];
    struct gf_gen_usage usage;
    int err_status;
    int *pending;              // shared countdown of unfinished runs
};

static void on_event(void *ud, const struct gf_gen_event *ev)
{
    struct run *r = ud;
    if (r->n_done || r->n_error || r->cancelled)
        r->n_after_final++;
    switch (ev->type) {
    case GF_GEN_EV_DELTA:
        r->n_deltas++;
        r->n_tokens += ev->n_tokens;
        if (ev->role != NULL && strcmp(ev->role, "assistant") == 0)
            r->role_seen = true;
        gf_buf_append(&r->text, ev->text, ev->len);
        if (r->cancel_after > 0 && r->n_deltas == r->cancel_after) {
            gf_engine_cancel(r->e, r->gen);
            r->cancelled = true;
            if (--*r->pending == 0)
                event_base_loopbreak(r->base);
        }
        return;
    case GF_GEN_EV_DONE:
        r->n_done++;
        snprintf(r->finish, sizeof(r->finish), "%s", ev->finish_reason ? ev->finish_reason : "");
        r->usage = ev->usage;
        break;
    case GF_GEN_EV_ERROR:
        r->n_error++;
        r->err_status = ev->http_status;
        break;
    }
    if (--*r->pending == 0)
        event_base_loopbreak(r->base);
}

static struct gf_engine *open_engine(struct event_base *base, int ctx, int seqs)
{
    struct gf_llama_config cfg = {.model_path = model_path, .n_ctx = ctx, .n_threads = 2,
                                  .max_seqs = seqs};
    struct gf_engine *e = NULL;
    struct gf_err err = {0};
    if (gf_engine_llama_open(base, &cfg, &e, &err) != 0)
        fprintf(stderr, "open: %s\n", err.msg);
    return e;
}

static void run_init(struct run *r, struct event_base *base, struct gf_engine *e, int *pending)
{
    memset(r, 0, sizeof(*r));
    r->base = base;
    r->e = e;
    r->pending = pending;
    gf_buf_init(&r->text, 1 << 20);
}

static int submit_completion(struct run *r, const char *prompt, int max_tokens, double temp,
                             uint64_t seed, const char *const *stop, size_t n_stop)
{
    struct gf_gen_request req = {.kind = GF_GEN_COMPLETION, .prompt = prompt};
    gf_gen_params_default(&req.params);
    req.params.max_tokens = max_tokens;
    req.params.temperature = temp;
    req.params.seed = seed;
    req.params.has_seed = true;
    req.params.stop = stop;
    req.params.n_stop = n_stop;
    struct gf_err err = {0};
    int rc = gf_engine_submit(r->e, &req, on_event, r, &r->gen, &err);
    if (rc != 0)
        fprintf(stderr, "submit: %s\n", err.msg);
    return rc;
}

static const char once_text[] =
    ", there was a little girl named Lily. She loved to play outside in the park. One day, she "
    "saw a big, red ball. She wanted to play with it, but it was too high.\nLily's mom said";

static void test_reference_text(void)
{
    struct event_base *base = event_base_new();
    struct gf_engine *e = open_engine(base, 0, 4);
    REQUIRE(e != NULL);
    const char *const *ids;
    CHECK(gf_engine_models(e, &ids) == 1 && strcmp(ids[0], "stories260K") == 0);
    CHECK(gf_engine_ready(e));
    int count = 0;
    bool est = true;
    CHECK(gf_engine_count_tokens(e, "Once upon a time", 16, &count, &est) == 0);
    CHECK(count == 5 && !est);  // BOS + 4, as the reference prompt ids

    int pending = 1;
    struct run r;
    run_init(&r, base, e, &pending);
    REQUIRE(submit_completion(&r, "Once upon a time", 64, 0.0, 0, NULL, 0) == 0);
    event_base_dispatch(base);
    CHECK(r.n_done == 1 && r.n_error == 0);
    CHECK_STREQ(r.text.data, once_text);
    CHECK_STREQ(r.finish, "length");
    CHECK(r.usage.prompt_tokens == 5 && r.usage.completion_tokens == 64);
    CHECK(r.n_tokens == 64);
    CHECK(!r.role_seen);  // completions carry no role
    gf_buf_cleanup(&r.text);

    // the context of the file (128) is too small for this prompt + nothing: 400 with counts
    struct gf_gen_request req = {.kind = GF_GEN_COMPLETION};
    gf_gen_params_default(&req.params);
    char *longp = malloc(2000);
    for (int i = 0; i < 1999; i++)
        longp[i] = "ab "[i % 3];
    longp[1999] = '\0';
    req.prompt = longp;
    struct gf_err err = {0};
    struct gf_gen *g = NULL;
    CHECK(gf_engine_submit(e, &req, on_event, &r, &g, &err) == GF_EINVAL && g == NULL);
    CHECK_MSG(strstr(err.msg, "tokens") && strstr(err.msg, "128"), "%s", err.msg);
    free(longp);
    req.params.n = 17;  // each choice takes a sequence: more than 16 is refused
    req.prompt = "x";
    gf_err_clear(&err);
    CHECK(gf_engine_submit(e, &req, on_event, &r, &g, &err) == GF_EINVAL && g == NULL);
    CHECK_MSG(strstr(err.msg, "n:") != NULL, "%s", err.msg);
    gf_engine_close(e);
    event_base_free(base);
}

static void test_bos_256(void)
{
    // the reference ids of reference-outputs.md, decoded with the model's own vocabulary
    static const int32_t ids[] = {
        403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396,
        267, 337, 410, 408, 419, 292, 411, 322, 265, 282, 295, 433, 426, 385, 328, 432, 358, 394,
        261, 370, 432, 352, 266, 268, 388, 426, 338, 391, 266, 267, 337, 335, 312, 432, 398, 312,
        286, 267, 414, 270, 333, 415, 426, 13,  438, 310, 439, 419, 357, 336, 432, 313, 438, 310,
        432, 278, 316, 439, 419, 298, 414, 267, 265, 282, 295, 433, 426, 436, 317, 286, 296, 418,
        269, 279, 292, 416, 439, 413, 409, 416, 327, 263, 415, 294, 267, 400, 426, 338, 336, 432,
        313, 442, 391, 267, 337, 335, 364, 420, 268, 388, 432, 398, 359, 280, 303, 439, 413, 272,
        417, 264, 312, 426, 436, 13,  438, 310, 286, 296, 418, 269, 279, 292, 416, 439, 413, 409,
        416, 327, 263, 415, 294, 267, 400, 426, 338, 336, 432, 313, 442, 439, 423, 262, 304, 420,
        422, 432, 317, 426, 359, 279, 292, 416, 439, 413, 409, 416, 327, 263, 415, 294, 267, 400,
        426, 436, 13,  438, 310, 279, 292, 416, 439, 413, 391, 267, 281, 421, 427, 311, 357, 432,
        384, 358, 336, 432, 313, 442, 439, 423, 262, 304, 420, 422, 432, 357, 426, 359, 279, 292,
        416, 439, 413, 409, 416, 327, 263, 415, 294, 267, 400, 426, 436, 320, 285, 357, 336, 432,
        313, 455, 289, 439, 413, 263, 304, 420, 422, 432, 317, 426, 410, 448, 411, 280, 303, 281,
        421, 427, 364, 426};
    struct gf_gguf *g = NULL;
    struct gf_tokenizer *t = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_gguf_open(model_path, &g, &err) == 0);
    REQUIRE(gf_tokenizer_from_gguf(g, &t, &err) == 0);
    struct gf_buf want;
    gf_buf_init(&want, 1 << 16);
    REQUIRE(gf_tokenizer_decode(t, ids, 256, GF_DETOK_STRIP_SPACE, &want) == 0);
    gf_tokenizer_free(t);
    gf_gguf_close(g);

    struct event_base *base = event_base_new();
    struct gf_engine *e = open_engine(base, 512, 2);  // more than the file's 128
    REQUIRE(e != NULL);
    int pending = 1;
    struct run r;
    run_init(&r, base, e, &pending);
    REQUIRE(submit_completion(&r, "", 256, 0.0, 0, NULL, 0) == 0);
    event_base_dispatch(base);
    CHECK(r.n_done == 1 && r.usage.prompt_tokens == 1 && r.usage.completion_tokens == 256);
    CHECK_STREQ(r.text.data, want.data);
    CHECK(strncmp(r.text.data, "Once upon a time, there was a little girl named Lily.", 53) == 0);
    gf_buf_cleanup(&r.text);
    gf_buf_cleanup(&want);
    gf_engine_close(e);
    event_base_free(base);
}

/* Five requests at once on four slots: each text equals the same request run alone. */
static void test_concurrent(void)
{
    static const char *const prompts[] = {"Once upon a time", "Lily and Ben went to the park",
                                          "The little dog", "One day", "Once upon a time"};
    enum { N = 5 };
    char *alone[N];
    struct event_base *base = event_base_new();
    struct gf_engine *e = open_engine(base, 0, 4);
    REQUIRE(e != NULL);
    for (int i = 0; i < N; i++) {
        int pending = 1;
        struct run r;
        run_init(&r, base, e, &pending);
        REQUIRE(submit_completion(&r, prompts[i], 40, i == 4 ? 0.8 : 0.0, 99, NULL, 0) == 0);
        event_base_dispatch(base);
        alone[i] = gf_buf_steal(&r.text);
    }
    int pending = N;
    struct run r[N];
    for (int i = 0; i < N; i++) {
        run_init(&r[i], base, e, &pending);
        REQUIRE(submit_completion(&r[i], prompts[i], 40, i == 4 ? 0.8 : 0.0, 99, NULL, 0) == 0);
    }
    event_base_dispatch(base);
    for (int i = 0; i < N; i++) {
        CHECK(r[i].n_done == 1 && r[i].n_after_final == 0);
        CHECK_STREQ(r[i].text.data, alone[i]);
        gf_buf_cleanup(&r[i].text);
        gf_free(alone[i]);
    }
    gf_engine_close(e);
    event_base_free(base);
}

static void test_stop_seed_chat(void)
{
    struct event_base *base = event_base_new();
    struct gf_engine *e = open_engine(base, 0, 2);
    REQUIRE(e != NULL);
    int pending = 1;
    struct run r;
    // a stop string ends the text before it, even when it spans several tokens
    static const char *const stop[] = {"Lily", "zzz"};
    run_init(&r, base, e, &pending);
    REQUIRE(submit_completion(&r, "Once upon a time", 64, 0.0, 0, stop, 2) == 0);
    event_base_dispatch(base);
    CHECK_STREQ(r.text.data, ", there was a little girl named ");
    CHECK_STREQ(r.finish, "stop");
    gf_buf_cleanup(&r.text);
    // the same seed gives the same text; the sampler really samples
    char *first = NULL;
    int differ = 0;
    for (int i = 0; i < 3; i++) {
        pending = 1;
        run_init(&r, base, e, &pending);
        REQUIRE(submit_completion(&r, "Once upon a time", 30, 1.0, i < 2 ? 7 : 8, NULL, 0) == 0);
        event_base_dispatch(base);
        if (i == 0)
            first = gf_buf_steal(&r.text);
        else if (i == 1)
            CHECK_STREQ(r.text.data, first);
        else
            differ = strcmp(r.text.data, first) != 0;
        gf_buf_cleanup(&r.text);
    }
    CHECK(differ);
    gf_free(first);
    // chat: rendered with the Llama 2 template, the first delta carries the role
    struct gf_chat_msg msgs[] = {{"system", "Be brief."}, {"user", "Tell me a story."}};
    struct gf_gen_request req = {.kind = GF_GEN_CHAT, .messages = msgs, .n_messages = 2};
    gf_gen_params_default(&req.params);
    req.params.max_tokens = 10;
    pending = 1;
    run_init(&r, base, e, &pending);
    struct gf_err err = {0};
    REQUIRE(gf_engine_submit(e, &req, on_event, &r, &r.gen, &err) == 0);
    event_base_dispatch(base);
    CHECK(r.n_done == 1 && r.role_seen && r.usage.completion_tokens <= 10);
    CHECK(r.usage.prompt_tokens > 10);
    gf_buf_cleanup(&r.text);
    // an unknown role is refused at submit
    struct gf_chat_msg bad[] = {{"wizard", "x"}};
    req.messages = bad;
    req.n_messages = 1;
    gf_err_clear(&err);
    CHECK(gf_engine_submit(e, &req, on_event, &r, &r.gen, &err) == GF_EINVAL);
    gf_engine_close(e);
    event_base_free(base);
}

static void test_cancel(void)
{
    struct event_base *base = event_base_new();
    struct gf_engine *e = open_engine(base, 0, 1);  // one slot: cancelled ones must free it
    REQUIRE(e != NULL);
    int pending = 1;
    struct run a, b, c;
    // cancelled right after submit: never a callback
    run_init(&a, base, e, &pending);
    REQUIRE(submit_completion(&a, "Once upon a time", 64, 0.0, 0, NULL, 0) == 0);
    gf_engine_cancel(e, a.gen);
    // cancelled from its third delta
    run_init(&b, base, e, &pending);
    b.cancel_after = 3;
    REQUIRE(submit_completion(&b, "The little dog", 100, 0.0, 0, NULL, 0) == 0);
    event_base_dispatch(base);
    CHECK(a.n_deltas == 0 && a.n_done == 0 && a.n_error == 0);
    CHECK(b.n_deltas == 3 && b.n_done == 0 && b.n_after_final == 0);
    // the slot is free again: a new request runs to its end
    pending = 1;
    run_init(&c, base, e, &pending);
    REQUIRE(submit_completion(&c, "Once upon a time", 64, 0.0, 0, NULL, 0) == 0);
    event_base_dispatch(base);
    CHECK(c.n_done == 1);
    CHECK_STREQ(c.text.data, once_text);
    // closing with a request in flight cancels it silently
    pending = 1;
    struct run d;
    run_init(&d, base, e, &pending);
    REQUIRE(submit_completion(&d, "Once upon a time", 64, 0.0, 0, NULL, 0) == 0);
    gf_engine_close(e);
    CHECK(d.n_done == 0 && d.n_deltas == 0);
    gf_buf_cleanup(&a.text);
    gf_buf_cleanup(&b.text);
    gf_buf_cleanup(&c.text);
    gf_buf_cleanup(&d.text);
    event_base_free(base);
}

static void test_open_errors(void)
{
    struct event_base *base = event_base_new();
    struct gf_llama_config cfg = {.model_path = "/nonexistent.gguf"};
    struct gf_engine *e = NULL;
    struct gf_err err = {0};
    CHECK(gf_engine_llama_open(base, &cfg, &e, &err) != 0 && e == NULL);
    CHECK(strstr(err.msg, "/nonexistent.gguf") != NULL);
    cfg.model_path = model_path;
    cfg.chat_template = "no-such-template";
    gf_err_clear(&err);
    CHECK(gf_engine_llama_open(base, &cfg, &e, &err) != 0 && e == NULL);
    cfg.chat_template = NULL;
    if (gf_alloc_fail_supported()) {
        int steps = 0;
        for (long n = 1; n < 1000; n++) {
            gf_err_clear(&err);
            gf_alloc_fail_after(n, false);
            int rc = gf_engine_llama_open(base, &cfg, &e, &err);
            bool failed = gf_alloc_failures() > 0;
            gf_alloc_fail_after(0, false);
            steps++;
            if (!failed) {
                CHECK(rc == 0);
                gf_engine_close(e);
                break;
            }
            CHECK_MSG(rc != 0 && e == NULL, "step %ld", n);
        }
        CHECK(steps > 10);
    }
    event_base_free(base);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        shared_dir = argv[1];
    snprintf(model_path, sizeof(model_path), "%s/models/stories260K.gguf", shared_dir);
    if (access(model_path, R_OK) != 0)
        SKIP("%s is absent", model_path);
    gf_json_init();
    RUN(test_open_errors);
    RUN(test_reference_text);
    RUN(test_bos_256);
    RUN(test_concurrent);
    RUN(test_stop_seed_chat);
    RUN(test_cancel);
    return test_report();
}
