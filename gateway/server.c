/* server.c — the gateway object: the evhttp server with its limits, the listening socket, and
 * the hand-off of complete requests to the pipeline. evhttp's own limits are set a notch above
 * ours (conn.c answers first, with OpenAI-shaped errors); they remain as a backstop, e.g. for
 * chunked request bodies whose size is not known from the headers. */
#include "gateway/gateway_int.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <event2/bufferevent.h>

static void on_request(struct evhttp_request *req, void *arg)
{
    gf_pipeline_dispatch(arg, req);
}

int gf_gateway_new(struct event_base *base, const struct gf_config *cfg, struct gf_gateway **out,
                   struct gf_err *err)
{
    *out = NULL;
    struct gf_gateway *gw = gf_calloc(1, sizeof(*gw));
    if (gw == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    gw->base = base;
    gw->cfg = cfg;
    gw->started_s = gf_wall_ms() / 1000;
    if (gf_random_bytes(&gw->id_prefix, sizeof(gw->id_prefix)) != 0)
        gw->id_prefix = gf_now_ns() ^ (uint64_t)gf_wall_ms();
    gw->http = evhttp_new(base);
    if (gw->http == NULL) {
        gf_free(gw);
        return gf_err_set(err, GF_ENOMEM, "cannot create the HTTP server");
    }
    evhttp_set_max_headers_size(gw->http, cfg->max_header_bytes * 2);
    evhttp_set_max_body_size(gw->http, cfg->max_body_bytes);
    int64_t t = cfg->write_timeout_ms > cfg->idle_timeout_ms ? cfg->write_timeout_ms
                                                             : cfg->idle_timeout_ms;
    t += 1000;  // our own deadlines fire first while reading
    struct timeval tv = {.tv_sec = t / 1000, .tv_usec = (t % 1000) * 1000};
    evhttp_set_timeout_tv(gw->http, &tv);
    evhttp_set_allowed_methods(gw->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                             EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                             EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    evhttp_set_bevcb(gw->http, gf_conn_bevcb, gw);
    evhttp_set_gencb(gw->http, on_request, gw);
    gf_pipeline_json_open(gw);
    *out = gw;
    return 0;
}

void gf_gateway_set_engine(struct gf_gateway *gw, struct gf_engine *engine)
{
    gw->engine = engine;
}

int gf_gateway_listen(struct gf_gateway *gw, struct gf_err *err)
{
    const char *listen = gw->cfg->listen;
    const char *colon = strrchr(listen, ':');
    if (colon == NULL)
        return gf_err_set(err, GF_EINVAL, "server.listen: expected HOST:PORT");
    char host[256];
    size_t hl = (size_t)(colon - listen);
    if (hl >= 2 && listen[0] == '[' && listen[hl - 1] == ']') {  // [::1]:8080
        listen++;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof(host))
        return gf_err_set(err, GF_EINVAL, "server.listen: bad host in \"%s\"", gw->cfg->listen);
    memcpy(host, listen, hl);
    host[hl] = '\0';
    int64_t port;
    if (gf_parse_i64(colon + 1, 0, 65535, &port) != 0)
        return gf_err_set(err, GF_EINVAL, "server.listen: bad port in \"%s\"", gw->cfg->listen);
    gw->bound = evhttp_bind_socket_with_handle(gw->http, host, (uint16_t)port);
    if (gw->bound == NULL)
        return gf_err_set(err, GF_EIO, "cannot listen on %s: address in use or not available",
                          gw->cfg->listen);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    evutil_socket_t fd = evhttp_bound_socket_get_fd(gw->bound);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET)
            gw->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
            gw->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return 0;
}

int gf_gateway_port(const struct gf_gateway *gw)
{
    return gw->port;
}

void gf_gateway_stop_listening(struct gf_gateway *gw)
{
    if (gw->bound != NULL) {
        evhttp_del_accept_socket(gw->http, gw->bound);
        gw->bound = NULL;
    }
}

void gf_gateway_free(struct gf_gateway *gw)
{
    if (gw == NULL)
        return;
    gf_gateway_stop_listening(gw);
    gf_pipeline_shutdown(gw);
    evhttp_free(gw->http);  // frees the connections; their close callbacks free our state
    gf_pipeline_free_spares(gw);
    gf_pipeline_json_close(gw);
    gf_free(gw->conns);
    gf_free(gw);
}
