/* api_request.c — validation of OpenAI request bodies into struct gf_gen_request. Every field
 * the gateway interprets is type- and range-checked here, before any engine sees it; an error
 * names the field ("messages[1].content[0].text: expected a string"). Fields the gateway does
 * not interpret stay untouched in the body, which engines receive for pass-through. */
#include "gateway/gateway_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

static int fail(struct gf_api_req *a, struct gf_err *err, const char *param, const char *fmt,
                const char *detail)
{
    gf_strlcpy(a->param, param, sizeof(a->param));
    return gf_err_set(err, GF_EINVAL, fmt, param, detail);
}

static bool absent(const cJSON *v)
{
    return v == NULL || cJSON_IsNull(v);
}

/* A member name's bit in a 64-bit summary of the names an object holds (from its length and
 * first and last bytes). A field whose bit is not in the body's summary is not in the body, so
 * its lookup, a strcmp per member, is skipped: a request carries a handful of the twenty-odd
 * fields looked up. */
static uint64_t name_bit(const char *s)
{
    size_t n = strlen(s);
    unsigned h = (unsigned char)s[0] * 31u + (n ? (unsigned char)s[n - 1] : 0u) + (unsigned)n * 7u;
    return (uint64_t)1 << (h & 63);
}

static uint64_t names_of(const cJSON *body)
{
    uint64_t m = 0;
    for (const cJSON *c = body->child; c != NULL; c = c->next) {
        if (c->string == NULL)
            return ~(uint64_t)0; // cJSON's lookup stops at such a member: look every field up
        m |= name_bit(c->string);
    }
    return m;
}

/* cJSON_GetObjectItemCaseSensitive(body, name) for a member of the request body. */
static const cJSON *field(const struct gf_api_req *a, const cJSON *body, const char *name)
{
    return a->names & name_bit(name) ? cJSON_GetObjectItemCaseSensitive(body, name) : NULL;
}

/* Reads an optional number in [lo, hi] (open bounds when lo_open/hi_open). */
static int get_number(struct gf_api_req *a, const cJSON *body, const char *name, double lo,
                      bool lo_open, double hi, double *out, struct gf_err *err)
{
    const cJSON *v = field(a, body, name);
    if (absent(v))
        return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || d > hi || d < lo || (lo_open && d == lo)) {
        char want[96]; // formatted only for the error: this runs for every request
        snprintf(want, sizeof(want), "a number in %s%g, %g]", lo_open ? "(" : "[", lo, hi);
        return fail(a, err, name, "%s: expected %s", want);
    }
    *out = d;
    return 0;
}

static int get_int(struct gf_api_req *a, const cJSON *body, const char *name, int64_t lo,
                   int64_t hi, int64_t *out, bool *present, struct gf_err *err)
{
    const cJSON *v = field(a, body, name);
    if (absent(v))
        return 0;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi) {
        char want[96];
        snprintf(want, sizeof(want), "an integer in [%lld, %lld]", (long long)lo, (long long)hi);
        return fail(a, err, name, "%s: expected %s", want);
    }
    *out = (int64_t)d;
    if (present)
        *present = true;
    return 0;
}

static int get_bool(struct gf_api_req *a, const cJSON *body, const char *name, bool *out,
                    struct gf_err *err)
{
    const cJSON *v = field(a, body, name);
    if (absent(v))
        return 0;
    if (!cJSON_IsBool(v))
        return fail(a, err, name, "%s: expected %s", "true or false");
    *out = cJSON_IsTrue(v);
    return 0;
}

static const char *const roles[] = {"system", "user", "assistant", "tool", "developer",
                                    "function"};

static bool known_role(const char *r)
{
    for (size_t i = 0; i < GF_ARRAY_LEN(roles); i++)
        if (strcmp(r, roles[i]) == 0)
            return true;
    return false;
}

/* Joins the text parts of a content array into one owned string. */
static int join_parts(struct gf_api_req *a, const cJSON *parts, size_t mi, const char **out,
                      struct gf_err *err)
{
    char where[64];
    struct gf_buf b;
    gf_buf_init(&b, SIZE_MAX / 2);
    int rc = gf_buf_puts(&b, "");  // an empty array yields ""
    int j = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, parts)
    {
        if (rc)
            break;
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(p, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(p, "text");
        if (!cJSON_IsObject(p)) {
            snprintf(where, sizeof(where), "messages[%zu].content[%d]", mi, j);
            rc = fail(a, err, where, "%s: expected %s", "an object");
            break;
        }
        if (!cJSON_IsString(type)) {
            snprintf(where, sizeof(where), "messages[%zu].content[%d].type", mi, j);
            rc = fail(a, err, where, "%s: expected %s", "a string");
            break;
        }
        if (strcmp(type->valuestring, "text") != 0) {
            snprintf(where, sizeof(where), "messages[%zu].content[%d].type", mi, j);
            gf_strlcpy(a->param, where, sizeof(a->param));
            rc = gf_err_set(err, GF_EUNSUPPORTED, "%s: only \"text\" parts are supported",
                            where);
            break;
        }
        if (!cJSON_IsString(text)) {
            snprintf(where, sizeof(where), "messages[%zu].content[%d].text", mi, j);
            rc = fail(a, err, where, "%s: expected %s", "a string");
            break;
        }
        rc = gf_buf_puts(&b, text->valuestring);
        if (rc)
            break;
        j++;
    }
    if (rc) {
        gf_buf_cleanup(&b);
        if (rc == GF_ENOMEM)
            return gf_err_set(err, GF_ENOMEM, "out of memory");
        return rc;
    }
    char **nj = gf_realloc(a->joined, (a->n_joined + 1) * sizeof(char *));
    if (nj == NULL) {
        gf_buf_cleanup(&b);
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    }
    a->joined = nj;
    a->joined[a->n_joined++] = b.data;
    *out = b.data;
    return 0;
}

static int parse_messages(struct gf_api_req *a, const cJSON *body, const struct gf_config *cfg,
                          struct gf_err *err)
{
    const cJSON *msgs = field(a, body, "messages");
    if (msgs == NULL)
        return fail(a, err, "messages", "%s: %s", "required");
    if (!cJSON_IsArray(msgs))
        return fail(a, err, "messages", "%s: expected %s", "an array of messages");
    int n = cJSON_GetArraySize(msgs);
    if (n == 0)
        return fail(a, err, "messages", "%s: %s", "must not be empty");
    if (n > cfg->max_messages)
        return fail(a, err, "messages", "%s: %s", "too many messages");
    a->messages = gf_calloc((size_t)n, sizeof(*a->messages));
    if (a->messages == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    size_t i = 0;
    const cJSON *m;
    char where[64];
    cJSON_ArrayForEach(m, msgs)
    {
        if (!cJSON_IsObject(m)) {
            snprintf(where, sizeof(where), "messages[%zu]", i);
            return fail(a, err, where, "%s: expected %s", "an object");
        }
        // `where` (the field path in an error) is formatted only when there is an error.
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        if (role == NULL || !cJSON_IsString(role) || !known_role(role->valuestring)) {
            snprintf(where, sizeof(where), "messages[%zu].role", i);
            if (role == NULL)
                return fail(a, err, where, "%s: %s", "required");
            if (!cJSON_IsString(role))
                return fail(a, err, where, "%s: expected %s", "a string");
            return fail(a, err, where, "%s: %s",
                        "expected system, user, assistant, tool, developer or function");
        }
        a->messages[i].role = role->valuestring;
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!cJSON_IsString(content))
            snprintf(where, sizeof(where), "messages[%zu].content", i);
        if (cJSON_IsString(content)) {
            a->messages[i].content = content->valuestring;
        } else if (cJSON_IsArray(content)) {
            int rc = join_parts(a, content, i, &a->messages[i].content, err);
            if (rc)
                return rc;
        } else if (absent(content)) {
            // Only an assistant turn that carries tool calls may go without text.
            bool tools = cJSON_GetObjectItemCaseSensitive(m, "tool_calls") != NULL ||
                         cJSON_GetObjectItemCaseSensitive(m, "function_call") != NULL;
            if (!(strcmp(role->valuestring, "assistant") == 0 && tools))
                return fail(a, err, where, "%s: %s", "required");
            a->messages[i].content = NULL;
        } else {
            return fail(a, err, where, "%s: expected %s", "a string or an array of text parts");
        }
        i++;
    }
    a->gen.messages = a->messages;
    a->gen.n_messages = i;
    return 0;
}

static int parse_prompt(struct gf_api_req *a, const cJSON *body, struct gf_err *err)
{
    const cJSON *p = field(a, body, "prompt");
    if (p == NULL)
        return fail(a, err, "prompt", "%s: %s", "required");
    if (cJSON_IsString(p)) {
        a->gen.prompt = p->valuestring;
        return 0;
    }
    if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && cJSON_IsString(p->child)) {
        a->gen.prompt = p->child->valuestring;
        return 0;
    }
    return fail(a, err, "prompt", "%s: expected %s", "a string (or an array of one string)");
}

static int parse_stop(struct gf_api_req *a, const cJSON *body, const struct gf_config *cfg,
                      struct gf_err *err)
{
    const cJSON *s = field(a, body, "stop");
    if (absent(s))
        return 0;
    int n = cJSON_IsString(s) ? 1 : cJSON_IsArray(s) ? cJSON_GetArraySize(s) : -1;
    if (n < 0)
        return fail(a, err, "stop", "%s: expected %s", "a string or an array of strings");
    if (n > cfg->max_stop)
        return fail(a, err, "stop", "%s: %s", "too many stop sequences");
    if (n == 0)
        return 0;
    a->stop = gf_calloc((size_t)n, sizeof(char *));
    if (a->stop == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    if (cJSON_IsString(s)) {
        if (s->valuestring[0] == '\0')
            return fail(a, err, "stop", "%s: %s", "must not be empty");
        a->stop[0] = s->valuestring;
    } else {
        int i = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, s)
        {
            char where[32];
            snprintf(where, sizeof(where), "stop[%d]", i);
            if (!cJSON_IsString(it))
                return fail(a, err, where, "%s: expected %s", "a string");
            if (it->valuestring[0] == '\0')
                return fail(a, err, where, "%s: %s", "must not be empty");
            a->stop[i++] = it->valuestring;
        }
    }
    a->gen.params.stop = a->stop;
    a->gen.params.n_stop = (size_t)n;
    return 0;
}

static int parse_params(struct gf_api_req *a, enum gf_gen_kind kind, const cJSON *body,
                        const struct gf_config *cfg, struct gf_err *err)
{
    struct gf_gen_params *p = &a->gen.params;
    int64_t v;
    bool has = false, has2 = false;
    int rc;
    const int64_t max_tok = 1 << 24;

    v = -1;
    if ((rc = get_int(a, body, "max_tokens", 1, max_tok, &v, &has, err)))
        return rc;
    int64_t v2 = -1;
    if (kind == GF_GEN_CHAT &&
        (rc = get_int(a, body, "max_completion_tokens", 1, max_tok, &v2, &has2, err)))
        return rc;
    p->max_tokens = (int)(has2 ? v2 : has ? v : -1);

    if ((rc = get_number(a, body, "temperature", 0, false, 2, &p->temperature, err)))
        return rc;
    if ((rc = get_number(a, body, "top_p", 0, true, 1, &p->top_p, err)))
        return rc;
    if ((rc = get_number(a, body, "presence_penalty", -2, false, 2, &p->presence_penalty,
                         err)))
        return rc;
    if ((rc = get_number(a, body, "frequency_penalty", -2, false, 2, &p->frequency_penalty,
                         err)))
        return rc;
    if ((rc = get_number(a, body, "min_p", 0, false, 1, &p->min_p, err)))
        return rc;
    if ((rc = get_number(a, body, "repetition_penalty", 0, true, 10, &p->repetition_penalty,
                         err)))
        return rc;
    v = 0;
    if ((rc = get_int(a, body, "top_k", 0, 1 << 20, &v, NULL, err)))
        return rc;
    p->top_k = (int)v;
    v = 1;
    if ((rc = get_int(a, body, "n", 1, cfg->max_choices, &v, NULL, err)))
        return rc;
    p->n = (int)v;
    has = false;
    if ((rc = get_int(a, body, "seed", -(1LL << 53), 1LL << 53, &v, &has, err)))
        return rc;
    if (has) {
        p->seed = (uint64_t)v;
        p->has_seed = true;
    }
    if (kind == GF_GEN_CHAT) {
        if ((rc = get_bool(a, body, "logprobs", &p->logprobs, err)))
            return rc;
        v = 0;
        has = false;
        if ((rc = get_int(a, body, "top_logprobs", 0, 20, &v, &has, err)))
            return rc;
        if (has && !p->logprobs)
            return fail(a, err, "top_logprobs", "%s: %s", "requires \"logprobs\": true");
        p->top_logprobs = (int)v;
    } else {
        v = 0;
        has = false;
        if ((rc = get_int(a, body, "logprobs", 0, 5, &v, &has, err)))
            return rc;
        a->completion_logprobs = (int)v;
        p->logprobs = has;
        p->top_logprobs = (int)v;
    }
    if ((rc = get_bool(a, body, "stream", &a->gen.stream, err)))
        return rc;
    const cJSON *so = field(a, body, "stream_options");
    if (!absent(so)) {
        if (!cJSON_IsObject(so))
            return fail(a, err, "stream_options", "%s: expected %s", "an object");
        if (!a->gen.stream)
            return fail(a, err, "stream_options", "%s: %s", "only allowed with \"stream\": true");
        const cJSON *iu = cJSON_GetObjectItemCaseSensitive(so, "include_usage");
        if (!absent(iu)) {
            if (!cJSON_IsBool(iu))
                return fail(a, err, "stream_options.include_usage", "%s: expected %s",
                            "true or false");
            a->include_usage = cJSON_IsTrue(iu);
        }
    }
    return 0;
}

int gf_api_parse(struct gf_api_req *a, enum gf_gen_kind kind, const cJSON *body,
                 const struct gf_config *cfg, struct gf_err *err)
{
    memset(a, 0, sizeof(*a));
    a->gen.kind = kind;
    gf_gen_params_default(&a->gen.params);
    a->gen.body = body;
    if (!cJSON_IsObject(body)) {
        gf_strlcpy(a->param, "", sizeof(a->param));
        return gf_err_set(err, GF_EINVAL, "the request body must be a JSON object");
    }
    a->names = names_of(body);
    const cJSON *model = field(a, body, "model");
    if (!absent(model)) {
        if (!cJSON_IsString(model) || model->valuestring[0] == '\0')
            return fail(a, err, "model", "%s: expected %s", "a non-empty string");
        a->gen.model = model->valuestring;
    }
    int rc = kind == GF_GEN_CHAT ? parse_messages(a, body, cfg, err) : parse_prompt(a, body, err);
    if (rc)
        return rc;
    rc = parse_params(a, kind, body, cfg, err);
    if (rc)
        return rc;
    return parse_stop(a, body, cfg, err);
}

void gf_api_req_cleanup(struct gf_api_req *a)
{
    gf_free(a->messages);
    gf_free(a->stop);
    for (size_t i = 0; i < a->n_joined; i++)
        gf_free(a->joined[i]);
    gf_free(a->joined);
    a->messages = NULL;
    a->stop = NULL;
    a->joined = NULL;
    a->n_joined = 0;
}
