/* upstream_native.c — the upstream engine's own HTTP/1.1 client, for plain http:// targets.
 * libcurl formats each request line and header a byte at a time, checks a kept-alive
 * connection with two poll() calls per transfer and runs its whole state machine for a request
 * that is one writev and, most often, one read: about a third of the loop thread's work per
 * proxied request (docs/gateway.md). Here a request is a head built from a prepared prefix plus
 * the body in one sendmsg, and the reply goes through an incremental parser (upstream_h1.c)
 * straight into the generation's reply handling, on the same loop, with no thread and no
 * blocking call. libcurl still serves https:// and URLs with credentials, resolves host names
 * (its health check's address is reused here) and runs the health checks.
 *
 * Invariants: a connection serves one generation at a time (no pipelining) and goes back to its
 * target's idle list only after a complete reply that allows it, with nothing extra read and
 * the whole request written; every other end closes it. No event reaches the gateway from
 * inside gf_up_native_start: failures found there are reported from the loop. */
#include "engine/upstream_engine_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "engine/upstream_h1.h"

#define READ_CHUNK 16384

struct gf_up_conn {
    struct gf_up *u;
    struct gf_up_target *t;
    struct gf_up_conn *next;  // in t->idle
    struct gf_gen *g;         // the generation it serves; NULL while idle
    int fd;
    struct event *rev;        // EV_READ, registered for the connection's whole life
    struct event *wev;        // EV_WRITE, while connecting or while the request waits for room
    struct event *ctimer;     // connect deadline
    bool connecting, wev_added, reused;
    CURLcode pending;         // a failure found while starting, reported from wev
    struct gf_buf head;       // the request head
    size_t out_off;           // bytes of head + body written
    struct gf_h1_resp resp;
};

static void conn_free(struct gf_up_conn *c)
{
    if (c->rev)
        event_free(c->rev);
    if (c->wev)
        event_free(c->wev);
    if (c->ctimer)
        event_free(c->ctimer);
    if (c->fd >= 0)
        close(c->fd);
    gf_buf_cleanup(&c->head);
    gf_free(c);
}

static void stop_write(struct gf_up_conn *c)
{
    if (c->wev_added) {
        event_del(c->wev);
        c->wev_added = false;
    }
}

static void idle_unlink(struct gf_up_conn *c)
{
    for (struct gf_up_conn **p = &c->t->idle; *p != NULL; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            c->u->n_idle--;
            return;
        }
    }
}

/* Detaches c from its generation; closes it unless keep is true and the pool has room. */
static void conn_release(struct gf_up_conn *c, bool keep)
{
    struct gf_up *u = c->u;
    if (c->g != NULL)
        c->g->conn = NULL;
    c->g = NULL;
    stop_write(c);
    if (!keep || u->n_idle >= GF_UP_IDLE_CONNECTIONS) {
        conn_free(c);
        return;
    }
    if (c->head.cap > 4096)
        gf_buf_cleanup(&c->head);
    c->next = c->t->idle;
    c->t->idle = c;
    u->n_idle++;
}

/* Ends g's attempt on its connection with rc: the connection is closed, and a connect failure
 * makes a learned address be looked up again by libcurl. */
static void fail(struct gf_up_conn *c, CURLcode rc)
{
    struct gf_gen *g = c->g;
    if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT)
        if (!c->t->addr_literal)
            c->t->have_addr = false;
    conn_release(c, false);
    gf_up_gen_finish(g, rc);
}

static void read_cb(evutil_socket_t fd, short what, void *arg);
static void write_cb(evutil_socket_t fd, short what, void *arg);
static void connect_timeout_cb(evutil_socket_t fd, short what, void *arg);

/* A new connection to t, connecting. NULL with errno set when no socket could be made. */
static struct gf_up_conn *conn_open(struct gf_up *u, struct gf_up_target *t, CURLcode *now)
{
    *now = CURLE_OK;
    struct gf_up_conn *c = gf_calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->u = u;
    c->t = t;
    c->fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    gf_buf_init(&c->head, 64 * 1024);
    if (c->fd < 0) {
        conn_free(c);
        return NULL;
    }
    int on = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
    if (!u->no_quickack)
        gf_up_quickack(c->fd);
    c->rev = event_new(u->base, c->fd, EV_READ | EV_PERSIST, read_cb, c);
    c->wev = event_new(u->base, c->fd, EV_WRITE | EV_PERSIST, write_cb, c);
    c->ctimer = evtimer_new(u->base, connect_timeout_cb, c);
    if (c->rev == NULL || c->wev == NULL || c->ctimer == NULL || event_add(c->rev, NULL) != 0) {
        conn_free(c);
        errno = ENOMEM;
        return NULL;
    }
    if (connect(c->fd, (const struct sockaddr *)&t->addr, t->addr_len) == 0)
        return c;
    if (errno != EINPROGRESS) {
        *now = CURLE_COULDNT_CONNECT;  // reported from the loop, like any other failure
        return c;
    }
    c->connecting = true;
    struct timeval tv = {u->connect_ms / 1000, (u->connect_ms % 1000) * 1000};
    if (evtimer_add(c->ctimer, &tv) != 0) {
        conn_free(c);
        errno = ENOMEM;
        return NULL;
    }
    return c;
}

static int want_write(struct gf_up_conn *c)
{
    if (c->wev_added)
        return 0;
    if (event_add(c->wev, NULL) != 0)
        return GF_ENOMEM;
    c->wev_added = true;
    return 0;
}

/* Writes what is left of the request. CURLE_OK when written or waiting for room. */
static CURLcode send_request(struct gf_up_conn *c)
{
    struct gf_gen *g = c->g;
    size_t hl = c->head.len, total = hl + g->body_len;
    while (c->out_off < total) {
        struct iovec iov[2];
        int k = 0;
        if (c->out_off < hl)
            iov[k++] = (struct iovec){c->head.data + c->out_off, hl - c->out_off};
        size_t boff = c->out_off > hl ? c->out_off - hl : 0;
        if (g->body_len > boff)
            iov[k++] = (struct iovec){g->body + boff, g->body_len - boff};
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)k};
        ssize_t w = sendmsg(c->fd, &m, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return want_write(c) == 0 ? CURLE_OK : CURLE_OUT_OF_MEMORY;
        if (w < 0)
            return CURLE_SEND_ERROR;
        c->out_off += (size_t)w;
    }
    stop_write(c);
    return CURLE_OK;
}

/* The request head: the target's prepared prefix, the request id, the body length. */
static int build_head(struct gf_up_conn *c, struct gf_gen *g)
{
    struct gf_up_target *t = c->t;
    int k = g->kind == GF_GEN_CHAT ? 0 : 1, st = g->stream ? 1 : 0;
    struct gf_buf *b = &c->head;
    gf_buf_reset(b);
    if (gf_buf_append(b, t->nat_head[k][st], t->nat_head_len[k][st]) != 0)
        return GF_ENOMEM;
    if (g->rid[0] != '\0' &&
        (gf_buf_puts(b, g->rid) != 0 || gf_buf_append(b, "\r\n", 2) != 0))
        return GF_ENOMEM;
    if (gf_buf_append(b, "Content-Length: ", 16) != 0 ||
        gf_buf_put_i64(b, (int64_t)g->body_len) != 0 || gf_buf_append(b, "\r\n\r\n", 4) != 0)
        return GF_ENOMEM;
    return 0;
}

/* Puts g on connection c and sends (or queues) its request. */
static int attach(struct gf_up_conn *c, struct gf_gen *g, CURLcode now)
{
    c->g = g;
    g->conn = c;
    c->out_off = 0;
    c->pending = now;
    gf_h1_resp_init(&c->resp, false);
    if (build_head(c, g) != 0)
        return GF_ENOMEM;
    if (now == CURLE_OK && !c->connecting)
        c->pending = send_request(c);
    else if (now == CURLE_OK && want_write(c) != 0)
        return GF_ENOMEM;  // connecting: writable once connected
    if (c->pending != CURLE_OK)
        event_active(c->wev, EV_WRITE, 1);  // reported from the loop, not from inside submit
    return 0;
}

/* A kept-alive connection that the server had closed (it answered nothing): the request goes
 * again on a new connection, once. The server never saw it, so sending it again is safe. */
static bool retry_fresh(struct gf_up_conn *c)
{
    struct gf_gen *g = c->g;
    if (!c->reused || g->native_retried || g->got_bytes || c->resp.head_bytes > 0)
        return false;
    g->native_retried = true;
    conn_release(c, false);
    CURLcode now;
    struct gf_up_conn *n = conn_open(g->u, &g->u->targets[g->target], &now);
    if (n == NULL) {
        gf_up_gen_finish(g, CURLE_COULDNT_CONNECT);
        return true;
    }
    if (attach(n, g, now) != 0) {
        conn_release(n, false);
        gf_up_gen_finish(g, CURLE_OUT_OF_MEMORY);
    }
    return true;
}

/* Whether the non-blocking connect on fd ended in an error. */
static bool connect_failed(int fd)
{
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    return getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0;
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct gf_up_conn *c = arg;
    if (c->g == NULL) {
        stop_write(c);
        return;
    }
    CURLcode rc = c->pending;
    c->pending = CURLE_OK;
    if (rc == CURLE_OK && c->connecting) {
        if (connect_failed(fd)) {
            rc = CURLE_COULDNT_CONNECT;
        } else {
            c->connecting = false;
            evtimer_del(c->ctimer);
        }
    }
    if (rc == CURLE_OK)
        rc = send_request(c);
    if (rc == CURLE_SEND_ERROR && retry_fresh(c))
        return;
    if (rc != CURLE_OK)
        fail(c, rc);
}

static void connect_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gf_up_conn *c = arg;
    if (c->g != NULL)
        fail(c, CURLE_OPERATION_TIMEDOUT);
}

static int body_cb(void *ud, const char *p, size_t n)
{
    struct gf_up_conn *c = ud;
    gf_up_gen_head(c->g, c->resp.status, c->resp.ctype);
    return gf_up_gen_body(c->g, p, n) ? 0 : GF_ECANCELED;
}

/* The reply is complete: the connection goes back to the pool when it may, then g finishes. */
static void reply_done(struct gf_up_conn *c, bool extra)
{
    struct gf_gen *g = c->g;
    gf_up_gen_head(g, c->resp.status, c->resp.ctype);
    bool keep = c->resp.keep_alive && !extra && !c->wev_added &&
                c->out_off == c->head.len + g->body_len;
    conn_release(c, keep);
    gf_up_gen_finish(g, CURLE_OK);
}

static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct gf_up_conn *c = arg;
    struct gf_gen *g = c->g;
    char buf[READ_CHUNK];
    if (g == NULL) {
        // Idle: the server closed it (or sent what nobody asked for). Either way it is done.
        idle_unlink(c);
        conn_free(c);
        return;
    }
    if (c->connecting) {
        if (connect_failed(fd)) {
            fail(c, CURLE_COULDNT_CONNECT);
            return;
        }
        return;  // connected: the write event sends the request
    }
    ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        if (retry_fresh(c))
            return;
        if (n == 0 && gf_h1_resp_eof(&c->resp) == 0 && c->resp.done) {
            reply_done(c, false);
            return;
        }
        fail(c, n < 0 ? CURLE_RECV_ERROR
                : c->resp.head_bytes == 0 ? CURLE_GOT_NOTHING
                : c->resp.head_done ? CURLE_PARTIAL_FILE : CURLE_WEIRD_SERVER_REPLY);
        return;
    }
    g->in_native = true;
    long used = gf_h1_resp_feed(&c->resp, buf, (size_t)n, body_cb, c);
    g->in_native = false;
    if (g->zombie) {
        gf_up_gen_destroy(g);  // cancelled from a callback: closes the connection
        return;
    }
    if (used < 0) {
        fail(c, used == GF_ECANCELED ? CURLE_WRITE_ERROR : CURLE_WEIRD_SERVER_REPLY);
        return;
    }
    if (c->resp.done) {
        reply_done(c, (size_t)used < (size_t)n);
        return;
    }
    if (!c->u->no_quickack)
        gf_up_quickack(fd);  // more is coming: see the delayed-ACK note in upstream_loop.c
}

bool gf_up_native_usable(const struct gf_gen *g)
{
    const struct gf_up_target *t = &g->u->targets[g->target];
    return t->native && t->have_addr;
}

int gf_up_native_start(struct gf_gen *g)
{
    struct gf_up *u = g->u;
    struct gf_up_target *t = &u->targets[g->target];
    CURLcode now = CURLE_OK;
    struct gf_up_conn *c = t->idle;
    if (c != NULL) {
        t->idle = c->next;
        u->n_idle--;
        c->reused = true;
    } else if ((c = conn_open(u, t, &now)) == NULL) {
        return errno == ENOMEM ? GF_ENOMEM : GF_EIO;
    }
    if (attach(c, g, now) != 0) {
        conn_release(c, false);
        return GF_ENOMEM;
    }
    return 0;
}

void gf_up_native_abort(struct gf_gen *g)
{
    if (g->conn != NULL)
        conn_release(g->conn, false);
}

/* Parses "a.b.c.d" or an IPv6 literal (brackets removed) with port into t->addr. */
static bool set_addr(struct gf_up_target *t, const char *host, long port)
{
    struct sockaddr_in *a4 = (struct sockaddr_in *)&t->addr;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&t->addr;
    memset(&t->addr, 0, sizeof(t->addr));
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        t->addr_len = sizeof(*a4);
        return true;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        t->addr_len = sizeof(*a6);
        return true;
    }
    return false;
}

void gf_up_native_learn(struct gf_up_target *t, CURL *easy)
{
    char *ip = NULL;
    long port = 0;
    if (curl_easy_getinfo(easy, CURLINFO_PRIMARY_IP, &ip) != CURLE_OK || ip == NULL ||
        curl_easy_getinfo(easy, CURLINFO_PRIMARY_PORT, &port) != CURLE_OK || port <= 0 ||
        port > 65535)
        return;
    t->have_addr = set_addr(t, ip, port);
}

/* Whether a URL part is absent (curl_url_get found none). */
static bool absent(CURLU *uh, CURLUPart part)
{
    char *v = NULL;
    CURLUcode rc = curl_url_get(uh, part, &v, 0);
    curl_free(v);
    return rc != CURLUE_OK;
}

static char *url_part(CURLU *uh, CURLUPart part, unsigned flags)
{
    char *v = NULL;
    if (curl_url_get(uh, part, &v, flags) != CURLUE_OK)
        return NULL;
    char *copy = gf_strdup(v);
    curl_free(v);
    return copy;
}

bool gf_up_native_target_init(struct gf_up *u, struct gf_up_target *t)
{
    CURLU *uhs[2] = {t->chat_uh, t->compl_uh};
    if (uhs[0] == NULL || uhs[1] == NULL)
        return true;  // curl's parser refused the URL: libcurl reports it
    char *scheme = url_part(uhs[0], CURLUPART_SCHEME, 0);
    bool plain = scheme != NULL && strcmp(scheme, "http") == 0;
    gf_free(scheme);
    if (!plain || !absent(uhs[0], CURLUPART_USER) || !absent(uhs[0], CURLUPART_PASSWORD) ||
        !absent(uhs[0], CURLUPART_QUERY) || !absent(uhs[0], CURLUPART_FRAGMENT) ||
        !absent(uhs[0], CURLUPART_ZONEID))
        return true;
    char *host = url_part(uhs[0], CURLUPART_HOST, 0);
    char *port_s = url_part(uhs[0], CURLUPART_PORT, CURLU_DEFAULT_PORT);
    char *given_port = url_part(uhs[0], CURLUPART_PORT, 0);
    bool ok = host != NULL && port_s != NULL;
    long port = ok ? strtol(port_s, NULL, 10) : 0;
    if (ok && port > 0 && port <= 65535) {
        // An IPv6 literal comes back in brackets: the Host header keeps them, the address not.
        size_t hl = strlen(host);
        char bare[64];
        if (host[0] == '[' && hl >= 2 && hl - 2 < sizeof(bare)) {
            memcpy(bare, host + 1, hl - 2);
            bare[hl - 2] = '\0';
        } else {
            gf_strlcpy(bare, host, sizeof(bare));
        }
        t->addr_literal = t->have_addr = set_addr(t, bare, port);
        for (int k = 0; ok && k < 2; k++) {
            char *path = url_part(uhs[k], CURLUPART_PATH, 0);
            for (int st = 0; ok && st < 2; st++) {
                struct gf_buf b;
                gf_buf_init(&b, 64 * 1024);
                ok = path != NULL &&
                     gf_buf_printf(&b, "POST %s HTTP/1.1\r\nHost: %s%s%s\r\n%s\r\n"
                                   "Content-Type: application/json\r\nAccept: %s\r\n",
                                   path, host, given_port ? ":" : "",
                                   given_port ? given_port : "", GF_UP_USER_AGENT,
                                   st ? "text/event-stream" : "application/json") == 0 &&
                     (u->auth_header == NULL || gf_buf_puts(&b, u->auth_header) == 0) &&
                     (u->auth_header == NULL || gf_buf_append(&b, "\r\n", 2) == 0);
                t->nat_head_len[k][st] = b.len;
                if (ok)
                    ok = (t->nat_head[k][st] = gf_buf_steal(&b)) != NULL;
                gf_buf_cleanup(&b);
            }
            gf_free(path);
        }
        t->native = ok;
    }
    gf_free(host);
    gf_free(port_s);
    gf_free(given_port);
    return ok;
}

void gf_up_native_target_cleanup(struct gf_up *u, struct gf_up_target *t)
{
    while (t->idle != NULL) {
        struct gf_up_conn *c = t->idle;
        t->idle = c->next;
        u->n_idle--;
        conn_free(c);
    }
    for (int k = 0; k < 2; k++)
        for (int st = 0; st < 2; st++) {
            gf_free(t->nat_head[k][st]);
            t->nat_head[k][st] = NULL;
        }
    t->native = false;
}
