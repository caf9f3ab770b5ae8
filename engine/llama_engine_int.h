/* llama_engine_int.h — the embedded engine's shared state between its two sides: the loop side
 * (llama_engine.c: submit, cancel, delivering events on the libevent loop) and the worker
 * (llama_sched.c: one thread that admits requests into sequence slots, runs batched forward
 * passes over all active sequences, samples and turns tokens into text).
 *
 * Ownership: a struct gf_gen is created by submit and freed only on the loop, when the worker
 * has posted its RETIRE message; the worker never touches it after that. Messages carry copies
 * of the text. The mutex guards the queues and the cancelled flags. */
#ifndef GF_LLAMA_ENGINE_INT_H
#define GF_LLAMA_ENGINE_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "engine/engine.h"
#include "engine/llama_int.h"
#include "engine/sampler_int.h"
#include "engine/tokenizer.h"

struct event;

enum msg_kind { MSG_DELTA, MSG_DONE, MSG_ERROR, MSG_RETIRE };

/* A message from the worker to the loop. */
struct msg {
    struct msg *next;
    enum msg_kind kind;
    struct gf_gen *gen;
    char *text;            // DELTA: owned copy (may be NULL when empty)
    size_t len;
    int n_tokens;
    struct gf_gen_logprob *lps; // DELTA: owned, n_lps entries (logprobs requests)
    int n_lps;
    const char *finish;    // static string or NULL
    struct gf_gen_usage usage;
    int err_code;
    char err_msg[160];
};

/* The choices of one request with n > 1: one generation (and one sequence slot) per choice.
 * The caller holds `parent`, a generation that never reaches the worker, so its handle stays
 * valid until the final event whatever order the members retire in; the parent and the group
 * are freed with the last member. Loop side only. */
struct gf_gen_group {
    int n;                 // choices
    int live;              // members not yet freed
    struct gf_gen *parent;
    int n_done;            // members whose DONE arrived
    bool ended;            // the final event (DONE or ERROR) was delivered
    struct gf_gen_usage usage; // prompt counted once, completions summed
    struct gf_gen *members[]; // [n]; NULL once freed
};

struct gf_gen {
    struct gf_gen *next;   // in the engine's incoming queue
    struct gf_gen_group *group; // n > 1 only
    int index;             // choice index
    struct llama_engine *e;
    gf_gen_event_fn cb;    // loop side only
    void *ud;
    atomic_bool cancelled; // set by cancel on the loop; the worker frees the slot at its next step
    bool chat;
    bool role_sent;        // loop side: the first delta carried role "assistant"

    // request, copied at submit (the worker reads it)
    int *prompt;           // [n_prompt] token ids, BOS included when the model wants it
    int n_prompt;
    int max_tokens;        // -1: until the context is full
    struct gf_sampler_params sp;
    char **stop;           // [n_stop] owned copies
    size_t n_stop;
    size_t max_stop;       // longest stop string

    // worker side
    int slot;              // -1 until admitted
    int n_done_prompt;     // prompt tokens already in the cache
    int n_gen;             // tokens generated
    int last;              // the last sampled token
    int since_delta;       // tokens not yet covered by a delta
    struct gf_detok detok; // token ids to whole UTF-8 characters
    struct gf_sampler sampler;
    struct gf_buf raw;     // bytes decoded but not yet sent (cut UTF-8, possible stop prefix)
    int n_top;             // logprobs: -1 = off, else top_logprobs (0-20)
    struct gf_gen_logprob *lps; // tokens not yet covered by a delta (logprobs requests)
    int n_lps, cap_lps;
    uint64_t engine_ns;    // compute time spent for this generation (usage.engine_ns)
};

struct slot {
    struct gf_llm_kv kv;   // allocated on first use, kept
    struct gf_gen *gen;    // NULL when free
};

struct llama_engine {
    struct gf_engine pub;
    struct event_base *base;
    struct event *notify_ev;
    int efd;                       // eventfd the worker writes to wake the loop

    struct gf_llm *model;
    struct gf_tokenizer *tok;
    char *model_id;
    const char *ids[1];
    int chat_template;             // the tokenizer's template id
    int n_ctx, n_threads, max_seqs, max_batch, kv_type;

    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;             // wakes the worker
    bool stop;                     // under mu
    struct gf_gen *incoming;       // under mu: submitted, not yet admitted (FIFO)
    struct gf_gen *incoming_tail;
    struct msg *out, *out_tail;    // under mu: to deliver on the loop

    // worker only
    struct gf_llm_ctx *ctx;
    struct slot *slots;            // [max_seqs]
    float *logits;                 // [max_seqs][n_vocab]
    int *b_token, *b_pos;          // [max_batch]
    struct gf_llm_kv **b_kv;
    bool *b_want;
    int *b_slot;                   // [max_batch] slot of each batch token
};

/* Worker thread entry (llama_sched.c). */
void *gf_llama_worker_main(void *arg);
/* Queues m for the loop and wakes it (llama_engine.c); takes ownership of m. */
void gf_llama_post(struct llama_engine *e, struct msg *m);
/* Frees a generation's request and worker-side state (the loop frees the struct). */
void gf_llama_gen_free(struct gf_gen *g);

#endif
