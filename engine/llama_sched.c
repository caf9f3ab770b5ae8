/* llama_sched.c — the embedded engine's worker thread: continuous batching. Each step admits
 * queued requests into free sequence slots, drops cancelled ones, then runs ONE forward pass
 * over the next token of every decoding sequence plus prompt chunks of new ones (up to
 * max_batch tokens), so weights are read once per step for all sequences. Then it samples,
 * turns tokens into text (whole UTF-8 characters only, holding back what could start a stop
 * string) and posts messages to the loop. Invariant: a slot's cache holds exactly the
 * positions [0, n_done_prompt + max(n_gen - 1, 0)) of its sequence. */
#include "engine/llama_engine_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "engine/tokenizer.h"

static struct msg *msg_new(struct gf_gen *g, enum msg_kind kind)
{
    struct msg *m = gf_calloc(1, sizeof(*m));
    if (m != NULL) {
        m->kind = kind;
        m->gen = g;
    }
    return m;
}

/* Posting can only fail on OOM; then the loop never hears of the event. RETIRE, which frees the
 * generation, is retried until memory is available, so nothing leaks and the loop is never
 * left holding a generation that the worker forgot. */
static void post_retire(struct llama_engine *e, struct gf_gen *g)
{
    struct msg *m;
    while ((m = msg_new(g, MSG_RETIRE)) == NULL) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    gf_llama_post(e, m);
}

static void post_delta(struct llama_engine *e, struct gf_gen *g, const char *text, size_t len,
                       const char *finish)
{
    if (len == 0 && finish == NULL)
        return;
    struct msg *m = msg_new(g, MSG_DELTA);
    if (m == NULL)
        return;
    if (len > 0 && (m->text = gf_strndup(text, len)) == NULL) {
        gf_free(m);
        return;
    }
    m->len = len;
    m->n_tokens = g->since_delta;
    m->finish = finish;
    // the log-probabilities of the tokens this delta covers travel with it
    m->lps = g->lps;
    m->n_lps = g->n_lps;
    g->lps = NULL;
    g->n_lps = g->cap_lps = 0;
    g->since_delta = 0;
    gf_llama_post(e, m);
}

/* Records the log-probabilities of the token just sampled, for the next delta. */
static int push_logprob(struct llama_engine *e, struct gf_gen *g, const struct gf_logprob *lp,
                        const struct gf_logprob *top, int n_top)
{
    if (g->n_lps == g->cap_lps) {
        int cap = g->cap_lps ? 2 * g->cap_lps : 8;
        struct gf_gen_logprob *a = gf_realloc(g->lps, (size_t)cap * sizeof(*a));
        if (a == NULL)
            return GF_ENOMEM;
        g->lps = a;
        g->cap_lps = cap;
    }
    struct gf_gen_logprob *o = &g->lps[g->n_lps++];
    memset(o, 0, sizeof(*o));
    o->token = gf_tokenizer_piece(e->tok, lp->token, false, &o->len);
    o->logprob = lp->logprob;
    o->n_top = n_top;
    for (int i = 0; i < n_top; i++) {
        o->top[i].token = gf_tokenizer_piece(e->tok, top[i].token, false, &o->top[i].len);
        o->top[i].logprob = top[i].logprob;
    }
    return 0;
}

static void post_error(struct llama_engine *e, struct gf_gen *g, int code, const char *text)
{
    struct msg *m = msg_new(g, MSG_ERROR);
    if (m != NULL) {
        m->err_code = code;
        snprintf(m->err_msg, sizeof(m->err_msg), "%s", text);
        m->usage = (struct gf_gen_usage){g->n_prompt, g->n_gen, g->engine_ns};
        gf_llama_post(e, m);
    }
}

static void release(struct llama_engine *e, struct gf_gen *g)
{
    if (g->slot >= 0)
        e->slots[g->slot].gen = NULL;
    g->slot = -1;
    gf_sampler_cleanup(&g->sampler);
    gf_buf_cleanup(&g->raw);
    gf_free(g->lps);
    g->lps = NULL;
    g->n_lps = g->cap_lps = 0;
    post_retire(e, g);
}

/* Sends what of g->raw can be sent. With final, everything that forms whole characters goes.
 * Returns true when a stop string was found (the text before it was sent). */
static bool flush_text(struct llama_engine *e, struct gf_gen *g, bool final)
{
    struct gf_buf *r = &g->raw;
    if (r->len == 0)
        return false;
    size_t cut = r->len;
    bool stopped = false;
    for (size_t i = 0; i < g->n_stop; i++) {
        const char *hit = memmem(r->data, r->len, g->stop[i], strlen(g->stop[i]));
        if (hit != NULL && (size_t)(hit - r->data) < cut) {
            cut = (size_t)(hit - r->data);
            stopped = true;
        }
    }
    size_t send = cut;  // the decoder releases whole characters only
    if (!stopped && !final && g->n_stop > 0) {
        // hold back the longest tail that is the start of some stop string
        size_t maxh = g->max_stop - 1 < send ? g->max_stop - 1 : send;
        for (size_t h = maxh; h > 0; h--) {
            const char *tail = r->data + send - h;
            bool prefix = false;
            for (size_t i = 0; i < g->n_stop && !prefix; i++)
                prefix = strlen(g->stop[i]) > h && memcmp(g->stop[i], tail, h) == 0;
            if (prefix) {
                send -= h;
                break;
            }
        }
    }
    if (send > 0)
        post_delta(e, g, r->data, send, NULL);
    gf_buf_consume(r, send);
    return stopped;
}

static void finish(struct llama_engine *e, struct gf_gen *g, const char *reason)
{
    if (strcmp(reason, "stop") != 0 || g->raw.len > 0) {
        gf_detok_finish(&g->detok, &g->raw);  // a cut character at the very end becomes U+FFFD
        flush_text(e, g, true);
    }
    post_delta(e, g, NULL, 0, reason);
    struct msg *m = msg_new(g, MSG_DONE);
    if (m != NULL) {
        m->finish = reason;
        m->usage = (struct gf_gen_usage){g->n_prompt, g->n_gen, g->engine_ns};
        gf_llama_post(e, m);
    }
    release(e, g);
}

/* Gives g slot s: the slot's cache (allocated on first use) and a fresh sampler. */
static int admit(struct llama_engine *e, struct gf_gen *g, int s)
{
    struct slot *sl = &e->slots[s];
    if (sl->kv.k == NULL) {
        int rc = gf_llm_kv_init(&sl->kv, e->model, e->n_ctx, e->kv_type);
        if (rc != 0)
            return rc;
    }
    int rc = gf_sampler_init(&g->sampler, &g->sp, e->model->hp.n_vocab);
    if (rc != 0)
        return rc;
    gf_buf_init(&g->raw, 1 << 20);
    // after a lone BOS, SentencePiece drops the first piece's leading space (as llama2.c)
    gf_detok_init(&g->detok, e->tok, g->n_prompt == 1 ? GF_DETOK_STRIP_SPACE : 0);
    sl->gen = g;
    g->slot = s;
    return 0;
}

/* Takes queued requests into free slots; drops cancelled ones. Returns the number of active
 * slots. Blocks while there is nothing to do; returns -1 when the engine stops. */
static int schedule(struct llama_engine *e)
{
    pthread_mutex_lock(&e->mu);
    for (;;) {
        if (e->stop) {
            pthread_mutex_unlock(&e->mu);
            return -1;
        }
        bool active = false;
        for (int s = 0; s < e->max_seqs; s++)
            active |= e->slots[s].gen != NULL;
        if (active || e->incoming != NULL)
            break;
        pthread_cond_wait(&e->cv, &e->mu);
    }
    // detach the queue, then admit outside the lock (posting takes the lock)
    struct gf_gen *q = e->incoming;
    e->incoming = e->incoming_tail = NULL;
    pthread_mutex_unlock(&e->mu);

    struct gf_gen *keep = NULL, *keep_last = NULL;
    while (q != NULL) {
        struct gf_gen *g = q;
        q = q->next;
        g->next = NULL;
        if (atomic_load(&g->cancelled)) {
            release(e, g);
            continue;
        }
        int s = 0;
        while (s < e->max_seqs && e->slots[s].gen != NULL)
            s++;
        if (s == e->max_seqs) {  // no room yet: stays queued, in order
            if (keep_last != NULL)
                keep_last->next = g;
            else
                keep = g;
            keep_last = g;
            continue;
        }
        int rc = admit(e, g, s);
        if (rc != 0) {
            post_error(e, g, rc, "the engine is out of memory for a new sequence");
            release(e, g);
        }
    }
    if (keep != NULL) {  // put the waiting ones back at the head, before newer arrivals
        pthread_mutex_lock(&e->mu);
        keep_last->next = e->incoming;
        if (e->incoming == NULL)
            e->incoming_tail = keep_last;
        e->incoming = keep;
        pthread_mutex_unlock(&e->mu);
    }
    int n = 0;
    for (int s = 0; s < e->max_seqs; s++) {
        struct gf_gen *g = e->slots[s].gen;
        if (g != NULL && atomic_load(&g->cancelled))
            release(e, g);  // the slot is free for the next step
        else if (g != NULL)
            n++;
    }
    return n;
}

/* One forward pass over every active sequence; then sampling and output. */
static void step(struct llama_engine *e)
{
    int n = 0;
    // decoding sequences first: one token each
    for (int s = 0; s < e->max_seqs; s++) {
        struct gf_gen *g = e->slots[s].gen;
        if (g == NULL || g->n_done_prompt < g->n_prompt)
            continue;
        e->b_token[n] = g->last;
        e->b_pos[n] = g->n_prompt + g->n_gen - 1;
        e->b_kv[n] = &e->slots[s].kv;
        e->b_want[n] = true;
        e->b_slot[n] = s;
        n++;
    }
    // then prompt chunks with the room left
    for (int s = 0; s < e->max_seqs && n < e->max_batch; s++) {
        struct gf_gen *g = e->slots[s].gen;
        if (g == NULL || g->n_done_prompt >= g->n_prompt)
            continue;
        int take = g->n_prompt - g->n_done_prompt;
        if (take > e->max_batch - n)
            take = e->max_batch - n;
        for (int i = 0; i < take; i++) {
            int p = g->n_done_prompt + i;
            e->b_token[n] = g->prompt[p];
            e->b_pos[n] = p;
            e->b_kv[n] = &e->slots[s].kv;
            e->b_want[n] = p == g->n_prompt - 1;
            e->b_slot[n] = s;
            n++;
        }
        g->n_done_prompt += take;
    }
    if (n == 0)
        return;
    struct gf_llm_batch b = {.n = n, .token = e->b_token, .pos = e->b_pos, .kv = e->b_kv,
                             .want = e->b_want, .logits = e->logits};
    uint64_t t0 = gf_now_ns();
    int rc = gf_llm_forward(e->ctx, &b);
    uint64_t t_fwd = gf_now_ns() - t0;
    // every sequence of the batch waited for the whole pass (a slot's tokens are adjacent)
    for (int i = 0; i < n; i++)
        if (i == 0 || e->b_slot[i] != e->b_slot[i - 1])
            e->slots[e->b_slot[i]].gen->engine_ns += t_fwd;
    int j = 0;
    for (int i = 0; i < n; i++) {
        if (!e->b_want[i])
            continue;
        float *logits = e->logits + (size_t)j++ * e->model->hp.n_vocab;
        struct gf_gen *g = e->slots[e->b_slot[i]].gen;
        if (rc != 0) {
            post_error(e, g, GF_EINVAL, "the engine refused a batch (internal error)");
            release(e, g);
            continue;
        }
        uint64_t t_s = gf_now_ns();
        struct gf_logprob lp, top[GF_GEN_MAX_TOP_LOGPROBS];
        int n_top = g->n_top < e->model->hp.n_vocab ? g->n_top : e->model->hp.n_vocab;
        int tok = gf_sampler_sample(&g->sampler, logits, g->n_top >= 0 ? &lp : NULL, top,
                                    n_top > 0 ? n_top : 0);
        g->engine_ns += gf_now_ns() - t_s;
        // end of generation: EOS, or any control token (a template's end of turn)
        if (tok == gf_tokenizer_eos(e->tok) || gf_tokenizer_type(e->tok, tok) == GF_TOKEN_CONTROL) {
            finish(e, g, "stop");
            continue;
        }
        if (g->n_top >= 0 && push_logprob(e, g, &lp, top, n_top > 0 ? n_top : 0) != 0) {
            post_error(e, g, GF_ENOMEM, "the engine is out of memory");
            release(e, g);
            continue;
        }
        g->n_gen++;
        g->since_delta++;
        g->last = tok;
        gf_sampler_accept(&g->sampler, tok);
        if (gf_detok_push(&g->detok, tok, &g->raw) != 0) {
            post_error(e, g, GF_ENOMEM, "the engine is out of memory");
            release(e, g);
            continue;
        }
        if (flush_text(e, g, false))
            finish(e, g, "stop");
        else if ((g->max_tokens > 0 && g->n_gen >= g->max_tokens) ||
                 g->n_prompt + g->n_gen >= e->n_ctx)
            finish(e, g, "length");
    }
}

void *gf_llama_worker_main(void *arg)
{
    struct llama_engine *e = arg;
    for (;;) {
        int active = schedule(e);
        if (active < 0)
            break;
        if (active > 0)
            step(e);
    }
    // stopping: every generation still here is freed by close, which owns them now
    return NULL;
}
