/* template.c — chat templates as data: Llama 2 ([INST] <<SYS>>), ChatML and Zephyr. A template
 * is a fixed function from messages to a sequence of segments, each plain text or a marker
 * ("<s>", "<|im_start|>"). Jinja source from a GGUF file is only looked at for recognizable
 * markers, never evaluated. Invariant: message contents only ever become text segments, so
 * gf_template_encode never turns a client's text into a control token. */
#include "engine/tokenizer.h"

#include <string.h>

#include "engine/engine.h"

static const char *const names[GF_TEMPLATE_COUNT] = {"llama2", "chatml", "zephyr"};

const char *gf_template_name(int tmpl)
{
    return tmpl >= 0 && tmpl < GF_TEMPLATE_COUNT ? names[tmpl] : "?";
}

int gf_template_parse(const char *name, int *tmpl)
{
    for (int i = 0; i < GF_TEMPLATE_COUNT; i++) {
        if (strcmp(name, names[i]) == 0) {
            *tmpl = i;
            return 0;
        }
    }
    return GF_EINVAL;
}

static bool contains(const char *s, size_t n, const char *needle)
{
    return memmem(s, n, needle, strlen(needle)) != NULL;
}

int gf_template_detect(const char *jinja, size_t len, int *tmpl)
{
    if (contains(jinja, len, "<|im_start|>")) {
        *tmpl = GF_TEMPLATE_CHATML;
    } else if (contains(jinja, len, "<|user|>") && contains(jinja, len, "<|assistant|>") &&
               !contains(jinja, len, "<|end|>")) {  // <|end|> is Phi-3's, another format
        *tmpl = GF_TEMPLATE_ZEPHYR;
    } else if (contains(jinja, len, "[INST]")) {
        *tmpl = GF_TEMPLATE_LLAMA2;
    } else {
        return GF_ENOTFOUND;
    }
    return 0;
}

int gf_template_choose(const struct gf_gguf *g, const char *name, int *tmpl,
                       struct gf_err *err)
{
    if (name != NULL && name[0] != '\0' && strcmp(name, "auto") != 0) {
        if (gf_template_parse(name, tmpl) != 0)
            return gf_err_set(err, GF_EUNSUPPORTED,
                              "chat template '%.64s' is unknown (known: llama2, chatml, zephyr, "
                              "auto)", name);
        return 0;
    }
    const char *j;
    size_t len;
    if (g == NULL || gf_gguf_get_str(g, "tokenizer.chat_template", &j, &len) != 0) {
        *tmpl = GF_TEMPLATE_LLAMA2;  // no template in the file: the Llama 2 family's own
        return 0;
    }
    if (gf_template_detect(j, len, tmpl) != 0)
        return gf_err_set(err, GF_EUNSUPPORTED,
                          "tokenizer.chat_template is none of the known templates (llama2, "
                          "chatml, zephyr); set the chat template by name");
    return 0;
}

/* ---- rendering into segments ------------------------------------------------------------ */

/* Receives the segments of a rendered conversation in order. */
struct sink {
    int (*text)(struct sink *s, const char *p, size_t n);
    int (*marker)(struct sink *s, const char *m);
};

static int text_z(struct sink *s, const char *p)
{
    return s->text(s, p, strlen(p));
}

static void strip(const char **p, size_t *n)
{
    while (*n > 0 && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')) {
        (*p)++;
        (*n)--;
    }
    while (*n > 0 && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t' || (*p)[*n - 1] == '\n' ||
                      (*p)[*n - 1] == '\r'))
        (*n)--;
}

enum role { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT };

static int role_of(const char *r)
{
    if (r == NULL)
        return -1;
    if (strcmp(r, "system") == 0)
        return ROLE_SYSTEM;
    if (strcmp(r, "user") == 0)
        return ROLE_USER;
    if (strcmp(r, "assistant") == 0)
        return ROLE_ASSISTANT;
    return -1;
}

/* Meta's Llama 2 chat format: system text goes into the <<SYS>> block of the next user turn,
 * contents are stripped, each exchange is "<s>[INST] ... [/INST] answer </s>". */
static int render_llama2(const struct gf_chat_msg *m, size_t n, struct sink *s)
{
    int rc = 0;
    size_t sys_first = n, sys_last = 0;  // range of pending system messages
    for (size_t i = 0; i <= n && rc == 0; i++) {
        int role = i < n ? role_of(m[i].role) : ROLE_USER;
        if (i < n && role == ROLE_SYSTEM) {
            if (sys_first == n)
                sys_first = i;
            sys_last = i;
            continue;
        }
        if (i == n && sys_first == n)
            break;  // nothing pending at the end
        const char *c = i < n && m[i].content ? m[i].content : "";
        size_t cn = strlen(c);
        strip(&c, &cn);
        if (role == ROLE_ASSISTANT) {
            if ((rc = text_z(s, " ")) || (rc = s->text(s, c, cn)) || (rc = text_z(s, " ")))
                break;
            rc = s->marker(s, "</s>");
            continue;
        }
        // A user turn (or, at the end, an empty one carrying leftover system text).
        if ((rc = s->marker(s, "<s>")) || (rc = text_z(s, "[INST] ")))
            break;
        if (sys_first < n) {
            if ((rc = text_z(s, "<<SYS>>\n")))
                break;
            for (size_t k = sys_first; k <= sys_last && rc == 0; k++) {
                if (role_of(m[k].role) != ROLE_SYSTEM)
                    continue;
                const char *sc = m[k].content ? m[k].content : "";
                size_t sn = strlen(sc);
                strip(&sc, &sn);
                if (k > sys_first)
                    rc = text_z(s, "\n");
                if (rc == 0)
                    rc = s->text(s, sc, sn);
            }
            if (rc || (rc = text_z(s, "\n<</SYS>>\n\n")))
                break;
            sys_first = n;
        }
        if ((rc = s->text(s, c, cn)) || (rc = text_z(s, " [/INST]")))
            break;
        if (i == n)
            break;
    }
    return rc;
}

/* <|im_start|>role\ncontent<|im_end|>\n ... <|im_start|>assistant\n */
static int render_chatml(const struct gf_chat_msg *m, size_t n, struct sink *s)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *c = m[i].content ? m[i].content : "";
        if ((rc = s->marker(s, "<|im_start|>")) || (rc = text_z(s, m[i].role)) ||
            (rc = text_z(s, "\n")) || (rc = text_z(s, c)) || (rc = s->marker(s, "<|im_end|>")))
            break;
        rc = text_z(s, "\n");
    }
    if (rc == 0 && (rc = s->marker(s, "<|im_start|>")) == 0)
        rc = text_z(s, "assistant\n");
    return rc;
}

/* <|role|>\ncontent</s>\n ... <|assistant|>\n */
static int render_zephyr(const struct gf_chat_msg *m, size_t n, struct sink *s)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char mark[24];
        size_t rl = strlen(m[i].role);
        memcpy(mark, "<|", 2);
        memcpy(mark + 2, m[i].role, rl);  // role is one of the three names (checked)
        memcpy(mark + 2 + rl, "|>", 3);
        const char *c = m[i].content ? m[i].content : "";
        if ((rc = s->marker(s, mark)) || (rc = text_z(s, "\n")) || (rc = text_z(s, c)) ||
            (rc = s->marker(s, "</s>")))
            break;
        rc = text_z(s, "\n");
    }
    if (rc == 0 && (rc = s->marker(s, "<|assistant|>")) == 0)
        rc = text_z(s, "\n");
    return rc;
}

static int render(int tmpl, const struct gf_chat_msg *m, size_t n, struct sink *s)
{
    if (n == 0 || tmpl < 0 || tmpl >= GF_TEMPLATE_COUNT)
        return GF_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (role_of(m[i].role) < 0)
            return GF_EINVAL;
    switch (tmpl) {
    case GF_TEMPLATE_LLAMA2:
        return render_llama2(m, n, s);
    case GF_TEMPLATE_CHATML:
        return render_chatml(m, n, s);
    default:
        return render_zephyr(m, n, s);
    }
}

/* ---- to text ---------------------------------------------------------------------------- */

struct text_sink {
    struct sink base;
    struct gf_buf *out;
    bool any;        // something was written
    bool bos_first;  // the first thing written was "<s>"
};

static int ts_text(struct sink *s, const char *p, size_t n)
{
    struct text_sink *t = (struct text_sink *)s;
    t->any = t->any || n > 0;
    return gf_buf_append(t->out, p, n);
}

static int ts_marker(struct sink *s, const char *m)
{
    struct text_sink *t = (struct text_sink *)s;
    if (!t->any && strcmp(m, "<s>") == 0)
        t->bos_first = true;
    t->any = true;
    return gf_buf_puts(t->out, m);
}

int gf_template_render(int tmpl, const struct gf_chat_msg *msgs, size_t n, struct gf_buf *out,
                       bool *bos_in_text)
{
    struct text_sink t = {{ts_text, ts_marker}, out, false, false};
    int rc = render(tmpl, msgs, n, &t.base);
    if (bos_in_text != NULL)
        *bos_in_text = t.bos_first;
    return rc;
}

/* ---- to tokens -------------------------------------------------------------------------- */

struct tok_sink {
    struct sink base;
    const struct gf_tokenizer *tok;
    struct gf_buf run;  // text since the last marker
    int32_t *ids;
    size_t n, cap;
    bool any;
    bool bos_first;
};

static int tk_append(struct tok_sink *t, const int32_t *ids, size_t n)
{
    if (n > t->cap - t->n) {
        size_t cap = t->cap ? t->cap : 64;
        while (cap - t->n < n)
            cap *= 2;
        int32_t *v = gf_realloc(t->ids, cap * sizeof(*v));
        if (v == NULL)
            return GF_ENOMEM;
        t->ids = v;
        t->cap = cap;
    }
    memcpy(t->ids + t->n, ids, n * sizeof(*ids));
    t->n += n;
    return 0;
}

/* Encodes the pending text run as plain text (never parsing special tokens). */
static int tk_flush(struct tok_sink *t)
{
    if (t->run.len == 0)
        return 0;
    int32_t *ids;
    size_t n;
    int rc = gf_tokenizer_encode(t->tok, t->run.data, t->run.len, 0, &ids, &n);
    if (rc != 0)
        return rc;
    rc = tk_append(t, ids, n);
    gf_free(ids);
    gf_buf_reset(&t->run);
    return rc;
}

static int tk_text(struct sink *s, const char *p, size_t n)
{
    struct tok_sink *t = (struct tok_sink *)s;
    t->any = t->any || n > 0;
    return gf_buf_append(&t->run, p, n);
}

static int tk_marker(struct sink *s, const char *m)
{
    struct tok_sink *t = (struct tok_sink *)s;
    int32_t id = gf_tokenizer_find(t->tok, m, strlen(m));
    int ty = gf_tokenizer_type(t->tok, id);
    if (!t->any && strcmp(m, "<s>") == 0)
        t->bos_first = true;
    t->any = true;
    if (id < 0 || (ty != GF_TOKEN_CONTROL && ty != GF_TOKEN_USER_DEFINED &&
                   ty != GF_TOKEN_UNKNOWN))
        return gf_buf_puts(&t->run, m);  // not a special token of this vocabulary: plain text
    int rc = tk_flush(t);
    return rc ? rc : tk_append(t, &id, 1);
}

int gf_template_encode(const struct gf_tokenizer *tok, int tmpl, const struct gf_chat_msg *msgs,
                       size_t n, int32_t **ids, size_t *n_ids)
{
    *ids = NULL;
    *n_ids = 0;
    struct tok_sink t = {.base = {tk_text, tk_marker}, .tok = tok};
    gf_buf_init(&t.run, SIZE_MAX / 4);
    int rc = render(tmpl, msgs, n, &t.base);
    if (rc == 0)
        rc = tk_flush(&t);
    // BOS once: the template's own "<s>", or the vocabulary's add_bos.
    if (rc == 0 && !t.bos_first && gf_tokenizer_add_bos(tok)) {
        int32_t bos = gf_tokenizer_bos(tok);
        rc = tk_append(&t, &bos, 1);
        if (rc == 0) {
            memmove(t.ids + 1, t.ids, (t.n - 1) * sizeof(*t.ids));
            t.ids[0] = bos;
        }
    }
    if (rc == 0 && t.ids == NULL && (t.ids = gf_malloc(sizeof(int32_t))) == NULL)
        rc = GF_ENOMEM;
    gf_buf_cleanup(&t.run);
    if (rc != 0) {
        gf_free(t.ids);
        return rc;
    }
    *ids = t.ids;
    *n_ids = t.n;
    return 0;
}
