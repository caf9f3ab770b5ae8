/* mock_int.h — what the two files of the mock upstream share: the connection with its write
 * script (mock_upstream.c, the HTTP side) and the scripted replies (mock_replies.c). */
#ifndef GF_MOCK_INT_H
#define GF_MOCK_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "common/common.h"

#define MAX_HEAD    (64 * 1024)
#define MAX_BODY    (16 * 1024 * 1024)
#define MAX_HEADERS 64

struct opts {
    bool echo, hang, badjson, tools, length, nousage, nagle, nostream;
    bool close;     // answer with Connection: close and close after the reply
    bool dropnext;  // the next request on this connection gets no answer: it is closed
    long tokens;  // 0 = the default sentence
    long delay_ms, hdelay_ms;
    long cut;     // -1 = no cut
    long status;  // 0 = 200
};

/* One scripted write: wait delay_ms, write data (its own write() call), then maybe close. */
enum step_kind { STEP_WRITE, STEP_CUT, STEP_END };
struct step {
    enum step_kind kind;
    long delay_ms;
    char *data;
    size_t len;
};

struct conn {
    int fd;
    struct event *rev, *wev, *timer;
    struct gf_buf in;   // bytes read, not yet consumed by a request
    struct gf_buf out;  // bytes of the current step not yet written
    struct step *steps;
    size_t n_steps, cap_steps, cur;
    bool busy;          // a response is in progress
    bool close_after;   // the request said Connection: close (or the reply option close)
    bool drop_next;     // the reply option dropnext was given on this connection
    bool hanging;
    struct conn *prev, *next;  // all open connections, freed at exit
};

struct request {
    char method[16];
    char path[256];
    const char *hname[MAX_HEADERS], *hval[MAX_HEADERS];
    size_t n_headers;
    const char *body;
    size_t body_len;
};

/* Process-wide settings and counters. */
struct mock_state {
    char **model_ids;  // --models
    size_t n_model_ids;
    const char *api_key;  // --api-key, or NULL
    bool all_nagle;       // --nagle
    bool down;            // POST /mock/down until POST /mock/up
    long n_requests, n_connections, n_open;
};
extern struct mock_state mock_state;

/* mock_upstream.c */
void mock_oom(void);
/* Appends one step to c's script: wait delay_ms, then write data (its own write() call), cut
 * the connection or end the response. data is copied. */
void mock_add_step(struct conn *c, enum step_kind kind, long delay_ms, const char *data,
                   size_t len);

/* mock_replies.c */
/* A decimal in [0, max], or 0 for anything else. */
long mock_opt_num(const char *v, long max);
/* Scripts the reply to request r on c. */
void mock_handle(struct conn *c, const struct request *r);

#endif
