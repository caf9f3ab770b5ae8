/* Tests of the mock upstream itself: the scripted replies that the engine and gateway tests
 * rely on really happen (normal, stream framing, echo, errors, cut, auth, models, health). */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/common.h"
#include "mock_child.h"
#include "test.h"

static struct mock_child mock;
static char out[1 << 20];

static int post(const char *path, const char *headers, const char *body)
{
    return mock_child_http(&mock, "POST", path, headers, body, out, sizeof(out));
}

static void test_models_and_health(void)
{
    CHECK(mock_child_http(&mock, "GET", "/v1/models", NULL, NULL, out, sizeof(out)) == 200);
    CHECK(strstr(out, "\"id\":\"m1\"") != NULL && strstr(out, "\"id\":\"m2\"") != NULL);
    CHECK(mock_child_http(&mock, "GET", "/health", NULL, NULL, out, sizeof(out)) == 200);
    CHECK(post("/mock/down", NULL, NULL) == 200);
    CHECK(mock_child_http(&mock, "GET", "/health", NULL, NULL, out, sizeof(out)) == 503);
    CHECK(mock_child_http(&mock, "GET", "/v1/models", NULL, NULL, out, sizeof(out)) == 503);
    CHECK(post("/mock/up", NULL, NULL) == 200);
    CHECK(mock_child_http(&mock, "GET", "/health", NULL, NULL, out, sizeof(out)) == 200);
    CHECK(mock_child_http(&mock, "GET", "/nope", NULL, NULL, out, sizeof(out)) == 404);
}

static void test_normal(void)
{
    const char *auth = "Authorization: Bearer up-key\r\n";
    CHECK(post("/v1/chat/completions", NULL, "{\"model\":\"x\"}") == 401);
    CHECK(strstr(out, "Invalid API Key") != NULL);
    REQUIRE(post("/v1/chat/completions", auth, "{\"model\":\"x\",\"n\":2}") == 200);
    cJSON *j = cJSON_Parse(out);
    REQUIRE(j != NULL);
    cJSON *choices = cJSON_GetObjectItem(j, "choices");
    CHECK(cJSON_GetArraySize(choices) == 2);
    cJSON *msg = cJSON_GetObjectItem(cJSON_GetArrayItem(choices, 1), "message");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(msg, "content")),
                "Hello from the mock upstream.");
    CHECK(cJSON_GetObjectItem(j, "usage") != NULL);
    cJSON_Delete(j);
    REQUIRE(post("/v1/completions", auth, "{\"model\":\"tokens=3,length\"}") == 200);
    j = cJSON_Parse(out);
    REQUIRE(j != NULL);
    cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(c0, "text")), "w1 w2 w3");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(c0, "finish_reason")), "length");
    cJSON_Delete(j);
}

static void test_stream(void)
{
    const char *auth = "Authorization: Bearer up-key\r\n";
    REQUIRE(post("/v1/chat/completions", auth,
                 "{\"model\":\"x\",\"stream\":true,\"stream_options\":{\"include_usage\":true}}") ==
            200);
    CHECK(strstr(out, "\"delta\":{\"role\":\"assistant\",\"content\":\"Hello \"}") != NULL);
    CHECK(strstr(out, "\"usage\":{\"prompt_tokens\"") != NULL);
    CHECK(strstr(out, "data: [DONE]\n\n\r\n0\r\n\r\n") != NULL);
    REQUIRE(post("/v1/chat/completions", auth,
                 "{\"model\":\"nousage\",\"stream\":true,\"stream_options\":{\"include_usage\":"
                 "true}}") == 200);
    CHECK(strstr(out, "\"usage\"") == NULL);
    // Cut after one chunk: no finish, no [DONE].
    REQUIRE(post("/v1/chat/completions", auth, "{\"model\":\"cut=1\",\"stream\":true}") == 200);
    CHECK(strstr(out, "Hello ") != NULL);
    CHECK(strstr(out, "from ") == NULL);
    CHECK(strstr(out, "[DONE]") == NULL);
    REQUIRE(post("/v1/chat/completions", auth, "{\"model\":\"tools\",\"stream\":true}") == 200);
    CHECK(strstr(out, "\"tool_calls\":[{\"index\":0,\"id\":\"call_mock1\"") != NULL);
    CHECK(strstr(out, "\"finish_reason\":\"tool_calls\"") != NULL);
}

static void test_echo_and_errors(void)
{
    REQUIRE(post("/v1/chat/completions",
                 "Authorization: Bearer up-key\r\nX-Custom: yes\r\n",
                 "{\"model\":\"echo\",\"logit_bias\":{\"42\":-100}}") == 200);
    cJSON *j = cJSON_Parse(out);
    REQUIRE(j != NULL);
    cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    const char *text =
        cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "message"), "content"));
    REQUIRE(text != NULL);
    cJSON *echo = cJSON_Parse(text);
    REQUIRE(echo != NULL);
    cJSON *h = cJSON_GetObjectItem(echo, "headers");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(h, "x-custom")), "yes");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(h, "authorization")), "Bearer up-key");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(echo, "path")), "/v1/chat/completions");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(echo, "body")),
                "{\"model\":\"echo\",\"logit_bias\":{\"42\":-100}}");
    cJSON_Delete(echo);
    cJSON_Delete(j);

    const char *xm = "Authorization: Bearer up-key\r\nx-mock: status=500\r\n";
    CHECK(post("/v1/chat/completions", xm, "{\"model\":\"x\"}") == 500);
    CHECK(strstr(out, "\"error\":{\"message\":\"mock error 500\"") != NULL);
    CHECK(post("/v1/chat/completions", "Authorization: Bearer up-key\r\n",
               "{\"model\":\"status=400\"}") == 400);
    CHECK(strstr(out, "invalid_request_error") != NULL);
    // A cut non-streamed body is shorter than its Content-Length.
    CHECK(post("/v1/chat/completions", "Authorization: Bearer up-key\r\n",
               "{\"model\":\"cut=0\"}") == 200);
    CHECK(cJSON_Parse(out) == NULL);
    CHECK(post("/v1/chat/completions", "Authorization: Bearer up-key\r\n",
               "{\"model\":\"badjson\"}") == 200);
    CHECK(cJSON_Parse(out) == NULL);
    CHECK(mock_child_http(&mock, "GET", "/mock/stats", NULL, NULL, out, sizeof(out)) == 200);
    CHECK(strstr(out, "\"requests\":") != NULL);
}

int main(void)
{
    gf_json_init();
    const char *args[] = {"--models", "m1,m2", "--api-key", "up-key", NULL};
    if (mock_child_start(&mock, args) != 0) {
        fprintf(stderr, "cannot start the mock upstream\n");
        return 1;
    }
    RUN(test_models_and_health);
    RUN(test_normal);
    RUN(test_stream);
    RUN(test_echo_and_errors);
    CHECK(mock_child_stop(&mock) == 0);
    return test_report();
}
