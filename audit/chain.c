/* chain.c — the hash chain: the fixed head of every line, the chain hash of a line, checkpoint
 * MACs, and the checker that accepts lines one by one. The writer's recovery and the verifier
 * both use the checker, so what the writer keeps after a crash is exactly what verify accepts.
 * Invariant: a line is accepted only if it is valid JSON, its seq is the next one and its prev
 * is the hash of the line accepted before it (zeros before seq 1). */
#include "audit/audit_int.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

void gf_audit_line_hash(const char *line, size_t len, uint8_t out[GF_SHA256_LEN])
{
    struct gf_sha256 s;
    gf_sha256_init(&s);
    gf_sha256_update(&s, AUDIT_DOMAIN, sizeof(AUDIT_DOMAIN)); // the NUL separates the domain
    gf_sha256_update(&s, line, len);
    gf_sha256_final(&s, out);
}

void audit_ckpt_mac(const uint8_t *key, uint64_t seq, const uint8_t prev[GF_SHA256_LEN],
                    uint8_t out[GF_SHA256_LEN])
{
    char msg[sizeof(AUDIT_CKPT_DOMAIN) + 24 + AUDIT_HEX_LEN + 1];
    size_t n = sizeof(AUDIT_CKPT_DOMAIN);
    memcpy(msg, AUDIT_CKPT_DOMAIN, n);
    n += (size_t)snprintf(msg + n, sizeof(msg) - n, "%llu", (unsigned long long)seq) + 1;
    gf_hex(prev, GF_SHA256_LEN, msg + n);
    n += AUDIT_HEX_LEN;
    gf_hmac_sha256(key, GF_AUDIT_KEY_LEN, msg, n, out);
}

void audit_key_id(const uint8_t *key, char out[17])
{
    uint8_t d[GF_SHA256_LEN];
    struct gf_sha256 s;
    gf_sha256_init(&s);
    gf_sha256_update(&s, AUDIT_KEYID_DOMAIN, sizeof(AUDIT_KEYID_DOMAIN));
    gf_sha256_update(&s, key, GF_AUDIT_KEY_LEN);
    gf_sha256_final(&s, d);
    gf_hex(d, 8, out);
}

int audit_unhex(const char *s, size_t slen, uint8_t *out, size_t n)
{
    if (slen != 2 * n)
        return GF_EFORMAT;
    for (size_t i = 0; i < n; i++) {
        int hi = gf_hexval(s[2 * i]), lo = gf_hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return GF_EFORMAT;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int gf_audit_parse_head(const char *line, size_t len, uint64_t *seq,
                        uint8_t prev[GF_SHA256_LEN], const char **type, size_t *type_len)
{
    static const char k_seq[] = "{\"seq\":", k_prev[] = ",\"prev\":\"", k_type[] = "\",\"type\":\"";
    const char *p = line, *end = line + len;
    if ((size_t)(end - p) < sizeof(k_seq) - 1 || memcmp(p, k_seq, sizeof(k_seq) - 1) != 0)
        return GF_EFORMAT;
    p += sizeof(k_seq) - 1;
    uint64_t v = 0;
    const char *d = p;
    while (p < end && *p >= '0' && *p <= '9') {
        if (v > (UINT64_MAX - 9) / 10)
            return GF_EFORMAT;
        v = v * 10 + (uint64_t)(*p - '0');
        p++;
    }
    if (p == d || (p - d > 1 && *d == '0'))
        return GF_EFORMAT;
    if ((size_t)(end - p) < sizeof(k_prev) - 1 + AUDIT_HEX_LEN + sizeof(k_type) - 1 ||
        memcmp(p, k_prev, sizeof(k_prev) - 1) != 0)
        return GF_EFORMAT;
    p += sizeof(k_prev) - 1;
    for (int i = 0; i < AUDIT_HEX_LEN; i++) // lowercase only: one spelling per hash
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return GF_EFORMAT;
    if (audit_unhex(p, AUDIT_HEX_LEN, prev, GF_SHA256_LEN) != 0)
        return GF_EFORMAT;
    p += AUDIT_HEX_LEN;
    if (memcmp(p, k_type, sizeof(k_type) - 1) != 0)
        return GF_EFORMAT;
    p += sizeof(k_type) - 1;
    const char *t = p;
    while (p < end && ((*p >= 'a' && *p <= 'z') || *p == '_'))
        p++;
    if (p == t || p >= end || *p != '"')
        return GF_EFORMAT;
    *seq = v;
    *type = t;
    *type_len = (size_t)(p - t);
    return 0;
}

void audit_chain_init(struct audit_chain *c, const uint8_t *key)
{
    memset(c, 0, sizeof(*c));
    c->next_seq = 1;
    c->key = key;
}

static bool type_is(const char *t, size_t n, const char *want)
{
    return strlen(want) == n && memcmp(t, want, n) == 0;
}

/* Checks a checkpoint line's MAC fields. Returns 0 or GF_EFORMAT with why set. */
static int check_ckpt(struct audit_chain *c, const char *line, size_t len, uint64_t seq,
                      const uint8_t prev[GF_SHA256_LEN], char *why, size_t whylen)
{
    cJSON *j = cJSON_ParseWithLength(line, len);
    if (j == NULL) {
        // Valid JSON that cJSON cannot hold is an allocation failure, not a break.
        snprintf(why, whylen, "checkpoint could not be parsed (out of memory?)");
        return GF_ENOMEM;
    }
    int rc = GF_EFORMAT;
    const cJSON *mac = cJSON_GetObjectItemCaseSensitive(j, "mac");
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(j, "key_id");
    uint8_t got[GF_SHA256_LEN], want[GF_SHA256_LEN];
    if (!cJSON_IsString(mac) || !cJSON_IsString(kid) ||
        audit_unhex(mac->valuestring, strlen(mac->valuestring), got, sizeof(got)) != 0) {
        snprintf(why, whylen, "checkpoint without a well-formed mac and key_id");
        goto out;
    }
    if (c->key != NULL) {
        char id[17];
        audit_key_id(c->key, id);
        if (strcmp(id, kid->valuestring) != 0) {
            snprintf(why, whylen, "checkpoint made with audit key %.16s, not this key (%s)",
                     kid->valuestring, id);
            goto out;
        }
        audit_ckpt_mac(c->key, seq, prev, want);
        if (!gf_ct_equal(got, want, sizeof(want))) {
            snprintf(why, whylen, "checkpoint MAC does not match (forged or edited)");
            goto out;
        }
    }
    rc = 0;
out:
    cJSON_Delete(j);
    return rc;
}

int audit_chain_feed(struct audit_chain *c, const char *line, size_t len, char *why, size_t whylen)
{
    uint64_t seq;
    uint8_t prev[GF_SHA256_LEN];
    const char *type;
    size_t tlen;
    if (len == 0) {
        snprintf(why, whylen, "empty line");
        return GF_EFORMAT;
    }
    if (gf_audit_parse_head(line, len, &seq, prev, &type, &tlen) != 0) {
        snprintf(why, whylen, "record does not start with {\"seq\":N,\"prev\":\"<hash>\",\"type\":");
        return GF_EFORMAT;
    }
    if (!gf_audit_json_valid(line, len)) {
        snprintf(why, whylen, "record is not valid JSON (edited or torn)");
        return GF_EFORMAT;
    }
    if (seq != c->next_seq) {
        snprintf(why, whylen, "seq %llu where %llu was expected (%s)", (unsigned long long)seq,
                 (unsigned long long)c->next_seq,
                 seq < c->next_seq ? "reordered or duplicated" : "records missing");
        return GF_EFORMAT;
    }
    if (memcmp(prev, c->head, GF_SHA256_LEN) != 0) {
        snprintf(why, whylen, "prev does not match the hash of the record before (%s)",
                 seq == 1 ? "first record must have a zero prev" : "edited, inserted or reordered");
        return GF_EFORMAT;
    }
    bool ckpt = type_is(type, tlen, "checkpoint");
    if (ckpt) {
        int rc = check_ckpt(c, line, len, seq, prev, why, whylen);
        if (rc != 0)
            return rc;
    } else if (!type_is(type, tlen, "request") && !type_is(type, tlen, "admin")) {
        snprintf(why, whylen, "unknown record type \"%.*s\"", (int)(tlen > 32 ? 32 : tlen), type);
        return GF_EFORMAT;
    }
    gf_audit_line_hash(line, len, c->head);
    c->next_seq = seq + 1;
    c->records++;
    c->last_was_ckpt = ckpt;
    if (ckpt) {
        c->checkpoints++;
        c->last_ckpt_seq = seq;
        memcpy(c->last_ckpt_hash, c->head, GF_SHA256_LEN);
    }
    return 0;
}
