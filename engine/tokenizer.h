/* tokenizer.h — the SentencePiece (SPM/BPE-by-score) tokenizer of Llama-family GGUF models, and
 * the chat templates that turn a conversation into a prompt.
 *
 * Encoding follows llama.cpp's SPM tokenizer: spaces become U+2581 "▁", a leading space is
 * added to each run of text (tokenizer.ggml.add_space_prefix, default true), adjacent pieces
 * are merged highest score first (ties: leftmost), and whatever is not in the vocabulary falls
 * back to byte tokens <0xNN>. One difference, on purpose: merges only form NORMAL and
 * USER_DEFINED pieces, so text such as "</s>" or "<0x41>" typed by a client never becomes a
 * control or byte token (SentencePiece behaves the same way); control tokens come from text only
 * with GF_TOK_PARSE_SPECIAL.
 *
 * A gf_tokenizer is immutable after creation and may be used from several threads at once. It
 * copies what it needs, so it does not keep the gf_gguf it was built from. */
#ifndef GF_TOKENIZER_H
#define GF_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "engine/gguf.h"

/* Token types, as stored in tokenizer.ggml.token_type. */
enum gf_token_type {
    GF_TOKEN_UNDEFINED = 0,
    GF_TOKEN_NORMAL = 1,
    GF_TOKEN_UNKNOWN = 2,
    GF_TOKEN_CONTROL = 3,
    GF_TOKEN_USER_DEFINED = 4,
    GF_TOKEN_UNUSED = 5,
    GF_TOKEN_BYTE = 6,
};

#define GF_TOKENIZER_MAX_VOCAB (1 << 22)  // tokens per vocabulary
#define GF_TOKENIZER_MAX_PIECE 4096       // bytes per token text
#define GF_TOKENIZER_MAX_INPUT (256u << 20) // bytes of text per gf_tokenizer_encode call

struct gf_tokenizer;

/* Builds the tokenizer from a GGUF file's tokenizer.ggml.* keys. Requires tokenizer.ggml.model
 * "llama" (anything else: GF_EUNSUPPORTED naming it) and tokenizer.ggml.tokens; scores and
 * token_type are optional (0 and NORMAL), as are bos/eos/unk ids (defaults 1, 2, 0; an id out
 * of range, e.g. 4294967295, means "none"), add_bos_token (default true), add_eos_token
 * (default false) and add_space_prefix (default true). Returns 0 and *out (free with
 * gf_tokenizer_free), GF_EFORMAT/GF_EUNSUPPORTED with err set, or GF_ENOMEM. */
int gf_tokenizer_from_gguf(const struct gf_gguf *g, struct gf_tokenizer **out,
                           struct gf_err *err);
void gf_tokenizer_free(struct gf_tokenizer *t);

int32_t gf_tokenizer_n_vocab(const struct gf_tokenizer *t);
/* Special ids, or -1 when the vocabulary has none. */
int32_t gf_tokenizer_bos(const struct gf_tokenizer *t);
int32_t gf_tokenizer_eos(const struct gf_tokenizer *t);
int32_t gf_tokenizer_unk(const struct gf_tokenizer *t);
bool gf_tokenizer_add_bos(const struct gf_tokenizer *t);
bool gf_tokenizer_add_eos(const struct gf_tokenizer *t);
/* The type of token id (GF_TOKEN_UNDEFINED when out of range). */
int gf_tokenizer_type(const struct gf_tokenizer *t, int32_t id);
/* The vocabulary text of id ("▁Hello", "<0x0A>", "</s>"), borrowed until gf_tokenizer_free;
 * NULL when out of range. */
const char *gf_tokenizer_text(const struct gf_tokenizer *t, int32_t id, size_t *len);
/* The id whose vocabulary text is s[0..len), or -1. */
int32_t gf_tokenizer_find(const struct gf_tokenizer *t, const char *s, size_t len);

/* Encoding flags. */
#define GF_TOK_ADD_SPECIAL   1u  // add BOS/EOS as the vocabulary says (add_bos/add_eos)
#define GF_TOK_PARSE_SPECIAL 2u  // match control/unknown token texts ("<s>") in the input
#define GF_TOK_WHOLE_RUNS    4u  // merge each run as one (slower reference path, for tests)

/* Encodes text[0..len) (any bytes; invalid UTF-8 falls back to byte tokens) into *ids (caller
 * frees with gf_free; never NULL on success, even for 0 tokens) and *n_ids. USER_DEFINED tokens
 * are always matched in the text, CONTROL/UNKNOWN ones only with GF_TOK_PARSE_SPECIAL.
 * Returns 0, GF_ETOOBIG past GF_TOKENIZER_MAX_INPUT bytes, or GF_ENOMEM. Memory is the output
 * plus about 3x the input (the escaped text). Time is O(n log n) in the input length; with vocabularies whose pieces
 * never hold a "▁" after another character (Llama's), words are merged one at a time, which
 * gives the same ids and keeps the work in cache. */
int gf_tokenizer_encode(const struct gf_tokenizer *t, const char *text, size_t len,
                        unsigned flags, int32_t **ids, size_t *n_ids);

/* The bytes token id stands for: "▁" becomes a space, a byte token its byte. CONTROL and
 * UNKNOWN tokens give their text when special is true and nothing otherwise; UNUSED/UNDEFINED
 * tokens and ids out of range give nothing. Borrowed until gf_tokenizer_free. A piece may be
 * an incomplete or invalid UTF-8 sequence (byte tokens); gf_detok reassembles characters. */
const char *gf_tokenizer_piece(const struct gf_tokenizer *t, int32_t id, bool special,
                               size_t *len);

/* ---- streaming decoder ------------------------------------------------------------------ */

#define GF_DETOK_SPECIAL     1u  // render CONTROL/UNKNOWN tokens as their text
#define GF_DETOK_STRIP_SPACE 2u  // drop one leading space of the first text (after a BOS)

/* Turns token ids into text, releasing only complete, valid UTF-8: a character whose bytes come
 * from several tokens is held back until its last byte arrives, and invalid bytes become U+FFFD.
 * Caller storage; no allocation of its own. */
struct gf_detok {
    const struct gf_tokenizer *tok;  // borrowed
    unsigned flags;
    bool started;                    // some text was produced (for GF_DETOK_STRIP_SPACE)
    uint8_t pend[4];                 // an incomplete character held back
    size_t n_pend;
};

void gf_detok_init(struct gf_detok *d, const struct gf_tokenizer *t, unsigned flags);
/* Appends the complete characters that token id finishes to out. Returns 0, or the error of
 * gf_buf_append (GF_ETOOBIG, GF_ENOMEM), in which case out may hold part of the text. */
int gf_detok_push(struct gf_detok *d, int32_t id, struct gf_buf *out);
/* Ends the stream: a held-back incomplete character becomes U+FFFD. */
int gf_detok_finish(struct gf_detok *d, struct gf_buf *out);
/* Decodes a whole sequence into out (gf_detok_init + push each + finish). */
int gf_tokenizer_decode(const struct gf_tokenizer *t, const int32_t *ids, size_t n,
                        unsigned flags, struct gf_buf *out);

/* ---- chat templates (engine/template.c) ------------------------------------------------- */

struct gf_chat_msg;  // engine/engine.h

enum gf_chat_template {
    GF_TEMPLATE_LLAMA2 = 0,  // <s>[INST] <<SYS>>\n...\n<</SYS>>\n\n... [/INST] ... </s>
    GF_TEMPLATE_CHATML,      // <|im_start|>role\n...<|im_end|>\n
    GF_TEMPLATE_ZEPHYR,      // <|system|>\n...</s>\n<|user|>\n...</s>\n<|assistant|>\n
    GF_TEMPLATE_COUNT
};

/* Names "llama2", "chatml", "zephyr". */
const char *gf_template_name(int tmpl);
/* Parses a template name; GF_EINVAL for anything else ("auto" is the caller's business). */
int gf_template_parse(const char *name, int *tmpl);
/* Recognizes a GGUF tokenizer.chat_template (Jinja source, never executed) by its markers.
 * Returns 0 and *tmpl, or GF_ENOTFOUND when it is none of the known templates. */
int gf_template_detect(const char *jinja, size_t len, int *tmpl);
/* Picks the template of a model: by name when name is set and not "auto", else from the GGUF's
 * tokenizer.chat_template, else Llama 2 when the file has no template. An unknown name, or a
 * GGUF template that matches none of the known ones, is GF_EUNSUPPORTED with err set. */
int gf_template_choose(const struct gf_gguf *g, const char *name, int *tmpl,
                       struct gf_err *err);

/* Renders messages as prompt text (appended to out), ending where the assistant's reply
 * starts, for display, logs and engines that take text. Roles: "system", "user", "assistant";
 * others are GF_EINVAL, as is n == 0. A NULL content counts as empty. *bos_in_text says whether
 * the text starts with the template's own BOS ("<s>"). Errors: GF_EINVAL, GF_ETOOBIG/GF_ENOMEM
 * from out. */
int gf_template_render(int tmpl, const struct gf_chat_msg *msgs, size_t n, struct gf_buf *out,
                       bool *bos_in_text);
/* Renders and tokenizes in one step, which is what the embedded engine uses: the template's
 * markers ("<s>", "</s>", "<|im_start|>", ...) become their single tokens when the vocabulary
 * has them, and message contents are encoded as plain text, never parsed for special tokens,
 * so a client cannot forge a turn boundary. BOS is added once: by the template (Llama 2) or as
 * the vocabulary says (add_bos). The result equals llama.cpp's tokenization of the rendered
 * prompt with special tokens parsed, for contents free of special-token text. *ids: caller
 * frees with gf_free. Errors as gf_template_render, and GF_ENOMEM. */
int gf_template_encode(const struct gf_tokenizer *t, int tmpl, const struct gf_chat_msg *msgs,
                       size_t n, int32_t **ids, size_t *n_ids);

#endif
