/* upstream_logprobs.c — the token log-probabilities an OpenAI-compatible upstream returns in a
 * choice ("logprobs"), read into gf_gen_logprob entries so that the gateway relays them under
 * the same rules as the embedded engine's (they stop once a filter changes the text). Two wire
 * shapes exist: chat's {"content":[{"token","logprob","bytes","top_logprobs":[{...}]}]} and the
 * legacy completions arrays {"tokens":[..],"token_logprobs":[..],"top_logprobs":[{tok:lp}]}.
 * Anything that does not fit (a wrong type, a missing logprob) is skipped, never guessed: the
 * entry or the whole object is dropped and the text still flows. */
#include "engine/upstream_int.h"

#include <math.h>
#include <string.h>

static bool js_is_kind(struct gf_js v, char c)
{
    return v.n > 0 && v.p[0] == c;
}

static bool js_null(struct gf_js v)
{
    return v.n == 4 && memcmp(v.p, "null", 4) == 0;
}

/* Decodes a token: from its "bytes" array when it is a valid one (the exact bytes of a token
 * that is part of a character), else from the string. The bytes land in l->strs, whose room was
 * reserved up front so that earlier pointers stay valid. */
static bool take_token(struct gf_up_logprobs *l, const struct gf_js *str, const struct gf_js *bytes,
                       const char **tok, size_t *len)
{
    struct gf_buf *b = &l->strs;
    size_t at = b->len;
    if (bytes != NULL && js_is_kind(*bytes, '[')) {
        struct gf_js_it it;
        struct gf_js e;
        bool ok = true;
        gf_js_iter(&it, *bytes);
        while (ok && gf_js_next(&it, NULL, &e)) {
            double d;
            ok = gf_js_num(e, &d) && d >= 0 && d <= 255 && d == floor(d) &&
                 gf_buf_putc(b, (char)(unsigned char)d) == 0;
        }
        if (ok) {
            *tok = b->data + at;
            *len = b->len - at;
            return true;
        }
        b->len = at;
    }
    if (str == NULL || !js_is_kind(*str, '"') || gf_js_str(*str, b) != 0) {
        b->len = at;
        return false;
    }
    *tok = b->data + at;
    *len = b->len - at;
    return true;
}

static bool take_lp(struct gf_js v, float *out)
{
    double d;
    if (js_null(v)) {
        *out = -INFINITY;  // rendered as OpenAI's -9999.0
        return true;
    }
    if (!gf_js_num(v, &d) || d > 0)
        return false;
    *out = (float)d;
    return true;
}

/* One {"token","logprob","bytes"} object of chat's shape. */
static bool chat_item(struct gf_up_logprobs *l, struct gf_js obj, const char **tok, size_t *len,
                      float *lp, struct gf_js *tops, bool *has_tops)
{
    if (!js_is_kind(obj, '{'))
        return false;
    struct gf_js k, v, t = {0}, by = {0}, lv = {0};
    bool has_t = false, has_b = false, has_l = false;
    *has_tops = false;
    struct gf_js_it it;
    gf_js_iter(&it, obj);
    while (gf_js_next(&it, &k, &v)) {
        if (!has_t && gf_js_is(k, "token"))
            t = v, has_t = true;
        else if (!has_b && gf_js_is(k, "bytes"))
            by = v, has_b = true;
        else if (!has_l && gf_js_is(k, "logprob"))
            lv = v, has_l = true;
        else if (tops != NULL && !*has_tops && gf_js_is(k, "top_logprobs"))
            *tops = v, *has_tops = true;
    }
    return has_l && take_lp(lv, lp) &&
           take_token(l, has_t ? &t : NULL, has_b ? &by : NULL, tok, len);
}

static int grow(struct gf_up_logprobs *l)
{
    if (l->n < l->cap)
        return 0;
    int cap = l->cap ? l->cap * 2 : 8;
    struct gf_gen_logprob *p = gf_realloc(l->items, (size_t)cap * sizeof(*p));
    if (p == NULL)
        return GF_ENOMEM;
    l->items = p;
    l->cap = cap;
    return 0;
}

static int parse_chat(struct gf_up_logprobs *l, struct gf_js obj)
{
    struct gf_js k, content = {0};
    bool found = false;
    struct gf_js_it it;
    gf_js_iter(&it, obj);
    while (!found && gf_js_next(&it, &k, &content))
        found = gf_js_is(k, "content");
    if (!found || !js_is_kind(content, '['))
        return 0;
    struct gf_js item;
    gf_js_iter(&it, content);
    while (gf_js_next(&it, NULL, &item)) {
        if (grow(l) != 0)
            return GF_ENOMEM;
        struct gf_gen_logprob *e = &l->items[l->n];
        struct gf_js tops;
        bool has_tops;
        if (!chat_item(l, item, &e->token, &e->len, &e->logprob, &tops, &has_tops))
            continue;
        e->n_top = 0;
        if (has_tops && js_is_kind(tops, '[')) {
            struct gf_js_it ti;
            struct gf_js top;
            gf_js_iter(&ti, tops);
            while (e->n_top < GF_GEN_MAX_TOP_LOGPROBS && gf_js_next(&ti, NULL, &top)) {
                struct gf_gen_top_logprob *t = &e->top[e->n_top];
                if (chat_item(l, top, &t->token, &t->len, &t->logprob, NULL, &has_tops))
                    e->n_top++;
            }
        }
        l->n++;
    }
    return 0;
}

/* The legacy arrays walked side by side: an entry needs a token and a logprob. */
static int parse_completion(struct gf_up_logprobs *l, struct gf_js obj)
{
    struct gf_js k, v, toks = {0}, lps = {0}, tops = {0};
    bool has_toks = false, has_lps = false, has_tops = false;
    struct gf_js_it it;
    gf_js_iter(&it, obj);
    while (gf_js_next(&it, &k, &v)) {
        if (!has_toks && gf_js_is(k, "tokens"))
            toks = v, has_toks = true;
        else if (!has_lps && gf_js_is(k, "token_logprobs"))
            lps = v, has_lps = true;
        else if (!has_tops && gf_js_is(k, "top_logprobs"))
            tops = v, has_tops = true;
    }
    if (!has_toks || !has_lps || !js_is_kind(toks, '[') || !js_is_kind(lps, '['))
        return 0;
    has_tops = has_tops && js_is_kind(tops, '[');
    struct gf_js_it ti, li, pi;
    gf_js_iter(&ti, toks);
    gf_js_iter(&li, lps);
    if (has_tops)
        gf_js_iter(&pi, tops);
    struct gf_js tv, lv, pv;
    while (gf_js_next(&ti, NULL, &tv) && gf_js_next(&li, NULL, &lv)) {
        bool top_here = has_tops && gf_js_next(&pi, NULL, &pv);
        has_tops = top_here;
        if (grow(l) != 0)
            return GF_ENOMEM;
        struct gf_gen_logprob *e = &l->items[l->n];
        size_t mark = l->strs.len;
        if (!take_lp(lv, &e->logprob) || !take_token(l, &tv, NULL, &e->token, &e->len)) {
            l->strs.len = mark;
            continue;
        }
        e->n_top = 0;
        if (top_here && js_is_kind(pv, '{')) {
            struct gf_js_it oi;
            struct gf_js tk, tl;
            gf_js_iter(&oi, pv);
            while (e->n_top < GF_GEN_MAX_TOP_LOGPROBS && gf_js_next(&oi, &tk, &tl)) {
                struct gf_gen_top_logprob *t = &e->top[e->n_top];
                if (take_lp(tl, &t->logprob) && take_token(l, &tk, NULL, &t->token, &t->len))
                    e->n_top++;
            }
        }
        l->n++;
    }
    return 0;
}

void gf_up_logprobs_init(struct gf_up_logprobs *l)
{
    memset(l, 0, sizeof(*l));
    gf_buf_init(&l->strs, 0);
}

void gf_up_logprobs_cleanup(struct gf_up_logprobs *l)
{
    gf_free(l->items);
    gf_buf_cleanup(&l->strs);
    memset(l, 0, sizeof(*l));
}

int gf_up_logprobs_parse(struct gf_up_logprobs *l, struct gf_js v, bool chat)
{
    l->n = 0;
    gf_buf_reset(&l->strs);
    if (!js_is_kind(v, '{'))
        return 0;  // null, or not something we can read: no logprobs
    // Decoded strings and byte arrays are never longer than their JSON text (quotes and
    // separators included), so room for v.n bytes keeps every token pointer valid.
    l->strs.max = v.n + 1;
    if (gf_buf_reserve(&l->strs, v.n + 1) != 0)
        return GF_ENOMEM;
    const char *base = l->strs.data;
    int rc = chat ? parse_chat(l, v) : parse_completion(l, v);
    if (rc == 0 && l->strs.data != base) {
        l->n = 0;  // cannot happen (see above); never hand out dangling pointers
        return GF_EUPSTREAM;
    }
    return rc;
}
