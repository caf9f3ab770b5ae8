/* verify.c — `gardefou audit verify`: walks every segment of a log in seq order with the chain
 * checker and checks what the chain alone cannot: that no segment is missing (manifest), that
 * segment names match their first records, that the manifest's MAC holds and that its sealed
 * checkpoint is still in the log. Invariant: the first break found is the one reported. */
#include "audit/audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK (4u << 20)

static int mark_break(struct gf_audit_verify_result *r, const char *file, uint64_t line, uint64_t seq,
               const char *fmt, const char *detail)
{
    if (!r->ok)
        return 0;
    r->ok = false;
    snprintf(r->file, sizeof(r->file), "%s", file);
    r->line = line;
    r->seq = seq;
    snprintf(r->reason, sizeof(r->reason), fmt, detail ? detail : "");
    return 0;
}

/* Streams one segment through the checker. Returns 0 (r->ok false on a break) or GF_E*. */
static int verify_segment(const char *dir, const char *name, struct audit_chain *c,
                          const struct audit_manifest *man, bool have_man, bool *sealed_seen,
                          struct gf_audit_verify_result *r, struct gf_err *err)
{
    char *path = audit_path(dir, name);
    if (path == NULL)
        return gf_err_set(err, GF_ENOMEM, "audit verify: out of memory");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    gf_free(path);
    if (fd < 0)
        return gf_err_set(err, GF_EIO, "%s: %s", name, strerror(errno));
    struct gf_buf buf;
    gf_buf_init(&buf, AUDIT_MAX_LINE + READ_CHUNK + 1);
    int rc = 0;
    uint64_t line = 0, first = 0;
    bool eof = false, first_line = true;
    audit_seg_parse(name, &first);
    char why[256];
    for (;;) { // r->ok on entry; every way it turns false breaks out below
        if (!eof) {
            if ((rc = gf_buf_reserve(&buf, READ_CHUNK)) != 0) {
                rc = gf_err_set(err, rc == GF_ETOOBIG ? GF_EFORMAT : rc, "%s: out of memory",
                                name);
                break;
            }
            ssize_t n = read(fd, buf.data + buf.len, READ_CHUNK);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                rc = gf_err_set(err, GF_EIO, "%s: %s", name, strerror(errno));
                break;
            }
            if (n == 0)
                eof = true;
            buf.len += (size_t)n;
            r->bytes += (uint64_t)n;
        }
        size_t off = 0;
        while (r->ok) {
            const char *nl = memchr(buf.data + off, '\n', buf.len - off);
            if (nl == NULL)
                break;
            size_t n = (size_t)(nl - (buf.data + off));
            line++;
            if (first_line && first != c->next_seq) {
                char d[64];
                snprintf(d, sizeof(d), "%" PRIu64, first);
                mark_break(r, name, line, c->next_seq,
                    "segment named for seq %s does not start where the previous one ended "
                    "(segment removed, renamed or inserted)", d);
                break;
            }
            first_line = false;
            int frc = audit_chain_feed(c, buf.data + off, n, why, sizeof(why));
            if (frc == GF_ENOMEM) {
                rc = gf_err_set(err, GF_ENOMEM, "%s: out of memory", name);
                goto out;
            }
            if (frc != 0) {
                mark_break(r, name, line, c->next_seq, "%s", why);
                break;
            }
            if (have_man && man->ckpt_seq > 0 && c->next_seq - 1 == man->ckpt_seq) {
                if (c->last_was_ckpt && memcmp(c->last_ckpt_hash, man->ckpt_hash,
                                               GF_SHA256_LEN) == 0)
                    *sealed_seen = true;
                else
                    mark_break(r, name, line, man->ckpt_seq,
                        "this record is not the checkpoint " AUDIT_MANIFEST
                        " sealed (replaced or edited)%s", NULL);
            }
            off += n + 1;
        }
        gf_buf_consume(&buf, off);
        if (!r->ok)
            break;
        if (buf.len > AUDIT_MAX_LINE) {
            mark_break(r, name, line + 1, c->next_seq, "record longer than 16 MiB%s", NULL);
            break;
        }
        if (eof) {
            if (buf.len > 0)
                mark_break(r, name, line + 1, c->next_seq,
                    "last record has no newline (torn write or truncated file)%s", NULL);
            break;
        }
    }
out:
    close(fd);
    gf_buf_cleanup(&buf);
    return rc;
}

int gf_audit_verify(const char *dir, const uint8_t *key, struct gf_audit_verify_result *r,
                    struct gf_err *err)
{
    memset(r, 0, sizeof(*r));
    r->ok = true;
    r->key_checked = key != NULL;
    char **names = NULL;
    size_t n = 0, n_torn = 0;
    struct audit_manifest man;
    memset(&man, 0, sizeof(man));
    int rc = audit_seg_list(dir, &names, &n, &n_torn, err);
    if (rc != 0)
        return rc;
    r->torn_files = n_torn;
    struct gf_err merr = {0};
    rc = audit_manifest_read(dir, key, &man, &merr);
    bool have_man = rc == 0;
    if (rc == GF_ENOMEM || rc == GF_EIO) {
        rc = gf_err_set(err, rc, "%s", merr.msg);
        goto out;
    }
    rc = 0;
    if (!have_man) {
        mark_break(r, AUDIT_MANIFEST, 0, 0, "%s", merr.code == GF_ENOTFOUND
                                               ? "manifest missing (deleted?)" : merr.msg);
    } else {
        // Every listed segment exists, in the same order; only the newest may be unlisted
        // (a crash between creating it and rewriting the manifest).
        for (size_t i = 0; i < man.n_segments && r->ok; i++)
            if (i >= n || strcmp(man.segments[i], names[i]) != 0)
                mark_break(r, man.segments[i], 0, 0, "segment listed in " AUDIT_MANIFEST
                    " is missing%s", NULL);
        if (r->ok && n > man.n_segments + 1)
            mark_break(r, names[man.n_segments], 0, 0,
                "segment not listed in " AUDIT_MANIFEST " (inserted?)%s", NULL);
    }
    struct audit_chain c;
    audit_chain_init(&c, key);
    bool sealed_seen = false;
    for (size_t i = 0; i < n && r->ok; i++) {
        r->segments++;
        if ((rc = verify_segment(dir, names[i], &c, &man, have_man, &sealed_seen, r, err)) != 0)
            goto out;
    }
    if (r->ok && have_man && man.ckpt_seq > 0 && !sealed_seen)
        mark_break(r, n ? names[n - 1] : AUDIT_MANIFEST, 0, c.next_seq,
            "the log ends before the checkpoint " AUDIT_MANIFEST
            " sealed (tail truncated)%s", NULL);
    r->records = c.records;
    r->checkpoints = c.checkpoints;
    r->last_seq = c.next_seq - 1;
    r->unsealed = c.last_ckpt_seq ? r->last_seq - c.last_ckpt_seq : c.records;
    gf_hex(c.head, GF_SHA256_LEN, r->head);
out:
    audit_manifest_cleanup(&man);
    audit_names_free(names, n);
    return rc;
}
