/* recover.c — what happens to a log directory before the writer appends: find the chain head
 * in the last segment and set aside a torn tail left by a crash or power loss. Only the unsynced
 * end of the last segment can be torn, so anything refused there is moved aside (never deleted)
 * and the writer records the move; a sealed (checkpointed) record going missing is not a torn
 * write, and the log is then refused so that an operator looks at it. */
#include "audit/audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int audit_scan(struct audit_chain *c, const char *buf, size_t len, size_t *good, uint64_t *line_no,
               char *why, size_t whylen)
{
    size_t off = 0;
    why[0] = '\0';
    while (off < len) {
        const char *nl = memchr(buf + off, '\n', len - off);
        if (nl == NULL) {
            snprintf(why, whylen, "last record has no newline (torn write)");
            break;
        }
        size_t n = (size_t)(nl - (buf + off));
        if (n > AUDIT_MAX_LINE) {
            snprintf(why, whylen, "record longer than %u bytes", AUDIT_MAX_LINE);
            break;
        }
        int rc = audit_chain_feed(c, buf + off, n, why, whylen);
        if (rc == GF_ENOMEM)
            return rc;
        if (rc != 0)
            break;
        off += n + 1;
        if (line_no)
            (*line_no)++;
    }
    *good = off;
    return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return GF_EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Scans segment `name` of dir, trusting its first prev (the verifier checks links across files).
 * Fills c; buf and len receive the file (caller frees *buf). */
static int scan_segment(const char *dir, const char *name, const uint8_t *key,
                        struct audit_chain *c, char **buf, size_t *len, size_t *good, char *why,
                        size_t whylen, struct gf_err *err)
{
    uint64_t first;
    audit_seg_parse(name, &first);
    char *path = audit_path(dir, name);
    if (path == NULL)
        return gf_err_set(err, GF_ENOMEM, "audit: out of memory");
    int rc = audit_read_file(path, (size_t)1 << 40, buf, len, err);
    gf_free(path);
    if (rc != 0)
        return rc;
    audit_chain_init(c, key);
    c->next_seq = first;
    uint64_t s;
    const char *ty;
    size_t tl;
    const char *nl = memchr(*buf, '\n', *len);
    if (first > 1 && nl != NULL &&
        gf_audit_parse_head(*buf, (size_t)(nl - *buf), &s, c->head, &ty, &tl) != 0)
        memset(c->head, 0, sizeof(c->head));
    rc = audit_scan(c, *buf, *len, good, NULL, why, whylen);
    if (rc != 0)
        return gf_err_set(err, rc, "audit: %s: out of memory", name);
    return 0;
}

/* Moves buf[good..len) of segment name aside and truncates the segment. */
static int set_aside(const char *dir, const char *name, const char *buf, size_t len, size_t good,
                     struct audit_tail *t, struct gf_err *err)
{
    int64_t ms = gf_wall_ms();
    char *tp = NULL, *sp = audit_path(dir, name);
    int rc = 0, fd = -1;
    // A name never used: an earlier attempt that failed after writing its copy (within the same
    // millisecond, or with the clock set back) must not block this one. Torn files are kept.
    for (int k = 0; k < 100 && fd < 0; k++) {
        if (k == 0)
            snprintf(t->torn_file, sizeof(t->torn_file), "%s.torn-%" PRId64, name, ms);
        else
            snprintf(t->torn_file, sizeof(t->torn_file), "%s.torn-%" PRId64 "-%d", name, ms, k);
        gf_free(tp);
        if ((tp = audit_path(dir, t->torn_file)) == NULL)
            break;
        fd = open(tp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (tp == NULL || sp == NULL) {
        rc = gf_err_set(err, GF_ENOMEM, "audit: out of memory");
        goto out;
    }
    if (fd < 0 || write_all(fd, buf + good, len - good) != 0 || fsync(fd) != 0) {
        rc = gf_err_set(err, GF_EIO, "%s: cannot set the torn tail aside: %s", tp,
                        strerror(errno));
        goto out;
    }
    if (truncate(sp, (off_t)good) != 0) {
        rc = gf_err_set(err, GF_EIO, "%s: truncate: %s", sp, strerror(errno));
        goto out;
    }
    int sfd = open(sp, O_WRONLY | O_CLOEXEC);
    if (sfd < 0 || fsync(sfd) != 0)
        rc = gf_err_set(err, GF_EIO, "%s: fsync: %s", sp, strerror(errno));
    if (sfd >= 0)
        close(sfd);
    t->torn = true;
    t->torn_offset = good;
    t->torn_bytes = len - good;
    gf_sha256(buf + good, len - good, t->torn_sha);
    gf_log(GF_LOG_WARN, "audit", "event=torn_tail segment=%s offset=%zu bytes=%zu moved_to=%s",
           name, good, len - good, t->torn_file);
out:
    if (fd >= 0)
        close(fd);
    gf_free(tp);
    gf_free(sp);
    return rc;
}

static int create_empty(const char *dir, const char *name, struct gf_err *err)
{
    char *p = audit_path(dir, name);
    if (p == NULL)
        return gf_err_set(err, GF_ENOMEM, "audit: out of memory");
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    int rc = fd < 0 || fsync(fd) != 0 ? gf_err_set(err, GF_EIO, "%s: %s", p, strerror(errno)) : 0;
    if (fd >= 0)
        close(fd);
    gf_free(p);
    return rc;
}

int audit_recover(const char *dir, const uint8_t *key, struct audit_manifest *man,
                  struct audit_tail *t, struct gf_err *err)
{
    memset(t, 0, sizeof(*t));
    char **names = NULL;
    size_t n = 0;
    char *buf = NULL;
    int rc = audit_seg_list(dir, &names, &n, NULL, err);
    if (rc != 0)
        return rc;
    rc = audit_manifest_read(dir, key, man, err);
    if (rc == GF_ENOTFOUND && n == 0) { // a new log
        gf_err_clear(err);
        audit_seg_name(1, t->seg);
        rc = audit_manifest_add(man, t->seg);
        if (rc != 0) {
            rc = gf_err_set(err, rc, "audit: out of memory");
            goto out;
        }
        rc = audit_manifest_write(dir, key, man, err);
        if (rc == 0)
            rc = create_empty(dir, t->seg, err);
        goto out;
    }
    if (rc == GF_ENOTFOUND) {
        gf_err_clear(err);
        rc = gf_err_set(err, GF_EFORMAT,
                        "audit: %s/" AUDIT_MANIFEST " is missing but segments exist "
                        "(run `gardefou audit verify`)", dir);
        goto out;
    }
    if (rc != 0)
        goto out;
    if (n == 0 || (man->n_segments > 0 && strcmp(man->segments[man->n_segments - 1],
                                                  names[n - 1]) > 0)) {
        // The manifest names a newer segment than exists: a crash between writing the manifest
        // and creating the file, which created nothing else; create it now.
        if (man->n_segments == 0) {
            rc = gf_err_set(err, GF_EFORMAT, "audit: " AUDIT_MANIFEST " lists no segment");
            goto out;
        }
        snprintf(t->seg, sizeof(t->seg), "%s", man->segments[man->n_segments - 1]);
        if (n > 0 && man->n_segments >= 2 &&
            strcmp(man->segments[man->n_segments - 2], names[n - 1]) != 0) {
            rc = gf_err_set(err, GF_EFORMAT, "audit: segment %s listed in " AUDIT_MANIFEST
                            " is missing", man->segments[man->n_segments - 2]);
            goto out;
        }
        rc = create_empty(dir, t->seg, err);
        if (rc != 0)
            goto out;
        audit_names_free(names, n);
        names = NULL;
        n = 0;
        rc = audit_seg_list(dir, &names, &n, NULL, err);
        if (rc != 0)
            goto out;
    }
    size_t idx = n - 1, len = 0, good = 0;
    struct audit_chain c;
    char why[200];
    snprintf(t->seg, sizeof(t->seg), "%s", names[idx]);
    rc = scan_segment(dir, names[idx], key, &c, &buf, &len, &good, why, sizeof(why), err);
    if (rc != 0)
        goto out;
    if (good < len) {
        snprintf(t->torn_reason, sizeof(t->torn_reason), "%s", why);
        rc = set_aside(dir, names[idx], buf, len, good, t, err);
        if (rc != 0)
            goto out;
    }
    t->seg_len = (int64_t)good;
    uint64_t first;
    audit_seg_parse(names[idx], &first);
    if (c.records == 0 && first > 1) {
        // The last segment holds no good record: the head is the previous segment's end.
        gf_free(buf);
        buf = NULL;
        if (idx == 0) {
            rc = gf_err_set(err, GF_EFORMAT, "audit: segment %s starts at seq %" PRIu64
                            " but no earlier segment exists", names[idx], first);
            goto out;
        }
        struct audit_chain pc;
        size_t plen = 0, pgood = 0;
        rc = scan_segment(dir, names[idx - 1], key, &pc, &buf, &plen, &pgood, why, sizeof(why),
                          err);
        if (rc != 0)
            goto out;
        if (pgood != plen || pc.next_seq != first) {
            rc = gf_err_set(err, GF_EFORMAT, "audit: segment %s is damaged (%s)",
                            names[idx - 1], why[0] ? why : "does not end where the next begins");
            goto out;
        }
        c = pc;
        c.records = 0;
    }
    t->seq = c.next_seq - 1;
    memcpy(t->head, c.head, GF_SHA256_LEN);
    t->since_ckpt = c.last_ckpt_seq ? t->seq - c.last_ckpt_seq : c.records;
    if (man->ckpt_seq > t->seq) {
        rc = gf_err_set(err, GF_EFORMAT,
                        "audit: the log ends at seq %" PRIu64 " but checkpoint %" PRIu64
                        " was sealed after it: records are missing (run `gardefou audit verify`)",
                        t->seq, man->ckpt_seq);
        goto out;
    }
    if (man->n_segments == 0 || strcmp(man->segments[man->n_segments - 1], t->seg) != 0) {
        rc = audit_manifest_add(man, t->seg);
        if (rc != 0) {
            rc = gf_err_set(err, rc, "audit: out of memory");
            goto out;
        }
        rc = audit_manifest_write(dir, key, man, err);
    }
out:
    if (rc != 0)
        audit_manifest_cleanup(man);
    gf_free(buf);
    audit_names_free(names, n);
    return rc;
}
