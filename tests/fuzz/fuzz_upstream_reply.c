/* fuzz_upstream_reply.c — upstream reply parsing on arbitrary bytes: a whole reply, the same as
 * a stream chunk, an error body and a /v1/models list. Nothing may crash or leak, and every DELTA
 * must carry valid UTF-8 (whole characters) of the length it claims; relayed logprobs must be
 * readable (every token byte touched, at most 20 alternatives, no positive log-probability). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "engine/upstream_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned token_byte_sink;  // keeps the reads of each token byte

static void on_event(void *ud, const struct gf_gen_event *ev)
{
    (void)ud;
    if (ev->type != GF_GEN_EV_DELTA || ev->text == NULL || strlen(ev->text) < ev->len)
        abort();
    if (!gf_utf8_valid(ev->text, ev->len))
        abort();  // valid text, never half a character at the end
    if (ev->index < 0 || ev->index >= GF_UP_MAX_CHOICES)
        abort();
    if (ev->choice_done && ev->finish_reason == NULL)
        abort();
    if ((ev->n_logprobs > 0) != (ev->logprobs != NULL))
        abort();
    unsigned sum = 0;  // ASan checks each token's bytes are inside their buffer
    for (int i = 0; i < ev->n_logprobs; i++) {
        const struct gf_gen_logprob *l = &ev->logprobs[i];
        if (l->n_top < 0 || l->n_top > GF_GEN_MAX_TOP_LOGPROBS || !(l->logprob <= 0))
            abort();
        for (size_t b = 0; b < l->len; b++)
            sum += (unsigned char)l->token[b];
        for (int t = 0; t < l->n_top; t++)
            for (size_t b = 0; b < l->top[t].len; b++)
                sum += (unsigned char)l->top[t].token[b];
    }
    token_byte_sink = sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    const char *p = (const char *)data;
    struct gf_err err = {0};
    struct gf_up_reply r;
    gf_up_reply_init(&r, size % 2 ? GF_GEN_CHAT : GF_GEN_COMPLETION, on_event, NULL);
    gf_up_reply_full(&r, p, size, &err);
    gf_up_reply_init(&r, GF_GEN_CHAT, on_event, NULL);
    gf_err_clear(&err);
    // Twice as a chunk: the second sees the state the first left.
    gf_up_reply_chunk(&r, p, size, &err);
    gf_err_clear(&err);
    gf_up_reply_chunk(&r, p, size, &err);
    char msg[128];
    gf_up_error_message(p, size, 500, msg, sizeof(msg));
    if (strlen(msg) >= sizeof(msg))
        abort();
    char *ids[8];
    size_t n = 0;
    gf_up_parse_models(p, size, ids, &n, 8);
    if (n > 8)
        abort();
    for (size_t i = 0; i < n; i++)
        gf_free(ids[i]);
    return 0;
}
