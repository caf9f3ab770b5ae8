/* test_writer.c — the audit writer: callbacks in order with increasing seqs, group commit,
 * rotation across segments, retention modes, durability modes, callbacks on a libevent loop,
 * I/O errors and short writes through the shim (no record lost or duplicated silently), torn
 * tails set aside on open, a crash (kill -9 of a writing process) and an OOM loop. */
#include "tests/unit/audit/audit_util.h"
#include "test.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#include <cjson/cJSON.h>
#include <event2/event.h>

static char base[64], dir[128], keyfile[160];

static void fresh(void)
{
    if (base[0])
        rm_rf(base);
    scratch(base);
    snprintf(dir, sizeof(dir), "%s/audit", base);
    snprintf(keyfile, sizeof(keyfile), "%s/audit.key", base);
}

static bool verified(void)
{
    struct gf_audit_verify_result r;
    return verify_ok(dir, keyfile, &r);
}

/* Concatenates every segment (in order) into one malloc'd string. */
static char *whole_log(void)
{
    return whole_log_of(dir);
}

/* How many times "request_id":"req-<i>" appears in the log. */
static int occurrences(const char *all, int i)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"request_id\":\"req-%d\"", i);
    int n = 0;
    for (const char *p = all; (p = strstr(p, pat)) != NULL; p += strlen(pat))
        n++;
    return n;
}

static void test_basic_order(void)
{
    fresh();
    struct gf_audit_config c;
    test_config(&c, dir);
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_audit_open(&c, NULL, &a, &err) == 0);
    static struct done_log log;
    memset(&log, 0, sizeof(log));
    CHECK(append_n(a, 0, 100, &log) == 100);
    gf_audit_flush(a);
    CHECK(log.calls == 100);
    CHECK(log.errors == 0);
    bool increasing = true;
    for (int i = 0; i < 100; i++) {
        increasing = increasing && log.ids[i] == i;
        if (i > 0)
            increasing = increasing && log.seqs[i] > log.seqs[i - 1];
    }
    CHECK(increasing);
    CHECK(gf_audit_writable(a));
    gf_audit_close(a);
    CHECK(verified());
    char *all = whole_log();
    bool once = true;
    for (int i = 0; i < 100; i++)
        once = once && occurrences(all, i) == 1;
    CHECK(once);
    CHECK(strstr(all, "\"action\":\"audit_started\"") != NULL);
    CHECK(strstr(all, "\"action\":\"audit_stopped\"") != NULL);
    free(all);
    // A reopened log continues the same chain.
    REQUIRE(gf_audit_open(&c, NULL, &a, &err) == 0);
    memset(&log, 0, sizeof(log));
    append_n(a, 100, 10, &log);
    gf_audit_flush(a);
    CHECK(log.calls == 10 && log.errors == 0);
    gf_audit_close(a);
    CHECK(verified());
}

/* A fsync that blocks while `hold` is set, so records pile up behind it deterministically. */
static atomic_int hold, held;

static int gate_fsync(void *ud, int fd)
{
    (void)ud;
    while (atomic_load(&hold)) {
        atomic_store(&held, 1);
        usleep(1000);
    }
    return fdatasync(fd);
}

static void test_group_commit(void)
{
    fresh();
    struct gf_audit_io io = {NULL, gate_fsync, NULL};
    struct gf_audit_config c;
    test_config(&c, dir);
    c.io = &io;
    c.commit_interval_ms = 0;
    c.commit_max_records = 64;
    c.checkpoint_every = 100;
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    atomic_store(&hold, 1);
    atomic_store(&held, 0);
    REQUIRE(gf_audit_open(&c, NULL, &a, &err) == 0);
    // The writer syncs audit_started and stops there; everything after it queues up.
    while (!atomic_load(&held))
        usleep(1000);
    static struct done_log log;
    memset(&log, 0, sizeof(log));
    CHECK(append_n(a, 0, 1000, &log) == 1000);
    struct gf_audit_stats st0;
    gf_audit_get_stats(a, &st0);
    atomic_store(&hold, 0);
    gf_audit_flush(a);
    struct gf_audit_stats st;
    gf_audit_get_stats(a, &st);
    CHECK(log.calls == 1000 && log.errors == 0);
    // Group commit: the 1000 waiting records went out 64 at a time (plus the checkpoints they
    // carry), each group with one write and one fsync.
    CHECK_MSG(st.batches - st0.batches <= 1000 / 64 + 2, "%llu batches",
              (unsigned long long)(st.batches - st0.batches));
    CHECK(st.batches - st0.batches >= 1000 / 64);
    CHECK(st.fsyncs <= st.batches);
    bool ordered = true;
    for (int i = 1; i < 1000; i++)
        ordered = ordered && log.seqs[i] > log.seqs[i - 1] && log.ids[i] == i;
    CHECK(ordered);
    gf_audit_close(a);
    CHECK(verified());
    // The file order is the queue order.
    char *all = whole_log();
    const char *prev = all;
    bool file_order = true;
    for (int i = 0; i < 1000; i++) {
        char pat[64];
        snprintf(pat, sizeof(pat), "\"request_id\":\"req-%d\"", i);
        const char *at = strstr(prev, pat);
        file_order = file_order && at != NULL;
        if (at)
            prev = at;
    }
    CHECK(file_order);
    free(all);
}

static void test_rotation(void)
{
    fresh();
    struct gf_audit_config c;
    test_config(&c, dir);
    c.segment_max_bytes = 4096;
    REQUIRE(make_log(&c, 60) == 0);
    CHECK(count_segments(dir) >= 5);
    CHECK(verified());
    // Each segment is named for its first record, and no segment exceeds the limit.
    bool named = true, small = true;
    for (int k = 0;; k++) {
        char p[512];
        seg_path(dir, k, p);
        if (!p[0])
            break;
        size_t n = 0;
        char *s = slurp(p, &n);
        unsigned long long first = strtoull(strrchr(p, '-') + 1, NULL, 10), seq = 0;
        sscanf(s, "{\"seq\":%llu", &seq);
        named = named && seq == first;
        small = small && n <= 4096;
        free(s);
    }
    CHECK(named);
    CHECK(small);
    // Reopening continues in the last segment, and rotation goes on.
    REQUIRE(make_log(&c, 30) == 0);
    CHECK(verified());
}

static char *log_with_retention(enum gf_audit_retention ret)
{
    fresh();
    struct gf_audit_config c;
    test_config(&c, dir);
    c.retention = ret;
    if (make_log(&c, 3) != 0)
        return NULL;
    return whole_log();
}

static void test_retention(void)
{
    char *full = log_with_retention(GF_AUDIT_RETAIN_FULL);
    REQUIRE(full != NULL);
    CHECK(verified());
    CHECK(strstr(full, "alice@example.com") != NULL);
    CHECK(strstr(full, "marmalade") != NULL);
    CHECK(strstr(full, "\"retention\":\"full\"") != NULL);
    free(full);

    char *red = log_with_retention(GF_AUDIT_RETAIN_REDACTED);
    REQUIRE(red != NULL);
    CHECK(verified());
    CHECK(strstr(red, "alice@example.com") == NULL);
    // The card's digits as written, not "4111" alone: the record's hex digests and nanosecond
    // times contain "4111" now and then (about one run in a few hundred).
    CHECK(strstr(red, "4111 1111") == NULL);
    CHECK(strstr(red, "1111 1111") == NULL);
    CHECK(strstr(red, "please mail [EMAIL] about card [NUMBER]") != NULL);
    CHECK(strstr(red, "marmalade") != NULL); // not a pattern the scrubber knows
    free(red);

    char *h = log_with_retention(GF_AUDIT_RETAIN_HASHES);
    REQUIRE(h != NULL);
    CHECK(verified());
    CHECK(strstr(h, "alice") == NULL);
    CHECK(strstr(h, "marmalade") == NULL);
    CHECK(strstr(h, "\"text\"") == NULL);
    // The digest of the prompt is there in every mode.
    uint8_t d[GF_SHA256_LEN];
    char hex[65];
    const char *prompt = "please mail alice@example.com about card 4111 1111 1111 1111";
    gf_sha256(prompt, strlen(prompt), d);
    gf_hex(d, sizeof(d), hex);
    CHECK(strstr(h, hex) != NULL);
    free(h);
}

static void test_durability_modes(void)
{
    for (int m = 0; m < 3; m++) {
        fresh();
        struct gf_audit_config c;
        test_config(&c, dir);
        c.durability = (enum gf_audit_durability)m;
        struct gf_audit *a = NULL;
        struct gf_err err = {0};
        REQUIRE(gf_audit_open(&c, NULL, &a, &err) == 0);
        static struct done_log log;
        memset(&log, 0, sizeof(log));
        append_n(a, 0, 50, &log);
        gf_audit_flush(a);
        CHECK(log.calls == 50 && log.errors == 0);
        struct gf_audit_stats st;
        gf_audit_get_stats(a, &st);
        if (m != GF_AUDIT_DURABLE_FSYNC)
            CHECK(st.fsyncs <= st.checkpoints + 1); // only checkpoints sync
        gf_audit_close(a);
        CHECK(verified());
    }
}

/* ---- callbacks on a libevent loop ------------------------------------------------------- */

struct loop_ctx {
    struct event_base *base;
    int left;
    pthread_t loop_thread;
    bool on_loop_thread;
};

static void loop_done(void *ud, int status, uint64_t seq)
{
    struct loop_ctx *l = ud;
    l->on_loop_thread = l->on_loop_thread && pthread_equal(pthread_self(), l->loop_thread) &&
                        status == 0 && seq > 0;
    if (--l->left == 0)
        event_base_loopbreak(l->base);
}

static void test_event_loop(void)
{
    fresh();
    struct event_base *eb = event_base_new();
    REQUIRE(eb != NULL);
    struct gf_audit_config c;
    test_config(&c, dir);
    c.commit_interval_ms = 2;
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_audit_open(&c, eb, &a, &err) == 0);
    struct loop_ctx l = {eb, 200, pthread_self(), true};
    for (int i = 0; i < 200; i++) {
        struct gf_audit_request r;
        char id[32];
        fill_request(&r, i, id, sizeof(id));
        CHECK(gf_audit_log_request(a, &r, loop_done, &l) == 0);
    }
    struct timeval tv = {20, 0};
    event_base_loopexit(eb, &tv); // a safety net only: the last callback breaks the loop
    event_base_dispatch(eb);
    CHECK(l.left == 0);
    CHECK(l.on_loop_thread);
    gf_audit_close(a);
    event_base_free(eb);
    CHECK(verified());
}

/* ---- I/O errors through the shim --------------------------------------------------------- */

struct shim {
    atomic_int fail_write;  // writes fail with ENOSPC while set
    atomic_int fail_fsync;  // fsyncs fail with EIO while set
    atomic_int short_write; // write at most this many bytes per call (0 = all)
    atomic_int half_then_fail; // write half of the buffer, then fail the next call
};

static ssize_t shim_write(void *ud, int fd, const void *p, size_t n)
{
    struct shim *s = ud;
    if (atomic_load(&s->fail_write)) {
        if (atomic_load(&s->half_then_fail) && n > 1) {
            atomic_store(&s->half_then_fail, 0);
            return write(fd, p, n / 2); // a torn batch on disk, then the error
        }
        errno = ENOSPC;
        return -1;
    }
    int cap = atomic_load(&s->short_write);
    return write(fd, p, cap > 0 && (size_t)cap < n ? (size_t)cap : n);
}

static int shim_fsync(void *ud, int fd)
{
    struct shim *s = ud;
    if (atomic_load(&s->fail_fsync)) {
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

static void wait_writable(struct gf_audit *a)
{
    for (int i = 0; i < 10000 && !gf_audit_writable(a); i++) // 20 s at most, for loaded machines
        usleep(2000);
}

/* Appends through a failure: 20 good, 20 while failing, 20 after. Checks each confirmed record
 * is in the log exactly once, each failed one is absent, and the outage record counts them. */
static void outage(struct shim *s, bool by_fsync, bool torn)
{
    fresh();
    struct gf_audit_io io = {shim_write, shim_fsync, s};
    struct gf_audit_config c;
    test_config(&c, dir);
    c.io = &io;
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_audit_open(&c, NULL, &a, &err) == 0);
    static struct done_log log;
    memset(&log, 0, sizeof(log));
    append_n(a, 0, 20, &log);
    gf_audit_flush(a);
    CHECK(log.errors == 0);
    if (by_fsync)
        atomic_store(&s->fail_fsync, 1);
    else
        atomic_store(&s->fail_write, 1);
    atomic_store(&s->half_then_fail, torn);
    int queued = append_n(a, 20, 20, &log);
    gf_audit_flush(a);
    CHECK(!gf_audit_writable(a));
    CHECK(log.errors >= 1);
    // While failing, appends are refused at once (a fail-closed gateway answers 503).
    struct gf_audit_request r;
    char id[32];
    fill_request(&r, 999, id, sizeof(id));
    CHECK(gf_audit_log_request(a, &r, NULL, NULL) == GF_EIO);
    CHECK(gf_audit_retry_after_s(a) >= 1);
    atomic_store(&s->fail_write, 0);
    atomic_store(&s->fail_fsync, 0);
    wait_writable(a);
    CHECK(gf_audit_writable(a));
    append_n(a, 40, 20, &log);
    gf_audit_flush(a);
    gf_audit_close(a);
    CHECK(verified());
    char *all = whole_log();
    int failed = 0;
    bool exact = true;
    for (int k = 0; k < log.calls; k++) {
        int want = log.status[k] == 0 ? 1 : 0;
        failed += log.status[k] != 0;
        if (occurrences(all, log.ids[k]) != want) {
            exact = false;
            fprintf(stderr, "req-%d: status %d, %d in log\n", log.ids[k], log.status[k],
                    occurrences(all, log.ids[k]));
        }
    }
    CHECK(exact);
    CHECK(log.calls == 20 + queued + 20);
    char pat[64];
    snprintf(pat, sizeof(pat), "\"failed_records\":%d", failed);
    CHECK_MSG(strstr(all, pat) != NULL, "no audit_write_failed record with %s", pat);
    free(all);
}

static void test_write_error(void)
{
    static struct shim s;
    outage(&s, false, false);
}

static void test_torn_write_error(void)
{
    static struct shim s;
    outage(&s, false, true);
}

static void test_fsync_error(void)
{
    static struct shim s;
    outage(&s, true, false);
}

static void test_short_writes(void)
{
    fresh();
    static struct shim s;
    atomic_store(&s.short_write, 7);
    struct gf_audit_io io = {shim_write, shim_fsync, &s};
    struct gf_audit_config c;
    test_config(&c, dir);
    c.io = &io;
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_audit_open(&c, NULL, &a, &err) == 0);
    static struct done_log log;
    memset(&log, 0, sizeof(log));
    append_n(a, 0, 30, &log);
    gf_audit_flush(a);
    CHECK(log.calls == 30 && log.errors == 0);
    gf_audit_close(a);
    CHECK(verified());
}

/* ---- torn tails and crashes ---------------------------------------------------------------- */

static void append_raw(const char *path, const char *s)
{
    FILE *f = fopen(path, "ab");
    fputs(s, f);
    fclose(f);
}

static void reopen_recovers(const char *tail, bool expect_torn)
{
    fresh();
    struct gf_audit_config c;
    test_config(&c, dir);
    c.checkpoint_every = 1000;
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_audit_open(&c, NULL, &a, &err) == 0);
    append_n(a, 0, 10, NULL);
    gf_audit_flush(a);
    // Simulate a crash: nothing closes the log (the writer is stopped by close below only
    // after the file is damaged, so copy the file state first).
    char p[512], m[512];
    seg_path(dir, 0, p);
    snprintf(m, sizeof(m), "%s/MANIFEST.json", dir);
    size_t n = 0, mn = 0;
    char *saved = slurp(p, &n), *saved_m = slurp(m, &mn);
    gf_audit_close(a);
    spit(p, saved, n); // the state at the crash: no audit_stopped, no final checkpoint
    spit(m, saved_m, mn);
    free(saved);
    free(saved_m);
    append_raw(p, tail);
    REQUIRE(gf_audit_open(&c, NULL, &a, &err) == 0);
    append_n(a, 10, 5, NULL);
    gf_audit_close(a);
    CHECK(verified());
    CHECK((count_files_containing(dir, ".torn-") == 1) == expect_torn);
    char *all = whole_log();
    CHECK((strstr(all, "\"action\":\"audit_torn_tail\"") != NULL) == expect_torn);
    bool all_there = true;
    for (int i = 0; i < 15; i++)
        all_there = all_there && occurrences(all, i) == 1;
    CHECK(all_there);
    free(all);
}

static void test_torn_partial_line(void)
{
    reopen_recovers("{\"seq\":13,\"prev\":\"00", true);
}

static void test_torn_garbage_line(void)
{
    reopen_recovers("\x01\x02garbage\n{\"seq\":99}\n", true);
}

static void test_torn_zeros(void)
{
    static const char zeros[64];
    fresh(); // reopen_recovers takes a string; zeros are written by hand here
    reopen_recovers("", false);
    char p[512];
    seg_path(dir, 0, p);
    FILE *f = fopen(p, "ab");
    fwrite(zeros, 1, sizeof(zeros), f); // a power loss may leave a zero-filled block
    fclose(f);
    struct gf_audit_config c;
    test_config(&c, dir);
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    // close sealed the last checkpoint; zeros after it are a torn tail, not lost records.
    REQUIRE(gf_audit_open(&c, NULL, &a, &err) == 0);
    gf_audit_close(a);
    CHECK(verified());
    CHECK(count_files_containing(dir, ".torn-") == 1);
}

static void test_sealed_loss_refused(void)
{
    fresh();
    struct gf_audit_config c;
    test_config(&c, dir);
    REQUIRE(make_log(&c, 12) == 0);
    char p[512];
    seg_path(dir, 0, p);
    char **v;
    int n = read_lines(p, &v);
    write_lines(p, v, n - 3); // records the manifest's checkpoint sealed are gone
    free_lines(v, n);
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    CHECK(gf_audit_open(&c, NULL, &a, &err) == GF_EFORMAT);
    CHECK(strstr(err.msg, "missing") != NULL);
    CHECK(a == NULL);
}

static void test_kill_9(void)
{
    // A child appends in fsync mode and reports each confirmed request id on a pipe; the parent
    // kills it mid-stream, reopens (recovery), and checks every confirmed id is in the log.
    for (int round = 0; round < 3; round++) {
        fresh();
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            struct gf_audit_config c;
            test_config(&c, dir);
            c.segment_max_bytes = 8192;
            c.commit_interval_ms = 1;
            struct gf_audit *a = NULL;
            struct gf_err err = {0};
            if (gf_audit_open(&c, NULL, &a, &err) != 0)
                _exit(3);
            static struct done_log log;
            for (int i = 0; i < 100000; i += 10) {
                memset(&log, 0, sizeof(log));
                append_n(a, i, 10, &log);
                gf_audit_flush(a);
                for (int k = 0; k < log.calls; k++)
                    if (log.status[k] == 0 && write(fds[1], &log.ids[k], sizeof(int)) < 0)
                        _exit(4);
            }
            _exit(0);
        }
        close(fds[1]);
        int ids[4096], n = 0;
        while (n < 150 + round * 100 && read(fds[0], &ids[n], sizeof(int)) == sizeof(int))
            n++;
        kill(pid, SIGKILL);
        int stat;
        waitpid(pid, &stat, 0);
        while (n < 4096 && read(fds[0], &ids[n], sizeof(int)) == sizeof(int))
            n++; // confirmations already in the pipe
        close(fds[0]);
        struct gf_audit_config c;
        test_config(&c, dir);
        c.segment_max_bytes = 8192;
        struct gf_audit *a = NULL;
        struct gf_err err = {0};
        REQUIRE(gf_audit_open(&c, NULL, &a, &err) == 0);
        gf_audit_close(a);
        CHECK(verified());
        char *all = whole_log();
        bool all_there = true;
        for (int k = 0; k < n; k++)
            all_there = all_there && occurrences(all, ids[k]) == 1;
        CHECK_MSG(all_there, "round %d: %d confirmed", round, n);
        free(all);
    }
}

/* ---- OOM loop ------------------------------------------------------------------------------ */

static void test_oom_loop(void)
{
    if (!gf_alloc_fail_supported())
        return;
    fresh();
    struct gf_audit_config c;
    test_config(&c, dir);
    c.segment_max_bytes = 16384;
    long n;
    int ok_rounds = 0;
    for (n = 1; n < 5000; n++) {
        static struct done_log log;
        memset(&log, 0, sizeof(log));
        struct gf_audit *a = NULL;
        struct gf_err err = {0};
        gf_alloc_fail_after(n, false);
        int rc = gf_audit_open(&c, NULL, &a, &err);
        if (rc != 0) {
            gf_alloc_fail_after(0, false);
            CHECK_MSG(rc == GF_ENOMEM, "open step %ld: %d %s", n, rc, err.msg);
            continue;
        }
        int queued = append_n(a, (int)n * 10, 3, &log);
        cJSON *d = cJSON_CreateObject();
        if (d && gf_audit_log_admin(a, "key_created", "k1", d, NULL, NULL) != 0)
            (void)0;
        cJSON_Delete(d);
        gf_audit_flush(a);
        CHECK(log.calls == queued);
        wait_writable(a);
        gf_audit_close(a);
        long failures = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        if (failures == 0) {
            ok_rounds++;
            break;
        }
    }
    fprintf(stderr, "    oom loop: %ld steps\n", n);
    CHECK(ok_rounds == 1);
    CHECK(n > 10);
    CHECK(verified());
}

static void test_bad_config(void)
{
    fresh();
    struct gf_audit_config c;
    test_config(&c, dir);
    c.checkpoint_every = 0;
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    CHECK(gf_audit_open(&c, NULL, &a, &err) == GF_EINVAL);
    CHECK(strstr(err.msg, "checkpoint_every") != NULL);
    test_config(&c, dir);
    c.segment_max_bytes = 10;
    gf_err_clear(&err);
    CHECK(gf_audit_open(&c, NULL, &a, &err) == GF_EINVAL);
    test_config(&c, "/proc/nonexistent/audit");
    gf_err_clear(&err);
    CHECK(gf_audit_open(&c, NULL, &a, &err) < 0);
    // A bad key file is refused with its path.
    test_config(&c, dir);
    spit(keyfile, "not hex\n", 8);
    gf_err_clear(&err);
    CHECK(gf_audit_open(&c, NULL, &a, &err) == GF_EFORMAT);
    CHECK(strstr(err.msg, "audit.key") != NULL);
}

static void test_key_file_created(void)
{
    fresh();
    struct gf_audit_config c;
    test_config(&c, dir);
    REQUIRE(make_log(&c, 1) == 0);
    struct stat st;
    REQUIRE(stat(keyfile, &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(st.st_size == 65);
    // The env key wins over the file.
    setenv("GARDEFOU_AUDIT_KEY", "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 1);
    uint8_t k[GF_AUDIT_KEY_LEN];
    struct gf_err err = {0};
    CHECK(gf_audit_key_load(keyfile, false, k, &err) == 0 && k[1] == 0x11);
    setenv("GARDEFOU_AUDIT_KEY", "short", 1);
    CHECK(gf_audit_key_load(keyfile, false, k, &err) == GF_EINVAL);
    unsetenv("GARDEFOU_AUDIT_KEY");
}

int main(void)
{
    gf_json_init();
    unsetenv("GARDEFOU_AUDIT_KEY");
    gf_log_set_level(GF_LOG_OFF);
    RUN(test_basic_order);
    RUN(test_group_commit);
    RUN(test_rotation);
    RUN(test_retention);
    RUN(test_durability_modes);
    RUN(test_event_loop);
    RUN(test_write_error);
    RUN(test_torn_write_error);
    RUN(test_fsync_error);
    RUN(test_short_writes);
    RUN(test_torn_partial_line);
    RUN(test_torn_garbage_line);
    RUN(test_torn_zeros);
    RUN(test_sealed_loss_refused);
    RUN(test_kill_9);
    RUN(test_oom_loop);
    RUN(test_bad_config);
    RUN(test_key_file_created);
    if (base[0])
        rm_rf(base);
    return test_report();
}
