/* engine.c — the thin dispatch layer over struct gf_engine_ops and the OpenAI defaults of the
 * sampling parameters. */
#include "engine/engine.h"

void gf_gen_params_default(struct gf_gen_params *p)
{
    *p = (struct gf_gen_params){
        .max_tokens = -1,
        .temperature = 1.0,
        .top_p = 1.0,
        .top_k = 0,
        .min_p = 0.0,
        .repetition_penalty = 1.0,
        .n = 1,
    };
}

int gf_engine_submit(struct gf_engine *e, const struct gf_gen_request *req, gf_gen_event_fn cb,
                     void *ud, struct gf_gen **out, struct gf_err *err)
{
    return e->ops->submit(e, req, cb, ud, out, err);
}

void gf_engine_cancel(struct gf_engine *e, struct gf_gen *g)
{
    if (g != NULL)
        e->ops->cancel(e, g);
}

bool gf_engine_ready(struct gf_engine *e)
{
    return e->ops->ready(e);
}

size_t gf_engine_models(struct gf_engine *e, const char *const **ids)
{
    return e->ops->models(e, ids);
}

int gf_engine_count_tokens(struct gf_engine *e, const char *text, size_t len, int *count,
                           bool *estimated)
{
    return e->ops->count_tokens(e, text, len, count, estimated);
}

void gf_engine_close(struct gf_engine *e)
{
    if (e != NULL)
        e->ops->close(e);
}
