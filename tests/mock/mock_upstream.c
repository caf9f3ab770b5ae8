/* mock_upstream.c — a scripted OpenAI-compatible server for tests and benchmarks.
 *
 * usage: mock_upstream [--port P] [--host H] [--models a,b] [--api-key K] [--nagle]
 *   --port 0 (the default) binds a free port; the chosen port is printed as "port=N" on one
 *   line of stdout, then stdout is flushed, before the first request is accepted.
 *   --models   ids listed by GET /v1/models (default "mock-model")
 *   --api-key  require "Authorization: Bearer K" on /v1/chat/completions and /v1/completions
 *              (401 with llama.cpp's error JSON otherwise); /v1/models and /health stay open
 *   --nagle    every connection behaves like the nagle option below
 *
 * Routes: POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health,
 * GET /mock/stats ({"requests","connections","open"}), POST /mock/down and POST /mock/up
 * (while down, /health and /v1/models answer 503). HTTP/1.1 keep-alive; request bodies need
 * Content-Length.
 *
 * The reply is scripted per request by a comma-separated option list, taken from the request
 * header "x-mock" when present, else from the body's "model" (so it works through a gateway that
 * forwards the model), e.g. model "echo", "tokens=50,delay=10", "status=429", "cut=2":
 *   (none)      normal reply "Hello from the mock upstream." (stream: one chunk per word)
 *   echo        the reply text is a JSON object {"method","path","headers":{lowercased},"body"}
 *               with the raw request body, so tests can check pass-through fields and that no
 *               client credential reached the upstream
 *   tokens=N    the reply is N words "w1 w2 ..." (N <= 100000)
 *   delay=MS    wait MS between stream chunks (slow); hdelay=MS waits before the headers
 *   cut=N       truncated: stream: close the connection after N content chunks, without the
 *               final chunk or [DONE]; non-stream: send the headers and half the body, then close
 *   status=C    answer HTTP C with an OpenAI error JSON {"error":{"message","type","param","code"}}
 *   hang        read the request and never answer
 *   badjson     200 with an invalid JSON body (stream: a data event with invalid JSON)
 *   tools       the reply is a tool call (message.tool_calls / delta.tool_calls), finish
 *               "tool_calls"
 *   length      finish_reason "length" instead of "stop"
 *   nousage     never send usage, even when stream_options.include_usage is set
 *   nostream    answer with one JSON reply even when the request asks to stream
 *   nagle       llama.cpp server's behaviour: TCP_NODELAY off on this connection and the
 *               headers and the body written with separate write() calls
 *   close       "Connection: close" on the reply (not streamed), and the connection closed
 *               after it
 *   dropnext    the next request on this connection gets no answer: the connection is closed
 *               (a server's keep-alive timeout firing as the request arrives)
 * Streams use chunked transfer encoding, OpenAI chunk objects, a usage chunk when the request
 * sets stream_options.include_usage, and "data: [DONE]". "n" in the body (<= 8) gives n choices.
 * "logprobs" in the body (chat: true with "top_logprobs" N; completions: N) adds OpenAI logprobs
 * per piece: logprob -(i+1)/8, N alternatives of which the first is the piece itself.
 * Invariant: one request is answered at a time per connection, in order. */
#include "mock_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

static struct event_base *base;
struct mock_state mock_state;
static struct conn *conns;

static void conn_free(struct conn *c);
static void run_steps(struct conn *c);
static void try_parse(struct conn *c);

static void die(const char *what)
{
    fprintf(stderr, "mock_upstream: %s: %s\n", what, strerror(errno));
    exit(1);
}

void mock_oom(void)
{
    fprintf(stderr, "mock_upstream: out of memory\n");
    exit(1);
}

void mock_add_step(struct conn *c, enum step_kind kind, long delay_ms, const char *data,
                   size_t len)
{
    if (c->n_steps == c->cap_steps) {
        size_t cap = c->cap_steps ? c->cap_steps * 2 : 16;
        struct step *s = gf_realloc(c->steps, cap * sizeof(*s));
        if (s == NULL)
            mock_oom();
        c->steps = s;
        c->cap_steps = cap;
    }
    struct step *s = &c->steps[c->n_steps++];
    s->kind = kind;
    s->delay_ms = delay_ms;
    s->data = NULL;
    s->len = len;
    if (len) {
        s->data = gf_malloc(len);
        if (s->data == NULL)
            mock_oom();
        memcpy(s->data, data, len);
    }
}

static void clear_steps(struct conn *c)
{
    for (size_t i = 0; i < c->n_steps; i++)
        gf_free(c->steps[i].data);
    c->n_steps = 0;
    c->cur = 0;
}

/* Splits s at the first "\r\n" (or the end): returns the line and moves *s past it. */
static char *next_line(char **s)
{
    char *line = *s;
    if (line == NULL || *line == '\0')
        return NULL;
    char *eol = strstr(line, "\r\n");
    if (eol) {
        *eol = '\0';
        *s = eol + 2;
    } else {
        *s = line + strlen(line);
    }
    return line;
}

/* Parses the complete request at the start of c->in (have_request said there is one) and
 * starts its response. */
static void try_parse(struct conn *c)
{
    char *end = strstr(c->in.data, "\r\n\r\n");
    if (end == NULL) {  // only when the head is over MAX_HEAD
        conn_free(c);
        return;
    }
    size_t head_len = (size_t)(end - c->in.data) + 4;
    struct request r = {0};
    end[2] = '\0';  // the head becomes a string; the body follows at head_len
    char *cur = c->in.data;
    char *line = next_line(&cur);
    if (line == NULL || sscanf(line, "%15s %255s", r.method, r.path) != 2) {
        conn_free(c);
        return;
    }
    long clen = 0;
    for (char *h = next_line(&cur); h; h = next_line(&cur)) {
        char *colon = strchr(h, ':');
        if (colon == NULL || r.n_headers == MAX_HEADERS)
            continue;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        r.hname[r.n_headers] = h;
        r.hval[r.n_headers++] = v;
        if (strcasecmp(h, "content-length") == 0)
            clen = mock_opt_num(v, MAX_BODY);
    }
    r.body = c->in.data + head_len;
    r.body_len = (size_t)clen;
    c->busy = true;
    mock_handle(c, &r);
    gf_buf_consume(&c->in, head_len + (size_t)clen);
    run_steps(c);
}

/* True when c->in holds a whole request (head and Content-Length body). */
static bool have_request(struct conn *c)
{
    if (c->in.len == 0)
        return false;
    const char *end = strstr(c->in.data, "\r\n\r\n");
    if (end == NULL)
        return c->in.len > MAX_HEAD;  // let try_parse drop it
    size_t head_len = (size_t)(end - c->in.data) + 4;
    long clen = 0;
    for (const char *p = c->in.data; p < end; p++) {
        if ((p == c->in.data || p[-1] == '\n') && strncasecmp(p, "content-length:", 15) == 0) {
            const char *v = p + 15;
            while (*v == ' ')
                v++;
            char num[24];
            size_t k = 0;
            while (k + 1 < sizeof(num) && v[k] >= '0' && v[k] <= '9') {
                num[k] = v[k];
                k++;
            }
            num[k] = '\0';
            clen = mock_opt_num(num, MAX_BODY);
        }
    }
    return c->in.len >= head_len + (size_t)clen;
}

/* ---- the connection's write script ---------------------------------------------------- */

static bool flush_out(struct conn *c)
{
    while (c->out.len) {
        ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
        if (n > 0) {
            gf_buf_consume(&c->out, (size_t)n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(c->wev, NULL);
            return false;
        }
        conn_free(c);
        return false;
    }
    return true;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    c->steps[c->cur].delay_ms = 0;
    run_steps(c);
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct conn *c = arg;
    if (flush_out(c))
        run_steps(c);
}

/* Runs the script from c->cur until it must wait (timer or a full socket) or ends. */
static void run_steps(struct conn *c)
{
    while (c->cur < c->n_steps) {
        struct step *s = &c->steps[c->cur];
        if (s->delay_ms > 0) {
            struct timeval tv = {s->delay_ms / 1000, (s->delay_ms % 1000) * 1000};
            evtimer_add(c->timer, &tv);
            return;
        }
        if (s->kind == STEP_CUT) {
            conn_free(c);
            return;
        }
        if (s->kind == STEP_END) {
            clear_steps(c);
            c->busy = false;
            if (c->close_after) {
                shutdown(c->fd, SHUT_WR);
                conn_free(c);
                return;
            }
            if (!c->hanging && have_request(c))
                try_parse(c);
            return;
        }
        if (gf_buf_append(&c->out, s->data, s->len) != 0)
            mock_oom();
        c->cur++;
        if (!flush_out(c))
            return;
    }
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    char buf[16384];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        conn_free(c);
        return;
    }
    if (n < 0)
        return;
    if (gf_buf_append(&c->in, buf, (size_t)n) != 0) {
        conn_free(c);
        return;
    }
    if (!c->busy && !c->hanging && have_request(c))
        try_parse(c);
}

static void conn_free(struct conn *c)
{
    event_free(c->rev);
    event_free(c->wev);
    event_free(c->timer);
    close(c->fd);
    clear_steps(c);
    gf_free(c->steps);
    gf_buf_cleanup(&c->in);
    gf_buf_cleanup(&c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    gf_free(c);
    mock_state.n_open--;
}

static void accept_cb(evutil_socket_t lfd, short what, void *arg)
{
    (void)what;
    (void)arg;
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (!mock_state.all_nagle) {
        int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    }
    struct conn *c = gf_calloc(1, sizeof(*c));
    if (c == NULL)
        mock_oom();
    c->fd = fd;
    gf_buf_init(&c->in, MAX_HEAD + MAX_BODY);
    gf_buf_init(&c->out, 128 * 1024 * 1024);
    c->rev = event_new(base, fd, EV_READ | EV_PERSIST, read_cb, c);
    c->wev = event_new(base, fd, EV_WRITE, write_cb, c);
    c->timer = evtimer_new(base, timer_cb, c);
    if (c->rev == NULL || c->wev == NULL || c->timer == NULL)
        mock_oom();
    event_add(c->rev, NULL);
    c->next = conns;
    if (conns)
        conns->prev = c;
    conns = c;
    mock_state.n_connections++;
    mock_state.n_open++;
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    event_base_loopbreak(base);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: mock_upstream [--port P] [--host H] [--models a,b] [--api-key K] "
               "[--nagle]\n(see the top of tests/mock/mock_upstream.c for the reply options)\n");
}

int main(int argc, char **argv)
{
    gf_json_init();
    const char *host = "127.0.0.1";
    long port = 0;
    const char *models = "mock-model";
    for (int i = 1; i < argc; i++) {
        bool has_val = i + 1 < argc;
        if (strcmp(argv[i], "--port") == 0 && has_val)
            port = mock_opt_num(argv[++i], 65535);
        else if (strcmp(argv[i], "--host") == 0 && has_val)
            host = argv[++i];
        else if (strcmp(argv[i], "--models") == 0 && has_val)
            models = argv[++i];
        else if (strcmp(argv[i], "--api-key") == 0 && has_val)
            mock_state.api_key = argv[++i];
        else if (strcmp(argv[i], "--nagle") == 0)
            mock_state.all_nagle = true;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    // The model list: split a copy of --models on commas.
    char *mcopy = gf_strdup(models);
    if (mcopy == NULL)
        mock_oom();
    mock_state.model_ids = gf_calloc(strlen(models) + 1, sizeof(*mock_state.model_ids));
    if (mock_state.model_ids == NULL)
        mock_oom();
    for (char *t = mcopy, *next; t && *t; t = next) {
        next = strchr(t, ',');
        if (next)
            *next++ = '\0';
        if (*t)
            mock_state.model_ids[mock_state.n_model_ids++] = t;
    }

    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0)
        die("socket");
    int on = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "mock_upstream: --host: not an IPv4 address: %s\n", host);
        return 2;
    }
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        die("bind");
    if (listen(lfd, 512) != 0)
        die("listen");
    socklen_t sl = sizeof(sa);
    if (getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0)
        die("getsockname");
    printf("port=%d\n", ntohs(sa.sin_port));
    fflush(stdout);

    base = event_base_new();
    if (base == NULL)
        mock_oom();
    struct event *lev = event_new(base, lfd, EV_READ | EV_PERSIST, accept_cb, NULL);
    struct event *sterm = evsignal_new(base, SIGTERM, signal_cb, NULL);
    struct event *sint = evsignal_new(base, SIGINT, signal_cb, NULL);
    if (lev == NULL || sterm == NULL || sint == NULL)
        mock_oom();
    event_add(lev, NULL);
    event_add(sterm, NULL);
    event_add(sint, NULL);
    event_base_dispatch(base);
    while (conns)
        conn_free(conns);
    event_free(lev);
    event_free(sterm);
    event_free(sint);
    event_base_free(base);
    close(lfd);
    gf_free(mock_state.model_ids);
    gf_free(mcopy);
    return 0;
}
