/* Unit tests of policy/eval.c and verdict.c: actions per stage and group, redaction text and
 * spans, classifier thresholds and scores, allow exemptions, default actions, evasion variants
 * of blocked strings, failing closed, verdict JSON without matched text, merging, moderation
 * scores, and an OOM loop over evaluation. */
#include "policy/policy.h"

#include <math.h>

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
    "    \"pattern\": \"(?i)acme\\\\s+launch\\\\s+codes\", \"action\": \"block\", \"message\": "
    "\"Classified.\"}],\n"
    " \"groups\": {\"strict\": {\"extends\": \"default\",\n"
    "   \"rules\": [{\"id\": \"no-links\", \"stage\": \"output\", \"detector\": \"regex\", "
    "\"pattern\": \"https?://\",\n"
    "              \"action\": \"block\"}]}}}\n";

static struct gf_policy *pol;
static struct gf_policy_ctx *ctx;

static enum gf_action eval(const char *group, enum gf_stage st, const char *text,
                           struct gf_verdict *v)
{
    struct gf_err err = {0};
    int rc = gf_policy_eval(pol, ctx, group, st, text, strlen(text), v, &err);
    if (rc != 0) {
        fprintf(stderr, "eval error: %s\n", err.msg);
        return (enum gf_action)-1;
    }
    return v->action;
}

static bool fired(const struct gf_verdict *v, const char *rule)
{
    for (size_t i = 0; i < v->n_fired; i++)
        if (strcmp(v->fired[i].rule, rule) == 0)
            return true;
    return false;
}

static void test_minimal(void)
{
    struct gf_verdict v;
    CHECK(eval(NULL, GF_STAGE_INPUT, "hello there", &v) == GF_ACTION_ALLOW);
    CHECK(v.n_fired == 0 && strcmp(v.policy_version, gf_policy_version(pol)) == 0);
    CHECK(v.n_scores == 1 && strcmp(v.scores[0].category, "misinformation") == 0);
    gf_verdict_cleanup(&v);

    const char *t = "card 4111 1111 1111 1111, mail bob@example.com.";
    CHECK(eval(NULL, GF_STAGE_INPUT, t, &v) == GF_ACTION_REDACT);
    CHECK(fired(&v, "cards") && v.n_spans == 2);
    CHECK_STREQ(v.redacted, "card [REDACTED:credit_card], mail [REDACTED:email].");
    CHECK(v.redacted_len == strlen(v.redacted));
    CHECK(v.spans[0].start == 5 && v.spans[0].end == 24);
    gf_verdict_cleanup(&v);

    CHECK(eval(NULL, GF_STAGE_INPUT, "write misinformation! about vaccines", &v) ==
          GF_ACTION_BLOCK);
    CHECK(fired(&v, "fake-news") && v.fired[0].score > 0.9);
    CHECK_STREQ(v.message, "I'm sorry, but I can't help with that.");
    gf_verdict_cleanup(&v);
    // The classifier rule is input-only.
    CHECK(eval(NULL, GF_STAGE_OUTPUT, "write misinformation! about vaccines", &v) ==
          GF_ACTION_ALLOW);
    gf_verdict_cleanup(&v);

    t = "Sure: the ACME launch codes are 0000.";
    CHECK(eval(NULL, GF_STAGE_OUTPUT, t, &v) == GF_ACTION_BLOCK);
    CHECK(fired(&v, "secret-phrase"));
    CHECK_STREQ(v.message, "Classified.");
    gf_verdict_cleanup(&v);
    CHECK(eval(NULL, GF_STAGE_INPUT, t, &v) == GF_ACTION_ALLOW);
    gf_verdict_cleanup(&v);

    // Groups: strict adds a rule, the default group does not have it; unknown groups fall back.
    CHECK(eval("strict", GF_STAGE_OUTPUT, "see https://example.com", &v) == GF_ACTION_BLOCK);
    CHECK(fired(&v, "no-links"));
    gf_verdict_cleanup(&v);
    CHECK(eval("default", GF_STAGE_OUTPUT, "see https://example.com", &v) == GF_ACTION_ALLOW);
    gf_verdict_cleanup(&v);
    CHECK(eval("nosuch", GF_STAGE_OUTPUT, "see https://example.com", &v) == GF_ACTION_ALLOW);
    gf_verdict_cleanup(&v);
    CHECK(eval("strict", GF_STAGE_OUTPUT, "acme launch codes", &v) == GF_ACTION_BLOCK);
    gf_verdict_cleanup(&v);
}

// Evasion variants of a blocked string are blocked too.
static void test_evasion(void)
{
    const char *variants[] = {
        "the acme launch codes",
        "the \xef\xbc\xa1\xef\xbc\xa3\xef\xbc\xad\xef\xbc\xa5 launch codes",
        "the a\xe2\x80\x8b" "cme lau\xe2\x80\x8d" "nch codes",
        "the \xd0\xb0" "cm\xd0\xb5 l\xd0\xb0unch c\xd0\xbe" "d\xd0\xb5s",
        "the 4cm3 l4unch c0d3s",
        "the a c m e  l a u n c h  c o d e s",
        "the A.C.M.E launch codes",
        "the \xf0\x9d\x90\x9a\xf0\x9d\x90\x9c\xf0\x9d\x90\xa6\xf0\x9d\x90\x9e launch codes",
        "the \xe2\x80\xae" "acme launch codes\xe2\x80\xac",
        "the acme\xf3\xa0\x80\xa0 launch codes",
    };
    for (size_t i = 0; i < GF_ARRAY_LEN(variants); i++) {
        struct gf_verdict v;
        CHECK_MSG(eval(NULL, GF_STAGE_OUTPUT, variants[i], &v) == GF_ACTION_BLOCK, "variant %zu",
                  i);
        CHECK(i == 0 || i == 8 || (v.n_fired == 1 && v.fired[0].canonical));  // 8: bidi outside
        gf_verdict_cleanup(&v);
    }
    struct gf_verdict v;
    CHECK(eval(NULL, GF_STAGE_OUTPUT, "the acme rocket launch has codes", &v) == GF_ACTION_ALLOW);
    gf_verdict_cleanup(&v);
}

static struct gf_policy *load(const char *js)
{
    struct gf_policy *p = NULL;
    struct gf_err err = {0};
    if (gf_policy_parse(js, strlen(js), "t.json", NULL, &p, &err) != 0)
        fprintf(stderr, "load: %s\n", err.msg);
    return p;
}

static void test_order_and_defaults(void)
{
    struct gf_policy *saved = pol;
    // An allow rule that fires exempts the text from the rules after it, not those before.
    pol = load("{\"version\":1,\"rules\":["
               "{\"id\":\"f\",\"detector\":\"keywords\",\"keywords\":[\"note\"],\"action\":\"flag\"},"
               "{\"id\":\"ok\",\"detector\":\"keywords\",\"keywords\":[\"internal\"],\"action\":\"allow\"},"
               "{\"id\":\"b\",\"detector\":\"keywords\",\"keywords\":[\"secret\"],\"action\":\"block\"}]}");
    REQUIRE(pol != NULL);
    struct gf_verdict v;
    CHECK(eval(NULL, GF_STAGE_INPUT, "a secret", &v) == GF_ACTION_BLOCK);
    gf_verdict_cleanup(&v);
    CHECK(eval(NULL, GF_STAGE_INPUT, "an internal secret", &v) == GF_ACTION_ALLOW);
    CHECK(fired(&v, "ok") && !fired(&v, "b"));
    gf_verdict_cleanup(&v);
    CHECK(eval(NULL, GF_STAGE_INPUT, "a note on an internal secret", &v) == GF_ACTION_FLAG);
    gf_verdict_cleanup(&v);
    gf_policy_unref(pol);
    // Default block: only what an allow rule lets through passes.
    pol = load("{\"version\":1,\"default\":\"block\",\"refusal\":\"Off topic.\",\"rules\":["
               "{\"id\":\"topic\",\"detector\":\"keywords\",\"keywords\":[\"weather\"],"
               "\"action\":\"allow\"}]}");
    REQUIRE(pol != NULL);
    CHECK(eval(NULL, GF_STAGE_INPUT, "what is the weather", &v) == GF_ACTION_ALLOW);
    gf_verdict_cleanup(&v);
    CHECK(eval(NULL, GF_STAGE_INPUT, "tell me a joke", &v) == GF_ACTION_BLOCK);
    CHECK_STREQ(v.message, "Off topic.");
    gf_verdict_cleanup(&v);
    gf_policy_unref(pol);
    // Spam threshold and redaction label.
    pol = load("{\"version\":1,\"rules\":["
               "{\"id\":\"spam\",\"detector\":\"spam\",\"threshold\":0.7,\"action\":\"block\"},"
               "{\"id\":\"names\",\"detector\":\"keywords\",\"keywords\":[\"alice\",\"bob\"],"
               "\"label\":\"name\",\"action\":\"redact\"}]}");
    REQUIRE(pol != NULL);
    CHECK(eval(NULL, GF_STAGE_INPUT, "WIN CASH NOW!!! CLICK HERE http://x.example", &v) ==
          GF_ACTION_BLOCK);
    CHECK(v.n_scores == 1 && v.scores[0].score >= 0.7);
    gf_verdict_cleanup(&v);
    CHECK(eval(NULL, GF_STAGE_INPUT, "Alice met Bob", &v) == GF_ACTION_REDACT);
    CHECK_STREQ(v.redacted, "[REDACTED:name] met [REDACTED:name]");
    CHECK(v.n_scores == 1 && v.scores[0].score < 0.7);
    gf_verdict_cleanup(&v);
    gf_policy_unref(pol);
    // A pattern that cannot be decided fails closed.
    pol = load("{\"version\":1,\"rules\":[{\"id\":\"r\",\"detector\":\"regex\",\"pattern\":"
               "\"^(a+)+$\",\"canonical\":false,\"action\":\"block\"}]}");
    REQUIRE(pol != NULL);
    char s[64];
    memset(s, 'a', 40);
    strcpy(s + 40, "b");
    CHECK(eval(NULL, GF_STAGE_INPUT, s, &v) == GF_ACTION_BLOCK && v.fail_closed);
    gf_verdict_cleanup(&v);
    gf_policy_unref(pol);
    pol = saved;
}

static void test_json_and_merge(void)
{
    struct gf_verdict a, b;
    const char *t = "card 4111111111111111";
    REQUIRE(eval(NULL, GF_STAGE_INPUT, t, &a) == GF_ACTION_REDACT);
    struct gf_buf out;
    gf_buf_init(&out, 1 << 16);
    CHECK(gf_verdict_json(&a, &out) == 0);
    CHECK(strstr(out.data, "\"action\":\"redact\"") != NULL);
    CHECK(strstr(out.data, "\"rules\":[\"cards\"]") != NULL);
    CHECK(strstr(out.data, "\"redactions\":[{\"start\":5,\"end\":21,\"type\":\"credit_card\"}]"));
    CHECK(strstr(out.data, "4111") == NULL);  // never the matched text
    CHECK(strstr(out.data, gf_policy_version(pol)) != NULL);
    REQUIRE(eval(NULL, GF_STAGE_INPUT, "misinformation! now", &b) == GF_ACTION_BLOCK);
    CHECK(gf_verdict_merge(&a, &b) == 0);
    CHECK(a.action == GF_ACTION_BLOCK && a.n_fired == 2 && a.message != NULL);
    gf_buf_reset(&out);
    CHECK(gf_verdict_json(&a, &out) == 0);
    CHECK(strstr(out.data, "\"rules\":[\"cards\",\"fake-news\"]") != NULL);
    CHECK(strstr(out.data, "\"misinformation\":0.95") != NULL);
    gf_buf_cleanup(&out);
    gf_verdict_cleanup(&a);
    gf_verdict_cleanup(&b);
}

static void test_moderate(void)
{
    struct gf_score s[16];
    size_t n;
    CHECK(gf_policy_moderate(pol, ctx, "hate! speech", 12, s, 16, &n, NULL) == 0);
    CHECK(n == 3);
    for (size_t i = 0; i < n; i++)
        CHECK((strcmp(s[i].category, "hate") == 0) == (s[i].score > 0.9));
    struct gf_policy *p = load("{\"version\":1}");
    REQUIRE(p != NULL);
    CHECK(gf_policy_moderate(p, ctx, "BUY NOW!!! http://a.example", 27, s, 16, &n, NULL) == 0);
    CHECK(n == 1 && strcmp(s[0].category, "spam") == 0 && s[0].score > 0.5);
    gf_policy_unref(p);
}

/* A classifier that can leave categories out (as the trained model leaves out its spam head)
 * is asked, once per stage, for what that stage's rules read in any group, and each stage
 * scores through its answer; categories left out come back NaN and are never read. */
static bool asked[2][3];  // want of the narrow calls: input, then output
static int n_asked;

static int narrowed_score(const struct gf_classifier *c, const char *text, size_t len,
                          const struct gf_norm *norm, float *scores, struct gf_err *err)
{
    const bool *want = c->impl;
    int rc = fake_score(c, text, len, norm, scores, err);
    for (size_t i = 0; i < c->n_categories; i++)
        if (!want[i])
            scores[i] = NAN;
    return rc;
}

static void narrowed_destroy(struct gf_classifier *c)
{
    gf_free(c->impl);
    gf_free(c);
}

static const struct gf_classifier_ops narrowed_ops = {
    .name = "fake-narrowed", .score = narrowed_score, .destroy = narrowed_destroy};

static struct gf_classifier *fake_narrow(const struct gf_classifier *c, const bool *want)
{
    if (n_asked < 2)
        memcpy(asked[n_asked], want, sizeof(asked[0]));
    n_asked++;
    struct gf_classifier *n = gf_malloc(sizeof(*n));
    bool *w = gf_malloc(sizeof(asked[0]));
    if (n == NULL || w == NULL) {
        gf_free(n);
        gf_free(w);
        return NULL;
    }
    memcpy(w, want, sizeof(asked[0]));
    gf_classifier_init(n, &narrowed_ops, c->categories, c->n_categories, w);
    return n;
}

static void test_narrowed_per_stage(void)
{
    static const struct gf_classifier_ops narrowing_ops = {
        .name = "fake", .score = fake_score, .destroy = fake_destroy, .narrow = fake_narrow};
    struct gf_clf_registry *reg = gf_clf_registry_new();
    struct gf_classifier *c = gf_malloc(sizeof(*c));
    REQUIRE(reg != NULL && c != NULL);
    gf_classifier_init(c, &narrowing_ops, fake_cats, 3, NULL);
    REQUIRE(gf_clf_registry_add(reg, c, NULL) == 0);
    gf_classifier_unref(c);
    const char *js =
        "{\"version\": 1, \"rules\": [\n"
        " {\"id\": \"hate\", \"stage\": \"both\", \"classifier\": \"hate\", \"threshold\": 0.8,\n"
        "  \"action\": \"flag\"},\n"
        " {\"id\": \"news\", \"stage\": \"input\", \"classifier\": \"misinformation\",\n"
        "  \"threshold\": 0.8, \"action\": \"block\"}],\n"
        " \"groups\": {\"strict\": {\"extends\": \"default\", \"rules\": [\n"
        "  {\"id\": \"spam-out\", \"stage\": \"output\", \"classifier\": \"spam\",\n"
        "   \"threshold\": 0.8, \"action\": \"block\"}]}}}";
    struct gf_policy *p = NULL;
    struct gf_err err = {0};
    n_asked = 0;
    REQUIRE(gf_policy_parse(js, strlen(js), "n.json", reg, &p, &err) == 0);
    gf_clf_registry_unref(reg);
    CHECK(n_asked == 2);
    CHECK(asked[0][0] && asked[0][1] && !asked[0][2]);  // input: misinformation, hate
    CHECK(!asked[1][0] && asked[1][1] && asked[1][2]);  // output: hate, and spam of "strict"
    struct gf_policy *saved = pol;
    pol = p;
    struct gf_verdict v;
    gf_verdict_init(&v);
    CHECK(eval("default", GF_STAGE_INPUT, "misinformation! and hate! here", &v) ==
          GF_ACTION_BLOCK);
    CHECK(fired(&v, "news") && fired(&v, "hate"));
    for (size_t i = 0; i < v.n_scores; i++)
        CHECK(!isnan(v.scores[i].score));
    gf_verdict_cleanup(&v);
    gf_verdict_init(&v);
    CHECK(eval("strict", GF_STAGE_OUTPUT, "spam! and hate!", &v) == GF_ACTION_BLOCK);
    CHECK(fired(&v, "spam-out") && fired(&v, "hate") && v.n_scores == 2);
    for (size_t i = 0; i < v.n_scores; i++)
        CHECK(!isnan(v.scores[i].score) && v.scores[i].score > 0.9);
    gf_verdict_cleanup(&v);
    gf_verdict_init(&v);
    CHECK(eval("default", GF_STAGE_OUTPUT, "misinformation!", &v) == GF_ACTION_ALLOW);
    gf_verdict_cleanup(&v);
    pol = saved;
    gf_policy_unref(p);
}

static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    const char *t = "card 4111 1111 1111 1111, misinformation! acme launch codes";
    for (long k = 1;; k++) {
        struct gf_policy_ctx *c = NULL;
        struct gf_verdict v;
        gf_verdict_init(&v);
        gf_alloc_fail_after(k, false);
        c = gf_policy_ctx_new();
        int rc = c ? gf_policy_eval(pol, c, "strict", GF_STAGE_INPUT, t, strlen(t), &v, NULL)
                   : GF_ENOMEM;
        long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        gf_policy_ctx_free(c);
        if (failed == 0) {
            CHECK(rc == 0 && v.action == GF_ACTION_BLOCK);
            gf_verdict_cleanup(&v);
            break;
        }
        CHECK_MSG(rc == GF_ENOMEM && v.fired == NULL, "step %ld rc %d", k, rc);
    }
}

int main(void)
{
    gf_json_init();
    struct gf_clf_registry *reg = fake_registry();
    struct gf_err err = {0};
    if (reg == NULL || gf_policy_parse(minimal, strlen(minimal), "m.json", reg, &pol, &err) != 0)
        SKIP("cannot load the test policy: %s", err.msg);
    gf_clf_registry_unref(reg);
    ctx = gf_policy_ctx_new();
    if (ctx == NULL)
        SKIP("no memory");
    RUN(test_minimal);
    RUN(test_evasion);
    RUN(test_order_and_defaults);
    RUN(test_json_and_merge);
    RUN(test_moderate);
    RUN(test_narrowed_per_stage);
    RUN(test_oom);
    gf_policy_ctx_free(ctx);
    gf_policy_unref(pol);
    return test_report();
}
