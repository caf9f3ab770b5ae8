/* spam.c — the spam heuristics as a scored detector: link density, repeated word trigrams,
 * shouting (capitals and exclamation marks) and call-to-action phrases, combined by a fixed
 * logistic function into one score in [0, 1] for the whole text. No allocation per scan: the
 * trigram table lives on the stack and the phrase list is one pattern compiled at build. */
#include "classifiers/rx_int.h"

#include <math.h>
#include <string.h>

// Call-to-action and bait phrases, written in canonical form (they match the canonical text).
static const char *const cta[] = {
    "click here", "click below", "click the link", "click this link", "buy now", "order now",
    "call now", "act now", "apply now", "sign up now", "subscribe now", "limited time",
    "limited offer", "offer expires", "don't miss", "dont miss", "free money", "free gift",
    "free trial", "100% free", "risk free", "risk-free", "no credit check", "earn money",
    "make money", "earn cash", "extra income", "work from home", "you have won", "you won",
    "you've won", "winner", "congratulations", "claim your", "claim now", "prize", "lottery",
    "cash bonus", "double your", "guaranteed", "miracle", "weight loss", "lose weight", "viagra",
    "casino", "investment opportunity", "exclusive deal", "special promotion", "cheap",
    "discount", "unsubscribe", "dm me", "text stop", "reply stop", "urgent", "act fast",
    "once in a lifetime", "best price", "lowest price", "no obligation", "visit our website",
    "call free", "txt", "ringtone", "free entry", "cash prize", "selected to receive", "bonus",
    "reward", "to opt out", "per week", "per min", "save big",
};

struct spam {
    struct gf_detector det;
    pcre2_code *cta;
    pcre2_general_context *gctx;
};

struct features {
    size_t words, links, letters, upper, bangs, trigrams, repeats;
    unsigned cta;  // call-to-action phrases seen (counting stops at 8)
};

static bool alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

static size_t count_str(const char *s, size_t n, const char *needle)
{
    return gf_rx_count_literal(s, n, needle, strlen(needle));
}

// Bare domains such as "example.com" or "bit.ly/x" that are not preceded by a scheme.
static size_t count_domains(const char *s, size_t n)
{
    static const char *const tlds[] = {"com", "net", "org", "info", "biz", "ru", "xyz", "top",
                                       "io", "ly", "co", "uk", "click", "online", "site"};
    size_t k = 0;
    for (size_t i = 1; i + 2 < n; i++) {
        if (s[i] != '.' || !alnum((unsigned char)s[i - 1]))
            continue;
        for (size_t t = 0; t < GF_ARRAY_LEN(tlds); t++) {
            size_t m = strlen(tlds[t]);
            if (i + 1 + m <= n && strncasecmp(s + i + 1, tlds[t], m) == 0 &&
                (i + 1 + m == n || !alnum((unsigned char)s[i + 1 + m]))) {
                k++;
                break;
            }
        }
    }
    return k;
}

static uint64_t fnv(const char *s, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

// Words and repeated word trigrams of the canonical text (the first 1024 trigrams).
static void trigrams(const char *s, size_t n, struct features *f)
{
    enum { SLOTS = 2048 };
    uint64_t table[SLOTS];
    memset(table, 0, sizeof(table));
    uint64_t w[3] = {0, 0, 0};
    size_t i = 0;
    while (i < n) {
        while (i < n && !alnum((unsigned char)s[i]))
            i++;
        size_t b = i;
        while (i < n && alnum((unsigned char)s[i]))
            i++;
        if (i == b)
            break;
        f->words++;
        w[0] = w[1];
        w[1] = w[2];
        w[2] = fnv(s + b, i - b, 0xcbf29ce484222325ull);
        if (f->words < 3 || f->trigrams >= SLOTS / 2)
            continue;
        uint64_t h = (w[0] * 31 + w[1]) * 31 + w[2];
        h |= 1;  // 0 marks an empty slot
        f->trigrams++;
        for (size_t k = h % SLOTS;; k = (k + 1) % SLOTS) {
            if (table[k] == 0) {
                table[k] = h;
                break;
            }
            if (table[k] == h) {
                f->repeats++;
                break;
            }
        }
    }
}

static int on_cta(void *ud, size_t s, size_t e, pcre2_match_data *md)
{
    (void)s;
    (void)e;
    (void)md;
    unsigned *seen = ud;
    (*seen)++;
    return *seen >= 8;  // enough evidence; stop early
}

static double score_of(size_t words, size_t links, size_t letters, size_t upper, size_t bangs,
                       size_t trigrams, size_t repeats, unsigned cta_count)
{
    double density = words ? (double)links / (double)words : 0;
    double repeat = trigrams >= 4 ? (double)repeats / (double)trigrams : 0;
    double caps = letters >= 12 ? (double)upper / (double)letters : 0;
    double z = -4.0;
    z += 3.0 * fmin(density * 5.0, 1.5);
    z += 4.0 * repeat;
    z += caps > 0.3 ? 3.0 * (caps - 0.3) / 0.7 : 0;
    z += 1.3 * fmin((double)cta_count, 4.0);
    z += 0.4 * fmin((double)bangs, 5.0);
    return 1.0 / (1.0 + exp(-z));
}

static int spam_scan(const struct gf_detector *d, const struct gf_scan *in, struct gf_hits *out,
                     struct gf_err *err)
{
    const struct spam *sp = d->impl;
    if (in->len == 0)
        return 0;
    struct features f = {0};
    for (size_t i = 0; i < in->len; i++) {
        unsigned char c = (unsigned char)in->text[i];
        f.letters += (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        f.upper += c >= 'A' && c <= 'Z';
        f.bangs += c == '!';
    }
    f.links = count_str(in->text, in->len, "://") + count_str(in->text, in->len, "www.") +
              count_domains(in->text, in->len);
    const char *canon = in->norm ? in->norm->text : in->text;
    size_t clen = in->norm ? in->norm->len : in->len;
    trigrams(canon, clen, &f);
    int rc = gf_rx_each(sp->cta, canon, clen, in->scratch, on_cta, &f.cta, err);
    if (rc < 0)
        return rc;
    double score = score_of(f.words, f.links, f.letters, f.upper, f.bangs, f.trigrams, f.repeats,
                            f.cta);
    struct gf_hit hit = {0, in->len, "spam", score, -1, false};
    rc = gf_hits_add(out, &hit);
    if (rc != 0)
        return gf_err_set(err, rc, "cannot record the spam score");
    return 0;
}

static void spam_destroy(struct gf_detector *d)
{
    struct spam *sp = d->impl;
    pcre2_code_free(sp->cta);
    pcre2_general_context_free(sp->gctx);
    gf_free(sp);
}

static const struct gf_detector_ops spam_ops = {"spam", spam_scan, spam_destroy};

int gf_spam_new(struct gf_detector **out, struct gf_err *err)
{
    *out = NULL;
    struct spam *sp = gf_calloc(1, sizeof(*sp));
    if (sp == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory building the spam detector");
    sp->det.ops = &spam_ops;
    sp->det.impl = sp;
    struct gf_buf b;
    gf_buf_init(&b, 1 << 16);
    int rc = gf_buf_puts(&b, "(?<!\\w)(?:");
    if (rc == 0)
        rc = gf_rx_literal_trie(&b, cta, GF_ARRAY_LEN(cta));
    if (rc == 0)
        rc = gf_buf_puts(&b, ")(?!\\w)");
    sp->gctx = gf_rx_gctx();
    if (rc != 0 || sp->gctx == NULL)
        rc = gf_err_set(err, GF_ENOMEM, "out of memory building the spam detector");
    else
        rc = gf_rx_compile(sp->gctx, b.data, b.len, PCRE2_CASELESS, &sp->cta, err);
    gf_buf_cleanup(&b);
    if (rc != 0) {
        spam_destroy(&sp->det);
        return rc;
    }
    *out = &sp->det;
    return 0;
}
