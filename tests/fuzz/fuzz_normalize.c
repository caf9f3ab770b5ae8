/* Fuzz target of the canonical form: any bytes normalize without fault into valid UTF-8 that
 * is never longer than the input, with every span inside the input, and the map-less variant
 * agrees with the mapped one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "classifiers/classifiers.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gf_norm n;
    if (gf_normalize((const char *)data, size, &n, NULL) != 0)
        return 0;
    if (n.len > size || !gf_utf8_valid(n.text, n.len))
        abort();
    for (size_t i = 0; i < n.len; i++)
        if (n.start[i] >= n.end[i] || n.end[i] > size || (i && n.start[i] < n.start[i - 1]))
            abort();
    size_t need = gf_norm_scratch_size(size, GF_NORM_NO_MAP);
    char *scratch = gf_malloc(need);
    struct gf_norm m;
    if (scratch && gf_normalize_into((const char *)data, size, scratch, need, GF_NORM_NO_MAP,
                                     &m) == 0) {
        if (m.len != n.len || memcmp(m.text, n.text, n.len) != 0)
            abort();
    }
    gf_free(scratch);
    gf_norm_cleanup(&n);
    return 0;
}
