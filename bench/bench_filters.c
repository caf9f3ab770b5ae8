/* bench_filters.c — speed of the content policy on one core: MB/s of a whole-text evaluation
 * (input and output stage) over 1 KB and 16 KB texts (and 1 KB texts of words never seen before,
 * the worst case of the classifier's token cache), and the cost of streaming moderation per
 * token (gf_stream_feed on ~4-byte tokens) as tokens/s next to a plain copy. Times are the
 * thread's CPU time, so figures are per core on a shared machine. Prints figures, no assertions.
 * GF_BENCH_CORPUS=FILE.jsonl[:FILE.jsonl...] adds 1 KB and 16 KB texts cut from real text: the
 * "text" members of those files (prompts, mail, comments), whose words repeat as real traffic
 * does (the generated texts draw on a few dozen words, the "never seen" ones on none).
 * usage: bench_filters POLICY.json [MODEL.gguf|none] [SECONDS] [BYTES [input|output]]
 * (SECONDS -N with BYTES: N passes over the texts instead, for profilers)
 * BYTES runs only the whole-text evaluation of one text of that size, optionally of one stage
 * (for profilers); with GF_BENCH_CORPUS set, texts of that size cut from the real text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "classifiers/classifiers.h"
#include "gateway/gateway.h"
#include "policy/policy.h"

static const char *const words[] = {
    "the", "policy", "gateway", "answer", "model", "request", "of", "and", "to", "in", "a",
    "streaming", "filter", "text", "with", "for", "is", "that", "on", "data", "user", "please",
    "explain", "how", "works", "example", "result", "system", "value", "number", "which",
    "would", "could", "between", "important", "because", "information", "question", "help",
    "caf\xc3\xa9", "na\xc3\xafve", "2024", "42", "version", "release", "notes", "server",
};

static uint64_t rng = 88172645463325252ull;

// CPU time of this thread: the figures are per core even on a loaded machine.
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

// Words of 2-11 random letters instead of the list above: a text of words never seen before,
// the worst case of the classifier's token cache (a real text repeats many of its words).
static bool fresh_words;

// Prose-like text: words, punctuation, a capital now and then, an email or a number rarely.
static void make_text(struct gf_buf *b, size_t len)
{
    gf_buf_reset(b);
    size_t sentence = 0;
    char fresh[12];
    while (b->len < len) {
        uint64_t r = next();
        const char *w = words[r % GF_ARRAY_LEN(words)];
        if (fresh_words) {
            size_t n = 2 + next() % 10;
            for (size_t k = 0; k < n; k++)
                fresh[k] = (char)('a' + next() % 26);
            fresh[n] = '\0';
            w = fresh;
        }
        if (sentence == 0 && w[0] >= 'a' && w[0] <= 'z') {
            gf_buf_putc(b, (char)(w[0] - 32));
            gf_buf_puts(b, w + 1);
        } else {
            gf_buf_puts(b, w);
        }
        sentence++;
        if (r % 97 == 0)
            gf_buf_puts(b, " (contact: someone@example.org)");
        if (r % 13 == 0 || sentence > 14) {
            gf_buf_puts(b, ". ");
            sentence = 0;
        } else {
            gf_buf_putc(b, r % 11 == 0 ? ',' : ' ');
            if (r % 11 == 0)
                gf_buf_putc(b, ' ');
        }
    }
    b->len = gf_utf8_complete_prefix(b->data, len);
    b->data[b->len] = '\0';
}

/* Texts of one size, different from each other: a benchmark that evaluates the same text over
 * and over measures a branch predictor that has learnt the text by heart (a 1 KB text then ran
 * 1.4x faster per byte than a 16 KB one, with the same instruction count per byte). */
struct texts {
    struct gf_buf all;  // n texts, one after the other
    size_t *off, *len, n;
};

#define TEXTS_BYTES (512u << 10)  // far more than any branch history

static void make_texts(struct texts *ts, size_t len)
{
    ts->n = TEXTS_BYTES / len ? TEXTS_BYTES / len : 1;
    gf_buf_init(&ts->all, ts->n * (len + 1) + 1);
    ts->off = calloc(ts->n, sizeof(size_t));
    ts->len = calloc(ts->n, sizeof(size_t));
    struct gf_buf t;
    gf_buf_init(&t, len + 64);
    for (size_t i = 0; i < ts->n; i++) {
        make_text(&t, len);
        ts->off[i] = ts->all.len;
        ts->len[i] = t.len;
        gf_buf_append(&ts->all, t.data, t.len);
        gf_buf_putc(&ts->all, '\0');
    }
    gf_buf_cleanup(&t);
}

/* Real text: the "text" members of the JSONL files of a ':'-separated list, taken one from
 * each file in turn (so that each file weighs the same) and joined by newlines, up to
 * CORPUS_BYTES. */
#define CORPUS_BYTES (4u << 20)

struct corpus_file {
    FILE *f;
    bool done;
};

// The next "text" of f, appended to b with a newline; false at the end of the file.
static bool corpus_next(struct corpus_file *cf, struct gf_buf *b)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    bool got = false;
    while (!got && (n = getline(&line, &cap, cf->f)) > 0) {
        cJSON *j = cJSON_ParseWithLength(line, (size_t)n);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "text");
        if (cJSON_IsString(t) && t->valuestring[0] != '\0') {
            gf_buf_puts(b, t->valuestring);
            gf_buf_putc(b, '\n');
            got = true;
        }
        cJSON_Delete(j);
    }
    free(line);
    return got;
}

static int load_corpus(const char *list, struct gf_buf *b, size_t *n_files)
{
    struct corpus_file files[16];
    size_t n = 0;
    char *copy = strdup(list), *save = NULL;
    for (char *path = strtok_r(copy, ":", &save); path != NULL && n < GF_ARRAY_LEN(files);
         path = strtok_r(NULL, ":", &save)) {
        files[n].f = fopen(path, "r");
        if (files[n].f == NULL) {
            fprintf(stderr, "bench_filters: cannot read %s\n", path);
            continue;
        }
        files[n++].done = false;
    }
    free(copy);
    size_t live = n;
    while (live > 0 && b->len < CORPUS_BYTES)
        for (size_t i = 0; i < n; i++)
            if (!files[i].done && !corpus_next(&files[i], b)) {
                files[i].done = true;
                live--;
            }
    for (size_t i = 0; i < n; i++)
        fclose(files[i].f);
    *n_files = n;
    return b->len > 0 ? 0 : -1;
}

/* Texts of about len bytes cut one after the other from the corpus, each ending at a space or
 * newline and on a whole UTF-8 character. */
static void corpus_texts(struct texts *ts, const struct gf_buf *corpus, size_t len)
{
    ts->n = TEXTS_BYTES / len ? TEXTS_BYTES / len : 1;
    gf_buf_init(&ts->all, ts->n * (len + 1) + 1);
    ts->off = calloc(ts->n, sizeof(size_t));
    ts->len = calloc(ts->n, sizeof(size_t));
    size_t at = 0;
    for (size_t i = 0; i < ts->n; i++) {
        if (at + len > corpus->len)
            at = 0;
        size_t n = len < corpus->len ? len : corpus->len;
        size_t cut = n;
        while (cut > len / 2 && corpus->data[at + cut - 1] != ' ' &&
               corpus->data[at + cut - 1] != '\n')
            cut--;
        if (cut <= len / 2)
            cut = gf_utf8_complete_prefix(corpus->data + at, n);
        ts->off[i] = ts->all.len;
        ts->len[i] = cut;
        gf_buf_append(&ts->all, corpus->data + at, cut);
        gf_buf_putc(&ts->all, '\0');
        at += cut;
    }
}

static void free_texts(struct texts *ts)
{
    gf_buf_cleanup(&ts->all);
    free(ts->off);
    free(ts->len);
}

static double eval_mbs(struct gf_policy *p, struct gf_policy_ctx *c, enum gf_stage st,
                       const struct texts *ts, double seconds)
{
    // SECONDS below zero: exactly -SECONDS passes over the texts, the same work in every run
    // (for instruction counts, whose average over a part of a pass depends on which part).
    size_t evals = seconds < 0 ? (size_t)(-seconds * (double)ts->n) : SIZE_MAX;
    uint64_t start = cpu_ns(), end = seconds < 0 ? UINT64_MAX : start + (uint64_t)(seconds * 1e9);
    size_t bytes = 0, i = 0, done = 0;
    while (cpu_ns() < end && done < evals) {
        for (int k = 0; k < 8 && done < evals; k++, done++, i = (i + 1) % ts->n) {
            struct gf_verdict v;
            if (gf_policy_eval(p, c, NULL, st, ts->all.data + ts->off[i], ts->len[i], &v,
                               NULL) == 0)
                gf_verdict_cleanup(&v);
            bytes += ts->len[i];
        }
    }
    double s = (double)(cpu_ns() - start) / 1e9;
    return (double)bytes / s / 1e6;
}

// Feeds text as ~4-byte tokens, or word by word (" w1", " w2", ... like the mock upstream's
// stream); returns tokens per second (filter or plain copy).
static double stream_tps(struct gf_policy *p, const struct gf_buf *t, bool filter, bool by_word,
                         double seconds, size_t *tokens_out)
{
    uint64_t start = cpu_ns(), end = start + (uint64_t)(seconds * 1e9);
    size_t tokens = 0;
    struct gf_buf out;
    gf_buf_init(&out, 1 << 24);
    while (cpu_ns() < end) {
        struct gf_stream *s = NULL;
        if (filter && gf_stream_new(p, NULL, 0, 1 << 24, &s, NULL) != 0)
            return 0;
        gf_buf_reset(&out);
        for (size_t at = 0; at < t->len;) {
            size_t n = 3 + next() % 3;
            if (by_word)
                for (n = 1; at + n < t->len && t->data[at + n] != ' ';)
                    n++;
            if (at + n > t->len)
                n = t->len - at;
            if (filter)
                gf_stream_feed(s, t->data + at, n, &out, NULL);
            else
                gf_buf_append(&out, t->data + at, n);
            at += n;
            tokens++;
        }
        if (filter)
            gf_stream_finish(s, &out, NULL);
        gf_stream_free(s);
    }
    gf_buf_cleanup(&out);
    *tokens_out = tokens;
    return (double)tokens / ((double)(cpu_ns() - start) / 1e9);
}

int main(int argc, char **argv)
{
    gf_json_init();
    gf_log_set_level(GF_LOG_ERROR);
    if (argc < 2) {
        fprintf(stderr, "usage: bench_filters POLICY.json [MODEL.gguf|none] [SECONDS] "
                        "[BYTES [input|output]]\n");
        return 2;
    }
    const char *model = argc > 2 ? argv[2] : NULL;
    char *end = NULL;
    double seconds = argc > 3 ? strtod(argv[3], &end) : 1.0;
    if (argc > 3 && (end == argv[3] || *end != '\0' || !(seconds > 0 && seconds <= 3600))) {
        fprintf(stderr, "bench_filters: SECONDS must be a number in (0, 3600], not '%s'\n",
                argv[3]);
        return 2;
    }
    size_t bytes = 0;
    if (argc > 4) {
        unsigned long v = strtoul(argv[4], &end, 10);
        if (end == argv[4] || *end != '\0' || v == 0 || v > (1u << 20)) {
            fprintf(stderr, "bench_filters: BYTES must be a whole number in [1, 1048576], not "
                            "'%s'\n", argv[4]);
            return 2;
        }
        bytes = v;
    }
    if (argc > 5 && strcmp(argv[5], "input") != 0 && strcmp(argv[5], "output") != 0) {
        fprintf(stderr, "bench_filters: the stage is input or output, not '%s'\n", argv[5]);
        return 2;
    }
    struct gf_err err = {0};
    struct gf_clf_registry *reg = NULL;
    struct gf_policy *p = NULL;
    if (gf_moderation_load_classifiers(model, &reg, &err) != 0 ||
        gf_policy_load(argv[1], reg, &p, &err) != 0) {
        fprintf(stderr, "bench_filters: %s\n", err.msg);
        return 1;
    }
    struct gf_policy_ctx *c = gf_policy_ctx_new();
    printf("policy %s (version %.12s), classifier categories loaded: %zu, rules in/out: %zu/%zu\n",
           argv[1], gf_policy_version(p), gf_clf_registry_count(reg),
           gf_policy_rule_count(p, NULL, GF_STAGE_INPUT), gf_policy_rule_count(p, NULL,
                                                                              GF_STAGE_OUTPUT));
    struct gf_buf t;
    gf_buf_init(&t, 1 << 20);
    size_t sizes[] = {1024, 16384}, n_sizes = 2;
    if (bytes > 0) {
        sizes[0] = bytes;
        n_sizes = 1;
    }
    /* With BYTES and GF_BENCH_CORPUS, the one text size is cut from the real text (for
     * profiling the classifier on words that repeat as real traffic does). */
    struct gf_buf one_corpus;
    size_t one_files = 0;
    const char *one_list = argc > 4 ? getenv("GF_BENCH_CORPUS") : NULL;
    bool one_real = false;
    if (one_list != NULL && one_list[0] != '\0') {
        gf_buf_init(&one_corpus, CORPUS_BYTES + 4096);
        one_real = load_corpus(one_list, &one_corpus, &one_files) == 0;
        if (!one_real) {
            fprintf(stderr, "bench_filters: no text in GF_BENCH_CORPUS\n");
            gf_buf_cleanup(&one_corpus);
        }
    }
    for (size_t i = 0; i < n_sizes; i++) {
        struct texts ts;
        if (one_real)
            corpus_texts(&ts, &one_corpus, sizes[i]);
        else
            make_texts(&ts, sizes[i]);
        bool only_out = argc > 5 && strcmp(argv[5], "output") == 0;
        bool only_in = argc > 5 && strcmp(argv[5], "input") == 0;
        double in = only_out ? 0 : eval_mbs(p, c, GF_STAGE_INPUT, &ts, seconds);
        double out = only_in ? 0 : eval_mbs(p, c, GF_STAGE_OUTPUT, &ts, seconds);
        printf("%s %5zu B (%zu texts): input %7.1f MB/s, output %7.1f MB/s (one core)\n",
               one_real ? "real text" : "whole text", ts.len[0], ts.n, in, out);
        free_texts(&ts);
    }
    if (one_real)
        gf_buf_cleanup(&one_corpus);
    if (argc > 4)
        goto out;
    {
        struct texts ts;
        fresh_words = true;
        make_texts(&ts, 1024);
        fresh_words = false;
        double in = eval_mbs(p, c, GF_STAGE_INPUT, &ts, seconds);
        double out = eval_mbs(p, c, GF_STAGE_OUTPUT, &ts, seconds);
        printf("words never seen before, %zu B (%zu texts): input %7.1f MB/s, output %7.1f MB/s "
               "(one core)\n",
               ts.len[0], ts.n, in, out);
        free_texts(&ts);
    }
    const char *list = getenv("GF_BENCH_CORPUS");
    if (list != NULL && list[0] != '\0') {
        struct gf_buf corpus;
        size_t n_files = 0;
        gf_buf_init(&corpus, CORPUS_BYTES + 4096);
        if (load_corpus(list, &corpus, &n_files) != 0) {
            fprintf(stderr, "bench_filters: no text in GF_BENCH_CORPUS\n");
        } else {
            for (size_t i = 0; i < 2; i++) {
                struct texts ts;
                corpus_texts(&ts, &corpus, i == 0 ? 1024 : 16384);
                double in = eval_mbs(p, c, GF_STAGE_INPUT, &ts, seconds);
                double out = eval_mbs(p, c, GF_STAGE_OUTPUT, &ts, seconds);
                printf("real text %5s (%zu files, %zu texts): input %7.1f MB/s, output %7.1f "
                       "MB/s (one core)\n",
                       i == 0 ? "1 KB" : "16 KB", n_files, ts.n, in, out);
                free_texts(&ts);
            }
        }
        gf_buf_cleanup(&corpus);
    }
    make_text(&t, 4096);
    size_t n1, n2;
    double plain = stream_tps(p, &t, false, false, seconds, &n1);
    double filt = stream_tps(p, &t, true, false, seconds, &n2);
    printf("stream of 4 KB in ~4-byte tokens: %.0f tokens/s filtered, %.0f tokens/s copied; "
           "filter cost %.2f us/token\n",
           filt, plain, 1e6 / filt - 1e6 / plain);
    // The mock upstream's stream of bench/filters.sh: 20000 tokens " w1" ... " w20000".
    gf_buf_reset(&t);
    for (int i = 1; i <= 20000; i++)
        gf_buf_printf(&t, " w%d", i);
    double mplain = stream_tps(p, &t, false, true, seconds, &n1);
    double mfilt = stream_tps(p, &t, true, true, seconds, &n2);
    printf("stream of the mock's 20000 tokens (\" w1\" ...): filter cost %.3f us/token\n",
           1e6 / mfilt - 1e6 / mplain);
    // What that cost means for a generator producing tokens at a given rate.
    double rates[] = {50, 1000, 10000};
    for (size_t i = 0; i < 3; i++)
        printf("  at %6.0f tokens/s from the engine: moderation takes %.3f%% of a core\n",
               rates[i], 100.0 * rates[i] * (1.0 / filt - 1.0 / plain));
out:
    gf_buf_cleanup(&t);
    gf_policy_ctx_free(c);
    gf_policy_unref(p);
    gf_clf_registry_unref(reg);
    return 0;
}
