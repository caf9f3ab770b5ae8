/* Unit tests of engine/upstream_json.c: the upstream body keeps every field it does not
 * interpret, replies and chunks become the right DELTA events (text cut inside a UTF-8
 * character waits for the rest), error bodies and model lists are read, and allocation failures
 * are reported without leaks (OOM loops). */
#include "engine/upstream_int.h"

#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "test.h"

struct rec {
    struct gf_buf text[2];
    int deltas;
    char role[16], finish[2][16], extra[512];
};

static void on_event(void *ud, const struct gf_gen_event *ev)
{
    struct rec *r = ud;
    r->deltas++;
    if (ev->index < 2)
        gf_buf_append(&r->text[ev->index], ev->text, ev->len);
    if (ev->role)
        snprintf(r->role, sizeof(r->role), "%s", ev->role);
    if (ev->choice_done && ev->index < 2)
        snprintf(r->finish[ev->index], sizeof(r->finish[0]), "%s", ev->finish_reason);
    if (ev->extra_json)
        snprintf(r->extra, sizeof(r->extra), "%s", ev->extra_json);
}

static void rec_init(struct rec *r)
{
    memset(r, 0, sizeof(*r));
    gf_buf_init(&r->text[0], 4096);
    gf_buf_init(&r->text[1], 4096);
}

static void rec_cleanup(struct rec *r)
{
    gf_buf_cleanup(&r->text[0]);
    gf_buf_cleanup(&r->text[1]);
}

static const char client_body[] =
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":\"auto\","
    "\"response_format\":{\"type\":\"json_object\"},\"logit_bias\":{\"1\":2},\"stream\":false,"
    "\"stream_options\":{\"include_usage\":false,\"other\":1},\"custom\":[1,{\"x\":null}]}";

static cJSON *build(const struct gf_gen_request *req, const char *override)
{
    char *out = NULL;
    size_t len = 0;
    struct gf_err err = {0};
    int rc = gf_up_build_body(req, override, &out, &len, &err);
    CHECK_MSG(rc == 0, "%s", err.msg);
    if (rc != 0)
        return NULL;
    CHECK(strlen(out) == len);
    cJSON *j = cJSON_Parse(out);
    gf_free(out);
    return j;
}

static void test_body_pass_through(void)
{
    cJSON *body = cJSON_Parse(client_body);
    struct gf_gen_request req = {.kind = GF_GEN_CHAT, .model = "m", .body = body, .stream = true};
    cJSON *j = build(&req, NULL);
    REQUIRE(j != NULL);
    static const char *same[] = {"model", "messages", "tools", "tool_choice", "response_format",
                                 "logit_bias", "custom"};
    for (size_t i = 0; i < GF_ARRAY_LEN(same); i++)
        CHECK_MSG(cJSON_Compare(cJSON_GetObjectItem(j, same[i]), cJSON_GetObjectItem(body, same[i]),
                                true),
                  "%s changed", same[i]);
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "stream")));
    cJSON *so = cJSON_GetObjectItem(j, "stream_options");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(so, "include_usage")));
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(so, "other")) == 1);
    cJSON_Delete(j);
    // Not streamed: stream false, stream_options dropped; the override replaces the model.
    req.stream = false;
    j = build(&req, "served");
    REQUIRE(j != NULL);
    CHECK(cJSON_IsFalse(cJSON_GetObjectItem(j, "stream")));
    CHECK(cJSON_GetObjectItem(j, "stream_options") == NULL);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(j, "model")), "served");
    cJSON_Delete(j);
    // A body that is not an object is refused.
    cJSON *arr = cJSON_Parse("[1]");
    req.body = arr;
    char *out = NULL;
    size_t len;
    struct gf_err err = {0};
    CHECK(gf_up_build_body(&req, NULL, &out, &len, &err) == GF_EINVAL && out == NULL);
    cJSON_Delete(arr);
    cJSON_Delete(body);
}

/* The members the engine passes through are printed byte for byte as cJSON prints them:
 * string escapes (control bytes, quotes, DEL and non-ASCII as they are, a \u0000 ending the
 * string), integers at and past int's range, fractions, huge and tiny numbers, literals, empty
 * and deeply nested containers, keys with escapes. */
static void test_body_as_cjson_prints(void)
{
    static const char *const values[] = {
        "\"plain\"", "\"q\\\"b\\\\s\\/\\b\\f\\n\\r\\t\\u0001\\u001f \\u007f\xc3\xa9\\u00e9\"",
        "\"cut\\u0000here\"", "\"\"", "0", "-0", "7", "-42", "2147483647", "-2147483648",
        "2147483648", "-2147483649", "999999999999999", "-999999999999999", "1000000000000000",
        "1.5", "-0.0", "16.0", "1e2", "0.1", "1e300", "-1e-300", "123456789012345678",
        "3.14159265358979", "1e999", "true", "false", "null", "[]", "{}",
        "[1,[2,[3,[{}]]],{\"a\\nb\":[\"x\",null,-1.25]}]",
        "{\"k\\u0000z\":1,\"\\u00e9\":{\"\":[]},\"dup\":1,\"dup\":2}",
    };
    for (size_t i = 0; i < GF_ARRAY_LEN(values); i++) {
        char text[512];
        snprintf(text, sizeof(text), "{\"model\":\"m\",\"x\":%s,\"stream\":false}", values[i]);
        cJSON *body = cJSON_Parse(text);
        REQUIRE(body != NULL);
        struct gf_gen_request req = {.kind = GF_GEN_CHAT, .model = "m", .body = body};
        char *out = NULL;
        size_t len = 0;
        struct gf_err err = {0};
        CHECK(gf_up_build_body(&req, NULL, &out, &len, &err) == 0);
        char *want = cJSON_PrintUnformatted(body);
        CHECK_MSG(out != NULL && want != NULL && strcmp(out, want) == 0, "%s: %s vs %s", values[i],
                  out ? out : "", want ? want : "");
        CHECK(out == NULL || len == strlen(out));
        cJSON_free(want);
        gf_free(out);
        cJSON_Delete(body);
    }
    // nesting as deep as cJSON parses
    struct gf_buf t;
    gf_buf_init(&t, 1 << 20);
    CHECK(gf_buf_puts(&t, "{\"stream\":false,\"d\":") == 0);
    for (int i = 0; i < 450; i++)
        CHECK(gf_buf_puts(&t, "[{\"a\":") == 0);
    CHECK(gf_buf_putc(&t, '1') == 0);
    for (int i = 0; i < 450; i++)
        CHECK(gf_buf_puts(&t, "}]") == 0);
    CHECK(gf_buf_putc(&t, '}') == 0);
    cJSON *body = cJSON_Parse(t.data);
    REQUIRE(body != NULL);
    struct gf_gen_request req = {.kind = GF_GEN_CHAT, .body = body};
    char *out = NULL;
    size_t len = 0;
    struct gf_err err = {0};
    CHECK(gf_up_build_body(&req, NULL, &out, &len, &err) == 0);
    char *want = cJSON_PrintUnformatted(body);
    CHECK(out != NULL && want != NULL && strcmp(out, want) == 0);
    cJSON_free(want);
    gf_free(out);
    cJSON_Delete(body);
    gf_buf_cleanup(&t);
}

/* The body is printed member by member from the client's tree: order kept, the members the
 * engine sets are replaced in place or appended, large members grow the buffer. */
static void test_body_members(void)
{
    size_t big = 200000;
    char *text = gf_malloc(big + 1);
    REQUIRE(text != NULL);
    memset(text, 'a', big);
    text[big] = '\0';
    cJSON *body = cJSON_CreateObject();
    cJSON *msgs = cJSON_AddArrayToObject(body, "messages");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddItemToArray(msgs, m);
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", text);
    cJSON_AddNumberToObject(body, "stream_options", 3); // not an object: replaced when streamed
    cJSON_AddStringToObject(body, "z\"q", "e\n");
    struct gf_gen_request req = {.kind = GF_GEN_CHAT, .model = "fallback", .body = body,
                                 .stream = true};
    char *out = NULL;
    size_t len = 0;
    struct gf_err err = {0};
    REQUIRE(gf_up_build_body(&req, NULL, &out, &len, &err) == 0);
    CHECK(strlen(out) == len);
    // members in the client's order, then the ones it lacked
    const char *p1 = strstr(out, "\"messages\""), *p2 = strstr(out, "\"stream_options\"");
    const char *p3 = strstr(out, "\"z\\\"q\""), *p4 = strstr(out, "\"model\"");
    CHECK(p1 && p2 && p3 && p4 && p1 < p2 && p2 < p3 && p3 < p4);
    cJSON *j = cJSON_Parse(out);
    REQUIRE(j != NULL);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(j, "model")), "fallback");
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "stream")));
    CHECK(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "stream_options"),
                                           "include_usage")));
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(j, "z\"q")), "e\n");
    cJSON *c = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "messages"), 0),
                                   "content");
    CHECK(cJSON_IsString(c) && strlen(c->valuestring) == big);
    cJSON_Delete(j);
    gf_free(out);
    cJSON_Delete(body);
    gf_free(text);
}

static void test_body_from_fields(void)
{
    struct gf_chat_msg msgs[] = {{"system", "be brief"}, {"user", "hi"}, {"assistant", NULL}};
    const char *stop[] = {"\n\n", "END"};
    struct gf_gen_request req = {.kind = GF_GEN_CHAT, .model = "m", .messages = msgs,
                                 .n_messages = 3};
    gf_gen_params_default(&req.params);
    req.params.max_tokens = 16;
    req.params.temperature = 0;
    req.params.stop = stop;
    req.params.n_stop = 2;
    req.params.has_seed = true;
    req.params.seed = 42;
    cJSON *j = build(&req, NULL);
    REQUIRE(j != NULL);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(j, "model")), "m");
    cJSON *m = cJSON_GetObjectItem(j, "messages");
    CHECK(cJSON_GetArraySize(m) == 3);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 1), "content")),
                "hi");
    CHECK(cJSON_GetObjectItem(cJSON_GetArrayItem(m, 2), "content") == NULL);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "max_tokens")) == 16);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "temperature")) == 0);
    CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "seed")) == 42);
    CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "stop")) == 2);
    cJSON_Delete(j);
    struct gf_gen_request c = {.kind = GF_GEN_COMPLETION, .prompt = "Once"};
    gf_gen_params_default(&c.params);
    j = build(&c, NULL);
    REQUIRE(j != NULL);
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItem(j, "prompt")), "Once");
    CHECK(cJSON_GetObjectItem(j, "model") == NULL);
    CHECK(cJSON_GetObjectItem(j, "max_tokens") == NULL);  // -1: until the context is full
    cJSON_Delete(j);
}

static int chunk(struct gf_up_reply *r, const char *s)
{
    struct gf_err err = {0};
    return gf_up_reply_chunk(r, s, strlen(s), &err);
}

static void test_chunks_utf8(void)
{
    struct rec rc;
    rec_init(&rc);
    struct gf_up_reply r;
    gf_up_reply_init(&r, GF_GEN_CHAT, on_event, &rc);
    // "café" with the é (C3 A9) split between two chunks, as raw bytes inside JSON strings.
    CHECK(chunk(&r, "{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":"
                    "\"caf\xC3\"}}]}") == 0);
    CHECK(rc.deltas == 1);
    CHECK_STREQ(rc.text[0].data, "caf");
    CHECK(chunk(&r, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\xA9!\"}}]}") == 0);
    CHECK_STREQ(rc.text[0].data, "caf\xC3\xA9!");
    // A character still cut when the choice finishes becomes U+FFFD.
    CHECK(chunk(&r, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\xE6\xBC\"}}]}") == 0);
    CHECK(chunk(&r, "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}") ==
          0);
    CHECK_STREQ(rc.text[0].data, "caf\xC3\xA9!\xEF\xBF\xBD");
    CHECK_STREQ(rc.finish[0], "length");
    CHECK_STREQ(rc.role, "assistant");
    CHECK(chunk(&r, "{\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":3}}") ==
          0);
    CHECK(r.has_usage && r.usage.prompt_tokens == 4 && r.usage.completion_tokens == 3);
    CHECK(chunk(&r, "[DONE]") == 0 && r.saw_done);
    int before = rc.deltas;
    CHECK(chunk(&r, "{\"choices\":[{\"delta\":{\"content\":\"late\"}}]}") == 0);
    CHECK(rc.deltas == before);  // nothing after [DONE]
    rec_cleanup(&rc);
    // Bytes that can never be a character become U+FFFD; the text stays valid UTF-8.
    rec_init(&rc);
    gf_up_reply_init(&r, GF_GEN_COMPLETION, on_event, &rc);
    CHECK(chunk(&r, "{\"choices\":[{\"text\":\"a\xFF\xC3(b\xED\xA0\x80\"}]}") == 0);
    CHECK_STREQ(rc.text[0].data, "a\xEF\xBF\xBD\xEF\xBF\xBD(b\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");
    CHECK(rc.role[0] == '\0');
    rec_cleanup(&rc);
}

static void test_chunk_errors(void)
{
    struct rec rc;
    rec_init(&rc);
    struct gf_up_reply r;
    gf_up_reply_init(&r, GF_GEN_CHAT, on_event, &rc);
    struct gf_err err = {0};
    CHECK(gf_up_reply_chunk(&r, "{\"choices\":[", 12, &err) == GF_EUPSTREAM);
    CHECK(strstr(err.msg, "invalid JSON") != NULL);
    gf_err_clear(&err);
    const char *e = "{\"error\":{\"message\":\"context full\"}}";
    CHECK(gf_up_reply_chunk(&r, e, strlen(e), &err) == GF_EUPSTREAM);
    CHECK_STREQ(err.msg, "upstream error: context full");
    gf_err_clear(&err);
    const char *bad = "{\"choices\":[{\"index\":64,\"delta\":{\"content\":\"x\"}}]}";
    CHECK(gf_up_reply_chunk(&r, bad, strlen(bad), &err) == GF_EUPSTREAM);
    CHECK(rc.deltas == 0);
    rec_cleanup(&rc);
}

static const char full_reply[] =
    "{\"model\":\"up-model\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":"
    "{\"name\":\"f\",\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"},"
    "{\"index\":1,\"message\":{\"role\":\"assistant\",\"content\":\"two\"}}],"
    "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2}}";

static void test_full_reply(void)
{
    struct rec rc;
    rec_init(&rc);
    struct gf_up_reply r;
    gf_up_reply_init(&r, GF_GEN_CHAT, on_event, &rc);
    struct gf_err err = {0};
    CHECK(gf_up_reply_full(&r, full_reply, strlen(full_reply), &err) == 0);
    CHECK(rc.deltas == 2);
    CHECK(strstr(rc.extra, "\"tool_calls\":[{\"id\":\"c1\"") != NULL);
    CHECK_STREQ(rc.finish[0], "tool_calls");
    CHECK_STREQ(rc.finish[1], "stop");  // no finish_reason in a whole reply means stop
    CHECK_STREQ(rc.text[1].data, "two");
    CHECK_STREQ(r.model, "up-model");
    CHECK(r.has_usage && r.usage.prompt_tokens == 9);
    rec_cleanup(&rc);
    gf_up_reply_init(&r, GF_GEN_CHAT, on_event, &rc);
    const char *none = "{\"choices\":[]}";
    CHECK(gf_up_reply_full(&r, none, strlen(none), &err) == GF_EUPSTREAM);
}

/* Replies are read in place (upstream_scan.c): escapes decoded, keys compared as cJSON does,
 * the first of duplicate members used, extra fields re-emitted without whitespace. */
static void test_scanned_reply(void)
{
    struct rec rc;
    rec_init(&rc);
    struct gf_up_reply r;
    gf_up_reply_init(&r, GF_GEN_CHAT, on_event, &rc);
    struct gf_err err = {0};
    const char *pretty =
        " {\n  \"choices\" : [ {\n    \"index\" : 0 ,\n    \"message\" : {\n"
        "      \"role\" : \"assistant\",\n"
        "      \"cont\\u0065nt\" : \"line\\none \\\"q\\\" caf\\u00e9 \\ud83d\\ude00\\/\",\n"
        "      \"content\" : \"ignored: the first one counts\",\n"
        "      \"tool_calls\" : [ { \"id\" : \"c 1\", \"n\" : -1.5e3 } ],\n"
        "      \"refusal\" : null\n    }\n  } ],\n"
        "  \"usage\" : { \"prompt_tokens\" : 7, \"completion_tokens\" : 3.0 }\n} trailing";
    CHECK(gf_up_reply_full(&r, pretty, strlen(pretty), &err) == 0);
    CHECK(rc.deltas == 1);
    CHECK_STREQ(rc.text[0].data, "line\none \"q\" caf\xC3\xA9 \xF0\x9F\x98\x80/");
    CHECK_STREQ(rc.extra, "{\"tool_calls\":[{\"id\":\"c 1\",\"n\":-1.5e3}]}");
    CHECK(r.has_usage && r.usage.prompt_tokens == 7 && r.usage.completion_tokens == 3);
    rec_cleanup(&rc);
    // what cJSON refuses is refused: a lone surrogate, a bad escape, a trailing comma
    const char *bad[] = {
        "{\"choices\":[{\"text\":\"\\ud800\"}]}",
        "{\"choices\":[{\"text\":\"\\q\"}]}",
        "{\"choices\":[{\"text\":\"a\",}]}",
        "{\"choices\":[{\"index\":-}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gf_err_clear(&err);
        gf_up_reply_init(&r, GF_GEN_COMPLETION, on_event, &rc);
        CHECK(gf_up_reply_full(&r, bad[i], strlen(bad[i]), &err) == GF_EUPSTREAM);
        CHECK(strstr(err.msg, "invalid JSON") != NULL);
    }
    // an error member of any kind ends the reply with its message when it has one
    gf_err_clear(&err);
    const char *e = "{\"error\":\"over \\u0071uota\",\"choices\":[{\"text\":\"x\"}]}";
    CHECK(gf_up_reply_full(&r, e, strlen(e), &err) == GF_EUPSTREAM);
    CHECK_STREQ(err.msg, "upstream error: over quota");
    gf_err_clear(&err);
    e = "{\"error\":null}";
    CHECK(gf_up_reply_full(&r, e, strlen(e), &err) == GF_EUPSTREAM);
    CHECK_STREQ(err.msg, "upstream error: unknown error");
}

/* gf_js_is reads a member name as cJSON does (decoded, compared as a C string up to its first
 * NUL) at any length: names past the 254 bytes a stack buffer once held matched nothing. */
static void test_js_is_long_names(void)
{
    struct gf_buf t;
    gf_buf_init(&t, 4096);
    // "content\u0000" then 300 bytes: cJSON's key is "content"
    CHECK(gf_buf_puts(&t, "\"cont\\u0065nt\\u0000") == 0);
    for (int i = 0; i < 300; i++)
        CHECK(gf_buf_putc(&t, 'x') == 0);
    CHECK(gf_buf_putc(&t, '"') == 0);
    struct gf_js k = {t.data, t.len, NULL};
    CHECK(gf_js_value(k.p, k.p + k.n, 0) == k.p + k.n);
    CHECK(gf_js_is(k, "content"));
    CHECK(!gf_js_is(k, "conten"));
    CHECK(!gf_js_is(k, "contentx"));
    // a raw NUL byte ends the name the same way
    static const char raw[] = "\"cont\0abc\"";
    CHECK(gf_js_is((struct gf_js){raw, sizeof(raw) - 1, NULL}, "cont"));
    CHECK(!gf_js_is((struct gf_js){raw, sizeof(raw) - 1, NULL}, "contabc"));
    // a long name without NUL is compared whole: equal, one byte short, one byte different
    char name[301];
    memset(name, 'y', 300);
    name[300] = '\0';
    gf_buf_reset(&t);
    CHECK(gf_buf_puts(&t, "\"\\u0079") == 0 && gf_buf_append(&t, name, 299) == 0);
    CHECK(gf_buf_putc(&t, '"') == 0);
    k = (struct gf_js){t.data, t.len, NULL};
    CHECK(gf_js_is(k, name));
    name[299] = '\0';
    CHECK(!gf_js_is(k, name));
    name[299] = 'y';
    name[150] = 'z';
    CHECK(!gf_js_is(k, name));
    // multi-byte characters from escapes, surrogate pairs included, against their UTF-8 form
    const char *u = "\"caf\\u00e9 \\ud83d\\ude00\"";
    CHECK(gf_js_is((struct gf_js){u, strlen(u), NULL}, "caf\xC3\xA9 \xF0\x9F\x98\x80"));
    CHECK(!gf_js_is((struct gf_js){u, strlen(u), NULL}, "caf\xC3\xA9 \xF0\x9F\x98"));
    gf_buf_cleanup(&t);

    // in a reply: the long escaped key is the message content, as cJSON would read it
    struct rec rc;
    rec_init(&rc);
    struct gf_up_reply r;
    gf_up_reply_init(&r, GF_GEN_CHAT, on_event, &rc);
    struct gf_err err = {0};
    struct gf_buf b;
    gf_buf_init(&b, 4096);
    CHECK(gf_buf_puts(&b, "{\"choices\":[{\"index\":0,\"message\":{\"content\\u0000") == 0);
    for (int i = 0; i < 300; i++)
        CHECK(gf_buf_putc(&b, 'q') == 0);
    CHECK(gf_buf_puts(&b, "\":\"hi\"},\"finish_reason\":\"stop\"}]}") == 0);
    cJSON *j = cJSON_ParseWithLength(b.data, b.len);
    CHECK(j != NULL);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(j, "choices"), 0), "message");
    CHECK_STREQ(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m, "content")), "hi");
    cJSON_Delete(j);
    CHECK(gf_up_reply_full(&r, b.data, b.len, &err) == 0);
    CHECK_STREQ(rc.text[0].data, "hi");
    gf_buf_cleanup(&b);
    rec_cleanup(&rc);
}

/* Walks a and b (the same value, a with the container index, b without) side by side: the
 * same members with the same spans, at every level. */
static void same_walk(struct gf_js a, struct gf_js b)
{
    CHECK(a.p == b.p && a.n == b.n);
    if (a.n == 0 || a.p != b.p || a.n != b.n || (a.p[0] != '{' && a.p[0] != '['))
        return;
    bool obj = a.p[0] == '{';
    struct gf_js_it ia, ib;
    struct gf_js ka, kb, va, vb;
    gf_js_iter(&ia, a);
    gf_js_iter(&ib, b);
    for (;;) {
        bool na = gf_js_next(&ia, obj ? &ka : NULL, &va);
        bool nb = gf_js_next(&ib, obj ? &kb : NULL, &vb);
        CHECK(na == nb);
        if (!na || !nb)
            return;
        if (obj)
            CHECK(ka.p == kb.p && ka.n == kb.n);
        same_walk(va, vb);
    }
}

/* gf_js_value_doc accepts what gf_js_value accepts, and walking with the index it notes gives
 * what walking without it gives: nested and empty containers, strings holding brackets and
 * escaped quotes, more containers than the index holds, deep nesting, huge numbers; truncated
 * and malformed texts are refused. */
static void test_js_doc(void)
{
    static const char *const good[] = {
        "{}",
        "[]",
        "{\"a\":[1,2,{\"b\":\"}]\\\"[{\"}],\"c\":{},\"d\":[[],[[]]],\"e\":null}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"{x\"},\"finish_reason\":null}],"
        "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}",
        " [ { } , [ ] , \"]\" , 1e999999 , -123456789012345678901234567890 ] ",
        "{\"n\":123456789012345678901234567890123456789012345678901234567890123}",
        "[\"\\\\\",{\"\\\\\\\"\":[\"\\\\\\\\\"]}]",
    };
    struct gf_js_doc doc;
    for (size_t i = 0; i < GF_ARRAY_LEN(good); i++) {
        const char *p = good[i], *end = p + strlen(p);
        while (*p == ' ')
            p++;
        const char *e = gf_js_value(p, end, 0);
        CHECK(e != NULL);
        CHECK(gf_js_value_doc(p, end, &doc) == e);
        if (e == NULL)
            continue;
        same_walk((struct gf_js){p, (size_t)(e - p), &doc}, (struct gf_js){p, (size_t)(e - p), NULL});
    }
    // more containers than the index holds (the rest are skipped the old way), and nesting
    // at the scanner's depth limit and one past it
    struct gf_buf t;
    gf_buf_init(&t, 1 << 20);
    CHECK(gf_buf_putc(&t, '[') == 0);
    for (int i = 0; i < 3 * GF_JS_DOC_MAX; i++)
        CHECK(gf_buf_puts(&t, i ? ",{\"k\":[[1],{\"s\":\"]}\"}]}" : "{\"k\":[[1],{\"s\":\"]}\"}]}") == 0);
    CHECK(gf_buf_putc(&t, ']') == 0);
    const char *e = gf_js_value_doc(t.data, t.data + t.len, &doc);
    CHECK(e == t.data + t.len);
    CHECK(doc.n == GF_JS_DOC_MAX);
    same_walk((struct gf_js){t.data, t.len, &doc}, (struct gf_js){t.data, t.len, NULL});
    for (int extra = 0; extra <= 1; extra++) {
        gf_buf_reset(&t);
        for (int i = 0; i < GF_JS_MAX_DEPTH + extra; i++)
            CHECK(gf_buf_putc(&t, '[') == 0);
        for (int i = 0; i < GF_JS_MAX_DEPTH + extra; i++)
            CHECK(gf_buf_putc(&t, ']') == 0);
        e = gf_js_value_doc(t.data, t.data + t.len, &doc);
        CHECK(e == gf_js_value(t.data, t.data + t.len, 0));
        CHECK(extra ? e == NULL : e == t.data + t.len);
        if (e != NULL)
            same_walk((struct gf_js){t.data, t.len, &doc}, (struct gf_js){t.data, t.len, NULL});
    }
    // strings around the length read a byte at a time, with escapes across it: each element
    // ends at its own closing quote
    for (int k = 20; k < 48; k++) {
        for (int esc = 0; esc < 3; esc++) {
            static const char *const escs[] = {"\\\"", "\\\\", "\\u0022"};
            gf_buf_reset(&t);
            CHECK(gf_buf_puts(&t, "[\"") == 0);
            for (int i = 0; i < k; i++)
                CHECK(gf_buf_putc(&t, 'a') == 0);
            CHECK(gf_buf_puts(&t, escs[esc]) == 0 && gf_buf_puts(&t, "b\",\"\\\\\",1]") == 0);
            size_t first = t.len - strlen(",\"\\\\\",1]") - 1; // its length, quotes included
            e = gf_js_value_doc(t.data, t.data + t.len, &doc);
            CHECK(e == t.data + t.len);
            struct gf_js_it it;
            struct gf_js v;
            gf_js_iter(&it, (struct gf_js){t.data, t.len, &doc});
            CHECK(gf_js_next(&it, NULL, &v) && v.n == first);
            CHECK(gf_js_next(&it, NULL, &v) && v.n == 4);
            CHECK(gf_js_next(&it, NULL, &v) && v.n == 1 && v.p[0] == '1');
            CHECK(!gf_js_next(&it, NULL, &v));
        }
    }
    gf_buf_cleanup(&t);
    // truncated at every byte and malformed: refused by both
    const char *full = good[3];
    for (size_t n = 0; n < strlen(full); n++) {
        CHECK(gf_js_value_doc(full, full + n, &doc) == NULL);
        CHECK(gf_js_value(full, full + n, 0) == NULL);
    }
    static const char *const bad[] = {
        "{\"a\":[1,2}", "{\"a\" 1}", "[1,]", "{\"a\":\"\\x\"}", "[1e]", "{]", "[\"\\ud800\"]",
        "{\"a\":1234567890123456789012345678901234567890123456789012345678901234}",
    };
    for (size_t i = 0; i < GF_ARRAY_LEN(bad); i++) {
        CHECK(gf_js_value_doc(bad[i], bad[i] + strlen(bad[i]), &doc) == NULL);
        CHECK(gf_js_value(bad[i], bad[i] + strlen(bad[i]), 0) == NULL);
    }
}

static void test_error_message_and_models(void)
{
    char msg[64];
    const char *b = "{\"error\":{\"message\":\"Loading\\nmodel\",\"code\":503}}";
    gf_up_error_message(b, strlen(b), 503, msg, sizeof(msg));
    CHECK_STREQ(msg, "Loading model");
    gf_up_error_message("{\"error\":\"plain\"}", 17, 400, msg, sizeof(msg));
    CHECK_STREQ(msg, "plain");
    gf_up_error_message("<html>", 6, 502, msg, sizeof(msg));
    CHECK_STREQ(msg, "upstream answered HTTP 502");
    char *ids[4];
    size_t n = 0;
    const char *list = "{\"data\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":\"a\"},{\"x\":1}]}";
    CHECK(gf_up_parse_models(list, strlen(list), ids, &n, 4) == 0);
    CHECK(n == 2);
    const char *ollama = "{\"models\":[{\"name\":\"b\"},{\"name\":\"c\"},{\"name\":\"d\"},"
                         "{\"name\":\"e\"}]}";
    CHECK(gf_up_parse_models(ollama, strlen(ollama), ids, &n, 4) == 0);
    CHECK(n == 4);  // b was known; c, d added; e over the cap
    if (n == 4)
        CHECK_STREQ(ids[3], "d");
    CHECK(gf_up_parse_models("{}", 2, ids, &n, 4) == GF_EFORMAT);
    for (size_t i = 0; i < n; i++)
        gf_free(ids[i]);
}

/* Fails allocation 1, 2, ... until the call succeeds; each failure must say GF_ENOMEM (or, for
 * the reply parser whose cJSON cannot tell OOM from bad JSON, GF_EUPSTREAM) and leak nothing. */
static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    static const char *const bodies[] = {client_body, "{\"messages\":[],\"n\":2}"};
    bool done = false;
    for (size_t b = 0; b < GF_ARRAY_LEN(bodies); b++) {
        cJSON *body = cJSON_Parse(bodies[b]);
        struct gf_gen_request req = {.kind = GF_GEN_CHAT, .body = body, .stream = true};
        done = false;
        for (long n = 1; n < 500 && !done; n++) {
            char *out = NULL;
            size_t len;
            struct gf_err err = {0};
            gf_alloc_fail_after(n, false);
            int rc = gf_up_build_body(&req, "x", &out, &len, &err);
            done = gf_alloc_failures() == 0;
            gf_alloc_fail_after(0, false);
            CHECK(rc == 0 || (rc == GF_ENOMEM && out == NULL));
            CHECK(!done || rc == 0);
            gf_free(out);
        }
        CHECK(done);
        cJSON_Delete(body);
    }
    done = false;
    for (long n = 1; n < 500 && !done; n++) {
        struct rec rc;
        rec_init(&rc);
        struct gf_up_reply r;
        gf_up_reply_init(&r, GF_GEN_CHAT, on_event, &rc);
        struct gf_err err = {0};
        gf_alloc_fail_after(n, false);
        int res = gf_up_reply_full(&r, full_reply, strlen(full_reply), &err);
        long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        if (failed == 0) {
            CHECK(res == 0);
            done = true;
        } else {
            CHECK(res == 0 || res == GF_ENOMEM || res == GF_EUPSTREAM);
        }
        rec_cleanup(&rc);
    }
    CHECK(done);
}

int main(void)
{
    gf_json_init();
    RUN(test_body_pass_through);
    RUN(test_body_members);
    RUN(test_body_as_cjson_prints);
    RUN(test_body_from_fields);
    RUN(test_chunks_utf8);
    RUN(test_chunk_errors);
    RUN(test_full_reply);
    RUN(test_scanned_reply);
    RUN(test_js_is_long_names);
    RUN(test_js_doc);
    RUN(test_error_message_and_models);
    RUN(test_oom);
    return test_report();
}
