/* redact.c — the built-in scrubber of retention "redacted": after the policy's own redactions,
 * it masks what must never sit in an audit file whatever the policy says — e-mail addresses,
 * runs of 6+ digits (phone, card, account numbers, spaces and dashes allowed inside) and
 * key-shaped tokens (gf_..., sk-...). Invariant: output is input with some spans replaced by
 * fixed markers; bytes outside those spans are copied unchanged. */
#include "audit/audit_int.h"

#include <string.h>

static bool is_word(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

static bool is_email_local(unsigned char c)
{
    return is_word(c) || c == '.' || c == '+';
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Length of an e-mail address starting at s[i] (its local part begins there), or 0. */
static size_t email_at(const char *s, size_t n, size_t i)
{
    size_t j = i;
    while (j < n && is_email_local((unsigned char)s[j]))
        j++;
    if (j == i || j >= n || s[j] != '@')
        return 0;
    size_t k = j + 1, dots = 0, start = k;
    while (k < n && (is_word((unsigned char)s[k]) || s[k] == '.')) {
        if (s[k] == '.')
            dots++;
        k++;
    }
    while (k > start && s[k - 1] == '.') { // a sentence's final period is not the domain's
        k--;
        dots--;
    }
    return dots >= 1 && k > start ? k - i : 0;
}

/* Length of a digit run with >= 6 digits starting at s[i], or 0. */
static size_t digits_at(const char *s, size_t n, size_t i)
{
    size_t j = i, nd = 0, end = i;
    while (j < n) {
        if (is_digit((unsigned char)s[j])) {
            nd++;
            end = j + 1;
        } else if (!((s[j] == ' ' || s[j] == '-') && j + 1 < n && is_digit((unsigned char)s[j + 1]))) {
            break;
        }
        j++;
    }
    return nd >= 6 ? end - i : 0;
}

/* Length of an API-key-shaped token at s[i] ("gf_" or "sk-" then 16+ word characters), or 0. */
static size_t key_at(const char *s, size_t n, size_t i)
{
    if (n - i < 3 || (memcmp(s + i, "gf_", 3) != 0 && memcmp(s + i, "sk-", 3) != 0))
        return 0;
    size_t j = i + 3;
    while (j < n && is_word((unsigned char)s[j]))
        j++;
    return j - i >= 19 ? j - i : 0;
}

int audit_scrub(struct gf_buf *b, const char *s, size_t n)
{
    size_t i = 0, copied = 0;
    while (i < n) {
        // Matches start only at a word boundary, so "abc123456" inside a word is left alone
        // by the digit rule but an address or key is still caught at its start.
        bool boundary = i == 0 || !is_word((unsigned char)s[i - 1]);
        size_t m = 0;
        const char *mark = NULL;
        if (boundary && (m = key_at(s, n, i)) > 0)
            mark = "[KEY]";
        else if (boundary && (m = email_at(s, n, i)) > 0)
            mark = "[EMAIL]";
        else if (boundary && is_digit((unsigned char)s[i]) && (m = digits_at(s, n, i)) > 0)
            mark = "[NUMBER]";
        if (mark == NULL) {
            i++;
            continue;
        }
        int rc = gf_buf_append(b, s + copied, i - copied);
        if (rc == 0)
            rc = gf_buf_puts(b, mark);
        if (rc != 0)
            return rc;
        i += m;
        copied = i;
    }
    return gf_buf_append(b, s + copied, n - copied);
}
