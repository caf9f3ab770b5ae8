/* keys_gate.c — keys and limits in the request pipeline: stage (2) authenticates the Bearer key,
 * (3) admits the request under the key's limits (and sets the x-ratelimit-* headers), (6)
 * charges completion tokens as they stream and stops a stream that exhausts its budget, (7)
 * releases the hold and counts policy blocks towards suspension. A timer rechecks the keys of
 * requests in flight, so an expiry or a change made elsewhere ends their streams within
 * recheck_ms. Invariant: every admitted request has one entry in `live` from admit to release,
 * and nothing here ever sees more of a secret than the header value it parses. */
#include "gateway/gateway.h"
#include "gateway/keys_int.h"

#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include "engine/engine.h"

/* One admitted request. */
struct live {
    struct gf_request *r;
    struct live *prev, *next;
    char id[GF_KEYID_BUFLEN];
    struct gf_rl_ticket ticket;
    int64_t charged; // completion tokens charged so far
    bool cut;        // the gate ended it (budget exhausted or key cut)
};

struct gf_keys_gate {
    struct gf_gateway *gw;
    struct gf_keys *keys;
    struct gf_engine *engine;
    struct gf_keys_gate_config cfg;
    struct event *timer;
    struct live *head;
    size_t n_live;
    struct live **tab; // by request pointer; open addressing, capacity tcap (power of two)
    size_t tcap, tused;
    gf_keys_abuse_fn abuse;
    void *abuse_ud;
};

/* ---- the request -> live map ----------------------------------------------------------- */

static size_t ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (size_t)x;
}

static size_t tfind(const struct gf_keys_gate *g, const struct gf_request *r)
{
    size_t mask = g->tcap - 1;
    for (size_t i = ptr_hash(r) & mask;; i = (i + 1) & mask)
        if (g->tab[i] == NULL || g->tab[i]->r == r)
            return i;
}

static int tgrow(struct gf_keys_gate *g)
{
    if ((g->tused + 1) * 2 <= g->tcap)
        return 0;
    size_t cap = g->tcap ? g->tcap * 2 : 64;
    struct live **nt = gf_calloc(cap, sizeof(*nt));
    if (nt == NULL)
        return GF_ENOMEM;
    struct live **old = g->tab;
    size_t oldcap = g->tcap;
    g->tab = nt;
    g->tcap = cap;
    for (size_t i = 0; i < oldcap; i++)
        if (old[i])
            g->tab[tfind(g, old[i]->r)] = old[i];
    gf_free(old);
    return 0;
}

static void tremove(struct gf_keys_gate *g, const struct gf_request *r)
{
    size_t mask = g->tcap - 1;
    size_t i = tfind(g, r);
    if (g->tab[i] == NULL)
        return;
    g->tused--;
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        if (g->tab[j] == NULL)
            break;
        size_t home = ptr_hash(g->tab[j]->r) & mask;
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            g->tab[i] = g->tab[j];
            i = j;
        }
    }
    g->tab[i] = NULL;
}

static struct live *live_of(struct gf_keys_gate *g, const struct gf_request *r)
{
    return g->tcap ? g->tab[tfind(g, r)] : NULL;
}

/* ---- helpers --------------------------------------------------------------------------- */

static bool needs_key(enum gf_route route)
{
    return route != GF_ROUTE_HEALTHZ && route != GF_ROUTE_READYZ && route != GF_ROUTE_METRICS &&
           route != GF_ROUTE_NONE;
}

/* Routes that go through stage (3), where the limiter decides and sets the x-ratelimit-*
 * headers (gateway/pipeline.c); the others get them at authentication. */
static bool admitted(enum gf_route route)
{
    return route == GF_ROUTE_CHAT || route == GF_ROUTE_COMPLETIONS || route == GF_ROUTE_MODERATIONS;
}

static int64_t count_tokens(struct gf_keys_gate *g, const char *s, size_t n)
{
    if (s == NULL || n == 0)
        return 0;
    int c = 0;
    bool est = false;
    if (g->engine && gf_engine_count_tokens(g->engine, s, n, &c, &est) == 0 && c >= 0)
        return c;
    return (int64_t)(n + 3) / 4; // the usual rule of thumb: about four bytes a token
}

/* The prompt's tokens as the limiter reserves them: content plus a few per message. */
static int64_t prompt_tokens(struct gf_keys_gate *g, struct gf_request *r)
{
    const struct gf_gen_request *gen = gf_request_gen(r);
    if (gen == NULL)
        return 0;
    int64_t t = 0;
    if (gen->kind == GF_GEN_CHAT) {
        for (size_t i = 0; i < gen->n_messages; i++) {
            const char *c = gen->messages[i].content;
            t += 4 + (c ? count_tokens(g, c, strlen(c)) : 0);
        }
    } else if (gen->prompt) {
        t = count_tokens(g, gen->prompt, strlen(gen->prompt));
    }
    return t;
}

static int add_header(void *ud, const char *name, const char *value)
{
    return gf_request_add_header(ud, name, value);
}

/* ---- hooks ----------------------------------------------------------------------------- */

static int hook_authenticate(void *ud, struct gf_request *r, struct gf_err *err)
{
    struct gf_keys_gate *g = ud;
    if (!needs_key(gf_request_route(r)))
        return 0;
    const char *authz = gf_request_header(r, "Authorization");
    if (g->cfg.open_mode && authz == NULL)
        return 0; // anonymous: no key, no limits (explicit config choice)
    if (!g->cfg.open_mode && g->keys->store->ops->count(g->keys->store) == 0)
        return gf_err_set(err, GF_EPERM,
                          "No API keys exist yet: create one with `gardefou keys create` "
                          "(or set keys.open_mode to serve without keys).");
    struct gf_key key;
    enum gf_auth a = gf_keys_authenticate(g->keys, authz, gf_wall_ms(), &key, NULL);
    if (a != GF_AUTH_OK) {
        if (a == GF_AUTH_REVOKED || a == GF_AUTH_SUSPENDED || a == GF_AUTH_EXPIRED) {
            gf_log(GF_LOG_INFO, "keys", "req=%s event=key_refused key=%s why=%s", gf_request_id(r),
                   key.id, gf_auth_code(a));
            // The key is known (its secret matched): its id goes into the refusal's audit
            // record, so an administrator sees who kept using a cut key. Never the secret.
            gf_request_set_key(r, key.id);
        }
        return gf_err_set(err, GF_EPERM, "%s", gf_auth_message(a));
    }
    int rc = gf_request_set_key(r, key.id);
    if (rc == 0 && key.group[0]) // the key's policy group decides which rules apply
        rc = gf_request_set_group(r, key.group);
    if (rc == 0 && !admitted(gf_request_route(r)) && g->keys->lim->ops->peek) {
        // A route the limiter does not count still tells the client where its key stands, so
        // every authenticated answer carries the same x-ratelimit-* headers.
        struct gf_rl_info info;
        g->keys->lim->ops->peek(g->keys->lim, key.id, &key.limits, gf_rl_now(), &info);
        gf_rl_headers(&info, false, add_header, r);
    }
    return rc;
}

static int hook_admit(void *ud, struct gf_request *r, struct gf_err *err)
{
    struct gf_keys_gate *g = ud;
    const char *id = gf_request_key(r);
    if (id == NULL || id[0] == '\0')
        return 0; // open mode, or a route without keys
    struct gf_key key;
    if (g->keys->store->ops->get(g->keys->store, id, &key) != 0)
        return gf_err_set(err, GF_EPERM, "%s", gf_auth_message(GF_AUTH_UNKNOWN));
    // The key may have been revoked between stage (2) and now: refuse it here too.
    enum gf_auth a = gf_keys_recheck(g->keys, id, GF_KEY_MATCH_CURRENT, gf_wall_ms());
    if (a != GF_AUTH_OK)
        return gf_err_set(err, GF_EPERM, "%s", gf_auth_message(a));
    struct live *l = gf_calloc(1, sizeof(*l));
    if (l == NULL || tgrow(g) != 0) {
        gf_free(l);
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    }
    struct gf_rl_info info;
    int rc = g->keys->lim->ops->admit(g->keys->lim, id, &key.limits, prompt_tokens(g, r),
                                      gf_rl_now(), &l->ticket, &info);
    gf_rl_headers(&info, rc == GF_ELIMIT, add_header, r);
    if (rc) {
        gf_free(l);
        if (rc == GF_ELIMIT) {
            gf_log(GF_LOG_INFO, "keys", "req=%s event=rate_limited key=%s limit=%d retry_s=%lld",
                   gf_request_id(r), id, (int)info.reason, (long long)info.retry_after_s);
            return gf_err_set(err, GF_ELIMIT, "%s", gf_rl_reason_message(info.reason));
        }
        return gf_err_set(err, rc, "rate limiter: %s", gf_strerror(rc));
    }
    l->r = r;
    gf_strlcpy(l->id, id, sizeof(l->id));
    l->next = g->head;
    if (g->head)
        g->head->prev = l;
    g->head = l;
    g->n_live++;
    g->tab[tfind(g, r)] = l;
    g->tused++;
    return 0;
}

static int hook_output(void *ud, struct gf_request *r, int index, const char *text, size_t len,
                       bool final, struct gf_buf *out, struct gf_err *err)
{
    struct gf_keys_gate *g = ud;
    (void)index;
    (void) final;
    struct live *l = live_of(g, r);
    if (l != NULL && len > 0 && (l->ticket.limits.tpm > 0 || l->ticket.limits.daily_tokens > 0)) {
        int64_t n = count_tokens(g, text, len);
        l->charged += n;
        if (g->keys->lim->ops->charge(g->keys->lim, &l->ticket, n, gf_rl_now(), NULL) != 0) {
            l->cut = true;
            gf_log(GF_LOG_INFO, "keys", "req=%s event=token_budget_exhausted key=%s",
                   gf_request_id(r), l->id);
            return gf_err_set(err, GF_ELIMIT,
                              "Rate limit reached for tokens on this API key: the stream was "
                              "stopped.");
        }
    }
    return gf_buf_append(out, text, len);
}

static void hook_release(void *ud, struct gf_request *r)
{
    struct gf_keys_gate *g = ud;
    struct live *l = live_of(g, r);
    if (l == NULL)
        return;
    // The engine's final count replaces the estimate charged while streaming.
    struct gf_gen_usage u = gf_request_usage(r);
    if (u.completion_tokens > l->charged)
        g->keys->lim->ops->charge(g->keys->lim, &l->ticket, u.completion_tokens - l->charged,
                                  gf_rl_now(), NULL);
    g->keys->lim->ops->release(g->keys->lim, &l->ticket);
    const char *msg = NULL;
    const char *fr = gf_request_finish_reason(r);
    bool blocked =
        gf_request_error(r, &msg) == GF_EPOLICY || (fr && strcmp(fr, "content_filter") == 0);
    char id[GF_KEYID_BUFLEN];
    gf_strlcpy(id, l->id, sizeof(id));
    tremove(g, r);
    if (l->prev)
        l->prev->next = l->next;
    else
        g->head = l->next;
    if (l->next)
        l->next->prev = l->prev;
    g->n_live--;
    gf_free(l);
    if (blocked) {
        int64_t max = g->cfg.abuse_max_blocks, window = g->cfg.abuse_window_ms;
        if (g->abuse)
            g->abuse(g->abuse_ud, &max, &window);
        if (gf_keys_note_block(g->keys, id, max, window, gf_rl_now()))
            gf_keys_gate_cut(g, id, GF_AUTH_SUSPENDED);
    }
}

/* ---- recheck timer --------------------------------------------------------------------- */

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gf_keys_gate *g = arg;
    int64_t now = gf_wall_ms();
    // Collect first: cutting ends requests, which unlinks them from the list under our feet.
    char ids[64][GF_KEYID_BUFLEN];
    enum gf_auth why[64];
    size_t n = 0;
    for (struct live *l = g->head; l && n < 64; l = l->next) {
        bool seen = false;
        for (size_t i = 0; i < n && !seen; i++)
            seen = strcmp(ids[i], l->id) == 0;
        if (seen)
            continue;
        enum gf_auth a = gf_keys_recheck(g->keys, l->id, GF_KEY_MATCH_CURRENT, now);
        if (a != GF_AUTH_OK) {
            gf_strlcpy(ids[n], l->id, sizeof(ids[n]));
            why[n++] = a;
        }
    }
    for (size_t i = 0; i < n; i++)
        gf_keys_gate_cut(g, ids[i], why[i]);
}

/* ---- life ------------------------------------------------------------------------------ */

size_t gf_keys_gate_cut(struct gf_keys_gate *g, const char *key_id, enum gf_auth why)
{
    size_t n = gf_gateway_cancel_key(g->gw, key_id, GF_EPERM, gf_auth_message(why));
    if (n)
        gf_log(GF_LOG_INFO, "keys", "event=requests_cut key=%s why=%s count=%zu", key_id,
               gf_auth_code(why), n);
    return n;
}

void gf_keys_gate_admin_cut(void *ud, const char *key_id, enum gf_auth why)
{
    gf_keys_gate_cut(ud, key_id, why);
}

void gf_keys_gate_set_abuse(struct gf_keys_gate *g, gf_keys_abuse_fn fn, void *ud)
{
    g->abuse = fn;
    g->abuse_ud = ud;
}

int gf_keys_gate_new(struct event_base *base, struct gf_gateway *gw, struct gf_keys *keys,
                     struct gf_engine *engine, const struct gf_keys_gate_config *cfg,
                     struct gf_keys_gate **out, struct gf_err *err)
{
    *out = NULL;
    struct gf_keys_gate *g = gf_calloc(1, sizeof(*g));
    if (g == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    g->gw = gw;
    g->keys = keys;
    g->engine = engine;
    g->cfg = *cfg;
    if (g->cfg.recheck_ms <= 0)
        g->cfg.recheck_ms = 250;
    g->timer = event_new(base, -1, EV_PERSIST, on_timer, g);
    struct gf_hooks h = {
        .name = "keys",
        .ud = g,
        .authenticate = hook_authenticate,
        .admit = hook_admit,
        .output = hook_output,
        .release = hook_release,
    };
    int rc = g->timer ? gf_gateway_add_hooks(gw, &h) : GF_ENOMEM;
    if (rc) {
        gf_keys_gate_free(g);
        return gf_err_set(err, rc, "keys: cannot join the pipeline: %s", gf_strerror(rc));
    }
    struct timeval tv = {g->cfg.recheck_ms / 1000, (g->cfg.recheck_ms % 1000) * 1000};
    event_add(g->timer, &tv);
    size_t n = keys->store->ops->count(keys->store);
    if (cfg->open_mode)
        gf_log(GF_LOG_WARN, "keys",
               "event=keys_mode mode=open keys=%zu note=\"requests without "
               "a key are served unlimited (keys.open_mode)\"",
               n);
    else if (n == 0)
        gf_log(GF_LOG_WARN, "keys",
               "event=keys_mode mode=enforced keys=0 note=\"no API keys "
               "exist: API requests get 401 until one is made with gardefou keys create (or "
               "keys.open_mode is set)\"");
    else
        gf_log(GF_LOG_INFO, "keys", "event=keys_mode mode=enforced keys=%zu", n);
    *out = g;
    return 0;
}

void gf_keys_gate_free(struct gf_keys_gate *g)
{
    if (g == NULL)
        return;
    if (g->timer)
        event_free(g->timer);
    while (g->head) {
        struct live *l = g->head;
        g->head = l->next;
        g->keys->lim->ops->release(g->keys->lim, &l->ticket);
        gf_free(l);
    }
    gf_free(g->tab);
    gf_free(g);
}
