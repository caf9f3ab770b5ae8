/* script_engine.h — a scripted struct gf_engine_ops for the gateway's tests (test code only).
 * The last message (or the prompt) chooses the script:
 *   "error:CODE"  fails at once with GF_EUPSTREAM and http_status CODE
 *   "midfail"     sends one delta, then fails
 *   "slow"        waits 300 ms before the first delta
 *   "hang"        never answers (until cancelled)
 *   "say:TEXT"    answers TEXT in 4-byte deltas
 *   anything else answers "Hello, world!" in three deltas
 * Events are delivered from timers on the loop, never from inside submit. */
#ifndef GF_SCRIPT_ENGINE_H
#define GF_SCRIPT_ENGINE_H

#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "engine/engine.h"

struct script_gen {
    struct script_engine *se;
    struct event *ev;
    gf_gen_event_fn cb;
    void *ud;
    char text[256];
    size_t pos;
    int mode;  // 0 text, 1 error, 2 hang, 3 midfail
    int status;
    int n;     // choices
    bool sent_any;
    bool in_cb;      // script_step is calling back: a cancel only marks the generation
    bool cancelled;
};

struct script_engine {
    struct gf_engine e;
    struct event_base *base;
    bool ready;
    int live;       // generations not finished or cancelled
    int cancelled;
    int submitted;
    const char *models[2];
};

static void script_step(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct script_gen *g = arg;
    struct gf_gen_event ev = {0};
    struct script_engine *se = g->se;
    if (g->mode == 1 || (g->mode == 3 && g->sent_any)) {
        ev.type = GF_GEN_EV_ERROR;
        ev.err_code = GF_EUPSTREAM;
        ev.err_msg = "the upstream failed";
        ev.http_status = g->status;
        ev.usage.prompt_tokens = 3;
        event_free(g->ev);
        se->live--;
        gf_gen_event_fn cb = g->cb;
        void *ud = g->ud;
        free(g);
        cb(ud, &ev);
        return;
    }
    size_t len = strlen(g->text);
    if (g->pos < len) {
        size_t take = len - g->pos < 4 ? len - g->pos : 4;
        for (int i = 0; i < g->n; i++) {
            ev.type = GF_GEN_EV_DELTA;
            ev.index = i;
            ev.text = g->text + g->pos;
            ev.len = take;
            ev.n_tokens = 1;
            ev.role = g->pos == 0 ? "assistant" : NULL;
            g->in_cb = true;
            g->cb(g->ud, &ev);
            g->in_cb = false;
            if (g->cancelled) {
                event_free(g->ev);
                free(g);
                return;
            }
        }
        g->pos += take;
        g->sent_any = true;
        struct timeval tv = {0, 1000};
        event_add(g->ev, &tv);
        return;
    }
    ev.type = GF_GEN_EV_DONE;
    ev.finish_reason = "stop";
    ev.usage.prompt_tokens = 3;
    ev.usage.completion_tokens = (int)((len + 3) / 4);
    ev.model = "script-model";
    event_free(g->ev);
    se->live--;
    gf_gen_event_fn cb = g->cb;
    void *ud = g->ud;
    free(g);
    cb(ud, &ev);
}

static int script_submit(struct gf_engine *e, const struct gf_gen_request *req,
                         gf_gen_event_fn cb, void *ud, struct gf_gen **out, struct gf_err *err)
{
    struct script_engine *se = e->impl;
    const char *in = req->kind == GF_GEN_CHAT ? req->messages[req->n_messages - 1].content
                                              : req->prompt;
    if (in == NULL)
        in = "";
    if (strcmp(in, "refuse") == 0)
        return gf_err_set(err, GF_EUNSUPPORTED, "tools: not supported by this engine");
    struct script_gen *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    g->se = se;
    g->cb = cb;
    g->ud = ud;
    g->n = req->params.n;
    g->ev = event_new(se->base, -1, 0, script_step, g);
    struct timeval tv = {0, 1000};
    if (strncmp(in, "error:", 6) == 0) {
        g->mode = 1;
        g->status = (int)strtol(in + 6, NULL, 10);
    } else if (strcmp(in, "midfail") == 0) {
        g->mode = 3;
        g->status = 502;
        snprintf(g->text, sizeof(g->text), "partial text");
    } else if (strcmp(in, "hang") == 0) {
        g->mode = 2;
    } else if (strncmp(in, "say:", 4) == 0) {
        snprintf(g->text, sizeof(g->text), "%s", in + 4);
    } else {
        snprintf(g->text, sizeof(g->text), "Hello, world!");
        if (strcmp(in, "slow") == 0)
            tv.tv_usec = 300000;
    }
    if (g->mode != 2)
        event_add(g->ev, &tv);
    se->live++;
    se->submitted++;
    *out = (struct gf_gen *)g;
    return 0;
}

static void script_cancel(struct gf_engine *e, struct gf_gen *gen)
{
    struct script_engine *se = e->impl;
    struct script_gen *g = (struct script_gen *)gen;
    se->live--;
    se->cancelled++;
    if (g->in_cb) {
        g->cancelled = true;
        return;
    }
    event_free(g->ev);
    free(g);
}

static bool script_ready(struct gf_engine *e)
{
    return ((struct script_engine *)e->impl)->ready;
}

static size_t script_models(struct gf_engine *e, const char *const **ids)
{
    struct script_engine *se = e->impl;
    *ids = se->models;
    return 1;
}

static int script_count(struct gf_engine *e, const char *text, size_t len, int *count,
                        bool *estimated)
{
    (void)e;
    (void)text;
    *count = (int)(len + 3) / 4;
    *estimated = true;
    return 0;
}

static void script_close(struct gf_engine *e)
{
    (void)e;
}

static const struct gf_engine_ops script_ops = {
    .name = "script",
    .submit = script_submit,
    .cancel = script_cancel,
    .ready = script_ready,
    .models = script_models,
    .count_tokens = script_count,
    .close = script_close,
};

static void script_engine_init(struct script_engine *se, struct event_base *base)
{
    memset(se, 0, sizeof(*se));
    se->e.ops = &script_ops;
    se->e.impl = se;
    se->base = base;
    se->ready = true;
    se->models[0] = "script-model";
}

#endif
