/* test_api_request.c — request validation: every interpreted field, both sides of each range,
 * the field named on error, pass-through of unknown fields, and an OOM loop. */
#include <string.h>

#include <cjson/cJSON.h>

#include "gateway/gateway_int.h"
#include "test.h"

static struct gf_config cfg;

static int parse(enum gf_gen_kind kind, const char *json, struct gf_api_req *a,
                 struct gf_err *err, cJSON **body)
{
    gf_err_clear(err);
    *body = cJSON_Parse(json);
    if (*body == NULL)
        return -100;
    return gf_api_parse(a, kind, *body, &cfg, err);
}

/* Expects a chat body with `extra` members added to be refused naming param (or accepted). */
static void chat_case(const char *extra, const char *param)
{
    char json[2048];
    snprintf(json, sizeof(json), "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]%s%s}",
             extra[0] ? "," : "", extra);
    struct gf_api_req a;
    struct gf_err err;
    cJSON *body;
    int rc = parse(GF_GEN_CHAT, json, &a, &err, &body);
    if (param == NULL) {
        CHECK_MSG(rc == 0, "%s: %s", extra, err.msg);
    } else {
        CHECK_MSG(rc == GF_EINVAL || rc == GF_EUNSUPPORTED, "%s: rc %d", extra, rc);
        CHECK_MSG(strcmp(a.param, param) == 0, "%s: param \"%s\", want \"%s\"", extra, a.param,
                  param);
        CHECK_MSG(strncmp(err.msg, param, strlen(param)) == 0, "%s: msg %s", extra, err.msg);
    }
    gf_api_req_cleanup(&a);
    cJSON_Delete(body);
}

static void test_ranges(void)
{
    chat_case("", NULL);
    chat_case("\"max_tokens\":1", NULL);
    chat_case("\"max_tokens\":16777216", NULL);
    chat_case("\"max_tokens\":0", "max_tokens");
    chat_case("\"max_tokens\":16777217", "max_tokens");
    chat_case("\"max_tokens\":1.5", "max_tokens");
    chat_case("\"max_tokens\":\"5\"", "max_tokens");
    chat_case("\"max_tokens\":null", NULL);
    chat_case("\"max_completion_tokens\":0", "max_completion_tokens");
    chat_case("\"temperature\":0", NULL);
    chat_case("\"temperature\":2", NULL);
    chat_case("\"temperature\":2.01", "temperature");
    chat_case("\"temperature\":-0.1", "temperature");
    chat_case("\"top_p\":1", NULL);
    chat_case("\"top_p\":0", "top_p");
    chat_case("\"top_p\":1.1", "top_p");
    chat_case("\"n\":1", NULL);
    chat_case("\"n\":8", NULL);
    chat_case("\"n\":9", "n");
    chat_case("\"n\":0", "n");
    chat_case("\"seed\":-5", NULL);
    chat_case("\"seed\":1.5", "seed");
    chat_case("\"presence_penalty\":-2", NULL);
    chat_case("\"presence_penalty\":2.5", "presence_penalty");
    chat_case("\"frequency_penalty\":2", NULL);
    chat_case("\"frequency_penalty\":-3", "frequency_penalty");
    chat_case("\"logprobs\":true,\"top_logprobs\":20", NULL);
    chat_case("\"logprobs\":true,\"top_logprobs\":21", "top_logprobs");
    chat_case("\"top_logprobs\":2", "top_logprobs");
    chat_case("\"logprobs\":1", "logprobs");
    chat_case("\"stream\":\"yes\"", "stream");
    chat_case("\"stream_options\":{\"include_usage\":true}", "stream_options");
    chat_case("\"stream\":true,\"stream_options\":{\"include_usage\":1}",
              "stream_options.include_usage");
    chat_case("\"stream\":true,\"stream_options\":[]", "stream_options");
    chat_case("\"stop\":\"x\"", NULL);
    chat_case("\"stop\":[\"a\",\"b\",\"c\",\"d\"]", NULL);
    chat_case("\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]", "stop");
    chat_case("\"stop\":[\"a\",5]", "stop[1]");
    chat_case("\"stop\":\"\"", "stop");
    chat_case("\"stop\":5", "stop");
    chat_case("\"model\":5", "model");
    chat_case("\"model\":\"\"", "model");
    chat_case("\"top_k\":-1", "top_k");
    chat_case("\"min_p\":1.5", "min_p");
    chat_case("\"repetition_penalty\":0", "repetition_penalty");
    chat_case("\"tools\":[{\"type\":\"function\"}],\"response_format\":{\"type\":\"json\"}", NULL);
}

static void chat_messages(const char *msgs, const char *param)
{
    char json[2048];
    snprintf(json, sizeof(json), "{\"messages\":%s}", msgs);
    struct gf_api_req a;
    struct gf_err err;
    cJSON *body;
    int rc = parse(GF_GEN_CHAT, json, &a, &err, &body);
    if (param == NULL)
        CHECK_MSG(rc == 0, "%s: %s", msgs, err.msg);
    else
        CHECK_MSG(rc != 0 && strcmp(a.param, param) == 0, "%s: param \"%s\" want \"%s\"", msgs,
                  a.param, param);
    gf_api_req_cleanup(&a);
    cJSON_Delete(body);
}

static void test_messages(void)
{
    chat_messages("[]", "messages");
    chat_messages("{}", "messages");
    chat_messages("[5]", "messages[0]");
    chat_messages("[{\"content\":\"x\"}]", "messages[0].role");
    chat_messages("[{\"role\":\"user\"}]", "messages[0].content");
    chat_messages("[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"bot\",\"content\":\"b\"}]",
                  "messages[1].role");
    chat_messages("[{\"role\":\"user\",\"content\":5}]", "messages[0].content");
    chat_messages("[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]",
                  "messages[0].content[0].type");
    chat_messages("[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":1}]}]",
                  "messages[0].content[0].text");
    chat_messages("[{\"role\":\"user\",\"content\":[7]}]", "messages[0].content[0]");
    chat_messages("[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[]},"
                  "{\"role\":\"tool\",\"content\":\"r\",\"tool_call_id\":\"1\"}]",
                  NULL);

    struct gf_api_req a;
    struct gf_err err;
    cJSON *body;
    CHECK(parse(GF_GEN_CHAT,
                "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
                "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                "{\"type\":\"text\",\"text\":\"b\"}]}],\"stream\":true,"
                "\"stream_options\":{\"include_usage\":true},\"max_completion_tokens\":7,"
                "\"max_tokens\":3,\"stop\":[\"x\",\"y\"],\"seed\":42}",
                &a, &err, &body) == 0);
    CHECK(a.gen.n_messages == 2);
    CHECK_STREQ(a.gen.messages[1].content, "ab");
    CHECK_STREQ(a.gen.model, "m");
    CHECK(a.gen.stream && a.include_usage);
    CHECK(a.gen.params.max_tokens == 7);
    CHECK(a.gen.params.n_stop == 2 && strcmp(a.gen.params.stop[1], "y") == 0);
    CHECK(a.gen.params.has_seed && a.gen.params.seed == 42);
    CHECK(a.gen.body == body);
    gf_api_req_cleanup(&a);
    cJSON_Delete(body);
}

static void test_completion(void)
{
    struct gf_api_req a;
    struct gf_err err;
    cJSON *body;
    CHECK(parse(GF_GEN_COMPLETION, "{\"prompt\":[\"once\"],\"logprobs\":5}", &a, &err, &body) ==
          0);
    CHECK_STREQ(a.gen.prompt, "once");
    CHECK(a.gen.params.logprobs && a.completion_logprobs == 5);
    gf_api_req_cleanup(&a);
    cJSON_Delete(body);
    CHECK(parse(GF_GEN_COMPLETION, "{\"prompt\":[\"a\",\"b\"]}", &a, &err, &body) == GF_EINVAL);
    CHECK_STREQ(a.param, "prompt");
    gf_api_req_cleanup(&a);
    cJSON_Delete(body);
    CHECK(parse(GF_GEN_COMPLETION, "{\"prompt\":\"x\",\"logprobs\":6}", &a, &err, &body) ==
          GF_EINVAL);
    gf_api_req_cleanup(&a);
    cJSON_Delete(body);
    CHECK(parse(GF_GEN_COMPLETION, "{}", &a, &err, &body) == GF_EINVAL);
    CHECK_STREQ(err.msg, "prompt: required");
    gf_api_req_cleanup(&a);
    cJSON_Delete(body);
}

/* Fields are found among many other members (the lookup of a field whose name the body's
 * summary rules out is skipped), the first of duplicate names wins, and a member without a
 * name (only in a tree built by hand) hides the members after it, as cJSON's lookup does. */
static void test_many_members(void)
{
    struct gf_buf b;
    gf_buf_init(&b, 1 << 16);
    CHECK(gf_buf_puts(&b, "{") == 0);
    for (int i = 0; i < 200; i++) {
        char m[64];
        snprintf(m, sizeof(m), "\"%c%dx_%s\":%d,", 'a' + i % 26, i, i % 3 ? "n" : "stream", i);
        CHECK(gf_buf_puts(&b, m) == 0);
    }
    CHECK(gf_buf_puts(&b, "\"max_tokens\":7,\"seed\":3,\"stream\":true,\"top_k\":4,\"n\":2,"
                          "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"model\":\"m\","
                          "\"stop\":\"s\",\"temperature\":0.5,\"max_tokens\":9,\"prompt\":1}") == 0);
    struct gf_api_req a;
    struct gf_err err;
    cJSON *body;
    cfg.max_choices = 4;
    CHECK(parse(GF_GEN_CHAT, b.data, &a, &err, &body) == 0);
    CHECK(a.gen.params.max_tokens == 7 && a.gen.params.has_seed && a.gen.params.seed == 3);
    CHECK(a.gen.stream && a.gen.params.top_k == 4 && a.gen.params.n == 2);
    CHECK(a.gen.params.temperature == 0.5 && a.gen.params.n_stop == 1);
    CHECK(a.gen.model != NULL && strcmp(a.gen.model, "m") == 0 && a.gen.n_messages == 1);
    gf_api_req_cleanup(&a);
    cJSON_Delete(body);
    gf_buf_cleanup(&b);

    body = cJSON_Parse("{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    REQUIRE(body != NULL);
    cJSON *nameless = cJSON_CreateNumber(1);
    CHECK(cJSON_AddItemToArray(body, nameless)); // a member with no name
    CHECK(cJSON_AddNumberToObject(body, "max_tokens", 5) != NULL);
    CHECK(cJSON_GetObjectItemCaseSensitive(body, "max_tokens") == NULL);
    CHECK(gf_api_parse(&a, GF_GEN_CHAT, body, &cfg, &err) == 0);
    CHECK(a.gen.params.max_tokens == -1);
    gf_api_req_cleanup(&a);
    cJSON_Delete(body);
}

static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    const char *json = "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                       "\"text\":\"a\"}]},{\"role\":\"user\",\"content\":[]}],\"stop\":[\"x\"]}";
    cJSON *body = cJSON_Parse(json);
    REQUIRE(body != NULL);
    for (long n = 1; n < 1000; n++) {
        struct gf_api_req a;
        struct gf_err err = {0};
        gf_alloc_fail_after(n, false);
        int rc = gf_api_parse(&a, GF_GEN_CHAT, body, &cfg, &err);
        long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        gf_api_req_cleanup(&a);
        if (failed == 0) {
            CHECK(rc == 0);
            CHECK(n > 3);
            break;
        }
        CHECK_MSG(rc == GF_ENOMEM, "step %ld rc %d", n, rc);
    }
    cJSON_Delete(body);
}

int main(void)
{
    gf_json_init();
    if (gf_config_init(&cfg) != 0)
        return 1;
    RUN(test_ranges);
    RUN(test_messages);
    RUN(test_completion);
    RUN(test_many_members);
    RUN(test_oom);
    gf_config_cleanup(&cfg);
    return test_report();
}
