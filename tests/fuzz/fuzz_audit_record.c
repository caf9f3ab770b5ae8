/* fuzz_audit_record.c — the audit verifier reads files an attacker may have edited. Feeds the
 * input, as a segment, to the recovery scan and the chain checker (with and without a key), and
 * each line to the head parser, the JSON checker (compared with cJSON's verdict), the scrubber
 * and the time parser. Nothing may crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "audit/audit_int.h"
#include "common/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool inited;
    if (!inited) {
        gf_json_init();
        gf_log_set_level(GF_LOG_OFF);
        inited = true;
    }
    const char *buf = (const char *)data;
    uint8_t key[GF_AUDIT_KEY_LEN];
    memset(key, 0x5a, sizeof(key));
    char why[256];
    for (int k = 0; k < 2; k++) {
        struct audit_chain c;
        audit_chain_init(&c, k ? key : NULL);
        size_t good = 0;
        uint64_t lines = 0;
        audit_scan(&c, buf, size, &good, &lines, why, sizeof(why));
        if (good > size)
            abort();
    }
    size_t off = 0;
    while (off < size) {
        const char *nl = memchr(buf + off, '\n', size - off);
        size_t n = nl ? (size_t)(nl - (buf + off)) : size - off;
        const char *line = buf + off;
        uint64_t seq;
        uint8_t prev[GF_SHA256_LEN];
        const char *type;
        size_t tl;
        if (gf_audit_parse_head(line, n, &seq, prev, &type, &tl) == 0 &&
            (type < line || type + tl > line + n))
            abort();
        bool ours = gf_audit_json_valid(line, n);
        cJSON *j = cJSON_ParseWithLength(line, n);
        // Whatever we accept, cJSON must parse (the verifier and query rely on it); cJSON is
        // laxer (it takes invalid UTF-8), so the converse is not required.
        if (ours && j == NULL && n < 100000)
            abort();
        cJSON_Delete(j);
        struct gf_buf b;
        gf_buf_init(&b, 1 << 20);
        audit_scrub(&b, line, n);
        gf_buf_cleanup(&b);
        if (n < 64) {
            char t[64];
            memcpy(t, line, n);
            t[n] = '\0';
            int64_t ms;
            gf_audit_parse_time(t, 0, &ms);
        }
        off += n + 1;
    }
    return 0;
}
