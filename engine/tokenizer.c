/* tokenizer.c — the SentencePiece tokenizer of Llama GGUF vocabularies: loading the vocabulary,
 * encoding (special-token partition, then score-ordered merges of adjacent pieces with a binary
 * heap over a linked list of symbols, then byte fallback) and token -> bytes pieces.
 * Invariant: after gf_tokenizer_from_gguf every id in [0, n) has a text, a piece, a score and a
 * type, and byte_tok[] holds only valid ids or -1, so encoding never yields an out-of-range id. */
#include "engine/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#define SPACE_MARK     "\xe2\x96\x81"  // U+2581, SentencePiece's visible space
#define SPACE_MARK_LEN 3

struct gf_tokenizer {
    int32_t n;
    char *text;          // every token's vocabulary text, NUL-terminated, one allocation
    size_t *text_off;    // [n]
    uint32_t *text_len;  // [n]
    char *piece;         // every token's decoded bytes, one allocation
    size_t *piece_off;   // [n]
    uint32_t *piece_len; // [n]
    float *score;        // [n]
    uint8_t *type;       // [n] enum gf_token_type (unknown values stored as UNDEFINED)
    uint32_t *slots;     // hash of text -> id + 1 (0 = empty)
    size_t mask;
    int32_t byte_tok[256]; // id of <0xNN>, or -1
    int32_t bos, eos, unk;
    bool add_bos, add_eos, add_space_prefix;
    bool word_split;     // no mergeable piece has a "▁" after another character
    int32_t *special;    // ids matched in input text, longest text first
    size_t n_special;
};

/* ---- vocabulary ------------------------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h;
}

int32_t gf_tokenizer_find(const struct gf_tokenizer *t, const char *s, size_t len)
{
    size_t i = (size_t)hash_bytes(s, len) & t->mask;
    while (t->slots[i] != 0) {
        int32_t id = (int32_t)t->slots[i] - 1;
        if (t->text_len[id] == len && memcmp(t->text + t->text_off[id], s, len) == 0)
            return id;
        i = (i + 1) & t->mask;
    }
    return -1;
}

/* Inserts id; a later token with the same text replaces the earlier one (as llama.cpp's map). */
static void hash_insert(struct gf_tokenizer *t, int32_t id)
{
    const char *s = t->text + t->text_off[id];
    size_t len = t->text_len[id];
    size_t i = (size_t)hash_bytes(s, len) & t->mask;
    while (t->slots[i] != 0) {
        int32_t o = (int32_t)t->slots[i] - 1;
        if (t->text_len[o] == len && memcmp(t->text + t->text_off[o], s, len) == 0)
            break;
        i = (i + 1) & t->mask;
    }
    t->slots[i] = (uint32_t)id + 1;
}

/* The byte of a "<0xNN>" text, or -1. */
static int byte_of(const char *s, size_t n)
{
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
        return -1;
    int hi = gf_hexval((unsigned char)s[3]), lo = gf_hexval((unsigned char)s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/* Writes token id's decoded bytes at out (room for text_len bytes); returns their count. */
static size_t make_piece(const struct gf_tokenizer *t, int32_t id, char *out)
{
    const char *s = t->text + t->text_off[id];
    size_t n = t->text_len[id];
    switch (t->type[id]) {
    case GF_TOKEN_BYTE: {
        int b = byte_of(s, n);
        if (b >= 0) {
            out[0] = (char)b;
            return 1;
        }
    }
        // A byte token without the <0xNN> form decodes as normal text.
        // fall through
    case GF_TOKEN_NORMAL: {
        size_t k = 0;
        for (size_t i = 0; i < n;) {
            if (n - i >= SPACE_MARK_LEN && memcmp(s + i, SPACE_MARK, SPACE_MARK_LEN) == 0) {
                out[k++] = ' ';
                i += SPACE_MARK_LEN;
            } else {
                out[k++] = s[i++];
            }
        }
        return k;
    }
    case GF_TOKEN_USER_DEFINED:
    case GF_TOKEN_CONTROL:
    case GF_TOKEN_UNKNOWN:
        memcpy(out, s, n);
        return n;
    default:  // UNUSED, UNDEFINED: no text
        return 0;
    }
}

static const struct gf_tokenizer *sort_tok;  // only during gf_tokenizer_from_gguf's qsort

static int by_len_desc(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    uint32_t lx = sort_tok->text_len[x], ly = sort_tok->text_len[y];
    if (lx != ly)
        return lx > ly ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Reads an optional token id key: default when absent, -1 when out of [0, n). */
static int32_t special_id(const struct gf_gguf *g, const char *key, int32_t dflt, int32_t n)
{
    int64_t v;
    int rc = gf_gguf_get_i64(g, key, &v);
    if (rc == GF_ENOTFOUND)
        return dflt < n ? dflt : -1;
    if (rc != 0 || v < 0 || v >= n)
        return -1;
    return (int32_t)v;
}

static bool flag(const struct gf_gguf *g, const char *key, bool dflt)
{
    bool b;
    return gf_gguf_get_bool(g, key, &b) == 0 ? b : dflt;
}

void gf_tokenizer_free(struct gf_tokenizer *t)
{
    if (t == NULL)
        return;
    gf_free(t->text);
    gf_free(t->text_off);
    gf_free(t->text_len);
    gf_free(t->piece);
    gf_free(t->piece_off);
    gf_free(t->piece_len);
    gf_free(t->score);
    gf_free(t->type);
    gf_free(t->slots);
    gf_free(t->special);
    gf_free(t);
}

int gf_tokenizer_from_gguf(const struct gf_gguf *g, struct gf_tokenizer **out,
                           struct gf_err *err)
{
    *out = NULL;
    const char *model;
    size_t mlen;
    int rc = gf_gguf_get_str(g, "tokenizer.ggml.model", &model, &mlen);
    if (rc == GF_ENOTFOUND)
        return gf_err_set(err, GF_EFORMAT, "tokenizer.ggml.model: missing (no vocabulary)");
    if (rc != 0)
        return gf_err_set(err, GF_EFORMAT, "tokenizer.ggml.model: expected a string");
    if (mlen != 5 || memcmp(model, "llama", 5) != 0)
        return gf_err_set(err, GF_EUNSUPPORTED,
                          "tokenizer.ggml.model '%.*s' is not supported (only 'llama', "
                          "SentencePiece)", (int)(mlen > 40 ? 40 : mlen), model);
    struct gf_gguf_arr toks, scores = {0}, types = {0};
    if (gf_gguf_get_arr(g, "tokenizer.ggml.tokens", &toks) != 0 ||
        toks.elem_type != GF_GGUF_TYPE_STRING)
        return gf_err_set(err, GF_EFORMAT, "tokenizer.ggml.tokens: missing or not strings");
    if (toks.n == 0 || toks.n > GF_TOKENIZER_MAX_VOCAB)
        return gf_err_set(err, GF_EFORMAT, "tokenizer.ggml.tokens: %llu tokens (need 1 to %d)",
                          (unsigned long long)toks.n, GF_TOKENIZER_MAX_VOCAB);
    int32_t n = (int32_t)toks.n;
    bool has_scores = gf_gguf_get_arr(g, "tokenizer.ggml.scores", &scores) == 0;
    if (has_scores && (scores.n != toks.n || (scores.elem_type != GF_GGUF_TYPE_FLOAT32 &&
                                              scores.elem_type != GF_GGUF_TYPE_FLOAT64)))
        return gf_err_set(err, GF_EFORMAT, "tokenizer.ggml.scores: expected %d floats", n);
    bool has_types = gf_gguf_get_arr(g, "tokenizer.ggml.token_type", &types) == 0;
    if (has_types && types.n != toks.n)
        return gf_err_set(err, GF_EFORMAT, "tokenizer.ggml.token_type: expected %d integers", n);

    struct gf_tokenizer *t = gf_calloc(1, sizeof(*t));
    if (t == NULL)
        goto oom;
    t->n = n;
    t->text_off = gf_mallocarray((size_t)n, sizeof(*t->text_off));
    t->text_len = gf_mallocarray((size_t)n, sizeof(*t->text_len));
    t->piece_off = gf_mallocarray((size_t)n, sizeof(*t->piece_off));
    t->piece_len = gf_mallocarray((size_t)n, sizeof(*t->piece_len));
    t->score = gf_mallocarray((size_t)n, sizeof(*t->score));
    t->type = gf_malloc((size_t)n);
    if (!t->text_off || !t->text_len || !t->piece_off || !t->piece_len || !t->score || !t->type)
        goto oom;
    size_t total = 0;
    for (int32_t i = 0; i < n; i++) {
        const char *s;
        size_t len;
        gf_gguf_arr_str(&toks, (uint64_t)i, &s, &len);
        if (len > GF_TOKENIZER_MAX_PIECE) {
            gf_tokenizer_free(t);
            return gf_err_set(err, GF_EFORMAT, "tokenizer.ggml.tokens[%d]: %zu bytes (limit %d)",
                              i, len, GF_TOKENIZER_MAX_PIECE);
        }
        t->text_off[i] = total;
        t->text_len[i] = (uint32_t)len;
        total += len + 1;
        double sc = 0;
        if (has_scores)
            gf_gguf_arr_f64(&scores, (uint64_t)i, &sc);
        t->score[i] = (float)sc;
        int64_t ty = GF_TOKEN_NORMAL;
        if (has_types && gf_gguf_arr_i64(&types, (uint64_t)i, &ty) != 0) {
            gf_tokenizer_free(t);
            return gf_err_set(err, GF_EFORMAT, "tokenizer.ggml.token_type: expected integers");
        }
        t->type[i] = ty >= 0 && ty <= GF_TOKEN_BYTE ? (uint8_t)ty : GF_TOKEN_UNDEFINED;
    }
    t->text = gf_malloc(total);
    t->piece = gf_malloc(total);
    size_t cap = 16;
    while (cap < 2 * (size_t)n)
        cap *= 2;
    t->slots = gf_calloc(cap, sizeof(*t->slots));
    if (t->text == NULL || t->piece == NULL || t->slots == NULL)
        goto oom;
    t->mask = cap - 1;
    size_t ptotal = 0;
    for (int32_t i = 0; i < n; i++) {
        const char *s;
        size_t len;
        gf_gguf_arr_str(&toks, (uint64_t)i, &s, &len);
        memcpy(t->text + t->text_off[i], s, len);
        t->text[t->text_off[i] + len] = '\0';
        hash_insert(t, i);
        t->piece_off[i] = ptotal;
        t->piece_len[i] = (uint32_t)make_piece(t, i, t->piece + ptotal);
        ptotal += t->piece_len[i];
        if (t->type[i] == GF_TOKEN_CONTROL || t->type[i] == GF_TOKEN_USER_DEFINED ||
            t->type[i] == GF_TOKEN_UNKNOWN)
            t->n_special += len > 0;  // an empty special text would match everywhere
    }
    t->word_split = true;
    for (int32_t i = 0; i < n && t->word_split; i++) {
        if (t->type[i] != GF_TOKEN_NORMAL && t->type[i] != GF_TOKEN_USER_DEFINED)
            continue;
        const char *s = t->text + t->text_off[i];
        size_t len = t->text_len[i], k = 0;
        while (len - k >= SPACE_MARK_LEN && memcmp(s + k, SPACE_MARK, SPACE_MARK_LEN) == 0)
            k += SPACE_MARK_LEN;
        if (k < len && memmem(s + k, len - k, SPACE_MARK, SPACE_MARK_LEN) != NULL)
            t->word_split = false;
    }
    for (int b = 0; b < 256; b++) {
        char hex[7];
        static const char digits[] = "0123456789ABCDEF";
        memcpy(hex, "<0x", 3);
        hex[3] = digits[b >> 4];
        hex[4] = digits[b & 15];
        hex[5] = '>';
        hex[6] = '\0';
        t->byte_tok[b] = gf_tokenizer_find(t, hex, 6);
    }
    if (t->n_special > 0) {
        t->special = gf_mallocarray(t->n_special, sizeof(*t->special));
        if (t->special == NULL)
            goto oom;
        size_t k = 0;
        for (int32_t i = 0; i < n; i++)
            if ((t->type[i] == GF_TOKEN_CONTROL || t->type[i] == GF_TOKEN_USER_DEFINED ||
                 t->type[i] == GF_TOKEN_UNKNOWN) && t->text_len[i] > 0)
                t->special[k++] = i;
        sort_tok = t;
        qsort(t->special, t->n_special, sizeof(*t->special), by_len_desc);
        sort_tok = NULL;
    }
    t->bos = special_id(g, "tokenizer.ggml.bos_token_id", 1, n);
    t->eos = special_id(g, "tokenizer.ggml.eos_token_id", 2, n);
    t->unk = special_id(g, "tokenizer.ggml.unknown_token_id", 0, n);
    t->add_bos = flag(g, "tokenizer.ggml.add_bos_token", true) && t->bos >= 0;
    t->add_eos = flag(g, "tokenizer.ggml.add_eos_token", false) && t->eos >= 0;
    t->add_space_prefix = flag(g, "tokenizer.ggml.add_space_prefix", true);
    *out = t;
    return 0;
oom:
    gf_tokenizer_free(t);
    return gf_err_set(err, GF_ENOMEM, "tokenizer: out of memory");
}

int32_t gf_tokenizer_n_vocab(const struct gf_tokenizer *t)
{
    return t->n;
}

int32_t gf_tokenizer_bos(const struct gf_tokenizer *t)
{
    return t->bos;
}

int32_t gf_tokenizer_eos(const struct gf_tokenizer *t)
{
    return t->eos;
}

int32_t gf_tokenizer_unk(const struct gf_tokenizer *t)
{
    return t->unk;
}

bool gf_tokenizer_add_bos(const struct gf_tokenizer *t)
{
    return t->add_bos;
}

bool gf_tokenizer_add_eos(const struct gf_tokenizer *t)
{
    return t->add_eos;
}

int gf_tokenizer_type(const struct gf_tokenizer *t, int32_t id)
{
    return id >= 0 && id < t->n ? t->type[id] : GF_TOKEN_UNDEFINED;
}

const char *gf_tokenizer_text(const struct gf_tokenizer *t, int32_t id, size_t *len)
{
    if (id < 0 || id >= t->n)
        return NULL;
    *len = t->text_len[id];
    return t->text + t->text_off[id];
}

const char *gf_tokenizer_piece(const struct gf_tokenizer *t, int32_t id, bool special,
                               size_t *len)
{
    if (id < 0 || id >= t->n ||
        (!special && (t->type[id] == GF_TOKEN_CONTROL || t->type[id] == GF_TOKEN_UNKNOWN))) {
        *len = 0;
        return "";
    }
    *len = t->piece_len[id];
    return t->piece + t->piece_off[id];
}

/* ---- encoding --------------------------------------------------------------------------- */

/* A growable array of ids. */
struct ids {
    int32_t *v;
    size_t n, cap;
};

static int ids_push(struct ids *a, int32_t id)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 64;
        int32_t *v = gf_realloc(a->v, cap * sizeof(*v));
        if (v == NULL)
            return GF_ENOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = id;
    return 0;
}

/* A run of the input: raw text [off, off+len) when tok < 0, else a matched special token. */
struct frag {
    int32_t tok;
    size_t off, len;
};

struct frags {
    struct frag *v;
    size_t n, cap;
};

static int frags_push(struct frags *a, struct frag f)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 16;
        struct frag *v = gf_realloc(a->v, cap * sizeof(*v));
        if (v == NULL)
            return GF_ENOMEM;
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = f;
    return 0;
}

/* Splits the raw fragments of *fs around every occurrence of the special tokens that apply,
 * longest token first, as llama.cpp's partition does. */
static int partition(const struct gf_tokenizer *t, const char *text, bool parse_special,
                     struct frags *fs)
{
    struct frags next = {0};
    for (size_t k = 0; k < t->n_special; k++) {
        int32_t id = t->special[k];
        if (!parse_special && t->type[id] != GF_TOKEN_USER_DEFINED)
            continue;
        const char *st = t->text + t->text_off[id];
        size_t sl = t->text_len[id];
        next.n = 0;
        bool split = false;
        for (size_t i = 0; i < fs->n; i++) {
            struct frag f = fs->v[i];
            if (f.tok >= 0 || f.len < sl) {
                if (frags_push(&next, f) != 0)
                    goto oom;
                continue;
            }
            size_t pos = f.off, end = f.off + f.len;
            for (;;) {
                const char *m = memmem(text + pos, end - pos, st, sl);
                if (m == NULL)
                    break;
                size_t at = (size_t)(m - text);
                if (at > pos && frags_push(&next, (struct frag){-1, pos, at - pos}) != 0)
                    goto oom;
                if (frags_push(&next, (struct frag){id, at, sl}) != 0)
                    goto oom;
                pos = at + sl;
                split = true;
            }
            if (pos < end && frags_push(&next, (struct frag){-1, pos, end - pos}) != 0)
                goto oom;
        }
        if (split) {
            struct frags tmp = *fs;
            *fs = next;
            next = tmp;
        }
    }
    gf_free(next.v);
    return 0;
oom:
    gf_free(next.v);
    return GF_ENOMEM;
}

struct sym {
    int prev, next;  // neighbours in the list, -1 at the ends
    size_t start;    // offset in the escaped text
    size_t n;        // bytes; 0 once merged into its left neighbour
};

/* The symbols of the chunk being merged; grows to the longest chunk. */
struct syms {
    struct sym *v;
    size_t cap;
};

struct bigram {
    float score;
    int left, right;
    size_t size;  // bytes of the pair when it was queued; stale entries no longer match
};

/* True when a should pop before b: higher score, then leftmost. */
static bool before(const struct bigram *a, const struct bigram *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

struct heap {
    struct bigram *v;
    size_t n, cap;
};

static int heap_push(struct heap *h, struct bigram b)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        struct bigram *v = gf_realloc(h->v, cap * sizeof(*v));
        if (v == NULL)
            return GF_ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&b, &h->v[p]))
            break;
        h->v[i] = h->v[p];
        i = p;
    }
    h->v[i] = b;
    return 0;
}

static struct bigram heap_pop(struct heap *h)
{
    struct bigram top = h->v[0];
    struct bigram last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && before(&h->v[c + 1], &h->v[c]))
            c++;
        if (!before(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0)
        h->v[i] = last;
    return top;
}

/* The id a merge may form from s[0..n): only NORMAL and USER_DEFINED pieces. */
static int32_t mergeable(const struct gf_tokenizer *t, const char *s, size_t n)
{
    int32_t id = gf_tokenizer_find(t, s, n);
    if (id >= 0 && t->type[id] != GF_TOKEN_NORMAL && t->type[id] != GF_TOKEN_USER_DEFINED)
        return -1;
    return id;
}

static int try_bigram(const struct gf_tokenizer *t, const char *s, const struct sym *sy,
                      int left, int right, struct heap *h)
{
    if (left < 0 || right < 0)
        return 0;
    size_t size = sy[left].n + sy[right].n;
    int32_t id = mergeable(t, s + sy[left].start, size);
    if (id < 0)
        return 0;
    return heap_push(h, (struct bigram){t->score[id], left, right, size});
}

/* Merges the symbols [first, last] (linked as a list) highest score first, then appends their
 * ids. */
static int spm_chunk(const struct gf_tokenizer *t, const char *s, struct sym *sy, int first,
                     int last, struct heap *h, struct ids *out)
{
    sy[first].prev = -1;
    sy[last].next = -1;
    h->n = 0;
    for (int i = first + 1; i <= last; i++)
        if (try_bigram(t, s, sy, i - 1, i, h) != 0)
            return GF_ENOMEM;
    while (h->n > 0) {
        struct bigram b = heap_pop(h);
        struct sym *l = &sy[b.left], *r = &sy[b.right];
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
            continue;  // one side was merged elsewhere since this pair was queued
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0)
            sy[r->next].prev = b.left;
        if (try_bigram(t, s, sy, l->prev, b.left, h) != 0 ||
            try_bigram(t, s, sy, b.left, l->next, h) != 0)
            return GF_ENOMEM;
    }
    for (int i = first; i >= 0; i = sy[i].next) {
        int32_t id = gf_tokenizer_find(t, s + sy[i].start, sy[i].n);
        if (id >= 0 && (t->type[id] == GF_TOKEN_NORMAL || t->type[id] == GF_TOKEN_USER_DEFINED)) {
            if (ids_push(out, id) != 0)
                return GF_ENOMEM;
            continue;
        }
        // Not a piece: one byte token per byte (or <unk> when the vocabulary lacks it).
        for (size_t k = 0; k < sy[i].n; k++) {
            int32_t bt = t->byte_tok[(uint8_t)s[sy[i].start + k]];
            if (bt < 0)
                bt = t->unk;
            if (bt >= 0 && ids_push(out, bt) != 0)
                return GF_ENOMEM;
        }
    }
    return 0;
}

/* Encodes one escaped run s[0..n) (spaces already "▁"): splits it into UTF-8 characters as
 * llama.cpp does (a lead byte claims its length even over invalid continuations), then merges.
 * When no piece of the vocabulary has a "▁" after another character (t->word_split), no merge
 * can cross the start of a word, so each word is merged on its own: same ids, but the heap and
 * the symbols stay as small as the longest word, which keeps long inputs fast and their memory
 * bounded. */
static int spm_run(const struct gf_tokenizer *t, const char *s, size_t n, bool whole,
                   struct syms *sy, struct heap *h, struct ids *out)
{
    static const uint8_t utf8_len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    bool split = !whole && t->word_split, prev_mark = false;
    int count = 0;
    for (size_t off = 0; off < n;) {
        size_t len = utf8_len[(uint8_t)s[off] >> 4];
        if (len > n - off)
            len = n - off;
        bool mark = len == SPACE_MARK_LEN && memcmp(s + off, SPACE_MARK, SPACE_MARK_LEN) == 0;
        if (split && mark && !prev_mark && count > 0) {
            int rc = spm_chunk(t, s, sy->v, 0, count - 1, h, out);
            if (rc != 0)
                return rc;
            count = 0;
        }
        if ((size_t)count == sy->cap) {
            size_t cap = sy->cap ? 2 * sy->cap : 64;
            if (cap > INT32_MAX)
                return GF_ENOMEM;
            struct sym *v = gf_realloc(sy->v, cap * sizeof(*v));
            if (v == NULL)
                return GF_ENOMEM;
            sy->v = v;
            sy->cap = cap;
        }
        sy->v[count] = (struct sym){count - 1, count + 1, off, len};
        count++;
        prev_mark = mark;
        off += len;
    }
    return count > 0 ? spm_chunk(t, s, sy->v, 0, count - 1, h, out) : 0;
}

int gf_tokenizer_encode(const struct gf_tokenizer *t, const char *text, size_t len,
                        unsigned flags, int32_t **ids, size_t *n_ids)
{
    *ids = NULL;
    *n_ids = 0;
    struct ids out = {0};
    struct frags fs = {0};
    struct heap h = {0};
    char *esc = NULL;  // the escaped run, grown to the longest
    size_t esc_cap = 0;
    struct syms sy = {0};
    int rc = GF_ENOMEM;
    bool add = (flags & GF_TOK_ADD_SPECIAL) != 0;

    if (len > GF_TOKENIZER_MAX_INPUT)
        return GF_ETOOBIG;
    if (len > 0) {
        if (frags_push(&fs, (struct frag){-1, 0, len}) != 0)
            goto done;
        if (partition(t, text, (flags & GF_TOK_PARSE_SPECIAL) != 0, &fs) != 0)
            goto done;
    }
    if (add && t->add_bos && ids_push(&out, t->bos) != 0)
        goto done;
    bool prev_special = true;  // the text start counts as after a special token
    for (size_t i = 0; i < fs.n; i++) {
        const struct frag *f = &fs.v[i];
        if (f->tok >= 0) {
            if (ids_push(&out, f->tok) != 0)
                goto done;
            prev_special = true;
            continue;
        }
        size_t need = SPACE_MARK_LEN;  // escaped size: each space takes 3 bytes
        for (size_t k = 0; k < f->len; k++)
            need += text[f->off + k] == ' ' ? SPACE_MARK_LEN : 1;
        if (need > esc_cap) {
            char *e = gf_realloc(esc, need);
            if (e == NULL)
                goto done;
            esc = e;
            esc_cap = need;
        }
        size_t n = 0;
        if (t->add_space_prefix && prev_special) {
            memcpy(esc, SPACE_MARK, SPACE_MARK_LEN);
            n = SPACE_MARK_LEN;
        }
        for (size_t k = 0; k < f->len; k++) {
            char c = text[f->off + k];
            if (c == ' ') {
                memcpy(esc + n, SPACE_MARK, SPACE_MARK_LEN);
                n += SPACE_MARK_LEN;
            } else {
                esc[n++] = c;
            }
        }
        if (spm_run(t, esc, n, (flags & GF_TOK_WHOLE_RUNS) != 0, &sy, &h, &out) != 0)
            goto done;
        prev_special = false;
    }
    if (add && t->add_eos && ids_push(&out, t->eos) != 0)
        goto done;
    if (out.v == NULL && (out.v = gf_malloc(sizeof(int32_t))) == NULL)
        goto done;
    *ids = out.v;
    *n_ids = out.n;
    out.v = NULL;
    rc = 0;
done:
    gf_free(out.v);
    gf_free(fs.v);
    gf_free(h.v);
    gf_free(esc);
    gf_free(sy.v);
    return rc;
}
