/* Unit tests of gateway/keystore.c and keyrec.c: durability across reopen, O(1) lookups by
 * digest and id, rotation digests, recovery from a torn last record cut at every byte offset,
 * refusal of damage elsewhere, snapshot + journal replay (including a crash between the snapshot
 * and the journal truncation), record parsing, and OOM loops on open and put. */
#include "gateway/keys_int.h"

#include <string.h>

#include "keys_testutil.h"
#include "test.h"

static struct gf_keystore_file_opts fast = {0, true};

static void make_key(struct gf_key *k, int i)
{
    memset(k, 0, sizeof(*k));
    char secret[GF_APIKEY_BUFLEN];
    gf_apikey_generate(secret);
    gf_apikey_new_id(k->id);
    gf_apikey_prefix(secret, k->prefix);
    gf_apikey_digest(secret, GF_APIKEY_LEN, k->digest);
    snprintf(k->name, sizeof(k->name), "client \"%d\" é", i);
    snprintf(k->group, sizeof(k->group), "g%d", i % 3);
    k->limits.rpm = i;
    k->limits.tpm = 1000 + i;
    k->created = 1700000000000ll + i;
}

static bool same(const struct gf_key *a, const struct gf_key *b)
{
    return strcmp(a->id, b->id) == 0 && strcmp(a->name, b->name) == 0 &&
           strcmp(a->group, b->group) == 0 && strcmp(a->prefix, b->prefix) == 0 &&
           memcmp(a->digest, b->digest, GF_SHA256_LEN) == 0 && a->has_old == b->has_old &&
           a->limits.rpm == b->limits.rpm && a->limits.tpm == b->limits.tpm &&
           a->revoked == b->revoked && a->expires == b->expires && a->suspended == b->suspended &&
           strcmp(a->suspend_reason, b->suspend_reason) == 0;
}

static void test_put_lookup_reopen(void)
{
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct gf_keystore *ks = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_keystore_open_file(dir, &fast, &ks, &err) == 0);
    struct gf_key keys[200], got;
    for (int i = 0; i < 200; i++) {
        make_key(&keys[i], i);
        REQUIRE(ks->ops->put(ks, &keys[i], &err) == 0);
    }
    keys[7].revoked = 42;
    CHECK(ks->ops->put(ks, &keys[7], &err) == 0);
    CHECK(ks->ops->count(ks) == 200);
    enum gf_key_match m;
    CHECK(ks->ops->lookup(ks, keys[7].digest, &got, &m) == 0 && same(&got, &keys[7]));
    CHECK(m == GF_KEY_MATCH_CURRENT && got.seq == 201);
    uint8_t nod[GF_SHA256_LEN] = {1};
    CHECK(ks->ops->lookup(ks, nod, &got, &m) == GF_ENOTFOUND);
    CHECK(ks->ops->get(ks, "key_0000000000000000", &got) == GF_ENOTFOUND);
    // A digest that belongs to another key is refused and changes nothing.
    struct gf_key dup = keys[3];
    gf_apikey_new_id(dup.id);
    err.code = 0;
    CHECK(ks->ops->put(ks, &dup, &err) == GF_EINVAL);
    CHECK(ks->ops->count(ks) == 200);
    gf_keystore_close(ks);
    REQUIRE(gf_keystore_open_file(dir, &fast, &ks, &err) == 0);
    int bad = 0;
    for (int i = 0; i < 200; i++) {
        bad += ks->ops->get(ks, keys[i].id, &got) != 0 || !same(&got, &keys[i]);
        bad += ks->ops->lookup(ks, keys[i].digest, &got, &m) != 0 || !same(&got, &keys[i]);
    }
    CHECK(bad == 0);
    gf_keystore_close(ks);
    tu_rmtree(dir);
}

static int count_visit(void *ud, const struct gf_key *k)
{
    (void)k;
    (*(int *)ud)++;
    return 0;
}

static void test_rotation_digests(void)
{
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct gf_keystore *ks = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_keystore_open_file(dir, &fast, &ks, &err) == 0);
    struct gf_key k, got;
    make_key(&k, 1);
    REQUIRE(ks->ops->put(ks, &k, &err) == 0);
    uint8_t first[GF_SHA256_LEN];
    memcpy(first, k.digest, sizeof(first));
    // Rotate: the first digest becomes the old one.
    k.has_old = true;
    memcpy(k.old_digest, first, sizeof(first));
    k.old_until = 5;
    k.digest[0] ^= 0xff;
    REQUIRE(ks->ops->put(ks, &k, &err) == 0);
    enum gf_key_match m;
    CHECK(ks->ops->lookup(ks, first, &got, &m) == 0 && m == GF_KEY_MATCH_OLD);
    CHECK(ks->ops->lookup(ks, k.digest, &got, &m) == 0 && m == GF_KEY_MATCH_CURRENT);
    // Rotate again without grace: neither earlier digest finds the key any more.
    uint8_t second[GF_SHA256_LEN];
    memcpy(second, k.digest, sizeof(second));
    k.has_old = false;
    k.digest[1] ^= 0xff;
    REQUIRE(ks->ops->put(ks, &k, &err) == 0);
    CHECK(ks->ops->lookup(ks, first, &got, &m) == GF_ENOTFOUND);
    CHECK(ks->ops->lookup(ks, second, &got, &m) == GF_ENOTFOUND);
    CHECK(ks->ops->lookup(ks, k.digest, &got, &m) == 0);
    int n = 0;
    ks->ops->list(ks, count_visit, &n);
    CHECK(n == 1);
    gf_keystore_close(ks);
    tu_rmtree(dir);
}

/* Writes 3 records, then for every cut inside the last one: the store opens with the first two,
 * the file is cut back to whole records, and a new put survives another reopen. */
static void test_torn_last_record_every_offset(void)
{
    char dir[256], path[300];
    tu_mkdtemp(dir, sizeof(dir));
    struct gf_keystore *ks = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_keystore_open_file(dir, &fast, &ks, &err) == 0);
    struct gf_key k[4];
    for (int i = 0; i < 3; i++) {
        make_key(&k[i], i);
        REQUIRE(ks->ops->put(ks, &k[i], &err) == 0);
    }
    gf_keystore_close(ks);
    snprintf(path, sizeof(path), "%s/journal.log", dir);
    size_t len = 0;
    char *full = tu_read(path, &len);
    REQUIRE(full != NULL && len > 0 && full[len - 1] == '\n');
    size_t start = len - 1;
    while (start > 0 && full[start - 1] != '\n')
        start--;
    make_key(&k[3], 3);
    int bad = 0;
    for (size_t cut = start; cut < len; cut++) {
        tu_write(path, full, cut);
        err.code = 0;
        if (gf_keystore_open_file(dir, &fast, &ks, &err) != 0) {
            bad++;
            fprintf(stderr, "cut %zu: %s\n", cut, err.msg);
            continue;
        }
        struct gf_key got;
        bad += ks->ops->count(ks) != 2;
        bad += ks->ops->get(ks, k[2].id, &got) != GF_ENOTFOUND;
        bad += ks->ops->put(ks, &k[3], &err) != 0;
        gf_keystore_close(ks);
        REQUIRE(gf_keystore_open_file(dir, &fast, &ks, &err) == 0);
        bad += ks->ops->count(ks) != 3 || ks->ops->get(ks, k[3].id, &got) != 0;
        gf_keystore_close(ks);
    }
    CHECK_MSG(bad == 0, "%d failures over %zu cuts", bad, len - start);
    // A flipped byte in the last record (whole line, bad checksum) is a torn write too.
    memcpy(full + start + 20, "X", 1);
    tu_write(path, full, len);
    CHECK(gf_keystore_open_file(dir, &fast, &ks, &err) == 0);
    if (ks) {
        CHECK(ks->ops->count(ks) == 2);
        gf_keystore_close(ks);
    }
    free(full);
    tu_rmtree(dir);
}

static void test_damage_refused(void)
{
    char dir[256], path[300];
    tu_mkdtemp(dir, sizeof(dir));
    struct gf_keystore *ks = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_keystore_open_file(dir, &fast, &ks, &err) == 0);
    for (int i = 0; i < 3; i++) {
        struct gf_key k;
        make_key(&k, i);
        REQUIRE(ks->ops->put(ks, &k, &err) == 0);
    }
    gf_keystore_close(ks);
    snprintf(path, sizeof(path), "%s/journal.log", dir);
    size_t len = 0;
    char *full = tu_read(path, &len);
    REQUIRE(full != NULL);
    // Damage in the middle record: refused, the file left alone.
    char *second = strchr(full, '\n') + 1;
    second[30] ^= 1;
    tu_write(path, full, len);
    err.code = 0;
    err.msg[0] = '\0';
    CHECK(gf_keystore_open_file(dir, &fast, &ks, &err) == GF_EFORMAT);
    CHECK(strstr(err.msg, "record 1") != NULL && strstr(err.msg, "checksum") != NULL);
    size_t len2 = 0;
    free(tu_read(path, &len2));
    CHECK(len2 == len);
    second[30] ^= 1;
    // A whole last record with a good checksum and bad content is damage, not a torn write.
    char *last = full + len - 1;
    while (last[-1] != '\n')
        last--;
    const char *body = "{\"seq\":3}";
    char line[128];
    snprintf(line, sizeof(line), "%08x %s\n", gf_crc32(0, body, strlen(body)), body);
    size_t keep = (size_t)(last - full);
    memcpy(full + keep, line, strlen(line));
    tu_write(path, full, keep + strlen(line));
    err.code = 0;
    err.msg[0] = '\0';
    CHECK(gf_keystore_open_file(dir, &fast, &ks, &err) == GF_EFORMAT);
    CHECK_MSG(strstr(err.msg, "id: expected a string") != NULL, "%s", err.msg);
    free(full);
    tu_rmtree(dir);
}

static void test_snapshot_replay(void)
{
    char dir[256], path[300];
    tu_mkdtemp(dir, sizeof(dir));
    struct gf_keystore_file_opts o = {5, true};
    struct gf_keystore *ks = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_keystore_open_file(dir, &o, &ks, &err) == 0);
    struct gf_key k[8];
    for (int i = 0; i < 8; i++) {
        make_key(&k[i], i);
        REQUIRE(ks->ops->put(ks, &k[i], &err) == 0);
    }
    for (int i = 0; i < 4; i++) { // 12 records: snapshots after 5 and 10
        k[i].revoked = 1000 + i;
        REQUIRE(ks->ops->put(ks, &k[i], &err) == 0);
    }
    snprintf(path, sizeof(path), "%s/journal.log", dir);
    size_t jlen = 0;
    char *j = tu_read(path, &jlen);
    int lines = 0;
    for (size_t i = 0; j && i < jlen; i++)
        lines += j[i] == '\n';
    CHECK(lines == 2);
    free(j);
    gf_keystore_close(ks);
    REQUIRE(gf_keystore_open_file(dir, &o, &ks, &err) == 0);
    int bad = 0;
    struct gf_key got;
    for (int i = 0; i < 8; i++)
        bad += ks->ops->get(ks, k[i].id, &got) != 0 || !same(&got, &k[i]);
    CHECK(bad == 0);
    // A crash between the snapshot's rename and the journal's truncation leaves old records
    // in the journal; their sequence numbers are covered by the snapshot and skipped.
    k[5].suspended = 77;
    REQUIRE(ks->ops->put(ks, &k[5], &err) == 0);
    size_t before_len = 0;
    char *before = tu_read(path, &before_len);
    REQUIRE(gf_keystore_file_snapshot(ks, &err) == 0);
    gf_keystore_close(ks);
    tu_write(path, before, before_len);
    free(before);
    REQUIRE(gf_keystore_open_file(dir, &o, &ks, &err) == 0);
    bad = 0;
    for (int i = 0; i < 8; i++)
        bad += ks->ops->get(ks, k[i].id, &got) != 0 || !same(&got, &k[i]);
    CHECK(bad == 0);
    gf_keystore_close(ks);
    tu_rmtree(dir);
}

static void test_keyrec_parse(void)
{
    struct gf_key k, back;
    make_key(&k, 5);
    k.has_old = true;
    k.old_until = 99;
    k.seq = 9;
    struct gf_buf b;
    gf_buf_init(&b, 4096);
    REQUIRE(gf_keyrec_write(&b, &k) == 0);
    struct gf_err err = {0};
    CHECK(gf_keyrec_parse(b.data, b.len, &back, &err) == 0 && same(&k, &back));
    CHECK(back.seq == 9 && back.old_until == 99);
    gf_buf_cleanup(&b);
    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"[]", "not a JSON object"},
        {"{\"seq\":1} x", "not a JSON object"},
        {"{\"seq\":-1}", "seq: expected a whole number"},
        {"{\"seq\":1.5}", "seq: expected a whole number"},
        {"{\"seq\":1,\"id\":\"nope\"}", "id: expected key_"},
        {"{\"seq\":1,\"id\":\"key_0123456789abcdef\",\"prefix\":\"gf_\"}", "prefix:"},
        {"{\"seq\":1,\"id\":\"key_0123456789abcdef\",\"prefix\":\"gf_abcd\",\"name\":\"\"}",
         "name:"},
        {"{\"seq\":1,\"id\":\"key_0123456789abcdef\",\"prefix\":\"gf_abcd\",\"name\":\"n\","
         "\"group\":\"a b\"}",
         "group:"},
        {"{\"seq\":1,\"id\":\"key_0123456789abcdef\",\"prefix\":\"gf_abcd\",\"name\":\"n\","
         "\"group\":\"g\",\"digest\":\"00\"}",
         "digest: expected 64 hex"},
    };
    for (size_t i = 0; i < GF_ARRAY_LEN(bad); i++) {
        gf_err_clear(&err);
        int rc = gf_keyrec_parse(bad[i].json, strlen(bad[i].json), &back, &err);
        CHECK_MSG(rc == GF_EFORMAT && strstr(err.msg, bad[i].msg) != NULL, "%s -> %s", bad[i].json,
                  err.msg);
    }
}

static void test_oom_open_and_put(void)
{
    if (!gf_alloc_fail_supported())
        return;
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct gf_keystore_file_opts o = {4, true};
    struct gf_keystore *ks = NULL;
    struct gf_err err = {0};
    REQUIRE(gf_keystore_open_file(dir, &o, &ks, &err) == 0);
    struct gf_key k[6];
    for (int i = 0; i < 6; i++) {
        make_key(&k[i], i);
        REQUIRE(ks->ops->put(ks, &k[i], &err) == 0);
    }
    gf_keystore_close(ks);
    int wrong = 0, steps = 0;
    for (long n = 1; n < 10000; n++, steps++) {
        gf_alloc_fail_after(n, true);
        gf_err_clear(&err);
        int rc = gf_keystore_open_file(dir, &o, &ks, &err);
        gf_alloc_fail_after(0, false);
        if (rc == 0)
            break;
        wrong += rc != GF_ENOMEM;
    }
    CHECK_MSG(wrong == 0, "%d of %d failed opens did not say ENOMEM", wrong, steps);
    REQUIRE(ks != NULL);
    CHECK(ks->ops->count(ks) == 6); // no failed open mistook a record for a torn one
    struct gf_key extra;
    make_key(&extra, 9);
    wrong = 0;
    for (long n = 1; n < 10000; n++) {
        gf_alloc_fail_after(n, true);
        int rc = ks->ops->put(ks, &extra, &err);
        gf_alloc_fail_after(0, false);
        if (rc == 0)
            break;
        wrong += rc != GF_ENOMEM;
    }
    CHECK(wrong == 0);
    CHECK(ks->ops->count(ks) == 7);
    gf_keystore_close(ks);
    REQUIRE(gf_keystore_open_file(dir, &o, &ks, &err) == 0);
    CHECK(ks->ops->count(ks) == 7);
    gf_keystore_close(ks);
    tu_rmtree(dir);
}

static void test_durable_fsync_path(void)
{
    // The real fsync path (no_fsync off) on a few records, so it is not only mocked.
    char dir[256];
    tu_mkdtemp(dir, sizeof(dir));
    struct gf_keystore *ks = NULL;
    struct gf_err err = {0};
    struct gf_keystore_file_opts o = {2, false};
    REQUIRE(gf_keystore_open_file(dir, &o, &ks, &err) == 0);
    struct gf_key k;
    for (int i = 0; i < 3; i++) {
        make_key(&k, i);
        CHECK(ks->ops->put(ks, &k, &err) == 0);
    }
    gf_keystore_close(ks);
    struct stat st;
    char path[300];
    snprintf(path, sizeof(path), "%s/snapshot.json", dir);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    snprintf(path, sizeof(path), "%s/journal.log", dir);
    CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(stat(dir, &st) == 0);
    // A directory that cannot exist is a clear error.
    CHECK(gf_keystore_open_file("/proc/nonexistent/keys", &o, &ks, &err) == GF_EIO);
    tu_rmtree(dir);
}

int main(void)
{
    gf_json_init();
    gf_log_set_level(GF_LOG_ERROR);
    RUN(test_put_lookup_reopen);
    RUN(test_rotation_digests);
    RUN(test_torn_last_record_every_offset);
    RUN(test_damage_refused);
    RUN(test_snapshot_replay);
    RUN(test_keyrec_parse);
    RUN(test_oom_open_and_put);
    RUN(test_durable_fsync_path);
    return test_report();
}
