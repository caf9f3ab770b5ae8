/* llama_engine.c — the embedded engine as a struct gf_engine_ops (gf_engine_llama_open): the
 * loop side. submit tokenizes on the loop (so a prompt longer than the context is refused at
 * once, with both counts) and queues the request for the worker (llama_sched.c); the worker's
 * messages come back through an eventfd watched by a libevent event, and are delivered here,
 * on the loop, never from inside submit. Invariant: no callback runs for a cancelled
 * generation, and a generation is freed only here, after the worker's RETIRE. */
#include "engine/llama_engine_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "engine/gguf.h"
#include "engine/kernels_int.h"

#define MAX_BATCH      512        // tokens per forward pass
#define KV_F32_MAX     (256u << 20) // per-sequence cache above which F16 is used by default
#define DEFAULT_SEQS   8
#define GF_LLAMA_MAX_CHOICES 16   // n: each choice is a sequence of its own

/* ---- worker -> loop ----------------------------------------------------------------------- */

void gf_llama_post(struct llama_engine *e, struct msg *m)
{
    pthread_mutex_lock(&e->mu);
    bool was_empty = e->out == NULL;
    if (e->out_tail != NULL)
        e->out_tail->next = m;
    else
        e->out = m;
    e->out_tail = m;
    pthread_mutex_unlock(&e->mu);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t w = write(e->efd, &one, sizeof(one));
        (void)w;  // eventfd counters only fail on overflow, which a reader drains first
    }
}

void gf_llama_gen_free(struct gf_gen *g)
{
    if (g == NULL)
        return;
    struct gf_gen_group *grp = g->group;
    if (grp != NULL && g != grp->parent) {
        grp->members[g->index] = NULL;
        if (--grp->live == 0) {
            gf_free(grp->parent);
            gf_free(grp);
        }
    }
    gf_free(g->lps);
    gf_free(g->prompt);
    for (size_t i = 0; i < g->n_stop; i++)
        gf_free(g->stop[i]);
    gf_free(g->stop);
    gf_sampler_cleanup(&g->sampler);
    gf_buf_cleanup(&g->raw);
    gf_free(g);
}

static int status_of(int code)
{
    switch (code) {
    case GF_EINVAL:
    case GF_EUNSUPPORTED:
        return 400;
    case GF_ENOMEM:
    case GF_EAGAIN:
        return 503;
    default:
        return 500;
    }
}

/* Cancels every choice of g's request (the worker frees their slots at its next step). */
static void cancel_all(struct llama_engine *e, struct gf_gen *g)
{
    if (g->group == NULL) {
        atomic_store(&g->cancelled, true);
    } else {
        for (int i = 0; i < g->group->n; i++)
            if (g->group->members[i] != NULL)
                atomic_store(&g->group->members[i]->cancelled, true);
    }
    pthread_mutex_lock(&e->mu);
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

static void deliver(struct llama_engine *e, struct msg *m)
{
    struct gf_gen *g = m->gen;
    if (m->kind == MSG_RETIRE) {
        gf_llama_gen_free(g);
        return;
    }
    struct gf_gen_group *grp = g->group;
    if (atomic_load(&g->cancelled) || (grp != NULL && grp->ended))
        return;
    struct gf_gen_event ev = {.index = g->index};
    switch (m->kind) {
    case MSG_DELTA:
        ev.type = GF_GEN_EV_DELTA;
        ev.text = m->text != NULL ? m->text : "";
        ev.len = m->len;
        ev.n_tokens = m->n_tokens;
        if (!g->role_sent && g->chat)
            ev.role = "assistant";
        g->role_sent = true;
        ev.finish_reason = m->finish;
        ev.choice_done = m->finish != NULL;
        ev.logprobs = m->lps;
        ev.n_logprobs = m->n_lps;
        break;
    case MSG_DONE:
        ev.type = GF_GEN_EV_DONE;
        ev.finish_reason = m->finish;
        ev.usage = m->usage;
        ev.model = e->model_id;
        if (grp != NULL) {  // the request is done when its last choice is
            grp->usage.prompt_tokens = m->usage.prompt_tokens;
            grp->usage.completion_tokens += m->usage.completion_tokens;
            // the choices ran side by side: the request took as long as its slowest
            if (m->usage.engine_ns > grp->usage.engine_ns)
                grp->usage.engine_ns = m->usage.engine_ns;
            if (++grp->n_done < grp->n)
                return;
            ev.usage = grp->usage;
            ev.index = 0;
            grp->ended = true;
        }
        break;
    case MSG_ERROR:
        if (grp != NULL) {  // one failed choice fails the request: stop the others
            grp->ended = true;
            cancel_all(e, g);
        }
        ev.type = GF_GEN_EV_ERROR;
        ev.usage = m->usage;
        ev.err_code = m->err_code;
        ev.err_msg = m->err_msg;
        ev.http_status = status_of(m->err_code);
        break;
    default:
        return;
    }
    g->cb(g->ud, &ev);
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct llama_engine *e = arg;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof(n));
    (void)r;  // EAGAIN when a previous call already drained the counter
    pthread_mutex_lock(&e->mu);
    struct msg *list = e->out;
    e->out = e->out_tail = NULL;
    pthread_mutex_unlock(&e->mu);
    while (list != NULL) {
        struct msg *m = list;
        list = m->next;
        deliver(e, m);
        gf_free(m->text);
        gf_free(m->lps);
        gf_free(m);
    }
}

/* ---- ops ---------------------------------------------------------------------------------- */

static struct llama_engine *impl(struct gf_engine *pub)
{
    return pub->impl;
}

/* Fields of the request body that this engine cannot honour. */
static int check_body(const struct cJSON *body, struct gf_err *err)
{
    if (body == NULL)
        return 0;
    static const char *const unsupported[] = {"tools", "functions", "tool_choice",
                                              "function_call"};
    for (size_t i = 0; i < GF_ARRAY_LEN(unsupported); i++) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(body, unsupported[i]);
        if (f != NULL && !cJSON_IsNull(f))
            return gf_err_set(err, GF_EUNSUPPORTED,
                              "%s: not supported by the embedded engine", unsupported[i]);
    }
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(body, "response_format");
    const cJSON *rt = rf != NULL ? cJSON_GetObjectItemCaseSensitive(rf, "type") : NULL;
    if (rt != NULL && cJSON_IsString(rt) && strcmp(rt->valuestring, "text") != 0)
        return gf_err_set(err, GF_EUNSUPPORTED,
                          "response_format: only \"text\" is supported by the embedded engine");
    return 0;
}

static int copy_stops(struct gf_gen *g, const struct gf_gen_params *p)
{
    if (p->n_stop == 0)
        return 0;
    g->stop = gf_calloc(p->n_stop, sizeof(char *));
    if (g->stop == NULL)
        return GF_ENOMEM;
    for (size_t i = 0; i < p->n_stop; i++) {
        if ((g->stop[i] = gf_strdup(p->stop[i])) == NULL)
            return GF_ENOMEM;
        g->n_stop++;
        size_t l = strlen(p->stop[i]);
        if (l > g->max_stop)
            g->max_stop = l;
    }
    return 0;
}

static int encode_request(struct llama_engine *e, const struct gf_gen_request *req, int32_t **ids,
                          size_t *n, struct gf_err *err)
{
    int rc;
    if (req->kind == GF_GEN_CHAT) {
        rc = gf_template_encode(e->tok, e->chat_template, req->messages, req->n_messages, ids, n);
        if (rc == GF_EINVAL)
            return gf_err_set(err, rc, "messages: expected roles system, user or assistant, and "
                                       "at least one message");
    } else {
        const char *p = req->prompt != NULL ? req->prompt : "";
        rc = gf_tokenizer_encode(e->tok, p, strlen(p), GF_TOK_ADD_SPECIAL, ids, n);
    }
    if (rc != 0)
        return gf_err_set(err, rc, "cannot tokenize the prompt: %s", gf_strerror(rc));
    return 0;
}

/* One generation (one choice) of a request whose prompt is already tokenized. */
static struct gf_gen *gen_new(struct llama_engine *e, const struct gf_gen_request *req,
                              const int32_t *ids, size_t n_ids, uint64_t seed, int index,
                              gf_gen_event_fn cb, void *ud)
{
    const struct gf_gen_params *p = &req->params;
    struct gf_gen *g = gf_calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->e = e;
    g->cb = cb;
    g->ud = ud;
    g->index = index;
    atomic_init(&g->cancelled, false);
    g->chat = req->kind == GF_GEN_CHAT;
    g->prompt = gf_mallocarray(n_ids, sizeof(int));
    g->n_prompt = (int)n_ids;
    g->max_tokens = p->max_tokens;
    g->slot = -1;
    g->n_top = p->logprobs ? p->top_logprobs : -1;
    g->sp = (struct gf_sampler_params){
        .temperature = (float)p->temperature,
        .top_k = p->top_k,
        .top_p = (float)p->top_p,
        .min_p = (float)p->min_p,
        .repetition_penalty = (float)p->repetition_penalty,
        .frequency_penalty = (float)p->frequency_penalty,
        .presence_penalty = (float)p->presence_penalty,
        .seed = seed,
    };
    if (g->prompt == NULL || copy_stops(g, p) != 0) {
        gf_llama_gen_free(g);
        return NULL;
    }
    memcpy(g->prompt, ids, n_ids * sizeof(int));
    return g;
}

static int llama_submit(struct gf_engine *pub, const struct gf_gen_request *req,
                        gf_gen_event_fn cb, void *ud, struct gf_gen **out, struct gf_err *err)
{
    struct llama_engine *e = impl(pub);
    *out = NULL;
    const struct gf_gen_params *p = &req->params;
    if (p->n < 1 || p->n > GF_LLAMA_MAX_CHOICES)
        return gf_err_set(err, GF_EINVAL, "n: the embedded engine generates 1 to %d choices",
                          GF_LLAMA_MAX_CHOICES);
    if (p->logprobs && (p->top_logprobs < 0 || p->top_logprobs > GF_GEN_MAX_TOP_LOGPROBS))
        return gf_err_set(err, GF_EINVAL, "top_logprobs: 0 to %d", GF_GEN_MAX_TOP_LOGPROBS);
    int rc = check_body(req->body, err);
    if (rc != 0)
        return rc;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    if ((rc = encode_request(e, req, &ids, &n_ids, err)) != 0)
        return rc;
    if (n_ids == 0) {  // a vocabulary without BOS and an empty prompt
        gf_free(ids);
        return gf_err_set(err, GF_EINVAL, "prompt: empty");
    }
    if (n_ids >= (size_t)e->n_ctx) {
        gf_free(ids);
        return gf_err_set(err, GF_EINVAL,
                          "prompt: %zu tokens, but the context holds %d (the prompt must leave "
                          "room for at least one generated token)",
                          n_ids, e->n_ctx);
    }
    uint64_t seed = p->seed;
    if (!p->has_seed && gf_random_bytes(&seed, sizeof(seed)) != 0)
        seed = gf_now_ns();
    struct gf_gen_group *grp = NULL;
    if (p->n > 1) {
        grp = gf_calloc(1, sizeof(*grp) + (size_t)p->n * sizeof(struct gf_gen *));
        if (grp == NULL || (grp->parent = gf_calloc(1, sizeof(struct gf_gen))) == NULL) {
            gf_free(grp);
            gf_free(ids);
            return gf_err_set(err, GF_ENOMEM, "out of memory");
        }
        grp->n = p->n;
        grp->parent->group = grp;
    }
    // choice i draws from seed + i: the same seed gives the same n choices, and they differ
    struct gf_gen *first = NULL, *last = NULL;
    for (int i = 0; i < p->n; i++) {
        struct gf_gen *g = gen_new(e, req, ids, n_ids, seed + (uint64_t)i, i, cb, ud);
        if (g == NULL) {
            if (first == NULL && grp != NULL) {  // no member yet to free the group with
                gf_free(grp->parent);
                gf_free(grp);
            }
            while (first != NULL) {
                struct gf_gen *next = first->next;
                gf_llama_gen_free(first);
                first = next;
            }
            gf_free(ids);
            return gf_err_set(err, GF_ENOMEM, "out of memory");
        }
        if (grp != NULL) {
            g->group = grp;
            grp->members[i] = g;
            grp->live++;
        }
        if (last != NULL)
            last->next = g;
        else
            first = g;
        last = g;
    }
    gf_free(ids);
    pthread_mutex_lock(&e->mu);
    if (e->incoming_tail != NULL)
        e->incoming_tail->next = first;
    else
        e->incoming = first;
    e->incoming_tail = last;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
    *out = grp != NULL ? grp->parent : first;
    return 0;
}

static void llama_cancel(struct gf_engine *pub, struct gf_gen *g)
{
    cancel_all(impl(pub), g);
}

static bool llama_ready(struct gf_engine *pub)
{
    return impl(pub)->model != NULL;
}

static size_t llama_models(struct gf_engine *pub, const char *const **ids)
{
    struct llama_engine *e = impl(pub);
    *ids = e->ids;
    return 1;
}

static int llama_count_tokens(struct gf_engine *pub, const char *text, size_t len, int *count,
                              bool *estimated)
{
    struct llama_engine *e = impl(pub);
    int32_t *ids = NULL;
    size_t n = 0;
    int rc = gf_tokenizer_encode(e->tok, text, len, GF_TOK_ADD_SPECIAL, &ids, &n);
    gf_free(ids);
    if (rc != 0)
        return rc;
    *count = n > (size_t)INT32_MAX ? INT32_MAX : (int)n;
    if (estimated != NULL)
        *estimated = false;
    return 0;
}

static void llama_close(struct gf_engine *pub)
{
    struct llama_engine *e = impl(pub);
    if (e->thread_started) {
        pthread_mutex_lock(&e->mu);
        e->stop = true;
        pthread_cond_signal(&e->cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->thread, NULL);
    }
    // the worker is gone: every generation is in exactly one of these places
    for (struct gf_gen *g = e->incoming, *next; g != NULL; g = next) {
        next = g->next;
        gf_llama_gen_free(g);
    }
    for (int s = 0; e->slots != NULL && s < e->max_seqs; s++) {
        gf_llama_gen_free(e->slots[s].gen);
        gf_llm_kv_cleanup(&e->slots[s].kv);
    }
    for (struct msg *m = e->out, *next; m != NULL; m = next) {
        next = m->next;
        if (m->kind == MSG_RETIRE)
            gf_llama_gen_free(m->gen);
        gf_free(m->text);
        gf_free(m->lps);
        gf_free(m);
    }
    if (e->notify_ev != NULL)
        event_free(e->notify_ev);
    if (e->efd >= 0)
        close(e->efd);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    gf_llm_ctx_free(e->ctx);
    gf_free(e->slots);
    gf_free(e->logits);
    gf_free(e->b_token);
    gf_free(e->b_pos);
    gf_free(e->b_kv);
    gf_free(e->b_want);
    gf_free(e->b_slot);
    gf_tokenizer_free(e->tok);
    gf_llm_free(e->model);
    gf_free(e->model_id);
    gf_free(e);
}

static const struct gf_engine_ops llama_ops = {
    .name = "llama",
    .submit = llama_submit,
    .cancel = llama_cancel,
    .ready = llama_ready,
    .models = llama_models,
    .count_tokens = llama_count_tokens,
    .close = llama_close,
};

/* ---- open --------------------------------------------------------------------------------- */

static char *id_from_path(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base != NULL ? base + 1 : path;
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".gguf") == 0)
        n -= 5;
    return gf_strndup(base, n);
}

static int choose_kv_type(const struct gf_llm *m, int n_ctx)
{
    const char *env = getenv("GF_KV_TYPE");
    if (env != NULL && strcmp(env, "f16") == 0)
        return GF_KV_F16;
    if (env != NULL && strcmp(env, "f32") == 0)
        return GF_KV_F32;
    uint64_t bytes = 2ull * m->hp.n_layers * (uint64_t)n_ctx * m->hp.n_kv_heads * m->hp.head_dim * 4;
    return bytes > KV_F32_MAX ? GF_KV_F16 : GF_KV_F32;
}

int gf_engine_llama_open(struct event_base *base, const struct gf_llama_config *cfg,
                         struct gf_engine **out, struct gf_err *err)
{
    *out = NULL;
    if (cfg == NULL || cfg->model_path == NULL)
        return gf_err_set(err, GF_EINVAL, "the embedded engine needs a model file");
    if (cfg->n_ctx < 0 || cfg->n_threads < 0 || cfg->max_seqs < 0)
        return gf_err_set(err, GF_EINVAL, "ctx, threads and max_seqs must not be negative");
    struct llama_engine *e = gf_calloc(1, sizeof(*e));
    if (e == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    e->efd = -1;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    e->pub.ops = &llama_ops;
    e->pub.impl = e;
    e->base = base;
    int rc = gf_llm_open(cfg->model_path, &e->model, err);
    if (rc != 0)
        goto fail;
    if ((rc = gf_tokenizer_from_gguf(e->model->gguf, &e->tok, err)) != 0) {
        gf_err_prefix(err, cfg->model_path);
        goto fail;
    }
    if (gf_tokenizer_n_vocab(e->tok) != e->model->hp.n_vocab) {
        rc = gf_err_set(err, GF_EFORMAT, "%s: the vocabulary has %d tokens but the model %d",
                        cfg->model_path, (int)gf_tokenizer_n_vocab(e->tok), e->model->hp.n_vocab);
        goto fail;
    }
    if ((rc = gf_template_choose(e->model->gguf, cfg->chat_template, &e->chat_template, err)) !=
        0) {
        gf_err_prefix(err, cfg->model_path);
        goto fail;
    }
    e->model_id = cfg->model_id != NULL ? gf_strdup(cfg->model_id) : id_from_path(cfg->model_path);
    if (e->model_id == NULL) {
        rc = gf_err_set(err, GF_ENOMEM, "out of memory");
        goto fail;
    }
    e->ids[0] = e->model_id;
    e->n_ctx = cfg->n_ctx > 0 ? cfg->n_ctx : e->model->hp.n_ctx_train;
    if (e->n_ctx < 2 || e->n_ctx > (1 << 20)) {
        rc = gf_err_set(err, GF_EINVAL, "ctx %d: expected [2, 1048576]", e->n_ctx);
        goto fail;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    e->n_threads = cfg->n_threads > 0 ? cfg->n_threads : ncpu > 0 ? (int)ncpu : 1;
    e->max_seqs = cfg->max_seqs > 0 ? cfg->max_seqs : DEFAULT_SEQS;
    e->max_batch = MAX_BATCH;
    e->kv_type = choose_kv_type(e->model, e->n_ctx);
    size_t nv = (size_t)e->model->hp.n_vocab;
    e->slots = gf_calloc((size_t)e->max_seqs, sizeof(*e->slots));
    e->logits = gf_mallocarray((size_t)e->max_seqs * nv, sizeof(float));
    e->b_token = gf_mallocarray((size_t)e->max_batch, sizeof(int));
    e->b_pos = gf_mallocarray((size_t)e->max_batch, sizeof(int));
    e->b_kv = gf_mallocarray((size_t)e->max_batch, sizeof(struct gf_llm_kv *));
    e->b_want = gf_mallocarray((size_t)e->max_batch, sizeof(bool));
    e->b_slot = gf_mallocarray((size_t)e->max_batch, sizeof(int));
    if (!e->slots || !e->logits || !e->b_token || !e->b_pos || !e->b_kv || !e->b_want ||
        !e->b_slot) {
        rc = gf_err_set(err, GF_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = gf_llm_ctx_new(e->model, e->max_batch, e->n_ctx, e->n_threads, NULL, &e->ctx)) !=
        0) {
        gf_err_set(err, rc, "cannot allocate the engine's buffers: %s", gf_strerror(rc));
        goto fail;
    }
    e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (e->efd < 0) {
        rc = gf_err_set(err, GF_EIO, "eventfd: %s", strerror(errno));
        goto fail;
    }
    e->notify_ev = event_new(base, e->efd, EV_READ | EV_PERSIST, on_notify, e);
    if (e->notify_ev == NULL || event_add(e->notify_ev, NULL) != 0) {
        rc = gf_err_set(err, GF_ENOMEM, "cannot register the engine's event");
        goto fail;
    }
    if (pthread_create(&e->thread, NULL, gf_llama_worker_main, e) != 0) {
        rc = gf_err_set(err, GF_EAGAIN, "cannot start the engine thread");
        goto fail;
    }
    e->thread_started = true;
    gf_log(GF_LOG_INFO, "engine",
           "msg=\"model loaded\" model=%s ctx=%d threads=%d seqs=%d kv=%s kernels=%s "
           "template=%s weights_mb=%.1f",
           e->model_id, e->n_ctx, e->n_threads, e->max_seqs,
           e->kv_type == GF_KV_F16 ? "f16" : "f32", gf_kernels_get()->name,
           gf_template_name(e->chat_template), (double)e->model->weight_bytes / 1e6);
    *out = &e->pub;
    return 0;
fail:
    llama_close(&e->pub);
    return rc;
}
