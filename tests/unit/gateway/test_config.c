/* test_config.c — the configuration table: defaults, JSON files, overrides, and refusals with
 * "FILE: key.path: reason"; both sides of the limits; an OOM loop over a full load. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gateway/gateway.h"
#include "test.h"

static int load(struct gf_config *cfg, const char *text, struct gf_err *err)
{
    gf_err_clear(err);
    return gf_config_load_text(cfg, "c.json", text, strlen(text), err);
}

static void test_defaults(void)
{
    struct gf_config cfg;
    REQUIRE(gf_config_init(&cfg) == 0);
    CHECK_STREQ(cfg.listen, "127.0.0.1:8080");
    CHECK_STREQ(cfg.data_dir, "./gardefou-data");
    CHECK(cfg.max_body_bytes == 1048576);
    CHECK(cfg.max_header_bytes == 16384);
    CHECK(cfg.header_timeout_ms == 10000);
    CHECK(cfg.n_upstream_urls == 0 && cfg.upstream_urls == NULL);
    CHECK(cfg.model_path == NULL);
    // every row has a doc line and a default that parses (gf_config_init checked the latter)
    for (const struct gf_config_row *r = gf_config_rows; r->path; r++)
        CHECK_MSG(r->doc != NULL && r->doc[0] != '\0', "%s", r->path);
    gf_config_cleanup(&cfg);
}

static void test_file(void)
{
    struct gf_config cfg;
    struct gf_err err = {0};
    REQUIRE(gf_config_init(&cfg) == 0);
    CHECK(load(&cfg,
               "{\"server\":{\"listen\":\"0.0.0.0:9000\",\"log_level\":\"debug\"},"
               "\"limits\":{\"max_body_bytes\":2048},"
               "\"upstream\":{\"urls\":[\"http://a:1\",\"http://b:2\"],\"api_key\":\"k\"}}",
               &err) == 0);
    CHECK_STREQ(cfg.listen, "0.0.0.0:9000");
    CHECK(cfg.max_body_bytes == 2048);
    CHECK(cfg.n_upstream_urls == 2);
    CHECK_STREQ(cfg.upstream_urls[1], "http://b:2");
    CHECK_STREQ(cfg.upstream_api_key, "k");
    // a flag replaces, a repeated flag appends
    CHECK(gf_config_set(&cfg, "upstream.urls", "http://c:3", false, &err) == 0);
    CHECK(gf_config_set(&cfg, "upstream.urls", "http://d:4", true, &err) == 0);
    CHECK(cfg.n_upstream_urls == 2 && strcmp(cfg.upstream_urls[0], "http://c:3") == 0);
    // null clears a string
    CHECK(load(&cfg, "{\"upstream\":{\"api_key\":null}}", &err) == 0);
    CHECK(cfg.upstream_api_key == NULL);
    gf_config_cleanup(&cfg);
}

static void expect_refused(const char *text, const char *msg)
{
    struct gf_config cfg;
    struct gf_err err = {0};
    REQUIRE(gf_config_init(&cfg) == 0);
    int rc = load(&cfg, text, &err);
    CHECK(rc != 0);
    CHECK_MSG(strcmp(err.msg, msg) == 0, "got \"%s\", want \"%s\"", err.msg, msg);
    gf_config_cleanup(&cfg);
}

static void test_refusals(void)
{
    expect_refused("{\"server\":{\"lisen\":\"x\"}}", "c.json: server.lisen: unknown key");
    expect_refused("{\"nope\":1}", "c.json: nope: unknown key");
    expect_refused("{\"limits\":5}", "c.json: limits: expected an object");
    expect_refused("{\"limits\":{\"max_body_bytes\":\"big\"}}",
                   "c.json: limits.max_body_bytes: expected an integer");
    expect_refused("{\"limits\":{\"max_body_bytes\":1.5}}",
                   "c.json: limits.max_body_bytes: expected an integer, got 1.5");
    expect_refused("{\"limits\":{\"max_body_bytes\":1023}}",
                   "c.json: limits.max_body_bytes: 1023 is out of range [1024, 1073741824]");
    expect_refused("{\"limits\":{\"max_connections\":0}}",
                   "c.json: limits.max_connections: 0 is out of range [1, 1000000]");
    expect_refused("{\"server\":{\"log_level\":\"loud\"}}",
                   "c.json: server.log_level: expected debug, info, warn, error or off");
    expect_refused("{\"server\":{\"listen\":\"localhost\"}}",
                   "c.json: server.listen: expected HOST:PORT, got \"localhost\"");
    expect_refused("{\"upstream\":{\"urls\":[\"ftp://x\"]}}",
                   "c.json: upstream.urls: \"ftp://x\" is not an http:// or https:// URL");
    expect_refused("{\"upstream\":{\"urls\":[1]}}", "c.json: upstream.urls[0]: expected a string");
    expect_refused("{\"upstream\":{\"urls\":\"http://a\"}}",
                   "c.json: upstream.urls: expected an array of strings");
    expect_refused("{\"server\":{\"listen\":\"a:1\",\"listen\":\"b:2\"}}",
                   "c.json: server.listen: duplicate key");
    expect_refused("[1]", "c.json: the top level must be an object");
    expect_refused("{\"server\":", "c.json: line 1: invalid JSON");
    // both sides of a limit are accepted
    struct gf_config cfg;
    struct gf_err err = {0};
    REQUIRE(gf_config_init(&cfg) == 0);
    CHECK(load(&cfg, "{\"limits\":{\"max_body_bytes\":1024}}", &err) == 0);
    CHECK(load(&cfg, "{\"limits\":{\"max_body_bytes\":1073741824}}", &err) == 0);
    CHECK(gf_config_set(&cfg, "limits.max_body_bytes", "12x", false, &err) == GF_EINVAL);
    gf_config_cleanup(&cfg);
}

static void test_file_errors(void)
{
    struct gf_config cfg;
    struct gf_err err = {0};
    REQUIRE(gf_config_init(&cfg) == 0);
    CHECK(gf_config_load_file(&cfg, "/nonexistent/gardefou.json", &err) == GF_EIO);
    CHECK(strncmp(err.msg, "/nonexistent/gardefou.json: cannot open", 39) == 0);
    char path[] = "/tmp/gf-config-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    const char *text = "{\n  \"limits\": {\n    \"max_stop\": 65\n  }\n}\n";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    gf_err_clear(&err);
    CHECK(gf_config_load_file(&cfg, path, &err) == GF_EINVAL);
    char want[128];
    snprintf(want, sizeof(want), "%s: limits.max_stop: 65 is out of range [0, 64]", path);
    CHECK_STREQ(err.msg, want);
    unlink(path);
    gf_config_cleanup(&cfg);
}

static void test_oom(void)
{
    if (!gf_alloc_fail_supported())
        return;
    const char *text = "{\"server\":{\"listen\":\"0.0.0.0:9000\"},"
                       "\"upstream\":{\"urls\":[\"http://a:1\",\"http://b:2\"],\"models\":[\"m\"]}}";
    int steps = 0;
    for (long n = 1; n < 10000; n++) {
        struct gf_config cfg;
        struct gf_err err = {0};
        gf_alloc_fail_after(n, false);
        int rc = gf_config_init(&cfg);
        if (rc == 0) {
            rc = gf_config_load_text(&cfg, "c.json", text, strlen(text), &err);
            gf_config_cleanup(&cfg);
        }
        long failed = gf_alloc_failures();
        gf_alloc_fail_after(0, false);
        steps++;
        if (failed == 0) {
            CHECK(rc == 0);
            break;
        }
        CHECK_MSG(rc == GF_ENOMEM || rc == GF_EFORMAT, "step %ld: rc %d", n, rc);
    }
    CHECK(steps > 5);
}

/* Every key of the table is documented in docs/config.md (argv[1]). */
static const char *doc_path;

static void test_documented(void)
{
    if (doc_path == NULL)
        return;
    FILE *f = fopen(doc_path, "r");
    REQUIRE(f != NULL);
    static char doc[1 << 16];
    size_t n = fread(doc, 1, sizeof(doc) - 1, f);
    fclose(f);
    doc[n] = '\0';
    for (const struct gf_config_row *r = gf_config_rows; r->path; r++) {
        char want[160];
        snprintf(want, sizeof(want), "| `%s` |", r->path);
        CHECK_MSG(strstr(doc, want) != NULL, "%s is not in %s", r->path, doc_path);
    }
}

int main(int argc, char **argv)
{
    gf_json_init();
    doc_path = argc > 1 ? argv[1] : NULL;
    RUN(test_documented);
    RUN(test_defaults);
    RUN(test_file);
    RUN(test_refusals);
    RUN(test_file_errors);
    RUN(test_oom);
    return test_report();
}
