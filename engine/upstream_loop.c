/* upstream_loop.c — libcurl's multi-socket API driven by libevent: curl says which sockets to
 * watch (CURLMOPT_SOCKETFUNCTION) and when to wake it (CURLMOPT_TIMERFUNCTION); libevent events
 * call curl_multi_socket_action. Invariant: curl is never re-entered from its own callbacks —
 * what an event callback asks for while curl is on the stack (cancel, submit) waits until
 * curl_multi_socket_action returns (after_curl). */
#include "engine/upstream_engine_int.h"

#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

static void after_curl(struct gf_up *u);
static struct gf_up_sock *sock_find(struct gf_up *u, curl_socket_t s);

/* One watched socket of curl's. A kept-alive connection's socket stays registered with
 * EV_READ between transfers ("parked": curl said CURL_POLL_REMOVE but did not close it), so
 * the next transfer on it, which asks for CURL_POLL_IN first, changes nothing in epoll: two
 * epoll_ctl and an event allocation fewer per request. A parked socket that turns readable
 * (the upstream closed it or sent stray bytes) is unwatched at once, so a level-triggered EOF
 * cannot spin the loop; curl's check before reuse then finds it dead. The watch is freed in
 * close_cb, before the fd is closed and its number can be reused. Only connection sockets
 * (opened in open_cb) are parked: curl closes others, like its resolver's socketpair, without
 * close_cb, and a watch left on a closed fd would hide the next socket given that number. */
struct gf_up_sock {
    struct event *ev;
    struct gf_up *u;
    curl_socket_t fd;
    bool curl_wants;  // between curl's first interest and its CURL_POLL_REMOVE
    bool added;       // ev is pending (registered with the loop)
    bool conn;        // opened through open_cb: closed through close_cb, so it may be parked
};


/* Works around an upstream that writes headers and body separately without TCP_NODELAY
 * (llama.cpp server): Nagle holds its body until we ACK the headers, and on a kept-alive
 * connection the kernel delays that ACK up to 40 ms. TCP_QUICKACK set while an ACK is pending and
 * the data already read sends it at once; it is not sticky, so it is set after every curl call
 * on the socket that had a read event. curl often reads a response head inside a call made for
 * another socket or its timer (the call that sent the request): a transfer waiting for its
 * first body byte whose head has been read gets the ACK forced once, and only then (a
 * setsockopt on every waiting transfer after every call was ~10 syscalls per request under
 * load). Measured in bench/upstream_nagle.sh. */
void gf_up_quickack(int fd)
{
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof(on));
}

static void quickack_waiting(struct gf_up *u, curl_socket_t except)
{
    for (struct gf_gen *g = u->gens; g != NULL; g = g->next) {
        if (!g->in_multi || g->got_bytes || g->head_acked || g->sock == CURL_SOCKET_BAD)
            continue;
        long head = 0;
        if (curl_easy_getinfo(g->easy, CURLINFO_HEADER_SIZE, &head) != CURLE_OK || head <= 0)
            continue; // nothing read yet: no ACK is pending
        g->head_acked = true;
        if (g->sock != except)
            gf_up_quickack(g->sock);
    }
}

static void sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct gf_up_sock *sk = arg;
    struct gf_up *u = sk->u;
    if (!sk->curl_wants) {
        // parked and readable: stop watching until curl uses the connection again
        event_del(sk->ev);
        sk->added = false;
        return;
    }
    int action = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running = 0;
    u->in_curl++;
    curl_multi_socket_action(u->multi, fd, action, &running);
    u->in_curl--;
    if (!u->no_quickack) {
        // Only while a transfer still reads here: once curl lets go of the socket (the reply is
        // complete) nothing more is coming that our ACK would release, and the next request
        // carries it. That skips the setsockopt after the last read of most plain replies.
        struct gf_up_sock *now = sock_find(u, fd);
        bool reading = (what & EV_READ) && now != NULL && now->curl_wants;
        if (reading)
            gf_up_quickack(fd);
        quickack_waiting(u, reading ? fd : CURL_SOCKET_BAD);
    }
    after_curl(u);
}

static void curl_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gf_up *u = arg;
    int running = 0;
    u->in_curl++;
    curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    u->in_curl--;
    if (!u->no_quickack)
        quickack_waiting(u, CURL_SOCKET_BAD);
    after_curl(u);
}

static struct gf_up_sock *sock_find(struct gf_up *u, curl_socket_t s)
{
    return s >= 0 && (size_t)s < u->socks_cap ? u->socks[s] : NULL;
}

static void sock_free(struct gf_up *u, struct gf_up_sock *sk)
{
    u->socks[sk->fd] = NULL;
    event_free(sk->ev);  // deletes it from the loop first
    gf_free(sk);
}

static struct gf_up_sock *sock_new(struct gf_up *u, curl_socket_t s)
{
    if (s < 0)
        return NULL;
    if ((size_t)s >= u->socks_cap) {
        size_t cap = u->socks_cap ? u->socks_cap : 64;
        while (cap <= (size_t)s)
            cap *= 2;
        struct gf_up_sock **n = gf_realloc(u->socks, cap * sizeof(*n));
        if (n == NULL)
            return NULL;
        memset(n + u->socks_cap, 0, (cap - u->socks_cap) * sizeof(*n));
        u->socks = n;
        u->socks_cap = cap;
    }
    struct gf_up_sock *sk = gf_calloc(1, sizeof(*sk));
    if (sk == NULL)
        return NULL;
    sk->u = u;
    sk->fd = s;
    sk->ev = event_new(u->base, s, EV_PERSIST | EV_READ, sock_event_cb, sk);
    if (sk->ev == NULL) {
        gf_free(sk);
        return NULL;
    }
    u->socks[s] = sk;
    return sk;
}

static int socket_cb(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)socketp;
    struct gf_up *u = userp;
    struct gf_up_sock *sk = sock_find(u, s);
    char *priv = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    struct gf_up_xfer *x = (struct gf_up_xfer *)(void *)priv;
    if (x != NULL && x->kind == GF_UP_XFER_GEN)
        ((struct gf_gen *)x)->sock = what == CURL_POLL_REMOVE ? CURL_SOCKET_BAD : s;
    if (what == CURL_POLL_REMOVE) {
        if (sk != NULL && !sk->conn) {
            sock_free(u, sk);
        } else if (sk != NULL) {
            sk->curl_wants = false;
            // A read watch stays (parked); a write watch would fire at once, again and again.
            if (sk->added && (event_get_events(sk->ev) & EV_WRITE)) {
                event_del(sk->ev);
                sk->added = false;
            }
        }
        return 0;
    }
    short kind = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) |
                 (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (sk == NULL && (sk = sock_new(u, s)) == NULL)
        return -1;
    sk->curl_wants = true;
    if (sk->added && event_get_events(sk->ev) == kind)
        return 0; // already watching exactly this (a parked socket reused): no epoll change
    if (sk->added) {
        // the same event object, re-armed for the new interest (no free/alloc per change)
        event_del(sk->ev);
        sk->added = false;
    }
    if (event_assign(sk->ev, u->base, s, kind, sock_event_cb, sk) != 0 ||
        event_add(sk->ev, NULL) != 0)
        return -1;
    sk->added = true;
    return 0;
}

/* curl opens a socket: a connection's gets its watch now, marked as closed through close_cb.
 * A watch still found at that number belonged to a socket closed behind our back: dropped. */
static curl_socket_t open_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct gf_up *u = clientp;
    curl_socket_t s = socket(a->family, a->socktype, a->protocol);
    if (s == CURL_SOCKET_BAD)
        return s;
    struct gf_up_sock *old = sock_find(u, s);
    if (old != NULL)
        sock_free(u, old);
    if (purpose == CURLSOCKTYPE_IPCXN) {
        struct gf_up_sock *sk = sock_new(u, s);
        if (sk == NULL) {
            close(s);
            return CURL_SOCKET_BAD;
        }
        sk->conn = true;
    }
    return s;
}

/* curl closes a socket: its watch goes first, while the fd number still means this socket. */
static int close_cb(void *clientp, curl_socket_t s)
{
    struct gf_up *u = clientp;
    struct gf_up_sock *sk = sock_find(u, s);
    if (sk != NULL)
        sock_free(u, sk);
    return close(s);
}

void gf_up_loop_cleanup(struct gf_up *u)
{
    for (size_t i = 0; i < u->socks_cap; i++)
        if (u->socks[i] != NULL)
            sock_free(u, u->socks[i]);
    gf_free(u->socks);
    u->socks = NULL;
    u->socks_cap = 0;
}

static int timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct gf_up *u = userp;
    if (timeout_ms < 0) {
        evtimer_del(u->curl_timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    return evtimer_add(u->curl_timer, &tv) == 0 ? 0 : -1;
}

static int sockopt_cb(void *clientp, curl_socket_t fd, curlsocktype purpose)
{
    struct gf_up *u = clientp;
    if (purpose == CURLSOCKTYPE_IPCXN && !u->no_quickack)
        gf_up_quickack(fd);
    return CURL_SOCKOPT_OK;
}

int gf_up_gen_start(struct gf_gen *g)
{
    struct gf_up *u = g->u;
    if (u->in_curl > 0) {
        g->add_pending = true;
        u->n_deferred++;
        return 0;
    }
    if (curl_multi_add_handle(u->multi, g->easy) != CURLM_OK)
        return GF_ENOMEM;
    g->in_multi = true;
    return 0;
}

void gf_up_gen_stop(struct gf_gen *g)
{
    if (g->conn != NULL)
        gf_up_native_abort(g);
    if (g->in_multi) {
        curl_multi_remove_handle(g->u->multi, g->easy);
        g->in_multi = false;
    }
}

static void check_multi_info(struct gf_up *u)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(u->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        CURLcode rc = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
        struct gf_up_xfer *x = (struct gf_up_xfer *)(void *)priv;
        if (x == NULL)
            continue;
        if (x->kind == GF_UP_XFER_HEALTH)
            gf_up_health_done(u, (struct gf_up_health *)x, rc);
        else
            gf_up_gen_finish((struct gf_gen *)x, rc);
    }
}

/* Runs after every curl_multi_socket_action: destroys the generations cancelled from inside
 * it, starts the ones submitted from inside it, then handles finished transfers. */
static void after_curl(struct gf_up *u)
{
    if (u->in_curl > 0)
        return;
    while (u->n_deferred > 0) {
        struct gf_gen *g = u->gens;
        while (g != NULL && !g->zombie && !g->add_pending)
            g = g->next;
        if (g == NULL) {
            u->n_deferred = 0;
            break;
        }
        u->n_deferred--;
        if (g->zombie) {
            gf_up_gen_destroy(g);
        } else {
            g->add_pending = false;
            if (curl_multi_add_handle(u->multi, g->easy) == CURLM_OK)
                g->in_multi = true;
        }
    }
    check_multi_info(u);
}

int gf_up_common_easy_opts(struct gf_up *u, CURL *easy)
{
    // Options that copy a string can fail for lack of memory; the first failure is reported.
    CURLcode rc = CURLE_OK, r;
#define SET(opt, val)                                                                          \
    do {                                                                                       \
        r = curl_easy_setopt(easy, opt, val);                                                  \
        if (rc == CURLE_OK)                                                                    \
            rc = r;                                                                            \
    } while (0)
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)u->connect_ms);
    SET(CURLOPT_TCP_NODELAY, 1L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
    SET(CURLOPT_SOCKOPTDATA, u);
    SET(CURLOPT_OPENSOCKETFUNCTION, open_cb);
    SET(CURLOPT_OPENSOCKETDATA, u);
    SET(CURLOPT_CLOSESOCKETFUNCTION, close_cb);
    SET(CURLOPT_CLOSESOCKETDATA, u);
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    // Only the configured URLs, never a proxy from the environment or a redirect elsewhere.
    SET(CURLOPT_PROXY, "");
    SET(CURLOPT_FOLLOWLOCATION, 0L);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
#undef SET
    return rc == CURLE_OK ? 0 : GF_ENOMEM;
}

int gf_up_loop_setup(struct gf_up *u)
{
    u->curl_timer = evtimer_new(u->base, curl_timer_cb, u);
    if (u->curl_timer == NULL)
        return GF_ENOMEM;
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, timer_fn);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    // curl sizes its idle-connection cache at four times the transfers in progress, so when
    // a burst ends (replies waiting for their audit fsync, say) it closes connections the next
    // burst reconnects: about one request in five paid a connect at 16 clients. A fixed pool
    // keeps them, like nginx's `keepalive` upstream setting.
    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, (long)GF_UP_IDLE_CONNECTIONS);
    return 0;
}
