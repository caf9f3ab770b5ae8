/* test_faults.c — the audit writer, recovery and verifier under failing system calls and hostile
 * directories. io_fault.h interposes open, read, write, fsync, fdatasync, ftruncate, truncate,
 * rename, opendir, eventfd, fstat and pthread_create; a loop fails the 1st, 2nd, ... call of each
 * kind (EIO, and EINTR for the calls that retry it) over a whole life of a log — recovery of a
 * torn tail, appends across checkpoints and rotations, close, verify — until a run passes without
 * reaching the fault. Every failing run must end in a clean error or a recovered log: after the
 * fault the log reopens, takes records and verifies. Then directories a crash or an attacker could
 * leave: a manifest naming a segment that was never created, segments without a manifest, an
 * unlisted or renamed segment, a record longer than the 16 MiB limit, an empty last segment after
 * a damaged one; and the writer's bad configurations, a batch over 1 MiB, periodic checkpoints,
 * and allocation failures of the none-durability path. */
#include "tests/unit/audit/io_fault.h"

#include "tests/unit/audit/audit_util.h"
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

#include "audit/audit_int.h"

static atomic_int pthread_countdown;

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    if (atomic_load(&pthread_countdown) > 0 && atomic_fetch_sub(&pthread_countdown, 1) == 1) {
        atomic_fetch_add(&io_fired, 1);
        return EAGAIN;
    }
    return IO_NEXT("pthread_create",
                   int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))(
        t, attr, fn, arg);
}

#define Z8      "00000000"
#define ZEROS64 Z8 Z8 Z8 Z8 Z8 Z8 Z8 Z8
#define ZEROS63 "0000000" Z8 Z8 Z8 Z8 Z8 Z8 Z8
#define ONES64  "1111111111111111111111111111111111111111111111111111111111111111"

static char base[64], dir[128], keyfile[160];

static void fresh(void)
{
    if (base[0])
        rm_rf(base);
    snprintf(base, sizeof(base), "/dev/shm/gf-faults-XXXXXX");
    if (mkdtemp(base) == NULL)
        scratch(base);
    snprintf(dir, sizeof(dir), "%s/audit", base);
    snprintf(keyfile, sizeof(keyfile), "%s/audit.key", base);
}

static void small_config(struct gf_audit_config *c)
{
    test_config(c, dir);
    c->segment_max_bytes = 4096; // a rotation every few records
    c->retry_interval_ms = 2;
}

static void wait_writable(struct gf_audit *a)
{
    for (int i = 0; i < 5000 && !gf_audit_writable(a); i++)
        usleep(1000);
}

/* A log of two segments whose last one ends in a torn line: recovery has work to do. */
static void make_template(void)
{
    fresh();
    struct gf_audit_config c;
    small_config(&c);
    REQUIRE(make_log(&c, 12) == 0);
    char p[512];
    seg_path(dir, count_segments(dir) - 1, p);
    FILE *f = fopen(p, "ab");
    fputs("{\"seq\":99,\"prev\":\"00", f); // torn
    fclose(f);
}

/* One life of the log with whatever fault is armed. Returns gf_audit_open's result. */
static int life(void)
{
    struct gf_audit_config c;
    small_config(&c);
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    int rc = gf_audit_open(&c, NULL, &a, &err);
    if (rc != 0) {
        if (err.msg[0] == '\0')
            fprintf(stderr, "open failed (%d) without a message\n", rc);
        return err.msg[0] ? rc : -1000;
    }
    append_n(a, 100, 12, NULL);
    gf_audit_flush(a);
    wait_writable(a); // a failed write: the writer recovers on its own
    append_n(a, 200, 4, NULL);
    gf_audit_close(a);
    struct gf_audit_verify_result r;
    uint8_t key[GF_AUDIT_KEY_LEN];
    if (gf_audit_key_load(keyfile, false, key, &err) == 0)
        (void)gf_audit_verify(dir, key, &r, &err); // may fail under the fault: must not crash
    return 0;
}

/* After a fault: the log must open, take records and verify. */
static bool healthy(void)
{
    struct gf_audit_config c;
    small_config(&c);
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    if (gf_audit_open(&c, NULL, &a, &err) != 0) {
        fprintf(stderr, "  reopen: %s\n", err.msg);
        return false;
    }
    append_n(a, 300, 3, NULL);
    gf_audit_close(a);
    struct gf_audit_verify_result r;
    return verify_ok(dir, keyfile, &r);
}

static void fault_loop(enum io_call kind, int err)
{
    int steps = 0, bad = 0;
    for (int n = 1; n < 2000; n++) {
        make_template();
        io_reset();
        io_fail(kind, n, err);
        int rc = life();
        bool fired = atomic_load(&io_fired) > 0;
        io_reset();
        steps++;
        if (rc == -1000 || !healthy()) {
            fprintf(stderr, "  %s #%d (errno %d): open rc %d\n", io_call_names[kind], n, err, rc);
            bad++;
        }
        if (!fired)
            break;
    }
    printf("%-10s errno %-2d: %d steps\n", io_call_names[kind], err, steps);
    CHECK_MSG(bad == 0, "%s: %d of %d steps left a broken log", io_call_names[kind], bad, steps);
}

/* The same on an empty directory: the log is created under the fault. */
static void fault_loop_new(enum io_call kind)
{
    int steps = 0, bad = 0;
    for (int n = 1; n < 2000; n++) {
        fresh();
        io_reset();
        io_fail(kind, n, EIO);
        int rc = life();
        bool fired = atomic_load(&io_fired) > 0;
        io_reset();
        steps++;
        if (rc == -1000 || !healthy()) {
            fprintf(stderr, "  new log, %s #%d: open rc %d\n", io_call_names[kind], n, rc);
            bad++;
        }
        if (!fired)
            break;
    }
    CHECK_MSG(bad == 0, "new log, %s: %d of %d steps left a broken log", io_call_names[kind],
              bad, steps);
}

static void test_syscall_faults(void)
{
    for (int k = 0; k < IO_N; k++)
        fault_loop_new((enum io_call)k);
    for (int k = 0; k < IO_N; k++)
        fault_loop((enum io_call)k, k == IO_WRITE ? ENOSPC : EIO);
    // EINTR is retried where the code loops on it (writes and reads of the log).
    fault_loop(IO_WRITE, EINTR);
    fault_loop(IO_READ, EINTR);
}

static void test_pthread_create_fails(void)
{
    make_template();
    struct gf_audit_config c;
    small_config(&c);
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    atomic_store(&pthread_countdown, 1);
    CHECK(gf_audit_open(&c, NULL, &a, &err) == GF_ENOMEM && a == NULL);
    CHECK(strstr(err.msg, "thread") != NULL);
    atomic_store(&pthread_countdown, 0);
    CHECK(healthy());
}

/* A loop-attached log whose eventfd cannot be made. */
static void test_eventfd_fails(void)
{
    make_template();
    struct event_base *eb = event_base_new();
    struct gf_audit_config c;
    small_config(&c);
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    io_reset();
    io_fail(IO_EVENTFD, 1, EMFILE);
    CHECK(gf_audit_open(&c, eb, &a, &err) == GF_EIO && strstr(err.msg, "eventfd"));
    io_reset();
    event_base_free(eb);
    CHECK(healthy());
}

/* ---- hostile and crash-made directories -------------------------------------------------- */

static int open_rc(char *msg, size_t msglen)
{
    struct gf_audit_config c;
    small_config(&c);
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    int rc = gf_audit_open(&c, NULL, &a, &err);
    snprintf(msg, msglen, "%s", err.msg);
    gf_audit_close(a);
    return rc;
}

static void test_manifest_names_missing_segment(void)
{
    // A crash between rewriting the manifest for a new segment and creating its file: the
    // named segment is created at open and used.
    fresh();
    struct gf_audit_config c;
    small_config(&c);
    REQUIRE(make_log(&c, 12) == 0);
    REQUIRE(count_segments(dir) >= 2);
    uint8_t key[GF_AUDIT_KEY_LEN];
    struct gf_err err = {0};
    REQUIRE(gf_audit_key_load(keyfile, false, key, &err) == 0);
    struct audit_manifest man;
    memset(&man, 0, sizeof(man));
    REQUIRE(audit_manifest_read(dir, key, &man, &err) == 0);
    struct gf_audit_verify_result vr;
    REQUIRE(verify_ok(dir, keyfile, &vr));
    char next[AUDIT_SEG_NAME_MAX], p[512], msg[512];
    audit_seg_name(vr.last_seq + 1, next); // as rotate() names it before creating the file
    REQUIRE(audit_manifest_add(&man, next) == 0);
    REQUIRE(audit_manifest_write(dir, key, &man, &err) == 0);
    CHECK(open_rc(msg, sizeof(msg)) == 0);
    CHECK(verify_ok(dir, keyfile, &vr));
    // The manifest names two segments past the last file: the one in between is missing.
    audit_seg_name(vr.last_seq + 50, next);
    REQUIRE(audit_manifest_add(&man, next) == 0);
    REQUIRE(audit_manifest_write(dir, key, &man, &err) == 0);
    seg_path(dir, count_segments(dir) - 1, p); // the segment made by the open above
    remove(p);
    CHECK_MSG(open_rc(msg, sizeof(msg)) == GF_EFORMAT && strstr(msg, "missing"), "%s", msg);
    audit_manifest_cleanup(&man);
}

static void test_manifest_lists_nothing(void)
{
    fresh();
    struct gf_audit_config c;
    small_config(&c);
    REQUIRE(make_log(&c, 3) == 0);
    uint8_t key[GF_AUDIT_KEY_LEN];
    struct gf_err err = {0};
    REQUIRE(gf_audit_key_load(keyfile, false, key, &err) == 0);
    struct audit_manifest empty;
    memset(&empty, 0, sizeof(empty));
    REQUIRE(audit_manifest_write(dir, key, &empty, &err) == 0);
    char p[512], msg[512];
    seg_path(dir, 0, p);
    remove(p);
    CHECK(open_rc(msg, sizeof(msg)) == GF_EFORMAT && strstr(msg, "no segment"));
}

static void test_segments_without_manifest(void)
{
    fresh();
    struct gf_audit_config c;
    small_config(&c);
    REQUIRE(make_log(&c, 3) == 0);
    char m[512], msg[512];
    snprintf(m, sizeof(m), "%s/MANIFEST.json", dir);
    remove(m);
    CHECK(open_rc(msg, sizeof(msg)) == GF_EFORMAT && strstr(msg, "MANIFEST.json is missing"));
}

static void test_unlisted_newest_segment(void)
{
    // The newest segment exists but the manifest does not list it yet (a crash after creating
    // it): recovery adds it.
    fresh();
    struct gf_audit_config c;
    small_config(&c);
    REQUIRE(make_log(&c, 12) == 0);
    uint8_t key[GF_AUDIT_KEY_LEN];
    struct gf_err err = {0};
    REQUIRE(gf_audit_key_load(keyfile, false, key, &err) == 0);
    struct audit_manifest man;
    memset(&man, 0, sizeof(man));
    REQUIRE(audit_manifest_read(dir, key, &man, &err) == 0);
    REQUIRE(man.n_segments >= 2);
    struct gf_audit_verify_result vr;
    REQUIRE(verify_ok(dir, keyfile, &vr));
    char name[AUDIT_SEG_NAME_MAX], p[512], msg[512];
    audit_seg_name(vr.last_seq + 1, name);
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    spit(p, "", 0);
    CHECK(open_rc(msg, sizeof(msg)) == 0);
    CHECK(verify_ok(dir, keyfile, &vr));
    audit_manifest_cleanup(&man);
    // Two unlisted segments: verify calls the older one inserted.
    REQUIRE(audit_manifest_read(dir, key, &man, &err) == 0);
    audit_seg_name(vr.last_seq + 1, name);
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    spit(p, "", 0);
    audit_seg_name(vr.last_seq + 2, name);
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    spit(p, "", 0);
    struct gf_audit_verify_result r;
    uint8_t k2[GF_AUDIT_KEY_LEN];
    REQUIRE(gf_audit_key_load(keyfile, false, k2, &err) == 0);
    REQUIRE(gf_audit_verify(dir, k2, &r, &err) == 0);
    CHECK(!r.ok && strstr(r.reason, "not listed"));
    audit_manifest_cleanup(&man);
}

static void test_renamed_segment(void)
{
    fresh();
    struct gf_audit_config c;
    small_config(&c);
    REQUIRE(make_log(&c, 12) == 0);
    REQUIRE(count_segments(dir) >= 2);
    // Rename the last segment and rewrite the manifest to match: the name no longer says where
    // the chain is.
    uint8_t key[GF_AUDIT_KEY_LEN];
    struct gf_err err = {0};
    REQUIRE(gf_audit_key_load(keyfile, false, key, &err) == 0);
    struct audit_manifest man;
    memset(&man, 0, sizeof(man));
    REQUIRE(audit_manifest_read(dir, key, &man, &err) == 0);
    char old[512], nw[512], name[AUDIT_SEG_NAME_MAX];
    snprintf(old, sizeof(old), "%s/%s", dir, man.segments[man.n_segments - 1]);
    uint64_t first = 0;
    REQUIRE(audit_seg_parse(man.segments[man.n_segments - 1], &first));
    audit_seg_name(first + 1, name);
    snprintf(nw, sizeof(nw), "%s/%s", dir, name);
    REQUIRE(rename(old, nw) == 0);
    free(man.segments[man.n_segments - 1]);
    man.segments[man.n_segments - 1] = strdup(name);
    REQUIRE(audit_manifest_write(dir, key, &man, &err) == 0);
    audit_manifest_cleanup(&man);
    struct gf_audit_verify_result r;
    REQUIRE(gf_audit_verify(dir, key, &r, &err) == 0);
    CHECK(!r.ok && strstr(r.reason, "does not start where the previous one ended"));
}

static void test_empty_last_after_damaged(void)
{
    // The last segment is empty and the one before it is damaged: refused, naming it.
    fresh();
    struct gf_audit_config c;
    small_config(&c);
    REQUIRE(make_log(&c, 12) == 0);
    int ns = count_segments(dir);
    REQUIRE(ns >= 2);
    char last[512], prev[512], msg[512];
    seg_path(dir, ns - 1, last);
    seg_path(dir, ns - 2, prev);
    // Move the last segment's records away: it is empty, the previous ends early.
    spit(last, "", 0);
    char **v = NULL;
    int n = read_lines(prev, &v);
    REQUIRE(n > 0 && v != NULL);
    v[n - 1][1] = 'X'; // damage its last record
    write_lines(prev, v, n);
    free_lines(v, n);
    CHECK(open_rc(msg, sizeof(msg)) == GF_EFORMAT && strstr(msg, "damaged"));
    // A lone segment that claims to start after seq 1: nothing before it.
    fresh();
    REQUIRE(make_log(&c, 2) == 0);
    uint8_t key[GF_AUDIT_KEY_LEN];
    struct gf_err err = {0};
    REQUIRE(gf_audit_key_load(keyfile, false, key, &err) == 0);
    seg_path(dir, 0, prev);
    remove(prev);
    struct audit_manifest man;
    memset(&man, 0, sizeof(man));
    char name[AUDIT_SEG_NAME_MAX];
    audit_seg_name(7, name);
    REQUIRE(audit_manifest_add(&man, name) == 0);
    REQUIRE(audit_manifest_write(dir, key, &man, &err) == 0);
    audit_manifest_cleanup(&man);
    snprintf(last, sizeof(last), "%s/%s", dir, name);
    spit(last, "", 0);
    CHECK(open_rc(msg, sizeof(msg)) == GF_EFORMAT && strstr(msg, "no earlier segment"));
}

static void test_huge_record(void)
{
    // One line past the 16 MiB limit, with and without its newline: a torn tail for recovery,
    // a break for verify.
    fresh();
    struct gf_audit_config c;
    small_config(&c);
    c.segment_max_bytes = 64 << 20;
    REQUIRE(make_log(&c, 2) == 0);
    char p[512], msg[512];
    seg_path(dir, 0, p);
    size_t n = AUDIT_MAX_LINE + 10;
    char *big = malloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\n';
    FILE *f = fopen(p, "ab");
    fwrite(big, 1, n, f); // no newline yet
    fclose(f);
    struct gf_audit_verify_result r;
    uint8_t key[GF_AUDIT_KEY_LEN];
    struct gf_err err = {0};
    REQUIRE(gf_audit_key_load(keyfile, false, key, &err) == 0);
    REQUIRE(gf_audit_verify(dir, key, &r, &err) == 0);
    CHECK(!r.ok && strstr(r.reason, "longer than 16 MiB"));
    f = fopen(p, "ab");
    fputc('\n', f);
    fclose(f);
    CHECK(open_rc(msg, sizeof(msg)) == 0); // set aside as a torn tail
    CHECK(count_files_containing(dir, ".torn-") == 1);
    CHECK(verify_ok(dir, keyfile, &r));
    free(big);
}

static void test_all_segments_removed(void)
{
    fresh();
    struct gf_audit_config c;
    small_config(&c);
    REQUIRE(make_log(&c, 8) == 0);
    for (int k = count_segments(dir) - 1; k >= 0; k--) {
        char p[512];
        seg_path(dir, k, p);
        remove(p);
    }
    struct gf_audit_verify_result r;
    uint8_t key[GF_AUDIT_KEY_LEN];
    struct gf_err err = {0};
    REQUIRE(gf_audit_key_load(keyfile, false, key, &err) == 0);
    REQUIRE(gf_audit_verify(dir, key, &r, &err) == 0);
    CHECK(!r.ok && strstr(r.reason, "missing"));
    // A manifest that lists no segment but sealed a checkpoint: the log is gone.
    struct audit_manifest man;
    memset(&man, 0, sizeof(man));
    man.ckpt_seq = 5;
    REQUIRE(audit_manifest_write(dir, key, &man, &err) == 0);
    REQUIRE(gf_audit_verify(dir, key, &r, &err) == 0);
    CHECK(!r.ok && strstr(r.reason, "ends before the checkpoint") && strcmp(r.file, "MANIFEST.json") == 0);
}

/* Allocation failures anywhere in a life of the log, on the caller's thread and the writer's:
 * the Nth allocation fails (once) for N = 1, 2, ... until a life makes no failing allocation. */
static void test_oom_life(void)
{
    if (!gf_alloc_fail_supported())
        return;
    int steps = 0, bad = 0;
    for (long n = 1; n < 20000; n++) {
        make_template();
        gf_alloc_fail_after(n, false);
        int rc = life();
        unsigned long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        steps++;
        if (rc == -1000 || !healthy()) {
            fprintf(stderr, "  allocation %ld: open rc %d\n", n, rc);
            bad++;
        }
        if (failed == 0)
            break;
    }
    printf("allocation failures: %d steps\n", steps);
    CHECK_MSG(bad == 0 && steps > 50, "%d of %d steps left a broken log", bad, steps);
}

/* The writer cannot remove the empty segment of a failed rotation: logged, and the writer goes
 * on; verify then points at the stray file for an operator. */
static void test_rotation_cleanup_fails(void)
{
    make_template();
    io_reset();
    io_fail(IO_RENAME, 1, EIO); // the first manifest update is a rotation's
    io_fail(IO_UNLINK, 1, EIO);
    CHECK(life() == 0);
    CHECK(atomic_load(&io_fired) == 2);
    io_reset();
    struct gf_audit_verify_result r;
    uint8_t key[GF_AUDIT_KEY_LEN];
    struct gf_err err = {0};
    REQUIRE(gf_audit_key_load(keyfile, false, key, &err) == 0);
    REQUIRE(gf_audit_verify(dir, key, &r, &err) == 0);
    CHECK(!r.ok && strstr(r.reason, "MANIFEST.json"));
}

static int errno0_fsync(void *ud, int fd)
{
    atomic_int *left = ud;
    if (atomic_load(left) > 0) {
        atomic_fetch_sub(left, 1);
        errno = 0; // a failure that does not say why: counted as EIO
        return -1;
    }
    return fdatasync(fd);
}

static void test_odd_failures(void)
{
    // An fsync that fails without errno; writes that fail three times running.
    fresh();
    static atomic_int left;
    atomic_store(&left, 1);
    struct gf_audit_io io = {NULL, errno0_fsync, (void *)&left};
    struct gf_audit_config c;
    small_config(&c);
    c.io = &io;
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_audit_open(&c, NULL, &a, &err) == 0);
    append_n(a, 0, 3, NULL);
    gf_audit_flush(a);
    wait_writable(a);
    CHECK(gf_audit_writable(a));
    io_reset();
    io_fail_times(IO_WRITE, 1, 3, ENOSPC);
    append_n(a, 3, 3, NULL);
    gf_audit_flush(a);
    wait_writable(a);
    CHECK(gf_audit_writable(a) && atomic_load(&io_fired) == 3);
    io_reset();
    // An admin record under allocation failure: a clean GF_ENOMEM at every step.
    int wrong = 0;
    for (long n = 1; n < 100 && gf_alloc_fail_supported(); n++) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "group", "g");
        gf_alloc_fail_after_here(n, false);
        int rc = gf_audit_log_admin(a, "key_created", "key_x", d, NULL, NULL);
        unsigned long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        cJSON_Delete(d);
        if (failed == 0) {
            CHECK(rc == 0);
            break;
        }
        wrong += rc != GF_ENOMEM;
    }
    CHECK(wrong == 0);
    gf_audit_close(a);
    struct gf_audit_verify_result r;
    CHECK(verify_ok(dir, keyfile, &r));
    // Closed while records wait for their group commit, more of them than one commit takes.
    fresh();
    small_config(&c);
    c.commit_interval_ms = 1000;
    c.commit_max_records = 2;
    REQUIRE(gf_audit_open(&c, NULL, &a, &err) == 0);
    static struct done_log log;
    memset(&log, 0, sizeof(log));
    append_n(a, 0, 9, &log);
    gf_audit_close(a);
    CHECK(log.calls == 9 && log.errors == 0);
    CHECK(verify_ok(dir, keyfile, &r));
}

/* Manifests that say less than the directory: no segment listed, one that starts past the
 * files, a checkpoint never sealed, a sealed hash that does not match. */
static void test_manifest_variants(void)
{
    fresh();
    struct gf_audit_config c;
    small_config(&c);
    REQUIRE(make_log(&c, 12) == 0);
    uint8_t key[GF_AUDIT_KEY_LEN];
    struct gf_err err = {0};
    REQUIRE(gf_audit_key_load(keyfile, false, key, &err) == 0);
    struct audit_manifest man;
    memset(&man, 0, sizeof(man));
    REQUIRE(audit_manifest_read(dir, key, &man, &err) == 0);
    struct gf_audit_verify_result r;
    // The sealed checkpoint's hash edited (with a valid manifest MAC): "not the checkpoint".
    struct audit_manifest edited = man;
    edited.ckpt_hash[0] ^= 1;
    REQUIRE(audit_manifest_write(dir, key, &edited, &err) == 0);
    REQUIRE(gf_audit_verify(dir, key, &r, &err) == 0);
    CHECK(!r.ok && strstr(r.reason, "not the checkpoint"));
    // No checkpoint sealed at all: the chain alone, and it verifies.
    edited.ckpt_seq = 0;
    REQUIRE(audit_manifest_write(dir, key, &edited, &err) == 0);
    REQUIRE(gf_audit_verify(dir, key, &r, &err) == 0);
    CHECK(r.ok);
    // A manifest listing no segment while segments exist: recovery lists the last one again.
    struct audit_manifest none;
    memset(&none, 0, sizeof(none));
    REQUIRE(audit_manifest_write(dir, key, &none, &err) == 0);
    char msg[512];
    CHECK_MSG(open_rc(msg, sizeof(msg)) == 0, "%s", msg);
    audit_manifest_cleanup(&man);
    // A manifest whose only segment is past the files: created, and the empty segment's chain
    // head comes from the file before it.
    fresh();
    REQUIRE(make_log(&c, 3) == 0);
    REQUIRE(gf_audit_key_load(keyfile, false, key, &err) == 0);
    REQUIRE(verify_ok(dir, keyfile, &r));
    struct audit_manifest one;
    memset(&one, 0, sizeof(one));
    char name[AUDIT_SEG_NAME_MAX];
    audit_seg_name(r.last_seq + 1, name);
    REQUIRE(audit_manifest_add(&one, name) == 0);
    REQUIRE(audit_manifest_write(dir, key, &one, &err) == 0);
    audit_manifest_cleanup(&one);
    CHECK_MSG(open_rc(msg, sizeof(msg)) == 0, "%s", msg);
    // An empty last segment named for a seq the one before does not end at.
    fresh();
    REQUIRE(make_log(&c, 3) == 0);
    REQUIRE(gf_audit_key_load(keyfile, false, key, &err) == 0);
    REQUIRE(verify_ok(dir, keyfile, &r));
    REQUIRE(audit_manifest_read(dir, key, &one, &err) == 0);
    audit_seg_name(r.last_seq + 5, name);
    REQUIRE(audit_manifest_add(&one, name) == 0);
    REQUIRE(audit_manifest_write(dir, key, &one, &err) == 0);
    audit_manifest_cleanup(&one);
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    spit(p, "", 0);
    CHECK_MSG(open_rc(msg, sizeof(msg)) == GF_EFORMAT && strstr(msg, "does not end where"), "%s",
              msg);
}

/* A write fails and so does cutting the file back, once or repeatedly: the writer stays failed
 * until both work, then recovers. */
static void test_write_and_truncate_fail(void)
{
    for (int m = 1; m <= 3; m++) {
        make_template();
        io_reset();
        io_fail_times(IO_WRITE, 4, m, ENOSPC);
        io_fail_times(IO_FTRUNCATE, 1, m, EIO);
        CHECK(life() == 0);
        CHECK(atomic_load(&io_fired) >= 2);
        io_reset();
        CHECK(healthy());
    }
}

/* ---- the writer's own paths ------------------------------------------------------------- */

static void test_bad_configs(void)
{
    fresh();
    struct gf_audit_config c;
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    static const char *const why[] = {"audit.dir",          "audit.dir",
                                      "audit.retention",    "audit.durability",
                                      "checkpoint_interval", "commit_interval_ms",
                                      "commit_interval_ms", "commit_max_records",
                                      "retry_interval_ms"};
    for (int i = 0; i < 9; i++) {
        small_config(&c);
        switch (i) {
        case 0: c.dir = NULL; break;
        case 1: c.dir = ""; break;
        case 2: c.retention = (enum gf_audit_retention)7; break;
        case 3: c.durability = (enum gf_audit_durability)7; break;
        case 4: c.checkpoint_interval_ms = -1; break;
        case 5: c.commit_interval_ms = -1; break;
        case 6: c.commit_interval_ms = 1001; break;
        case 7: c.commit_max_records = 0; break;
        case 8: c.retry_interval_ms = 0; break;
        }
        memset(&err, 0, sizeof(err));
        CHECK_MSG(gf_audit_open(&c, NULL, &a, &err) == GF_EINVAL && a == NULL &&
                      strstr(err.msg, why[i]),
                  "case %d: %s", i, err.msg);
    }
    // A directory path too long to create.
    static char longdir[5000];
    memset(longdir, 'd', sizeof(longdir) - 1);
    longdir[0] = '/';
    small_config(&c);
    c.dir = longdir;
    CHECK(gf_audit_open(&c, NULL, &a, &err) == GF_EIO && a == NULL);
    enum gf_audit_retention r;
    enum gf_audit_durability d;
    CHECK(gf_audit_retention_parse(NULL, &r) == GF_EINVAL);
    CHECK(gf_audit_retention_parse("most", &r) == GF_EINVAL);
    CHECK(gf_audit_durability_parse(NULL, &d) == GF_EINVAL);
    CHECK(strcmp(gf_audit_retention_name((enum gf_audit_retention)9), "?") == 0);
    CHECK(strcmp(gf_audit_durability_name((enum gf_audit_durability)9), "?") == 0);
    gf_audit_close(NULL);
}

static atomic_int hold;

static int holding_fsync(void *ud, int fd)
{
    (void)ud;
    while (atomic_load(&hold))
        usleep(1000);
    return fdatasync(fd);
}

static ssize_t zero_write(void *ud, int fd, const void *p, size_t n)
{
    atomic_int *zeros = ud;
    if (atomic_load(zeros) > 0) { // a write that makes no progress: the disk is full
        atomic_fetch_sub(zeros, 1);
        return 0;
    }
    return write(fd, p, n);
}

static void test_big_batch_and_accessors(void)
{
    // Ten records of 300 KB reach the writer at once: the batch is written out every 1 MiB.
    fresh();
    struct gf_audit_io io = {NULL, holding_fsync, NULL};
    struct gf_audit_config c;
    test_config(&c, dir);
    c.retention = GF_AUDIT_RETAIN_FULL;
    c.io = &io;
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_audit_open(&c, NULL, &a, &err) == 0);
    CHECK(gf_audit_config(a)->retention == GF_AUDIT_RETAIN_FULL);
    atomic_store(&hold, 1);
    append_n(a, 0, 1, NULL); // the writer waits in its fsync
    usleep(20000);
    size_t n = 300000;
    char *text = malloc(n + 1);
    memset(text, 'a', n);
    text[n] = '\0';
    static struct done_log log;
    memset(&log, 0, sizeof(log));
    for (int i = 1; i <= 10; i++) {
        struct gf_audit_request r;
        char id[32];
        fill_request(&r, i, id, sizeof(id));
        r.prompt = text;
        r.prompt_len = n;
        struct done_ctx *dc = malloc(sizeof(*dc));
        dc->log = &log;
        dc->id = i;
        CHECK(gf_audit_log_request(a, &r, on_done, dc) == 0);
    }
    struct gf_audit_stats before;
    gf_audit_get_stats(a, &before);
    atomic_store(&hold, 0);
    gf_audit_flush(a);
    struct gf_audit_stats after;
    gf_audit_get_stats(a, &after);
    CHECK(log.calls == 10 && log.errors == 0);
    CHECK_MSG(after.batches - before.batches >= 3, "%llu batches",
              (unsigned long long)(after.batches - before.batches));
    // A text over what a record may hold is kept as its digest.
    struct gf_audit_request r;
    char id[32];
    fill_request(&r, 50, id, sizeof(id));
    size_t huge = AUDIT_MAX_LINE + 1;
    char *t = malloc(huge);
    memset(t, 'b', huge);
    r.prompt = t;
    r.prompt_len = huge;
    CHECK(gf_audit_log_request(a, &r, NULL, NULL) == 0);
    free(t);
    // An admin record whose detail is not valid UTF-8 would read as tampering: refused.
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "note", "\xff\xfe");
    CHECK(gf_audit_log_admin(a, "key_created", "key_x", d, NULL, NULL) == GF_EINVAL);
    cJSON_Delete(d);
    gf_audit_close(a);
    free(text);
    char *all = NULL;
    struct gf_audit_verify_result vr;
    CHECK(verify_ok(dir, keyfile, &vr));
    (void)all;
}

static void test_zero_progress_and_periodic_checkpoint(void)
{
    fresh();
    static atomic_int zeros;
    atomic_store(&zeros, 1);
    struct gf_audit_io io = {zero_write, NULL, (void *)&zeros}; // fsync: the system's
    struct gf_audit_config c;
    test_config(&c, dir);
    c.checkpoint_interval_ms = 20; // sealed by the timer, not by the count
    c.checkpoint_every = 1000;
    c.commit_interval_ms = 20;
    c.commit_max_records = 2;
    c.io = &io;
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_audit_open(&c, NULL, &a, &err) == 0);
    static struct done_log log;
    memset(&log, 0, sizeof(log));
    append_n(a, 0, 5, &log);
    gf_audit_flush(a);
    wait_writable(a);
    CHECK(gf_audit_writable(a));
    append_n(a, 5, 5, &log);
    gf_audit_flush(a);
    usleep(80000); // the interval passes: a checkpoint is written on its own
    struct gf_audit_stats st;
    gf_audit_get_stats(a, &st);
    CHECK(st.checkpoints >= 1);
    // A periodic checkpoint that cannot be written puts the log in the failed state.
    io_reset();
    append_n(a, 10, 1, &log);
    gf_audit_flush(a);
    io_fail(IO_FDATASYNC, 1, EIO);
    for (int i = 0; i < 200 && atomic_load(&io_fired) == 0; i++)
        usleep(1000);
    CHECK(atomic_load(&io_fired) == 1);
    wait_writable(a);
    io_reset();
    gf_audit_close(a);
    struct gf_audit_verify_result vr;
    CHECK(verify_ok(dir, keyfile, &vr));
}

static void test_none_durability_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    fresh();
    struct gf_audit_config c;
    test_config(&c, dir);
    c.durability = GF_AUDIT_DURABLE_NONE;
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_audit_open(&c, NULL, &a, &err) == 0);
    static struct done_log log;
    int wrong = 0, steps = 0;
    for (long n = 1; n < 200; n++) {
        memset(&log, 0, sizeof(log));
        struct gf_audit_request r;
        char id[32];
        fill_request(&r, (int)n, id, sizeof(id));
        struct done_ctx *dc = malloc(sizeof(*dc));
        dc->log = &log;
        dc->id = (int)n;
        gf_alloc_fail_after_here(n, false);
        int rc = gf_audit_log_request(a, &r, on_done, dc);
        gf_alloc_fail_after(0, false);
        steps++;
        if (rc != 0) {
            free(dc);
            wrong += rc != GF_ENOMEM;
            continue;
        }
        gf_audit_flush(a);
        CHECK(log.calls == 1);
        break;
    }
    CHECK(wrong == 0 && steps > 2);
    gf_audit_close(a);
}

static void test_chain_odd_lines(void)
{
    uint8_t prev[GF_SHA256_LEN];
    uint64_t seq;
    const char *type;
    size_t tl;
    static const char *const bad_heads[] = {
        "{\"seq\":123",                                            // ends in the number
        "{\"seq\":1,\"prev\":\"" ZEROS64 "\",\"typo\":\"admin\"}", // not ,"type":"
        "{\"seq\":1,\"prev\":\"" ZEROS64 "\",\"type\":\"admin",    // the type runs to the end
    };
    for (size_t i = 0; i < sizeof(bad_heads) / sizeof(bad_heads[0]); i++)
        CHECK_MSG(gf_audit_parse_head(bad_heads[i], strlen(bad_heads[i]), &seq, prev, &type,
                                      &tl) == GF_EFORMAT,
                  "head %zu", i);
    uint8_t out[2];
    CHECK(audit_unhex("AbCd", 4, out, 2) == 0 && out[0] == 0xab && out[1] == 0xcd);
    CHECK(audit_unhex("zz00", 4, out, 2) == GF_EFORMAT);
    CHECK(audit_unhex("0z00", 4, out, 2) == GF_EFORMAT);
    // The chain checker: a first record with a non-zero prev; checkpoints with odd fields.
    struct audit_chain c;
    char why[200];
    uint8_t key[GF_AUDIT_KEY_LEN] = {1};
    const char *first = "{\"seq\":1,\"prev\":\"" ONES64 "\",\"type\":\"admin\"}";
    audit_chain_init(&c, key);
    CHECK(audit_chain_feed(&c, first, strlen(first), why, sizeof(why)) == GF_EFORMAT);
    CHECK(strstr(why, "zero prev") != NULL);
    static const char *const bad_ckpts[] = {
        "{\"seq\":1,\"prev\":\"" ZEROS64 "\",\"type\":\"checkpoint\",\"key_id\":\"x\",\"mac\":7}",
        "{\"seq\":1,\"prev\":\"" ZEROS64 "\",\"type\":\"checkpoint\",\"key_id\":7,\"mac\":\"00\"}",
        "{\"seq\":1,\"prev\":\"" ZEROS64 "\",\"type\":\"checkpoint\",\"key_id\":\"x\",\"mac\":\"" ZEROS63
        "g\"}",
    };
    for (size_t i = 0; i < sizeof(bad_ckpts) / sizeof(bad_ckpts[0]); i++) {
        audit_chain_init(&c, key);
        CHECK_MSG(audit_chain_feed(&c, bad_ckpts[i], strlen(bad_ckpts[i]), why, sizeof(why)) ==
                          GF_EFORMAT &&
                      strstr(why, "well-formed"),
                  "checkpoint %zu: %s", i, why);
    }
}

int main(void)
{
    gf_log_set_level(GF_LOG_OFF);
    gf_json_init();
    RUN(test_bad_configs);
    RUN(test_chain_odd_lines);
    RUN(test_syscall_faults);
    RUN(test_pthread_create_fails);
    RUN(test_eventfd_fails);
    RUN(test_manifest_names_missing_segment);
    RUN(test_manifest_lists_nothing);
    RUN(test_segments_without_manifest);
    RUN(test_unlisted_newest_segment);
    RUN(test_renamed_segment);
    RUN(test_empty_last_after_damaged);
    RUN(test_huge_record);
    RUN(test_all_segments_removed);
    RUN(test_write_and_truncate_fail);
    RUN(test_oom_life);
    RUN(test_rotation_cleanup_fails);
    RUN(test_odd_failures);
    RUN(test_manifest_variants);
    RUN(test_big_batch_and_accessors);
    RUN(test_zero_progress_and_periodic_checkpoint);
    RUN(test_none_durability_oom);
    if (base[0])
        rm_rf(base);
    return test_report();
}
