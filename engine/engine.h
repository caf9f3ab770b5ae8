/* engine.h — the one interface through which the gateway asks for a generation.
 *
 * An engine takes a chat or completion request and delivers text incrementally through a
 * callback, then exactly one final event (done or error), unless the request is cancelled
 * first, after which it delivers nothing more. Two backends implement struct gf_engine_ops:
 * the embedded Llama engine (engine/llama*.c) and the upstream engine that forwards to an
 * OpenAI-compatible server (engine/upstream*.c). The gateway never knows which one it holds.
 *
 * Threading: every callback runs on the thread that runs the event_base the engine was opened
 * with (the gateway's libevent loop); submit and cancel are called on that thread too. Engines
 * with worker threads post their results back to the loop themselves. */
#ifndef GF_ENGINE_H
#define GF_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

struct event_base;
struct cJSON;

enum gf_gen_kind { GF_GEN_CHAT, GF_GEN_COMPLETION };

/* One chat message. Strings are borrowed from the request, valid until the final event. */
struct gf_chat_msg {
    const char *role;     // "system", "user", "assistant", "tool", ...
    const char *content;  // UTF-8 text; NULL for a message without text (e.g. tool calls)
};

/* Sampling parameters, already range-checked by the gateway. A field that the client did not
 * set holds its OpenAI default (see gf_gen_params_default). */
struct gf_gen_params {
    int max_tokens;            // >= 1, or -1 for "until the context is full"
    double temperature;        // [0, 2]; 0 means greedy
    double top_p;              // (0, 1]
    int top_k;                 // 0 = off
    double min_p;              // [0, 1]; 0 = off
    double frequency_penalty;  // [-2, 2]
    double presence_penalty;   // [-2, 2]
    double repetition_penalty; // (0, 10]; 1 = off (llama.cpp-style)
    uint64_t seed;
    bool has_seed;
    const char *const *stop;   // borrowed; n_stop strings, each non-empty
    size_t n_stop;
    bool logprobs;
    int top_logprobs;          // [0, 20]
    int n;                     // number of choices, >= 1
};

void gf_gen_params_default(struct gf_gen_params *p);

/* A generation request. Everything is borrowed and stays valid until the final event or until
 * gf_engine_cancel returns. */
struct gf_gen_request {
    enum gf_gen_kind kind;
    const char *model;                  // the model id the client asked for (may be NULL)
    const struct gf_chat_msg *messages; // GF_GEN_CHAT
    size_t n_messages;
    const char *prompt;                 // GF_GEN_COMPLETION
    struct gf_gen_params params;
    bool stream;                        // the client streams; engines may still deliver in pieces
    /* The client's request body after gateway checks and input redaction (borrowed). The upstream
     * engine forwards fields it does not interpret (tools, response_format, ...) from it; an engine
     * that cannot honour such a field refuses the request with GF_EUNSUPPORTED naming it. May be NULL. */
    const struct cJSON *body;
    const char *request_id;             // for logs and the upstream's x-request-id
};

enum gf_gen_event_type {
    GF_GEN_EV_DELTA,  // more text (and/or non-text delta fields) for one choice
    GF_GEN_EV_DONE,   // the whole generation ended normally; usage is final
    GF_GEN_EV_ERROR,  // the generation failed; no more events follow
};

struct gf_gen_usage {
    int prompt_tokens;
    int completion_tokens;
    /* The embedded engine's compute time for the request: the forward passes of the steps it
     * took part in (a step shared by several sequences counts whole for each) and its own
     * sampling. 0 when unknown (the upstream engine). The gateway reports it in the reply's
     * Server-Timing header, so the time spent outside the model can be measured. */
    uint64_t engine_ns;
};

/* The log-probability of one generated token (requests with logprobs): its bytes (a piece of
 * text, not necessarily whole UTF-8 characters) and log-probability under the distribution
 * it was drawn from (penalties applied, temperature 1), with the n_top most likely tokens of
 * that step (top_logprobs; OpenAI allows up to 20). */
struct gf_gen_top_logprob {
    const char *token;
    size_t len;
    float logprob;
};

#define GF_GEN_MAX_TOP_LOGPROBS 20

struct gf_gen_logprob {
    const char *token;
    size_t len;
    float logprob;
    int n_top;
    struct gf_gen_top_logprob top[GF_GEN_MAX_TOP_LOGPROBS];
};

/* An event. Pointers are borrowed for the duration of the callback only. */
struct gf_gen_event {
    enum gf_gen_event_type type;
    int index;                  // choice index (DELTA, and DONE per choice: see finish_reason)
    const char *text;           // DELTA: new text, whole UTF-8 characters only; may be empty
    size_t len;
    int n_tokens;               // DELTA: completion tokens this delta covers (0 if unknown)
    const char *role;           // DELTA: set on a choice's first delta when known ("assistant")
    /* DELTA: a JSON object (text) with delta fields other than content/role that an upstream
     * sent, e.g. {"tool_calls":[...]}, to be re-emitted unchanged; NULL if none. */
    const char *extra_json;
    /* DELTA with choice_done, or DONE: "stop", "length", "tool_calls", "content_filter". */
    const char *finish_reason;
    bool choice_done;           // DELTA: this choice has finished (finish_reason is set)
    /* DELTA: the tokens generated since the previous delta of this choice, in order, when the
     * request asked for logprobs (the embedded engine); NULL/0 otherwise. */
    const struct gf_gen_logprob *logprobs;
    int n_logprobs;
    struct gf_gen_usage usage;  // DONE; for ERROR, what was consumed so far
    const char *model;          // DONE: the model that answered (may be NULL)
    int err_code;               // ERROR: GF_E* code
    const char *err_msg;        // ERROR: one line, safe to show to the client
    int http_status;            // ERROR: suggested status (400, 502, 503, 504, ...)
    const char *err_param;      // ERROR: the request field at fault, or NULL
};

typedef void (*gf_gen_event_fn)(void *ud, const struct gf_gen_event *ev);

struct gf_engine;
struct gf_gen;  // one in-flight generation, owned by the engine

struct gf_engine_ops {
    const char *name;
    /* Starts a generation. On success stores a handle in *out and returns 0; events follow on
     * the loop, never from inside submit. On failure returns a GF_E* code with err set and
     * delivers no event. */
    int (*submit)(struct gf_engine *e, const struct gf_gen_request *req, gf_gen_event_fn cb,
                  void *ud, struct gf_gen **out, struct gf_err *err);
    /* Cancels g: no callback runs after this returns, and the engine frees its resources
     * (the slot at the next step, the upstream transfer). g is invalid afterwards. Must not be
     * called after the final event. */
    void (*cancel)(struct gf_engine *e, struct gf_gen *g);
    /* True when the engine can take requests (model loaded, an upstream healthy). */
    bool (*ready)(struct gf_engine *e);
    /* The model ids served, borrowed until the engine is closed; returns how many. */
    size_t (*models)(struct gf_engine *e, const char *const **ids);
    /* Counts the tokens text would take as a prompt. Exact for the embedded engine; the upstream
     * engine estimates (and says so by returning 1 in *estimated). */
    int (*count_tokens)(struct gf_engine *e, const char *text, size_t len, int *count,
                        bool *estimated);
    void (*close)(struct gf_engine *e);
};

struct gf_engine {
    const struct gf_engine_ops *ops;
    void *impl;
};

/* Thin wrappers over the ops, so callers read naturally. */
int gf_engine_submit(struct gf_engine *e, const struct gf_gen_request *req, gf_gen_event_fn cb,
                     void *ud, struct gf_gen **out, struct gf_err *err);
void gf_engine_cancel(struct gf_engine *e, struct gf_gen *g);
bool gf_engine_ready(struct gf_engine *e);
size_t gf_engine_models(struct gf_engine *e, const char *const **ids);
int gf_engine_count_tokens(struct gf_engine *e, const char *text, size_t len, int *count,
                           bool *estimated);
/* Closes e and frees it; NULL is a no-op. Generations still running are cancelled first. */
void gf_engine_close(struct gf_engine *e);

/* ---- upstream engine (engine/upstream*.c) ---------------------------------------------- */

struct gf_upstream_config {
    const char *const *urls;   // base URLs, e.g. "http://127.0.0.1:8081" (the "/v1" is added)
    size_t n_urls;
    const char *api_key;       // sent as Authorization: Bearer to every upstream; may be NULL
    const char *const *models; // model ids to advertise; NULL/0 = ask the upstreams' /v1/models
    size_t n_models;
    int connect_timeout_ms;    // 0 = 5000
    int request_timeout_ms;    // whole request; streams: time without any byte from upstream;
                               // 0 = 600000. Past it the generation ends with ERROR 504.
    int health_interval_ms;    // GET /v1/models every so often; 0 = only once at open
    size_t max_response_bytes; // cap on a non-streamed upstream body and on one stream event;
                               // 0 = 16 MiB
    const char *model;         // sent upstream as "model" instead of the client's; NULL = keep
    /* Benchmarks only: turns off the TCP_QUICKACK workaround, to measure the ~40 ms stall that
     * Nagle on the upstream plus our delayed ACK cost on a kept-alive connection. */
    bool no_quickack;
    /* Every transfer through libcurl. Otherwise plain http:// URLs (without user, query or
     * fragment) use the engine's own HTTP/1.1 client, which costs the loop a third less per
     * request (docs/gateway.md); https:// and other URLs always go through libcurl. */
    bool curl_only;
};

/* Opens the upstream engine on base (which must outlive it); cfg and its strings are copied.
 * Returns 0 with *out set, or GF_EINVAL (bad URL, negative timeout; err names the key) or
 * GF_ENOMEM. Requests go round-robin over the healthy URLs and fail over to the next URL on a
 * connect error while nothing has reached the client yet. ready() is true once an upstream
 * answered GET /v1/models with 200 (or, without periodic checks, until one fails to connect).
 * models(): the configured ids, else the ids the upstreams' /v1/models listed (the array and
 * strings stay valid until close). Errors: 502 (cannot connect, bad or cut reply, upstream 5xx or
 * 401/403), 504 (timeout), and an upstream's 4xx (400, 404, 429, ...) with its message.
 * gf_engine_close must not be called from inside an event callback. */
int gf_engine_upstream_open(struct event_base *base, const struct gf_upstream_config *cfg,
                            struct gf_engine **out, struct gf_err *err);

/* ---- embedded engine (engine/llama*.c) ------------------------------------------------- */

struct gf_llama_config {
    const char *model_path;    // a GGUF file
    const char *model_id;      // id to advertise; NULL = derived from the file name
    int n_ctx;                 // 0 = the model's context_length
    int n_threads;             // 0 = number of cores
    int max_seqs;              // concurrent sequences decoded together (continuous batching)
    const char *chat_template; // NULL/"auto" = recognized from the GGUF, or "llama2", "chatml", "zephyr"
};

int gf_engine_llama_open(struct event_base *base, const struct gf_llama_config *cfg,
                         struct gf_engine **out, struct gf_err *err);

/* ---- synthetic models (engine/llama_synth.c) ------------------------------------------- */

/* Writes a random-weight Llama GGUF (sigma 0.02, seeded: the same seed gives the same file) of a
 * named shape ("tiny", "stories110m", "tinyllama") and tensor type ("f32", "f16", "q8_0",
 * "q4_0") to out_path, atomically. vocab_path: a GGUF whose tokenizer.* keys are copied (the
 * Llama 2 vocabulary), or NULL for a small generated vocabulary. Returns 0 or a GF_E* code with
 * err set. */
int gf_llama_synth(const char *shape, const char *type, uint64_t seed, const char *vocab_path,
                   const char *out_path, struct gf_err *err);
/* "tiny, stories110m, tinyllama": the shape names, for usage messages. */
const char *gf_llama_synth_shapes(void);

/* The model `gardefou serve` uses when given neither --model nor an upstream. */
#define GF_LLAMA_DEFAULT_MODEL "gardefou-synthetic-tiny.gguf"
/* Stores in *path (caller frees with gf_free) models_dir/GF_LLAMA_DEFAULT_MODEL, creating the
 * directory and the tiny synthetic model (with a warning in the log that its text is
 * meaningless) when it does not exist yet. Returns 0 or a GF_E* code with err set. */
int gf_llama_default_model(const char *models_dir, char **path, struct gf_err *err);

#endif
