/* test_verify.c — gf_audit_verify on a clean log and on logs mutated every way an attacker or a
 * crash could: an edited field, a deleted, inserted or reordered record, a truncated tail, a
 * removed segment, a replaced or forged checkpoint, a rewritten chain, an edited or deleted
 * manifest, the wrong key. Each mutation must be reported as the first break, at the right place. */
#include "tests/unit/audit/audit_util.h"
#include "test.h"

#include <inttypes.h>

static char base[64], dir[128], keyfile[160];

/* A fresh log of 40 requests: several 4 KiB segments, a checkpoint every 5 records. */
static void fresh(void)
{
    if (base[0])
        rm_rf(base);
    scratch(base);
    snprintf(dir, sizeof(dir), "%s/audit", base);
    snprintf(keyfile, sizeof(keyfile), "%s/audit.key", base);
    struct gf_audit_config c;
    test_config(&c, dir);
    c.segment_max_bytes = 4096;
    if (make_log(&c, 40) != 0)
        exit(1);
}

static struct gf_audit_verify_result run_verify(void)
{
    struct gf_audit_verify_result r;
    uint8_t key[GF_AUDIT_KEY_LEN];
    struct gf_err err = {0};
    memset(&r, 0, sizeof(r));
    if (gf_audit_key_load(keyfile, false, key, &err) != 0 || gf_audit_verify(dir, key, &r, &err) != 0) {
        fprintf(stderr, "verify failed to run: %s\n", err.msg);
        r.ok = true; // make the calling CHECK fail loudly
        snprintf(r.reason, sizeof(r.reason), "did not run");
        return r;
    }
    fprintf(stderr, "    -> %s line %" PRIu64 " seq %" PRIu64 ": %s\n", r.file, r.line, r.seq,
            r.ok ? "ok" : r.reason);
    return r;
}

static bool has(const char *s, const char *sub)
{
    return strstr(s, sub) != NULL;
}

static void test_clean(void)
{
    fresh();
    struct gf_audit_verify_result r = run_verify();
    CHECK(r.ok);
    CHECK(r.segments >= 3);
    CHECK(r.key_checked);
    // 40 requests + audit_started + audit_stopped + one checkpoint per 5 + the final one.
    CHECK(r.records == r.last_seq);
    CHECK(r.records - r.checkpoints == 42);
    CHECK(r.checkpoints >= 8);
    CHECK(r.unsealed == 0); // close seals the tail
    CHECK(strlen(r.head) == 64);
}

static void test_edit_field(void)
{
    fresh();
    char p[512];
    seg_path(dir, 0, p);
    char **v;
    int n = read_lines(p, &v);
    REQUIRE(n >= 4);
    char *s = strstr(v[2], "\"status\":200");
    REQUIRE(s != NULL);
    s[11] = '1'; // 200 -> 201
    write_lines(p, v, n);
    free_lines(v, n);
    struct gf_audit_verify_result r = run_verify();
    CHECK(!r.ok);
    CHECK(r.line == 4 && r.seq == 4); // the next record's link breaks
    CHECK(has(r.reason, "prev does not match"));
}

static void test_delete_record(void)
{
    fresh();
    char p[512];
    seg_path(dir, 0, p);
    char **v;
    int n = read_lines(p, &v);
    free(v[2]);
    v[2] = NULL;
    write_lines(p, v, n);
    free_lines(v, n);
    struct gf_audit_verify_result r = run_verify();
    CHECK(!r.ok);
    CHECK(r.line == 3 && r.seq == 3);
    CHECK(has(r.reason, "records missing"));
}

static void test_insert_record(void)
{
    fresh();
    char p[512];
    seg_path(dir, 0, p);
    char **v;
    int n = read_lines(p, &v);
    // Insert a copy of record 2 after it: a duplicate.
    char **w = calloc((size_t)n + 1, sizeof(*w));
    for (int i = 0, j = 0; i < n; i++) {
        w[j++] = v[i];
        if (i == 1)
            w[j++] = v[1];
    }
    write_lines(p, w, n + 1);
    free(w);
    free_lines(v, n);
    struct gf_audit_verify_result r = run_verify();
    CHECK(!r.ok);
    CHECK(r.line == 3 && r.seq == 3);
    CHECK(has(r.reason, "reordered or duplicated"));
}

static void test_insert_forged(void)
{
    // A forged record with the right seq and prev, renumbering the rest: the chain of the
    // inserted record is right, so the first break is where the renumbered records meet the
    // old hashes.
    fresh();
    char p[512];
    seg_path(dir, 0, p);
    char **v;
    int n = read_lines(p, &v);
    uint8_t h[GF_SHA256_LEN];
    gf_audit_line_hash(v[1], strlen(v[1]), h);
    char hex[65], forged[512];
    gf_hex(h, sizeof(h), hex);
    snprintf(forged, sizeof(forged),
             "{\"seq\":3,\"prev\":\"%s\",\"type\":\"admin\",\"ts\":\"x\",\"action\":\"nothing\"}", hex);
    char **w = calloc((size_t)n + 1, sizeof(*w));
    for (int i = 0, j = 0; i < n; i++) {
        w[j++] = v[i];
        if (i == 1)
            w[j++] = forged;
    }
    write_lines(p, w, n + 1);
    free(w);
    free_lines(v, n);
    struct gf_audit_verify_result r = run_verify();
    CHECK(!r.ok);
    CHECK(r.line == 4);
}

static void test_swap_records(void)
{
    fresh();
    char p[512];
    seg_path(dir, 0, p);
    char **v;
    int n = read_lines(p, &v);
    char *t = v[2];
    v[2] = v[3];
    v[3] = t;
    write_lines(p, v, n);
    free_lines(v, n);
    struct gf_audit_verify_result r = run_verify();
    CHECK(!r.ok);
    CHECK(r.line == 3 && r.seq == 3);
}

static void test_truncate_mid_record(void)
{
    fresh();
    int k = count_segments(dir);
    char p[512];
    seg_path(dir, k - 1, p);
    size_t len = 0;
    char *s = slurp(p, &len);
    REQUIRE(len > 20);
    spit(p, s, len - 10);
    free(s);
    struct gf_audit_verify_result r = run_verify();
    CHECK(!r.ok);
    CHECK(has(r.reason, "no newline"));
}

static void test_truncate_whole_records(void)
{
    fresh();
    int k = count_segments(dir);
    char p[512];
    seg_path(dir, k - 1, p);
    char **v;
    int n = read_lines(p, &v);
    REQUIRE(n >= 2);
    write_lines(p, v, n - 2); // drop audit_stopped's final checkpoint and one more
    free_lines(v, n);
    struct gf_audit_verify_result r = run_verify();
    CHECK(!r.ok);
    CHECK(has(r.reason, "tail truncated"));
}

static void remove_segment(int which)
{
    fresh();
    int k = count_segments(dir);
    char p[512];
    seg_path(dir, which < 0 ? k + which : which, p);
    REQUIRE(unlink(p) == 0);
    struct gf_audit_verify_result r = run_verify();
    CHECK(!r.ok);
    CHECK(has(r.reason, "missing"));
}

static void test_remove_first_segment(void)
{
    remove_segment(0);
}

static void test_remove_middle_segment(void)
{
    remove_segment(1);
}

static void test_remove_last_segment(void)
{
    remove_segment(-1);
}

static void test_remove_segment_and_manifest_entry(void)
{
    // Without the manifest's MAC the attacker cannot drop the segment from it; with a rewritten
    // manifest that fails its MAC the break is the manifest.
    fresh();
    char p[512], m[512];
    seg_path(dir, 1, p);
    REQUIRE(unlink(p) == 0);
    snprintf(m, sizeof(m), "%s/MANIFEST.json", dir);
    size_t len = 0;
    char *s = slurp(m, &len);
    const char *name = strrchr(p, '/') + 1;
    char *at = strstr(s, name);
    REQUIRE(at != NULL);
    memmove(at - 1, at + strlen(name) + 2, strlen(at + strlen(name) + 2) + 1); // drop ,"name"
    spit(m, s, strlen(s));
    free(s);
    struct gf_audit_verify_result r = run_verify();
    CHECK(!r.ok);
    CHECK(has(r.reason, "MAC"));
}

static int find_ckpt(char **v, int n)
{
    for (int i = 0; i < n; i++)
        if (strstr(v[i], "\"type\":\"checkpoint\""))
            return i;
    return -1;
}

static void test_forged_checkpoint_mac(void)
{
    fresh();
    char p[512];
    seg_path(dir, 0, p);
    char **v;
    int n = read_lines(p, &v);
    int c = find_ckpt(v, n);
    REQUIRE(c >= 0);
    char *mac = strstr(v[c], "\"mac\":\"");
    REQUIRE(mac != NULL);
    mac[7] = mac[7] == '0' ? '1' : '0';
    write_lines(p, v, n);
    free_lines(v, n);
    struct gf_audit_verify_result r = run_verify();
    CHECK(!r.ok);
    CHECK(r.line == (uint64_t)c + 1);
    CHECK(has(r.reason, "MAC does not match"));
}

/* Recomputes prev of every line from `from` on, as an attacker without the key would. */
static void rechain(char **v, int n, int from)
{
    for (int i = from; i < n; i++) {
        uint8_t h[GF_SHA256_LEN];
        gf_audit_line_hash(v[i - 1], strlen(v[i - 1]), h);
        char *prev = strstr(v[i], "\"prev\":\"");
        gf_hex(h, sizeof(h), prev + 8);
        prev[8 + 64] = '"';
    }
}

static void test_rewritten_chain(void)
{
    // Edit a record, then recompute every later link: the chain holds, the next checkpoint's
    // MAC (over its seq and the head) cannot.
    fresh();
    char p[512];
    seg_path(dir, 0, p);
    char **v;
    int n = read_lines(p, &v);
    char *s = strstr(v[1], "\"status\":200");
    REQUIRE(s != NULL);
    s[11] = '9';
    rechain(v, n, 2);
    write_lines(p, v, n);
    int c = find_ckpt(v, n);
    free_lines(v, n);
    struct gf_audit_verify_result r = run_verify();
    CHECK(!r.ok);
    CHECK(r.line == (uint64_t)c + 1);
    CHECK(has(r.reason, "MAC"));
}

static void test_replace_checkpoint_other_key(void)
{
    // Replace a checkpoint with a valid-looking one made by another key.
    fresh();
    char p[512];
    seg_path(dir, 0, p);
    char **v;
    int n = read_lines(p, &v);
    int c = find_ckpt(v, n);
    REQUIRE(c >= 0);
    char *kid = strstr(v[c], "\"key_id\":\"");
    REQUIRE(kid != NULL);
    memcpy(kid + 10, "0123456789abcdef", 16);
    write_lines(p, v, n);
    free_lines(v, n);
    struct gf_audit_verify_result r = run_verify();
    CHECK(!r.ok);
    CHECK(has(r.reason, "not this key"));
}

static void test_replace_checkpoint_by_record(void)
{
    // The last sealed checkpoint turned into an ordinary record, chain recomputed after it.
    fresh();
    int k = count_segments(dir);
    char p[512];
    seg_path(dir, k - 1, p);
    char **v;
    int n = read_lines(p, &v);
    REQUIRE(n >= 2 && strstr(v[n - 1], "\"type\":\"checkpoint\""));
    char *t = strstr(v[n - 1], "\"type\":\"checkpoint\"");
    char *end = strrchr(v[n - 1], '}');
    snprintf(t, (size_t)(end - t) + 2, "\"type\":\"admin\",\"action\":\"x\"}");
    write_lines(p, v, n);
    free_lines(v, n);
    struct gf_audit_verify_result r = run_verify();
    CHECK(!r.ok);
    CHECK(has(r.reason, "sealed"));
}

static void test_manifest_deleted(void)
{
    fresh();
    char m[512];
    snprintf(m, sizeof(m), "%s/MANIFEST.json", dir);
    REQUIRE(unlink(m) == 0);
    struct gf_audit_verify_result r = run_verify();
    CHECK(!r.ok);
    CHECK(has(r.reason, "manifest missing"));
}

static void test_manifest_edited(void)
{
    fresh();
    char m[512];
    snprintf(m, sizeof(m), "%s/MANIFEST.json", dir);
    size_t len = 0;
    char *s = slurp(m, &len);
    char *q = strstr(s, "\"seq\":");
    REQUIRE(q != NULL);
    q[6] = q[6] == '1' ? '2' : '1';
    spit(m, s, len);
    free(s);
    struct gf_audit_verify_result r = run_verify();
    CHECK(!r.ok);
    CHECK(has(r.reason, "MAC"));
}

static void test_wrong_key(void)
{
    fresh();
    uint8_t key[GF_AUDIT_KEY_LEN];
    memset(key, 7, sizeof(key));
    struct gf_audit_verify_result r;
    struct gf_err err = {0};
    REQUIRE(gf_audit_verify(dir, key, &r, &err) == 0);
    CHECK(!r.ok);
    // Without a key the chain alone verifies.
    REQUIRE(gf_audit_verify(dir, NULL, &r, &err) == 0);
    CHECK(r.ok);
    CHECK(!r.key_checked);
}

static void test_garbage_line(void)
{
    fresh();
    char p[512];
    seg_path(dir, 1, p);
    char **v;
    int n = read_lines(p, &v);
    free(v[0]);
    v[0] = strdup("{\"seq\":1,\"prev\":\"zz\"}");
    write_lines(p, v, n);
    free_lines(v, n);
    struct gf_audit_verify_result r = run_verify();
    CHECK(!r.ok);
    CHECK(r.line == 1);
    CHECK(has(r.reason, "does not start"));
}

static void test_no_dir(void)
{
    struct gf_audit_verify_result r;
    struct gf_err err = {0};
    CHECK(gf_audit_verify("/nonexistent/gf-audit", NULL, &r, &err) == GF_EINVAL);
    CHECK(err.msg[0] != '\0');
}

static void test_verify_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    fresh();
    uint8_t key[GF_AUDIT_KEY_LEN];
    struct gf_err err = {0};
    REQUIRE(gf_audit_key_load(keyfile, false, key, &err) == 0);
    int steps = 0;
    for (long n = 1; n < 100000; n++) {
        struct gf_audit_verify_result r;
        struct gf_err e = {0};
        gf_alloc_fail_after(n, false);
        int rc = gf_audit_verify(dir, key, &r, &e);
        long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        steps++;
        if (failed == 0) {
            CHECK(rc == 0 && r.ok);
            break;
        }
        // A failed allocation is an error or, where a parse could not run, never a false "ok"
        // that skipped checking: either ENOMEM or a complete result.
        CHECK(rc == GF_ENOMEM || (rc == 0 && r.ok) || (rc == 0 && !r.ok));
        if (rc == 0 && !r.ok)
            CHECK(has(r.reason, "manifest") || has(r.reason, "MANIFEST"));
    }
    CHECK(steps > 3);
}

int main(void)
{
    gf_json_init();
    unsetenv("GARDEFOU_AUDIT_KEY");
    gf_log_set_level(GF_LOG_ERROR);
    RUN(test_clean);
    RUN(test_edit_field);
    RUN(test_delete_record);
    RUN(test_insert_record);
    RUN(test_insert_forged);
    RUN(test_swap_records);
    RUN(test_truncate_mid_record);
    RUN(test_truncate_whole_records);
    RUN(test_remove_first_segment);
    RUN(test_remove_middle_segment);
    RUN(test_remove_last_segment);
    RUN(test_remove_segment_and_manifest_entry);
    RUN(test_forged_checkpoint_mac);
    RUN(test_rewritten_chain);
    RUN(test_replace_checkpoint_other_key);
    RUN(test_replace_checkpoint_by_record);
    RUN(test_manifest_deleted);
    RUN(test_manifest_edited);
    RUN(test_wrong_key);
    RUN(test_garbage_line);
    RUN(test_no_dir);
    RUN(test_verify_oom);
    if (base[0])
        rm_rf(base);
    return test_report();
}
