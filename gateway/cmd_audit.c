/* cmd_audit.c — `gardefou audit verify|query`: check a log's hash chain, checkpoints and
 * manifest, and search its records. Exit status: 0 clean / found, 1 broken chain, 2 bad usage
 * or an unreadable log. */
#include "gateway/cli.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "audit/audit.h"
#include "common/common.h"

#define DEFAULT_DATA_DIR "./gardefou-data"

static void verify_usage(FILE *f)
{
    fprintf(f,
            "usage: gardefou audit verify [DIR] [--data-dir D] [--key-file F] [--require-key]\n"
            "                             [--json]\n\n"
            "Verifies the audit log in DIR (default: DATA_DIR/audit, DATA_DIR = %s):\n"
            "every record's seq and hash link, the chain across segments, every checkpoint's\n"
            "HMAC and the MANIFEST.json (which segments exist, the last sealed checkpoint).\n"
            "Reports the first break (file, line, seq, reason).\n\n"
            "  --data-dir D    take DIR as D/audit and the key as D/audit.key\n"
            "  --key-file F    the HMAC key file (64 hex digits); default: audit.key beside DIR;\n"
            "                  GARDEFOU_AUDIT_KEY (64 hex digits) takes precedence\n"
            "  --require-key   fail (exit 2) when no key is available instead of checking the\n"
            "                  chain alone\n"
            "  --json          print the result as one JSON object\n\n"
            "Exit status: 0 the log verifies, 1 it is broken, 2 usage error or unreadable log.\n",
            DEFAULT_DATA_DIR);
}

static void query_usage(FILE *f)
{
    fprintf(f,
            "usage: gardefou audit query [DIR] [--data-dir D] [--key ID] [--since T] [--until T]\n"
            "                            [--verdict V] [--category C] [--grep TEXT]\n"
            "                            [--type request|admin|checkpoint] [--limit N]\n"
            "                            [--json|--csv]\n\n"
            "Prints the audit records that match every filter given, oldest first. It does not\n"
            "verify the log: run `gardefou audit verify` for that.\n\n"
            "  --key ID        records of this key id (requests, and admin actions on it)\n"
            "  --since T       at or after T; --until T: before T. T is RFC 3339\n"
            "                  (2026-11-30T10:00:00Z), a date (2026-11-30), @EPOCH_MS, or an age\n"
            "                  such as 15m, 2h, 7d (meaning that long ago)\n"
            "  --verdict V     overall verdict or any rule action: allow, flag, redact, block\n"
            "  --category C    a policy verdict of category C (e.g. pii)\n"
            "  --grep TEXT     prompt or completion text contains TEXT (case-insensitive; needs\n"
            "                  retention full or redacted)\n"
            "  --type T        request, admin or checkpoint (default: request and admin)\n"
            "  --limit N       stop after N records\n"
            "  --json          one JSON record per line, as stored\n"
            "  --csv           CSV with a header row\n");
}

static void usage(FILE *f)
{
    fprintf(f, "usage: gardefou audit verify|query [options]\n\n"
               "  verify   check the hash chain, checkpoints and manifest of the audit log\n"
               "  query    search the audit log's records\n\n"
               "Run `gardefou audit verify --help` or `gardefou audit query --help` for options.\n");
}

/* Takes the value of option name at argv[*i] ("--name V" or "--name=V"). Returns 1 when argv[*i]
 * is that option (value in *val, NULL when missing), 0 otherwise. */
static int opt(int argc, char **argv, int *i, const char *name, const char **val)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *val = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0')
        return 0;
    *val = *i + 1 < argc ? argv[++*i] : NULL;
    return 1;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = gf_malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int cmd_verify(int argc, char **argv)
{
    const char *dir = NULL, *data_dir = NULL, *key_file = NULL;
    bool json = false, require_key = false;
    for (int i = 1; i < argc; i++) {
        const char *v = NULL;
        const char *name = argv[i];
        const char **dst = opt(argc, argv, &i, "--data-dir", &v)   ? &data_dir
                           : opt(argc, argv, &i, "--key-file", &v) ? &key_file
                                                                   : NULL;
        if (dst != NULL) {
            if (v == NULL) {
                fprintf(stderr, "gardefou audit verify: %s needs a value\n", name);
                return 2;
            }
            *dst = v;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--require-key") == 0) {
            require_key = true;
        } else if (argv[i][0] == '-' || dir != NULL) {
            fprintf(stderr, "gardefou audit verify: unexpected argument '%s'\n", argv[i]);
            verify_usage(stderr);
            return 2;
        } else {
            dir = argv[i];
        }
    }
    char *dir_own = NULL, *key_own = NULL;
    int status = 2;
    if (dir == NULL)
        dir = dir_own = join(data_dir ? data_dir : DEFAULT_DATA_DIR, "audit");
    if (key_file == NULL && data_dir != NULL)
        key_file = key_own = join(data_dir, "audit.key");
    else if (key_file == NULL && dir != NULL)
        key_file = key_own = gf_audit_default_key_path(dir);
    if (dir == NULL || key_file == NULL) {
        fprintf(stderr, "gardefou audit verify: out of memory\n");
        goto out;
    }
    uint8_t key[GF_AUDIT_KEY_LEN];
    bool have_key = false;
    struct gf_err err = {0};
    const char *env = getenv("GARDEFOU_AUDIT_KEY");
    if ((env && *env) || access(key_file, F_OK) == 0) {
        if (gf_audit_key_load(key_file, false, key, &err) != 0) {
            fprintf(stderr, "gardefou audit verify: %s\n", err.msg);
            goto out;
        }
        have_key = true;
    } else if (require_key) {
        fprintf(stderr, "gardefou audit verify: no audit key (%s absent, GARDEFOU_AUDIT_KEY unset)\n",
                key_file);
        goto out;
    } else {
        fprintf(stderr, "gardefou audit verify: warning: no audit key (%s): checking the chain "
                        "only; checkpoint and manifest MACs are NOT checked\n", key_file);
    }
    struct gf_audit_verify_result r;
    if (gf_audit_verify(dir, have_key ? key : NULL, &r, &err) != 0) {
        fprintf(stderr, "gardefou audit verify: %s\n", err.msg);
        goto out;
    }
    status = r.ok ? 0 : 1;
    if (json) {
        printf("{\"ok\":%s,\"dir\":", r.ok ? "true" : "false");
        struct gf_buf b;
        gf_buf_init(&b, 4096);
        gf_buf_append_json_str(&b, dir, strlen(dir));
        if (!r.ok) {
            gf_buf_puts(&b, ",\"file\":");
            gf_buf_append_json_str(&b, r.file, strlen(r.file));
            gf_buf_printf(&b, ",\"line\":%" PRIu64 ",\"seq\":%" PRIu64 ",\"reason\":", r.line,
                          r.seq);
            gf_buf_append_json_str(&b, r.reason, strlen(r.reason));
        }
        printf("%s,\"segments\":%" PRIu64 ",\"records\":%" PRIu64 ",\"checkpoints\":%" PRIu64
               ",\"bytes\":%" PRIu64 ",\"last_seq\":%" PRIu64 ",\"unsealed\":%" PRIu64
               ",\"torn_files\":%" PRIu64 ",\"key_checked\":%s,\"head\":\"%s\"}\n",
               b.data ? b.data : "\"\"", r.segments, r.records, r.checkpoints, r.bytes,
               r.last_seq, r.unsealed, r.torn_files, r.key_checked ? "true" : "false", r.head);
        gf_buf_cleanup(&b);
    } else if (r.ok) {
        printf("audit verify: OK: %s: %" PRIu64 " segments, %" PRIu64 " records, %" PRIu64
               " checkpoints, last seq %" PRIu64 "\n  head %s\n  %" PRIu64
               " records after the last checkpoint%s\n",
               dir, r.segments, r.records, r.checkpoints, r.last_seq, r.head, r.unsealed,
               r.key_checked ? "" : "\n  (no key: checkpoint MACs not checked)");
        if (r.torn_files)
            printf("  %" PRIu64 " torn tail(s) set aside by recovery (*.torn-*, see the "
                   "audit_torn_tail records)\n", r.torn_files);
    } else {
        printf("audit verify: BROKEN: %s", r.file);
        if (r.line)
            printf(" line %" PRIu64, r.line);
        if (r.seq)
            printf(" (seq %" PRIu64 ")", r.seq);
        printf(": %s\n", r.reason);
    }
out:
    gf_free(dir_own);
    gf_free(key_own);
    return status;
}

struct qstate {
    enum { OUT_TEXT, OUT_JSON, OUT_CSV } fmt;
    int64_t limit, count;
};

static const char *s_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static double n_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* A CSV field: quoted when it holds a comma, quote or newline; a leading =+-@ is prefixed with
 * a quote mark so spreadsheets do not run it as a formula. */
static void csv(const char *s, bool last)
{
    bool formula = s[0] != '\0' && strchr("=+-@", s[0]) != NULL;
    if (formula || strpbrk(s, ",\"\r\n") != NULL) {
        putchar('"');
        if (formula)
            putchar('\'');
        for (const char *p = s; *p; p++) {
            if (*p == '"')
                putchar('"');
            putchar(*p);
        }
        putchar('"');
    } else {
        fputs(s, stdout);
    }
    putchar(last ? '\n' : ',');
}

static int on_match(void *ud, const char *line, size_t len, const cJSON *rec)
{
    struct qstate *q = ud;
    if (q->limit > 0 && q->count >= q->limit)
        return 1;
    q->count++;
    if (q->fmt == OUT_JSON) {
        fwrite(line, 1, len, stdout);
        putchar('\n');
        return 0;
    }
    const cJSON *vs = cJSON_GetObjectItemCaseSensitive(rec, "verdicts"), *v;
    char cats[256] = "";
    size_t cl = 0;
    cJSON_ArrayForEach(v, vs)
    {
        const char *c = s_of(v, "category");
        if (*c && cl + strlen(c) + 2 < sizeof(cats) && !strstr(cats, c))
            cl += (size_t)snprintf(cats + cl, sizeof(cats) - cl, "%s%s", cl ? ";" : "", c);
    }
    const cJSON *usage = cJSON_GetObjectItemCaseSensitive(rec, "usage");
    char seq[32], status[16], pt[24], ct[24], lat[32];
    snprintf(seq, sizeof(seq), "%.0f", n_of(rec, "seq"));
    snprintf(status, sizeof(status), "%.0f", n_of(rec, "status"));
    snprintf(pt, sizeof(pt), "%.0f", n_of(usage, "prompt_tokens"));
    snprintf(ct, sizeof(ct), "%.0f", n_of(usage, "completion_tokens"));
    snprintf(lat, sizeof(lat), "%.3f", n_of(rec, "latency_ms"));
    const char *type = s_of(rec, "type");
    bool req = strcmp(type, "request") == 0;
    if (q->fmt == OUT_CSV) {
        csv(seq, false);
        csv(s_of(rec, "ts"), false);
        csv(type, false);
        csv(s_of(rec, "request_id"), false);
        csv(s_of(rec, "key_id"), false);
        csv(s_of(rec, "client"), false);
        csv(s_of(rec, "endpoint"), false);
        csv(s_of(rec, "model"), false);
        csv(req ? status : "", false);
        csv(s_of(rec, "verdict"), false);
        csv(cats, false);
        csv(req ? pt : "", false);
        csv(req ? ct : "", false);
        csv(req ? lat : "", false);
        csv(s_of(rec, "finish_reason"), false);
        csv(s_of(rec, "action"), false);
        csv(s_of(rec, "subject"), true);
        return 0;
    }
    if (req)
        printf("%-8s %s request %-16s key=%s status=%s verdict=%s%s%s model=%s tokens=%s+%s\n",
               seq, s_of(rec, "ts"), s_of(rec, "request_id"), s_of(rec, "key_id"), status,
               s_of(rec, "verdict"), *cats ? " categories=" : "", cats, s_of(rec, "model"), pt,
               ct);
    else
        printf("%-8s %s %s %s%s%s\n", seq, s_of(rec, "ts"), type,
               *s_of(rec, "action") ? s_of(rec, "action") : "", *s_of(rec, "subject") ? " " : "",
               s_of(rec, "subject"));
    return 0;
}

static int cmd_query(int argc, char **argv)
{
    struct gf_audit_query q = {.since_ms = INT64_MIN, .until_ms = INT64_MAX};
    struct qstate st = {.fmt = OUT_TEXT};
    const char *dir = NULL, *data_dir = NULL;
    int64_t now = gf_wall_ms();
    for (int i = 1; i < argc; i++) {
        const char *v = NULL, *name = argv[i];
        int is_opt = 1;
        if (opt(argc, argv, &i, "--data-dir", &v))
            data_dir = v;
        else if (opt(argc, argv, &i, "--key", &v))
            q.key_id = v;
        else if (opt(argc, argv, &i, "--verdict", &v))
            q.verdict = v;
        else if (opt(argc, argv, &i, "--category", &v))
            q.category = v;
        else if (opt(argc, argv, &i, "--grep", &v))
            q.grep = v;
        else if (opt(argc, argv, &i, "--type", &v))
            q.type = v;
        else if (opt(argc, argv, &i, "--since", &v) || opt(argc, argv, &i, "--until", &v)) {
            bool since = strncmp(name, "--since", 7) == 0;
            if (v && gf_audit_parse_time(v, now, since ? &q.since_ms : &q.until_ms) != 0) {
                fprintf(stderr, "gardefou audit query: %s: bad time '%s' (RFC 3339, a date, "
                                "@EPOCH_MS, or an age like 2h)\n", since ? "--since" : "--until", v);
                return 2;
            }
        } else if (opt(argc, argv, &i, "--limit", &v)) {
            if (v && gf_parse_i64(v, 1, INT64_MAX, &st.limit) != 0) {
                fprintf(stderr, "gardefou audit query: --limit: expected a positive integer\n");
                return 2;
            }
        } else {
            is_opt = 0;
        }
        if (is_opt) {
            if (v == NULL) {
                fprintf(stderr, "gardefou audit query: %s needs a value\n", name);
                return 2;
            }
            continue;
        }
        if (strcmp(argv[i], "--json") == 0)
            st.fmt = OUT_JSON;
        else if (strcmp(argv[i], "--csv") == 0)
            st.fmt = OUT_CSV;
        else if (argv[i][0] == '-' || dir != NULL) {
            fprintf(stderr, "gardefou audit query: unexpected argument '%s'\n", argv[i]);
            query_usage(stderr);
            return 2;
        } else
            dir = argv[i];
    }
    if (q.type && strcmp(q.type, "request") != 0 && strcmp(q.type, "admin") != 0 &&
        strcmp(q.type, "checkpoint") != 0) {
        fprintf(stderr, "gardefou audit query: --type: expected request, admin or checkpoint\n");
        return 2;
    }
    char *dir_own = NULL;
    if (dir == NULL && (dir = dir_own = join(data_dir ? data_dir : DEFAULT_DATA_DIR, "audit")) == NULL)
        return 2;
    if (st.fmt == OUT_CSV)
        printf("seq,ts,type,request_id,key_id,client,endpoint,model,status,verdict,categories,"
               "prompt_tokens,completion_tokens,latency_ms,finish_reason,action,subject\n");
    struct gf_err err = {0};
    int rc = gf_audit_query_run(dir, &q, on_match, &st, &err);
    gf_free(dir_own);
    if (rc < 0) {
        fprintf(stderr, "gardefou audit query: %s\n", err.msg);
        return 2;
    }
    return 0;
}

int gf_cmd_audit(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "verify") == 0) {
        if (gf_cli_wants_help(argc - 1, argv + 1)) {
            verify_usage(stdout);
            return 0;
        }
        return cmd_verify(argc - 1, argv + 1);
    }
    if (strcmp(argv[1], "query") == 0) {
        if (gf_cli_wants_help(argc - 1, argv + 1)) {
            query_usage(stdout);
            return 0;
        }
        return cmd_query(argc - 1, argv + 1);
    }
    fprintf(stderr, "gardefou audit: unknown subcommand '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
