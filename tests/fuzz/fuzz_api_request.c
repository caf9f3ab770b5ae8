/* fuzz_api_request.c — request validation over arbitrary JSON: the first byte picks chat or
 * completion; any body is accepted or refused naming a field, without crash or leak. */
#include <stdint.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "gateway/gateway_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct gf_config cfg;
    static int ready;
    if (!ready) {
        if (gf_config_init(&cfg) != 0)
            return 0;
        ready = 1;
    }
    if (size < 1)
        return 0;
    enum gf_gen_kind kind = data[0] & 1 ? GF_GEN_COMPLETION : GF_GEN_CHAT;
    cJSON *body = cJSON_ParseWithLength((const char *)data + 1, size - 1);
    if (body == NULL)
        return 0;
    struct gf_api_req a;
    struct gf_err err = {0};
    int rc = gf_api_parse(&a, kind, body, &cfg, &err);
    if (rc == 0 && kind == GF_GEN_CHAT && (a.gen.n_messages == 0 || a.gen.messages == NULL))
        __builtin_trap();
    if (rc != 0 && err.msg[0] == '\0')
        __builtin_trap();
    gf_api_req_cleanup(&a);
    cJSON_Delete(body);
    return 0;
}
