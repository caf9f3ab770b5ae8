/* upstream_json.c — the JSON side of the upstream engine: the body sent upstream (the client's
 * body with every field it does not interpret kept as is) and the parsing of upstream replies,
 * streamed chunks or whole, into gf_gen events. Text goes out as valid UTF-8 in whole characters:
 * bytes of a character split between two chunks wait in a per-choice pending buffer, and bytes
 * that can never form a character become U+FFFD. */
#include "engine/upstream_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

/* ---- request body ------------------------------------------------------------------------ */

/* Sets obj[key] = item, replacing an existing member. Takes item in every case: it is freed
 * when it cannot be attached (cJSON could not copy the key). */
static bool set_item(cJSON *obj, const char *key, cJSON *item)
{
    if (item == NULL)
        return false;
    bool ok = cJSON_GetObjectItemCaseSensitive(obj, key) != NULL
                  ? cJSON_ReplaceItemInObjectCaseSensitive(obj, key, item)
                  : cJSON_AddItemToObject(obj, key, item);
    if (!ok)
        cJSON_Delete(item);
    return ok;
}

/* Builds a body from the request's fields, for callers that have no client body. */
static cJSON *body_from_fields(const struct gf_gen_request *req)
{
    const struct gf_gen_params *p = &req->params;
    cJSON *j = cJSON_CreateObject();
    if (j == NULL)
        return NULL;
    bool ok = true;
    if (req->kind == GF_GEN_CHAT) {
        cJSON *msgs = cJSON_AddArrayToObject(j, "messages");
        ok = msgs != NULL;
        for (size_t i = 0; ok && i < req->n_messages; i++) {
            cJSON *m = cJSON_CreateObject();
            ok = m != NULL && cJSON_AddItemToArray(msgs, m);
            if (!ok) {
                cJSON_Delete(m);
                break;
            }
            const char *role = req->messages[i].role ? req->messages[i].role : "user";
            ok = cJSON_AddStringToObject(m, "role", role) != NULL;
            if (ok && req->messages[i].content)
                ok = cJSON_AddStringToObject(m, "content", req->messages[i].content) != NULL;
        }
    } else {
        ok = cJSON_AddStringToObject(j, "prompt", req->prompt ? req->prompt : "") != NULL;
    }
    if (ok && p->max_tokens >= 1)
        ok = cJSON_AddNumberToObject(j, "max_tokens", p->max_tokens) != NULL;
    if (ok)
        ok = cJSON_AddNumberToObject(j, "temperature", p->temperature) != NULL &&
             cJSON_AddNumberToObject(j, "top_p", p->top_p) != NULL;
    if (ok && p->n != 1)
        ok = cJSON_AddNumberToObject(j, "n", p->n) != NULL;
    if (ok && p->frequency_penalty != 0)
        ok = cJSON_AddNumberToObject(j, "frequency_penalty", p->frequency_penalty) != NULL;
    if (ok && p->presence_penalty != 0)
        ok = cJSON_AddNumberToObject(j, "presence_penalty", p->presence_penalty) != NULL;
    if (ok && p->has_seed)
        ok = cJSON_AddNumberToObject(j, "seed", (double)p->seed) != NULL;
    if (ok && p->n_stop > 0) {
        cJSON *stop = cJSON_AddArrayToObject(j, "stop");
        ok = stop != NULL;
        for (size_t i = 0; ok && i < p->n_stop; i++) {
            cJSON *s = cJSON_CreateString(p->stop[i]);
            ok = s != NULL && cJSON_AddItemToArray(stop, s);
            if (!ok)
                cJSON_Delete(s);
        }
    }
    if (!ok) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* Appends the JSON text of item's value, printed by cJSON into b's spare room (no tree copy,
 * no allocation unless b must grow). */
static int put_value_cjson(struct gf_buf *b, const cJSON *item)
{
    size_t room = 256;
    for (;;) {
        int rc = gf_buf_reserve(b, room);
        if (rc != 0)
            return rc;
        // cJSON asks for 5 spare bytes: its size estimate is not exact
        if (cJSON_PrintPreallocated((cJSON *)item, b->data + b->len, (int)(b->cap - b->len - 1),
                                    false)) {
            b->len += strlen(b->data + b->len);
            return 0;
        }
        b->data[b->len] = '\0';
        if (b->cap - b->len > (size_t)1 << 30)
            return GF_ETOOBIG;
        room = (b->cap - b->len) * 2;
    }
}

/* Appends the string s quoted and escaped exactly as cJSON prints it (", \\, \\b, \\f, \\n, \\r,
 * \\t, other bytes below 0x20 as \\u00xx, every other byte as it is). GF_ETOOBIG when b cannot
 * take the worst case (the caller then lets cJSON print). */
static int put_cjson_str(struct gf_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = s ? strlen(s) : 0;
    if (n > ((size_t)1 << 40))
        return GF_ETOOBIG;
    int rc = gf_buf_reserve(b, n * 6 + 2);
    if (rc != 0)
        return rc;
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
    return 0;
}

/* Appends item's value as cJSON_PrintUnformatted would, without its printf and sscanf for
 * integers and without a pass to size the output: strings, integers, literals, arrays and
 * objects are written here, other numbers (and anything unexpected) by cJSON. */
static int put_value(struct gf_buf *b, const cJSON *item)
{
    size_t at = b->len;
    int rc = 0;
    const cJSON *c;
    switch (item->type & 0xFF) {
    case cJSON_String:
        rc = put_cjson_str(b, item->valuestring);
        break;
    case cJSON_Number: {
        // cJSON prints "%1.15g" (exact, and so kept, for an integer below 1e15 in magnitude;
        // -0 keeps its sign)
        double d = item->valuedouble;
        if (!(d > -1e15 && d < 1e15) || d != floor(d) || (d == 0 && signbit(d)))
            return put_value_cjson(b, item);
        return gf_buf_put_i64(b, (int64_t)d);
    }
    case cJSON_True:
        return gf_buf_append(b, "true", 4);
    case cJSON_False:
        return gf_buf_append(b, "false", 5);
    case cJSON_NULL:
        return gf_buf_append(b, "null", 4);
    case cJSON_Array:
    case cJSON_Object: {
        bool obj = (item->type & 0xFF) == cJSON_Object;
        rc = gf_buf_putc(b, obj ? '{' : '[');
        for (c = item->child; rc == 0 && c != NULL; c = c->next) {
            if (c != item->child)
                rc = gf_buf_putc(b, ',');
            if (rc == 0 && obj) {
                rc = put_cjson_str(b, c->string);
                rc = rc ? rc : gf_buf_putc(b, ':');
            }
            rc = rc ? rc : put_value(b, c);
        }
        rc = rc ? rc : gf_buf_putc(b, obj ? '}' : ']');
        break;
    }
    default:
        return put_value_cjson(b, item);
    }
    if (rc == GF_ETOOBIG) { // a worst-case reservation did not fit: let cJSON print it
        b->len = at;
        if (b->data != NULL)
            b->data[at] = '\0';
        return put_value_cjson(b, item);
    }
    return rc;
}

static int put_key(struct gf_buf *b, bool *first, const char *key)
{
    int rc = *first ? 0 : gf_buf_putc(b, ',');
    *first = false;
    rc = rc ? rc : gf_buf_append_json_str(b, key, strlen(key));
    return rc ? rc : gf_buf_putc(b, ':');
}

/* stream_options of a streamed request: the client's object with include_usage set (in place
 * when present, else appended), or {"include_usage":true} when it sent none or not an object. */
static int put_stream_options(struct gf_buf *b, const cJSON *so)
{
    int rc = gf_buf_putc(b, '{');
    bool first = true, done = false;
    const cJSON *c;
    if (cJSON_IsObject(so)) {
        cJSON_ArrayForEach(c, so)
        {
            rc = rc ? rc : put_key(b, &first, c->string);
            if (!done && strcmp(c->string, "include_usage") == 0) {
                rc = rc ? rc : gf_buf_puts(b, "true");
                done = true;
            } else {
                rc = rc ? rc : put_value(b, c);
            }
        }
    }
    if (!done) {
        rc = rc ? rc : put_key(b, &first, "include_usage");
        rc = rc ? rc : gf_buf_puts(b, "true");
    }
    return rc ? rc : gf_buf_putc(b, '}');
}

/* The client's body with model, stream and stream_options set, printed member by member: the
 * first member of each of those names is replaced in place, missing ones are appended, and
 * stream_options is dropped from a non-streamed request (OpenAI-compatible servers refuse it). */
static int print_client_body(const cJSON *body, const char *model, bool stream, struct gf_buf *b)
{
    bool first = true, did_model = false, did_stream = false, did_so = false;
    int rc = gf_buf_putc(b, '{');
    const cJSON *c;
    cJSON_ArrayForEach(c, body)
    {
        if (rc != 0)
            break;
        const char *k = c->string ? c->string : "";
        if (model != NULL && !did_model && strcmp(k, "model") == 0) {
            did_model = true;
            rc = put_key(b, &first, k);
            rc = rc ? rc : gf_buf_append_json_str(b, model, strlen(model));
        } else if (!did_stream && strcmp(k, "stream") == 0) {
            did_stream = true;
            rc = put_key(b, &first, k);
            rc = rc ? rc : gf_buf_puts(b, stream ? "true" : "false");
        } else if (!did_so && strcmp(k, "stream_options") == 0) {
            did_so = true;
            if (stream) {
                rc = put_key(b, &first, k);
                rc = rc ? rc : put_stream_options(b, c);
            }
        } else {
            rc = put_key(b, &first, k);
            rc = rc ? rc : put_value(b, c);
        }
    }
    if (rc == 0 && model != NULL && !did_model) {
        rc = put_key(b, &first, "model");
        rc = rc ? rc : gf_buf_append_json_str(b, model, strlen(model));
    }
    if (rc == 0 && !did_stream) {
        rc = put_key(b, &first, "stream");
        rc = rc ? rc : gf_buf_puts(b, stream ? "true" : "false");
    }
    if (rc == 0 && stream && !did_so) {
        rc = put_key(b, &first, "stream_options");
        rc = rc ? rc : put_stream_options(b, NULL);
    }
    return rc ? rc : gf_buf_putc(b, '}');
}

int gf_up_build_body(const struct gf_gen_request *req, const char *model_override, char **out,
                     size_t *len, struct gf_err *err)
{
    *out = NULL;
    *len = 0;
    if (req->body != NULL && !cJSON_IsObject(req->body))
        return gf_err_set(err, GF_EINVAL, "request body is not a JSON object");
    if (req->body != NULL) {
        // Printed straight from the client's tree: copying it to change three members cost a
        // few dozen allocations per request.
        const char *model = model_override;
        if (model == NULL && !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(req->body, "model")))
            model = req->model;
        struct gf_buf b;
        gf_buf_init(&b, (size_t)1 << 30);
        int rc = print_client_body(req->body, model, req->stream, &b);
        if (rc == 0 && (*out = gf_buf_steal(&b)) == NULL)
            rc = GF_ENOMEM;
        gf_buf_cleanup(&b);
        if (rc != 0)
            return gf_err_set(err, GF_ENOMEM, "out of memory building the upstream request");
        *len = strlen(*out);
        return 0;
    }
    cJSON *j = body_from_fields(req);
    if (j == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory building the upstream request");
    bool ok = true;
    const char *model = model_override ? model_override : req->model;
    if (model != NULL)
        ok = set_item(j, "model", cJSON_CreateString(model));
    if (ok)
        ok = set_item(j, "stream", cJSON_CreateBool(req->stream));
    if (ok && req->stream) {
        cJSON *so = cJSON_CreateObject();
        ok = set_item(j, "stream_options", so);
        if (ok)
            ok = set_item(so, "include_usage", cJSON_CreateTrue());
    }
    char *s = ok ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (s == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory building the upstream request");
    *out = s;
    *len = strlen(s);
    return 0;
}

/* ---- replies ----------------------------------------------------------------------------- */

void gf_up_reply_init(struct gf_up_reply *r, enum gf_gen_kind kind, gf_gen_event_fn cb, void *ud)
{
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->cb = cb;
    r->ud = ud;
}

static bool stopped(const struct gf_up_reply *r)
{
    return r->stop != NULL && *r->stop;
}

/* Appends s[0..n) to out with every byte that does not start a valid UTF-8 sequence replaced by
 * U+FFFD, so that filters and clients only ever see valid text. */
static int append_utf8_clean(struct gf_buf *out, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t run = i;
        while (run < n && (unsigned char)s[run] < 0x80)
            run++;
        if (run > i) { // ASCII is valid as it is: one copy for the run
            int rc = gf_buf_append(out, s + i, run - i);
            if (rc != 0)
                return rc;
            i = run;
            continue;
        }
        unsigned char c = (unsigned char)s[i];
        size_t want = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                                   : (c & 0xF8) == 0xF0 ? 4 : 0;
        int rc;
        if (want > 0 && i + want <= n && gf_utf8_valid(s + i, want)) {
            rc = gf_buf_append(out, s + i, want);
            i += want;
        } else {
            rc = gf_buf_puts(out, "\xEF\xBF\xBD");
            i++;
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* The static copy of a well-known finish reason (else s itself): events only lend their strings
 * for the callback, but a static one stays valid if a caller keeps it anyway. */
const char *gf_up_finish_static(const char *s)
{
    static const char *const known[] = {"stop", "length", "tool_calls", "content_filter",
                                        "function_call"};
    for (size_t i = 0; s && i < GF_ARRAY_LEN(known); i++)
        if (strcmp(s, known[i]) == 0)
            return known[i];
    return s;
}

/* Delivers one DELTA for choice idx. text is joined to the bytes pending from the previous
 * chunk; a character still cut at the end waits, unless the choice finishes, when the cut
 * bytes become U+FFFD. Returns 0 or GF_ENOMEM. */
static int emit_delta(struct gf_up_reply *r, int idx, const char *role, const char *text,
                      size_t len, const char *extra, const char *finish, int n_tokens,
                      const struct gf_up_logprobs *lp)
{
    struct gf_buf joined;
    gf_buf_init(&joined, len + 8);
    if (r->n_pending[idx] > 0) {
        if (gf_buf_append(&joined, r->pending[idx], r->n_pending[idx]) != 0 ||
            gf_buf_append(&joined, text, len) != 0) {
            gf_buf_cleanup(&joined);
            return GF_ENOMEM;
        }
        r->n_pending[idx] = 0;
        text = joined.data;
        len = joined.len;
    }
    size_t whole = gf_utf8_complete_prefix(text, len);
    if (whole < len) {
        if (finish != NULL) {
            // The stream ends inside a character: show the loss, never send half of it.
            if (text != joined.data) {
                if (gf_buf_append(&joined, text, whole) != 0) {
                    gf_buf_cleanup(&joined);
                    return GF_ENOMEM;
                }
            } else {
                joined.len = whole;
            }
            if (gf_buf_puts(&joined, "\xEF\xBF\xBD") != 0) {
                gf_buf_cleanup(&joined);
                return GF_ENOMEM;
            }
            text = joined.data;
            len = joined.len;
        } else {
            memcpy(r->pending[idx], text + whole, len - whole);
            r->n_pending[idx] = (unsigned char)(len - whole);
            len = whole;
        }
    }
    struct gf_buf clean;
    gf_buf_init(&clean, len * 3 + 8);
    if (len > 0 && !gf_utf8_valid(text, len)) {
        if (append_utf8_clean(&clean, text, len) != 0) {
            gf_buf_cleanup(&joined);
            gf_buf_cleanup(&clean);
            return GF_ENOMEM;
        }
        text = clean.data;
        len = clean.len;
    }
    if (idx + 1 > r->n_choices)
        r->n_choices = idx + 1;
    if (len == 0 && extra == NULL && finish == NULL && lp->n == 0 &&
        (role == NULL || r->started[idx])) {
        gf_buf_cleanup(&joined);
        gf_buf_cleanup(&clean);
        return 0;  // nothing to say (an empty delta, or bytes waiting for the rest)
    }
    struct gf_gen_event ev = {
        .type = GF_GEN_EV_DELTA,
        .index = idx,
        .text = len ? text : "",
        .len = len,
        .n_tokens = len ? n_tokens : 0,
        .role = r->started[idx] ? NULL : (role ? role : (r->kind == GF_GEN_CHAT ? "assistant" : NULL)),
        .extra_json = extra,
        .finish_reason = gf_up_finish_static(finish),
        .choice_done = finish != NULL,
        .logprobs = lp->n > 0 ? lp->items : NULL,
        .n_logprobs = lp->n,
    };
    r->started[idx] = true;
    if (len) {
        r->deltas++;
        r->text_bytes += len;
    }
    if (finish) {
        r->finished[idx] = true;
        gf_strlcpy(r->finish[idx], finish, sizeof(r->finish[idx]));
    }
    if (r->cb)
        r->cb(r->ud, &ev);
    gf_buf_cleanup(&joined);
    gf_buf_cleanup(&clean);
    return 0;
}

/* The first member of object v named name (cJSON_GetObjectItemCaseSensitive's choice). */
static bool member(struct gf_js v, const char *name, struct gf_js *out)
{
    struct gf_js_it it;
    struct gf_js k;
    gf_js_iter(&it, v);
    while (gf_js_next(&it, &k, out))
        if (gf_js_is(k, name))
            return true;
    return false;
}

static bool is_obj(struct gf_js v)
{
    return v.n > 0 && v.p[0] == '{';
}

static bool is_str(struct gf_js v)
{
    return v.n > 0 && v.p[0] == '"';
}

static void take_usage_and_model(struct gf_up_reply *r, const struct gf_js *model,
                                 const struct gf_js *usage, struct gf_buf *tmp)
{
    if (model != NULL && is_str(*model) && r->model[0] == '\0') {
        gf_buf_reset(tmp);
        if (gf_js_str(*model, tmp) == 0)
            gf_strlcpy(r->model, tmp->data, sizeof(r->model));
    }
    struct gf_js pt, ct;
    double p = -1, c = -1;
    if (usage != NULL && is_obj(*usage) && member(*usage, "prompt_tokens", &pt) &&
        member(*usage, "completion_tokens", &ct) && gf_js_num(pt, &p) && gf_js_num(ct, &c) &&
        p >= 0 && p < 1e9 && c >= 0 && c < 1e9) {
        r->usage.prompt_tokens = (int)p;
        r->usage.completion_tokens = (int)c;
        r->has_usage = true;
    }
}

/* An upstream's error object inside a 200 reply or a stream. */
static int report_error(struct gf_js e, struct gf_buf *tmp, struct gf_err *err)
{
    struct gf_js msg = e;
    bool found = !is_obj(e) || member(e, "message", &msg);
    gf_buf_reset(tmp);
    const char *s = found && is_str(msg) && gf_js_str(msg, tmp) == 0 ? tmp->data : "unknown error";
    return gf_err_set(err, GF_EUPSTREAM, "upstream error: %.200s", s);
}

/* Appends member k:v to the extra-fields object being built in xb. */
static int add_extra(struct gf_buf *xb, struct gf_js k, struct gf_js v)
{
    int rc = gf_buf_putc(xb, xb->len ? ',' : '{');
    rc = rc ? rc : gf_js_minify(k, xb);
    rc = rc ? rc : gf_buf_putc(xb, ':');
    return rc ? rc : gf_js_minify(v, xb);
}

/* Appends the decoded string s to tmp and keeps it NUL-terminated there (read as a C string,
 * as cJSON's valuestring was); *at is where it starts. */
static int keep_str(struct gf_buf *tmp, struct gf_js s, long *at)
{
    size_t o = tmp->len;
    int rc = gf_js_str(s, tmp);
    if (rc != 0)
        return rc;
    *at = (long)o;
    tmp->len = o + strlen(tmp->data + o) + 1;
    return 0;
}

/* Delivers one choice object of a chunk (delta) or a whole reply (message). Each object is
 * walked once, taking the first member of each name as cJSON did; strings are decoded into tmp
 * one after the other and used once all are there; the message's other members (tool_calls,
 * ...) are re-emitted minified as extra fields, built in their own buffer. */
static int do_choice(struct gf_up_reply *r, struct gf_js ch, int pos, bool streamed,
                     struct gf_buf *tmp, struct gf_up_logprobs *lp, struct gf_err *err)
{
    if (!is_obj(ch))
        return gf_err_set(err, GF_EUPSTREAM, "upstream reply: choices[%d] is not an object", pos);
    const char *msg_name = streamed ? "delta" : "message";
    struct gf_js k, v, ji = {0}, fr = {0}, msg = {0}, jt = {0}, jr = {0}, jc = {0}, jl = {0};
    bool has_i = false, has_fr = false, has_msg = false, has_t = false, has_r = false,
         has_c = false, has_l = false;
    struct gf_js_it it;
    gf_js_iter(&it, ch);
    while (gf_js_next(&it, &k, &v)) {
        if (!has_i && gf_js_is(k, "index"))
            ji = v, has_i = true;
        else if (!has_fr && gf_js_is(k, "finish_reason"))
            fr = v, has_fr = true;
        else if (!has_msg && gf_js_is(k, msg_name))
            msg = v, has_msg = true;
        else if (!has_t && gf_js_is(k, "text"))
            jt = v, has_t = true;
        else if (!has_l && gf_js_is(k, "logprobs"))
            jl = v, has_l = true;
    }
    double di = pos;
    if (has_i && !gf_js_num(ji, &di))
        di = pos;
    if (!(di >= 0 && di < GF_UP_MAX_CHOICES))
        return gf_err_set(err, GF_EUPSTREAM, "upstream reply: choice index out of range");
    int idx = (int)di;
    has_msg = has_msg && is_obj(msg);
    struct gf_buf xb;
    gf_buf_init(&xb, msg.n * 6 + 8);
    int rc = 0;
    if (has_msg) {
        gf_js_iter(&it, msg);
        while (rc == 0 && gf_js_next(&it, &k, &v)) {
            if (gf_js_is(k, "role")) {
                if (!has_r)
                    jr = v, has_r = true;
            } else if (gf_js_is(k, "content")) {
                if (!has_c)
                    jc = v, has_c = true;
            } else if (!(v.n == 4 && memcmp(v.p, "null", 4) == 0)) {
                rc = add_extra(&xb, k, v);
            }
        }
        if (rc == 0 && xb.len > 0)
            rc = gf_buf_putc(&xb, '}');
    }
    enum { NONE = -1 };
    long o_finish = NONE, o_role = NONE, o_text = NONE;
    gf_buf_reset(tmp);
    if (rc == 0 && has_fr && is_str(fr) && (rc = keep_str(tmp, fr, &o_finish)) == 0 &&
        tmp->data[o_finish] == '\0')
        o_finish = NONE; // an empty finish_reason says nothing
    if (rc == 0 && has_r && is_str(jr))
        rc = keep_str(tmp, jr, &o_role);
    struct gf_js text = has_msg ? jc : jt;
    if (rc == 0 && (has_msg ? has_c : has_t) && is_str(text))
        rc = keep_str(tmp, text, &o_text);
    if (rc != 0) {
        gf_buf_cleanup(&xb);
        return gf_err_set(err, GF_ENOMEM, "out of memory parsing the upstream reply");
    }
    const char *finish = o_finish != NONE ? tmp->data + o_finish : NULL;
    const char *role = o_role != NONE ? tmp->data + o_role : NULL;
    const char *txt = o_text != NONE ? tmp->data + o_text : NULL;
    const char *extra = xb.len > 0 ? xb.data : NULL;
    if (!streamed && finish == NULL)
        finish = "stop";
    lp->n = 0;
    if (has_l && gf_up_logprobs_parse(lp, jl, r->kind == GF_GEN_CHAT) != 0) {
        gf_buf_cleanup(&xb);
        return gf_err_set(err, GF_ENOMEM, "out of memory parsing the upstream reply");
    }
    if (r->finished[idx] && finish == NULL && txt == NULL && extra == NULL && lp->n == 0) {
        gf_buf_cleanup(&xb);
        return 0;
    }
    int n_tokens = streamed ? 1 : 0;
    rc = emit_delta(r, idx, role, txt ? txt : "", txt ? strlen(txt) : 0, extra, finish,
                    n_tokens, lp);
    gf_buf_cleanup(&xb);
    if (rc != 0)
        return gf_err_set(err, rc, "out of memory parsing the upstream reply");
    return 0;
}

static int do_reply(struct gf_up_reply *r, const char *data, size_t len, bool streamed,
                    struct gf_err *err)
{
    const char *end = data + len;
    const char *p = data;
    while (p < end && (unsigned char)*p <= 0x20)
        p++;
    // The validating pass notes where each object and array ends, so the walk below reads
    // each member once rather than once per level above it.
    struct gf_js_doc doc;
    const char *top_end = p < end && *p == '{' ? gf_js_value_doc(p, end, &doc) : NULL;
    if (top_end == NULL)
        return gf_err_set(err, GF_EUPSTREAM, "upstream sent an invalid JSON %s",
                          streamed ? "stream chunk" : "reply");
    struct gf_js top = {p, (size_t)(top_end - p), &doc};
    // the first member of each name, as cJSON finds them
    struct gf_js e, model, usage, choices, k, v;
    bool has_e = false, has_model = false, has_usage = false, has_choices = false;
    struct gf_js_it it;
    gf_js_iter(&it, top);
    while (gf_js_next(&it, &k, &v)) {
        if (!has_e && gf_js_is(k, "error"))
            e = v, has_e = true;
        else if (!has_model && gf_js_is(k, "model"))
            model = v, has_model = true;
        else if (!has_usage && gf_js_is(k, "usage"))
            usage = v, has_usage = true;
        else if (!has_choices && gf_js_is(k, "choices"))
            choices = v, has_choices = true;
    }
    struct gf_buf tmp;
    gf_buf_init(&tmp, len * 8 + 64); // the strings of a choice, extra fields escaped
    struct gf_up_logprobs lp;  // allocates only when a choice carries logprobs
    gf_up_logprobs_init(&lp);
    int rc = 0;
    if (has_e) {
        rc = report_error(e, &tmp, err);
        goto out;
    }
    take_usage_and_model(r, has_model ? &model : NULL, has_usage ? &usage : NULL, &tmp);
    if (has_choices && choices.p[0] != '[') {
        rc = gf_err_set(err, GF_EUPSTREAM, "upstream reply: choices is not an array");
        goto out;
    }
    struct gf_js ch;
    if (has_choices)
        gf_js_iter(&it, choices);
    else
        it.p = it.end = NULL;
    if (!streamed && it.p >= it.end) {
        rc = gf_err_set(err, GF_EUPSTREAM, "upstream reply has no choices");
        goto out;
    }
    int pos = 0;
    while (!stopped(r) && gf_js_next(&it, NULL, &ch)) {
        rc = do_choice(r, ch, pos++, streamed, &tmp, &lp, err);
        if (rc != 0)
            goto out;
    }
out:
    gf_up_logprobs_cleanup(&lp);
    gf_buf_cleanup(&tmp);
    return rc;
}

int gf_up_reply_chunk(struct gf_up_reply *r, const char *data, size_t len, struct gf_err *err)
{
    while (len > 0 && (data[len - 1] == ' ' || data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        r->saw_done = true;
        return 0;
    }
    if (r->saw_done)
        return 0;  // nothing counts after the end
    return do_reply(r, data, len, true, err);
}

int gf_up_reply_full(struct gf_up_reply *r, const char *body, size_t len, struct gf_err *err)
{
    return do_reply(r, body, len, false, err);
}

void gf_up_error_message(const char *body, size_t len, int status, char *out, size_t outlen)
{
    snprintf(out, outlen, "upstream answered HTTP %d", status);
    cJSON *j = body ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *m = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "message")
                     : e                ? e
                                        : cJSON_GetObjectItemCaseSensitive(j, "message");
    if (cJSON_IsString(m) && m->valuestring[0] != '\0') {
        // One line: control characters would break logs and the client's error JSON.
        size_t k = 0;
        for (const char *p = m->valuestring; *p && k + 1 < outlen; p++)
            out[k++] = (unsigned char)*p < 0x20 ? ' ' : *p;
        out[k] = '\0';
    }
    cJSON_Delete(j);
}

int gf_up_parse_models(const char *body, size_t len, char **ids, size_t *n, size_t max)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, "data");
    const char *key = "id";
    if (!cJSON_IsArray(list)) {
        list = cJSON_GetObjectItemCaseSensitive(j, "models");  // Ollama's /api/tags
        key = "name";
    }
    if (!cJSON_IsArray(list)) {
        cJSON_Delete(j);
        return GF_EFORMAT;
    }
    int rc = 0;
    for (const cJSON *m = list->child; m && *n < max; m = m->next) {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(m, key);
        if (!cJSON_IsString(id) || id->valuestring[0] == '\0')
            continue;
        bool seen = false;
        for (size_t i = 0; i < *n && !seen; i++)
            seen = strcmp(ids[i], id->valuestring) == 0;
        if (seen)
            continue;
        if ((ids[*n] = gf_strdup(id->valuestring)) == NULL) {
            rc = GF_ENOMEM;
            break;
        }
        (*n)++;
    }
    cJSON_Delete(j);
    return rc;
}
