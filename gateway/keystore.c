/* keystore.c — the local key store: DATA_DIR/keys/journal.log (append-only, one framed record
 * per change) and DATA_DIR/keys/snapshot.json (every key at a sequence number, replaced
 * atomically). Invariant: memory is a cache of the files — a change is fsynced to the journal
 * before it is applied in memory and before put returns, so nothing lives only in memory.
 *
 * A record is one line "<crc32 of json, 8 hex> <json>\n". Only the last record of the journal
 * can be torn by a crash; it is dropped and truncated away (logged). Damage anywhere else is
 * refused (GF_EFORMAT naming the record) rather than silently losing, say, a revocation. */
#include "gateway/keys_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RECORD_MAX (16 * 1024) // a key record is < 1 KiB; anything longer is damage
#define FILE_MAX   (1u << 30)

/* An open-addressing slot: 0 = empty, else 1 + index into keys. The digest table also notes
 * whether it points at the key's current or old digest. */
struct dslot {
    uint32_t idx1;
    uint8_t old;
};

struct store {
    struct gf_keystore pub;
    pthread_mutex_t mu;
    char *dir;
    int jfd;         // journal.log, O_APPEND
    uint64_t jlen;   // bytes of whole records in the journal
    size_t jrecords; // records in the journal since the last snapshot
    uint64_t seq;    // the last sequence number used
    size_t snapshot_every;
    bool no_fsync;
    struct gf_key *keys; // creation order
    size_t n, cap;
    struct dslot *dtab; // by digest; capacity dcap, a power of two
    size_t dcap, dused;
    uint32_t *itab; // by id: 0 or 1 + index; capacity icap
    size_t icap;
};

/* ---- hash tables ---------------------------------------------------------------------- */

static uint64_t digest_hash(const uint8_t *d)
{
    uint64_t h;
    memcpy(&h, d, sizeof(h)); // digests are uniformly random already
    return h;
}

static uint64_t id_hash(const char *s)
{
    uint64_t h = 1469598103934665603u; // FNV-1a
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211u;
    return h;
}

static const uint8_t *slot_digest(const struct store *st, const struct dslot *s)
{
    const struct gf_key *k = &st->keys[s->idx1 - 1];
    return s->old ? k->old_digest : k->digest;
}

static size_t dfind(const struct store *st, const uint8_t *d)
{
    size_t mask = st->dcap - 1;
    for (size_t i = digest_hash(d) & mask;; i = (i + 1) & mask) {
        const struct dslot *s = &st->dtab[i];
        if (s->idx1 == 0 || gf_ct_equal(slot_digest(st, s), d, GF_SHA256_LEN))
            return i;
    }
}

static void dinsert(struct store *st, const uint8_t *d, uint32_t idx, bool old)
{
    size_t i = dfind(st, d);
    if (st->dtab[i].idx1 == 0)
        st->dused++;
    st->dtab[i].idx1 = idx + 1;
    st->dtab[i].old = old;
}

/* Removes d with backward-shift deletion, so lookups never need tombstones. */
static void dremove(struct store *st, const uint8_t *d)
{
    size_t mask = st->dcap - 1;
    size_t i = dfind(st, d);
    if (st->dtab[i].idx1 == 0)
        return;
    st->dused--;
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        if (st->dtab[j].idx1 == 0)
            break;
        size_t home = digest_hash(slot_digest(st, &st->dtab[j])) & mask;
        // Move j into the hole at i unless its home lies cyclically in (i, j].
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            st->dtab[i] = st->dtab[j];
            i = j;
        }
    }
    st->dtab[i].idx1 = 0;
}

static size_t ifind(const struct store *st, const char *id)
{
    size_t mask = st->icap - 1;
    for (size_t i = id_hash(id) & mask;; i = (i + 1) & mask) {
        uint32_t v = st->itab[i];
        if (v == 0 || strcmp(st->keys[v - 1].id, id) == 0)
            return i;
    }
}

/* Grows the tables so that `more` keys (each with up to two digests) fit at load <= 1/2.
 * Allocates before anything changes: on GF_ENOMEM the store is as it was. */
static int reserve(struct store *st, size_t more)
{
    size_t need = st->n + more;
    if (need > UINT32_MAX / 4)
        return GF_ETOOBIG;
    if (need > st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 16;
        while (cap < need)
            cap *= 2;
        struct gf_key *nk = gf_realloc(st->keys, cap * sizeof(*nk));
        if (nk == NULL)
            return GF_ENOMEM;
        st->keys = nk;
        st->cap = cap;
    }
    if ((st->dused + 2 * more) * 2 > st->dcap) {
        size_t dcap = st->dcap ? st->dcap : 64;
        while ((st->dused + 2 * more) * 2 > dcap)
            dcap *= 2;
        struct dslot *old = st->dtab;
        size_t oldcap = st->dcap;
        struct dslot *nt = gf_calloc(dcap, sizeof(*nt));
        if (nt == NULL)
            return GF_ENOMEM;
        st->dtab = nt;
        st->dcap = dcap;
        st->dused = 0;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i].idx1)
                dinsert(st, slot_digest(st, &old[i]), old[i].idx1 - 1, old[i].old);
        gf_free(old);
    }
    if (need * 2 > st->icap) {
        size_t icap = st->icap ? st->icap : 64;
        while (need * 2 > icap)
            icap *= 2;
        uint32_t *old = st->itab;
        size_t oldcap = st->icap;
        uint32_t *nt = gf_calloc(icap, sizeof(*nt));
        if (nt == NULL)
            return GF_ENOMEM;
        st->itab = nt;
        st->icap = icap;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i])
                st->itab[ifind(st, st->keys[old[i] - 1].id)] = old[i];
        gf_free(old);
    }
    return 0;
}

/* Checks that k's digests belong to no other key. */
static int digests_free(const struct store *st, const struct gf_key *k, size_t self)
{
    const uint8_t *ds[2] = {k->digest, k->has_old ? k->old_digest : NULL};
    for (int i = 0; i < 2; i++) {
        if (ds[i] == NULL || st->dcap == 0)
            continue;
        size_t s = dfind(st, ds[i]);
        if (st->dtab[s].idx1 != 0 && st->dtab[s].idx1 - 1 != self)
            return GF_EINVAL;
    }
    return 0;
}

/* Applies k in memory (capacity must have been reserved). */
static void apply(struct store *st, const struct gf_key *k)
{
    size_t is = ifind(st, k->id);
    size_t idx;
    if (st->itab[is] != 0) {
        idx = st->itab[is] - 1;
        struct gf_key *cur = &st->keys[idx];
        dremove(st, cur->digest);
        if (cur->has_old)
            dremove(st, cur->old_digest);
        *cur = *k;
    } else {
        idx = st->n++;
        st->keys[idx] = *k;
        st->itab[is] = (uint32_t)idx + 1;
    }
    dinsert(st, st->keys[idx].digest, (uint32_t)idx, false);
    if (k->has_old)
        dinsert(st, st->keys[idx].old_digest, (uint32_t)idx, true);
}

/* ---- files ----------------------------------------------------------------------------- */

static int path_of(const struct store *st, const char *name, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s/%s", st->dir, name);
    return n < 0 || (size_t)n >= outlen ? GF_ETOOBIG : 0;
}

static int sync_fd(const struct store *st, int fd)
{
    if (st->no_fsync)
        return 0;
    return fsync(fd) == 0 ? 0 : GF_EIO;
}

static int sync_dir(const struct store *st)
{
    if (st->no_fsync)
        return 0;
    int fd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return GF_EIO;
    int rc = fsync(fd) == 0 ? 0 : GF_EIO;
    close(fd);
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return GF_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Appends one framed record (crc, space, json, newline) for k to b. */
static int frame(struct gf_buf *b, const struct gf_key *k)
{
    size_t start = b->len;
    int rc = gf_buf_puts(b, "00000000 ");
    rc = rc ? rc : gf_keyrec_write(b, k);
    rc = rc ? rc : gf_buf_putc(b, '\n');
    if (rc)
        return rc;
    uint32_t crc = gf_crc32(0, b->data + start + 9, b->len - start - 10);
    char hex[9];
    snprintf(hex, sizeof(hex), "%08x", crc);
    memcpy(b->data + start, hex, 8);
    return 0;
}

/* Checks the framing of line[0..n) (no newline) and parses it. GF_EFORMAT with err set when the
 * framing or the record is bad; *torn says the framing (length, checksum) was, which is what a
 * write cut short looks like, as opposed to a whole record with bad content. */
static int unframe(const char *line, size_t n, struct gf_key *k, bool *torn, struct gf_err *err)
{
    *torn = true;
    if (n < 10 || line[8] != ' ')
        return gf_err_set(err, GF_EFORMAT, "bad framing");
    uint32_t want = 0;
    for (int i = 0; i < 8; i++) {
        char c = line[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return gf_err_set(err, GF_EFORMAT, "bad framing");
        want = want << 4 | (uint32_t)v;
    }
    if (gf_crc32(0, line + 9, n - 9) != want)
        return gf_err_set(err, GF_EFORMAT, "checksum mismatch");
    *torn = false;
    return gf_keyrec_parse(line + 9, n - 9, k, err);
}

/* Reads a whole file into *out (caller frees). GF_ENOTFOUND when it does not exist. */
static int read_file(const char *path, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? GF_ENOTFOUND : GF_EIO;
    struct gf_buf b;
    gf_buf_init(&b, FILE_MAX);
    int rc = 0;
    for (;;) {
        rc = gf_buf_reserve(&b, 65536);
        if (rc)
            break;
        ssize_t r = read(fd, b.data + b.len, 65536);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = GF_EIO;
            break;
        }
        if (r == 0)
            break;
        b.len += (size_t)r;
        b.data[b.len] = '\0';
    }
    close(fd);
    if (rc) {
        gf_buf_cleanup(&b);
        return rc;
    }
    *len = b.len;
    *out = gf_buf_steal(&b);
    return *out ? 0 : GF_ENOMEM;
}

static int load_snapshot(struct store *st, struct gf_err *err)
{
    char path[4096];
    int rc = path_of(st, "snapshot.json", path, sizeof(path));
    char *data = NULL;
    size_t len = 0;
    rc = rc ? rc : read_file(path, &data, &len);
    if (rc == GF_ENOTFOUND)
        return 0;
    if (rc)
        return gf_err_set(err, rc, "keys/snapshot.json: %s", gf_strerror(rc));
    size_t off = 0, recno = 0;
    while (off < len) {
        const char *nl = memchr(data + off, '\n', len - off);
        if (nl == NULL) {
            rc = gf_err_set(err, GF_EFORMAT, "keys/snapshot.json: record %zu: no newline", recno);
            break;
        }
        size_t n = (size_t)(nl - (data + off));
        struct gf_key k;
        struct gf_err e = {0};
        bool torn;
        rc = unframe(data + off, n, &k, &torn, &e);
        if (rc == 0 && k.seq > st->seq)
            st->seq = k.seq;
        rc = rc ? rc : reserve(st, 1);
        if (rc == 0 && digests_free(st, &k, SIZE_MAX) != 0)
            rc = gf_err_set(&e, GF_EFORMAT, "digest shared with another key");
        if (rc == 0 && st->itab[ifind(st, k.id)] != 0)
            rc = gf_err_set(&e, GF_EFORMAT, "duplicate id %s", k.id);
        if (rc) {
            rc = gf_err_set(err, rc, "keys/snapshot.json: record %zu: %s", recno,
                            e.msg[0] ? e.msg : gf_strerror(rc));
            break;
        }
        apply(st, &k);
        off += n + 1;
        recno++;
    }
    gf_free(data);
    return rc;
}

/* Replays journal.log over the snapshot; truncates a torn last record away. */
static int replay_journal(struct store *st, struct gf_err *err)
{
    char path[4096];
    int rc = path_of(st, "journal.log", path, sizeof(path));
    char *data = NULL;
    size_t len = 0;
    rc = rc ? rc : read_file(path, &data, &len);
    if (rc == GF_ENOTFOUND)
        rc = 0;
    if (rc)
        return gf_err_set(err, rc, "keys/journal.log: %s", gf_strerror(rc));
    size_t off = 0, recno = 0;
    uint64_t snap_seq = st->seq;
    while (off < len) {
        const char *nl = memchr(data + off, '\n', len - off);
        size_t n = nl ? (size_t)(nl - (data + off)) : len - off;
        bool last = nl == NULL || off + n + 1 == len;
        struct gf_key k;
        struct gf_err e = {0};
        bool torn = true;
        rc = nl ? unframe(data + off, n, &k, &torn, &e) : gf_err_set(&e, GF_EFORMAT, "no newline");
        if (rc == GF_EFORMAT && torn && last) {
            // The crash came in the middle of this write: nobody was told it succeeded.
            gf_log(GF_LOG_WARN, "keys",
                   "event=journal_torn_record record=%zu offset=%zu bytes=%zu reason=\"%s\" "
                   "action=truncated",
                   recno, off, len - off, e.msg);
            if (ftruncate(st->jfd, (off_t)off) != 0 || sync_fd(st, st->jfd) != 0) {
                rc = gf_err_set(err, GF_EIO, "keys/journal.log: cannot truncate torn record");
                break;
            }
            rc = 0;
            break;
        }
        if (rc == 0 && k.seq <= st->seq && k.seq > snap_seq)
            rc =
                gf_err_set(&e, GF_EFORMAT, "sequence %llu out of order", (unsigned long long)k.seq);
        if (rc == 0 && k.seq > snap_seq) { // older ones are in the snapshot already
            rc = reserve(st, 1);
            if (rc == 0) {
                uint32_t self = st->itab[ifind(st, k.id)];
                if (digests_free(st, &k, self ? self - 1 : SIZE_MAX) != 0)
                    rc = gf_err_set(&e, GF_EFORMAT, "digest shared with another key");
            }
            if (rc == 0) {
                apply(st, &k);
                st->seq = k.seq;
            }
        }
        if (rc) {
            rc = gf_err_set(err, rc, "keys/journal.log: record %zu (offset %zu): %s", recno, off,
                            e.msg[0] ? e.msg : gf_strerror(rc));
            break;
        }
        off += n + 1;
        recno++;
        st->jrecords++;
    }
    st->jlen = off < len ? off : len;
    gf_free(data);
    return rc;
}

static int do_snapshot(struct store *st, struct gf_err *err)
{
    char tmp[4096], dst[4096];
    int rc = path_of(st, "snapshot.tmp", tmp, sizeof(tmp));
    rc = rc ? rc : path_of(st, "snapshot.json", dst, sizeof(dst));
    if (rc)
        return gf_err_set(err, rc, "keys: path too long");
    struct gf_buf b;
    gf_buf_init(&b, FILE_MAX);
    for (size_t i = 0; i < st->n && rc == 0; i++)
        rc = frame(&b, &st->keys[i]);
    if (rc) {
        gf_buf_cleanup(&b);
        return gf_err_set(err, rc, "keys: snapshot: %s", gf_strerror(rc));
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        gf_buf_cleanup(&b);
        return gf_err_set(err, GF_EIO, "keys/snapshot.tmp: %s", strerror(errno));
    }
    rc = write_all(fd, b.data ? b.data : "", b.len);
    rc = rc ? rc : sync_fd(st, fd);
    close(fd);
    gf_buf_cleanup(&b);
    if (rc == 0 && rename(tmp, dst) != 0)
        rc = GF_EIO;
    rc = rc ? rc : sync_dir(st);
    if (rc) {
        unlink(tmp);
        return gf_err_set(err, rc, "keys: cannot write snapshot.json");
    }
    // The snapshot holds every record now; a crash before this truncation only leaves records
    // with sequence numbers the replay skips.
    if (ftruncate(st->jfd, 0) != 0 || sync_fd(st, st->jfd) != 0)
        return gf_err_set(err, GF_EIO, "keys/journal.log: cannot truncate after snapshot");
    st->jlen = 0;
    st->jrecords = 0;
    return 0;
}

/* ---- ops ------------------------------------------------------------------------------- */

static struct store *S(struct gf_keystore *ks)
{
    return ks->impl;
}

static int op_lookup(struct gf_keystore *ks, const uint8_t d[GF_SHA256_LEN], struct gf_key *out,
                     enum gf_key_match *match)
{
    struct store *st = S(ks);
    int rc = GF_ENOTFOUND;
    pthread_mutex_lock(&st->mu);
    if (st->dcap) {
        const struct dslot *s = &st->dtab[dfind(st, d)];
        if (s->idx1 != 0) {
            *out = st->keys[s->idx1 - 1];
            if (match)
                *match = s->old ? GF_KEY_MATCH_OLD : GF_KEY_MATCH_CURRENT;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int op_get(struct gf_keystore *ks, const char *id, struct gf_key *out)
{
    struct store *st = S(ks);
    int rc = GF_ENOTFOUND;
    pthread_mutex_lock(&st->mu);
    if (st->icap) {
        uint32_t v = st->itab[ifind(st, id)];
        if (v) {
            *out = st->keys[v - 1];
            rc = 0;
        }
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static int op_put(struct gf_keystore *ks, const struct gf_key *k0, struct gf_err *err)
{
    struct store *st = S(ks);
    struct gf_key k = *k0;
    struct gf_buf b;
    gf_buf_init(&b, RECORD_MAX);
    pthread_mutex_lock(&st->mu);
    int rc = reserve(st, 1); // memory first: after the write nothing may fail
    if (rc) {
        gf_err_set(err, rc, "keys: %s", gf_strerror(rc));
        goto out;
    }
    uint32_t self = st->itab[ifind(st, k.id)];
    if (digests_free(st, &k, self ? self - 1 : SIZE_MAX) != 0) {
        rc = gf_err_set(err, GF_EINVAL, "keys: digest already belongs to another key");
        goto out;
    }
    k.seq = st->seq + 1;
    rc = frame(&b, &k);
    if (rc) {
        gf_err_set(err, rc, "keys: record: %s", gf_strerror(rc));
        goto out;
    }
    rc = write_all(st->jfd, b.data, b.len);
    rc = rc ? rc : sync_fd(st, st->jfd);
    if (rc) {
        // Take the partial record back so the journal ends on a whole record again.
        if (ftruncate(st->jfd, (off_t)st->jlen) != 0)
            gf_log(GF_LOG_ERROR, "keys", "event=journal_rollback_failed errno=%d", errno);
        gf_err_set(err, GF_EIO, "keys/journal.log: write failed: %s", strerror(errno));
        goto out;
    }
    st->jlen += b.len;
    st->jrecords++;
    st->seq = k.seq;
    apply(st, &k);
    if (st->jrecords >= st->snapshot_every) {
        struct gf_err e = {0};
        if (do_snapshot(st, &e) != 0) // the journal still holds everything: not fatal
            gf_log(GF_LOG_WARN, "keys", "event=snapshot_failed reason=\"%s\"", e.msg);
    }
out:
    pthread_mutex_unlock(&st->mu);
    gf_buf_cleanup(&b);
    return rc;
}

static int op_list(struct gf_keystore *ks, gf_key_visit_fn fn, void *ud)
{
    struct store *st = S(ks);
    int rc = 0;
    pthread_mutex_lock(&st->mu);
    for (size_t i = 0; i < st->n && rc == 0; i++)
        rc = fn(ud, &st->keys[i]);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static size_t op_count(struct gf_keystore *ks)
{
    struct store *st = S(ks);
    pthread_mutex_lock(&st->mu);
    size_t n = st->n;
    pthread_mutex_unlock(&st->mu);
    return n;
}

static void op_close(struct gf_keystore *ks)
{
    struct store *st = S(ks);
    if (st->jfd >= 0)
        close(st->jfd);
    pthread_mutex_destroy(&st->mu);
    gf_free(st->keys);
    gf_free(st->dtab);
    gf_free(st->itab);
    gf_free(st->dir);
    gf_free(st);
}

static const struct gf_keystore_ops file_ops = {
    .name = "file",
    .lookup = op_lookup,
    .get = op_get,
    .put = op_put,
    .list = op_list,
    .count = op_count,
    .close = op_close,
};

void gf_keystore_close(struct gf_keystore *ks)
{
    if (ks)
        ks->ops->close(ks);
}

int gf_keystore_file_snapshot(struct gf_keystore *ks, struct gf_err *err)
{
    if (ks->ops != &file_ops)
        return 0;
    struct store *st = S(ks);
    pthread_mutex_lock(&st->mu);
    int rc = do_snapshot(st, err);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

int gf_keystore_open_file(const char *dir, const struct gf_keystore_file_opts *opts,
                          struct gf_keystore **out, struct gf_err *err)
{
    *out = NULL;
    struct store *st = gf_calloc(1, sizeof(*st));
    if (st == NULL)
        return gf_err_set(err, GF_ENOMEM, "keys: out of memory");
    st->jfd = -1;
    pthread_mutex_init(&st->mu, NULL);
    st->pub.ops = &file_ops;
    st->pub.impl = st;
    st->snapshot_every = opts && opts->snapshot_every ? opts->snapshot_every : 1000;
    st->no_fsync = opts && opts->no_fsync;
    int rc = 0;
    st->dir = gf_strdup(dir);
    if (st->dir == NULL) {
        rc = gf_err_set(err, GF_ENOMEM, "keys: out of memory");
        goto fail;
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        rc = gf_err_set(err, GF_EIO, "%s: cannot create: %s", dir, strerror(errno));
        goto fail;
    }
    rc = reserve(st, 0);
    if (rc) {
        gf_err_set(err, rc, "keys: out of memory");
        goto fail;
    }
    char path[4096];
    if (path_of(st, "journal.log", path, sizeof(path)) != 0) {
        rc = gf_err_set(err, GF_EINVAL, "%s: path too long", dir);
        goto fail;
    }
    st->jfd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (st->jfd < 0) {
        rc = gf_err_set(err, GF_EIO, "%s: %s", path, strerror(errno));
        goto fail;
    }
    rc = load_snapshot(st, err);
    rc = rc ? rc : replay_journal(st, err);
    rc = rc ? rc : sync_dir(st);
    if (rc) {
        gf_err_set(err, rc, "%s: cannot sync", dir);
        goto fail;
    }
    gf_log(GF_LOG_INFO, "keys", "event=store_open keys=%zu journal_records=%zu seq=%llu", st->n,
           st->jrecords, (unsigned long long)st->seq);
    *out = &st->pub;
    return 0;
fail:
    op_close(&st->pub);
    return rc;
}
