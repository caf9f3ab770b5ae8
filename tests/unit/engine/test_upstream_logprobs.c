/* Unit tests of engine/upstream_logprobs.c and its use by the reply parser: an upstream's
 * log-probabilities in chat's shape (bytes preferred to the token string, top_logprobs capped
 * at 20) and in the legacy completions arrays become gf_gen_logprob entries on the DELTA that
 * carries them; shapes that do not fit are skipped without failing the reply; allocation
 * failures are reported without leaks. */
#include "engine/upstream_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "test.h"

static struct gf_js js(const char *s)
{
    return (struct gf_js){s, strlen(s), NULL};
}

static bool tok_is(const char *p, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(p, want, n) == 0;
}

static void test_chat_shape(void)
{
    struct gf_up_logprobs l;
    gf_up_logprobs_init(&l);
    const char *v =
        "{\"content\":[{\"token\":\"Hel\\u006co\",\"logprob\":-0.25,\"bytes\":[72,101,108,108,111],"
        "\"top_logprobs\":[{\"token\":\"Hello\",\"logprob\":-0.25,\"bytes\":null},"
        "{\"token\":\"Hi\",\"logprob\":-1.5e0}]},"
        // a byte-fallback token: the string says U+FFFD, the bytes hold the real byte
        "{\"token\":\"\\ufffd\",\"logprob\":-2,\"bytes\":[195],\"top_logprobs\":[]},"
        // skipped: no logprob, a positive logprob, a token that is neither string nor bytes
        "{\"token\":\"x\"},{\"token\":\"y\",\"logprob\":0.5},{\"token\":7,\"logprob\":-1},"
        // bytes out of range: the string is used instead
        "{\"token\":\"z\",\"logprob\":null,\"bytes\":[300]}],\"refusal\":null}";
    CHECK(gf_up_logprobs_parse(&l, js(v), true) == 0);
    REQUIRE(l.n == 3);
    CHECK(tok_is(l.items[0].token, l.items[0].len, "Hello"));
    CHECK(l.items[0].logprob == -0.25f && l.items[0].n_top == 2);
    CHECK(tok_is(l.items[0].top[0].token, l.items[0].top[0].len, "Hello"));
    CHECK(tok_is(l.items[0].top[1].token, l.items[0].top[1].len, "Hi"));
    CHECK(l.items[0].top[1].logprob == -1.5f);
    CHECK(tok_is(l.items[1].token, l.items[1].len, "\xC3") && l.items[1].n_top == 0);
    CHECK(tok_is(l.items[2].token, l.items[2].len, "z") && isinf(l.items[2].logprob));
    // null, an array, an object without content: nothing, and no error
    CHECK(gf_up_logprobs_parse(&l, js("null"), true) == 0 && l.n == 0);
    CHECK(gf_up_logprobs_parse(&l, js("[1]"), true) == 0 && l.n == 0);
    CHECK(gf_up_logprobs_parse(&l, js("{\"content\":null}"), true) == 0 && l.n == 0);
    gf_up_logprobs_cleanup(&l);
}

static void test_top_cap(void)
{
    struct gf_up_logprobs l;
    gf_up_logprobs_init(&l);
    char v[4096] = "{\"content\":[{\"token\":\"a\",\"logprob\":-1,\"top_logprobs\":[";
    for (int i = 0; i < 25; i++)
        snprintf(v + strlen(v), sizeof(v) - strlen(v), "%s{\"token\":\"t%d\",\"logprob\":-%d}",
                 i ? "," : "", i, i + 1);
    strcat(v, "]}]}");
    CHECK(gf_up_logprobs_parse(&l, js(v), true) == 0);
    REQUIRE(l.n == 1);
    CHECK(l.items[0].n_top == GF_GEN_MAX_TOP_LOGPROBS);
    CHECK(tok_is(l.items[0].top[19].token, l.items[0].top[19].len, "t19"));
    gf_up_logprobs_cleanup(&l);
}

static void test_completion_shape(void)
{
    struct gf_up_logprobs l;
    gf_up_logprobs_init(&l);
    const char *v = "{\"tokens\":[\" the\",\" cat\",\"!\",\" x\"],\"token_logprobs\":[-0.5,null,-3,\"no\"],"
                    "\"top_logprobs\":[{\" the\":-0.5,\" a\":-1.25},null,{}],\"text_offset\":[0,4,8,9]}";
    CHECK(gf_up_logprobs_parse(&l, js(v), false) == 0);
    REQUIRE(l.n == 3);  // " x" has no usable logprob
    CHECK(tok_is(l.items[0].token, l.items[0].len, " the") && l.items[0].logprob == -0.5f);
    CHECK(l.items[0].n_top == 2 && l.items[0].top[1].logprob == -1.25f);
    CHECK(tok_is(l.items[0].top[1].token, l.items[0].top[1].len, " a"));
    CHECK(tok_is(l.items[1].token, l.items[1].len, " cat") && isinf(l.items[1].logprob));
    CHECK(l.items[1].n_top == 0 && l.items[2].n_top == 0);
    // arrays of different lengths: walked as far as both go
    CHECK(gf_up_logprobs_parse(&l, js("{\"tokens\":[\"a\",\"b\"],\"token_logprobs\":[-1]}"),
                               false) == 0 && l.n == 1);
    CHECK(gf_up_logprobs_parse(&l, js("{\"tokens\":\"a\",\"token_logprobs\":[-1]}"), false) == 0 &&
          l.n == 0);
    gf_up_logprobs_cleanup(&l);
}

struct seen {
    int deltas, entries;
    char first[16];
    float first_lp;
};

static void on_event(void *ud, const struct gf_gen_event *ev)
{
    struct seen *s = ud;
    s->deltas++;
    if (ev->n_logprobs > 0 && s->entries == 0) {
        snprintf(s->first, sizeof(s->first), "%.*s", (int)ev->logprobs[0].len,
                 ev->logprobs[0].token);
        s->first_lp = ev->logprobs[0].logprob;
    }
    s->entries += ev->n_logprobs;
}

static const char chat_chunk[] =
    "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi there\"},\"logprobs\":{\"content\":["
    "{\"token\":\"Hi\",\"logprob\":-0.1,\"bytes\":[72,105],\"top_logprobs\":[]},"
    "{\"token\":\" there\",\"logprob\":-0.2,\"bytes\":[32,116,104,101,114,101],\"top_logprobs\":[]}]}}]}";

static void test_reply_events(void)
{
    struct seen s = {0};
    struct gf_up_reply r;
    struct gf_err err = {0};
    gf_up_reply_init(&r, GF_GEN_CHAT, on_event, &s);
    CHECK(gf_up_reply_chunk(&r, chat_chunk, strlen(chat_chunk), &err) == 0);
    CHECK(s.deltas == 1 && s.entries == 2);
    CHECK_STREQ(s.first, "Hi");
    CHECK(s.first_lp == -0.1f);
    // a chunk with logprobs only (its text still cut inside a character) is delivered too
    const char *lp_only = "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\xC3\"},"
                          "\"logprobs\":{\"content\":[{\"token\":\"?\",\"logprob\":-1,\"bytes\":[195]}]}}]}";
    CHECK(gf_up_reply_chunk(&r, lp_only, strlen(lp_only), &err) == 0);
    CHECK(s.deltas == 2 && s.entries == 3);
    // a whole legacy completion
    struct seen c = {0};
    gf_up_reply_init(&r, GF_GEN_COMPLETION, on_event, &c);
    const char *full = "{\"choices\":[{\"text\":\" a b\",\"index\":0,\"logprobs\":{\"tokens\":[\" a\","
                       "\" b\"],\"token_logprobs\":[-1,-2],\"top_logprobs\":null,\"text_offset\":[0,2]},"
                       "\"finish_reason\":\"stop\"}]}";
    CHECK(gf_up_reply_full(&r, full, strlen(full), &err) == 0);
    CHECK(c.deltas == 1 && c.entries == 2);
    CHECK_STREQ(c.first, " a");
    // a malformed logprobs value never fails the reply
    struct seen b = {0};
    gf_up_reply_init(&r, GF_GEN_CHAT, on_event, &b);
    const char *bad = "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"logprobs\":"
                      "{\"content\":[1,\"x\",{\"logprob\":\"-1\"}]}}]}";
    CHECK(gf_up_reply_chunk(&r, bad, strlen(bad), &err) == 0);
    CHECK(b.deltas == 1 && b.entries == 0);
}

static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    bool done = false;
    for (long n = 1; n < 200 && !done; n++) {
        struct seen s = {0};
        struct gf_up_reply r;
        struct gf_err err = {0};
        gf_up_reply_init(&r, GF_GEN_CHAT, on_event, &s);
        gf_alloc_fail_after(n, false);
        int rc = gf_up_reply_chunk(&r, chat_chunk, strlen(chat_chunk), &err);
        done = gf_alloc_failures() == 0;
        gf_alloc_fail_after(0, false);
        CHECK(rc == 0 || rc == GF_ENOMEM);
        CHECK(!done || (rc == 0 && s.entries == 2));
    }
    CHECK(done);
}

int main(void)
{
    RUN(test_chat_shape);
    RUN(test_top_cap);
    RUN(test_completion_shape);
    RUN(test_reply_events);
    RUN(test_oom);
    return test_report();
}
