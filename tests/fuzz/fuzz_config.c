/* fuzz_config.c — the configuration loader over arbitrary bytes: any input is either loaded or
 * refused with a message naming the key; nothing crashes or leaks. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "gateway/gateway.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gf_config cfg;
    if (gf_config_init(&cfg) != 0)
        return 0;
    struct gf_err err = {0};
    int rc = gf_config_load_text(&cfg, "fuzz.json", (const char *)data, size, &err);
    if (rc != 0 && strncmp(err.msg, "fuzz.json: ", 11) != 0) {
        fprintf(stderr, "fuzz_config: error without the file name: %s\n", err.msg);
        __builtin_trap();
    }
    gf_config_cleanup(&cfg);
    return 0;
}
