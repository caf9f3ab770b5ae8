/* api_logprobs.c — the OpenAI wire format of token log-probabilities. Chat completions carry
 * "logprobs":{"content":[{"token","logprob","bytes","top_logprobs":[...]}]}; text completions the
 * legacy parallel arrays {"tokens","token_logprobs","top_logprobs":[{token: logprob}],
 * "text_offset"}. Entries are rendered as they arrive (the engine's strings are borrowed for
 * its callback only) into per-choice buffers, and wrapped when a reply or chunk is written. */
#include "gateway/gateway_int.h"

#include <math.h>
#include <string.h>

void gf_lp_acc_init(struct gf_lp_acc *a, bool on, bool chat)
{
    memset(a, 0, sizeof(*a));
    a->on = on;
    a->chat = chat;
    gf_buf_init(&a->content, 16u << 20);
    gf_buf_init(&a->tokens, 16u << 20);
    gf_buf_init(&a->values, 16u << 20);
    gf_buf_init(&a->tops, 16u << 20);
    gf_buf_init(&a->offsets, 16u << 20);
    gf_buf_init(&a->raw, 64u << 20);
}

void gf_lp_acc_cleanup(struct gf_lp_acc *a)
{
    gf_buf_cleanup(&a->content);
    gf_buf_cleanup(&a->tokens);
    gf_buf_cleanup(&a->values);
    gf_buf_cleanup(&a->tops);
    gf_buf_cleanup(&a->offsets);
    gf_buf_cleanup(&a->raw);
}

void gf_lp_acc_reset(struct gf_lp_acc *a)
{
    gf_buf_reset(&a->content);
    gf_buf_reset(&a->tokens);
    gf_buf_reset(&a->values);
    gf_buf_reset(&a->tops);
    gf_buf_reset(&a->offsets);
    a->count = 0;  // offset goes on: it counts from the start of the choice's text
}

/* A log-probability as JSON: OpenAI writes -9999.0 for what is not a finite number. */
static int put_lp(struct gf_buf *b, float v)
{
    return gf_buf_printf(b, "%.6g", isfinite(v) ? (double)v : -9999.0);
}

static int put_bytes(struct gf_buf *b, const char *s, size_t len)
{
    int rc = gf_buf_putc(b, '[');
    for (size_t i = 0; i < len && rc == 0; i++) {
        rc = i ? gf_buf_putc(b, ',') : 0;
        rc = rc ? rc : gf_buf_put_i64(b, (unsigned char)s[i]);
    }
    return rc ? rc : gf_buf_putc(b, ']');
}

/* {"token":..,"logprob":..,"bytes":[..]} without the closing brace. */
static int put_chat_token(struct gf_buf *b, const char *tok, size_t len, float lp)
{
    int rc = gf_buf_puts(b, "{\"token\":");
    rc = rc ? rc : gf_buf_append_json_str(b, tok ? tok : "", tok ? len : 0);
    rc = rc ? rc : gf_buf_puts(b, ",\"logprob\":");
    rc = rc ? rc : put_lp(b, lp);
    rc = rc ? rc : gf_buf_puts(b, ",\"bytes\":");
    return rc ? rc : put_bytes(b, tok, tok ? len : 0);
}

int gf_lp_acc_add(struct gf_lp_acc *a, const struct gf_gen_logprob *lps, int n)
{
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const struct gf_gen_logprob *e = &lps[i];
        const char *sep = a->count ? "," : "";
        if (a->chat) {
            rc = gf_buf_puts(&a->content, sep);
            rc = rc ? rc : put_chat_token(&a->content, e->token, e->len, e->logprob);
            rc = rc ? rc : gf_buf_puts(&a->content, ",\"top_logprobs\":[");
            for (int k = 0; k < e->n_top && rc == 0; k++) {
                rc = k ? gf_buf_putc(&a->content, ',') : 0;
                rc = rc ? rc
                        : put_chat_token(&a->content, e->top[k].token, e->top[k].len,
                                         e->top[k].logprob);
                rc = rc ? rc : gf_buf_putc(&a->content, '}');
            }
            rc = rc ? rc : gf_buf_puts(&a->content, "]}");
        } else {
            rc = gf_buf_puts(&a->tokens, sep);
            rc = rc ? rc : gf_buf_append_json_str(&a->tokens, e->token ? e->token : "", e->len);
            rc = rc ? rc : gf_buf_puts(&a->values, sep);
            rc = rc ? rc : put_lp(&a->values, e->logprob);
            rc = rc ? rc : gf_buf_puts(&a->tops, sep);
            rc = rc ? rc : gf_buf_putc(&a->tops, '{');
            for (int k = 0; k < e->n_top && rc == 0; k++) {
                rc = k ? gf_buf_putc(&a->tops, ',') : 0;
                rc = rc ? rc
                        : gf_buf_append_json_str(&a->tops, e->top[k].token ? e->top[k].token : "",
                                                 e->top[k].len);
                rc = rc ? rc : gf_buf_putc(&a->tops, ':');
                rc = rc ? rc : put_lp(&a->tops, e->top[k].logprob);
            }
            rc = rc ? rc : gf_buf_putc(&a->tops, '}');
            rc = rc ? rc : gf_buf_puts(&a->offsets, sep);
            rc = rc ? rc : gf_buf_put_i64(&a->offsets, a->offset);
            a->offset += (int64_t)e->len;
        }
        a->count++;
    }
    return rc;
}

static int put_data(struct gf_buf *out, const struct gf_buf *b)
{
    return b->len ? gf_buf_append(out, b->data, b->len) : 0;
}

int gf_lp_acc_render(struct gf_buf *out, const struct gf_lp_acc *a)
{
    if (a == NULL || !a->on || a->withheld || a->count == 0)
        return gf_buf_puts(out, "null");
    int rc;
    if (a->chat) {
        rc = gf_buf_puts(out, "{\"content\":[");
        rc = rc ? rc : put_data(out, &a->content);
        return rc ? rc : gf_buf_puts(out, "]}");
    }
    rc = gf_buf_puts(out, "{\"tokens\":[");
    rc = rc ? rc : put_data(out, &a->tokens);
    rc = rc ? rc : gf_buf_puts(out, "],\"token_logprobs\":[");
    rc = rc ? rc : put_data(out, &a->values);
    rc = rc ? rc : gf_buf_puts(out, "],\"top_logprobs\":[");
    rc = rc ? rc : put_data(out, &a->tops);
    rc = rc ? rc : gf_buf_puts(out, "],\"text_offset\":[");
    rc = rc ? rc : put_data(out, &a->offsets);
    return rc ? rc : gf_buf_puts(out, "]}");
}
