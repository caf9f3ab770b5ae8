/* fuzz_upstream_scan.c — the in-place JSON scanner (engine/upstream_scan.c) against cJSON on
 * arbitrary bytes: whatever the scanner accepts, cJSON accepts too (so no reply cJSON refused
 * gets through), and the two read the same document: same types, member names, strings and
 * numbers, in the same order; walked with the container index gf_js_value_doc notes as well
 * as without it. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/common.h"
#include "engine/upstream_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same_str(struct gf_js s, const char *want)
{
    struct gf_buf b;
    gf_buf_init(&b, s.n + 16);
    bool ok = gf_js_str(s, &b) == 0 && strcmp(b.data, want) == 0 && gf_js_is(s, want);
    gf_buf_cleanup(&b);
    return ok;
}

static void same(struct gf_js v, const cJSON *j)
{
    if (v.n == 0 || j == NULL)
        abort();
    switch (v.p[0]) {
    case '"':
        if (!cJSON_IsString(j) || !same_str(v, j->valuestring))
            abort();
        return;
    case 't':
    case 'f':
        if (!(v.p[0] == 't' ? cJSON_IsTrue(j) : cJSON_IsFalse(j)))
            abort();
        return;
    case 'n':
        if (!cJSON_IsNull(j))
            abort();
        return;
    case '{':
    case '[': {
        bool obj = v.p[0] == '{';
        if (obj ? !cJSON_IsObject(j) : !cJSON_IsArray(j))
            abort();
        struct gf_js_it it;
        struct gf_js k, m;
        const cJSON *c = j->child;
        gf_js_iter(&it, v);
        while (gf_js_next(&it, obj ? &k : NULL, &m)) {
            if (c == NULL || (obj && !same_str(k, c->string)))
                abort();
            same(m, c);
            c = c->next;
        }
        if (c != NULL)
            abort();
        return;
    }
    default: {
        double d;
        if (!cJSON_IsNumber(j) || !gf_js_num(v, &d) || d != j->valuedouble)
            abort();
    }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536)
        return 0;
    const char *p = (const char *)data, *end = p + size;
    while (p < end && (unsigned char)*p <= 0x20)
        p++;
    const char *e = gf_js_value(p, end, 0);
    if (e == NULL)
        return 0;
    if (e <= p || e > end)
        abort();
    cJSON *j = cJSON_ParseWithLength((const char *)data, size);
    if (j == NULL)
        abort(); // accepted here, refused by cJSON
    struct gf_js_doc doc;
    if (gf_js_value_doc(p, end, &doc) != e)
        abort();
    same((struct gf_js){p, (size_t)(e - p), NULL}, j);
    same((struct gf_js){p, (size_t)(e - p), &doc}, j);
    cJSON_Delete(j);
    return 0;
}
