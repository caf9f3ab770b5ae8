/* writer.c — the audit writer: the loop queues record bodies, one thread chains them (seq, prev),
 * writes them in group commits, seals checkpoints, rotates segments and reports each record's
 * fate back to the loop through an eventfd. Invariants: records reach the file in the order they
 * were queued; a callback says 0 only once the record's bytes are written (and synced, in fsync
 * mode); after a failed write or fsync the file is cut back to the last good record, the chain
 * head rolls back with it, and the failed records are counted in the "audit_write_failed"
 * record that ends the outage, so no record is lost or duplicated silently. */
#include "audit/audit_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#define BATCH_FLUSH_BYTES (1u << 20) // write out a batch once it holds this much

struct item {
    struct item *next;
    char *body; // record body from "type" on; NULL for a completion-only node (durability none)
    size_t len;
    gf_audit_done_fn cb;
    void *ud;
    int status;
    uint64_t seq;
};

struct gf_audit {
    struct gf_audit_config cfg;
    char *dir, *key_file;
    uint8_t key[GF_AUDIT_KEY_LEN];
    char key_id[17];
    struct event_base *base;
    struct event *ev;
    int efd;
    pthread_t thread;
    bool thread_started;

    pthread_mutex_t mu;      // guards everything down to stats
    pthread_cond_t work;     // the writer waits for items
    pthread_cond_t idle;     // flush waits for completions
    struct item *q_head, *q_tail;
    size_t q_len;
    struct item *done_head, *done_tail;
    bool writer_waiting;     // the writer sleeps on work: only then does enqueue signal it
    uint64_t enqueued, completed; // items, for flush
    bool stop;
    struct gf_audit_stats stats;
    struct gf_audit_stats w_stats; // the writer's own counters, published to stats by finish()

    atomic_bool failed;      // read by the loop without the lock

    // Writer-thread state.
    int fd;
    struct audit_manifest man;
    char seg[AUDIT_SEG_NAME_MAX];
    int64_t seg_len;           // bytes confirmed in the current segment
    uint64_t seq;              // last record confirmed
    uint8_t head[GF_SHA256_LEN];
    uint64_t since_ckpt;       // confirmed records since the last checkpoint
    uint64_t unsealed_since_ns; // when the first record after the last checkpoint was written
    // The batch being built, and the chain state as if it were written.
    struct gf_buf batch;
    uint64_t b_seq, b_since;
    uint8_t b_head[GF_SHA256_LEN];
    bool b_ckpt;               // the batch holds a checkpoint
    uint64_t b_ckpt_seq;
    uint8_t b_ckpt_hash[GF_SHA256_LEN];
    uint64_t last_sync_ns;
    uint64_t lost;             // records refused since the log last wrote
    int last_errno;
    struct gf_buf line;
};

/* ---- config --------------------------------------------------------------------------- */

void gf_audit_config_default(struct gf_audit_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->retention = GF_AUDIT_RETAIN_HASHES;
    cfg->durability = GF_AUDIT_DURABLE_FSYNC;
    cfg->checkpoint_every = 1000;
    cfg->checkpoint_interval_ms = 10000;
    cfg->segment_max_bytes = 64 << 20;
    cfg->commit_interval_ms = 2;
    cfg->commit_max_records = 1024;
    cfg->retry_interval_ms = 500;
}

static const char *const retention_names[] = {"hashes", "redacted", "full"};
static const char *const durability_names[] = {"fsync", "write", "none"};

int gf_audit_retention_parse(const char *s, enum gf_audit_retention *out)
{
    for (int i = 0; s && i < 3; i++)
        if (strcmp(s, retention_names[i]) == 0) {
            *out = (enum gf_audit_retention)i;
            return 0;
        }
    return GF_EINVAL;
}

int gf_audit_durability_parse(const char *s, enum gf_audit_durability *out)
{
    for (int i = 0; s && i < 3; i++)
        if (strcmp(s, durability_names[i]) == 0) {
            *out = (enum gf_audit_durability)i;
            return 0;
        }
    return GF_EINVAL;
}

const char *gf_audit_retention_name(enum gf_audit_retention r)
{
    return (unsigned)r < 3 ? retention_names[r] : "?";
}

const char *gf_audit_durability_name(enum gf_audit_durability d)
{
    return (unsigned)d < 3 ? durability_names[d] : "?";
}

/* ---- I/O through the shim ---------------------------------------------------------------- */

static int io_write_all(struct gf_audit *a, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = a->cfg.io && a->cfg.io->write ? a->cfg.io->write(a->cfg.io->ud, a->fd, p, n)
                                                  : write(a->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            a->last_errno = w < 0 ? errno : ENOSPC;
            return GF_EIO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int io_sync(struct gf_audit *a)
{
    int r = a->cfg.io && a->cfg.io->fsync ? a->cfg.io->fsync(a->cfg.io->ud, a->fd)
                                          : fdatasync(a->fd);
    if (r != 0) {
        a->last_errno = errno ? errno : EIO;
        return GF_EIO;
    }
    a->w_stats.fsyncs++;
    return 0;
}

/* ---- building lines (writer thread) ------------------------------------------------------ */

static void batch_begin(struct gf_audit *a)
{
    gf_buf_reset(&a->batch);
    a->b_seq = a->seq;
    a->b_since = a->since_ckpt;
    memcpy(a->b_head, a->head, GF_SHA256_LEN);
    a->b_ckpt = false;
}

/* Chains body as record b_seq+1 into the batch. */
static int add_line(struct gf_audit *a, const char *body, size_t len, bool ckpt)
{
    char prev[AUDIT_HEX_LEN + 1];
    gf_hex(a->b_head, GF_SHA256_LEN, prev);
    size_t start = a->batch.len;
    int rc = gf_buf_printf(&a->batch, "{\"seq\":%" PRIu64 ",\"prev\":\"%s\",", a->b_seq + 1, prev);
    if (rc == 0)
        rc = gf_buf_append(&a->batch, body, len);
    if (rc != 0) {
        a->batch.len = start;
        if (a->batch.data)
            a->batch.data[start] = '\0';
        return rc;
    }
    gf_audit_line_hash(a->batch.data + start, a->batch.len - start, a->b_head);
    rc = gf_buf_putc(&a->batch, '\n');
    if (rc != 0) {
        a->batch.len = start;
        a->batch.data[start] = '\0';
        memcpy(a->b_head, a->head, GF_SHA256_LEN); // recomputed below on the next success
        return rc;
    }
    a->b_seq++;
    if (ckpt) {
        a->b_since = 0;
        a->b_ckpt = true;
        a->b_ckpt_seq = a->b_seq;
        memcpy(a->b_ckpt_hash, a->b_head, GF_SHA256_LEN);
    } else {
        a->b_since++;
    }
    return 0;
}

static int add_checkpoint(struct gf_audit *a)
{
    uint8_t mac[GF_SHA256_LEN];
    char hex[AUDIT_HEX_LEN + 1], ts[40], body[320];
    audit_ckpt_mac(a->key, a->b_seq + 1, a->b_head, mac);
    gf_hex(mac, sizeof(mac), hex);
    gf_format_time(gf_wall_ms(), ts, sizeof(ts));
    int n = snprintf(body, sizeof(body),
                     "\"type\":\"checkpoint\",\"ts\":\"%s\",\"records\":%" PRIu64
                     ",\"key_id\":\"%s\",\"mac\":\"%s\"}",
                     ts, a->b_since, a->key_id, hex);
    return add_line(a, body, (size_t)n, true);
}

/* An admin record made by the writer itself. */
static int add_admin(struct gf_audit *a, const char *action, const cJSON *detail)
{
    struct gf_buf b;
    gf_buf_init(&b, 1u << 20);
    int rc = audit_body_admin(&b, action, NULL, detail);
    if (rc == 0)
        rc = add_line(a, b.data, b.len, false);
    gf_buf_cleanup(&b);
    return rc;
}

/* Writes the batch and syncs it per the mode (always when it holds a checkpoint or sync is
 * forced). On success the batch's chain state becomes the confirmed one; on failure the file is
 * cut back to the last confirmed record. Returns 0 or GF_EIO. */
static int batch_commit(struct gf_audit *a, bool force_sync)
{
    if (a->batch.len == 0)
        return 0;
    int rc = io_write_all(a, a->batch.data, a->batch.len);
    bool sync = a->cfg.durability == GF_AUDIT_DURABLE_FSYNC || a->b_ckpt || force_sync;
    if (rc == 0 && sync)
        rc = io_sync(a);
    if (rc != 0) {
        // Cut back to the last good record: a partial line must not stay, and a record whose
        // sync failed is reported failed, so it must not appear later either.
        if (ftruncate(a->fd, (off_t)a->seg_len) != 0)
            gf_log(GF_LOG_ERROR, "audit", "event=truncate_failed errno=%d", errno);
        gf_log(GF_LOG_ERROR, "audit", "event=write_failed segment=%s errno=%d", a->seg,
               a->last_errno);
        batch_begin(a);
        return rc;
    }
    if (a->since_ckpt == 0 && a->b_since > 0)
        a->unsealed_since_ns = gf_now_ns();
    a->seg_len += (int64_t)a->batch.len;
    a->w_stats.records += a->b_seq - a->seq;
    a->w_stats.batches++;
    a->seq = a->b_seq;
    a->since_ckpt = a->b_since;
    memcpy(a->head, a->b_head, GF_SHA256_LEN);
    a->last_sync_ns = gf_now_ns();
    if (a->b_ckpt) {
        a->w_stats.checkpoints++;
        a->man.ckpt_seq = a->b_ckpt_seq;
        memcpy(a->man.ckpt_hash, a->b_ckpt_hash, GF_SHA256_LEN);
        struct gf_err e = {0};
        if (audit_manifest_write(a->dir, a->key, &a->man, &e) != 0)
            gf_log(GF_LOG_ERROR, "audit", "event=manifest_failed msg=\"%s\"", e.msg);
    }
    batch_begin(a);
    return 0;
}

/* Starts the next segment (first record seq+1): sync and close the current one, create the new
 * file, and name it in the manifest. */
static int rotate(struct gf_audit *a)
{
    char name[AUDIT_SEG_NAME_MAX];
    audit_seg_name(a->seq + 1, name);
    char *path = audit_path(a->dir, name);
    if (path == NULL)
        return GF_ENOMEM;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        a->last_errno = errno;
        gf_free(path);
        return GF_EIO;
    }
    struct gf_err e = {0};
    if (audit_manifest_add(&a->man, name) != 0 ||
        audit_manifest_write(a->dir, a->key, &a->man, &e) != 0) {
        if (a->man.n_segments > 0 && strcmp(a->man.segments[a->man.n_segments - 1], name) == 0)
            gf_free(a->man.segments[--a->man.n_segments]);
        close(fd);
        // The new segment is empty: remove it, or it would sit unlisted between the segments
        // of a later rotation and read as inserted. (Should the manifest on disk name it, a
        // restart creates it again: a manifest may name one segment more than exists.)
        if (unlink(path) != 0)
            gf_log(GF_LOG_ERROR, "audit", "event=unlink_failed segment=%s errno=%d", name, errno);
        gf_free(path);
        a->last_errno = EIO;
        return GF_EIO;
    }
    gf_free(path);
    close(a->fd);
    a->fd = fd;
    snprintf(a->seg, sizeof(a->seg), "%s", name);
    a->seg_len = 0;
    gf_log(GF_LOG_INFO, "audit", "event=rotated segment=%s", name);
    return 0;
}

/* ---- the writer thread -------------------------------------------------------------------- */

static void finish(struct gf_audit *a, struct item *list)
{
    pthread_mutex_lock(&a->mu);
    // The loop is woken on the empty -> non-empty transition of the done list only: a list
    // already non-empty has a wake-up pending (the loop drains it whole).
    bool wake = a->done_head == NULL && list != NULL;
    for (struct item *it = list, *next; it; it = next) {
        next = it->next;
        it->next = NULL;
        if (it->status != 0)
            a->stats.failed++;
        a->completed++;
        if (a->done_tail)
            a->done_tail->next = it;
        else
            a->done_head = it;
        a->done_tail = it;
    }
    a->stats.records = a->w_stats.records;
    a->stats.checkpoints = a->w_stats.checkpoints;
    a->stats.batches = a->w_stats.batches;
    a->stats.fsyncs = a->w_stats.fsyncs;
    a->stats.last_seq = a->seq;
    pthread_cond_broadcast(&a->idle);
    pthread_mutex_unlock(&a->mu);
    if (wake && a->efd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(a->efd, &one, sizeof(one));
        (void)w; // EAGAIN: the counter is already non-zero, the loop will wake
    }
}

/* Gives every item from `from` to the end of list status rc. */
static void fail_from(struct item *from, int rc)
{
    for (struct item *it = from; it; it = it->next) {
        it->status = rc;
        it->seq = 0;
    }
}

/* Writes the items of list (all of them get a status). */
static void write_items(struct gf_audit *a, struct item *list, bool final)
{
    struct item *unconfirmed = list;
    int rc = 0;
    batch_begin(a);
    for (struct item *it = list; it; it = it->next) {
        size_t need = it->len + 128;
        if (a->seg_len + (int64_t)a->batch.len > 0 &&
            a->seg_len + (int64_t)(a->batch.len + need) > a->cfg.segment_max_bytes) {
            if ((rc = batch_commit(a, true)) != 0)
                break;
            for (; unconfirmed != it; unconfirmed = unconfirmed->next)
                unconfirmed->status = 0;
            if ((rc = rotate(a)) != 0)
                break;
        }
        if ((rc = add_line(a, it->body, it->len, false)) != 0)
            break;
        it->seq = a->b_seq;
        if (a->b_since >= (uint64_t)a->cfg.checkpoint_every && (rc = add_checkpoint(a)) != 0)
            break;
        if (a->batch.len >= BATCH_FLUSH_BYTES) {
            if ((rc = batch_commit(a, false)) != 0)
                break;
            for (; unconfirmed != it->next; unconfirmed = unconfirmed->next)
                unconfirmed->status = 0;
        }
    }
    if (rc == 0 && final && a->b_since > 0)
        rc = add_checkpoint(a);
    if (rc == 0)
        rc = batch_commit(a, final);
    if (rc == 0) {
        for (; unconfirmed; unconfirmed = unconfirmed->next)
            unconfirmed->status = 0;
        return;
    }
    batch_begin(a);
    uint64_t n = 0;
    for (struct item *it = unconfirmed; it; it = it->next)
        n++;
    a->lost += n;
    fail_from(unconfirmed, rc == GF_ENOMEM ? GF_ENOMEM : GF_EIO);
    atomic_store(&a->failed, true);
}

/* While failed: cut the file back and try to write the record that ends the outage. */
static void try_recover(struct gf_audit *a)
{
    if (ftruncate(a->fd, (off_t)a->seg_len) != 0)
        return;
    cJSON *d = cJSON_CreateObject();
    if (d == NULL || !cJSON_AddNumberToObject(d, "failed_records", (double)a->lost) ||
        !cJSON_AddStringToObject(d, "error", strerror(a->last_errno))) {
        cJSON_Delete(d);
        return;
    }
    batch_begin(a);
    int rc = add_admin(a, "audit_write_failed", d);
    cJSON_Delete(d);
    if (rc == 0)
        rc = batch_commit(a, true);
    if (rc == 0) {
        gf_log(GF_LOG_WARN, "audit", "event=recovered failed_records=%" PRIu64, a->lost);
        a->lost = 0;
        atomic_store(&a->failed, false);
    }
}

static void deadline_after(struct timespec *ts, uint64_t ns_from_now)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    uint64_t t = (uint64_t)ts->tv_nsec + ns_from_now;
    ts->tv_sec += (time_t)(t / 1000000000u);
    ts->tv_nsec = (long)(t % 1000000000u);
}

static bool ckpt_due(struct gf_audit *a, uint64_t now)
{
    return a->since_ckpt > 0 && a->cfg.checkpoint_interval_ms > 0 &&
           now - a->unsealed_since_ns >= (uint64_t)a->cfg.checkpoint_interval_ms * 1000000u;
}

static void *writer_main(void *arg)
{
    struct gf_audit *a = arg;
    pthread_mutex_lock(&a->mu);
    for (;;) {
        uint64_t now = gf_now_ns();
        bool failed = atomic_load(&a->failed);
        if (a->q_head == NULL && !a->stop && !ckpt_due(a, now)) {
            uint64_t wait = 3600ull * 1000000000u;
            if (failed)
                wait = (uint64_t)a->cfg.retry_interval_ms * 1000000u;
            else if (a->since_ckpt > 0 && a->cfg.checkpoint_interval_ms > 0) {
                uint64_t due = a->unsealed_since_ns +
                               (uint64_t)a->cfg.checkpoint_interval_ms * 1000000u;
                wait = due > now ? due - now : 0;
            }
            struct timespec ts;
            deadline_after(&ts, wait);
            a->writer_waiting = true;
            pthread_cond_timedwait(&a->work, &a->mu, &ts);
            a->writer_waiting = false;
            if (!failed || a->q_head != NULL || a->stop)
                continue;
        }
        // Group commit: in fsync mode, gather records until the interval since the last sync
        // has passed or enough are waiting. With durability none no reply waits for the write:
        // records are gathered for one interval after the first, so a busy loop wakes the
        // writer (and pays its write) once per interval rather than once per record.
        bool gather = a->cfg.durability == GF_AUDIT_DURABLE_FSYNC ||
                      a->cfg.durability == GF_AUDIT_DURABLE_NONE;
        if (a->q_head && !a->stop && !failed && gather && a->cfg.commit_interval_ms > 0) {
            uint64_t interval = (uint64_t)a->cfg.commit_interval_ms * 1000000u;
            uint64_t due = a->cfg.durability == GF_AUDIT_DURABLE_NONE ? now + interval
                                                                       : a->last_sync_ns + interval;
            while (!a->stop && a->q_len < (size_t)a->cfg.commit_max_records &&
                   (now = gf_now_ns()) < due) {
                struct timespec ts;
                deadline_after(&ts, due - now);
                a->writer_waiting = true;
                pthread_cond_timedwait(&a->work, &a->mu, &ts);
                a->writer_waiting = false;
            }
        }
        struct item *list = a->q_head, *last = NULL;
        size_t taken = 0;
        for (struct item *it = list; it && taken < (size_t)a->cfg.commit_max_records; it = it->next) {
            last = it;
            taken++;
        }
        if (last) {
            a->q_head = last->next;
            if (a->q_head == NULL)
                a->q_tail = NULL;
            last->next = NULL;
            a->q_len -= taken;
        }
        bool stopping = a->stop && a->q_head == NULL;
        pthread_mutex_unlock(&a->mu);

        if (atomic_load(&a->failed))
            try_recover(a);
        if (atomic_load(&a->failed)) {
            a->lost += taken;
            fail_from(list, GF_EIO);
        } else if (list || stopping) {
            write_items(a, list, stopping);
        } else if (ckpt_due(a, gf_now_ns())) {
            batch_begin(a);
            if (add_checkpoint(a) != 0 || batch_commit(a, true) != 0)
                atomic_store(&a->failed, true);
        }
        finish(a, list);
        pthread_mutex_lock(&a->mu);
        if (stopping)
            break;
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ---- the loop side ------------------------------------------------------------------------ */

void gf_audit_poll(struct gf_audit *a)
{
    pthread_mutex_lock(&a->mu);
    struct item *list = a->done_head;
    a->done_head = a->done_tail = NULL;
    pthread_mutex_unlock(&a->mu);
    for (struct item *it = list, *next; it; it = next) {
        next = it->next;
        if (it->cb)
            it->cb(it->ud, it->status, it->seq);
        gf_free(it->body);
        gf_free(it);
    }
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
    if (what & EV_READ) { // the writer's wake-up; EV_TIMEOUT alone: made active by enqueue
        uint64_t v;
        ssize_t r = read(fd, &v, sizeof(v));
        (void)r;
    }
    gf_audit_poll(arg);
}

void gf_audit_flush(struct gf_audit *a)
{
    pthread_mutex_lock(&a->mu);
    uint64_t target = a->enqueued;
    pthread_cond_signal(&a->work);
    while (a->completed < target)
        pthread_cond_wait(&a->idle, &a->mu);
    pthread_mutex_unlock(&a->mu);
    gf_audit_poll(a);
}

/* Called on the loop thread. The writer is signalled only when it sleeps and has a reason to
 * wake: the queue was empty, or a group commit now has its record count; records that arrive
 * while it works are taken with the current batch without a wake-up each. */
static void enqueue(struct gf_audit *a, struct item *it, struct item *done_now)
{
    pthread_mutex_lock(&a->mu);
    bool was_empty = a->q_head == NULL;
    if (a->q_tail)
        a->q_tail->next = it;
    else
        a->q_head = it;
    a->q_tail = it;
    a->q_len++;
    a->enqueued++;
    bool wake_loop = false;
    if (done_now) {
        // Even when the list is not empty: the wake-up pending then may be the writer's
        // eventfd, seen only on the next turn of the loop, and the reply would wait for it.
        wake_loop = true;
        if (a->done_tail)
            a->done_tail->next = done_now;
        else
            a->done_head = done_now;
        a->done_tail = done_now;
    }
    bool wake_writer =
        a->writer_waiting && (was_empty || a->q_len >= (size_t)a->cfg.commit_max_records);
    pthread_mutex_unlock(&a->mu);
    if (wake_writer) // after unlocking, so the writer does not wake only to block on mu
        pthread_cond_signal(&a->work);
    // We are on the loop thread: make the completion event active directly (no eventfd
    // write, nor a read of it); its callback drains the done list in this same turn of the
    // loop, after the callbacks already queued.
    if (wake_loop && a->ev != NULL)
        event_active(a->ev, EV_TIMEOUT, 1);
}

/* Queues a finished body (taken over). */
static int submit(struct gf_audit *a, struct gf_buf *body, gf_audit_done_fn cb, void *ud)
{
    struct item *it = gf_calloc(1, sizeof(*it)), *done = NULL;
    if (it == NULL)
        return GF_ENOMEM;
    if (a->cfg.durability == GF_AUDIT_DURABLE_NONE && cb != NULL) {
        if ((done = gf_calloc(1, sizeof(*done))) == NULL) {
            gf_free(it);
            return GF_ENOMEM;
        }
        done->cb = cb;
        done->ud = ud;
        cb = NULL;
    }
    it->len = body->len;
    if ((it->body = gf_buf_steal(body)) == NULL) {
        gf_free(it);
        gf_free(done);
        return GF_ENOMEM;
    }
    it->cb = cb;
    it->ud = ud;
    enqueue(a, it, done);
    return 0;
}

int gf_audit_log_request(struct gf_audit *a, const struct gf_audit_request *r, gf_audit_done_fn cb,
                         void *ud)
{
    if (atomic_load(&a->failed))
        return GF_EIO;
    struct gf_buf b;
    gf_buf_init(&b, AUDIT_MAX_LINE - 256);
    // A record without texts is 500-700 bytes: one allocation rather than three growing ones,
    // of 1 KiB (room for 1000 bytes and the NUL rounds up to it), a size glibc keeps freed blocks
    // of for the thread to reuse; a 2 KiB block went to the arena for every record.
    int rc = gf_buf_reserve(&b, 1000);
    rc = rc ? rc : audit_body_request(&b, r, a->cfg.retention);
    if (rc == GF_ETOOBIG) { // text too long to keep: keep its digest, like retention hashes
        gf_buf_reset(&b);
        rc = audit_body_request(&b, r, GF_AUDIT_RETAIN_HASHES);
    }
    if (rc == 0)
        rc = submit(a, &b, cb, ud);
    gf_buf_cleanup(&b);
    return rc;
}

int gf_audit_log_admin(struct gf_audit *a, const char *action, const char *subject,
                       const cJSON *detail, gf_audit_done_fn cb, void *ud)
{
    if (atomic_load(&a->failed))
        return GF_EIO;
    struct gf_buf b;
    gf_buf_init(&b, AUDIT_MAX_LINE - 256);
    // Validated whole: cJSON prints a string's bytes as they are, and one invalid line would
    // read as tampering.
    int rc = gf_buf_putc(&b, '{');
    rc = rc ? rc : audit_body_admin(&b, action, subject, detail);
    if (rc == 0 && !gf_audit_json_valid(b.data, b.len))
        rc = GF_EINVAL;
    if (rc == 0)
        gf_buf_consume(&b, 1);
    if (rc == 0)
        rc = submit(a, &b, cb, ud);
    gf_buf_cleanup(&b);
    return rc;
}

bool gf_audit_writable(const struct gf_audit *a)
{
    return !atomic_load(&((struct gf_audit *)a)->failed);
}

int gf_audit_retry_after_s(const struct gf_audit *a)
{
    int s = (a->cfg.retry_interval_ms + 999) / 1000;
    return s < 1 ? 1 : s;
}

const struct gf_audit_config *gf_audit_config(const struct gf_audit *a)
{
    return &a->cfg;
}

void gf_audit_get_stats(struct gf_audit *a, struct gf_audit_stats *out)
{
    pthread_mutex_lock(&a->mu);
    *out = a->stats;
    pthread_mutex_unlock(&a->mu);
}

/* ---- open / close -------------------------------------------------------------------------- */

static int check_config(const struct gf_audit_config *c, struct gf_err *err)
{
    if (c->dir == NULL || *c->dir == '\0')
        return gf_err_set(err, GF_EINVAL, "audit.dir: must be set");
    if ((unsigned)c->retention > GF_AUDIT_RETAIN_FULL)
        return gf_err_set(err, GF_EINVAL, "audit.retention: expected hashes, redacted or full");
    if ((unsigned)c->durability > GF_AUDIT_DURABLE_NONE)
        return gf_err_set(err, GF_EINVAL, "audit.durability: expected fsync, write or none");
    if (c->checkpoint_every < 1)
        return gf_err_set(err, GF_EINVAL, "audit.checkpoint_every: must be >= 1");
    if (c->checkpoint_interval_ms < 0)
        return gf_err_set(err, GF_EINVAL, "audit.checkpoint_interval_ms: must be >= 0");
    if (c->segment_max_bytes < 4096)
        return gf_err_set(err, GF_EINVAL, "audit.segment_max_bytes: must be >= 4096");
    if (c->commit_interval_ms < 0 || c->commit_interval_ms > 1000)
        return gf_err_set(err, GF_EINVAL, "audit.commit_interval_ms: must be in [0, 1000]");
    if (c->commit_max_records < 1)
        return gf_err_set(err, GF_EINVAL, "audit.commit_max_records: must be >= 1");
    if (c->retry_interval_ms < 1)
        return gf_err_set(err, GF_EINVAL, "audit.retry_interval_ms: must be >= 1");
    return 0;
}

/* Creates dir and its missing parents (0700). Returns 0 or -1 with errno set. */
static int mkdir_p(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        char c = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -1;
        path[i] = c;
    }
    return 0;
}

static void destroy(struct gf_audit *a)
{
    if (a->ev)
        event_free(a->ev);
    if (a->efd >= 0)
        close(a->efd);
    if (a->fd >= 0)
        close(a->fd);
    for (struct item *it = a->q_head, *next; it; it = next) {
        next = it->next;
        gf_free(it->body);
        gf_free(it);
    }
    for (struct item *it = a->done_head, *next; it; it = next) {
        next = it->next;
        gf_free(it->body);
        gf_free(it);
    }
    audit_manifest_cleanup(&a->man);
    gf_buf_cleanup(&a->batch);
    gf_buf_cleanup(&a->line);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->work);
    pthread_cond_destroy(&a->idle);
    gf_free(a->dir);
    gf_free(a->key_file);
    gf_free(a);
}

/* Queues an admin record made at open (no callback). */
static int queue_admin(struct gf_audit *a, const char *action, const cJSON *detail)
{
    struct gf_buf b;
    gf_buf_init(&b, 1u << 20);
    int rc = audit_body_admin(&b, action, NULL, detail);
    if (rc == 0)
        rc = submit(a, &b, NULL, NULL);
    gf_buf_cleanup(&b);
    return rc;
}

static int startup_records(struct gf_audit *a, const struct audit_tail *t)
{
    int rc = GF_ENOMEM;
    cJSON *d = NULL;
    if (t->torn) {
        char sha[AUDIT_HEX_LEN + 1];
        gf_hex(t->torn_sha, GF_SHA256_LEN, sha);
        if ((d = cJSON_CreateObject()) == NULL ||
            !cJSON_AddStringToObject(d, "segment", t->seg) ||
            !cJSON_AddNumberToObject(d, "offset", (double)t->torn_offset) ||
            !cJSON_AddNumberToObject(d, "bytes", (double)t->torn_bytes) ||
            !cJSON_AddStringToObject(d, "sha256", sha) ||
            !cJSON_AddStringToObject(d, "moved_to", t->torn_file) ||
            !cJSON_AddStringToObject(d, "reason", t->torn_reason))
            goto out;
        if ((rc = queue_admin(a, "audit_torn_tail", d)) != 0)
            goto out;
        cJSON_Delete(d);
    }
    rc = GF_ENOMEM;
    if ((d = cJSON_CreateObject()) == NULL || !cJSON_AddStringToObject(d, "version", GF_VERSION) ||
        !cJSON_AddStringToObject(d, "retention", gf_audit_retention_name(a->cfg.retention)) ||
        !cJSON_AddStringToObject(d, "durability", gf_audit_durability_name(a->cfg.durability)) ||
        !cJSON_AddStringToObject(d, "key_id", a->key_id))
        goto out;
    rc = queue_admin(a, "audit_started", d);
out:
    cJSON_Delete(d);
    return rc;
}

int gf_audit_open(const struct gf_audit_config *cfg, struct event_base *base, struct gf_audit **out,
                  struct gf_err *err)
{
    *out = NULL;
    int rc = check_config(cfg, err);
    if (rc != 0)
        return rc;
    struct gf_audit *a = gf_calloc(1, sizeof(*a));
    if (a == NULL)
        return gf_err_set(err, GF_ENOMEM, "audit: out of memory");
    a->cfg = *cfg;
    a->fd = a->efd = -1;
    a->base = base;
    pthread_mutex_init(&a->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&a->work, &ca);
    pthread_cond_init(&a->idle, NULL);
    pthread_condattr_destroy(&ca);
    gf_buf_init(&a->batch, 4 * AUDIT_MAX_LINE);
    gf_buf_init(&a->line, AUDIT_MAX_LINE);
    a->dir = gf_strdup(cfg->dir);
    a->key_file = cfg->key_file ? gf_strdup(cfg->key_file) : gf_audit_default_key_path(cfg->dir);
    if (a->dir == NULL || a->key_file == NULL) {
        rc = gf_err_set(err, GF_ENOMEM, "audit: out of memory");
        goto fail;
    }
    a->cfg.dir = a->dir;
    a->cfg.key_file = a->key_file;
    if (mkdir_p(a->dir) != 0) {
        rc = gf_err_set(err, GF_EIO, "audit.dir: %s: %s", a->dir, strerror(errno));
        goto fail;
    }
    if ((rc = gf_audit_key_load(a->key_file, true, a->key, err)) != 0)
        goto fail;
    audit_key_id(a->key, a->key_id);
    struct audit_tail t;
    if ((rc = audit_recover(a->dir, a->key, &a->man, &t, err)) != 0)
        goto fail;
    snprintf(a->seg, sizeof(a->seg), "%s", t.seg);
    a->seg_len = t.seg_len;
    a->seq = t.seq;
    memcpy(a->head, t.head, GF_SHA256_LEN);
    a->since_ckpt = t.since_ckpt;
    a->unsealed_since_ns = gf_now_ns();
    a->stats.last_seq = a->seq;
    char *path = audit_path(a->dir, a->seg);
    if (path == NULL) {
        rc = gf_err_set(err, GF_ENOMEM, "audit: out of memory");
        goto fail;
    }
    a->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    gf_free(path);
    if (a->fd < 0) {
        rc = gf_err_set(err, GF_EIO, "audit: %s: %s", a->seg, strerror(errno));
        goto fail;
    }
    if (base != NULL) {
        a->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (a->efd < 0) {
            rc = gf_err_set(err, GF_EIO, "audit: eventfd: %s", strerror(errno));
            goto fail;
        }
        a->ev = event_new(base, a->efd, EV_READ | EV_PERSIST, on_event, a);
        if (a->ev == NULL || event_add(a->ev, NULL) != 0) {
            rc = gf_err_set(err, GF_ENOMEM, "audit: cannot add the completion event");
            goto fail;
        }
    }
    if ((rc = startup_records(a, &t)) != 0) {
        rc = gf_err_set(err, rc, "audit: out of memory");
        goto fail;
    }
    if (pthread_create(&a->thread, NULL, writer_main, a) != 0) {
        rc = gf_err_set(err, GF_ENOMEM, "audit: cannot start the writer thread");
        goto fail;
    }
    a->thread_started = true;
    gf_log(GF_LOG_INFO, "audit",
           "event=opened dir=%s segment=%s seq=%" PRIu64 " retention=%s durability=%s", a->dir,
           a->seg, a->seq, gf_audit_retention_name(a->cfg.retention),
           gf_audit_durability_name(a->cfg.durability));
    *out = a;
    return 0;
fail:
    destroy(a);
    return rc;
}

void gf_audit_close(struct gf_audit *a)
{
    if (a == NULL)
        return;
    if (a->thread_started) {
        if (!atomic_load(&a->failed))
            queue_admin(a, "audit_stopped", NULL); // best effort: a failing log cannot take it
        pthread_mutex_lock(&a->mu);
        a->stop = true;
        pthread_cond_signal(&a->work);
        pthread_mutex_unlock(&a->mu);
        pthread_join(a->thread, NULL);
    }
    gf_audit_poll(a);
    gf_log(GF_LOG_INFO, "audit", "event=closed seq=%" PRIu64, a->seq);
    destroy(a);
}
