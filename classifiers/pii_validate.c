/* pii_validate.c — validators that turn pattern candidates into PII hits. Patterns find what
 * looks like a card or a phone number; these checks (Luhn, mod-97, issued ranges, address
 * syntax) cut the false positives that digits in ordinary text would otherwise cause. */
#include "classifiers/pii_int.h"

#include <arpa/inet.h>
#include <string.h>

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static size_t digits_of(const char *s, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (is_digit(s[i])) {
            if (k == cap)
                return cap + 1;
            out[k++] = s[i];
        }
    return k;
}

static bool all_same(const char *d, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (d[i] != d[0])
            return false;
    return true;
}

bool gf_pii_luhn(const char *s, size_t n)
{
    int sum = 0, k = 0;
    for (size_t i = n; i-- > 0;) {
        if (!is_digit(s[i]))
            continue;
        int d = s[i] - '0';
        if (k++ & 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
    }
    return k > 0 && sum % 10 == 0;
}

static int prefix(const char *d, int len)
{
    int v = 0;
    for (int i = 0; i < len; i++)
        v = v * 10 + (d[i] - '0');
    return v;
}

// Issuer identification ranges of the card networks in use.
static bool known_issuer(const char *d, size_t n)
{
    int p1 = d[0] - '0', p2 = prefix(d, 2), p3 = prefix(d, 3), p4 = prefix(d, 4);
    if (p1 == 4)  // Visa
        return n == 13 || n == 16 || n == 19;
    if ((p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720))  // Mastercard
        return n == 16;
    if (p2 == 34 || p2 == 37)  // American Express
        return n == 15;
    if (p4 == 6011 || p2 == 65 || (p3 >= 644 && p3 <= 649))  // Discover
        return n >= 16;
    if (p4 >= 3528 && p4 <= 3589)  // JCB
        return n >= 16;
    if ((p3 >= 300 && p3 <= 305) || p2 == 36 || p2 == 38 || p2 == 39)  // Diners Club
        return n >= 14;
    if (p2 == 62)  // UnionPay
        return n >= 16;
    if (p2 == 50 || (p2 >= 56 && p2 <= 69))  // Maestro
        return n >= 12;
    return false;
}

bool gf_pii_card_valid(const char *s, size_t n)
{
    char d[20];
    size_t k = digits_of(s, n, d, sizeof(d));
    if (k < 13 || k > 19 || all_same(d, k))
        return false;
    char sep = 0;  // separators, if any, are all the same character
    for (size_t i = 0; i < n; i++) {
        if (is_digit(s[i]))
            continue;
        if (sep && s[i] != sep)
            return false;
        sep = s[i];
    }
    return known_issuer(d, k) && gf_pii_luhn(d, k);
}

struct iban_len {
    char cc[3];
    unsigned char len;
};

static const struct iban_len iban_lens[] = {
    {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16},
    {"BG", 22}, {"BH", 22}, {"BR", 29}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24},
    {"DE", 22}, {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18},
    {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27},
    {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IS", 26}, {"IT", 27},
    {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LI", 21}, {"LT", 20}, {"LU", 20},
    {"LV", 21}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MR", 27}, {"MT", 31},
    {"MU", 30}, {"NL", 18}, {"NO", 15}, {"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25},
    {"QA", 29}, {"RO", 24}, {"RS", 22}, {"SA", 24}, {"SE", 24}, {"SI", 19}, {"SK", 24},
    {"SM", 27}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VG", 24}, {"XK", 20},
};

static char upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 32) : c;
}

bool gf_pii_iban_valid(const char *s, size_t n)
{
    char b[40];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ')
            continue;
        if (k == sizeof(b))
            return false;
        b[k++] = upper(s[i]);
    }
    if (k < 15 || k > 34)
        return false;
    size_t want = 0;
    for (size_t i = 0; i < sizeof(iban_lens) / sizeof(iban_lens[0]); i++)
        if (iban_lens[i].cc[0] == b[0] && iban_lens[i].cc[1] == b[1])
            want = iban_lens[i].len;
    if (want == 0 || k != want)
        return false;
    // Move the first four characters to the end, letters become 10..35, remainder mod 97.
    unsigned rem = 0;
    for (size_t j = 0; j < k; j++) {
        char c = b[(j + 4) % k];
        if (is_digit(c))
            rem = (rem * 10 + (unsigned)(c - '0')) % 97;
        else if (c >= 'A' && c <= 'Z')
            rem = (rem * 100 + (unsigned)(c - 'A' + 10)) % 97;
        else
            return false;
    }
    return rem == 1;
}

bool gf_pii_ssn_valid(const char *s, size_t n)
{
    char d[10];
    if (digits_of(s, n, d, sizeof(d)) != 9)
        return false;
    int area = prefix(d, 3), group = prefix(d + 3, 2), serial = prefix(d + 5, 4);
    if (area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0)
        return false;
    // Numbers printed on sample cards and in advertising, never issued to a person.
    if ((area == 78 && group == 5 && serial == 1120) || (area == 219 && group == 9 && serial == 9999))
        return false;
    return true;
}

bool gf_pii_phone_valid(const char *s, size_t n)
{
    char d[20];
    size_t k = digits_of(s, n, d, sizeof(d));
    if (k > 15 || k < 7 || all_same(d, k))
        return false;
    int open = 0, seps = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '(')
            open++;
        else if (s[i] == ')' && --open < 0)
            return false;
        if (!is_digit(s[i]) && s[i] != '+')
            seps++;
    }
    if (open != 0)
        return false;
    if (s[0] == '+')  // international: country code then 7-14 digits
        return k >= 8 && d[0] != '0';
    if (seps == 0)  // a bare run of digits is more likely an id than a phone number
        return false;
    if (k == 10 && d[0] == '0')  // national trunk prefix (most of Europe)
        return true;
    if (k == 11 && d[0] == '0')
        return true;
    const char *nanp = k == 11 && d[0] == '1' ? d + 1 : k == 10 ? d : NULL;
    return nanp && nanp[0] >= '2' && nanp[3] >= '2';  // area code and exchange start 2-9
}

bool gf_pii_email_valid(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    if (at == NULL || at == s || n > 254)
        return false;
    size_t local = (size_t)(at - s);
    if (local > 64 || s[0] == '.' || s[local - 1] == '.')
        return false;
    for (size_t i = 1; i < n; i++)
        if (s[i] == '.' && s[i - 1] == '.')
            return false;
    return true;
}

bool gf_pii_ipv4_valid(const char *s, size_t n)
{
    int parts = 0, val = -1, len = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || s[i] == '.') {
            if (val < 0 || val > 255)
                return false;
            parts++;
            val = -1;
            len = 0;
            continue;
        }
        if (!is_digit(s[i]) || ++len > 3 || (len == 2 && val == 0))
            return false;  // no leading zeros: "010" is not how addresses are written
        val = (val < 0 ? 0 : val * 10) + (s[i] - '0');
    }
    if (parts != 4)
        return false;
    return !(s[0] == '0' && s[1] == '.');  // 0.x.y.z is rather a version number
}

bool gf_pii_ipv6_valid(const char *s, size_t n)
{
    char buf[64];
    unsigned char addr[16];
    size_t hex = 0;
    if (n >= sizeof(buf))
        return false;
    for (size_t i = 0; i < n; i++)
        hex += s[i] != ':' && s[i] != '.';
    if (hex == 0)  // "::" alone is more often C++ than an address
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return inet_pton(AF_INET6, buf, addr) == 1;
}

bool gf_pii_token_valid(const char *s, size_t n)
{
    bool letter = false, digit = false;
    for (size_t i = 0; i < n; i++) {
        letter |= (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z');
        digit |= is_digit(s[i]);
    }
    return letter && digit;
}
