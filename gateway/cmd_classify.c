/* cmd_classify.c — `gardefou classify`: evaluates one text under a policy (the built-in one by
 * default) and prints the verdict as JSON, with the redacted text when the verdict redacts. */
#include "gateway/cli.h"

#include <stdio.h>
#include <string.h>

#include "classifiers/classifiers.h"
#include "gateway/gateway.h"
#include "policy/policy.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gardefou classify [--policy FILE] [--stage input|output] [--group G]\n"
            "                         [--model M] TEXT|-\n\n"
            "Evaluates TEXT (or standard input with -) under the policy and prints the verdict\n"
            "as one JSON object: action, policy_version, rules fired, classifier scores,\n"
            "redactions (and \"redacted\", the rewritten text, when the action is redact).\n\n"
            "options:\n"
            "  --policy FILE  policy file (default: the built-in policy, docs/policy.md)\n"
            "  --stage S      input (default) or output\n"
            "  --group G      key group whose rules apply (default: default)\n"
            "  --model M      trained classifier model (default: models/moderation.gguf if\n"
            "                 present; \"\" for none)\n");
}

static int read_stdin(struct gf_buf *b)
{
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
        if (gf_buf_append(b, chunk, n) != 0)
            return -1;
    return ferror(stdin) ? -1 : 0;
}

int gf_cmd_classify(int argc, char **argv)
{
    if (gf_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    const char *file = NULL, *group = NULL, *model = NULL, *text = NULL;
    enum gf_stage stage = GF_STAGE_INPUT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--policy") == 0 && has) {
            file = argv[++i];
        } else if (strcmp(a, "--group") == 0 && has) {
            group = argv[++i];
        } else if (strcmp(a, "--model") == 0 && has) {
            model = argv[++i];
        } else if (strcmp(a, "--stage") == 0 && has) {
            if (gf_stage_parse(argv[++i], false, &stage) != 0) {
                fprintf(stderr, "gardefou classify: --stage must be input or output\n");
                return 2;
            }
        } else if ((a[0] != '-' || strcmp(a, "-") == 0) && text == NULL) {
            text = a;
        } else {
            fprintf(stderr, "gardefou classify: unexpected argument '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (text == NULL) {
        usage(stderr);
        return 2;
    }
    struct gf_buf in;
    gf_buf_init(&in, 64u << 20);
    if (strcmp(text, "-") == 0) {
        if (read_stdin(&in) != 0) {
            fprintf(stderr, "gardefou classify: cannot read standard input\n");
            gf_buf_cleanup(&in);
            return 2;
        }
    } else if (gf_buf_puts(&in, text) != 0) {
        gf_buf_cleanup(&in);
        return 1;
    }
    struct gf_err err = {0};
    struct gf_clf_registry *reg = NULL;
    struct gf_policy *p = NULL;
    struct gf_policy_ctx *ctx = NULL;
    int status = 2;
    if (gf_moderation_load_classifiers(model, &reg, &err) != 0 ||
        gf_moderation_load_policy(file, reg, &p, &err) != 0) {
        fprintf(stderr, "gardefou classify: %s\n", err.msg);
        goto done;
    }
    if (group && !gf_policy_has_group(p, group)) {
        fprintf(stderr, "gardefou classify: the policy has no group '%s'\n", group);
        goto done;
    }
    ctx = gf_policy_ctx_new();
    struct gf_verdict v;
    if (ctx == NULL ||
        gf_policy_eval(p, ctx, group, stage, in.data ? in.data : "", in.len, &v, &err) != 0) {
        fprintf(stderr, "gardefou classify: %s\n", err.msg[0] ? err.msg : "out of memory");
        status = 1;
        goto done;
    }
    struct gf_buf out;
    gf_buf_init(&out, 256u << 20);
    int rc = gf_verdict_json(&v, &out);
    if (rc == 0 && v.redacted) {  // splice the rewritten text in before the closing brace
        out.len--;
        rc = gf_buf_puts(&out, ",\"redacted\":");
        if (rc == 0)
            rc = gf_buf_append_json_str(&out, v.redacted, v.redacted_len);
        if (rc == 0)
            rc = gf_buf_putc(&out, '}');
    }
    if (rc == 0) {
        fwrite(out.data, 1, out.len, stdout);
        fputc('\n', stdout);
        status = 0;
    } else {
        status = 1;
    }
    gf_buf_cleanup(&out);
    gf_verdict_cleanup(&v);
done:
    gf_policy_ctx_free(ctx);
    gf_policy_unref(p);
    gf_clf_registry_unref(reg);
    gf_buf_cleanup(&in);
    return status;
}
