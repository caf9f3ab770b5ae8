/* keyrec.c — one key record as the store writes it: a flat JSON object with the digests in hex,
 * never a secret. Parsing checks every field, so a damaged journal or snapshot is refused with
 * the field named rather than loaded half-right. */
#include "gateway/keys_int.h"

#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>

#define MAX_EXACT 9007199254740992.0 // 2^53: larger doubles are not exact integers

int gf_keyrec_check_name(const char *name, struct gf_err *err)
{
    size_t n = strlen(name);
    if (n == 0 || n > GF_KEY_NAME_MAX)
        return gf_err_set(err, GF_EINVAL, "name: expected 1 to %d bytes", GF_KEY_NAME_MAX);
    if (!gf_utf8_valid(name, n))
        return gf_err_set(err, GF_EINVAL, "name: invalid UTF-8");
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return gf_err_set(err, GF_EINVAL, "name: control characters are not allowed");
    return 0;
}

int gf_keyrec_check_group(const char *group, struct gf_err *err)
{
    size_t n = strlen(group);
    if (n == 0 || n > GF_KEY_GROUP_MAX)
        return gf_err_set(err, GF_EINVAL, "group: expected 1 to %d characters", GF_KEY_GROUP_MAX);
    for (size_t i = 0; i < n; i++) {
        char c = group[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '-' || c == '.';
        if (!ok)
            return gf_err_set(err, GF_EINVAL, "group: only letters, digits, '_', '-', '.'");
    }
    return 0;
}

int gf_keyrec_write(struct gf_buf *b, const struct gf_key *k)
{
    char hex[2 * GF_SHA256_LEN + 1];
    int rc = gf_buf_printf(b, "{\"seq\":%llu,\"id\":\"%s\",\"prefix\":\"%s\",\"name\":",
                           (unsigned long long)k->seq, k->id, k->prefix);
    rc = rc ? rc : gf_buf_append_json_str(b, k->name, strlen(k->name));
    rc = rc ? rc : gf_buf_puts(b, ",\"group\":");
    rc = rc ? rc : gf_buf_append_json_str(b, k->group, strlen(k->group));
    gf_hex(k->digest, GF_SHA256_LEN, hex);
    rc = rc ? rc : gf_buf_printf(b, ",\"digest\":\"%s\"", hex);
    if (k->has_old) {
        gf_hex(k->old_digest, GF_SHA256_LEN, hex);
        rc = rc ? rc
                : gf_buf_printf(b, ",\"old_digest\":\"%s\",\"old_until\":%lld", hex,
                                (long long)k->old_until);
    }
    rc = rc ? rc
            : gf_buf_printf(b,
                            ",\"rpm\":%lld,\"tpm\":%lld,\"max_concurrent\":%lld,"
                            "\"daily_tokens\":%lld,\"created\":%lld,\"expires\":%lld,"
                            "\"revoked\":%lld,\"suspended\":%lld,\"suspend_reason\":",
                            (long long)k->limits.rpm, (long long)k->limits.tpm,
                            (long long)k->limits.max_concurrent, (long long)k->limits.daily_tokens,
                            (long long)k->created, (long long)k->expires, (long long)k->revoked,
                            (long long)k->suspended);
    rc = rc ? rc : gf_buf_append_json_str(b, k->suspend_reason, strlen(k->suspend_reason));
    rc = rc ? rc : gf_buf_putc(b, '}');
    return rc;
}

static int get_int(const cJSON *o, const char *name, bool required, int64_t *out,
                   struct gf_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (v == NULL) {
        if (required)
            return gf_err_set(err, GF_EFORMAT, "%s: missing", name);
        *out = 0;
        return 0;
    }
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1;
    if (!cJSON_IsNumber(v) || !(d >= 0 && d <= MAX_EXACT) || floor(d) != d)
        return gf_err_set(err, GF_EFORMAT, "%s: expected a whole number >= 0", name);
    *out = (int64_t)d;
    return 0;
}

static int get_str(const cJSON *o, const char *name, char *out, size_t outsize, struct gf_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsString(v))
        return gf_err_set(err, GF_EFORMAT, "%s: expected a string", name);
    size_t n = strlen(v->valuestring);
    if (n >= outsize)
        return gf_err_set(err, GF_EFORMAT, "%s: longer than %zu bytes", name, outsize - 1);
    memcpy(out, v->valuestring, n + 1);
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int get_digest(const cJSON *o, const char *name, uint8_t out[GF_SHA256_LEN],
                      struct gf_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!cJSON_IsString(v) || strlen(v->valuestring) != 2 * GF_SHA256_LEN)
        return gf_err_set(err, GF_EFORMAT, "%s: expected 64 hex digits", name);
    for (size_t i = 0; i < GF_SHA256_LEN; i++) {
        int hi = hexval(v->valuestring[2 * i]), lo = hexval(v->valuestring[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return gf_err_set(err, GF_EFORMAT, "%s: expected 64 hex digits", name);
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int gf_keyrec_parse(const char *s, size_t n, struct gf_key *k, struct gf_err *err)
{
    memset(k, 0, sizeof(*k));
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(s, n, &end, false);
    if (o == NULL) {
        /* cJSON does not tell out-of-memory from bad text. If memory is short now, a probe
         * allocation fails too, and the caller must not mistake the record for damage. */
        void *probe = gf_malloc(4096);
        if (probe == NULL)
            return gf_err_set(err, GF_ENOMEM, "out of memory");
        gf_free(probe);
        return gf_err_set(err, GF_EFORMAT, "not a JSON object");
    }
    int rc = 0;
    int64_t seq = 0;
    while (end && end < s + n && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (!cJSON_IsObject(o) || end != s + n) {
        rc = gf_err_set(err, GF_EFORMAT, "not a JSON object");
        goto fail;
    }
    rc = get_int(o, "seq", true, &seq, err);
    rc = rc ? rc : get_str(o, "id", k->id, sizeof(k->id), err);
    if (rc == 0 && !gf_apikey_id_valid(k->id))
        rc = gf_err_set(err, GF_EFORMAT, "id: expected key_ and 16 base62 characters");
    rc = rc ? rc : get_str(o, "prefix", k->prefix, sizeof(k->prefix), err);
    if (rc == 0 && (strlen(k->prefix) != GF_KEYPREFIX_LEN || memcmp(k->prefix, "gf_", 3) != 0))
        rc = gf_err_set(err, GF_EFORMAT, "prefix: expected gf_ and 4 characters");
    rc = rc ? rc : get_str(o, "name", k->name, sizeof(k->name), err);
    if (rc == 0 && gf_keyrec_check_name(k->name, err) != 0)
        rc = err ? (err->code = GF_EFORMAT) : GF_EFORMAT;
    rc = rc ? rc : get_str(o, "group", k->group, sizeof(k->group), err);
    if (rc == 0 && gf_keyrec_check_group(k->group, err) != 0)
        rc = err ? (err->code = GF_EFORMAT) : GF_EFORMAT;
    rc = rc ? rc : get_digest(o, "digest", k->digest, err);
    if (rc == 0 && cJSON_GetObjectItemCaseSensitive(o, "old_digest") != NULL) {
        k->has_old = true;
        rc = get_digest(o, "old_digest", k->old_digest, err);
        rc = rc ? rc : get_int(o, "old_until", true, &k->old_until, err);
    }
    rc = rc ? rc : get_int(o, "rpm", true, &k->limits.rpm, err);
    rc = rc ? rc : get_int(o, "tpm", true, &k->limits.tpm, err);
    rc = rc ? rc : get_int(o, "max_concurrent", true, &k->limits.max_concurrent, err);
    rc = rc ? rc : get_int(o, "daily_tokens", true, &k->limits.daily_tokens, err);
    rc = rc ? rc : get_int(o, "created", true, &k->created, err);
    rc = rc ? rc : get_int(o, "expires", true, &k->expires, err);
    rc = rc ? rc : get_int(o, "revoked", true, &k->revoked, err);
    rc = rc ? rc : get_int(o, "suspended", true, &k->suspended, err);
    rc = rc ? rc : get_str(o, "suspend_reason", k->suspend_reason, sizeof(k->suspend_reason), err);
    k->seq = (uint64_t)seq;
fail:
    cJSON_Delete(o);
    return rc;
}
