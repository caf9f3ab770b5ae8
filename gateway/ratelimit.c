/* ratelimit.c — the local limiter: per key, requests per minute and tokens per minute as GCRA
 * (a theoretical arrival time per bucket), requests in flight, tokens per UTC day, and the
 * policy-block history that drives abuse suspension. Invariant: a decision checks every limit
 * before it changes any, under one mutex, so concurrent callers never over-admit: a bucket of
 * capacity C admits at most C units at one instant and C units per minute sustained. */
#include "gateway/keys_int.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define MINUTE_NS  60000000000ull
#define DAY_MS     86400000ll
#define BLOCKS_MAX 10000 // cap on the block history kept per key

struct slot {
    char id[GF_KEYID_BUFLEN];
    uint64_t req_tat; // GCRA: when the request bucket is full again (monotonic ns)
    uint64_t tok_tat; // same for tokens
    int64_t conc;     // requests in flight
    int64_t day;      // the UTC day day_used counts
    int64_t day_used;
    uint64_t *blocks; // ring of the last bcap block times (ns)
    size_t bcap, bhead, bn;
};

struct limiter {
    struct gf_limiter pub;
    pthread_mutex_t mu;
    struct slot **tab; // open addressing by id; slots never move (tickets point at them)
    size_t cap, n;
    uint64_t usage_version; // bumped by every change of a daily count (persisted by keys_usage.c)
};

/* ---- GCRA ------------------------------------------------------------------------------ */

/* A bucket of capacity cap units refilling over a minute: each unit costs T ns of "credit",
 * the bucket holds W = cap * T. T is rounded up, so rounding never over-admits. */
struct bucket {
    uint64_t T, W;
};

static struct bucket bucket_of(int64_t cap)
{
    struct bucket b;
    b.T = (MINUTE_NS + (uint64_t)cap - 1) / (uint64_t)cap;
    b.W = b.T * (uint64_t)cap;
    return b;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t cost_ns(struct bucket b, int64_t units)
{
    uint64_t r;
    if (units <= 0)
        return 0;
    if (__builtin_mul_overflow((uint64_t)units, b.T, &r))
        return UINT64_MAX / 2;
    return r;
}

/* The tat after taking units now, and whether that fits. */
static bool gcra_fits(struct bucket b, uint64_t tat, uint64_t now, int64_t units, uint64_t *next)
{
    uint64_t base = tat > now ? tat : now;
    *next = sat_add(base, cost_ns(b, units));
    return *next - now <= b.W;
}

static int64_t gcra_remaining(struct bucket b, uint64_t tat, uint64_t now)
{
    uint64_t used = tat > now ? tat - now : 0;
    return used >= b.W ? 0 : (int64_t)((b.W - used) / b.T);
}

static int64_t ns_to_ms_ceil(uint64_t ns)
{
    return (int64_t)((ns + 999999) / 1000000);
}

/* ---- slots ----------------------------------------------------------------------------- */

static uint64_t id_hash(const char *s)
{
    uint64_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211u;
    return h;
}

static size_t find(const struct limiter *l, const char *id)
{
    size_t mask = l->cap - 1;
    for (size_t i = id_hash(id) & mask;; i = (i + 1) & mask)
        if (l->tab[i] == NULL || strcmp(l->tab[i]->id, id) == 0)
            return i;
}

static struct slot *get_slot(struct limiter *l, const char *id, bool create)
{
    if (l->cap) {
        struct slot *s = l->tab[find(l, id)];
        if (s || !create)
            return s;
    } else if (!create) {
        return NULL;
    }
    if ((l->n + 1) * 2 > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        struct slot **nt = gf_calloc(cap, sizeof(*nt));
        if (nt == NULL)
            return NULL;
        struct slot **old = l->tab;
        size_t oldcap = l->cap;
        l->tab = nt;
        l->cap = cap;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i])
                l->tab[find(l, old[i]->id)] = old[i];
        gf_free(old);
    }
    struct slot *s = gf_calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    gf_strlcpy(s->id, id, sizeof(s->id));
    l->tab[find(l, id)] = s;
    l->n++;
    return s;
}

/* ---- decisions ------------------------------------------------------------------------- */

static void fill_info(const struct slot *s, const struct gf_key_limits *lim, uint64_t now,
                      struct gf_rl_info *info)
{
    info->limit_requests = lim->rpm > 0 ? lim->rpm : -1;
    info->remaining_requests = 0;
    info->reset_requests_ms = 0;
    if (lim->rpm > 0) {
        struct bucket b = bucket_of(lim->rpm);
        info->remaining_requests = gcra_remaining(b, s->req_tat, now);
        info->reset_requests_ms = s->req_tat > now ? ns_to_ms_ceil(s->req_tat - now) : 0;
    }
    info->limit_tokens = lim->tpm > 0 ? lim->tpm : -1;
    info->remaining_tokens = 0;
    info->reset_tokens_ms = 0;
    if (lim->tpm > 0) {
        struct bucket b = bucket_of(lim->tpm);
        info->remaining_tokens = gcra_remaining(b, s->tok_tat, now);
        info->reset_tokens_ms = s->tok_tat > now ? ns_to_ms_ceil(s->tok_tat - now) : 0;
    }
}

static int64_t retry_s(uint64_t wait_ns)
{
    int64_t s = (int64_t)((wait_ns + 999999999ull) / 1000000000ull);
    return s < 1 ? 1 : s;
}

static void day_roll(struct slot *s, int64_t wall_ms)
{
    int64_t day = wall_ms / DAY_MS;
    if (day != s->day) {
        s->day = day;
        s->day_used = 0;
    }
}

static int op_admit(struct gf_limiter *gl, const char *key_id, const struct gf_key_limits *lim,
                    int64_t prompt_tokens, struct gf_rl_now now, struct gf_rl_ticket *t,
                    struct gf_rl_info *info)
{
    struct limiter *l = gl->impl;
    memset(t, 0, sizeof(*t));
    memset(info, 0, sizeof(*info));
    if (prompt_tokens < 0)
        prompt_tokens = 0;
    pthread_mutex_lock(&l->mu);
    struct slot *s = get_slot(l, key_id, true);
    if (s == NULL) {
        pthread_mutex_unlock(&l->mu);
        info->limit_requests = info->limit_tokens = -1;
        return GF_ENOMEM;
    }
    uint64_t mono = now.mono_ns;
    day_roll(s, now.wall_ms);
    enum gf_rl_reason why = GF_RL_OK;
    uint64_t wait = 0, req_next = s->req_tat, tok_next = s->tok_tat;
    if (lim->max_concurrent > 0 && s->conc >= lim->max_concurrent) {
        why = GF_RL_CONCURRENCY;
        wait = 1000000000ull; // no schedule to predict: a second is an honest guess
    } else if (lim->rpm > 0 && !gcra_fits(bucket_of(lim->rpm), s->req_tat, mono, 1, &req_next)) {
        why = GF_RL_REQUESTS;
        wait = req_next - bucket_of(lim->rpm).W - mono;
    } else if (lim->tpm > 0 &&
               !gcra_fits(bucket_of(lim->tpm), s->tok_tat, mono, prompt_tokens, &tok_next)) {
        why = GF_RL_TOKENS;
        uint64_t W = bucket_of(lim->tpm).W;
        wait = tok_next - mono > W && cost_ns(bucket_of(lim->tpm), prompt_tokens) <= W
                   ? tok_next - W - mono
                   : MINUTE_NS; // larger than the whole bucket: can never pass; say a minute
    } else if (lim->daily_tokens > 0 && s->day_used + prompt_tokens > lim->daily_tokens) {
        why = GF_RL_DAILY;
        wait = (uint64_t)(DAY_MS - now.wall_ms % DAY_MS) * 1000000ull;
    }
    if (why != GF_RL_OK) {
        fill_info(s, lim, mono, info);
        info->reason = why;
        info->retry_after_s = retry_s(wait);
        pthread_mutex_unlock(&l->mu);
        return GF_ELIMIT;
    }
    if (lim->rpm > 0)
        s->req_tat = req_next;
    if (lim->tpm > 0)
        s->tok_tat = tok_next;
    s->day_used += prompt_tokens;
    if (prompt_tokens > 0)
        l->usage_version++;
    s->conc++;
    fill_info(s, lim, mono, info);
    pthread_mutex_unlock(&l->mu);
    t->slot = s;
    t->limits = *lim;
    t->tokens = prompt_tokens;
    t->holds_conc = true;
    t->active = true;
    return 0;
}

static int op_charge(struct gf_limiter *gl, struct gf_rl_ticket *t, int64_t n, struct gf_rl_now now,
                     struct gf_rl_info *info)
{
    struct limiter *l = gl->impl;
    if (!t->active || n <= 0) {
        if (info && t->active) {
            pthread_mutex_lock(&l->mu);
            fill_info(t->slot, &t->limits, now.mono_ns, info);
            pthread_mutex_unlock(&l->mu);
        }
        return 0;
    }
    struct slot *s = t->slot;
    int rc = 0;
    pthread_mutex_lock(&l->mu);
    t->tokens += n;
    if (t->limits.tpm > 0) {
        uint64_t next;
        if (!gcra_fits(bucket_of(t->limits.tpm), s->tok_tat, now.mono_ns, n, &next))
            rc = GF_ELIMIT;
        s->tok_tat = next; // charged anyway: the tokens were generated
    }
    day_roll(s, now.wall_ms);
    s->day_used += n;
    l->usage_version++;
    if (t->limits.daily_tokens > 0 && s->day_used > t->limits.daily_tokens)
        rc = GF_ELIMIT;
    if (info) {
        fill_info(s, &t->limits, now.mono_ns, info);
        if (rc) {
            info->reason = t->limits.daily_tokens > 0 && s->day_used > t->limits.daily_tokens
                               ? GF_RL_DAILY
                               : GF_RL_TOKENS;
            info->retry_after_s =
                retry_s(info->reason == GF_RL_DAILY
                            ? (uint64_t)(DAY_MS - now.wall_ms % DAY_MS) * 1000000ull
                            : s->tok_tat - now.mono_ns - bucket_of(t->limits.tpm).W);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static void op_release(struct gf_limiter *gl, struct gf_rl_ticket *t)
{
    struct limiter *l = gl->impl;
    if (!t->active)
        return;
    pthread_mutex_lock(&l->mu);
    struct slot *s = t->slot;
    if (t->holds_conc && s->conc > 0)
        s->conc--;
    pthread_mutex_unlock(&l->mu);
    t->active = false;
    t->holds_conc = false;
}

static bool op_note_block(struct gf_limiter *gl, const char *key_id, int64_t max_blocks,
                          int64_t window_ms, struct gf_rl_now now)
{
    struct limiter *l = gl->impl;
    if (max_blocks < 0 || window_ms <= 0)
        return false;
    if (max_blocks > BLOCKS_MAX)
        max_blocks = BLOCKS_MAX;
    size_t want = (size_t)max_blocks + 1;
    bool over = false;
    pthread_mutex_lock(&l->mu);
    struct slot *s = get_slot(l, key_id, true);
    if (s == NULL)
        goto out;
    if (s->bcap != want) { // the setting changed: start the history afresh
        uint64_t *nb = gf_calloc(want, sizeof(*nb));
        if (nb == NULL)
            goto out;
        gf_free(s->blocks);
        s->blocks = nb;
        s->bcap = want;
        s->bhead = s->bn = 0;
    }
    s->blocks[(s->bhead + s->bn) % s->bcap] = now.mono_ns;
    if (s->bn < s->bcap)
        s->bn++;
    else
        s->bhead = (s->bhead + 1) % s->bcap;
    // More than max_blocks in the window: the oldest of the last max_blocks+1 is recent.
    if (s->bn == s->bcap && now.mono_ns - s->blocks[s->bhead] <= (uint64_t)window_ms * 1000000u)
        over = true;
out:
    pthread_mutex_unlock(&l->mu);
    return over;
}

static void op_clear_blocks(struct gf_limiter *gl, const char *key_id)
{
    struct limiter *l = gl->impl;
    pthread_mutex_lock(&l->mu);
    struct slot *s = get_slot(l, key_id, false);
    if (s)
        s->bhead = s->bn = 0;
    pthread_mutex_unlock(&l->mu);
}

static void op_peek(struct gf_limiter *gl, const char *key_id, const struct gf_key_limits *lim,
                    struct gf_rl_now now, struct gf_rl_info *info)
{
    struct limiter *l = gl->impl;
    static const struct slot fresh; // a key never seen: every bucket full
    memset(info, 0, sizeof(*info));
    pthread_mutex_lock(&l->mu);
    const struct slot *s = get_slot(l, key_id, false);
    fill_info(s ? s : &fresh, lim, now.mono_ns, info);
    pthread_mutex_unlock(&l->mu);
}

static int op_usage_each(struct gf_limiter *gl,
                         int (*fn)(void *ud, const char *key_id, int64_t day, int64_t used),
                         void *ud)
{
    struct limiter *l = gl->impl;
    int rc = 0;
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; rc == 0 && i < l->cap; i++)
        if (l->tab[i] && l->tab[i]->day_used > 0)
            rc = fn(ud, l->tab[i]->id, l->tab[i]->day, l->tab[i]->day_used);
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static int op_usage_restore(struct gf_limiter *gl, const char *key_id, int64_t day, int64_t used)
{
    struct limiter *l = gl->impl;
    if (used < 0 || day < 0)
        return GF_EINVAL;
    pthread_mutex_lock(&l->mu);
    struct slot *s = get_slot(l, key_id, true);
    int rc = s ? 0 : GF_ENOMEM;
    if (s && day > s->day) { // a fresh slot (day 0) or an older day: the restored day wins
        s->day = day;
        s->day_used = used;
    } else if (s && day == s->day && used > s->day_used) {
        s->day_used = used; // never lower a count: tokens spent since the start still count
    }
    if (s)
        l->usage_version++;
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static uint64_t op_usage_version(struct gf_limiter *gl)
{
    struct limiter *l = gl->impl;
    pthread_mutex_lock(&l->mu);
    uint64_t v = l->usage_version;
    pthread_mutex_unlock(&l->mu);
    return v;
}

static void op_close(struct gf_limiter *gl)
{
    struct limiter *l = gl->impl;
    for (size_t i = 0; i < l->cap; i++) {
        if (l->tab[i]) {
            gf_free(l->tab[i]->blocks);
            gf_free(l->tab[i]);
        }
    }
    gf_free(l->tab);
    pthread_mutex_destroy(&l->mu);
    gf_free(l);
}

static const struct gf_limiter_ops local_ops = {
    .name = "local",
    .admit = op_admit,
    .charge = op_charge,
    .release = op_release,
    .note_block = op_note_block,
    .clear_blocks = op_clear_blocks,
    .peek = op_peek,
    .usage_each = op_usage_each,
    .usage_restore = op_usage_restore,
    .usage_version = op_usage_version,
    .close = op_close,
};

int gf_limiter_open_local(struct gf_limiter **out)
{
    struct limiter *l = gf_calloc(1, sizeof(*l));
    *out = NULL;
    if (l == NULL)
        return GF_ENOMEM;
    pthread_mutex_init(&l->mu, NULL);
    l->pub.ops = &local_ops;
    l->pub.impl = l;
    *out = &l->pub;
    return 0;
}

void gf_limiter_close(struct gf_limiter *l)
{
    if (l)
        l->ops->close(l);
}

/* ---- headers --------------------------------------------------------------------------- */

struct gf_rl_now gf_rl_now(void)
{
    struct gf_rl_now n = {gf_now_ns(), gf_wall_ms()};
    return n;
}

void gf_rl_format_reset(int64_t ms, char *out, size_t outlen)
{
    if (ms < 0)
        ms = 0;
    if (ms < 1000) {
        snprintf(out, outlen, "%lldms", (long long)ms);
        return;
    }
    long long h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60, frac = ms % 1000;
    char sec[24];
    if (frac == 0)
        snprintf(sec, sizeof(sec), "%llds", s);
    else if (frac % 100 == 0)
        snprintf(sec, sizeof(sec), "%lld.%llds", s, frac / 100);
    else if (frac % 10 == 0)
        snprintf(sec, sizeof(sec), "%lld.%02llds", s, frac / 10);
    else
        snprintf(sec, sizeof(sec), "%lld.%03llds", s, frac);
    if (h > 0)
        snprintf(out, outlen, "%lldh%lldm%s", h, m, sec);
    else if (m > 0)
        snprintf(out, outlen, "%lldm%s", m, sec);
    else
        snprintf(out, outlen, "%s", sec);
}

int gf_rl_headers(const struct gf_rl_info *info, bool refused, gf_header_fn fn, void *ud)
{
    char v[32];
    int rc = 0;
    if (info->limit_requests > 0) {
        snprintf(v, sizeof(v), "%lld", (long long)info->limit_requests);
        rc = rc ? rc : fn(ud, "x-ratelimit-limit-requests", v);
        snprintf(v, sizeof(v), "%lld", (long long)info->remaining_requests);
        rc = rc ? rc : fn(ud, "x-ratelimit-remaining-requests", v);
        gf_rl_format_reset(info->reset_requests_ms, v, sizeof(v));
        rc = rc ? rc : fn(ud, "x-ratelimit-reset-requests", v);
    }
    if (info->limit_tokens > 0) {
        snprintf(v, sizeof(v), "%lld", (long long)info->limit_tokens);
        rc = rc ? rc : fn(ud, "x-ratelimit-limit-tokens", v);
        snprintf(v, sizeof(v), "%lld", (long long)info->remaining_tokens);
        rc = rc ? rc : fn(ud, "x-ratelimit-remaining-tokens", v);
        gf_rl_format_reset(info->reset_tokens_ms, v, sizeof(v));
        rc = rc ? rc : fn(ud, "x-ratelimit-reset-tokens", v);
    }
    if (refused) {
        snprintf(v, sizeof(v), "%lld",
                 (long long)(info->retry_after_s > 0 ? info->retry_after_s : 1));
        rc = rc ? rc : fn(ud, "Retry-After", v);
    }
    return rc;
}

const char *gf_rl_reason_message(enum gf_rl_reason r)
{
    switch (r) {
    case GF_RL_REQUESTS:
        return "Rate limit reached for requests per minute on this API key.";
    case GF_RL_TOKENS:
        return "Rate limit reached for tokens per minute on this API key.";
    case GF_RL_CONCURRENCY:
        return "Too many concurrent requests on this API key.";
    case GF_RL_DAILY:
        return "The daily token quota of this API key is exhausted.";
    case GF_RL_OK:
        break;
    }
    return "ok";
}
