/* keys_usage.c — the daily token counts of the local limiter survive a restart: they are
 * snapshotted to DATA_DIR/keys/usage.json every keys.usage_snapshot_ms (when they changed) and
 * at shutdown, and loaded at start. The file is replaced atomically (usage.tmp, fsync, rename,
 * directory fsync), so it is always a whole snapshot: a crash or power loss forgets at most the
 * tokens counted since the last snapshot, never the quota state as a whole. The write runs on a
 * thread of its own so that fsync never stalls the event loop. Only today's (UTC) counts are
 * kept; the per-minute buckets restart full, which over-admits by at most one minute's budget. */
#include "gateway/keys_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#define DAY_MS        86400000ll
#define USAGE_FILE_MAX (64u << 20) // 64 MiB: about a million keys; more is damage

/* ---- the file ----------------------------------------------------------------------------- */

struct dump {
    struct gf_buf *b;
    size_t n;
};

static int put_entry(void *ud, const char *key_id, int64_t day, int64_t used)
{
    struct dump *d = ud;
    // Key ids are "key_" + base62: nothing to escape.
    return gf_buf_printf(d->b, "%s\n  {\"id\":\"%s\",\"day\":%" PRId64 ",\"used\":%" PRId64 "}",
                         d->n++ ? "," : "", key_id, day, used);
}

int gf_keys_usage_dump(struct gf_keys *k, int64_t now_ms, struct gf_buf *out)
{
    gf_buf_reset(out);
    struct dump d = {out, 0};
    int rc = gf_buf_printf(out, "{\"version\":1,\"saved_at\":%" PRId64 ",\"keys\":[", now_ms);
    if (rc == 0 && k->lim->ops->usage_each)
        rc = k->lim->ops->usage_each(k->lim, put_entry, &d);
    return rc ? rc : gf_buf_puts(out, "\n]}\n");
}

int gf_keys_usage_write(const char *path, const char *data, size_t len, struct gf_err *err)
{
    char tmp[4200], dir[4200];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if (n < 0 || (size_t)n >= sizeof(tmp))
        return gf_err_set(err, GF_EINVAL, "%s: path too long", path);
    // The directory holding path, fsynced after the rename: "." or "/" at the ends.
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else
        slash[slash == dir] = '\0';
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return gf_err_set(err, GF_EIO, "%s: %s", tmp, strerror(errno));
    int rc = 0;
    for (size_t off = 0; rc == 0 && off < len;) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = gf_err_set(err, GF_EIO, "%s: %s", tmp, w < 0 ? strerror(errno) : "short write");
        else
            off += (size_t)w;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = gf_err_set(err, GF_EIO, "%s: fsync: %s", tmp, strerror(errno));
    close(fd);
    if (rc == 0 && rename(tmp, path) != 0)
        rc = gf_err_set(err, GF_EIO, "%s: %s", path, strerror(errno));
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { // the rename itself must survive a power loss
        if (fsync(dfd) != 0)
            rc = gf_err_set(err, GF_EIO, "%s: fsync: %s", dir, strerror(errno));
        close(dfd);
    }
    return rc;
}

/* Reads the whole file; GF_ENOTFOUND when it does not exist. */
static int read_file(const char *path, char **out, size_t *len, struct gf_err *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? GF_ENOTFOUND
                               : gf_err_set(err, GF_EIO, "%s: %s", path, strerror(errno));
    struct gf_buf b;
    gf_buf_init(&b, USAGE_FILE_MAX);
    int rc = 0;
    char chunk[65536];
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = gf_err_set(err, GF_EIO, "%s: %s", path, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        if ((rc = gf_buf_append(&b, chunk, (size_t)r)) != 0) {
            gf_err_set(err, rc, "%s: %s", path, rc == GF_ETOOBIG ? "too large" : "out of memory");
            break;
        }
    }
    close(fd);
    if (rc != 0) {
        gf_buf_cleanup(&b);
        return rc;
    }
    *len = b.len;
    *out = gf_buf_steal(&b);
    gf_buf_cleanup(&b);
    return *out ? 0 : gf_err_set(err, GF_ENOMEM, "out of memory");
}

/* Applies today's entries of a parsed file; GF_EFORMAT names the first bad entry. */
static int apply(struct gf_keys *k, const cJSON *root, int64_t today, size_t *restored,
                 struct gf_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *keys = cJSON_GetObjectItemCaseSensitive(root, "keys");
    if (!cJSON_IsNumber(v) || v->valuedouble != 1 || !cJSON_IsArray(keys))
        return gf_err_set(err, GF_EFORMAT, "expected {\"version\":1,\"keys\":[...]}");
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, keys)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "id");
        const cJSON *day = cJSON_GetObjectItemCaseSensitive(e, "day");
        const cJSON *used = cJSON_GetObjectItemCaseSensitive(e, "used");
        if (!cJSON_IsString(id) || strlen(id->valuestring) > GF_KEYID_LEN ||
            !cJSON_IsNumber(day) || day->valuedouble < 0 || day->valuedouble > 1e9 ||
            !cJSON_IsNumber(used) || used->valuedouble < 0 || used->valuedouble > 9e15)
            return gf_err_set(err, GF_EFORMAT, "keys[%zu]: expected {\"id\",\"day\",\"used\"}", i);
        i++;
        if ((int64_t)day->valuedouble != today)
            continue; // another day's count: that day's quota is over
        int rc = k->lim->ops->usage_restore(k->lim, id->valuestring, today,
                                            (int64_t)used->valuedouble);
        if (rc != 0)
            return gf_err_set(err, rc, "keys[%zu]: %s", i - 1, gf_strerror(rc));
        (*restored)++;
    }
    return 0;
}

int gf_keys_usage_load(struct gf_keys *k, const char *path, int64_t now_ms, struct gf_err *err)
{
    if (k->lim->ops->usage_restore == NULL)
        return 0; // the limiter keeps its own state
    char *data = NULL;
    size_t len = 0;
    int rc = read_file(path, &data, &len, err);
    if (rc == GF_ENOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    unsigned long oom_before = gf_json_alloc_failures();
    cJSON *root = cJSON_ParseWithLength(data, len);
    size_t restored = 0;
    if (root == NULL)
        rc = gf_json_alloc_failures() != oom_before ? gf_err_set(err, GF_ENOMEM, "out of memory")
                                      : gf_err_set(err, GF_EFORMAT, "not valid JSON");
    else
        rc = apply(k, root, now_ms / DAY_MS, &restored, err);
    cJSON_Delete(root);
    gf_free(data);
    if (rc == 0)
        gf_log(GF_LOG_INFO, "keys", "event=usage_loaded keys=%zu", restored);
    else
        gf_err_prefix(err, path);
    return rc;
}

/* ---- the periodic saver ------------------------------------------------------------------- */

struct gf_usage_saver {
    struct gf_keys *keys;
    char *path;
    struct event *timer;
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct gf_buf pending; // a snapshot for the thread to write (len 0 = none)
    bool busy, stop;
    uint64_t saved_version; // usage_version of the last snapshot handed over
    atomic_bool failed;     // the thread's last write failed: retry at the next tick
    uint64_t writes;
};

static void *saver_main(void *arg)
{
    struct gf_usage_saver *s = arg;
    struct gf_buf mine;
    gf_buf_init(&mine, USAGE_FILE_MAX);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->busy && !s->stop)
            pthread_cond_wait(&s->cv, &s->mu);
        if (!s->busy)
            break;
        struct gf_buf t = mine; // swap: the loop fills pending while we write
        mine = s->pending;
        s->pending = t;
        pthread_mutex_unlock(&s->mu);
        struct gf_err err = {0};
        int rc = gf_keys_usage_write(s->path, mine.data, mine.len, &err);
        if (rc != 0)
            gf_log(GF_LOG_ERROR, "keys", "event=usage_snapshot_failed msg=\"%s\"", err.msg);
        atomic_store(&s->failed, rc != 0);
        pthread_mutex_lock(&s->mu);
        s->writes++;
        s->busy = false;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    gf_buf_cleanup(&mine);
    return NULL;
}

/* Hands a snapshot to the thread when the counts changed and it is idle. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct gf_usage_saver *s = arg;
    uint64_t v = s->keys->lim->ops->usage_version(s->keys->lim);
    bool failed = atomic_exchange(&s->failed, false);
    pthread_mutex_lock(&s->mu);
    if (!s->busy && (failed || v != s->saved_version)) { // a failed write is tried again
        if (gf_keys_usage_dump(s->keys, gf_wall_ms(), &s->pending) == 0) {
            s->saved_version = v;
            s->busy = true;
            pthread_cond_signal(&s->cv);
        } else {
            gf_log(GF_LOG_ERROR, "keys", "event=usage_snapshot_failed msg=\"out of memory\"");
        }
    }
    pthread_mutex_unlock(&s->mu);
}

int gf_usage_saver_start(struct event_base *base, struct gf_keys *k, const char *path,
                         int interval_ms, struct gf_usage_saver **out, struct gf_err *err)
{
    *out = NULL;
    if (k->lim->ops->usage_each == NULL || k->lim->ops->usage_version == NULL)
        return 0; // nothing to keep: the limiter is shared and keeps its own state
    int rc = gf_keys_usage_load(k, path, gf_wall_ms(), err);
    if (rc != 0)
        return rc;
    struct gf_usage_saver *s = gf_calloc(1, sizeof(*s));
    if (s == NULL || (s->path = gf_strdup(path)) == NULL) {
        gf_free(s);
        return gf_err_set(err, GF_ENOMEM, "out of memory");
    }
    s->keys = k;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    gf_buf_init(&s->pending, USAGE_FILE_MAX);
    s->saved_version = k->lim->ops->usage_version(k->lim); // what the file already says
    if (interval_ms > 0) {
        s->timer = event_new(base, -1, EV_PERSIST, on_tick, s);
        struct timeval tv = {interval_ms / 1000, (interval_ms % 1000) * 1000};
        if (s->timer == NULL || event_add(s->timer, &tv) != 0) {
            gf_usage_saver_stop(s);
            return gf_err_set(err, GF_ENOMEM, "keys: cannot start the usage snapshot timer");
        }
        if (pthread_create(&s->thread, NULL, saver_main, s) != 0) {
            gf_usage_saver_stop(s);
            return gf_err_set(err, GF_ENOMEM, "keys: cannot start the usage snapshot thread");
        }
        s->thread_started = true;
    }
    *out = s;
    return 0;
}

int gf_usage_saver_stop(struct gf_usage_saver *s)
{
    if (s == NULL)
        return 0;
    if (s->timer)
        event_free(s->timer);
    if (s->thread_started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    // The last word: whatever was counted since the last snapshot (the requests in flight
    // were charged when the gateway shut down, before this runs).
    int rc = 0;
    if (atomic_load(&s->failed) ||
        s->keys->lim->ops->usage_version(s->keys->lim) != s->saved_version) {
        struct gf_err err = {0};
        rc = gf_keys_usage_dump(s->keys, gf_wall_ms(), &s->pending);
        if (rc == 0)
            rc = gf_keys_usage_write(s->path, s->pending.data, s->pending.len, &err);
        else
            gf_err_set(&err, rc, "out of memory");
        if (rc != 0)
            gf_log(GF_LOG_ERROR, "keys", "event=usage_snapshot_failed msg=\"%s\"", err.msg);
    }
    gf_buf_cleanup(&s->pending);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    gf_free(s->path);
    gf_free(s);
    return rc;
}
