/* cmd_serve.c — `gardefou serve`: loads the configuration (defaults, then --config FILE, then
 * flags), opens the engine (upstream when URLs are configured, the embedded one otherwise),
 * plugs the pipeline hooks in, and runs the loop until SIGINT/SIGTERM. A stop lets in-flight
 * requests finish for server.shutdown_grace_ms, then ends the rest with 503. */
#include "gateway/cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "gateway/gateway.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gardefou serve [--config FILE] [options]\n\n"
            "Runs the OpenAI-compatible gateway. Flags override the config file.\n\n"
            "options:\n"
            "  --config FILE       JSON configuration (see docs/config.md)\n"
            "  --listen HOST:PORT  address to listen on (default 127.0.0.1:8080; port 0 = any)\n"
            "  --upstream URL      OpenAI-compatible upstream base URL; repeat for several\n"
            "  --model FILE        GGUF model for the embedded engine (default: synthetic)\n"
            "  --ctx N             context length of the embedded engine (0 = the model's)\n"
            "  --threads N         compute threads of the embedded engine (0 = all cores)\n"
            "  --data-dir DIR      state directory (default ./gardefou-data)\n"
            "  --policy FILE       content policy (default: the built-in policy, docs/policy.md);\n"
            "                      reloaded on SIGHUP and POST /admin/v1/policy/reload\n"
            "  --log-level LEVEL   debug, info, warn, error or off\n"
            "  --set KEY=VALUE     set any config key, e.g. --set limits.max_body_bytes=65536\n"
            "  -h, --help          show this help\n\n"
            "Without --upstream, the embedded engine serves --model. On start, the line\n"
            "\"gardefou: listening on http://HOST:PORT\" is printed on standard output.\n");
}

/* Flags that map to one config key. */
static const struct {
    const char *flag;
    const char *key;
    bool append;
} flag_keys[] = {
    {"--listen", "server.listen", false},   {"--upstream", "upstream.urls", true},
    {"--data-dir", "server.data_dir", false}, {"--log-level", "server.log_level", false},
    {"--model", "model.path", false},       {"--ctx", "model.ctx", false},
    {"--threads", "model.threads", false},  {"--policy", "policy.file", false},
};

static int parse_args(struct gf_config *cfg, int argc, char **argv)
{
    struct gf_err err = {0};
    // The file goes first so that flags override it wherever they appear.
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "gardefou serve: --config needs a FILE\n");
                return 2;
            }
            if (gf_config_load_file(cfg, argv[i + 1], &err) != 0) {
                fprintf(stderr, "gardefou serve: %s\n", err.msg);
                return 2;
            }
            i++;
        }
    }
    bool upstream_seen = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        const char *key = NULL;
        bool append = false;
        char setkey[128];
        const char *value = NULL;
        for (size_t k = 0; k < GF_ARRAY_LEN(flag_keys); k++)
            if (strcmp(a, flag_keys[k].flag) == 0) {
                key = flag_keys[k].key;
                append = flag_keys[k].append;
            }
        if (strcmp(a, "--set") == 0) {
            if (i + 1 >= argc || strchr(argv[i + 1], '=') == NULL) {
                fprintf(stderr, "gardefou serve: --set needs KEY=VALUE\n");
                return 2;
            }
            const char *eq = strchr(argv[i + 1], '=');
            size_t kl = (size_t)(eq - argv[i + 1]);
            if (kl >= sizeof(setkey)) {
                fprintf(stderr, "gardefou serve: --set: key too long\n");
                return 2;
            }
            memcpy(setkey, argv[i + 1], kl);
            setkey[kl] = '\0';
            key = setkey;
            value = eq + 1;
            const struct gf_config_row *row = gf_config_find(key);
            append = row && row->type == GF_CFG_STRING_LIST;
            i++;
        } else if (key != NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "gardefou serve: %s needs a value\n", a);
                return 2;
            }
            value = argv[++i];
            if (strcmp(a, "--upstream") == 0) {
                append = upstream_seen;  // the first --upstream replaces the file's list
                upstream_seen = true;
            }
        } else {
            fprintf(stderr, "gardefou serve: unknown option '%s' (see --help)\n", a);
            return 2;
        }
        gf_err_clear(&err);
        if (gf_config_set(cfg, key, value, append, &err) != 0) {
            fprintf(stderr, "gardefou serve: %s: %s\n", strcmp(a, "--set") ? a : "--set",
                    err.msg);
            return 2;
        }
    }
    return 0;
}

struct serve_state {
    struct event_base *base;
    struct gf_gateway *gw;
    const struct gf_config *cfg;
    struct event *sigint, *sigterm, *drain;
    struct gf_keys_serve *keys;  // keys, limits, admin API (docs/keys.md)
    uint64_t stop_deadline;
    bool stopping;
};

static void drain_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct serve_state *s = arg;
    if (gf_gateway_idle(s->gw) || gf_now_ns() >= s->stop_deadline)
        event_base_loopbreak(s->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct serve_state *s = arg;
    if (s->stopping) {
        event_base_loopbreak(s->base);  // a second signal: stop now
        return;
    }
    s->stopping = true;
    gf_log(GF_LOG_INFO, "serve", "event=stopping signal=%d inflight=%zu", (int)sig,
           gf_gateway_inflight(s->gw));
    gf_gateway_stop_listening(s->gw);
    s->stop_deadline = gf_now_ns() + (uint64_t)s->cfg->shutdown_grace_ms * 1000000ull;
    struct timeval tv = {0, 20000};
    event_add(s->drain, &tv);
}

/* The event loop. With epoll, interest changes made during one loop iteration are applied
 * together before it waits (EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST): evhttp enables read and then
 * write interest on a connection when it sends a reply, one epoll_ctl instead of two. libevent
 * warns that the changelist mishandles fds made with dup(); gardefou and libcurl dup none. */
static struct event_base *new_loop(void)
{
    struct event_config *c = event_config_new();
    if (c == NULL)
        return NULL;
    event_config_set_flag(c, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
    struct event_base *b = event_base_new_with_config(c);
    event_config_free(c);
    return b;
}

static int open_engine(struct event_base *base, const struct gf_config *cfg,
                       struct gf_engine **engine)
{
    struct gf_err err = {0};
    if (cfg->n_upstream_urls > 0) {
        struct gf_upstream_config uc = {
            .urls = (const char *const *)cfg->upstream_urls,
            .n_urls = cfg->n_upstream_urls,
            .api_key = cfg->upstream_api_key,
            .models = (const char *const *)cfg->upstream_models,
            .n_models = cfg->n_upstream_models,
            .connect_timeout_ms = (int)cfg->upstream_connect_timeout_ms,
            .request_timeout_ms = (int)cfg->upstream_request_timeout_ms,
            .health_interval_ms = (int)cfg->upstream_health_interval_ms,
            .max_response_bytes = (size_t)cfg->upstream_max_response_bytes,
            .curl_only = cfg->upstream_client != NULL && strcmp(cfg->upstream_client, "curl") == 0,
        };
        if (gf_engine_upstream_open(base, &uc, engine, &err) != 0) {
            fprintf(stderr, "gardefou serve: upstream engine: %s\n", err.msg);
            return 2;
        }
        return 0;
    }
    // no upstream and no model: the small synthetic model in DATA_DIR/models (docs/engine.md)
    char *default_path = NULL;
    const char *model_path = cfg->model_path;
    if (model_path == NULL || model_path[0] == '\0') {
        char dir[4096];
        if ((size_t)snprintf(dir, sizeof(dir), "%s/models", cfg->data_dir) >= sizeof(dir) ||
            gf_llama_default_model(dir, &default_path, &err) != 0) {
            fprintf(stderr, "gardefou serve: default model: %s\n",
                    err.msg[0] ? err.msg : "data directory path too long");
            return 2;
        }
        model_path = default_path;
    }
    struct gf_llama_config lc = {
        .model_path = model_path,
        .model_id = cfg->model_id,
        .n_ctx = (int)cfg->model_ctx,
        .n_threads = (int)cfg->model_threads,
        .max_seqs = (int)cfg->model_max_seqs,
        .chat_template = cfg->model_chat_template,
    };
    int rc = gf_engine_llama_open(base, &lc, engine, &err);
    gf_free(default_path);
    if (rc != 0) {
        fprintf(stderr, "gardefou serve: embedded engine: %s\n", err.msg);
        return 2;
    }
    return 0;
}

int gf_cmd_serve(int argc, char **argv)
{
    if (gf_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    // libevent's zeroed allocations (a header, a request, a buffer: about fourteen a request)
    // are then malloc and memset, which glibc serves from the thread's cache, where its calloc
    // goes to the arena every time. Before any other libevent call, as libevent requires.
    event_set_mem_functions(malloc, realloc, free);
    struct gf_config cfg;
    if (gf_config_init(&cfg) != 0) {
        fprintf(stderr, "gardefou serve: out of memory\n");
        return 1;
    }
    struct serve_state s = {.cfg = &cfg};
    struct gf_engine *engine = NULL;
    struct gf_audit_gate *audit = NULL;
    struct gf_filters *filters = NULL;
    struct gf_err err = {0};
    int status = parse_args(&cfg, argc, argv);
    if (status != 0)
        goto done;
    enum gf_log_level lv = GF_LOG_INFO;
    gf_log_level_parse(cfg.log_level, &lv);
    gf_log_set_level(lv);
    if (mkdir(cfg.data_dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "gardefou serve: cannot create --data-dir %s: %s\n", cfg.data_dir,
                strerror(errno));
        status = 2;
        goto done;
    }
    signal(SIGPIPE, SIG_IGN);
    // A file size limit (ulimit -f) reached by the audit log or the key store must be a write
    // error (EFBIG: 503 until writable, docs/audit.md), not a kill by SIGXFSZ.
    signal(SIGXFSZ, SIG_IGN);
    s.base = new_loop();
    if (s.base == NULL) {
        fprintf(stderr, "gardefou serve: cannot create the event loop\n");
        status = 1;
        goto done;
    }
    status = open_engine(s.base, &cfg, &engine);
    if (status != 0)
        goto done;
    if (gf_gateway_new(s.base, &cfg, &s.gw, &err) != 0) {
        fprintf(stderr, "gardefou serve: %s\n", err.msg);
        status = 1;
        goto done;
    }
    gf_gateway_set_engine(s.gw, engine);
    /* Components plug into the pipeline here (gf_gateway_add_hooks), in the order their hooks
     * must run: keys (authenticate), rate limits (admit), policy (input/output), audit. */
    // The audit log first: its fail-closed check refuses requests before any other stage.
    if (gf_audit_gate_start(s.base, s.gw, &cfg, &audit, &err) != 0) {
        fprintf(stderr, "gardefou serve: %s\n", err.msg);
        status = 2;
        goto done;
    }
    // Keys and limits next: who is calling, and may they, before any content is looked at.
    if (gf_keys_serve_start(s.base, s.gw, engine, &cfg, &s.keys, &err) != 0) {
        fprintf(stderr, "gardefou serve: %s\n", err.msg);
        status = 2;
        goto done;
    }
    gf_keys_serve_set_events(s.keys, gf_audit_gate_admin_event, audit);
    // The content policy (docs/policy.md): input and output filters, /v1/moderations, reload on
    // SIGHUP and POST /admin/v1/policy/reload; its abuse setting drives key suspension.
    if (gf_filters_start(s.base, s.gw, cfg.policy_file, cfg.policy_classifiers, &filters,
                         &err) != 0) {
        fprintf(stderr, "gardefou serve: %s\n", err.msg);
        status = 2;
        goto done;
    }
    // Reloads through the admin API or SIGHUP pass by the audit log, which records each one.
    gf_audit_gate_set_reload(audit, gf_filters_admin_reload, filters);
    gf_filters_set_sighup(filters, gf_audit_gate_reload, audit);
    gf_keys_serve_set_policy_reload(s.keys, gf_audit_gate_reload, audit);
    gf_keys_serve_set_abuse(s.keys, gf_filters_abuse, filters);

    if (gf_gateway_listen(s.gw, &err) != 0) {
        fprintf(stderr, "gardefou serve: %s\n", err.msg);
        status = 2;
        goto done;
    }
    s.sigint = evsignal_new(s.base, SIGINT, on_signal, &s);
    s.sigterm = evsignal_new(s.base, SIGTERM, on_signal, &s);
    s.drain = event_new(s.base, -1, EV_PERSIST, drain_cb, &s);
    if (s.sigint == NULL || s.sigterm == NULL || s.drain == NULL) {
        fprintf(stderr, "gardefou serve: out of memory\n");
        status = 1;
        goto done;
    }
    event_add(s.sigint, NULL);
    event_add(s.sigterm, NULL);
    {
        const char *host = cfg.listen;
        const char *colon = strrchr(host, ':');
        printf("gardefou: listening on http://%.*s:%d\n", (int)(colon - host), host,
               gf_gateway_port(s.gw));
        char admin_url[320];
        gf_keys_serve_admin_url(s.keys, admin_url, sizeof(admin_url));
        if (admin_url[0])
            printf("gardefou: admin API on %s\n", admin_url);
        fflush(stdout);
    }
    gf_log(GF_LOG_INFO, "serve", "event=started port=%d engine=%s", gf_gateway_port(s.gw),
           engine->ops->name);
    event_base_dispatch(s.base);
    gf_log(GF_LOG_INFO, "serve", "event=stopped");
    status = 0;
done:
    gf_gateway_free(s.gw);
    gf_keys_serve_stop(s.keys);  // after the gateway: its shutdown runs the keys' release hook
    gf_audit_gate_stop(audit); // after the gateway: its last records are flushed here
    gf_filters_stop(filters);
    gf_engine_close(engine);
    if (s.sigint)
        event_free(s.sigint);
    if (s.sigterm)
        event_free(s.sigterm);
    if (s.drain)
        event_free(s.drain);
    if (s.base)
        event_base_free(s.base);
    gf_config_cleanup(&cfg);
    return status;
}
