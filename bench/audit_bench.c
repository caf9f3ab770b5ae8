/* audit_bench.c — audit writer throughput and verify speed. Writes N request records (about
 * 700 bytes each, retention hashes) through the writer with group commit in the given durability
 * mode, waiting for every completion, then verifies the log. Prints records/s and verify MB/s.
 * Usage: audit_bench DIR [N] [fsync|write|none] [commit_interval_ms] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "common/common.h"

static long done_ok, done_err;

/* CPU seconds used by the whole process (all threads): on a shared machine the wall clock says
 * more about the neighbours than about the code. */
static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void on_done(void *ud, int status, uint64_t seq)
{
    (void)ud;
    (void)seq;
    if (status == 0)
        done_ok++;
    else
        done_err++;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: audit_bench DIR [N] [fsync|write|none] [commit_interval_ms]\n");
        return 2;
    }
    gf_json_init();
    gf_log_set_level(GF_LOG_WARN);
    long n = argc > 2 ? strtol(argv[2], NULL, 10) : 100000;
    struct gf_audit_config c;
    gf_audit_config_default(&c);
    c.dir = argv[1];
    if (argc > 3 && gf_audit_durability_parse(argv[3], &c.durability) != 0) {
        fprintf(stderr, "audit_bench: bad durability '%s'\n", argv[3]);
        return 2;
    }
    if (argc > 4)
        c.commit_interval_ms = (int)strtol(argv[4], NULL, 10);
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    if (gf_audit_open(&c, NULL, &a, &err) != 0) {
        fprintf(stderr, "audit_bench: %s\n", err.msg);
        return 1;
    }
    static const struct gf_audit_verdict vs[] = {{"input", "pii.email", "pii", "redact", 0.93}};
    const char *prompt = "Summarize the following meeting notes for the weekly report, keeping "
                         "the action items and owners, and leave out the small talk.";
    const char *completion = "Action items: Alice ships the billing fix by Friday; Bob reviews "
                             "the audit format; Carol books the room for the retrospective.";
    uint64_t t0 = gf_now_ns();
    double c0 = cpu_s();
    for (long i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof(id), "req-%ld", i);
        struct gf_audit_request r = {
            .request_id = id, .key_id = "key_4fa2c1", .client = "10.1.2.3",
            .endpoint = "/v1/chat/completions", .model = "llama-3.2-1b-instruct",
            .policy_version = "2026-11-30.1", .verdicts = vs, .n_verdicts = 1,
            .prompt_tokens = 412, .completion_tokens = 96, .latency_ms = 812.5,
            .finish_reason = "stop", .status = 200, .prompt = prompt,
            .prompt_len = strlen(prompt), .completion = completion,
            .completion_len = strlen(completion)};
        if (gf_audit_log_request(a, &r, on_done, NULL) != 0)
            done_err++;
        if ((i & 1023) == 1023)
            gf_audit_poll(a);
    }
    gf_audit_flush(a);
    uint64_t t1 = gf_now_ns();
    double c1 = cpu_s();
    struct gf_audit_stats st;
    gf_audit_get_stats(a, &st);
    gf_audit_close(a);
    double secs = (double)(t1 - t0) / 1e9;
    printf("write: %ld records in %.3f s = %.0f records/s wall, %.0f records per CPU-second "
           "(durability %s, %llu fsyncs, %.1f records per group commit), %ld errors\n",
           done_ok, secs, (double)done_ok / secs, (double)done_ok / (c1 - c0),
           gf_audit_durability_name(c.durability),
           (unsigned long long)st.fsyncs, st.batches ? (double)st.records / (double)st.batches : 0,
           done_err);
    char *kp = gf_audit_default_key_path(argv[1]);
    uint8_t key[GF_AUDIT_KEY_LEN];
    if (kp == NULL || gf_audit_key_load(kp, false, key, &err) != 0) {
        fprintf(stderr, "audit_bench: %s\n", err.msg);
        gf_free(kp);
        return 1;
    }
    gf_free(kp);
    struct gf_audit_verify_result r;
    t0 = gf_now_ns();
    c0 = cpu_s();
    if (gf_audit_verify(argv[1], key, &r, &err) != 0) {
        fprintf(stderr, "audit_bench: %s\n", err.msg);
        return 1;
    }
    t1 = gf_now_ns();
    c1 = cpu_s();
    secs = (double)(t1 - t0) / 1e9;
    printf("verify: %s, %llu records, %.1f MB in %.3f s = %.0f MB/s wall, %.0f MB per "
           "CPU-second\n", r.ok ? "ok" : r.reason, (unsigned long long)r.records,
           (double)r.bytes / 1e6, secs, (double)r.bytes / 1e6 / secs,
           (double)r.bytes / 1e6 / (c1 - c0));
    return r.ok && done_err == 0 ? 0 : 1;
}
