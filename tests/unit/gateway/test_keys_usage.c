/* Unit tests of gateway/keys_usage.c and the limiter's peek and usage ops: the daily token
 * counts survive a restart through DATA_DIR/keys/usage.json (today's only, never lowered), the
 * periodic saver writes them off the loop and once more at stop, a damaged or hostile file is
 * refused with a message naming the entry, and loads under allocation failure fail cleanly. */
#include "gateway/keys_int.h"

#include <string.h>
#include <sys/stat.h>

#include <event2/event.h>

#include "keys_testutil.h"
#include "test.h"

#define DAY_MS 86400000ll

static char dir[256], usage[300];

static struct gf_keys *open_keys(void)
{
    struct gf_keys_config kc = {.no_fsync = true};
    struct gf_keys *k = NULL;
    struct gf_err err = {0};
    if (gf_keys_open(dir, &kc, &k, &err) != 0)
        fprintf(stderr, "gf_keys_open: %s\n", err.msg);
    return k;
}

/* Admits one request of prompt tokens on id under a daily quota; returns admit's result. */
static int spend(struct gf_keys *k, const char *id, int64_t quota, int64_t tokens,
                 struct gf_rl_now now)
{
    struct gf_key_limits lim = {.daily_tokens = quota};
    struct gf_rl_ticket t;
    struct gf_rl_info info;
    int rc = k->lim->ops->admit(k->lim, id, &lim, tokens, now, &t, &info);
    if (rc == 0)
        k->lim->ops->release(k->lim, &t);
    return rc;
}

static void test_peek(void)
{
    struct gf_limiter *l = NULL;
    REQUIRE(gf_limiter_open_local(&l) == 0);
    struct gf_key_limits lim = {.rpm = 10, .tpm = 1000};
    struct gf_rl_now now = gf_rl_now();
    struct gf_rl_info info;
    l->ops->peek(l, "key_new", &lim, now, &info); // never seen: every bucket full
    CHECK(info.limit_requests == 10 && info.remaining_requests == 10);
    CHECK(info.limit_tokens == 1000 && info.remaining_tokens == 1000);
    struct gf_rl_ticket t;
    CHECK(l->ops->admit(l, "key_new", &lim, 100, now, &t, &info) == 0);
    l->ops->release(l, &t);
    for (int i = 0; i < 3; i++) { // peeking takes nothing
        l->ops->peek(l, "key_new", &lim, now, &info);
        CHECK(info.remaining_requests == 9 && info.remaining_tokens == 900);
    }
    struct gf_key_limits none = {0};
    l->ops->peek(l, "key_new", &none, now, &info);
    CHECK(info.limit_requests == -1 && info.limit_tokens == -1);
    gf_limiter_close(l);
}

static void test_restart_keeps_today(void)
{
    tu_mkdtemp(dir, sizeof(dir));
    snprintf(usage, sizeof(usage), "%s/keys/usage.json", dir);
    struct gf_rl_now now = gf_rl_now();
    struct gf_keys *k = open_keys();
    REQUIRE(k != NULL);
    CHECK(spend(k, "key_a", 100, 70, now) == 0);
    CHECK(spend(k, "key_b", 100, 5, now) == 0);
    uint64_t v = k->lim->ops->usage_version(k->lim);
    struct gf_buf b;
    gf_buf_init(&b, 1 << 20);
    struct gf_err err = {0};
    REQUIRE(gf_keys_usage_dump(k, now.wall_ms, &b) == 0);
    CHECK(strstr(b.data, "\"id\":\"key_a\"") && strstr(b.data, "\"used\":70"));
    REQUIRE(gf_keys_usage_write(usage, b.data, b.len, &err) == 0);
    struct stat st;
    CHECK(stat(usage, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(spend(k, "key_a", 100, 1, now) == 0);
    CHECK(k->lim->ops->usage_version(k->lim) != v); // a change is seen by the saver
    gf_keys_close(k);

    // After a "restart" the count of today is back: 70 of 100 spent, 40 more do not fit.
    k = open_keys();
    REQUIRE(k != NULL);
    CHECK(gf_keys_usage_load(k, usage, now.wall_ms, &err) == 0);
    CHECK(spend(k, "key_a", 100, 40, now) == GF_ELIMIT);
    CHECK(spend(k, "key_a", 100, 30, now) == 0);
    CHECK(spend(k, "key_b", 100, 95, now) == 0);
    // Loading again never lowers a count that has grown since the start.
    CHECK(gf_keys_usage_load(k, usage, now.wall_ms, &err) == 0);
    CHECK(spend(k, "key_a", 100, 1, now) == GF_ELIMIT);
    gf_keys_close(k);

    // The next UTC day starts from zero: yesterday's counts are not restored.
    k = open_keys();
    REQUIRE(k != NULL);
    struct gf_rl_now tomorrow = now;
    tomorrow.wall_ms += DAY_MS;
    CHECK(gf_keys_usage_load(k, usage, tomorrow.wall_ms, &err) == 0);
    CHECK(spend(k, "key_a", 100, 100, tomorrow) == 0);
    gf_keys_close(k);
    gf_buf_cleanup(&b);
    tu_rmtree(dir);
}

static void test_damaged_files(void)
{
    tu_mkdtemp(dir, sizeof(dir));
    snprintf(usage, sizeof(usage), "%s/keys/usage.json", dir);
    struct gf_keys *k = open_keys();
    REQUIRE(k != NULL);
    struct gf_err err = {0};
    CHECK(gf_keys_usage_load(k, usage, gf_wall_ms(), &err) == 0); // none yet: fine
    static const struct {
        const char *text;
        const char *why; // in the message
    } bad[] = {
        {"", "JSON"},
        {"{\"version\":1,\"keys\":[", "JSON"},
        {"[]", "version"},
        {"{\"version\":2,\"keys\":[]}", "version"},
        {"{\"version\":1,\"keys\":{}}", "version"},
        {"{\"version\":1,\"keys\":[{\"id\":\"key_a\",\"day\":1}]}", "keys[0]"},
        {"{\"version\":1,\"keys\":[{\"id\":\"key_a\",\"day\":1,\"used\":1},{\"id\":7,\"day\":1,"
         "\"used\":1}]}",
         "keys[1]"},
        {"{\"version\":1,\"keys\":[{\"id\":\"key_a\",\"day\":1,\"used\":-5}]}", "keys[0]"},
        {"{\"version\":1,\"keys\":[{\"id\":\"key_a\",\"day\":-1,\"used\":5}]}", "keys[0]"},
        {"{\"version\":1,\"keys\":[{\"id\":\"key_a\",\"day\":1,\"used\":1e300}]}", "keys[0]"},
        {"{\"version\":1,\"keys\":[{\"id\":\"key_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
         "\"day\":1,\"used\":1}]}",
         "keys[0]"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tu_write(usage, bad[i].text, strlen(bad[i].text));
        memset(&err, 0, sizeof(err));
        int rc = gf_keys_usage_load(k, usage, gf_wall_ms(), &err);
        CHECK_MSG(rc == GF_EFORMAT && strstr(err.msg, bad[i].why) && strstr(err.msg, "usage.json"),
                  "case %zu: rc %d, %s", i, rc, err.msg);
    }
    // A directory where the file should be: an I/O error, not a crash.
    remove(usage);
    mkdir(usage, 0700);
    CHECK(gf_keys_usage_load(k, usage, gf_wall_ms(), &err) == GF_EIO);
    CHECK(gf_keys_usage_write(usage, "x", 1, &err) == GF_EIO);
    rmdir(usage);
    // An unwritable place: the write fails cleanly and leaves no temporary file.
    char nowhere[400];
    snprintf(nowhere, sizeof(nowhere), "%s/no/such/dir/usage.json", dir);
    CHECK(gf_keys_usage_write(nowhere, "x", 1, &err) == GF_EIO);
    gf_keys_close(k);
    tu_rmtree(dir);
}

static void test_load_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    tu_mkdtemp(dir, sizeof(dir));
    snprintf(usage, sizeof(usage), "%s/keys/usage.json", dir);
    struct gf_keys *k = open_keys();
    REQUIRE(k != NULL);
    struct gf_rl_now now = gf_rl_now();
    for (int i = 0; i < 20; i++) {
        char id[32];
        snprintf(id, sizeof(id), "key_%02d", i);
        CHECK(spend(k, id, 1000, 10 + i, now) == 0);
    }
    struct gf_buf b;
    gf_buf_init(&b, 1 << 20);
    struct gf_err err = {0};
    REQUIRE(gf_keys_usage_dump(k, now.wall_ms, &b) == 0);
    REQUIRE(gf_keys_usage_write(usage, b.data, b.len, &err) == 0);
    gf_keys_close(k);
    int wrong = 0, steps = 0;
    for (long n = 1; n < 10000; n++) {
        k = open_keys();
        REQUIRE(k != NULL);
        gf_alloc_fail_after(n, true);
        int rc = gf_keys_usage_load(k, usage, now.wall_ms, &err);
        if (rc == 0)
            rc = gf_keys_usage_dump(k, now.wall_ms, &b);
        gf_alloc_fail_after(0, false);
        steps++;
        if (rc == 0) {
            CHECK(spend(k, "key_19", 1000, 972, now) == GF_ELIMIT); // 29 + 972 > 1000
            gf_keys_close(k);
            break;
        }
        wrong += rc != GF_ENOMEM;
        gf_keys_close(k);
    }
    CHECK(wrong == 0);
    CHECK(steps > 3);
    gf_buf_cleanup(&b);
    tu_rmtree(dir);
}

static void stop_loop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void run_loop(struct event_base *base, int ms)
{
    struct event *ev = evtimer_new(base, stop_loop, base);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(ev, &tv);
    event_base_dispatch(base);
    event_free(ev);
}

static void test_saver(void)
{
    tu_mkdtemp(dir, sizeof(dir));
    snprintf(usage, sizeof(usage), "%s/keys/usage.json", dir);
    struct event_base *base = event_base_new();
    struct gf_keys *k = open_keys();
    REQUIRE(k != NULL && base != NULL);
    struct gf_usage_saver *s = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_usage_saver_start(base, k, usage, 100, &s, &err) == 0 && s != NULL);
    struct gf_rl_now now = gf_rl_now();
    CHECK(spend(k, "key_s", 1000, 123, now) == 0);
    size_t len = 0;
    char *text = NULL;
    for (int i = 0; i < 100 && (text == NULL || strstr(text, "\"used\":123") == NULL); i++) {
        free(text);
        run_loop(base, 50); // the tick hands the snapshot to the thread, which writes it
        text = tu_read(usage, &len);
    }
    CHECK_MSG(text && strstr(text, "\"id\":\"key_s\"") && strstr(text, "\"used\":123"), "%s",
              text ? text : "(no file)");
    free(text);
    // Counted after the last tick: written by stop.
    CHECK(spend(k, "key_s", 1000, 7, now) == 0);
    CHECK(gf_usage_saver_stop(s) == 0);
    text = tu_read(usage, &len);
    CHECK(text && strstr(text, "\"used\":130"));
    free(text);
    gf_keys_close(k);
    // A restart picks it up through the saver's own load.
    k = open_keys();
    REQUIRE(k != NULL);
    REQUIRE(gf_usage_saver_start(base, k, usage, 0, &s, &err) == 0);
    CHECK(spend(k, "key_s", 1000, 871, now) == GF_ELIMIT);
    CHECK(spend(k, "key_s", 1000, 870, now) == 0);
    CHECK(gf_usage_saver_stop(s) == 0);
    gf_keys_close(k);
    // A damaged file stops the start, naming it.
    tu_write(usage, "{", 1);
    k = open_keys();
    REQUIRE(k != NULL);
    s = NULL;
    CHECK(gf_usage_saver_start(base, k, usage, 100, &s, &err) == GF_EFORMAT && s == NULL);
    CHECK(strstr(err.msg, "usage.json") != NULL);
    gf_keys_close(k);
    CHECK(gf_usage_saver_stop(NULL) == 0);
    event_base_free(base);
    tu_rmtree(dir);
}

int main(void)
{
    gf_log_set_level(GF_LOG_OFF);
    gf_json_init();
    RUN(test_peek);
    RUN(test_restart_keeps_today);
    RUN(test_damaged_files);
    RUN(test_load_oom);
    RUN(test_saver);
    return test_report();
}
