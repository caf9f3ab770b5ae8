/* Unit tests of classifiers/spam.c: typical spam scores high and ordinary requests, including
 * ones with a link or an urgent word, score low; each heuristic moves the score on its own. */
#include "scan_util.h"

static struct gf_detector *d;

static double score(const char *s)
{
    if (scan(d, s) != 1 || strcmp(hits.v[0].type, "spam") != 0)
        return -1;
    CHECK(hits.v[0].start == 0 && hits.v[0].end == strlen(s));
    return hits.v[0].score;
}

static void test_spam(void)
{
    const char *spam[] = {
        "WINNER!! You have won a FREE iPhone. CLICK HERE to claim your prize: http://win.example",
        "Make money fast!!! Work from home, earn cash, no credit check. Visit cheap-deals.biz now",
        "buy now buy now buy now cheap pills buy now buy now buy now cheap pills",
        "Congratulations! U have been selected to receive a 1000 cash prize. Txt CLAIM to 81010",
        "F R E E  M O N E Y!!! cl1ck h3re www.fr33cash.ru",
    };
    for (size_t i = 0; i < GF_ARRAY_LEN(spam); i++) {
        double s = score(spam[i]);
        CHECK_MSG(s > 0.8, "spam %zu scored %.3f", i, s);
    }
    const char *ham[] = {
        "Can you help me write a Python function that sorts a list of dictionaries by key?",
        "See the documentation at https://docs.python.org/3/library/functions.html for details.",
        "This is urgent: the deploy failed, can you look at the logs before the meeting?",
        "NASA and the ESA announced a joint mission today.",
        "I won the chess game yesterday, and my friend said congratulations.",
        "",
        "ok",
    };
    for (size_t i = 0; i < GF_ARRAY_LEN(ham); i++) {
        if (ham[i][0] == '\0') {
            CHECK(scan(d, "") == 0);
            continue;
        }
        double s = score(ham[i]);
        CHECK_MSG(s >= 0 && s < 0.3, "ham %zu scored %.3f", i, s);
    }
    // Each signal raises the score of a neutral sentence.
    double base = score("please send the report about the budget to the team");
    CHECK(score("PLEASE SEND THE REPORT ABOUT THE BUDGET TO THE TEAM") > base);
    CHECK(score("please send the report http://a.example http://b.example to the team") > base);
    CHECK(score("please send the report about the budget to the team, click here") > base);
    CHECK(score("send the report send the report send the report send the report") > base);
    CHECK(score("please send the report about the budget to the team!!!!") > base);
}

static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    for (long k = 1;; k++) {
        struct gf_detector *x = NULL;
        gf_alloc_fail_after(k, false);
        int rc = gf_spam_new(&x, NULL);
        long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        if (failed == 0) {
            CHECK(rc == 0 && x != NULL);
            gf_detector_free(x);
            break;
        }
        CHECK(rc == GF_ENOMEM ? x == NULL : rc == 0 && x != NULL);  // JIT may just be skipped
        gf_detector_free(x);
    }
}

int main(void)
{
    scan_setup();
    if (gf_spam_new(&d, NULL) != 0)
        SKIP("cannot build the spam detector");
    RUN(test_spam);
    RUN(test_oom);
    gf_detector_free(d);
    scan_teardown();
    return test_report();
}
