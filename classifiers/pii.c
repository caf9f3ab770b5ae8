/* pii.c — the PII and secrets detector: one PCRE2 pattern per type finds candidates, a
 * validator (pii_validate.c) keeps the real ones. A cheap census of the text (one pass: the
 * shapes of digit runs, '@', ':', and a few literal prefixes) skips the patterns that cannot
 * match: each census condition is implied by every match of its pattern, so skipping never
 * loses a hit, and prose with a few numbers (years, counts) costs one pass. Emails are only
 * tried where an '@' is. Numbers are also looked for in the canonical form, which undoes
 * full-width digits and characters hidden inside them; a hit there maps back to the original. */
#include "classifiers/rx_int.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <string.h>

#include "classifiers/pii_int.h"

/* What a text must hold for a pattern to match it (a necessary condition, checked by the
 * census): N_PHONE a stretch of [0-9 ().-] (the core \d[\d ().-]{5,20}\d of a match lies in
 * one) holding 10 digits, or 8 after a '+' (a match that validates holds that many: 8-15 digits
 * after a '+', else 10 or 11; '+' is outside the class, so it stands right before the
 * stretch); N_GROUP min_digits digits in a row separated by at most one
 * [ -] each (cards, SSNs); N_DOTTED 4 digits in a row separated by at most one '.' each
 * (IPv4); N_IBAN two capitals and two digits (not after a letter or digit) followed by two
 * groups " XXXX" or by 11 of [A-Z0-9]; N_SSN the pattern's own shape, runs of exactly 3, 2
 * and 4 digits separated by the same ' ' or '-' (a pattern of fixed shape is cheaper to look
 * for in the census' pass over digit runs than with a second pass of PCRE2). */
enum need { N_NONE, N_AT, N_PHONE, N_GROUP, N_DOTTED, N_IBAN, N_SSN, N_COLONS, N_LITERAL };

struct pii_def {
    const char *name;
    const char *pattern;
    bool (*valid)(const char *s, size_t n);
    enum need need;
    int min_digits;             // N_DIGITS: skip texts with fewer digits
    const char *literals[GF_PII_TYPE_LITERALS];  // N_LITERAL: skip texts holding none of these
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
        gf_pii_phone_valid, N_PHONE, 0, {NULL}, true, false},
    [GF_PII_CREDIT_CARD] = {"credit_card",
        "(?<![\\d.-])\\d(?:[ -]?\\d){12,18}(?![\\d]|-\\d)",
        gf_pii_card_valid, N_GROUP, 13, {NULL}, true, false},
    [GF_PII_IBAN] = {"iban",
        "(?<![A-Za-z0-9])[A-Z]{2}\\d{2}(?:(?: [A-Z0-9]{4}){2,7}(?: [A-Z0-9]{1,4})?|"
        "[A-Z0-9]{11,30})(?![A-Za-z0-9])",
        gf_pii_iban_valid, N_IBAN, 0, {NULL}, false, false},
    [GF_PII_SSN] = {"ssn",
        "(?<![\\d-])\\d{3}([- ])\\d{2}\\1\\d{4}(?![\\d-])",
        gf_pii_ssn_valid, N_SSN, 0, {NULL}, true, false},
    [GF_PII_IPV4] = {"ipv4",
        "(?<![\\w.])(?:\\d{1,3}\\.){3}\\d{1,3}(?![\\w]|\\.\\d)",
        gf_pii_ipv4_valid, N_DOTTED, 4, {NULL}, true, false},
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
        gf_pii_token_valid, N_LITERAL, 0,
        // every prefix the pattern accepts, and "aws" in each of its casings (caseless there)
        {"AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA", "ANPA", "ANVA", "AROA", "APKA",
         "ASCA", "aws", "awS", "aWs", "aWS", "Aws", "AwS", "AWs", "AWS", NULL},
        false, false},
    [GF_PII_GITHUB_TOKEN] = {"github_token",
        "(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,244})"
        "(?![A-Za-z0-9_])",
        gf_pii_token_valid, N_LITERAL, 0,
        {"ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", NULL}, false, false},
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
    pcre2_code *email_at;  // the email pattern anchored at its start (tried before each '@')
    pcre2_general_context *gctx;
    struct gf_pii_lits lits;  // the literal prefixes of the N_LITERAL types
    uint32_t literal_types;  // types of the mask that need a literal
    uint32_t numeric_types;  // types also matched on the canonical form
};

struct census {
    uint32_t literals;  // N_LITERAL types one of whose literals the text holds
    struct gf_rx_census k;
};

static bool is_digit(unsigned char c)
{
    return (unsigned)(c - '0') < 10;
}
static bool is_upper(unsigned char c)
{
    return (unsigned)(c - 'A') < 26;
}

static bool upper_digit(unsigned char c)  // [A-Z0-9]
{
    return is_upper(c) || is_digit(c);
}

// The rest of an IBAN after its first four bytes at p: " XXXX XXXX" or 11 of [A-Z0-9].
static bool iban_rest(const unsigned char *s, size_t n, size_t p)
{
    bool groups = p + 10 <= n && s[p] == ' ' && s[p + 5] == ' ', run = p + 11 <= n;
    for (size_t k = 0; k < 11 && (groups || run); k++) {
        run = run && upper_digit(s[p + k]);
        groups = groups && (k == 0 || k == 5 || k == 10 || upper_digit(s[p + k]));
    }
    return groups || run;
}

/* An SSN's shape ending with the run of 4 digits [i, i + 4): runs of exactly 3 and 2 digits
 * before it, each followed by the same ' ' or '-', and no digit or '-' around. */
static bool ssn_shape(const unsigned char *s, size_t n, size_t i)
{
    if (i < 7 || (i + 4 < n && s[i + 4] == '-'))
        return false;
    unsigned char sep = s[i - 1];
    return (sep == ' ' || sep == '-') && s[i - 4] == sep && is_digit(s[i - 3]) &&
           is_digit(s[i - 2]) && is_digit(s[i - 5]) && is_digit(s[i - 6]) && is_digit(s[i - 7]) &&
           (i == 7 || (!is_digit(s[i - 8]) && s[i - 8] != '-'));
}

// Byte classes of the census: everything else (letters above all) is K_PLAIN.
enum { K_PLAIN, K_DIGIT, K_SPACE_DASH, K_DOT, K_PAREN, K_AT, K_COLON };
static const unsigned char census_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    2, 0, 0, 0, 0, 0, 0, 0, 4, 4, 0, 0, 0, 2, 3, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 6, 0, 0, 0, 0, 0,
    5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

#define ONES  0x0101010101010101ull
#define HIGHS 0x8080808080808080ull

// True when one of the eight bytes of x is a digit, ':' or '@': the bytes that matter to the
// census when no digit run is open.
static bool wakes8(uint64_t x)
{
    uint64_t low = x & ~HIGHS;                      // sums below cannot carry between bytes
    uint64_t ge0 = low + ONES * (0x80 - '0');       // high bit where byte >= '0'
    uint64_t gt_colon = low + ONES * (0x7F - ':');  // high bit where byte > ':'
    uint64_t y = x ^ (ONES * '@');                  // a zero byte where x has '@'
    uint64_t at = (y - ONES) & ~y & HIGHS;
    return ((ge0 & ~gt_colon & ~x & HIGHS) | at) != 0;
}

#if defined(__SSE2__)
// Bit b set where p[b] is a digit, ':' or '@': '0'..':' are the bytes whose value - '0' + 0x80
// is below 0x80 + 11, as a signed byte (one compare instead of an unsigned range's two).
static inline unsigned wakes16(const unsigned char *p)
{
    __m128i x = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i d = _mm_sub_epi8(x, _mm_set1_epi8((char)('0' - 0x80)));
    __m128i w = _mm_or_si128(_mm_cmpgt_epi8(_mm_set1_epi8((char)(0x80 + 11)), d),
                             _mm_cmpeq_epi8(x, _mm_set1_epi8('@')));
    return (unsigned)_mm_movemask_epi8(w);
}
#endif

// The first j' >= j where s[j'] is a digit, ':' or '@', or n.
static size_t next_wake(const unsigned char *s, size_t j, size_t n)
{
#if defined(__SSE2__)
    for (; j + 32 <= n; j += 32) {  // prose goes on for dozens of bytes: two tests, one branch
        uint32_t m = wakes16(s + j) | (uint32_t)wakes16(s + j + 16) << 16;
        if (m != 0)
            return j + (size_t)__builtin_ctz(m);
    }
    for (; j + 16 <= n; j += 16) {
        unsigned m = wakes16(s + j);
        if (m != 0)
            return j + (size_t)__builtin_ctz(m);
    }
#endif
    uint64_t x;
    while (j + 8 <= n && (memcpy(&x, s + j, 8), !wakes8(x)))
        j += 8;
    for (; j < n; j++)
        if ((s[j] >= '0' && s[j] <= ':') || s[j] == '@')
            return j;
    return n;
}

// One pass over the text; where no digit run is open (most of prose), it skips to the next
// digit, ':' or '@', 32 bytes at a time.
static void count(const char *str, size_t n, struct gf_rx_census *c)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t group = 0, dotted = 0;
    size_t run_first = SIZE_MAX;  // first digit of the current [0-9 ().-] stretch
    size_t run_digits = 0;        // its digits so far
    bool run_plus = false;        // a '+' stands right before it
    bool prev_digit = false;
    for (size_t i = 0; i < n; i++) {
        unsigned k = census_class[s[i]];
        if (k == K_PLAIN) {
            group = dotted = 0;
            run_first = SIZE_MAX;
            prev_digit = false;
            // Nothing is open: only a digit, ':' or '@' changes the census; the bytes before
            // the next one (spaces and dots too) leave it as it is.
            i = next_wake(s, i + 1, n) - 1;
            continue;
        }
        if (k == K_DIGIT) {  // a run of digits [i, j) at once
            size_t j = i + 1;
            while (j < n && is_digit(s[j]))
                j++;
            group += j - i;
            dotted += j - i;
            if (group > c->group)
                c->group = group;
            if (dotted > c->dotted)
                c->dotted = dotted;
            if (run_first == SIZE_MAX) {
                run_first = i;
                run_digits = 0;
                run_plus = i > 0 && s[i - 1] == '+';
            }
            run_digits += j - i;
            if (run_digits >= 10 || (run_plus && run_digits >= 8))
                c->phone = true;
            // [A-Z]{2}[0-9]{2}: only the run's second digit can follow two capitals.
            if (j - i >= 2 && i >= 2 && is_upper(s[i - 1]) && is_upper(s[i - 2]) &&
                (i == 2 || !(upper_digit(s[i - 3]) || (s[i - 3] >= 'a' && s[i - 3] <= 'z'))) &&
                iban_rest(s, n, i + 2))
                c->iban = true;
            if (j - i == 4 && ssn_shape(s, n, i))
                c->ssn = true;
            prev_digit = true;
            i = j - 1;
            continue;
        }
        // A separator keeps a group only right after a digit (the patterns allow one).
        if (!(k == K_SPACE_DASH && prev_digit))
            group = 0;
        if (!(k == K_DOT && prev_digit))
            dotted = 0;
        if (k > K_PAREN)
            run_first = SIZE_MAX;
        prev_digit = false;
        c->ats += k == K_AT;
        c->colons += k == K_COLON;
    }
}

static bool worth(const struct pii_def *d, const struct census *c, const char *s, size_t n)
{
    switch (d->need) {
    case N_AT:
        return c->k.ats > 0;
    case N_PHONE:
        return c->k.phone;
    case N_GROUP:
        return c->k.group >= (size_t)d->min_digits;
    case N_DOTTED:
        return c->k.dotted >= (size_t)d->min_digits;
    case N_IBAN:
        return c->k.iban;
    case N_SSN:
        return c->k.ssn;
    case N_COLONS:
        return c->k.colons >= 2;
    case N_LITERAL:
        (void)s;
        (void)n;
        return c->literals & (1u << (d - defs));
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

const char *const *gf_pii_literals(int type)
{
    return type >= 0 && type < GF_PII_COUNT && defs[type].need == N_LITERAL ? defs[type].literals
                                                                           : NULL;
}

uint32_t gf_pii_literal_types(const struct gf_detector *d, const char *s, size_t n)
{
    const struct pii *p = d->impl;
    return gf_pii_lits_find(&p->lits, s, n);
}

// The census of the text or of its canonical form, shared through the scratch by the pii
// detectors of one evaluation (a policy often has several pii rules).
static void census_of(const struct gf_scan *in, bool canon, struct gf_rx_census *out)
{
    struct gf_scan_scratch *s = in->scratch;
    if (in->id != 0 && s->census_id != in->id) {
        s->census_id = in->id;
        s->census_orig = s->census_canon = false;
    }
    bool *have = canon ? &s->census_canon : &s->census_orig;
    struct gf_rx_census *cached = canon ? &s->canon : &s->orig;
    if (in->id != 0 && *have) {
        *out = *cached;
        return;
    }
    memset(out, 0, sizeof(*out));
    if (canon)
        count(in->norm->text, in->norm->len, out);
    else
        count(in->text, in->len, out);
    if (in->id != 0) {
        *cached = *out;
        *have = true;
    }
}

static bool is_local(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || is_upper(c) || is_digit(c) || c == '.' || c == '_' ||
           c == '%' || c == '+' || c == '-';
}

/* Emails: a match holds exactly one '@', and its lookbehind makes it start where the run of
 * local-part characters before that '@' starts, at most 64 bytes before it. So the anchored
 * pattern is tried there for each '@' instead of at every letter of the text: the same
 * matches, found from a memchr. */
static int scan_emails(const struct pii *p, struct walk *w)
{
    const char *t = w->in->text;
    size_t len = w->in->len, done = 0;  // matches end at done; none starts before it
    for (const char *at = memchr(t, '@', len); at != NULL;
         at = memchr(at + 1, '@', len - (size_t)(at + 1 - t))) {
        size_t a = (size_t)(at - t), s = a;
        while (s > 0 && a - s <= 64 && is_local((unsigned char)t[s - 1]))
            s--;
        if (s == a || s < done || a - s > 64 || (s > 0 && is_local((unsigned char)t[s - 1])))
            continue;
        size_t e;
        int rc = gf_rx_match_at(p->email_at, t, len, s, w->in->scratch, &e, w->err);
        if (rc == 0 && e > s)
            rc = on_match(w, s, e, NULL);
        if (rc != 0)
            return rc;
        if (e > s) {
            done = e;
            if (e > a + 1)
                at = t + e - 1;
        }
    }
    return 0;
}

/* The hits of the types of p in in. Without census, every pattern runs whatever the census
 * would say (the secrets' literal prefilter stays): the unit tests' reference. */
static int scan_types(const struct pii *p, const struct gf_scan *in, struct gf_hits *out,
                      bool census, struct gf_err *err)
{
    struct census c = {0}, cc = {0};
    const struct gf_rx_census any = {1, 2, SIZE_MAX, SIZE_MAX, true, true, true};
    if (p->mask & ~p->literal_types)
        census_of(in, false, &c.k);
    if (p->literal_types)
        c.literals = gf_pii_lits_find(&p->lits, in->text, in->len);
    bool canon = (p->mask & p->numeric_types) && gf_rx_canon_differs(in);
    if (canon)
        census_of(in, true, &cc.k);
    if (!census)
        c.k = cc.k = any;
    struct walk w = {in, in->text, out, out->n, 0, false, err};
    for (int t = 0; t < GF_PII_COUNT; t++) {
        if (!(p->mask & (1u << t)))
            continue;
        w.type = t;
        if (t == GF_PII_EMAIL && p->email_at != NULL) {
            w.subj = in->text;
            w.canonical = false;
            if (c.k.ats > 0) {
                int rc = scan_emails(p, &w);
                if (rc != 0)
                    return rc;
            }
        } else if (worth(&defs[t], &c, in->text, in->len)) {
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

static int pii_scan(const struct gf_detector *d, const struct gf_scan *in, struct gf_hits *out,
                    struct gf_err *err)
{
    return scan_types(d->impl, in, out, true, err);
}

int gf_pii_scan_all(const struct gf_detector *d, const struct gf_scan *in, struct gf_hits *out,
                    struct gf_err *err)
{
    return scan_types(d->impl, in, out, false, err);
}

static void pii_destroy(struct gf_detector *d)
{
    struct pii *p = d->impl;
    for (int t = 0; t < GF_PII_COUNT; t++)
        pcre2_code_free(p->code[t]);
    pcre2_code_free(p->email_at);
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
        if (defs[t].numeric)
            p->numeric_types |= 1u << t;
        for (int k = 0; rc == 0 && defs[t].need == N_LITERAL && k < GF_PII_TYPE_LITERALS && defs[t].literals[k];
             k++) {
            if (gf_pii_lits_add(&p->lits, defs[t].literals[k], t) != 0) {
                rc = gf_err_set(err, GF_EINVAL, "too many literals");  // GF_PII_LITS is too small
                break;
            }
            p->literal_types |= 1u << t;
        }
        if (rc == 0 && t == GF_PII_EMAIL)
            rc = gf_rx_compile(p->gctx, defs[t].pattern, strlen(defs[t].pattern),
                               opts | PCRE2_ANCHORED, &p->email_at, err);
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
