/* api_response.c — the OpenAI wire format of replies: chat.completion and text_completion
 * objects, chat.completion.chunk / text_completion SSE events, the include_usage chunk and the
 * model list. Text is escaped with gf_buf_append_json_str, so any engine output yields valid
 * JSON; extra_json (non-text delta fields from an upstream) is spliced in as given. */
#include "gateway/gateway_int.h"

#include <string.h>

static int put_str(struct gf_buf *b, const char *s)
{
    if (s == NULL)
        return gf_buf_puts(b, "null");
    return gf_buf_append_json_str(b, s, strlen(s));
}

/* Appends the members of a JSON object text ("{...}") without its braces, preceded by a comma
 * when comma is set; nothing when extra is NULL or an empty object. */
static int put_extra(struct gf_buf *b, const char *extra, bool comma)
{
    if (extra == NULL)
        return 0;
    const char *open = strchr(extra, '{');
    const char *close = strrchr(extra, '}');
    if (open == NULL || close == NULL || close <= open)
        return 0;
    const char *p = open + 1;
    while (p < close && (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r'))
        p++;
    if (p == close)
        return 0;
    int rc = comma ? gf_buf_putc(b, ',') : 0;
    return rc ? rc : gf_buf_append(b, p, (size_t)(close - p));
}

/* Replies are built for every request: numbers and literals are appended directly, without a
 * printf format pass. */
static int put_head(struct gf_buf *b, const struct gf_reply_info *ri, const char *object)
{
    int rc = gf_buf_puts(b, "{\"id\":\"");
    rc = rc ? rc : gf_buf_puts(b, ri->id);
    rc = rc ? rc : gf_buf_puts(b, "\",\"object\":\"");
    rc = rc ? rc : gf_buf_puts(b, object);
    rc = rc ? rc : gf_buf_puts(b, "\",\"created\":");
    rc = rc ? rc : gf_buf_put_i64(b, ri->created);
    rc = rc ? rc : gf_buf_puts(b, ",\"model\":");
    return rc ? rc : put_str(b, ri->model ? ri->model : "unknown");
}

static int put_usage(struct gf_buf *b, const struct gf_gen_usage *u)
{
    int rc = gf_buf_puts(b, "\"usage\":{\"prompt_tokens\":");
    rc = rc ? rc : gf_buf_put_i64(b, u->prompt_tokens);
    rc = rc ? rc : gf_buf_puts(b, ",\"completion_tokens\":");
    rc = rc ? rc : gf_buf_put_i64(b, u->completion_tokens);
    rc = rc ? rc : gf_buf_puts(b, ",\"total_tokens\":");
    rc = rc ? rc : gf_buf_put_i64(b, (int64_t)u->prompt_tokens + u->completion_tokens);
    return rc ? rc : gf_buf_putc(b, '}');
}

int gf_api_reply_json(struct gf_buf *out, const struct gf_reply_info *ri,
                      const struct gf_reply_choice *choices, int n_choices,
                      const struct gf_gen_usage *usage)
{
    bool chat = ri->kind == GF_GEN_CHAT;
    int rc = put_head(out, ri, chat ? "chat.completion" : "text_completion");
    rc = rc ? rc : gf_buf_puts(out, ",\"choices\":[");
    for (int i = 0; i < n_choices && rc == 0; i++) {
        const struct gf_reply_choice *c = &choices[i];
        const char *text = c->text.data ? c->text.data : "";
        rc = gf_buf_puts(out, i ? ",{\"index\":" : "{\"index\":");
        rc = rc ? rc : gf_buf_put_i64(out, i);
        rc = rc ? rc : gf_buf_putc(out, ',');
        if (chat) {
            rc = rc ? rc : gf_buf_puts(out, "\"message\":{\"role\":\"assistant\",\"content\":");
            // An assistant turn made only of tool calls has null content, as OpenAI sends it.
            if (c->text.len == 0 && c->extra_json != NULL)
                rc = rc ? rc : gf_buf_puts(out, "null");
            else
                rc = rc ? rc : gf_buf_append_json_str(out, text, c->text.len);
            rc = rc ? rc : put_extra(out, c->extra_json, true);
            rc = rc ? rc : gf_buf_puts(out, "},\"logprobs\":");
        } else {
            rc = rc ? rc : gf_buf_puts(out, "\"text\":");
            rc = rc ? rc : gf_buf_append_json_str(out, text, c->text.len);
            rc = rc ? rc : gf_buf_puts(out, ",\"logprobs\":");
        }
        rc = rc ? rc : gf_lp_acc_render(out, &c->lp);
        rc = rc ? rc : gf_buf_puts(out, ",\"finish_reason\":");
        rc = rc ? rc : put_str(out, c->finish_reason ? c->finish_reason : "stop");
        rc = rc ? rc : gf_buf_putc(out, '}');
    }
    rc = rc ? rc : gf_buf_puts(out, "],");
    rc = rc ? rc : put_usage(out, usage);
    if (chat)
        rc = rc ? rc : gf_buf_puts(out, ",\"system_fingerprint\":null");
    return rc ? rc : gf_buf_puts(out, "}");
}

int gf_api_chunk_sse(struct gf_buf *out, const struct gf_reply_info *ri, int index,
                     const char *role, const char *text, size_t len, const char *extra_json,
                     const char *finish_reason, bool with_usage_null)
{
    return gf_api_chunk_sse_lp(out, ri, index, role, text, len, extra_json, finish_reason,
                               with_usage_null, NULL);
}

/* put_head for a chunk: the request's kept head when it names the same model, else written
 * and kept when it fits. id, created and kind do not change within a request. */
static int put_chunk_head(struct gf_buf *b, const struct gf_reply_info *ri, const char *object)
{
    struct gf_chunk_head *h = ri->head;
    const char *model = ri->model ? ri->model : "unknown";
    if (h != NULL && h->len > 0 && strcmp(h->model, model) == 0)
        return gf_buf_append(b, h->text, h->len);
    size_t at = b->len;
    int rc = put_head(b, ri, object);
    size_t n = b->len - at, ml = strlen(model);
    if (rc == 0 && h != NULL) {
        h->len = 0;
        if (n <= sizeof(h->text) && ml < sizeof(h->model)) {
            memcpy(h->text, b->data + at, n);
            memcpy(h->model, model, ml + 1);
            h->len = n;
        }
    }
    return rc;
}

int gf_api_chunk_sse_lp(struct gf_buf *out, const struct gf_reply_info *ri, int index,
                        const char *role, const char *text, size_t len, const char *extra_json,
                        const char *finish_reason, bool with_usage_null,
                        const struct gf_lp_acc *lp)
{
    bool chat = ri->kind == GF_GEN_CHAT;
    int rc = gf_buf_puts(out, "data: ");
    rc = rc ? rc : put_chunk_head(out, ri, chat ? "chat.completion.chunk" : "text_completion");
    rc = rc ? rc : gf_buf_puts(out, ",\"choices\":[{\"index\":");
    rc = rc ? rc : gf_buf_put_i64(out, index);
    rc = rc ? rc : gf_buf_putc(out, ',');
    if (chat) {
        rc = rc ? rc : gf_buf_puts(out, "\"delta\":{");
        bool first = true;
        if (role != NULL) {
            rc = rc ? rc : gf_buf_puts(out, "\"role\":");
            rc = rc ? rc : put_str(out, role);
            first = false;
        }
        if (text != NULL) {
            rc = rc ? rc : gf_buf_puts(out, first ? "\"content\":" : ",\"content\":");
            rc = rc ? rc : gf_buf_append_json_str(out, text, len);
            first = false;
        }
        rc = rc ? rc : put_extra(out, extra_json, !first);
        rc = rc ? rc : gf_buf_puts(out, "},\"logprobs\":");
    } else {
        rc = rc ? rc : gf_buf_puts(out, "\"text\":");
        rc = rc ? rc : gf_buf_append_json_str(out, text ? text : "", text ? len : 0);
        rc = rc ? rc : gf_buf_puts(out, ",\"logprobs\":");
    }
    rc = rc ? rc : gf_lp_acc_render(out, lp);
    rc = rc ? rc : gf_buf_puts(out, ",\"finish_reason\":");
    rc = rc ? rc : put_str(out, finish_reason);
    rc = rc ? rc : gf_buf_puts(out, "}]");
    if (with_usage_null)
        rc = rc ? rc : gf_buf_puts(out, ",\"usage\":null");
    if (chat)
        rc = rc ? rc : gf_buf_puts(out, ",\"system_fingerprint\":null");
    if (ri->top_json != NULL && ri->top_json[0] != '\0') {
        rc = rc ? rc : gf_buf_putc(out, ',');
        rc = rc ? rc : gf_buf_puts(out, ri->top_json);
    }
    return rc ? rc : gf_buf_puts(out, "}\n\n");
}

int gf_api_usage_sse(struct gf_buf *out, const struct gf_reply_info *ri,
                     const struct gf_gen_usage *usage)
{
    bool chat = ri->kind == GF_GEN_CHAT;
    int rc = gf_buf_puts(out, "data: ");
    rc = rc ? rc : put_chunk_head(out, ri, chat ? "chat.completion.chunk" : "text_completion");
    rc = rc ? rc : gf_buf_puts(out, ",\"choices\":[],");
    rc = rc ? rc : put_usage(out, usage);
    return rc ? rc : gf_buf_puts(out, "}\n\n");
}

int gf_api_models_json(struct gf_buf *out, const char *const *ids, size_t n, int64_t created)
{
    int rc = gf_buf_puts(out, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = gf_buf_puts(out, i ? ",{\"id\":" : "{\"id\":");
        rc = rc ? rc : put_str(out, ids[i]);
        rc = rc ? rc
                : gf_buf_printf(out, ",\"object\":\"model\",\"created\":%lld,"
                                     "\"owned_by\":\"gardefou\"}",
                                (long long)created);
    }
    return rc ? rc : gf_buf_puts(out, "]}");
}
