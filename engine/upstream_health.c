/* upstream_health.c — the upstream targets: their URLs, round-robin choice and health. A
 * target is probed with GET /v1/models (the API key included); 200 means healthy. Connect
 * failures of real requests mark it unhealthy, any answer marks it healthy again. */
#include "engine/upstream_engine_int.h"

#include <stdio.h>
#include <string.h>

bool gf_up_any_healthy(const struct gf_up *u)
{
    for (size_t i = 0; i < u->n_targets; i++)
        if (u->targets[i].healthy)
            return true;
    return false;
}

size_t gf_up_pick_target(struct gf_up *u, size_t avoid)
{
    bool healthy_only = gf_up_any_healthy(u);
    for (size_t k = 0; k < u->n_targets; k++) {
        size_t i = (u->rr + k) % u->n_targets;
        if (i == avoid && u->n_targets > 1)
            continue;
        if (healthy_only && !u->targets[i].healthy)
            continue;
        u->rr = i + 1;
        return i;
    }
    size_t i = u->rr++ % u->n_targets;
    if (i == avoid && u->n_targets > 1)
        i = u->rr++ % u->n_targets;
    return i;
}

void gf_up_set_health(struct gf_up_target *t, bool ok, const char *why)
{
    if (t->healthy != ok)
        gf_log(ok ? GF_LOG_INFO : GF_LOG_WARN, "upstream", "event=%s upstream=%zu reason=\"%s\"",
               ok ? "healthy" : "unhealthy", t->index, why);
    t->healthy = ok;
}

static size_t health_write_cb(char *p, size_t size, size_t n, void *ud)
{
    struct gf_up_health *h = ud;
    if (gf_buf_append(&h->body, p, size * n) != 0)
        return 0;  // a models list past the cap: fail the check
    return size * n;
}

static void health_start(struct gf_up *u, struct gf_up_target *t)
{
    struct gf_up_health *h = &t->hc;
    if (h->running)
        return;
    gf_buf_reset(&h->body);
    if (curl_easy_setopt(h->easy, CURLOPT_URL, t->models_url) == CURLE_OK &&
        curl_multi_add_handle(u->multi, h->easy) == CURLM_OK)
        h->running = true;
}

void gf_up_health_done(struct gf_up *u, struct gf_up_health *h, CURLcode rc)
{
    long status = 0;
    curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(u->multi, h->easy);
    h->running = false;
    char why[96];
    if (rc != CURLE_OK)
        snprintf(why, sizeof(why), "%s", curl_easy_strerror(rc));
    else
        snprintf(why, sizeof(why), "GET /v1/models answered %ld", status);
    bool ok = rc == CURLE_OK && status == 200;
    gf_up_set_health(h->t, ok, why);
    if (rc == CURLE_OK && h->t->native && !h->t->have_addr)
        gf_up_native_learn(h->t, h->easy);
    if (ok && !u->models_configured && h->body.len > 0)
        gf_up_parse_models(h->body.data, h->body.len, u->models, &u->n_models,
                           GF_UP_MAX_MODELS);
}

void gf_up_health_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gf_up *u = arg;
    for (size_t i = 0; i < u->n_targets; i++)
        health_start(u, &u->targets[i]);
    if (u->health_ms > 0) {
        struct timeval tv = {u->health_ms / 1000, (u->health_ms % 1000) * 1000};
        evtimer_add(u->health_timer, &tv);
    }
}

/* base + suffix, with the base's trailing slashes and a trailing "/v1" dropped first, so
 * "http://h:8080", "http://h:8080/" and "http://h:8080/v1" all work. */
static char *join_url(const char *base, const char *suffix)
{
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    if (n >= 3 && memcmp(base + n - 3, "/v1", 3) == 0)
        n -= 3;
    struct gf_buf b;
    gf_buf_init(&b, n + strlen(suffix) + 1);
    if (gf_buf_append(&b, base, n) != 0 || gf_buf_puts(&b, suffix) != 0) {
        gf_buf_cleanup(&b);
        return NULL;
    }
    return gf_buf_steal(&b);
}

static CURLU *parsed_url(const char *url)
{
    CURLU *uh = curl_url();
    if (uh != NULL && curl_url_set(uh, CURLUPART_URL, url, 0) != CURLUE_OK) {
        curl_url_cleanup(uh);
        uh = NULL;
    }
    return uh;
}

int gf_up_set_gen_url(CURL *easy, const struct gf_up_target *t, enum gf_gen_kind kind)
{
    CURLU *uh = kind == GF_GEN_CHAT ? t->chat_uh : t->compl_uh;
    // CURLOPT_CURLU overrides CURLOPT_URL while set; NULL clears it on a reused handle.
    if (curl_easy_setopt(easy, CURLOPT_CURLU, uh) != CURLE_OK)
        return GF_ENOMEM;
    if (uh == NULL &&
        curl_easy_setopt(easy, CURLOPT_URL, kind == GF_GEN_CHAT ? t->chat_url : t->compl_url) !=
            CURLE_OK)
        return GF_ENOMEM;
    return 0;
}

bool gf_up_target_init(struct gf_up *u, size_t i, const char *base_url)
{
    struct gf_up_target *t = &u->targets[i];
    t->index = i;
    // Without periodic checks nothing would revive a target marked down: start healthy.
    t->healthy = u->health_ms == 0;
    gf_buf_init(&t->hc.body, 1024 * 1024);
    t->hc.x.kind = GF_UP_XFER_HEALTH;
    t->hc.t = t;
    t->chat_url = join_url(base_url, "/v1/chat/completions");
    t->compl_url = join_url(base_url, "/v1/completions");
    t->models_url = join_url(base_url, "/v1/models");
    t->hc.easy = curl_easy_init();
    if (!t->chat_url || !t->compl_url || !t->models_url || !t->hc.easy)
        return false;
    t->chat_uh = parsed_url(t->chat_url);
    t->compl_uh = parsed_url(t->compl_url);
    if ((t->hc.headers = curl_slist_append(NULL, GF_UP_USER_AGENT)) == NULL)
        return false;
    if (u->auth_header) {
        struct curl_slist *h = curl_slist_append(t->hc.headers, u->auth_header);
        if (h == NULL)
            return false;
        t->hc.headers = h;
    }
    if (gf_up_common_easy_opts(u, t->hc.easy) != 0)
        return false;
    // A probe may take as long as the period, within [1 s, 10 s].
    int hto = u->health_ms > 0 && u->health_ms < 10000 ? u->health_ms : 10000;
    curl_easy_setopt(t->hc.easy, CURLOPT_TIMEOUT_MS, (long)(hto < 1000 ? 1000 : hto));
    curl_easy_setopt(t->hc.easy, CURLOPT_PRIVATE, (char *)&t->hc.x);
    curl_easy_setopt(t->hc.easy, CURLOPT_WRITEFUNCTION, health_write_cb);
    curl_easy_setopt(t->hc.easy, CURLOPT_WRITEDATA, &t->hc);
    curl_easy_setopt(t->hc.easy, CURLOPT_HTTPHEADER, t->hc.headers);
    return u->curl_only || gf_up_native_target_init(u, t);
}

void gf_up_target_cleanup(struct gf_up *u, struct gf_up_target *t)
{
    gf_up_native_target_cleanup(u, t);
    if (t->hc.running)
        curl_multi_remove_handle(u->multi, t->hc.easy);
    if (t->hc.easy)
        curl_easy_cleanup(t->hc.easy);
    curl_slist_free_all(t->hc.headers);
    gf_buf_cleanup(&t->hc.body);
    gf_free(t->chat_url);
    gf_free(t->compl_url);
    gf_free(t->models_url);
    curl_url_cleanup(t->chat_uh);
    curl_url_cleanup(t->compl_uh);
}
