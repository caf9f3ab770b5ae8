/* fuzz_apikey.c — API-key strings and Authorization header values: the format check, the
 * header parser and the id check must never crash, and a header accepted must carry a token
 * that passes the format check on its own. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "gateway/keys_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    (void)gf_apikey_check(s, size);
    (void)gf_apikey_id_valid(s);
    const char *tok = NULL;
    size_t len = 0;
    if (gf_apikey_from_header(s, &tok, &len) == 0) {
        if (len != GF_APIKEY_LEN || gf_apikey_check(tok, len) != 0)
            abort();
        uint8_t d[GF_SHA256_LEN];
        gf_apikey_digest(tok, len, d);
    }
    free(s);
    return 0;
}
