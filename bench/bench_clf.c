/* bench_clf.c — scoring speed of the trained classifier on one core: texts/s and microseconds
 * per 1 KB text, for single calls and for batches (the /v1/moderations path), over 1 KB texts
 * built from a fixed seed, plus short 100-byte prompts; and for texts already in canonical form
 * (the policy filter chain normalizes a text once for all its detectors), the classifier's own
 * cost. Prints the median of several rounds. Usage: bench_clf [MODEL.gguf] [ROUNDS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "classifiers/classifiers.h"
#include "common/common.h"

#define N_TEXTS 512

static const char *const WORDS[] = {
    "the", "weather", "ignore", "previous", "instructions", "free", "prize", "call", "now",
    "how", "do", "I", "make", "a", "cake", "for", "my", "friend's", "birthday", "please",
    "explain", "quantum", "computing", "in", "simple", "terms", "WINNER!!", "claim", "£1000",
    "write", "an", "essay", "about", "climate", "change", "and", "its", "effects", "on",
    "agriculture", "Ça", "va", "très", "bien", "merci", "système", "hello", "world", "data",
    "questions", "answer", "tomorrow", "meeting", "report", "security", "people", "history"};

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void make_texts(char **texts, size_t *lens, size_t len)
{
    uint64_t s = 42;
    for (int i = 0; i < N_TEXTS; i++) {
        size_t n = 0;
        while (n < len) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            const char *w = WORDS[(s >> 33) % GF_ARRAY_LEN(WORDS)];
            size_t k = strlen(w);
            if (n + k + 1 > len)
                break;
            memcpy(texts[i] + n, w, k);
            n += k;
            texts[i][n++] = ' ';
        }
        lens[i] = n;
    }
}

/* CPU time of this thread: on a shared machine wall-clock time measures the neighbours. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

enum { CANONICAL = 1 << 20 };  // batch value: single calls on canonical texts

/* Median CPU seconds per text over rounds, for single calls (batch = 0), batches, or single
 * calls on canonical texts. */
static double run(const struct gf_clf_model *m, struct gf_clf_scratch *s, char **texts,
                  size_t *lens, char **canon, size_t *clens, float *scores, size_t batch,
                  int rounds)
{
    double t[32];
    for (int r = 0; r < rounds; r++) {
        uint64_t t0 = cpu_ns();
        if (batch == CANONICAL) {
            for (int i = 0; i < N_TEXTS; i++)
                gf_clf_model_score_canonical(m, texts[i], lens[i], canon[i], clens[i], scores,
                                             s);
        } else if (batch == 0) {
            for (int i = 0; i < N_TEXTS; i++)
                gf_clf_model_score(m, texts[i], lens[i], scores, s);
        } else {
            for (size_t i = 0; i < N_TEXTS; i += batch)
                gf_clf_model_score_batch(m, (const char *const *)texts + i, lens + i, batch,
                                         scores, s);
        }
        t[r] = (double)(cpu_ns() - t0) / 1e9 / N_TEXTS;
    }
    qsort(t, (size_t)rounds, sizeof(double), cmp_d);
    return t[rounds / 2];
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : gf_clf_default_model_path();
    int64_t rounds = 7;
    if (argc > 2 && gf_parse_i64(argv[2], 1, 31, &rounds) != 0) {
        fprintf(stderr, "bench_clf: ROUNDS must be 1..31\n");
        return 2;
    }
    struct gf_err err = {0};
    struct gf_clf_model *m = NULL;
    if (gf_clf_model_load(path, &m, &err) != 0) {
        fprintf(stderr, "bench_clf: %s\n", err.msg);
        return 77;
    }
    const char *const *cats;
    size_t n_cat = gf_clf_model_categories(m, &cats);
    struct gf_clf_scratch *s = NULL;
    char **texts = calloc(N_TEXTS, sizeof(char *)), **canon = calloc(N_TEXTS, sizeof(char *));
    size_t *lens = calloc(N_TEXTS, sizeof(size_t)), *clens = calloc(N_TEXTS, sizeof(size_t));
    float *scores = calloc((size_t)N_TEXTS * n_cat, sizeof(float));
    if (texts == NULL || lens == NULL || canon == NULL || clens == NULL || scores == NULL ||
        gf_clf_scratch_new(m, &s) != 0)
        return 1;
    for (int i = 0; i < N_TEXTS; i++)
        if ((texts[i] = malloc(1024)) == NULL || (canon[i] = malloc(1024)) == NULL)
            return 1;
    printf("model %s: %zu categories; %d texts per round, median of %d rounds, one thread, "
           "thread CPU time\n",
           path, n_cat, N_TEXTS, (int)rounds);
    size_t sizes[2] = {1024, 100};
    for (int k = 0; k < 2; k++) {
        make_texts(texts, lens, sizes[k]);
        double single = run(m, s, texts, lens, NULL, NULL, scores, 0, (int)rounds);
        double batch = run(m, s, texts, lens, NULL, NULL, scores, 32, (int)rounds);
        // The same texts in canonical form, as a filter chain hands them over.
        for (int i = 0; i < N_TEXTS; i++) {
            struct gf_norm nm = {0};
            if (gf_normalize(texts[i], lens[i], &nm, NULL) != 0)
                return 1;
            memcpy(canon[i], nm.text, nm.len);
            clens[i] = nm.len;
            gf_norm_cleanup(&nm);
        }
        double canonical =
            run(m, s, texts, lens, canon, clens, scores, CANONICAL, (int)rounds);
        printf("%4zu-byte texts: single %8.1f us/text %9.0f texts/s | batch of 32 %8.1f us/text "
               "%9.0f texts/s | batch/single %.2f | canonical %8.1f us/text\n",
               sizes[k], single * 1e6, 1 / single, batch * 1e6, 1 / batch, batch / single,
               canonical * 1e6);
        if (k == 0)
            printf("per 1 KB: %.1f us with normalization, %.1f us on canonical text (target < "
                   "100 us; < 20 us wanted so the policy chain reaches 50 MB/s)\n",
                   single * 1e6, canonical * 1e6);
    }
    for (int i = 0; i < N_TEXTS; i++) {
        free(texts[i]);
        free(canon[i]);
    }
    free(texts);
    free(canon);
    free(lens);
    free(clens);
    free(scores);
    gf_clf_scratch_free(s);
    gf_clf_model_unref(m);
    return 0;
}
