/* conn.c — client connections: absolute read deadlines, header/body size limits, the
 * connection cap and TCP_NODELAY, on top of evhttp.
 *
 * evhttp's own timeouts are per-read inactivity timers, which a client sending one byte a second
 * extends forever. So each connection gets its own timer with ABSOLUTE deadlines: the request
 * line and headers must arrive within header_timeout_ms of the request's first byte (or of the
 * accept), the body within body_timeout_ms of the end of the headers; past that the client gets
 * 408 and the connection is closed. A watcher on the bufferevent's input buffer sees the bytes
 * before evhttp parses them, finds the end of the headers, counts header bytes (431 past the
 * limit) and reads Content-Length (413 before any body byte is buffered).
 *
 * Interest changes: left alone, evhttp stops reading a connection when its request is complete,
 * enables write interest to send the reply, waits for the loop to report the socket writable,
 * then drops write interest and reads again: three epoll_ctl and an extra loop pass per request.
 * The loop applies interest changes once per pass (cmd_serve.c), so changes that cancel out
 * within one pass cost nothing, and conn.c arranges that they do. Read: while a request is
 * read, `hold`, a second read event on the socket, keeps its read interest when evhttp disables
 * the bufferevent's read; at dispatch the bufferevent reads again (handling callbacks below:
 * a client that goes away is noticed at once) and hold is dropped. Write: `flush` writes the
 * queued reply in the same pass and tells evhttp the write is done, as the bufferevent would.
 *
 * Lifetime: evhttp owns the bufferevent and the evhttp_connection. The gf_conn is created in the
 * bevcb (at accept), registered by an event activated from there, which runs before any I/O of
 * the new connection (same pass of the loop), and freed from the connection's close callback,
 * which evhttp calls when it frees the connection. */
#include "gateway/gateway_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

static void timer_cb(evutil_socket_t fd, short what, void *arg);

#define WATCH_AFTER_MS 50  // a request handled longer than this gets the close watcher

static void arm(struct gf_conn *c, int64_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    event_add(c->timer, &tv);
}

static void scanner_reset(struct gf_conn *c)
{
    const struct gf_config *cfg = c->gw->cfg;
    gf_reqscan_init(&c->scan, (size_t)cfg->max_header_bytes, cfg->max_body_bytes);
}

/* Asks the timer to answer status and close, right after the current callback. The input is
 * dropped so that evhttp does not parse what we refuse. */
static void kill_soon(struct gf_conn *c, struct evbuffer *input, int status)
{
    c->kill_status = status;
    evbuffer_drain(input, evbuffer_get_length(input));
    bufferevent_disable(c->bev, EV_READ);
    event_active(c->timer, EV_TIMEOUT, 1);
}

/* Runs the framing check over len bytes of input from start. A refused request is answered
 * by the timer; the end of the head starts the body deadline. */
static void scan_from(struct gf_conn *c, struct evbuffer *input, size_t start, size_t len)
{
    struct evbuffer_ptr pos;
    if (evbuffer_ptr_set(input, &pos, start, EVBUFFER_PTR_SET) != 0)
        return;
    while (len > 0 && c->kill_status == 0) {
        struct evbuffer_iovec v[8];
        int nv = evbuffer_peek(input, (ev_ssize_t)len, &pos, v, 8);
        if (nv <= 0)
            return;
        size_t done = 0;
        for (int i = 0; i < nv && i < 8 && done < len; i++) {
            size_t take = v[i].iov_len < len - done ? v[i].iov_len : len - done;
            size_t off = 0;
            while (off < take) {
                size_t used = 0;
                int rc = gf_reqscan_feed(&c->scan, (const char *)v[i].iov_base + off,
                                         take - off, &used);
                off += used;
                if (rc == GF_RS_ERROR) {
                    c->kill_reason = c->scan.reason;
                    kill_soon(c, input, c->scan.status);
                    return;
                }
                if (rc == GF_RS_HEAD_DONE && c->state == GF_CONN_HEADERS) {
                    c->state = GF_CONN_BODY;
                    arm(c, c->gw->cfg->body_timeout_ms);
                }
                if (rc == GF_RS_DONE || (rc == GF_RS_HEAD_DONE && !c->scan.chunked))
                    return;  // the rest is body, or the next request (checked when it starts)
                if (used == 0)
                    return;
            }
            done += take;
        }
        len -= done;
        if (len > 0 && evbuffer_ptr_set(input, &pos, done, EVBUFFER_PTR_ADD) != 0)
            return;
    }
}

static void input_cb(struct evbuffer *input, const struct evbuffer_cb_info *info, void *arg)
{
    struct gf_conn *c = arg;
    if (info->n_added == 0 || c->evcon == NULL)
        return;
    if (c->kill_status != 0) {
        evbuffer_drain(input, evbuffer_get_length(input));  // refused: parse nothing more
        return;
    }
    if (c->state != GF_CONN_HANDLING && c->hold != NULL && !event_pending(c->hold, EV_READ, NULL))
        event_add(c->hold, NULL); // merged with the bufferevent's read: no epoll_ctl
    if (c->state == GF_CONN_HANDLING || (c->state == GF_CONN_BODY && !c->scan.chunked))
        return;  // bytes of a body, or of a pipelined request (checked when it starts)
    if (c->state == GF_CONN_IDLE) {
        c->state = GF_CONN_HEADERS;
        scanner_reset(c);
        arm(c, c->gw->cfg->header_timeout_ms);
    }
    size_t len = evbuffer_get_length(input);
    if (info->n_added > len)
        return;
    scan_from(c, input, len - info->n_added, info->n_added);
}

static const char *reason_of(int status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 408:
        return "Request Timeout";
    case 413:
        return "Payload Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 503:
        return "Service Unavailable";
    default:
        return "Error";
    }
}

/* Writes a complete error response straight to the socket (the connection is not in a state
 * where evhttp could send one) and closes the connection. c is freed on return. */
static void answer_and_close(struct gf_conn *c, int status)
{
    struct gf_gateway *gw = c->gw;
    const char *msg = "request refused";
    int code = GF_EINVAL;
    switch (status) {
    case 400:
        msg = c->kill_reason ? c->kill_reason : "malformed request";
        break;
    case 408:
        msg = "the request was not received in time";
        code = GF_ETIMEDOUT;
        gw->metrics.conns_timed_out++;
        break;
    case 413:
        msg = "the request body is larger than limits.max_body_bytes";
        code = GF_ETOOBIG;
        break;
    case 431:
        msg = "the request headers are larger than limits.max_header_bytes";
        code = GF_ETOOBIG;
        break;
    case 503:
        msg = "too many connections";
        code = GF_EAGAIN;
        gw->metrics.conns_refused++;
        break;
    }
    struct gf_http_error he = gf_http_error_of(code);
    he.status = status;
    if (status == 408)
        he = (struct gf_http_error){408, "invalid_request_error", "request_timeout"};
    if (status == 431)
        he.code = "headers_too_large";
    char id[GF_REQID_MAX + 1];
    gf_gateway_new_id(gw, id);
    struct gf_buf body, out;
    gf_buf_init(&body, 4096);
    gf_buf_init(&out, 8192);
    if (gf_http_error_json(&body, &he, msg, NULL) == 0 &&
        gf_buf_printf(&out,
                      "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\nx-request-id: %s\r\n"
                      "%s\r\n%s",
                      status, reason_of(status), body.len, id,
                      status == 503 ? "Retry-After: 1\r\n" : "", body.data) == 0 &&
        c->fd >= 0) {
        // The socket has no pending output here (reading state), so this small write fits.
        ssize_t w = send(c->fd, out.data, out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w;
        shutdown(c->fd, SHUT_WR);
        // Unread input at close makes the kernel send RST, which can destroy the answer in
        // flight; read what is there first.
        char sink[4096];
        for (int i = 0; i < 16 && recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
            ;
    }
    gf_buf_cleanup(&body);
    gf_buf_cleanup(&out);
    gf_metrics_request(&gw->metrics, GF_ROUTE_NONE, status, 0);
    gf_log(GF_LOG_INFO, "http", "req=%s status=%d conn_closed=1 reason=\"%s\"", id, status, msg);
    evhttp_connection_free(c->evcon);  // calls conn_closed, which frees c
}

/* While a request is handled the bufferevent reads only until the first bytes of a pipelined
 * request or a read timeout (handling callbacks below); a client that gives up on a long
 * generation after that would go unnoticed until the reply is written. This watcher peeks: end
 * of file or an error means the client is gone; data (a pipelined request) ends the watch. */
static void watch_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct gf_conn *c = arg;
    char b;
    ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))) {
        if (n > 0)
            event_del(c->watch);
        return;
    }
    evhttp_connection_free(c->evcon);  // calls conn_closed, which ends the request
}

/* Runs only when the socket turned readable while hold was the reason for its read interest
 * (a request that did not reach dispatch yet): the event is one-shot and simply ends. */
static void hold_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* The bufferevent's callbacks from dispatch until evhttp takes the connection back to send the
 * reply. The first bytes of a pipelined request stop the reading, as evhttp would not have read
 * them (they are parsed after this reply); end of file or an error means the client is gone. A
 * read timeout stops the reading too, and the watcher (timer_cb) takes over. */
static void handling_read_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    bufferevent_disable(bev, EV_READ);
}

static void handling_event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct evhttp_connection *evcon = arg; // evhttp's own argument, kept for its write callback
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        evhttp_connection_free(evcon); // calls conn_closed, which ends the request
}

/* What the bufferevent does when the socket is reported writable, done without waiting for
 * it: a client waiting for its reply nearly always has room for it. What does not fit, or an
 * error, is left to the bufferevent as before. The first run only goes back to the end of the
 * loop's queue of active callbacks: those queued meanwhile (the audit completion that sends a
 * stream's last event, say) add their bytes first, and all go out in one write. */
static void flush_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gf_conn *c = arg;
    if (!c->flush_requeued) {
        c->flush_requeued = true;
        event_active(c->flush, EV_TIMEOUT, 1); // runs again in this same pass of the loop
        return;
    }
    c->flush_requeued = false;
    c->flush_armed = false;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    if (!(bufferevent_get_enabled(c->bev) & EV_WRITE) || evbuffer_get_length(out) == 0)
        return;
    if (evbuffer_write(out, c->fd) <= 0 || evbuffer_get_length(out) > 0)
        return;
    bufferevent_disable(c->bev, EV_WRITE);
    bufferevent_trigger(c->bev, EV_WRITE, 0); // evhttp's write callback: may free c
}

void gf_conn_flush_soon(struct gf_conn *c)
{
    if (c != NULL && c->flush != NULL) {
        c->flush_armed = true;
        event_active(c->flush, EV_TIMEOUT, 1);
    }
}

bool gf_conn_join_pending(struct gf_conn *c, struct evbuffer *b)
{
    // evhttp_send_reply_chunk would add the bytes and then set the same callbacks and enable
    // the same interest again, about a thousand instructions a chunk; a stream's chunks of one
    // pass (all of them when the upstream answers at once) need it only for the first.
    if (c == NULL || !c->flush_armed || !(bufferevent_get_enabled(c->bev) & EV_WRITE))
        return false;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    return evbuffer_get_length(out) > 0 && evbuffer_add_buffer(out, b) == 0;
}

static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    struct gf_conn *c = arg;
    struct gf_gateway *gw = c->gw;
    if (c->req != NULL)
        gf_pipeline_client_gone(c->req);
    evbuffer_remove_cb(bufferevent_get_input(c->bev), input_cb, c);
    if (c->fd >= 0 && (size_t)c->fd < gw->conns_cap && gw->conns[c->fd] == c)
        gw->conns[c->fd] = NULL;
    gw->metrics.open_conns--;
    event_free(c->timer);
    if (c->watch)
        event_free(c->watch);
    if (c->hold)
        event_free(c->hold);
    if (c->flush)
        event_free(c->flush);
    gf_free(c);
}

static int track(struct gf_gateway *gw, struct gf_conn *c)
{
    if (c->fd < 0)
        return GF_EINVAL;
    if ((size_t)c->fd >= gw->conns_cap) {
        size_t cap = gw->conns_cap ? gw->conns_cap : 256;
        while (cap <= (size_t)c->fd)
            cap *= 2;
        struct gf_conn **n = gf_realloc(gw->conns, cap * sizeof(*n));
        if (n == NULL)
            return GF_ENOMEM;
        memset(n + gw->conns_cap, 0, (cap - gw->conns_cap) * sizeof(*n));
        gw->conns = n;
        gw->conns_cap = cap;
    }
    gw->conns[c->fd] = c;
    return 0;
}

/* First run of the timer, right after evhttp set the connection up. */
static void do_register(struct gf_conn *c)
{
    struct gf_gateway *gw = c->gw;
    void *arg = NULL;
    bufferevent_getcb(c->bev, NULL, NULL, NULL, &arg);
    c->evcon = arg;
    c->fd = bufferevent_getfd(c->bev);
    if (c->evcon == NULL)
        return;  // cannot happen with libevent 2.1; the connection then stays untracked
    evhttp_connection_set_closecb(c->evcon, conn_closed, c);
    gw->metrics.open_conns++;
    gw->metrics.conns_accepted++;
    int one = 1;
    if (c->fd >= 0) {
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->watch = event_new(gw->base, c->fd, EV_READ | EV_PERSIST, watch_cb, c);
        // without these (no memory) the connection works as plain evhttp does
        c->hold = event_new(gw->base, c->fd, EV_READ, hold_cb, c);
        c->flush = event_new(gw->base, -1, 0, flush_cb, c);
    }
    if (track(gw, c) != 0 || gw->metrics.open_conns > gw->cfg->max_connections) {
        answer_and_close(c, 503);
        return;
    }
    c->state = GF_CONN_HEADERS;
    scanner_reset(c);
    arm(c, gw->cfg->header_timeout_ms);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gf_conn *c = arg;
    if (c->evcon == NULL) {
        do_register(c);
        return;
    }
    if (c->kill_status != 0) {
        answer_and_close(c, c->kill_status);
        return;
    }
    switch (c->state) {
    case GF_CONN_IDLE:
        evhttp_connection_free(c->evcon);  // keep-alive idle: close quietly
        return;
    case GF_CONN_HEADERS:
    case GF_CONN_BODY:
        answer_and_close(c, 408);
        return;
    case GF_CONN_HANDLING:
        if (c->watch != NULL &&
            evbuffer_get_length(bufferevent_get_input(c->bev)) == 0)
            event_add(c->watch, NULL);
        return;
    }
}

struct bufferevent *gf_conn_bevcb(struct event_base *base, void *arg)
{
    struct gf_gateway *gw = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL)
        return NULL;  // evhttp makes its own; this connection goes without our limits
    struct gf_conn *c = gf_calloc(1, sizeof(*c));
    if (c == NULL)
        return bev;
    c->gw = gw;
    c->bev = bev;
    c->fd = -1;
    c->timer = event_new(base, -1, 0, timer_cb, c);
    if (c->timer == NULL || evbuffer_add_cb(bufferevent_get_input(bev), input_cb, c) == NULL) {
        if (c->timer)
            event_free(c->timer);
        gf_free(c);
        return bev;
    }
    // Runs in this same pass of the loop, after evhttp has finished setting up the connection
    // and before any read on it.
    event_active(c->timer, EV_TIMEOUT, 1);
    return bev;
}

struct gf_conn *gf_conn_of(struct gf_gateway *gw, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (evcon == NULL)
        return NULL;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(evcon);
    int fd = bev ? bufferevent_getfd(bev) : -1;
    if (fd < 0 || (size_t)fd >= gw->conns_cap)
        return NULL;
    struct gf_conn *c = gw->conns[fd];
    if (c == NULL || c->evcon != evcon)
        return NULL;
    c->state = GF_CONN_HANDLING;
    // Most requests end within a few milliseconds; only a longer one gets the close watcher,
    // which costs epoll_ctl calls once the bufferevent stopped reading.
    arm(c, WATCH_AFTER_MS);
    if (c->hold != NULL) {
        // evhttp has just disabled reading; reading again in the same pass changes nothing
        // in epoll while hold is still there
        // evhttp's write callback stays, with evhttp's argument (the connection): it still
        // runs for a write evhttp queued before (100 Continue) and ends a direct reply
        bufferevent_data_cb wcb = NULL;
        void *arg = NULL;
        bufferevent_getcb(c->bev, NULL, &wcb, NULL, &arg);
        bufferevent_setcb(c->bev, handling_read_cb, wcb, handling_event_cb, arg);
        bufferevent_enable(c->bev, EV_READ);
        event_del(c->hold);
    }
    return c;
}

void gf_conn_request_done(struct gf_conn *c)
{
    c->req = NULL;
    if (c->watch != NULL)
        event_del(c->watch);
    c->state = GF_CONN_IDLE;
    scanner_reset(c);
    arm(c, c->gw->cfg->idle_timeout_ms);
    // Bytes of a pipelined request that arrived while this one was handled were not checked
    // yet, and evhttp parses them next: check them now.
    struct evbuffer *input = bufferevent_get_input(c->bev);
    size_t len = evbuffer_get_length(input);
    if (len > 0) {
        c->state = GF_CONN_HEADERS;
        arm(c, c->gw->cfg->header_timeout_ms);
        scan_from(c, input, 0, len);
    }
}

bool gf_gateway_idle(const struct gf_gateway *gw)
{
    if (gf_gateway_inflight(gw) > 0)
        return false;
    // A connection stays HANDLING until evhttp reports its reply written (on_complete).
    for (size_t i = 0; i < gw->conns_cap; i++)
        if (gw->conns[i] != NULL && gw->conns[i]->state == GF_CONN_HANDLING)
            return false;
    return true;
}
