/* query.c — `gardefou audit query`: reads every segment in order and hands the records that
 * match a filter to a callback. It does not verify (verify does); lines that do not parse are
 * skipped. Invariant: records come out in seq order, each exactly once. */
#include "audit/audit_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool num(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* RFC 3339 or a plain date. */
static int parse_rfc3339(const char *s, int64_t *out)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, se = 0, ms = 0;
    if (!num(&p, 4, &y) || *p++ != '-' || !num(&p, 2, &mo) || *p++ != '-' || !num(&p, 2, &d))
        return GF_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31)
        return GF_EINVAL;
    int64_t off_min = 0;
    if (*p != '\0') {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return GF_EINVAL;
        p++;
        if (!num(&p, 2, &h) || *p++ != ':' || !num(&p, 2, &mi))
            return GF_EINVAL;
        if (*p == ':') {
            p++;
            if (!num(&p, 2, &se))
                return GF_EINVAL;
            if (*p == '.') {
                p++;
                int digits = 0;
                while (isdigit((unsigned char)*p)) {
                    if (digits < 3)
                        ms = ms * 10 + (*p - '0');
                    digits++;
                    p++;
                }
                if (digits == 0)
                    return GF_EINVAL;
                for (; digits < 3; digits++)
                    ms *= 10;
            }
        }
        if (h > 23 || mi > 59 || se > 60)
            return GF_EINVAL;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if (!num(&p, 2, &oh) || *p++ != ':' || !num(&p, 2, &om) || oh > 23 || om > 59)
                return GF_EINVAL;
            off_min = sign * (oh * 60 + om);
        }
        if (*p != '\0')
            return GF_EINVAL;
    }
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    *out = ((days * 86400 + h * 3600 + mi * 60 + se) - off_min * 60) * 1000 + ms;
    return 0;
}

int gf_audit_parse_time(const char *s, int64_t now_ms, int64_t *out_ms)
{
    if (s == NULL || *s == '\0')
        return GF_EINVAL;
    if (*s == '@')
        return gf_parse_i64(s + 1, 0, INT64_MAX / 2, out_ms);
    if (strlen(s) >= 10 && s[4] == '-')
        return parse_rfc3339(s, out_ms);
    int64_t age;
    if (gf_parse_duration_ms(s, &age) != 0 || age < 0)
        return GF_EINVAL;
    *out_ms = now_ms - age;
    return 0;
}

static bool ci_contains(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    if (n == 0)
        return true;
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return true;
    }
    return false;
}

static const char *str_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool text_has(const cJSON *rec, const char *field, const char *needle)
{
    const char *t = str_of(cJSON_GetObjectItemCaseSensitive(rec, field), "text");
    return t && ci_contains(t, needle);
}

static bool matches(const cJSON *rec, const struct gf_audit_query *q)
{
    const char *type = str_of(rec, "type");
    if (type == NULL)
        return false;
    if (q->type ? strcmp(type, q->type) != 0 : strcmp(type, "checkpoint") == 0)
        return false;
    if (q->key_id) {
        const char *k = str_of(rec, "key_id");
        const char *subj = str_of(rec, "subject");
        if (!(k && strcmp(k, q->key_id) == 0) && !(subj && strcmp(subj, q->key_id) == 0))
            return false;
    }
    if (q->since_ms != INT64_MIN || q->until_ms != INT64_MAX) {
        const char *ts = str_of(rec, "ts");
        int64_t t;
        if (ts == NULL || parse_rfc3339(ts, &t) != 0 || t < q->since_ms || t >= q->until_ms)
            return false;
    }
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(rec, "verdicts");
    if (q->verdict) {
        const char *o = str_of(rec, "verdict");
        bool hit = o && strcmp(o, q->verdict) == 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, vs)
        {
            const char *act = str_of(v, "action");
            hit = hit || (act && strcmp(act, q->verdict) == 0);
        }
        if (!hit)
            return false;
    }
    if (q->category) {
        bool hit = false;
        const cJSON *v;
        cJSON_ArrayForEach(v, vs)
        {
            const char *cat = str_of(v, "category");
            hit = hit || (cat && strcmp(cat, q->category) == 0);
        }
        if (!hit)
            return false;
    }
    if (q->grep && !text_has(rec, "prompt", q->grep) && !text_has(rec, "completion", q->grep))
        return false;
    return true;
}

static int query_segment(const char *dir, const char *name, const struct gf_audit_query *q,
                         gf_audit_match_fn fn, void *ud, struct gf_err *err)
{
    char *path = audit_path(dir, name);
    if (path == NULL)
        return gf_err_set(err, GF_ENOMEM, "audit query: out of memory");
    FILE *f = fopen(path, "rb");
    gf_free(path);
    if (f == NULL)
        return gf_err_set(err, GF_EIO, "%s: %s", name, strerror(errno));
    struct gf_buf line;
    gf_buf_init(&line, AUDIT_MAX_LINE);
    int rc = 0;
    char chunk[65536];
    bool skipping = false; // inside a line longer than the cap
    for (;;) {
        if (fgets(chunk, sizeof(chunk), f) == NULL)
            break;
        size_t n = strlen(chunk);
        bool end = n > 0 && chunk[n - 1] == '\n';
        if (!skipping && gf_buf_append(&line, chunk, end ? n - 1 : n) != 0) {
            skipping = true;
            gf_buf_reset(&line);
        }
        if (!end)
            continue;
        if (!skipping && line.len > 0) {
            cJSON *rec = cJSON_ParseWithLength(line.data, line.len);
            if (rec == NULL && gf_audit_json_valid(line.data, line.len)) {
                rc = gf_err_set(err, GF_ENOMEM, "audit query: out of memory");
                break;
            }
            if (rec != NULL && matches(rec, q))
                rc = fn(ud, line.data, line.len, rec);
            cJSON_Delete(rec);
            if (rc != 0)
                break;
        }
        skipping = false;
        gf_buf_reset(&line);
    }
    if (rc == 0 && ferror(f))
        rc = gf_err_set(err, GF_EIO, "%s: read error", name);
    fclose(f);
    gf_buf_cleanup(&line);
    return rc;
}

int gf_audit_query_run(const char *dir, const struct gf_audit_query *q, gf_audit_match_fn fn,
                       void *ud, struct gf_err *err)
{
    char **names = NULL;
    size_t n = 0;
    int rc = audit_seg_list(dir, &names, &n, NULL, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = query_segment(dir, names[i], q, fn, ud, err);
    audit_names_free(names, n);
    return rc;
}
