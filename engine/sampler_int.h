/* sampler_int.h — picks the next token from a row of logits: repetition (llama.cpp-style),
 * frequency and presence penalties over the tokens seen so far, then greedy argmax when the
 * temperature is 0, else top-k, top-p, min-p, temperature and a draw from a seeded generator
 * (the same seed and logits give the same tokens on every machine). Optionally reports the
 * chosen token's log-probability and the most likely alternatives. */
#ifndef GF_SAMPLER_INT_H
#define GF_SAMPLER_INT_H

#include <stdbool.h>
#include <stdint.h>

struct gf_sampler_params {
    float temperature;        // 0 = greedy
    int top_k;                // 0 = off
    float top_p;              // 1 = off
    float min_p;              // 0 = off
    float repetition_penalty; // 1 = off
    float frequency_penalty;  // 0 = off
    float presence_penalty;   // 0 = off
    uint64_t seed;
};

struct gf_sampler {
    struct gf_sampler_params p;
    int n_vocab;
    uint64_t rng[2];      // xoroshiro128+ state
    int *idx;             // [n_vocab] candidate ids (scratch)
    float *prob;          // [n_vocab] candidate probabilities (scratch)
    uint16_t *count;      // [n_vocab] times each token appeared (saturating)
};

/* Makes the sampler for a vocabulary of n_vocab tokens. Returns 0 or GF_ENOMEM/GF_EINVAL. */
int gf_sampler_init(struct gf_sampler *s, const struct gf_sampler_params *p, int n_vocab);
void gf_sampler_cleanup(struct gf_sampler *s);

/* Records that token appeared (in the prompt or the output), for the penalties. */
void gf_sampler_accept(struct gf_sampler *s, int token);

struct gf_logprob {
    int token;
    float logprob;
};

/* Picks a token from logits[0..n_vocab) (modified in place: penalties applied). When lp is not
 * NULL, *lp gets the chosen token's log-probability under the penalized distribution at
 * temperature 1, and top[0..n_top) the n_top most likely tokens (n_top <= 20). */
int gf_sampler_sample(struct gf_sampler *s, float *logits, struct gf_logprob *lp,
                      struct gf_logprob *top, int n_top);

/* The generator, exposed for tests: a uniform float in [0, 1). */
float gf_sampler_uniform(struct gf_sampler *s);

#endif
