/* Unit tests of policy/parse.c: the minimal policy of the specification is accepted as
 * written, groups inherit, replace and remove rules, a table of bad files each gets its precise
 * error, the version is the file's SHA-256, and an OOM loop over loading. */
#include "policy/policy.h"

#include "fake_clf.h"
#include "test.h"

static const char minimal[] =
    "{\"version\": 1, \"default\": \"allow\",\n"
    " \"rules\": [\n"
    "   {\"id\": \"cards\", \"stage\": \"both\", \"detector\": \"pii\", \"types\": [\"credit_card\", "
    "\"email\"], \"action\": \"redact\"},\n"
    "   {\"id\": \"fake-news\", \"stage\": \"input\", \"classifier\": \"misinformation\", "
    "\"threshold\": 0.8,\n"
    "    \"action\": \"block\", \"optional\": true},\n"
    "   {\"id\": \"secret-phrase\", \"stage\": \"output\", \"detector\": \"regex\",\n"
    "    \"pattern\": \"(?i)acme\\\\s+launch\\\\s+codes\", \"action\": \"block\"}],\n"
    " \"groups\": {\"strict\": {\"extends\": \"default\",\n"
    "   \"rules\": [{\"id\": \"no-links\", \"stage\": \"output\", \"detector\": \"regex\", "
    "\"pattern\": \"https?://\",\n"
    "              \"action\": \"block\"}]}}}\n";

static void test_minimal(void)
{
    struct gf_policy *p;
    struct gf_err err = {0};
    // Without classifiers: accepted, the optional rule skipped with a warning.
    REQUIRE(gf_policy_parse(minimal, strlen(minimal), "min.json", NULL, &p, &err) == 0);
    CHECK(strstr(gf_policy_warnings(p), "classifier 'misinformation' is not loaded") != NULL);
    CHECK(strstr(gf_policy_warnings(p), "rules[1]") != NULL);
    CHECK(gf_policy_rule_count(p, "default", GF_STAGE_INPUT) == 1);
    CHECK(gf_policy_rule_count(p, "default", GF_STAGE_OUTPUT) == 2);
    CHECK(gf_policy_rule_count(p, "strict", GF_STAGE_OUTPUT) == 3);
    CHECK(gf_policy_has_group(p, "strict") && gf_policy_has_group(p, "default"));
    CHECK(!gf_policy_has_group(p, "lax"));
    uint8_t d[32];
    char hex[65];
    gf_sha256(minimal, strlen(minimal), d);
    gf_hex(d, 32, hex);
    CHECK_STREQ(gf_policy_version(p), hex);
    CHECK_STREQ(gf_policy_source(p), "min.json");
    CHECK(gf_policy_holdback(p) == 256);
    int blocks;
    int64_t win;
    gf_policy_abuse(p, &blocks, &win);
    CHECK(blocks == 0);
    gf_policy_unref(p);
    // With the classifier loaded, the rule is live.
    struct gf_clf_registry *reg = fake_registry();
    REQUIRE(reg != NULL);
    REQUIRE(gf_policy_parse(minimal, strlen(minimal), "min.json", reg, &p, &err) == 0);
    CHECK_STREQ(gf_policy_warnings(p), "");
    CHECK(gf_policy_rule_count(p, "default", GF_STAGE_INPUT) == 2);
    CHECK(gf_policy_registry(p) == reg);
    gf_clf_registry_unref(reg);  // the policy keeps its own reference
    struct gf_policy *q = gf_policy_ref(p);
    gf_policy_unref(p);
    CHECK(gf_policy_rule_count(q, NULL, GF_STAGE_INPUT) == 2);
    gf_policy_unref(q);
    gf_policy_unref(NULL);
}

static void test_groups(void)
{
    const char *js =
        "{\"version\":1,\"default\":\"allow\",\"refusal\":\"No.\",\n"
        " \"categories\":{\"hate\":{\"threshold\":0.7},\"spam\":0.9},\n"
        " \"abuse\":{\"blocks\":5,\"window\":\"10m\"},\"streaming\":{\"holdback_bytes\":128},\n"
        " \"rules\":[{\"id\":\"a\",\"detector\":\"keywords\",\"keywords\":[\"alpha\"],\"action\":\"flag\"},\n"
        "          {\"id\":\"b\",\"detector\":\"keywords\",\"keywords\":[\"beta\"],\"action\":\"flag\"}],\n"
        " \"groups\":{\n"
        "   \"g1\":{\"rules\":[{\"id\":\"a\",\"detector\":\"keywords\",\"keywords\":[\"alpha\"],"
        "\"action\":\"block\"},{\"id\":\"c\",\"detector\":\"regex\",\"pattern\":\"gamma\","
        "\"action\":\"block\"}],\"remove\":[\"b\"],\"default\":\"flag\"},\n"
        "   \"g2\":{\"extends\":\"g1\",\"override\":false,\"refusal\":\"Never.\"},\n"
        "   \"g3\":{\"extends\":\"g1\",\"override\":true,\"rules\":[{\"id\":\"z\","
        "\"detector\":\"spam\",\"threshold\":0.9,\"action\":\"block\"}]}}}";
    struct gf_policy *p;
    struct gf_err err = {0};
    REQUIRE(gf_policy_parse(js, strlen(js), "g.json", NULL, &p, &err) == 0);
    CHECK(gf_policy_rule_count(p, "default", GF_STAGE_INPUT) == 2);
    CHECK(gf_policy_rule_count(p, "g1", GF_STAGE_INPUT) == 2);  // a (replaced), c
    CHECK(gf_policy_rule_count(p, "g2", GF_STAGE_INPUT) == 2);
    CHECK(gf_policy_rule_count(p, "g3", GF_STAGE_INPUT) == 1);
    CHECK(gf_policy_rule_count(p, "unknown", GF_STAGE_INPUT) == 2);  // falls back to default
    CHECK(gf_policy_category_threshold(p, "hate") == 0.7);
    CHECK(gf_policy_category_threshold(p, "spam") == 0.9);
    CHECK(gf_policy_category_threshold(p, "violence") == 0.5);
    int blocks;
    int64_t win;
    gf_policy_abuse(p, &blocks, &win);
    CHECK(blocks == 5 && win == 600000);
    CHECK(gf_policy_holdback(p) == 128);
    gf_policy_unref(p);
}

struct bad_case {
    const char *json;
    const char *error;  // the whole message after "bad.json: "
};

#define R0 "{\"version\":1,\"rules\":["
#define RULE "{\"id\":\"a\",\"detector\":\"regex\",\"pattern\":\"x\",\"action\":\"block\"}"

static const struct bad_case bad[] = {
    {"{", "invalid JSON at line 1, byte 0"},
    {"{\"version\":1,\n\"rules\":[}", "invalid JSON at line 2, byte 23"},
    {"[]", "(top): expected a JSON object"},
    {"{}", "version: missing (expected 1)"},
    {"{\"version\":2}", "version: unsupported (expected 1)"},
    {"{\"version\":1,\"rulez\":[]}", "rulez: unknown key"},
    {"{\"version\":1,\"default\":\"deny\"}",
     "default: unknown action 'deny' (expected allow, flag, redact or block)"},
    {"{\"version\":1,\"rules\":{}}", "rules: expected an array"},
    {R0 "{\"detector\":\"regex\",\"pattern\":\"x\",\"action\":\"block\"}]}",
     "rules[0].id: missing (expected a string)"},
    {R0 "{\"id\":5,\"detector\":\"regex\",\"pattern\":\"x\",\"action\":\"block\"}]}",
     "rules[0].id: expected a string"},
    {R0 "{\"id\":\"a b\",\"detector\":\"regex\",\"pattern\":\"x\",\"action\":\"block\"}]}",
     "rules[0].id: 'a b' is not an id (1-64 of A-Z a-z 0-9 - _ . :)"},
    {R0 RULE ",{\"id\":\"b\",\"detector\":\"magic\",\"action\":\"block\"}]}",
     "rules[1].detector: unknown detector 'magic' (expected regex, keywords, pii or spam)"},
    {R0 RULE ",{\"id\":\"b\",\"detector\":\"regex\",\"pattern\":\"ab(c\",\"action\":\"block\"}]}",
     "rules[1].pattern: PCRE2 error at offset 4: missing closing parenthesis"},
    {R0 "{\"id\":\"a\",\"detector\":\"regex\",\"patterns\":[\"ok\",\"[z-a]\"],\"action\":\"flag\"}]}",
     "rules[0].patterns[1]: PCRE2 error at offset 3: range out of order in character class"},
    {R0 "{\"id\":\"a\",\"detector\":\"regex\",\"action\":\"flag\"}]}",
     "rules[0].pattern: give exactly one of \"pattern\" or \"patterns\""},
    {R0 "{\"id\":\"a\",\"detector\":\"spam\",\"threshold\":1.5,\"action\":\"flag\"}]}",
     "rules[0].threshold: expected a number in [0, 1]"},
    {R0 "{\"id\":\"a\",\"classifier\":\"hate\",\"threshold\":-0.1,\"action\":\"flag\"}]}",
     "rules[0].threshold: expected a number in [0, 1]"},
    {R0 RULE "," RULE "]}", "rules[1].id: duplicate rule id 'a'"},
    {R0 "{\"id\":\"a\",\"classifier\":\"violence\",\"action\":\"flag\"}]}",
     "rules[0].classifier: classifier 'violence' is not loaded (add \"optional\": true to skip "
     "the rule when it is not)"},
    {R0 "{\"id\":\"a\",\"detector\":\"pii\",\"types\":[\"email\",\"passport\"],\"action\":\"flag\"}]}",
     "rules[0].types[1]: unknown type 'passport' (see docs/policy.md for the list)"},
    {R0 "{\"id\":\"a\",\"detector\":\"keywords\",\"action\":\"flag\"}]}",
     "rules[0].keywords: missing (expected a non-empty array of strings)"},
    {R0 "{\"id\":\"a\",\"detector\":\"keywords\",\"keywords\":[\"x\",\" \"],\"action\":\"flag\"}]}",
     "rules[0].keywords[1]: empty keyword"},
    {R0 "{\"id\":\"a\",\"detector\":\"pii\",\"pattern\":\"x\",\"action\":\"flag\"}]}",
     "rules[0].pattern: not valid for detector 'pii'"},
    {R0 "{\"id\":\"a\",\"stage\":\"middle\",\"detector\":\"pii\",\"action\":\"flag\"}]}",
     "rules[0].stage: unknown stage 'middle' (expected input, output or both)"},
    {R0 "{\"id\":\"a\",\"detector\":\"pii\",\"classifier\":\"hate\",\"action\":\"flag\"}]}",
     "rules[0]: give exactly one of \"detector\" or \"classifier\""},
    {R0 "{\"id\":\"a\",\"detector\":\"pii\",\"action\":\"flag\",\"optional\":true}]}",
     "rules[0].optional: only classifier rules can be optional"},
    {R0 "{\"id\":\"a\",\"classifier\":\"hate\",\"action\":\"flag\",\"optional\":\"yes\"}]}",
     "rules[0].optional: expected true or false"},
    {R0 "{\"id\":\"a\",\"id\":\"b\",\"detector\":\"pii\",\"action\":\"flag\"}]}",
     "rules[0].id: key given twice"},
    {R0 "{\"id\":\"a\",\"detector\":\"pii\",\"action\":\"flag\",\"colour\":1}]}",
     "rules[0].colour: unknown key"},
    {R0 "{\"id\":\"a\",\"detector\":\"pii\",\"action\":\"delete\"}]}",
     "rules[0].action: unknown action 'delete' (expected allow, flag, redact or block)"},
    {"{\"version\":1,\"groups\":{\"s\":{\"extends\":\"nope\"}}}",
     "groups.s.extends: unknown group 'nope'"},
    {"{\"version\":1,\"groups\":{\"a\":{\"extends\":\"b\"},\"b\":{\"extends\":\"a\"}}}",
     "groups.a: groups extend each other in a cycle"},
    {"{\"version\":1,\"groups\":{\"g\":{\"remove\":[\"zz\"]}}}",
     "groups.g.remove[0]: no inherited rule 'zz'"},
    {"{\"version\":1,\"groups\":{\"g\":{\"rules\":[" RULE "," RULE "]}}}",
     "groups.g.rules[1].id: duplicate rule id 'a'"},
    {"{\"version\":1,\"groups\":{\"g\":{\"rules\":[{\"id\":\"q\",\"detector\":\"regex\","
     "\"pattern\":\"(?<=a+)b\",\"action\":\"flag\"}]}}}",
     "groups.g.rules[0].pattern: PCRE2 error at offset 0: lookbehind assertion is not fixed "
     "length"},
    {"{\"version\":1,\"groups\":{\"default\":{}}}", "groups.default: 'default' cannot name a group"},
    {"{\"version\":1,\"groups\":{\"g\":{\"colour\":1}}}", "groups.g.colour: unknown key"},
    {"{\"version\":1,\"abuse\":{\"blocks\":-1}}", "abuse.blocks: expected an integer in [0, 1000000]"},
    {"{\"version\":1,\"abuse\":{\"blocks\":3,\"window\":\"soon\"}}",
     "abuse.window: 'soon' is not a duration (e.g. 10m, 1h)"},
    {"{\"version\":1,\"streaming\":{\"holdback_bytes\":4}}",
     "streaming.holdback_bytes: expected an integer in [16, 65536]"},
    {"{\"version\":1,\"categories\":{\"hate\":2}}", "categories.hate: expected a number in [0, 1]"},
    {"{\"version\":1,\"categories\":{\"hate\":{\"threshold\":\"high\"}}}",
     "categories.hate.threshold: expected a number in [0, 1]"},
};

static void test_bad_files(void)
{
    struct gf_clf_registry *reg = fake_registry();
    REQUIRE(reg != NULL);
    for (size_t i = 0; i < GF_ARRAY_LEN(bad); i++) {
        struct gf_policy *p = (void *)1;
        struct gf_err err = {0};
        int rc = gf_policy_parse(bad[i].json, strlen(bad[i].json), "bad.json", reg, &p, &err);
        char want[300];
        snprintf(want, sizeof(want), "bad.json: %s", bad[i].error);
        CHECK_MSG(rc != 0 && p == NULL && strcmp(err.msg, want) == 0, "case %zu: got \"%s\"", i,
                  err.msg);
        CHECK(rc == (i < 2 ? GF_EFORMAT : GF_EINVAL));
    }
    gf_clf_registry_unref(reg);
}

static void test_load_file(void)
{
    struct gf_policy *p;
    struct gf_err err = {0};
    CHECK(gf_policy_load("/nonexistent/p.json", NULL, &p, &err) == GF_EIO);
    CHECK(strstr(err.msg, "/nonexistent/p.json: cannot open") == err.msg);
    char path[] = "/tmp/gf_policy_test_XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(minimal, f);
    fclose(f);
    gf_err_clear(&err);
    CHECK(gf_policy_load(path, NULL, &p, &err) == 0);
    if (p)
        CHECK_STREQ(gf_policy_source(p), path);
    gf_policy_unref(p);
    remove(path);
    CHECK(gf_policy_load_default(NULL, &p, &err) == 0);
    CHECK(p && gf_policy_rule_count(p, NULL, GF_STAGE_OUTPUT) == 2);
    gf_policy_unref(p);
}

static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    struct gf_clf_registry *reg = fake_registry();
    REQUIRE(reg != NULL);
    long steps = 0;
    for (long k = 1;; k++) {
        struct gf_policy *p = NULL;
        struct gf_err err = {0};
        gf_alloc_fail_after(k, false);
        int rc = gf_policy_parse(minimal, strlen(minimal), "min.json", reg, &p, &err);
        long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        if (failed == 0) {
            CHECK(rc == 0 && p != NULL);
            gf_policy_unref(p);
            break;
        }
        steps++;
        // A failed JIT compile only costs speed; anything else must report out of memory.
        CHECK_MSG(rc == GF_ENOMEM ? p == NULL && err.code == GF_ENOMEM : rc == 0 && p != NULL,
                  "step %ld rc %d %s", k, rc, err.msg);
        gf_policy_unref(p);
    }
    CHECK(steps > 10);
    gf_clf_registry_unref(reg);
}

int main(void)
{
    gf_json_init();
    RUN(test_minimal);
    RUN(test_groups);
    RUN(test_bad_files);
    RUN(test_load_file);
    RUN(test_oom);
    return test_report();
}
