/* cmd_policy.c — `gardefou policy check|test|default`: a policy author's tools. check validates
 * a file exactly as serve would load it (exit 0, or 2 with the error); test runs a JSON Lines
 * file of cases through it and reports every case whose action differs (exit 0 or 1); default
 * prints the built-in policy. */
#include "gateway/cli.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "classifiers/classifiers.h"
#include "gateway/gateway.h"
#include "policy/policy.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gardefou policy check FILE [--model M]\n"
            "       gardefou policy test FILE CASES.jsonl [--model M]\n"
            "       gardefou policy default\n\n"
            "check   validates a policy file as `serve --policy FILE` would load it and prints\n"
            "        its version; exits 0 when valid, 2 with \"FILE: path: problem\" otherwise.\n"
            "test    evaluates each case of CASES.jsonl, one JSON object per line:\n"
            "          {\"text\": \"...\", \"stage\": \"input\"|\"output\", \"group\": \"strict\",\n"
            "           \"expect\": \"allow\"|\"flag\"|\"redact\"|\"block\"}\n"
            "        (stage defaults to input, group to default) and prints each mismatch;\n"
            "        exits 0 when all cases pass, 1 when some do not, 2 on bad input.\n"
            "default prints the built-in policy that applies when serve gets no --policy.\n\n"
            "options:\n"
            "  --model M   trained classifier model (default: models/moderation.gguf if present;\n"
            "              \"\" for none)\n"
            "See docs/policy.md for the policy language.\n");
}

// Pulls "--model M" out of argv; returns the remaining count, or -1 on a bad option.
static int take_model(int argc, char **argv, const char **model)
{
    int w = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--model") == 0) {
            if (i + 1 >= argc)
                return -1;
            *model = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            fprintf(stderr, "gardefou policy: unknown option '%s'\n", argv[i]);
            return -1;
        } else {
            argv[w++] = argv[i];
        }
    }
    return w;
}

static int load(const char *file, const char *model, struct gf_policy **p)
{
    struct gf_err err = {0};
    struct gf_clf_registry *reg = NULL;
    if (gf_moderation_load_classifiers(model, &reg, &err) != 0) {
        fprintf(stderr, "gardefou policy: %s\n", err.msg);
        return 2;
    }
    int rc = gf_policy_load(file, reg, p, &err);
    gf_clf_registry_unref(reg);
    if (rc != 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    for (const char *w = gf_policy_warnings(*p); *w;) {
        const char *nl = strchr(w, '\n');
        size_t n = nl ? (size_t)(nl - w) : strlen(w);
        fprintf(stderr, "%s: warning: %.*s\n", file, (int)n, w);
        w += n + (nl != NULL);
    }
    return 0;
}

static int check(const char *file, const char *model)
{
    struct gf_policy *p;
    int st = load(file, model, &p);
    if (st != 0)
        return st;
    printf("%s: ok, version %s, %zu input and %zu output rules\n", file, gf_policy_version(p),
           gf_policy_rule_count(p, NULL, GF_STAGE_INPUT),
           gf_policy_rule_count(p, NULL, GF_STAGE_OUTPUT));
    gf_policy_unref(p);
    return 0;
}

static int parse_action(const char *s, enum gf_action *a)
{
    for (int i = 0; i <= GF_ACTION_BLOCK; i++)
        if (strcmp(s, gf_action_name((enum gf_action)i)) == 0) {
            *a = (enum gf_action)i;
            return 0;
        }
    return GF_EINVAL;
}

// One case; returns 0 pass, 1 mismatch, 2 bad case or error.
static int run_case(struct gf_policy *p, struct gf_policy_ctx *ctx, const char *cases,
                    size_t lineno, const char *line, size_t len)
{
    cJSON *c = cJSON_ParseWithLength(line, len);
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(c, "text");
    const cJSON *stage = cJSON_GetObjectItemCaseSensitive(c, "stage");
    const cJSON *group = cJSON_GetObjectItemCaseSensitive(c, "group");
    const cJSON *expect = cJSON_GetObjectItemCaseSensitive(c, "expect");
    if (expect == NULL)
        expect = cJSON_GetObjectItemCaseSensitive(c, "expected");
    enum gf_stage st = GF_STAGE_INPUT;
    enum gf_action want = GF_ACTION_ALLOW;
    const char *why = NULL;
    if (!cJSON_IsObject(c))
        why = "not a JSON object";
    else if (!cJSON_IsString(text))
        why = "\"text\" must be a string";
    else if (stage && (!cJSON_IsString(stage) || gf_stage_parse(stage->valuestring, false, &st)))
        why = "\"stage\" must be \"input\" or \"output\"";
    else if (group && !cJSON_IsString(group))
        why = "\"group\" must be a string";
    else if (group && !gf_policy_has_group(p, group->valuestring))
        why = "no such group in the policy";
    else if (!cJSON_IsString(expect) || parse_action(expect->valuestring, &want))
        why = "\"expect\" must be allow, flag, redact or block";
    if (why) {
        fprintf(stderr, "%s:%zu: %s\n", cases, lineno, why);
        cJSON_Delete(c);
        return 2;
    }
    struct gf_verdict v;
    struct gf_err err = {0};
    int rc = gf_policy_eval(p, ctx, group ? group->valuestring : NULL, st, text->valuestring,
                            strlen(text->valuestring), &v, &err);
    int res = 0;
    if (rc != 0) {
        fprintf(stderr, "%s:%zu: %s\n", cases, lineno, err.msg);
        res = 2;
    } else if (v.action != want) {
        printf("%s:%zu: expected %s, got %s", cases, lineno, gf_action_name(want),
               gf_action_name(v.action));
        for (size_t i = 0; i < v.n_fired; i++)
            printf("%s%s", i ? "," : " (rules: ", v.fired[i].rule);
        printf("%s\n", v.n_fired ? ")" : " (no rule fired)");
        res = 1;
    }
    gf_verdict_cleanup(&v);
    cJSON_Delete(c);
    return res;
}

static int test(const char *file, const char *cases, const char *model)
{
    struct gf_policy *p;
    int st = load(file, model, &p);
    if (st != 0)
        return st;
    FILE *f = fopen(cases, "r");
    struct gf_policy_ctx *ctx = gf_policy_ctx_new();
    if (f == NULL || ctx == NULL) {
        fprintf(stderr, "gardefou policy: cannot open %s\n", cases);
        if (f)
            fclose(f);
        gf_policy_ctx_free(ctx);
        gf_policy_unref(p);
        return 2;
    }
    struct gf_buf line;
    gf_buf_init(&line, 16u << 20);
    size_t lineno = 0, n = 0, failed = 0, bad = 0;
    int c;
    do {
        c = fgetc(f);
        if (c != EOF && c != '\n') {
            if (gf_buf_putc(&line, (char)c) != 0) {
                fprintf(stderr, "%s:%zu: line too long\n", cases, lineno + 1);
                bad++;
                break;
            }
            continue;
        }
        lineno++;
        size_t k = 0;
        while (k < line.len && (line.data[k] == ' ' || line.data[k] == '\t' || line.data[k] == '\r'))
            k++;
        if (k < line.len) {
            n++;
            int r = run_case(p, ctx, cases, lineno, line.data, line.len);
            failed += r == 1;
            bad += r == 2;
        }
        gf_buf_reset(&line);
    } while (c != EOF);
    fclose(f);
    gf_buf_cleanup(&line);
    gf_policy_ctx_free(ctx);
    gf_policy_unref(p);
    printf("%zu cases, %zu passed, %zu mismatched, %zu invalid\n", n, n - failed - bad, failed,
           bad);
    return bad ? 2 : failed ? 1 : 0;
}

int gf_cmd_policy(int argc, char **argv)
{
    if (gf_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *model = NULL;
    int n = take_model(argc - 1, argv + 1, &model);
    char **a = argv + 1;
    if (n >= 1 && strcmp(a[0], "check") == 0 && n == 2)
        return check(a[1], model);
    if (n >= 1 && strcmp(a[0], "test") == 0 && n == 3)
        return test(a[1], a[2], model);
    if (n == 1 && strcmp(a[0], "default") == 0) {
        fputs(gf_policy_default_json(), stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
