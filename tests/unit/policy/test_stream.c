/* Unit tests of policy/stream.c: every blocked string of a list (multi-byte ones and evasion
 * variants included) is split at every byte offset into 2 to 5 chunks, and the full blocked
 * span must never be released; text without matches comes out unchanged; redactions come out
 * as in a whole-text evaluation however the text is cut; a classifier that scores a growing
 * text judges the whole text so far, and a classifier that declines (GF_EAGAIN) the window;
 * OOM loop. */
#include "policy/policy.h"

#include "fake_clf.h"
#include "test.h"

static const char policy_json[] =
    "{\"version\":1,\"streaming\":{\"holdback_bytes\":48},\"rules\":["
    "{\"id\":\"phrase\",\"stage\":\"output\",\"detector\":\"regex\","
    "\"pattern\":\"(?i)acme\\\\s+launch\\\\s+codes\",\"action\":\"block\"},"
    "{\"id\":\"words\",\"stage\":\"output\",\"detector\":\"keywords\",\"keywords\":"
    "[\"forbidden fruit\",\"na\xc3\xafve caf\xc3\xa9\",\"\xe6\x9c\xba\xe5\xaf\x86\xe6\x96\x87\xe4\xbb\xb6\","
    "\"\xf0\x9f\x92\xa3 recipe\"],\"action\":\"block\"},"
    "{\"id\":\"cards\",\"stage\":\"output\",\"detector\":\"pii\",\"types\":[\"credit_card\"],"
    "\"action\":\"redact\"},"
    "{\"id\":\"spam\",\"stage\":\"output\",\"detector\":\"spam\",\"threshold\":0.99,"
    "\"action\":\"block\"}]}";

static const char *const blocked[] = {
    "acme launch codes",
    "ACME  Launch\ncodes",
    "forbidden fruit",
    "Forbidden   FRUIT",
    "na\xc3\xafve caf\xc3\xa9",
    "\xe6\x9c\xba\xe5\xaf\x86\xe6\x96\x87\xe4\xbb\xb6",
    "\xf0\x9f\x92\xa3 recipe",
    "4cm3 l4unch c0d3s",                                         // leetspeak
    "\xef\xbd\x81\xef\xbd\x83\xef\xbd\x8d\xef\xbd\x85 launch codes",  // full-width
    "a\xe2\x80\x8b" "cme launch co\xe2\x80\x8d" "des",            // zero-width
    "\xd0\xb0" "cme l\xd0\xb0unch c\xd0\xbe" "des",               // Cyrillic
    "f o r b i d d e n  f r u i t",                             // spaced out
};

static const char prefix[] =
    "Here is a long and perfectly harmless answer that goes on for a while, so that the "
    "stream has released text before the interesting part arrives: ";
static const char suffix[] = " -- and then some more harmless text follows it.";

static struct gf_policy *pol;

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static size_t rnd(size_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (size_t)(rng % n);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* Streams text cut at the given offsets; returns the stream's final code (0 or GF_EPOLICY)
 * and leaves what was released in out. */
static int stream_cuts(const char *text, size_t len, size_t *cuts, size_t ncuts,
                       struct gf_buf *out)
{
    struct gf_stream *s;
    if (gf_stream_new(pol, NULL, 0, 1 << 20, &s, NULL) != 0)
        return -1;
    qsort(cuts, ncuts, sizeof(*cuts), cmp_size);
    size_t at = 0;
    int rc = 0;
    for (size_t i = 0; i <= ncuts && rc == 0; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        rc = gf_stream_feed(s, text + at, end - at, out, NULL);
        at = end;
    }
    if (rc == 0)
        rc = gf_stream_finish(s, out, NULL);
    if (rc == GF_EPOLICY && gf_stream_verdict(s)->action != GF_ACTION_BLOCK)
        rc = -2;
    gf_stream_free(s);
    return rc;
}

static void test_blocked_splits(void)
{
    int bad = 0, runs = 0;
    for (size_t b = 0; b < GF_ARRAY_LEN(blocked); b++) {
        char text[1024];
        snprintf(text, sizeof(text), "%s%s%s", prefix, blocked[b], suffix);
        size_t len = strlen(text), start = strlen(prefix), blen = strlen(blocked[b]);
        for (size_t off = 1; off < blen; off++) {  // every byte offset inside the string
            for (size_t chunks = 2; chunks <= 5; chunks++) {
                size_t cuts[4];
                cuts[0] = start + off;
                for (size_t k = 1; k + 1 < chunks; k++)
                    cuts[k] = 1 + rnd(len - 1);
                struct gf_buf out;
                gf_buf_init(&out, 1 << 20);
                int rc = stream_cuts(text, len, cuts, chunks - 1, &out);
                runs++;
                bool leaked = out.data && memmem(out.data, out.len, blocked[b], blen) != NULL;
                bool ok = rc == GF_EPOLICY && !leaked && out.len <= start + blen - 1 &&
                          (out.len == 0 || memcmp(out.data, text, out.len) == 0);
                if (!ok && bad++ < 5)
                    fprintf(stderr, "string %zu cut at +%zu into %zu: rc %d, released %zu, %s\n",
                            b, off, chunks, rc, out.len, leaked ? "LEAKED" : "");
                gf_buf_cleanup(&out);
            }
        }
    }
    CHECK_MSG(bad == 0, "%d of %d runs failed", bad, runs);
    CHECK(runs > 500);
}

// The stream releases something before the end: the hold-back window is not the whole text.
static void test_release_early(void)
{
    struct gf_stream *s;
    REQUIRE(gf_stream_new(pol, NULL, 0, 1 << 20, &s, NULL) == 0);
    struct gf_buf out;
    gf_buf_init(&out, 1 << 20);
    CHECK(gf_stream_feed(s, prefix, strlen(prefix), &out, NULL) == 0);
    CHECK(out.len == strlen(prefix) - 48 || out.len == strlen(prefix) - 47);
    CHECK(gf_stream_released(s) == out.len);
    CHECK(gf_stream_finish(s, &out, NULL) == 0);
    CHECK(out.len == strlen(prefix) && memcmp(out.data, prefix, out.len) == 0);
    CHECK(gf_stream_feed(s, "x", 1, &out, NULL) == GF_EINVAL);
    gf_stream_free(s);
    gf_buf_cleanup(&out);
}

static void test_clean_and_redacted(void)
{
    const char *texts[] = {
        "A clean answer about caf\xc3\xa9s, fruit and launches, with \xe6\x97\xa5\xe6\x9c\xac "
        "and \xf0\x9f\x98\x80 in it, long enough to be released in pieces along the way.",
        "Your card 4111 1111 1111 1111 was charged; the backup card is 5555555555554444. "
        "Nothing else to say here, really, this is just padding text.",
    };
    const char *want[] = {
        NULL,
        "Your card [REDACTED:credit_card] was charged; the backup card is "
        "[REDACTED:credit_card]. Nothing else to say here, really, this is just padding text.",
    };
    int bad = 0;
    for (size_t t = 0; t < GF_ARRAY_LEN(texts); t++) {
        size_t len = strlen(texts[t]);
        for (size_t off = 1; off < len; off++) {
            size_t cuts[3] = {off, 1 + rnd(len - 1), 1 + rnd(len - 1)};
            struct gf_buf out;
            gf_buf_init(&out, 1 << 20);
            int rc = stream_cuts(texts[t], len, cuts, 1 + off % 3, &out);
            const char *w = want[t] ? want[t] : texts[t];
            if ((rc != 0 || out.len != strlen(w) || memcmp(out.data, w, out.len) != 0) &&
                bad++ < 3)
                fprintf(stderr, "text %zu cut at %zu: rc %d out \"%.*s\"\n", t, off, rc,
                        (int)out.len, out.data ? out.data : "");
            gf_buf_cleanup(&out);
        }
    }
    CHECK(bad == 0);
}

static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    const char *t = "some text with card 4111 1111 1111 1111 and then acme launch codes";
    for (long k = 1;; k++) {
        struct gf_buf out;
        gf_buf_init(&out, 1 << 20);
        gf_alloc_fail_after(k, false);
        struct gf_stream *s = NULL;
        int rc = gf_stream_new(pol, NULL, 16, 1 << 20, &s, NULL);
        for (size_t i = 0; rc == 0 && i < strlen(t); i += 7)
            rc = gf_stream_feed(s, t + i, strlen(t) - i < 7 ? strlen(t) - i : 7, &out, NULL);
        if (rc == 0)
            rc = gf_stream_finish(s, &out, NULL);
        long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        gf_stream_free(s);
        gf_buf_cleanup(&out);
        if (failed == 0) {
            CHECK(rc == GF_EPOLICY);
            break;
        }
        CHECK_MSG(rc == GF_ENOMEM || rc == GF_EPOLICY, "step %ld rc %d", k, rc);
    }
}

/* The fake classifier with a streaming path that records its calls: it scores the whole text
 * so far like fake_score, or declines before the end when decline is set. */
static struct {
    size_t calls, last_len;
    bool last_final, decline;
} fs;

static void *fake_stream_new(const struct gf_classifier *c)
{
    (void)c;
    return gf_malloc(1);
}

static int fake_stream_score(const struct gf_classifier *c, void *state, const char *text,
                             size_t len, bool final, float *scores, struct gf_err *err)
{
    (void)state;
    fs.calls++;
    fs.last_len = len;
    fs.last_final = final;
    if (fs.decline && !final)
        return GF_EAGAIN;
    struct gf_norm n;
    if (gf_normalize(text, len, &n, err) != 0)
        return GF_ENOMEM;
    int rc = fake_score(c, text, len, &n, scores, err);
    gf_norm_cleanup(&n);
    return rc;
}

static void fake_stream_free(void *state)
{
    gf_free(state);
}

static const struct gf_classifier_ops fake_stream_ops = {
    .name = "fake-stream", .score = fake_score, .destroy = fake_destroy,
    .stream_new = fake_stream_new, .stream_score = fake_stream_score,
    .stream_free = fake_stream_free};

static void test_incremental_classifier(void)
{
    struct gf_clf_registry *reg = gf_clf_registry_new();
    struct gf_classifier *c = gf_malloc(sizeof(*c));
    REQUIRE(reg != NULL && c != NULL);
    gf_classifier_init(c, &fake_stream_ops, fake_cats, 3, NULL);
    REQUIRE(gf_clf_registry_add(reg, c, NULL) == 0);
    gf_classifier_unref(c);
    static const char pj[] =
        "{\"version\":1,\"streaming\":{\"holdback_bytes\":16},\"rules\":["
        "{\"id\":\"hate\",\"stage\":\"output\",\"classifier\":\"hate\",\"threshold\":0.5,"
        "\"action\":\"block\"}]}";
    struct gf_policy *p = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_policy_parse(pj, strlen(pj), "c.json", reg, &p, &err) == 0);
    // "hate!" early, then 480 harmless bytes.
    struct gf_buf text, out;
    gf_buf_init(&text, 1 << 16);
    gf_buf_init(&out, 1 << 16);
    gf_buf_puts(&text, "we say hate! once ");
    for (int i = 0; i < 40; i++)
        gf_buf_puts(&text, "and then ok ");
    for (int decline = 0; decline < 2; decline++) {
        memset(&fs, 0, sizeof(fs));
        fs.decline = decline;
        gf_buf_reset(&out);
        struct gf_stream *s = NULL;
        REQUIRE(gf_stream_new(p, NULL, 0, 1 << 20, &s, NULL) == 0);
        int rc = 0;
        size_t at = 0;
        for (; rc == 0 && at < text.len; at += 5)
            rc = gf_stream_feed(s, text.data + at, text.len - at < 5 ? text.len - at : 5, &out,
                                NULL);
        if (rc == 0)
            rc = gf_stream_finish(s, &out, NULL);
        // Stopped at the first judgement, after 4 windows: by the score of the text so far,
        // or, when the classifier declines, by its score of the window.
        CHECK(rc == GF_EPOLICY);
        CHECK(fs.calls == 1 && !fs.last_final && fs.last_len >= 64 && fs.last_len < 80);
        CHECK(at < 100);
        const struct gf_verdict *v = gf_stream_verdict(s);
        CHECK(v->n_scores == 1 && v->scores[0].score > 0.9);
        gf_stream_free(s);
    }
    // Harmless text: judged at the end on all of it, released whole.
    memset(&fs, 0, sizeof(fs));
    gf_buf_reset(&out);
    struct gf_stream *s = NULL;
    REQUIRE(gf_stream_new(p, NULL, 0, 1 << 20, &s, NULL) == 0);
    const char *t = "a harmless answer that goes on and on and on for well over sixty-four bytes";
    for (size_t i = 0; i < strlen(t); i += 3)
        CHECK(gf_stream_feed(s, t + i, strlen(t) - i < 3 ? strlen(t) - i : 3, &out, NULL) == 0);
    CHECK(gf_stream_finish(s, &out, NULL) == 0);
    CHECK(fs.last_final && fs.last_len == strlen(t));
    CHECK(out.len == strlen(t) && memcmp(out.data, t, out.len) == 0);
    gf_stream_free(s);
    gf_buf_cleanup(&text);
    gf_buf_cleanup(&out);
    gf_policy_unref(p);
    gf_clf_registry_unref(reg);
}

int main(void)
{
    gf_json_init();
    struct gf_err err = {0};
    if (gf_policy_parse(policy_json, strlen(policy_json), "s.json", NULL, &pol, &err) != 0)
        SKIP("cannot load the test policy: %s", err.msg);
    RUN(test_blocked_splits);
    RUN(test_release_early);
    RUN(test_clean_and_redacted);
    RUN(test_incremental_classifier);
    RUN(test_oom);
    gf_policy_unref(pol);
    return test_report();
}
