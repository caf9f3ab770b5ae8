/* upstream_nagle.c — measures the delayed-ACK stall of the upstream engine against an upstream
 * that writes headers and body in separate writes without TCP_NODELAY (llama.cpp server's
 * behaviour, reproduced by the mock's "nagle" option): N sequential non-streamed requests on one
 * kept-alive connection, with the TCP_QUICKACK workaround off and on. Prints the medians and
 * their ratio. Also runs the same against a well-behaved upstream for reference.
 * usage: bench_upstream_nagle [N]   (GF_MOCK_UPSTREAM names the mock executable) */
#include "engine/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "mock_child.h"

static struct event_base *base;
static int finals, errors;

static void on_event(void *ud, const struct gf_gen_event *ev)
{
    (void)ud;
    if (ev->type == GF_GEN_EV_DELTA)
        return;
    finals++;
    errors += ev->type == GF_GEN_EV_ERROR;
    event_base_loopbreak(base);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median latency in ms of n sequential requests with the given model option string; *stalls
 * counts the requests over 10 ms. */
static bool curl_only;  // the client under test: libcurl, or the engine's own (the default)

static double run(const char *url, bool no_quickack, const char *model, bool stream, int n,
                  int *stalls)
{
    const char *urls[] = {url};
    struct gf_upstream_config cfg = {.urls = urls, .n_urls = 1, .no_quickack = no_quickack,
                                     .curl_only = curl_only};
    struct gf_engine *e = NULL;
    struct gf_err err = {0};
    if (gf_engine_upstream_open(base, &cfg, &e, &err) != 0) {
        fprintf(stderr, "open: %s\n", err.msg);
        exit(1);
    }
    char json[128];
    snprintf(json, sizeof(json), "{\"model\":\"%s\",\"messages\":[]}", model);
    cJSON *body = cJSON_Parse(json);
    struct gf_gen_request req = {.kind = GF_GEN_CHAT, .model = model, .body = body,
                                 .stream = stream};
    gf_gen_params_default(&req.params);
    double *t = calloc((size_t)n + 1, sizeof(*t));
    for (int i = -1; i < n; i++) {  // one warm-up request opens the connection
        struct gf_gen *g;
        uint64_t t0 = gf_now_ns();
        int before = finals;
        if (gf_engine_submit(e, &req, on_event, NULL, &g, &err) != 0) {
            fprintf(stderr, "submit: %s\n", err.msg);
            exit(1);
        }
        while (finals == before)
            event_base_dispatch(base);
        if (i >= 0)
            t[i] = (double)(gf_now_ns() - t0) / 1e6;
    }
    qsort(t, (size_t)n, sizeof(*t), cmp_d);
    *stalls = 0;
    for (int i = 0; i < n; i++)
        *stalls += t[i] > 10.0;
    double med = t[n / 2];
    free(t);
    cJSON_Delete(body);
    gf_engine_close(e);
    return med;
}

int main(int argc, char **argv)
{
    gf_json_init();
    int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 50;
    if (n < 1)
        n = 50;
    struct mock_child m;
    if (mock_child_start(&m, NULL) != 0)
        return 1;
    base = event_base_new();
    for (int client = 0; client < 2; client++) {
        curl_only = client == 1;
        int s_off, s_on, s_ref, ss_off, ss_on, ss_ref;
        double off = run(m.url, true, "nagle", false, n, &s_off);
        double on = run(m.url, false, "nagle", false, n, &s_on);
        double ref = run(m.url, false, "normal", false, n, &s_ref);
        // Streams: 20 chunks 2 ms apart, each chunk its own write (a fast model on llama.cpp).
        int ns = n < 10 ? n : 10;
        double st_off = run(m.url, true, "nagle,tokens=20,delay=2", true, ns, &ss_off);
        double st_on = run(m.url, false, "nagle,tokens=20,delay=2", true, ns, &ss_on);
        double st_ref = run(m.url, false, "tokens=20,delay=2", true, ns, &ss_ref);
        printf("upstream_nagle, %s client: %d sequential requests on one kept-alive connection\n",
               curl_only ? "libcurl" : "gardefou's own", n);
        printf("                                  median     requests over 10 ms\n");
        printf("  nagle upstream, workaround off: %8.3f ms  %d\n", off, s_off);
        printf("  nagle upstream, TCP_QUICKACK:   %8.3f ms  %d\n", on, s_on);
        printf("  TCP_NODELAY upstream:           %8.3f ms  %d\n", ref, s_ref);
        printf("  ratio off/on: %.1fx\n", on > 0 ? off / on : 0.0);
        printf("streamed, 20 chunks 2 ms apart, %d requests: median whole-stream time\n", ns);
        printf("  nagle upstream, workaround off: %8.3f ms\n", st_off);
        printf("  nagle upstream, TCP_QUICKACK:   %8.3f ms\n", st_on);
        printf("  TCP_NODELAY upstream:           %8.3f ms\n", st_ref);
    }
    printf("errors: %d\n", errors);
    event_base_free(base);
    mock_child_stop(&m);
    return errors ? 1 : 0;
}
