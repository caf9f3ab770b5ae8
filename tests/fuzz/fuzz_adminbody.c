/* fuzz_adminbody.c — admin API request bodies (create/update of a key): any JSON must give a
 * spec or a one-line error, never a crash; a spec that parses must pass or fail the key
 * service's own checks cleanly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/common.h"
#include "gateway/keys_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 16)
        return 0;
    cJSON *o = cJSON_ParseWithLength((const char *)data, size);
    if (o == NULL || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return 0;
    }
    struct gf_key_spec spec;
    gf_key_spec_init(&spec);
    const char *param = NULL;
    struct gf_err err = {0};
    int rc = gf_admin_spec_parse(o, &spec, &param, &err);
    if (rc != 0 && (err.code == 0 || err.msg[0] == '\0' || strchr(err.msg, '\n')))
        abort(); // every refusal says why, on one line
    if (rc == 0) {
        struct gf_err e2 = {0};
        if (spec.name)
            (void)gf_keyrec_check_name(spec.name, &e2);
        if (spec.group)
            (void)gf_keyrec_check_group(spec.group, &e2);
        if (spec.limits.rpm < -1 || spec.limits.tpm < -1 || spec.limits.max_concurrent < -1 ||
            spec.limits.daily_tokens < -1)
            abort();
    }
    cJSON_Delete(o);
    return 0;
}
