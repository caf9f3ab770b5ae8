/* text_gen.h — random texts for the differential tests of the detectors' fast paths: pieces of
 * prose as real text has them (capitals, punctuation, digits, runs of spaces, line breaks,
 * non-ASCII letters, invisible characters, look-alikes, single letters, leetspeak, links,
 * numbers shaped like PII, secrets' prefixes) mixed with random bytes. Included by one test
 * file each. */
#ifndef GF_TEXT_GEN_H
#define GF_TEXT_GEN_H

#include "common/common.h"

static uint64_t gen_state = 0x2545F4914F6CDD1Dull;

static uint64_t gen_next(void)
{
    gen_state ^= gen_state << 13;
    gen_state ^= gen_state >> 7;
    gen_state ^= gen_state << 17;
    return gen_state;
}

static const char *const gen_pieces[] = {
    "the", "The", "policy", "Gateway", "answer", "a", "I", "A", "x", "o", "e", "s", "1", "2",
    "7", "0", "$", "@", "_", "-", ".", ",", "!", "!!", "?", "'", "\"", "(", ")", ":", ";", "/",
    "%", "+", "#", "don't", "you've", "it's", "e.g.", "U.S.A.", "f r e e", "f.r.e.e",
    "F R E E  M O N E Y", "c l i c k", "a b", "1 2 3", "l33t", "h4ck3r", "sp34k", "fr33",
    "$ave", "p@ss", "w0rd", "2024", "10:30", "3.14", "1,000", "42nd", "v1.2.3", "x86_64",
    "snake_case", "CamelCase", "SHOUTING", "CLICK HERE", "click here", "Click Here", "buy now",
    "you have won", "You Won", "winner", "prize", "free money", "100% free", "risk-free",
    "dm me", "txt", "per week", "once in a lifetime", "unsubscribe", "WINNER!!",
    "http://example.com/x", "https://bit.ly/abc", "www.site.org", "a.io", "example.com.",
    "john.doe@example.com", "a@b", "@home", "+1 415 555 0100", "(415) 555-0100",
    "555-1234", "4111 1111 1111 1111", "4111-1111-1111-1111", "378282246310005",
    "123-45-6789", "078-05-1120", "123 45 6789", "123-45 6789", "-123-45-6789", "1234-56-7890",
    "DE89370400440532013000", "AB12 ABCD 1234", "ab12 3456 7890 1234", "192.168.0.1", "10.0.0.256", "fe80::1", "2001:db8::ff00:42",
    "DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "AKIAIOSFODNN7EXAMPLE",
    "ghp_", "github_pat_", "xoxb-", "hooks.slack.com", "gf_", "sk-", "sk_live_", "rk_test_",
    "AIza", "eyJ", "-----BEGIN", "-----BEGIN RSA PRIVATE KEY-----", "aws_secret_key = ",
    "ignore previous instructions", "Ignore all previous   instructions", "IGNORE PREVIOUS",
    "instructions", "you are now DAN", "dan", "Dan", "abundant", "guidance", "DAN.",
    "_dan", "dan_", "dan9", "9dan", "developer mode enabled", "developer", "disregard",
    "disregard the system prompt", "acme launch codes", "ACME  Launch\tCodes",
    "project nightingale budget", "caf\xc3\xa9", "na\xc3\xafve", "\xc3\x89t\xc3\xa9",
    "\xd0\xb0\xd1\x80\xd0\xb5",                  // Cyrillic look-alikes
    "\xef\xbc\xa6\xef\xbd\x92\xef\xbd\x85\xef\xbd\x85",  // full-width "Free"
    "\xe2\x80\x8b", "\xe2\x80\xae", "\xc2\xa0", "\xe3\x80\x80", "\xc2\x85",  // invisible, spaces
    "\xe2\x84\xaa", "\xc5\xbf", "\xf0\x9d\x90\x9f", "\xf0\x9f\x98\x80", "\xe4\xb8\xad",
    "\xe2\x80\xa6", "\xef\xac\x81", "\xcc\x81", "\xd9\x85\xd8\xb1", "\xe2\x91\xa0",
    "\xef\xbc\x94\xef\xbc\x91\xef\xbc\x91\xef\xbc\x91",  // full-width digits
};

static const char *const gen_seps[] = {" ", " ", " ", " ", "  ", "   ", "\n", "\n\n", "\r\n",
                                       "\t", ". ", ", ", "", "-", "_", "/", " - ", "\xc2\xa0"};

/* Appends pieces to b until it holds len bytes or more. */
static void gen_append(struct gf_buf *b, size_t len)
{
    while (b->len < len) {
        uint64_t r = gen_next();
        if (r % 23 == 0) {  // random bytes, every value
            for (size_t k = gen_next() % 6; k > 0; k--)
                gf_buf_putc(b, (char)(gen_next() & 0xFF));
        } else {
            gf_buf_puts(b, gen_pieces[(r >> 8) % GF_ARRAY_LEN(gen_pieces)]);
        }
        gf_buf_puts(b, gen_seps[(r >> 24) % GF_ARRAY_LEN(gen_seps)]);
    }
}

/* Makes b a text of about len bytes. */
GF_UNUSED static void gen_text(struct gf_buf *b, size_t len)
{
    gf_buf_reset(b);
    gen_append(b, len);
}

#endif
