/* pii.c — the PII and secrets detector: one PCRE2 pattern per type finds candidates, a
 * validator (pii_validate.c) keeps the real ones. A cheap census of the text (digits, '@',
 * ':' and a few literal prefixes) skips the patterns that cannot match, so prose without
 * numbers costs one pass. Numbers are also looked for in the canonical form, which undoes
 * full-width digits and characters hidden inside them; a hit there maps back to the original. */
#include "classifiers/rx_int.h"

#include <string.h>

#include "classifiers/pii_int.h"

enum need { N_NONE, N_AT, N_DIGITS, N_COLONS, N_LITERAL };

struct pii_def {
    const char *name;
    const char *pattern;
    bool (*valid)(const char *s, size_t n);
    enum need need;
    int min_digits;             // N_DIGITS: skip texts with fewer digits
    const char *literals[8];    // N_LITERAL: skip texts containing none of these
    bool numeric;               // also matched on the canonical form
    bool caseless;
};

static bool any(const char *s, size_t n)
{
    (void)s;
    (void)n;
    return true;
}

// Order matches enum gf_pii_type.
static const struct pii_def defs[GF_PII_COUNT] = {
    [GF_PII_EMAIL] = {"email",
        "(?<![A-Za-z0-9._%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
        "(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z]{2,24}(?![A-Za-z0-9-])",
        gf_pii_email_valid, N_AT, 0, {NULL}, false, false},
    [GF_PII_PHONE] = {"phone",
        "(?<![\\w+.-])(?:\\+|\\(\\d)?\\d[\\d ().-]{5,20}\\d(?![\\w-]|\\.\\d)",
        gf_pii_phone_valid, N_DIGITS, 7, {NULL}, true, false},
    [GF_PII_CREDIT_CARD] = {"credit_card",
        "(?<![\\d.-])\\d(?:[ -]?\\d){12,18}(?![\\d]|-\\d)",
        gf_pii_card_valid, N_DIGITS, 13, {NULL}, true, false},
    [GF_PII_IBAN] = {"iban",
        "(?<![A-Za-z0-9])[A-Z]{2}\\d{2}(?:(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?|"
        "[A-Z0-9]{11,30})(?![A-Za-z0-9])",
        gf_pii_iban_valid, N_DIGITS, 4, {NULL}, false, false},
    [GF_PII_SSN] = {"ssn",
        "(?<![\\d-])\\d{3}([- ])\\d{2}\\1\\d{4}(?![\\d-])",
        gf_pii_ssn_valid, N_DIGITS, 9, {NULL}, true, false},
    [GF_PII_IPV4] = {"ipv4",
        "(?<![\\w.])(?:\\d{1,3}\\.){3}\\d{1,3}(?![\\w]|\\.\\d)",
        gf_pii_ipv4_valid, N_DIGITS, 4, {NULL}, true, false},
    [GF_PII_IPV6] = {"ipv6",
        "(?<![\\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\\d{1,3}\\.){3}\\d{1,3}|[0-9A-Fa-f]{1,4})?"
        "(?![\\w:])",
        gf_pii_ipv6_valid, N_COLONS, 0, {NULL}, false, false},
    [GF_PII_PRIVATE_KEY] = {"private_key",
        "-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----(?:[\\s\\S]*?-----END "
        "(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|[\\s\\S]*)",
        any, N_LITERAL, 0, {"-----BEGIN", NULL}, false, false},
    [GF_PII_AWS_KEY] = {"aws_key",
        "(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)"
        "[A-Z2-7]{16}(?![A-Za-z0-9])"
        "|(?i:aws)[\\w.-]{0,20}(?i:secret|key)[\\w.-]{0,20}[\"']?\\s*[:=]\\s*[\"']?"
        "\\K[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])",
        gf_pii_token_valid, N_LITERAL, 0, {"AKIA", "ASIA", "AIDA", "AROA", "AGPA", "aws", "AWS", "Aws"}, false, false},
    [GF_PII_GITHUB_TOKEN] = {"github_token",
        "(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244})"
        "(?![A-Za-z0-9_])",
        gf_pii_token_valid, N_LITERAL, 0, {"gh", "github_pat_", NULL}, false, false},
    [GF_PII_SLACK_TOKEN] = {"slack_token",
        "(?<![A-Za-z0-9-])xox[abposr]-(?:[A-Za-z0-9]+-){1,4}[A-Za-z0-9]{6,}"
        "|https://hooks\\.slack\\.com/services/T[A-Z0-9]{6,}/B[A-Z0-9]{6,}/[A-Za-z0-9]{16,}",
        gf_pii_token_valid, N_LITERAL, 0, {"xox", "hooks.slack.com", NULL}, false, false},
    [GF_PII_GF_KEY] = {"gf_key",
        "(?<![A-Za-z0-9_])gf_[0-9A-Za-z]{28,80}(?![A-Za-z0-9_])",
        gf_pii_token_valid, N_LITERAL, 0, {"gf_", NULL}, false, false},
    [GF_PII_API_KEY] = {"api_key",
        "(?<![A-Za-z0-9_-])(?:sk-(?:proj-|svcacct-|ant-)?[A-Za-z0-9_-]{20,200}"
        "|[sr]k_(?:live|test)_[A-Za-z0-9]{16,200}|AIza[0-9A-Za-z_-]{35})(?![A-Za-z0-9_-])",
        gf_pii_token_valid, N_LITERAL, 0, {"sk-", "sk_", "rk_", "AIza", NULL}, false, false},
    [GF_PII_JWT] = {"jwt",
        "(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\\.eyJ[A-Za-z0-9_-]{8,}\\.[A-Za-z0-9_-]{8,}",
        any, N_LITERAL, 0, {"eyJ", NULL}, false, false},
};

const char *gf_pii_type_name(enum gf_pii_type t)
{
    return t < GF_PII_COUNT ? defs[t].name : NULL;
}

int gf_pii_type_parse(const char *name, uint32_t *mask)
{
    for (int t = 0; t < GF_PII_COUNT; t++)
        if (strcmp(name, defs[t].name) == 0) {
            *mask |= 1u << t;
            return 0;
        }
    if (strcmp(name, "ip") == 0) {
        *mask |= (1u << GF_PII_IPV4) | (1u << GF_PII_IPV6);
        return 0;
    }
    if (strcmp(name, "secret") == 0 || strcmp(name, "secrets") == 0) {
        *mask |= GF_PII_SECRETS;
        return 0;
    }
    if (strcmp(name, "all") == 0) {
        *mask |= GF_PII_ALL;
        return 0;
    }
    return GF_EINVAL;
}

struct pii {
    struct gf_detector det;
    uint32_t mask;
    pcre2_code *code[GF_PII_COUNT];
    pcre2_general_context *gctx;
};

struct census {
    size_t digits, ats, colons;
};

static void count(const char *s, size_t n, struct census *c)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        c->digits += (unsigned)(ch - '0') < 10;
        c->ats += ch == '@';
        c->colons += ch == ':';
    }
}

static bool worth(const struct pii_def *d, const struct census *c, const char *s, size_t n)
{
    switch (d->need) {
    case N_AT:
        return c->ats > 0;
    case N_DIGITS:
        return c->digits >= (size_t)d->min_digits;
    case N_COLONS:
        return c->colons >= 2;
    case N_LITERAL:
        for (int i = 0; i < 8 && d->literals[i]; i++)
            if (gf_rx_has_literal(s, n, d->literals[i], strlen(d->literals[i])))
                return true;
        return false;
    default:
        return true;
    }
}

struct walk {
    const struct gf_scan *in;
    const char *subj;
    struct gf_hits *hits;
    size_t base;
    int type;
    bool canonical;
    struct gf_err *err;
};

static int on_match(void *ud, size_t s, size_t e, pcre2_match_data *md)
{
    (void)md;
    struct walk *w = ud;
    const struct pii_def *d = &defs[w->type];
    // A numeric candidate may have swallowed a following number ("555-1234 5 apples"): cut
    // trailing digit groups until it validates or nothing is left.
    while (!d->valid(w->subj + s, e - s)) {
        if (!d->numeric)
            return 0;
        size_t q = e;
        while (q > s && (unsigned)(w->subj[q - 1] - '0') < 10)
            q--;
        while (q > s && (unsigned)(w->subj[q - 1] - '0') >= 10)
            q--;
        if (q <= s)
            return 0;
        e = q;
    }
    if (w->canonical)
        gf_norm_span(w->in->norm, s, e, &s, &e);
    return gf_rx_add_hit(w->hits, w->base, s, e, defs[w->type].name, w->type, w->canonical,
                         w->err);
}

static int pii_scan(const struct gf_detector *d, const struct gf_scan *in, struct gf_hits *out,
                    struct gf_err *err)
{
    const struct pii *p = d->impl;
    struct census c = {0}, cc = {0};
    count(in->text, in->len, &c);
    bool canon = gf_rx_canon_differs(in);
    if (canon)
        count(in->norm->text, in->norm->len, &cc);
    struct walk w = {in, in->text, out, out->n, 0, false, err};
    for (int t = 0; t < GF_PII_COUNT; t++) {
        if (!(p->mask & (1u << t)))
            continue;
        w.type = t;
        if (worth(&defs[t], &c, in->text, in->len)) {
            w.subj = in->text;
            w.canonical = false;
            int rc = gf_rx_each(p->code[t], in->text, in->len, in->scratch, on_match, &w, err);
            if (rc != 0)
                return rc;
        }
        if (canon && defs[t].numeric && worth(&defs[t], &cc, in->norm->text, in->norm->len)) {
            w.subj = in->norm->text;
            w.canonical = true;
            int rc = gf_rx_each(p->code[t], in->norm->text, in->norm->len, in->scratch,
                                on_match, &w, err);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static void pii_destroy(struct gf_detector *d)
{
    struct pii *p = d->impl;
    for (int t = 0; t < GF_PII_COUNT; t++)
        pcre2_code_free(p->code[t]);
    pcre2_general_context_free(p->gctx);
    gf_free(p);
}

static const struct gf_detector_ops pii_ops = {"pii", pii_scan, pii_destroy};

int gf_pii_new(uint32_t mask, struct gf_detector **out, struct gf_err *err)
{
    *out = NULL;
    struct pii *p = gf_calloc(1, sizeof(*p));
    if (p == NULL)
        return gf_err_set(err, GF_ENOMEM, "out of memory building the pii detector");
    p->det.ops = &pii_ops;
    p->det.impl = p;
    p->mask = mask ? mask & GF_PII_ALL : GF_PII_ALL;
    p->gctx = gf_rx_gctx();
    int rc = p->gctx ? 0 : gf_err_set(err, GF_ENOMEM, "out of memory building the pii detector");
    for (int t = 0; t < GF_PII_COUNT && rc == 0; t++) {
        if (!(p->mask & (1u << t)))
            continue;
        uint32_t opts = defs[t].caseless ? PCRE2_CASELESS : 0;
        rc = gf_rx_compile(p->gctx, defs[t].pattern, strlen(defs[t].pattern), opts, &p->code[t],
                           err);
        if (rc == GF_EINVAL)  // a bug in the table above, not the caller's input
            gf_err_prefix(err, defs[t].name);
    }
    if (rc != 0) {
        pii_destroy(&p->det);
        return rc;
    }
    *out = &p->det;
    return 0;
}
