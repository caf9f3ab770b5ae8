/* fuzz_upstream_reply.c — upstream reply parsing on arbitrary bytes: a whole reply, the same as
 * a stream chunk, an error body and a /v1/models list. Nothing may crash or leak, and every DELTA
 * must carry valid UTF-8 (whole characters) of the length it claims. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "engine/upstream_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
