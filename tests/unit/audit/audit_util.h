/* audit_util.h — helpers shared by the audit tests: scratch directories, whole-file reads and
 * writes, line surgery on segment files, and a log filled with n request records. */
#ifndef GF_AUDIT_TEST_UTIL_H
#define GF_AUDIT_TEST_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit/audit.h"
#include "common/common.h"

static GF_UNUSED int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static GF_UNUSED void rm_rf(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh scratch directory "/tmp/gf-audit-XXXXXX"; the log goes to <it>/audit. */
static GF_UNUSED void scratch(char out[64])
{
    snprintf(out, 64, "/tmp/gf-audit-XXXXXX");
    if (mkdtemp(out) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
}

static GF_UNUSED char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (len)
        *len = 0;
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *p = malloc((size_t)n + 1);
    size_t got = fread(p, 1, (size_t)n, f);
    fclose(f);
    p[got] = '\0';
    if (len)
        *len = got;
    return p;
}

static GF_UNUSED void spit(const char *path, const char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        exit(1);
    }
    fwrite(p, 1, n, f);
    fclose(f);
}

/* The path of the k-th segment (0-based, in name order) of dir, or "" if none. */
static GF_UNUSED void seg_path(const char *dir, int k, char out[512])
{
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort), seen = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        const char *nm = list[i]->d_name;
        size_t l = strlen(nm);
        if (strncmp(nm, "audit-", 6) == 0 && l > 6 && strcmp(nm + l - 6, ".jsonl") == 0) {
            if (seen++ == k)
                snprintf(out, 512, "%s/%s", dir, nm);
        }
        free(list[i]);
    }
    free(list);
}

/* Every segment of the log in dir, in order, as one NUL-terminated string (caller frees). */
static GF_UNUSED char *whole_log_of(const char *dir)
{
    size_t cap = 1 << 16, len = 0;
    char *all = malloc(cap);
    all[0] = '\0';
    for (int k = 0;; k++) {
        char p[512];
        seg_path(dir, k, p);
        if (!p[0])
            break;
        size_t n = 0;
        char *s = slurp(p, &n);
        while (len + n + 1 > cap)
            all = realloc(all, cap *= 2);
        memcpy(all + len, s, n + 1);
        len += n;
        free(s);
    }
    return all;
}

static GF_UNUSED int count_segments(const char *dir)
{
    char p[512];
    int k = 0;
    for (;; k++) {
        seg_path(dir, k, p);
        if (!p[0])
            return k;
    }
}

static GF_UNUSED int count_files_containing(const char *dir, const char *needle)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        if (strstr(e->d_name, needle))
            n++;
    if (d)
        closedir(d);
    return n;
}

/* Splits a file into lines (each without '\n'); returns the count. Free with free_lines. */
static GF_UNUSED int read_lines(const char *path, char ***out)
{
    size_t len = 0;
    char *p = slurp(path, &len);
    int n = 0, cap = 16;
    char **v = malloc(sizeof(*v) * (size_t)cap);
    char *s = p;
    while (p && s < p + len) {
        char *nl = memchr(s, '\n', (size_t)(p + len - s));
        size_t l = nl ? (size_t)(nl - s) : (size_t)(p + len - s);
        if (n == cap)
            v = realloc(v, sizeof(*v) * (size_t)(cap *= 2));
        v[n] = malloc(l + 1);
        memcpy(v[n], s, l);
        v[n][l] = '\0';
        n++;
        s += l + 1;
    }
    free(p);
    *out = v;
    return n;
}

static GF_UNUSED void write_lines(const char *path, char **v, int n)
{
    FILE *f = fopen(path, "wb");
    for (int i = 0; i < n; i++)
        if (v[i])
            fprintf(f, "%s\n", v[i]);
    fclose(f);
}

static GF_UNUSED void free_lines(char **v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static GF_UNUSED void test_config(struct gf_audit_config *c, const char *dir)
{
    gf_audit_config_default(c);
    c->dir = dir;
    c->checkpoint_every = 5;
    c->checkpoint_interval_ms = 0;
    c->commit_interval_ms = 0;
    c->retry_interval_ms = 5;
}

/* A request record numbered i (request id "req-<i>"). */
static GF_UNUSED void fill_request(struct gf_audit_request *r, int i, char *id, size_t idlen)
{
    static const struct gf_audit_verdict vs[] = {
        {"input", "pii.email", "pii", "redact", 0.93},
        {"output", "tox.1", "toxicity", "block", 0.71},
    };
    snprintf(id, idlen, "req-%d", i);
    memset(r, 0, sizeof(*r));
    r->request_id = id;
    r->key_id = i % 2 ? "key-odd" : "key-even";
    r->client = "127.0.0.1";
    r->endpoint = "/v1/chat/completions";
    r->model = "tiny";
    r->policy_version = "p1";
    r->verdicts = vs;
    r->n_verdicts = i % 3 == 0 ? 2 : (i % 3 == 1 ? 1 : 0);
    r->prompt_tokens = 10 + i;
    r->completion_tokens = 20;
    r->latency_ms = 1.5;
    r->finish_reason = "stop";
    r->status = 200;
    r->prompt = "please mail alice@example.com about card 4111 1111 1111 1111";
    r->prompt_len = strlen(r->prompt);
    r->completion = "done, the secret word is marmalade";
    r->completion_len = strlen(r->completion);
}

struct done_log {
    int calls, errors;
    uint64_t seqs[4096];
    int status[4096];
    int ids[4096];
};

struct done_ctx {
    struct done_log *log;
    int id;
};

static GF_UNUSED void on_done(void *ud, int status, uint64_t seq)
{
    struct done_ctx *c = ud;
    struct done_log *l = c->log;
    if (l->calls < 4096) {
        l->seqs[l->calls] = seq;
        l->status[l->calls] = status;
        l->ids[l->calls] = c->id;
    }
    l->calls++;
    if (status != 0)
        l->errors++;
    free(c);
}

/* Appends n request records numbered from first; returns how many appends returned 0. */
static GF_UNUSED int append_n(struct gf_audit *a, int first, int n, struct done_log *log)
{
    int ok = 0;
    for (int i = first; i < first + n; i++) {
        struct gf_audit_request r;
        char id[32];
        fill_request(&r, i, id, sizeof(id));
        struct done_ctx *c = log ? malloc(sizeof(*c)) : NULL;
        if (c) {
            c->log = log;
            c->id = i;
        }
        int rc = gf_audit_log_request(a, &r, c ? on_done : NULL, c);
        if (rc == 0)
            ok++;
        else
            free(c);
    }
    return ok;
}

/* Writes a log of n requests in base/audit with cfg tweaks applied by the caller's config. */
static GF_UNUSED int make_log(const struct gf_audit_config *cfg, int n)
{
    struct gf_audit *a = NULL;
    struct gf_err err = {0};
    if (gf_audit_open(cfg, NULL, &a, &err) != 0) {
        fprintf(stderr, "make_log: %s\n", err.msg);
        return -1;
    }
    append_n(a, 0, n, NULL);
    gf_audit_close(a);
    return 0;
}

static GF_UNUSED bool verify_ok(const char *dir, const char *keyfile, struct gf_audit_verify_result *r)
{
    uint8_t key[GF_AUDIT_KEY_LEN];
    struct gf_err err = {0};
    if (gf_audit_key_load(keyfile, false, key, &err) != 0) {
        fprintf(stderr, "verify_ok: %s\n", err.msg);
        return false;
    }
    if (gf_audit_verify(dir, key, r, &err) != 0) {
        fprintf(stderr, "verify_ok: %s\n", err.msg);
        return false;
    }
    if (!r->ok)
        fprintf(stderr, "  verify: %s line %llu seq %llu: %s\n", r->file,
                (unsigned long long)r->line, (unsigned long long)r->seq, r->reason);
    return r->ok;
}

#endif
