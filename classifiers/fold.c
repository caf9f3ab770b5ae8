/* fold.c — the per-character half of the canonical form: maps one Unicode code point to its
 * folded spelling (lowercase ASCII for look-alikes of Latin letters and digits, ASCII for
 * spaces, dashes and quotes, nothing for invisible characters). Invariant: the folded UTF-8
 * spelling is never longer than the character's own UTF-8 encoding, which lets normalize.c
 * size its output by the input. Tables cover the confusables seen in evasion, not all of
 * Unicode's compatibility decompositions. */
#include "classifiers/fold_int.h"

#include <string.h>

// Latin-1 Supplement U+00A0..U+00BF: "" removes, NULL keeps.
static const char *const latin1_sym[32] = {
    [0x00] = " ", [0x0A] = "a", [0x0D] = "", [0x12] = "2", [0x13] = "3",
    [0x15] = "u", [0x19] = "1", [0x1A] = "o",
};

// U+00C0..U+00FF: letters without their diacritics; NULL keeps (× and ÷).
static const char *const latin1_letters[64] = {
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    "d", "n", "o", "o", "o", "o", "o", NULL, "o", "u", "u", "u", "u", "y", "th", "ss",
    "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
    "d", "n", "o", "o", "o", "o", "o", NULL, "o", "u", "u", "u", "u", "y", "th", "y",
};

// U+0100..U+017F (Latin Extended-A): base letter of each; '*' marks the two-letter ĳ and œ.
static const char latin_ext_a[] = "aaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiii**jjkkk"
                                  "llllllllllnnnnnnnnnoooooo**rrrrrrsssssssstttttt"
                                  "uuuuuuuuuuuuwwyyyzzzzzzs";
_Static_assert(sizeof(latin_ext_a) == 129, "one letter per code point of U+0100..U+017F");

// U+0370..U+03FF (Greek): Latin look-alike of each letter, '.' keeps (then lowercased).
static const char greek[] = "..............;."
                            "......a.ehi.o.y."
                            "iab..ezh.ik.mn.o"
                            ".p..ty.x..iyaeni"
                            "uaby.e.n.ik.uv.o"
                            ".pc.tu.x.wiuouwk"
                            "b.yyy..........."
                            "................"
                            ".pcj.e...cm.....";
_Static_assert(sizeof(greek) == 145, "one entry per code point of U+0370..U+03FF");

// U+0400..U+045F (Cyrillic): Latin look-alike, '.' keeps (then lowercased).
static const char cyrillic[] = "ee...siij...k.y."
                               "a.b..e....k.mho."
                               "pcty.x......b..."
                               "a..r.e..u.k.mhon"
                               "pcty.x......b..."
                               "ee...siij...k.y.";
_Static_assert(sizeof(cyrillic) == 97, "one entry per code point of U+0400..U+045F");

// Letterlike Symbols U+2100..U+213F: script and double-struck letters; 0 keeps.
static const char letterlike[64] = {
    [0x02] = 'c', [0x07] = 'e', [0x0A] = 'g', [0x0B] = 'h', [0x0C] = 'h', [0x0D] = 'h',
    [0x0E] = 'h', [0x0F] = 'h', [0x10] = 'i', [0x11] = 'i', [0x12] = 'l', [0x13] = 'l',
    [0x15] = 'n', [0x19] = 'p', [0x1A] = 'q', [0x1B] = 'r', [0x1C] = 'r', [0x1D] = 'r',
    [0x24] = 'z', [0x28] = 'z', [0x2A] = 'k', [0x2B] = 'a', [0x2C] = 'b', [0x2D] = 'c',
    [0x2F] = 'e', [0x30] = 'e', [0x31] = 'f', [0x33] = 'm', [0x34] = 'o', [0x39] = 'i',
};

static int one(char *out, char c)
{
    out[0] = c;
    return 1;
}

static int str(char *out, const char *s)
{
    size_t n = strlen(s);
    memcpy(out, s, n);
    return (int)n;
}

// Characters that are invisible or only change how neighbours render.
static bool is_invisible(uint32_t cp)
{
    return (cp >= 0x0300 && cp <= 0x036F) ||  // combining diacritics (after NFD-like folding)
           (cp >= 0x0483 && cp <= 0x0489) || cp == 0x061C || cp == 0x115F || cp == 0x1160 ||
           cp == 0x17B4 || cp == 0x17B5 || (cp >= 0x180B && cp <= 0x180F) ||
           (cp >= 0x1AB0 && cp <= 0x1AFF) || (cp >= 0x1DC0 && cp <= 0x1DFF) ||
           (cp >= 0x200B && cp <= 0x200F) ||  // zero-width space/joiners, LRM, RLM
           (cp >= 0x202A && cp <= 0x202E) ||  // bidi embeddings and overrides
           (cp >= 0x2060 && cp <= 0x206F) ||  // word joiner, invisible operators, isolates
           (cp >= 0x20D0 && cp <= 0x20FF) || cp == 0x3164 || (cp >= 0xFE00 && cp <= 0xFE0F) ||
           (cp >= 0xFE20 && cp <= 0xFE2F) || cp == 0xFEFF || cp == 0xFFA0 ||
           (cp >= 0xE0000 && cp <= 0xE007F) ||  // tag characters
           (cp >= 0xE0100 && cp <= 0xE01EF);    // variation selectors supplement
}

static int map_latin_ext(uint32_t cp, char *out)
{
    if (cp < 0x180) {
        char c = latin_ext_a[cp - 0x100];
        if (c == '*')
            return str(out, cp < 0x140 ? "ij" : "oe");
        return one(out, c);
    }
    if (cp >= 0x1CD && cp <= 0x1DC)
        return one(out, "aaiioouuuuuuuuuu"[cp - 0x1CD]);
    switch (cp) {
    case 0x180: case 0x181: case 0x299:
        return one(out, 'b');
    case 0x187: case 0x188:
        return one(out, 'c');
    case 0x189: case 0x18A: case 0x257:
        return one(out, 'd');
    case 0x191: case 0x192:
        return one(out, 'f');
    case 0x198: case 0x199:
        return one(out, 'k');
    case 0x19A: case 0x29F:
        return one(out, 'l');
    case 0x1A4: case 0x1A5:
        return one(out, 'p');
    case 0x1AB: case 0x1AC: case 0x1AD: case 0x21A: case 0x21B:
        return one(out, 't');
    case 0x1B3: case 0x1B4: case 0x28F:
        return one(out, 'y');
    case 0x1B5: case 0x1B6:
        return one(out, 'z');
    case 0x218: case 0x219:
        return one(out, 's');
    case 0x251:
        return one(out, 'a');
    case 0x261: case 0x262:
        return one(out, 'g');
    case 0x268: case 0x269: case 0x26A:
        return one(out, 'i');
    case 0x274:
        return one(out, 'n');
    case 0x275:
        return one(out, 'o');
    case 0x280:
        return one(out, 'r');
    case 0x29C:
        return one(out, 'h');
    default:
        return -1;
    }
}

static int map_cyrillic_more(uint32_t cp, char *out)
{
    switch (cp) {
    case 0x4AE: case 0x4AF:
        return one(out, 'y');
    case 0x4BA: case 0x4BB:
        return one(out, 'h');
    case 0x4C0: case 0x4CF:
        return one(out, 'l');
    case 0x501:
        return one(out, 'd');
    case 0x51A: case 0x51B:
        return one(out, 'q');
    case 0x51C: case 0x51D:
        return one(out, 'w');
    case 0x57D:  // Armenian seh
        return one(out, 'u');
    case 0x585:  // Armenian oh
        return one(out, 'o');
    default:
        return -1;
    }
}

static int map_small_caps(uint32_t cp, char *out)
{
    switch (cp) {
    case 0x1D00: return one(out, 'a');
    case 0x1D04: return one(out, 'c');
    case 0x1D05: return one(out, 'd');
    case 0x1D07: return one(out, 'e');
    case 0x1D0A: return one(out, 'j');
    case 0x1D0B: return one(out, 'k');
    case 0x1D0D: return one(out, 'm');
    case 0x1D0F: return one(out, 'o');
    case 0x1D18: return one(out, 'p');
    case 0x1D1B: return one(out, 't');
    case 0x1D1C: return one(out, 'u');
    case 0x1D20: return one(out, 'v');
    case 0x1D21: return one(out, 'w');
    case 0x1D22: return one(out, 'z');
    case 0xA730: return one(out, 'f');
    case 0xA731: return one(out, 's');
    default: return -1;
    }
}

// General Punctuation, super/subscripts and number forms, U+2000..U+24FF.
static int map_symbols(uint32_t cp, char *out)
{
    if ((cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
        cp == 0x205F)
        return one(out, ' ');
    if ((cp >= 0x2010 && cp <= 0x2015) || cp == 0x2212 || cp == 0x2043)
        return one(out, '-');
    if ((cp >= 0x2018 && cp <= 0x201B) || cp == 0x2032)
        return one(out, '\'');
    if (cp >= 0x201C && cp <= 0x201F)
        return one(out, '"');
    if (cp == 0x2024 || cp == 0x2027)
        return one(out, '.');
    if (cp == 0x2026)
        return str(out, "...");
    if (cp == 0x2044 || cp == 0x2215)
        return one(out, '/');
    if (cp == 0x2070)
        return one(out, '0');
    if (cp == 0x2071)
        return one(out, 'i');
    if (cp >= 0x2074 && cp <= 0x2079)
        return one(out, (char)('4' + (cp - 0x2074)));
    if (cp == 0x207F)
        return one(out, 'n');
    if (cp >= 0x2080 && cp <= 0x2089)
        return one(out, (char)('0' + (cp - 0x2080)));
    if (cp >= 0x2100 && cp <= 0x213F && letterlike[cp - 0x2100])
        return one(out, letterlike[cp - 0x2100]);
    if (cp >= 0x2160 && cp <= 0x217F) {  // roman numerals that are one letter
        static const char roman[16] = {[0] = 'i', [4] = 'v', [9] = 'x', [12] = 'l',
                                       [13] = 'c', [14] = 'd', [15] = 'm'};
        char c = roman[(cp - 0x2160) & 15];
        return c ? one(out, c) : -1;
    }
    if (cp >= 0x2460 && cp <= 0x2468)
        return one(out, (char)('1' + (cp - 0x2460)));
    if (cp == 0x24EA)
        return one(out, '0');
    if (cp >= 0x249C && cp <= 0x24B5)
        return one(out, (char)('a' + (cp - 0x249C)));
    if (cp >= 0x24B6 && cp <= 0x24CF)
        return one(out, (char)('a' + (cp - 0x24B6)));
    if (cp >= 0x24D0 && cp <= 0x24E9)
        return one(out, (char)('a' + (cp - 0x24D0)));
    return -1;
}

static int map_astral(uint32_t cp, char *out)
{
    if (cp >= 0x1D400 && cp <= 0x1D6A3) {  // mathematical letters: 13 styles of A-Z a-z
        uint32_t k = (cp - 0x1D400) % 52;
        return one(out, (char)('a' + k % 26));
    }
    if (cp == 0x1D6A4)
        return one(out, 'i');
    if (cp == 0x1D6A5)
        return one(out, 'j');
    if (cp >= 0x1D7CE && cp <= 0x1D7FF)  // mathematical digits: 5 styles
        return one(out, (char)('0' + (cp - 0x1D7CE) % 10));
    if ((cp >= 0x1F130 && cp <= 0x1F149) || (cp >= 0x1F150 && cp <= 0x1F169) ||
        (cp >= 0x1F170 && cp <= 0x1F189))  // squared and negative circled letters
        return one(out, (char)('a' + (cp - 0x1F130) % 32));
    if (cp >= 0x1F1E6 && cp <= 0x1F1FF)  // regional indicators
        return one(out, (char)('a' + (cp - 0x1F1E6)));
    if (cp >= 0x1FBF0 && cp <= 0x1FBF9)  // segmented digits
        return one(out, (char)('0' + (cp - 0x1FBF0)));
    return -1;
}

static int map_cp(uint32_t cp, char *out)
{
    if (cp < 0xA0)
        return cp == 0x85 ? one(out, ' ') : 0;  // C1 controls go, NEL is a line break
    if (cp < 0xC0) {
        const char *m = latin1_sym[cp - 0xA0];
        return m ? str(out, m) : -1;
    }
    if (cp < 0x100) {
        const char *m = latin1_letters[cp - 0xC0];
        return m ? str(out, m) : -1;
    }
    if (is_invisible(cp))
        return 0;
    if (cp < 0x2B0)
        return map_latin_ext(cp, out);
    if (cp >= 0x370 && cp < 0x400) {
        char c = greek[cp - 0x370];
        return c == '.' ? -1 : one(out, c);
    }
    if (cp >= 0x400 && cp < 0x460) {
        char c = cyrillic[cp - 0x400];
        return c == '.' ? -1 : one(out, c);
    }
    if (cp < 0x600)
        return map_cyrillic_more(cp, out);
    if (cp == 0x1680 || cp == 0x3000)
        return one(out, ' ');
    if ((cp >= 0x1D00 && cp <= 0x1D2B) || cp == 0xA730 || cp == 0xA731)
        return map_small_caps(cp, out);
    if (cp >= 0x2000 && cp < 0x2500)
        return map_symbols(cp, out);
    if (cp >= 0xFB00 && cp <= 0xFB06) {
        static const char *const lig[7] = {"ff", "fi", "fl", "ffi", "ffl", "st", "st"};
        return str(out, lig[cp - 0xFB00]);
    }
    if (cp >= 0xFF01 && cp <= 0xFF5E) {  // full-width ASCII
        char c = (char)(cp - 0xFF01 + 0x21);
        return one(out, c >= 'A' && c <= 'Z' ? (char)(c + 32) : c);
    }
    if (cp >= 0x10000)
        return map_astral(cp, out);
    return -1;
}

// Lowercase of the scripts whose letters the canonical form keeps (same UTF-8 length).
static uint32_t lower(uint32_t cp)
{
    if (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2)
        return cp + 0x20;
    if (cp >= 0x410 && cp <= 0x42F)
        return cp + 0x20;
    if (cp >= 0x400 && cp <= 0x40F)
        return cp + 0x50;
    return cp;
}

static int encode(uint32_t cp, char *out)
{
    if (cp < 0x80)
        return one(out, (char)cp);
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t gf_fold_cp(uint32_t cp, char out[4])
{
    if (cp < 0x80) {
        if (cp >= 'A' && cp <= 'Z')
            return (size_t)one(out, (char)(cp + 32));
        if (cp == '\t' || cp == '\n' || cp == '\v' || cp == '\f' || cp == '\r')
            return (size_t)one(out, ' ');
        if (cp < 0x20 || cp == 0x7F)
            return 0;
        return (size_t)one(out, (char)cp);
    }
    int n = map_cp(cp, out);
    if (n >= 0)
        return (size_t)n;
    return (size_t)encode(lower(cp), out);
}

size_t gf_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}
