/* Fuzz target of the policy loader: any bytes either load as a policy or fail with a message
 * (never a crash or a leak); a policy that loads is evaluated on a few texts, whole and
 * streamed, so compiled rules are exercised too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const texts[] = {
    "hello world", "card 4111 1111 1111 1111 and mail a@example.com",
    "the ACME launch codes", "fr33 m0n3y!!! CLICK HERE http://x.example",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gf_policy *p = NULL;
    struct gf_err err = {0};
    if (gf_policy_parse((const char *)data, size, "fuzz.json", NULL, &p, &err) != 0) {
        if (err.code == 0 || err.msg[0] == '\0' || p != NULL)
            abort();  // every failure says why and leaves nothing behind
        return 0;
    }
    struct gf_policy_ctx *ctx = gf_policy_ctx_new();
    for (size_t i = 0; ctx && i < sizeof(texts) / sizeof(texts[0]); i++) {
        for (int st = GF_STAGE_INPUT; st <= GF_STAGE_OUTPUT; st++) {
            struct gf_verdict v;
            if (gf_policy_eval(p, ctx, "strict", (enum gf_stage)st, texts[i], strlen(texts[i]),
                               &v, NULL) == 0)
                gf_verdict_cleanup(&v);
        }
        struct gf_stream *s = NULL;
        struct gf_buf out;
        gf_buf_init(&out, 1 << 20);
        if (gf_stream_new(p, NULL, 16, 1 << 20, &s, NULL) == 0) {
            int rc = 0;
            for (size_t k = 0; rc == 0 && k < strlen(texts[i]); k += 3)
                rc = gf_stream_feed(s, texts[i] + k, strlen(texts[i]) - k < 3 ? strlen(texts[i]) - k : 3,
                                    &out, NULL);
            if (rc == 0)
                gf_stream_finish(s, &out, NULL);
        }
        gf_stream_free(s);
        gf_buf_cleanup(&out);
    }
    gf_policy_ctx_free(ctx);
    gf_policy_unref(p);
    return 0;
}
