/* audit_int.h — what the audit files share privately: the domain strings of the hashes and MACs,
 * the chain checker used by both the writer's recovery and the verifier, segment naming and the
 * manifest. Nothing here is used outside audit/. */
#ifndef GF_AUDIT_INT_H
#define GF_AUDIT_INT_H

#include "audit/audit.h"

#define AUDIT_DOMAIN          "gardefou-audit-v1"          // + "\0" + line: the chain hash
#define AUDIT_CKPT_DOMAIN     "gardefou-audit-ckpt-v1"     // + "\0" + seq + "\0" + prev hex
#define AUDIT_MANIFEST_DOMAIN "gardefou-audit-manifest-v1" // + "\0" + manifest body line
#define AUDIT_KEYID_DOMAIN    "gardefou-audit-keyid-v1"
#define AUDIT_MANIFEST        "MANIFEST.json"
#define AUDIT_SEG_PREFIX      "audit-"
#define AUDIT_SEG_SUFFIX      ".jsonl"
#define AUDIT_SEG_NAME_MAX    64
#define AUDIT_MAX_LINE        (16u << 20) // a record longer than this is refused / a break
#define AUDIT_HEX_LEN         (2 * GF_SHA256_LEN)

/* The MAC of a checkpoint with sequence number seq whose prev is prev. */
void audit_ckpt_mac(const uint8_t *key, uint64_t seq, const uint8_t prev[GF_SHA256_LEN],
                    uint8_t out[GF_SHA256_LEN]);
/* 16 hex digits naming a key without revealing it (a digest of it); out holds 17 bytes. */
void audit_key_id(const uint8_t *key, char out[17]);
/* Parses exactly 2*n hex digits into out; returns 0 or GF_EFORMAT. */
int audit_unhex(const char *s, size_t slen, uint8_t *out, size_t n);

/* Checks that lines form a chain, one at a time. Start with audit_chain_init; feed each line
 * without its newline. key may be NULL (checkpoint MACs are then not checked). */
struct audit_chain {
    uint64_t next_seq;             // the seq the next line must carry
    uint8_t head[GF_SHA256_LEN];   // hash of the last line accepted (zeros before the first)
    const uint8_t *key;            // borrowed; GF_AUDIT_KEY_LEN bytes or NULL
    uint64_t records, checkpoints;
    uint64_t last_ckpt_seq;        // 0 = none yet
    uint8_t last_ckpt_hash[GF_SHA256_LEN];
    bool last_was_ckpt;            // the last line accepted is a checkpoint
};

void audit_chain_init(struct audit_chain *c, const uint8_t *key);
/* Accepts line as the next record: returns 0 (and advances) or GF_EFORMAT with a one-line
 * reason in why (the chain is left unchanged). */
int audit_chain_feed(struct audit_chain *c, const char *line, size_t len, char *why, size_t whylen);

/* Segment file names: "audit-<first seq, 16 digits>.jsonl". */
void audit_seg_name(uint64_t first_seq, char out[AUDIT_SEG_NAME_MAX]);
/* Returns true and the first seq when name is a segment file name. */
bool audit_seg_parse(const char *name, uint64_t *first_seq);
/* Lists the segment files of dir in seq order (caller frees each and the array with
 * audit_names_free); the number of .torn files goes to *n_torn when not NULL. */
int audit_seg_list(const char *dir, char ***names, size_t *n, size_t *n_torn, struct gf_err *err);
void audit_names_free(char **names, size_t n);
/* Joins dir and name into a new string (caller frees). */
char *audit_path(const char *dir, const char *name);

/* The manifest: segments in order and the last checkpoint, MAC'd with the key. */
struct audit_manifest {
    char **segments;
    size_t n_segments, cap;
    uint64_t ckpt_seq;                 // 0 = no checkpoint yet
    uint8_t ckpt_hash[GF_SHA256_LEN];  // hash of the checkpoint line
};

void audit_manifest_cleanup(struct audit_manifest *m);
int audit_manifest_add(struct audit_manifest *m, const char *name);
/* Reads dir/MANIFEST.json. Returns 0, GF_ENOTFOUND when there is none, GF_EFORMAT when it is
 * malformed or (key non-NULL) its MAC is wrong, GF_EIO, GF_ENOMEM. */
int audit_manifest_read(const char *dir, const uint8_t *key, struct audit_manifest *m,
                        struct gf_err *err);
/* Writes it atomically (temporary file, fsync, rename, fsync of the directory). */
int audit_manifest_write(const char *dir, const uint8_t *key, const struct audit_manifest *m,
                         struct gf_err *err);

/* Reads a whole file into a new buffer (caller frees); refuses files over max bytes. */
int audit_read_file(const char *path, size_t max, char **out, size_t *len, struct gf_err *err);

/* Serializes a record body (from "type" on, without the braces' opening part) into b. */
int audit_body_request(struct gf_buf *b, const struct gf_audit_request *r,
                       enum gf_audit_retention retention);
int audit_body_admin(struct gf_buf *b, const char *action, const char *subject,
                     const struct cJSON *detail);
/* Masks e-mail addresses, long digit runs and key-shaped tokens in s[0..n), appending to b. */
int audit_scrub(struct gf_buf *b, const char *s, size_t n);

/* What recovery found at the end of the log, for the writer to continue from. */
struct audit_tail {
    char seg[AUDIT_SEG_NAME_MAX]; // the last segment (now ends with a complete good record)
    int64_t seg_len;              // its length after recovery
    uint64_t seq;                 // seq of the last good record (0 = empty log)
    uint8_t head[GF_SHA256_LEN];  // its hash (zeros when empty)
    uint64_t since_ckpt;          // records after the last checkpoint seen in the tail
    bool torn;                    // a torn tail was set aside:
    char torn_file[AUDIT_SEG_NAME_MAX + 32];
    uint64_t torn_offset, torn_bytes;
    uint8_t torn_sha[GF_SHA256_LEN];
    char torn_reason[200];
};

/* Makes dir ready to append: reads (or creates) the manifest, scans the last segment with the
 * chain checker, moves a torn tail to "<segment>.torn-<ms>" and truncates the segment to its last
 * good record. Refuses (GF_EFORMAT) a log whose manifest is missing or forged, or whose tail lost
 * records a checkpoint had sealed. On success the manifest in *man is current on disk. */
int audit_recover(const char *dir, const uint8_t *key, struct audit_manifest *man,
                  struct audit_tail *t, struct gf_err *err);
/* Splits buf into newline-terminated lines and feeds them to c until one is refused or a line
 * has no newline. *good = bytes of accepted lines. Returns 0, or GF_ENOMEM; why holds the reason
 * the scan stopped early (empty when it reached the end cleanly). */
int audit_scan(struct audit_chain *c, const char *buf, size_t len, size_t *good, uint64_t *line_no,
               char *why, size_t whylen);

#endif
