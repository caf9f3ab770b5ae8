/* sampler.c — token selection. Order, as llama.cpp's default chain: penalties, then (unless
 * greedy) top-k, top-p, min-p, temperature, draw. Candidates are sorted by descending logit,
 * ties by ascending id, so the result depends on nothing but the logits and the seed. */
#include "engine/sampler_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t next(struct gf_sampler *s)
{
    uint64_t s0 = s->rng[0], s1 = s->rng[1];
    uint64_t r = s0 + s1;
    s1 ^= s0;
    s->rng[0] = ((s0 << 24) | (s0 >> 40)) ^ s1 ^ (s1 << 16);
    s->rng[1] = (s1 << 37) | (s1 >> 27);
    return r;
}

float gf_sampler_uniform(struct gf_sampler *s)
{
    return (float)(next(s) >> 40) * (1.0f / 16777216.0f);  // 24 random bits
}

int gf_sampler_init(struct gf_sampler *s, const struct gf_sampler_params *p, int n_vocab)
{
    memset(s, 0, sizeof(*s));
    if (n_vocab < 1)
        return GF_EINVAL;
    s->p = *p;
    s->n_vocab = n_vocab;
    uint64_t x = p->seed;
    s->rng[0] = splitmix(&x);
    s->rng[1] = splitmix(&x);
    s->idx = gf_mallocarray((size_t)n_vocab, sizeof(int));
    s->prob = gf_mallocarray((size_t)n_vocab, sizeof(float));
    s->count = gf_calloc((size_t)n_vocab, sizeof(uint16_t));
    if (s->idx == NULL || s->prob == NULL || s->count == NULL) {
        gf_sampler_cleanup(s);
        return GF_ENOMEM;
    }
    return 0;
}

void gf_sampler_cleanup(struct gf_sampler *s)
{
    gf_free(s->idx);
    gf_free(s->prob);
    gf_free(s->count);
    s->idx = NULL;
    s->prob = NULL;
    s->count = NULL;
}

void gf_sampler_accept(struct gf_sampler *s, int token)
{
    if (token >= 0 && token < s->n_vocab && s->count[token] < UINT16_MAX)
        s->count[token]++;
}

static void penalize(struct gf_sampler *s, float *logits)
{
    const struct gf_sampler_params *p = &s->p;
    bool rep = p->repetition_penalty != 1.0f;
    bool fp = p->frequency_penalty != 0.0f || p->presence_penalty != 0.0f;
    if (!rep && !fp)
        return;
    for (int i = 0; i < s->n_vocab; i++) {
        if (s->count[i] == 0)
            continue;
        if (rep)  // llama.cpp: shrink a positive logit, grow a negative one
            logits[i] = logits[i] > 0 ? logits[i] / p->repetition_penalty
                                      : logits[i] * p->repetition_penalty;
        logits[i] -= (float)s->count[i] * p->frequency_penalty + p->presence_penalty;
    }
}

static _Thread_local const float *sort_logits;  // qsort has no context argument

static int by_logit(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    float lx = sort_logits[x], ly = sort_logits[y];
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* The n best ids (n <= 20) in s->idx[0..n), sorted, by insertion. */
static int best_n(struct gf_sampler *s, const float *logits, int n)
{
    int m = 0;
    for (int i = 0; i < s->n_vocab; i++) {
        float v = logits[i];
        if (m == n && !(v > logits[s->idx[m - 1]]))
            continue;
        int j = m < n ? m++ : n - 1;
        while (j > 0 && v > logits[s->idx[j - 1]]) {
            s->idx[j] = s->idx[j - 1];
            j--;
        }
        s->idx[j] = i;
    }
    return m;
}

/* The candidates for a draw, sorted best first in s->idx, at most k of them (0 = no limit).
 * Tokens more than 20*max(1, temperature) below the best logit are dropped first: at the
 * sampling temperature each has a probability below e^-20 relative to the best, so this only
 * spares sorting the whole vocabulary. */
static int candidates(struct gf_sampler *s, const float *logits, int k)
{
    float max = logits[0];
    for (int i = 1; i < s->n_vocab; i++)
        max = fmaxf(max, logits[i]);
    float cut = max - 20.0f * fmaxf(1.0f, s->p.temperature);
    int n = 0;
    for (int i = 0; i < s->n_vocab; i++)
        if (logits[i] >= cut)
            s->idx[n++] = i;
    sort_logits = logits;
    qsort(s->idx, (size_t)n, sizeof(int), by_logit);
    if (n == 0) {  // every logit is NaN: nothing to rank, take token 0
        s->idx[0] = 0;
        n = 1;
    }
    return k > 0 && k < n ? k : n;
}

static void logprobs(struct gf_sampler *s, const float *logits, int chosen, struct gf_logprob *lp,
                     struct gf_logprob *top, int n_top)
{
    float max = logits[0];
    for (int i = 1; i < s->n_vocab; i++)
        max = fmaxf(max, logits[i]);
    double sum = 0.0;
    for (int i = 0; i < s->n_vocab; i++)
        sum += exp((double)(logits[i] - max));
    float lse = max + (float)log(sum);
    lp->token = chosen;
    lp->logprob = logits[chosen] - lse;
    if (n_top > 20)
        n_top = 20;
    if (n_top <= 0)
        return;
    int m = best_n(s, logits, n_top);
    for (int i = 0; i < m && i < n_top; i++) {
        top[i].token = s->idx[i];
        top[i].logprob = logits[s->idx[i]] - lse;
    }
}

int gf_sampler_sample(struct gf_sampler *s, float *logits, struct gf_logprob *lp,
                      struct gf_logprob *top, int n_top)
{
    const struct gf_sampler_params *p = &s->p;
    penalize(s, logits);
    int chosen;
    if (p->temperature <= 0.0f) {
        chosen = 0;
        for (int i = 1; i < s->n_vocab; i++)
            if (logits[i] > logits[chosen])
                chosen = i;
    } else {
        int n = candidates(s, logits, p->top_k);
        // softmax over the candidates at temperature 1 for top-p and min-p (as llama.cpp)
        float max = logits[s->idx[0]];
        double sum = 0.0;
        for (int i = 0; i < n; i++) {
            s->prob[i] = expf(logits[s->idx[i]] - max);
            sum += s->prob[i];
        }
        if (p->top_p < 1.0f) {
            double cum = 0.0;
            int keep = n;
            for (int i = 0; i < n; i++) {
                cum += s->prob[i] / sum;
                if (cum >= p->top_p) {
                    keep = i + 1;
                    break;
                }
            }
            n = keep;
        }
        if (p->min_p > 0.0f) {
            float floor = p->min_p * s->prob[0];  // prob[0] is the largest
            int keep = 1;
            while (keep < n && s->prob[keep] >= floor)
                keep++;
            n = keep;
        }
        // temperature, then draw
        double tsum = 0.0;
        for (int i = 0; i < n; i++) {
            s->prob[i] = expf((logits[s->idx[i]] - max) / p->temperature);
            tsum += s->prob[i];
        }
        double r = (double)gf_sampler_uniform(s) * tsum, acc = 0.0;
        chosen = s->idx[n - 1];
        for (int i = 0; i < n; i++) {
            acc += s->prob[i];
            if (r < acc) {
                chosen = s->idx[i];
                break;
            }
        }
    }
    if (lp != NULL)
        logprobs(s, logits, chosen, lp, top, n_top);
    return chosen;
}
