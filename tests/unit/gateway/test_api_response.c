/* test_api_response.c — the wire format: replies, chunks and model lists parse as JSON with the
 * OpenAI fields, any text (quotes, control bytes, invalid UTF-8) stays valid JSON, non-text
 * delta fields are spliced in; token logprobs in the chat and completions formats; the error
 * mapping; the metrics text. */
#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "gateway/gateway_int.h"
#include "test.h"

static const struct gf_reply_info chat = {"chatcmpl-1", "m", 1700000000, GF_GEN_CHAT, NULL, NULL};
static const struct gf_reply_info cmpl = {"cmpl-1", NULL, 1700000000, GF_GEN_COMPLETION, NULL,
                                          NULL};

static void test_reply(void)
{
    struct gf_reply_choice ch[2];
    memset(ch, 0, sizeof(ch));
    gf_buf_init(&ch[0].text, 1 << 20);
    gf_buf_init(&ch[1].text, 1 << 20);
    gf_buf_puts(&ch[0].text, "a \"quote\"\n\x01 and \xff");
    ch[0].finish_reason = "length";
    ch[1].extra_json = (char *)"{\"tool_calls\":[{\"id\":\"t\"}]}";
    struct gf_gen_usage u = {5, 6, 0};
    struct gf_buf out;
    gf_buf_init(&out, 1 << 20);
    REQUIRE(gf_api_reply_json(&out, &chat, ch, 2, &u) == 0);
    cJSON *root = cJSON_Parse(out.data);
    REQUIRE(root != NULL);
    cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "choices"), 0);
    cJSON *c1 = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "choices"), 1);
    CHECK(strncmp(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "message"),
                                                           "content")),
                  "a \"quote\"\n\x01 and ", 15) == 0);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(c0, "finish_reason")), "length");
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(c1, "message"), "content")));
    CHECK(cJSON_IsArray(cJSON_GetObjectItem(cJSON_GetObjectItem(c1, "message"), "tool_calls")));
    CHECK(cJSON_GetNumberValue(
              cJSON_GetObjectItem(cJSON_GetObjectItem(root, "usage"), "total_tokens")) == 11);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(root, "created")) == 1700000000);
    cJSON_Delete(root);
    gf_buf_reset(&out);
    REQUIRE(gf_api_reply_json(&out, &cmpl, ch, 1, &u) == 0);
    root = cJSON_Parse(out.data);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(root, "object")), "text_completion");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(root, "model")), "unknown");
    cJSON_Delete(root);
    gf_buf_cleanup(&out);
    gf_buf_cleanup(&ch[0].text);
    gf_buf_cleanup(&ch[1].text);
}

static cJSON *sse_json(struct gf_buf *b)
{
    CHECK(strncmp(b->data, "data: ", 6) == 0);
    CHECK(b->len > 8 && strcmp(b->data + b->len - 2, "\n\n") == 0);
    return cJSON_Parse(b->data + 6);
}

static void test_chunks(void)
{
    struct gf_buf b;
    gf_buf_init(&b, 1 << 16);
    REQUIRE(gf_api_chunk_sse(&b, &chat, 0, "assistant", "hi", 2, NULL, NULL, false) == 0);
    cJSON *c = sse_json(&b);
    cJSON *d = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(c, "choices"), 0),
                                   "delta");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(d, "role")), "assistant");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(d, "content")), "hi");
    CHECK(cJSON_GetObjectItem(c, "usage") == NULL);
    cJSON_Delete(c);
    gf_buf_reset(&b);
    REQUIRE(gf_api_chunk_sse(&b, &chat, 1, NULL, NULL, 0, "{ \"tool_calls\":[1] }", "tool_calls",
                             true) == 0);
    c = sse_json(&b);
    REQUIRE(c != NULL);
    cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(c, "choices"), 0);
    CHECK(cJSON_IsArray(cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "delta"), "tool_calls")));
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(c0, "finish_reason")), "tool_calls");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(c0, "index")) == 1);
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(c, "usage")));
    cJSON_Delete(c);
    gf_buf_reset(&b);
    // Top-level members (the stream's output verdict) land beside the chunk's own fields.
    struct gf_reply_info top = chat;
    top.top_json = "\"gardefou\":{\"output\":\"block\",\"rules\":[\"r1\"]}";
    REQUIRE(gf_api_chunk_sse(&b, &top, 0, NULL, NULL, 0, NULL, "content_filter", false) == 0);
    c = sse_json(&b);
    REQUIRE(c != NULL);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetObjectItem(c, "gardefou"),
                                                         "output")),
                "block");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(c, "object")), "chat.completion.chunk");
    cJSON_Delete(c);
    gf_buf_reset(&b);
    struct gf_gen_usage u = {1, 2, 0};
    REQUIRE(gf_api_usage_sse(&b, &cmpl, &u) == 0);
    c = sse_json(&b);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(c, "choices")) == 0);
    cJSON_Delete(c);
    gf_buf_reset(&b);
    const char *ids[] = {"a", "b\"c"};
    REQUIRE(gf_api_models_json(&b, ids, 2, 5) == 0);
    c = cJSON_Parse(b.data);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(
                    cJSON_GetArrayItem(cJSON_GetObjectItem(c, "data"), 1), "id")),
                "b\"c");
    cJSON_Delete(c);
    gf_buf_cleanup(&b);
}

static void test_errors(void)
{
    CHECK(gf_http_error_of(GF_EINVAL).status == 400);
    CHECK(gf_http_error_of(GF_EPERM).status == 401);
    CHECK(gf_http_error_of(GF_ENOTFOUND).status == 404);
    CHECK(gf_http_error_of(GF_ETOOBIG).status == 413);
    CHECK(gf_http_error_of(GF_ELIMIT).status == 429);
    CHECK(gf_http_error_of(GF_EUPSTREAM).status == 502);
    CHECK(gf_http_error_of(GF_EAGAIN).status == 503);
    CHECK(gf_http_error_of(GF_ETIMEDOUT).status == 504);
    CHECK(gf_http_error_of(GF_ENOMEM).status == 500);
    CHECK_STREQ(gf_http_error_of(GF_EPOLICY).code, "content_policy_violation");
    struct gf_buf b;
    gf_buf_init(&b, 4096);
    struct gf_http_error he = gf_http_error_of(GF_EINVAL);
    REQUIRE(gf_http_error_json(&b, &he, "max_tokens: \"bad\"", "max_tokens") == 0);
    cJSON *c = cJSON_Parse(b.data);
    cJSON *e = cJSON_GetObjectItem(c, "error");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(e, "message")), "max_tokens: \"bad\"");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(e, "param")), "max_tokens");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(e, "type")), "invalid_request_error");
    CHECK(cJSON_IsNull(cJSON_GetObjectItem(e, "code")));
    cJSON_Delete(c);
    gf_buf_cleanup(&b);
}

static void test_metrics(void)
{
    struct gf_metrics m;
    memset(&m, 0, sizeof(m));
    gf_metrics_request(&m, GF_ROUTE_CHAT, 200, 300000);      // 0.3 ms
    gf_metrics_request(&m, GF_ROUTE_CHAT, 200, 2000000000);  // 2 s
    gf_metrics_request(&m, GF_ROUTE_CHAT, 418, 1000);
    struct gf_buf b;
    gf_buf_init(&b, 1 << 20);
    REQUIRE(gf_metrics_render(&m, &b) == 0);
    CHECK(strstr(b.data, "gardefou_requests_total{route=\"chat_completions\",status=\"200\"} 2\n"));
    CHECK(strstr(b.data, "gardefou_requests_total{route=\"chat_completions\",status=\"other\"} 1\n"));
    CHECK(strstr(b.data,
                 "gardefou_request_duration_seconds_bucket{route=\"chat_completions\",le=\"0.0005\"} 2\n"));
    CHECK(strstr(b.data,
                 "gardefou_request_duration_seconds_bucket{route=\"chat_completions\",le=\"1\"} 2\n"));
    CHECK(strstr(b.data,
                 "gardefou_request_duration_seconds_bucket{route=\"chat_completions\",le=\"+Inf\"} 3\n"));
    CHECK(strstr(b.data, "gardefou_request_duration_seconds_count{route=\"chat_completions\"} 3\n"));
    gf_buf_cleanup(&b);
}

/* Token log-probabilities in both formats, through a reply and a chunk. */
static void test_logprobs(void)
{
    struct gf_gen_logprob lp[2];
    memset(lp, 0, sizeof(lp));
    lp[0] = (struct gf_gen_logprob){.token = " Hi", .len = 3, .logprob = -0.5f, .n_top = 2};
    lp[0].top[0] = (struct gf_gen_top_logprob){" Hi", 3, -0.5f};
    lp[0].top[1] = (struct gf_gen_top_logprob){"\xe2", 1, -INFINITY}; // a byte token, -inf
    lp[1] = (struct gf_gen_logprob){.token = "!", .len = 1, .logprob = -2.0f};
    // chat: logprobs.content, with bytes and top_logprobs; a non-finite value is -9999
    struct gf_reply_choice ch;
    memset(&ch, 0, sizeof(ch));
    gf_buf_init(&ch.text, 1 << 20);
    gf_buf_puts(&ch.text, " Hi!");
    gf_lp_acc_init(&ch.lp, true, true);
    REQUIRE(gf_lp_acc_add(&ch.lp, lp, 2) == 0);
    struct gf_gen_usage u = {1, 2, 0};
    struct gf_buf out;
    gf_buf_init(&out, 1 << 20);
    REQUIRE(gf_api_reply_json(&out, &chat, &ch, 1, &u) == 0);
    cJSON *j = cJSON_ParseWithLength(out.data, out.len);
    REQUIRE(j != NULL);
    const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0);
    const cJSON *content = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "logprobs"), "content");
    CHECK(cJSON_GetArraySize(content) == 2);
    const cJSON *e0 = cJSON_GetArrayItem(content, 0);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(e0, "token")), " Hi");
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(e0, "logprob")) == -0.5);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(e0, "bytes")) == 3);
    const cJSON *t1 = cJSON_GetArrayItem(cJSON_GetObjectItem(e0, "top_logprobs"), 1);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(t1, "logprob")) == -9999.0);
    CHECK(cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetObjectItem(t1, "bytes"), 0)) == 0xe2);
    cJSON_Delete(j);
    // withheld (an output filter changed the text): null
    ch.lp.withheld = true;
    gf_buf_reset(&out);
    REQUIRE(gf_api_reply_json(&out, &chat, &ch, 1, &u) == 0);
    CHECK(strstr(out.data, "\"logprobs\":null") != NULL);
    gf_lp_acc_cleanup(&ch.lp);
    // completions: the legacy arrays; text_offset goes on across chunks
    gf_lp_acc_init(&ch.lp, true, false);
    REQUIRE(gf_lp_acc_add(&ch.lp, lp, 1) == 0);
    gf_lp_acc_reset(&ch.lp);
    REQUIRE(gf_lp_acc_add(&ch.lp, lp + 1, 1) == 0);
    gf_buf_reset(&out);
    REQUIRE(gf_api_chunk_sse_lp(&out, &cmpl, 0, NULL, "!", 1, NULL, NULL, false, &ch.lp) == 0);
    j = cJSON_Parse(out.data + strlen("data: "));
    REQUIRE(j != NULL);
    const cJSON *l = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "choices"), 0),
                                         "logprobs");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(l, "tokens"), 0)), "!");
    CHECK(cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetObjectItem(l, "token_logprobs"), 0)) ==
          -2.0);
    CHECK(cJSON_GetNumberValue(cJSON_GetArrayItem(cJSON_GetObjectItem(l, "text_offset"), 0)) == 3);
    CHECK(cJSON_IsObject(cJSON_GetArrayItem(cJSON_GetObjectItem(l, "top_logprobs"), 0)));
    cJSON_Delete(j);
    // a chunk without entries, or no accumulator: null
    gf_lp_acc_reset(&ch.lp);
    gf_buf_reset(&out);
    REQUIRE(gf_api_chunk_sse_lp(&out, &cmpl, 0, NULL, "x", 1, NULL, NULL, false, &ch.lp) == 0);
    CHECK(strstr(out.data, "\"logprobs\":null") != NULL);
    gf_lp_acc_cleanup(&ch.lp);
    gf_buf_cleanup(&ch.text);
    gf_buf_cleanup(&out);
}

/* A stream's kept chunk head: chunks written with it are byte for byte those written without,
 * also after the model changes (a stream learns the upstream's model at its end), and a model
 * too long to keep is written each time. */
static void test_chunk_head(void)
{
    struct gf_chunk_head head = {0};
    struct gf_reply_info kept = chat;
    kept.head = &head;
    struct gf_buf a, b;
    gf_buf_init(&a, 1 << 20);
    gf_buf_init(&b, 1 << 20);
    char long_model[300];
    memset(long_model, 'm', sizeof(long_model) - 1);
    long_model[sizeof(long_model) - 1] = '\0';
    const char *models[] = {"m", "m", "upstream-\"model\"", "upstream-\"model\"", long_model, "m"};
    for (size_t i = 0; i < GF_ARRAY_LEN(models); i++) {
        struct gf_reply_info plain = chat;
        plain.model = kept.model = models[i];
        gf_buf_reset(&a);
        gf_buf_reset(&b);
        REQUIRE(gf_api_chunk_sse(&a, &plain, 0, NULL, "hi", 2, NULL, NULL, false) == 0);
        REQUIRE(gf_api_chunk_sse(&b, &kept, 0, NULL, "hi", 2, NULL, NULL, false) == 0);
        CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
        CHECK(head.len > 0 || models[i] == long_model);
        struct gf_gen_usage u = {1, 2, 0};
        gf_buf_reset(&a);
        gf_buf_reset(&b);
        REQUIRE(gf_api_usage_sse(&a, &plain, &u) == 0);
        REQUIRE(gf_api_usage_sse(&b, &kept, &u) == 0);
        CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
    }
    gf_buf_cleanup(&a);
    gf_buf_cleanup(&b);
}

int main(void)
{
    RUN(test_logprobs);
    gf_json_init();
    RUN(test_reply);
    RUN(test_chunks);
    RUN(test_chunk_head);
    RUN(test_errors);
    RUN(test_metrics);
    return test_report();
}
