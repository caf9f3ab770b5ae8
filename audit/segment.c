/* segment.c — the files of a log directory: segment names, listing, the MAC'd manifest and the
 * HMAC key. Invariant: the manifest is replaced atomically (write, fsync, rename, fsync dir), so
 * a reader sees either the old or the new one, never a mix. */
#include "audit/audit_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

void audit_seg_name(uint64_t first_seq, char out[AUDIT_SEG_NAME_MAX])
{
    snprintf(out, AUDIT_SEG_NAME_MAX, AUDIT_SEG_PREFIX "%016" PRIu64 AUDIT_SEG_SUFFIX, first_seq);
}

bool audit_seg_parse(const char *name, uint64_t *first_seq)
{
    size_t pl = strlen(AUDIT_SEG_PREFIX), sl = strlen(AUDIT_SEG_SUFFIX), n = strlen(name);
    if (n != pl + 16 + sl || memcmp(name, AUDIT_SEG_PREFIX, pl) != 0 ||
        strcmp(name + pl + 16, AUDIT_SEG_SUFFIX) != 0)
        return false;
    uint64_t v = 0;
    for (size_t i = pl; i < pl + 16; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    *first_seq = v;
    return true;
}

char *audit_path(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *p = gf_malloc(a + b + 2);
    if (p == NULL)
        return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

void audit_names_free(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        gf_free(names[i]);
    gf_free(names);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int audit_seg_list(const char *dir, char ***names, size_t *n, size_t *n_torn, struct gf_err *err)
{
    *names = NULL;
    *n = 0;
    if (n_torn)
        *n_torn = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return gf_err_set(err, errno == ENOENT ? GF_EINVAL : GF_EIO, "%s: %s", dir,
                          strerror(errno));
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        uint64_t first;
        if (strstr(e->d_name, ".torn") != NULL && n_torn)
            (*n_torn)++;
        if (!audit_seg_parse(e->d_name, &first))
            continue;
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nv = gf_realloc(v, nc * sizeof(*v));
            if (nv == NULL) {
                rc = gf_err_set(err, GF_ENOMEM, "%s: out of memory listing segments", dir);
                goto fail;
            }
            v = nv;
            cap = nc;
        }
        if ((v[cnt] = gf_strdup(e->d_name)) == NULL) {
            rc = gf_err_set(err, GF_ENOMEM, "%s: out of memory listing segments", dir);
            goto fail;
        }
        cnt++;
    }
    closedir(d);
    if (cnt > 1)
        qsort(v, cnt, sizeof(*v), cmp_names); // fixed-width numbers: name order is seq order
    *names = v;
    *n = cnt;
    return 0;
fail:
    closedir(d);
    audit_names_free(v, cnt);
    return rc;
}

int audit_read_file(const char *path, size_t max, char **out, size_t *len, struct gf_err *err)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return gf_err_set(err, errno == ENOENT ? GF_ENOTFOUND : GF_EIO, "%s: %s", path,
                          strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return gf_err_set(err, GF_EIO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return gf_err_set(err, GF_ETOOBIG, "%s: larger than %zu bytes", path, max);
    }
    size_t cap = (size_t)st.st_size;
    char *buf = gf_malloc(cap + 1);
    if (buf == NULL) {
        close(fd);
        return gf_err_set(err, GF_ENOMEM, "%s: out of memory", path);
    }
    size_t got = 0;
    while (got < cap) {
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            gf_free(buf);
            return gf_err_set(err, GF_EIO, "%s: %s", path, strerror(e));
        }
        if (r == 0)
            break; // shrank while reading; take what is there
        got += (size_t)r;
    }
    close(fd);
    buf[got] = '\0';
    *out = buf;
    *len = got;
    return 0;
}

/* ---- manifest ------------------------------------------------------------------------- */

void audit_manifest_cleanup(struct audit_manifest *m)
{
    audit_names_free(m->segments, m->n_segments);
    memset(m, 0, sizeof(*m));
}

int audit_manifest_add(struct audit_manifest *m, const char *name)
{
    if (m->n_segments == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 8;
        char **nv = gf_realloc(m->segments, nc * sizeof(*nv));
        if (nv == NULL)
            return GF_ENOMEM;
        m->segments = nv;
        m->cap = nc;
    }
    char *s = gf_strdup(name);
    if (s == NULL)
        return GF_ENOMEM;
    m->segments[m->n_segments++] = s;
    return 0;
}

static void manifest_mac(const uint8_t *key, const char *body, size_t n, uint8_t out[32])
{
    // MAC over domain || NUL || SHA-256(body): the digest keeps the message fixed-size.
    uint8_t d[GF_SHA256_LEN];
    gf_sha256(body, n, d);
    char msg[sizeof(AUDIT_MANIFEST_DOMAIN) + GF_SHA256_LEN];
    memcpy(msg, AUDIT_MANIFEST_DOMAIN, sizeof(AUDIT_MANIFEST_DOMAIN));
    memcpy(msg + sizeof(AUDIT_MANIFEST_DOMAIN), d, GF_SHA256_LEN);
    gf_hmac_sha256(key, GF_AUDIT_KEY_LEN, msg, sizeof(msg), out);
}

static int manifest_body(struct gf_buf *b, const struct audit_manifest *m)
{
    int rc = gf_buf_puts(b, "{\"version\":1,\"segments\":[");
    for (size_t i = 0; rc == 0 && i < m->n_segments; i++) {
        if (i)
            rc = gf_buf_putc(b, ',');
        if (rc == 0)
            rc = gf_buf_append_json_str(b, m->segments[i], strlen(m->segments[i]));
    }
    char hex[AUDIT_HEX_LEN + 1];
    gf_hex(m->ckpt_hash, GF_SHA256_LEN, hex);
    if (rc == 0)
        rc = gf_buf_printf(b, "],\"checkpoint\":{\"seq\":%" PRIu64 ",\"hash\":\"%s\"}}",
                           m->ckpt_seq, hex);
    return rc;
}

int audit_manifest_write(const char *dir, const uint8_t *key, const struct audit_manifest *m,
                         struct gf_err *err)
{
    struct gf_buf b;
    gf_buf_init(&b, 64u << 20);
    char *tmp = audit_path(dir, AUDIT_MANIFEST ".tmp"), *dst = audit_path(dir, AUDIT_MANIFEST);
    int rc = 0, fd = -1;
    if (tmp == NULL || dst == NULL || manifest_body(&b, m) != 0) {
        rc = gf_err_set(err, GF_ENOMEM, "audit manifest: out of memory");
        goto out;
    }
    uint8_t mac[GF_SHA256_LEN];
    manifest_mac(key, b.data, b.len, mac);
    char hex[AUDIT_HEX_LEN + 1];
    gf_hex(mac, sizeof(mac), hex);
    if (gf_buf_printf(&b, "\n{\"mac\":\"%s\"}\n", hex) != 0) {
        rc = gf_err_set(err, GF_ENOMEM, "audit manifest: out of memory");
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = gf_err_set(err, GF_EIO, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    size_t off = 0;
    while (off < b.len) {
        ssize_t w = write(fd, b.data + off, b.len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = gf_err_set(err, GF_EIO, "%s: %s", tmp, w < 0 ? strerror(errno) : "short write");
            goto out;
        }
        off += (size_t)w;
    }
    int sync_rc = fdatasync(fd), close_rc = close(fd); // closed either way
    fd = -1;
    if (sync_rc != 0 || close_rc != 0) {
        rc = gf_err_set(err, GF_EIO, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    if (rename(tmp, dst) != 0) {
        rc = gf_err_set(err, GF_EIO, "%s: %s", dst, strerror(errno));
        goto out;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0)
            rc = gf_err_set(err, GF_EIO, "%s: fsync: %s", dir, strerror(errno));
        close(dfd);
    }
out:
    if (fd >= 0)
        close(fd);
    gf_buf_cleanup(&b);
    gf_free(tmp);
    gf_free(dst);
    return rc;
}

int audit_manifest_read(const char *dir, const uint8_t *key, struct audit_manifest *m,
                        struct gf_err *err)
{
    memset(m, 0, sizeof(*m));
    char *path = audit_path(dir, AUDIT_MANIFEST), *text = NULL;
    size_t len = 0;
    cJSON *body = NULL, *macj = NULL;
    if (path == NULL)
        return gf_err_set(err, GF_ENOMEM, "audit manifest: out of memory");
    int rc = audit_read_file(path, 64u << 20, &text, &len, err);
    if (rc != 0)
        goto out;
    char *nl = memchr(text, '\n', len);
    if (nl == NULL) {
        rc = gf_err_set(err, GF_EFORMAT, AUDIT_MANIFEST ": not two lines");
        goto out;
    }
    size_t blen = (size_t)(nl - text);
    body = cJSON_ParseWithLength(text, blen);
    macj = cJSON_ParseWithLength(nl + 1, len - blen - 1);
    if (body == NULL || macj == NULL) {
        rc = gf_err_set(err, gf_audit_json_valid(text, blen) ? GF_ENOMEM : GF_EFORMAT,
                        AUDIT_MANIFEST ": not valid JSON");
        goto out;
    }
    const cJSON *mac = cJSON_GetObjectItemCaseSensitive(macj, "mac");
    uint8_t got[GF_SHA256_LEN];
    if (!cJSON_IsString(mac) ||
        audit_unhex(mac->valuestring, strlen(mac->valuestring), got, sizeof(got)) != 0) {
        rc = gf_err_set(err, GF_EFORMAT, AUDIT_MANIFEST ": no mac");
        goto out;
    }
    if (key != NULL) {
        uint8_t want[GF_SHA256_LEN];
        manifest_mac(key, text, blen, want);
        if (!gf_ct_equal(got, want, sizeof(want))) {
            rc = gf_err_set(err, GF_EFORMAT,
                            AUDIT_MANIFEST ": MAC does not match (edited, or another audit key)");
            goto out;
        }
    }
    const cJSON *segs = cJSON_GetObjectItemCaseSensitive(body, "segments");
    const cJSON *ck = cJSON_GetObjectItemCaseSensitive(body, "checkpoint");
    const cJSON *cseq = cJSON_GetObjectItemCaseSensitive(ck, "seq");
    const cJSON *chash = cJSON_GetObjectItemCaseSensitive(ck, "hash");
    if (!cJSON_IsArray(segs) || !cJSON_IsNumber(cseq) || cseq->valuedouble < 0 ||
        cseq->valuedouble > 9007199254740992.0 || !cJSON_IsString(chash) ||
        audit_unhex(chash->valuestring, strlen(chash->valuestring), m->ckpt_hash,
                    GF_SHA256_LEN) != 0) {
        rc = gf_err_set(err, GF_EFORMAT, AUDIT_MANIFEST ": missing segments or checkpoint");
        goto out;
    }
    m->ckpt_seq = (uint64_t)cseq->valuedouble;
    const cJSON *s;
    cJSON_ArrayForEach(s, segs)
    {
        uint64_t first;
        if (!cJSON_IsString(s) || !audit_seg_parse(s->valuestring, &first)) {
            rc = gf_err_set(err, GF_EFORMAT, AUDIT_MANIFEST ": bad segment name");
            goto out;
        }
        if (audit_manifest_add(m, s->valuestring) != 0) {
            rc = gf_err_set(err, GF_ENOMEM, AUDIT_MANIFEST ": out of memory");
            goto out;
        }
    }
out:
    if (rc != 0)
        audit_manifest_cleanup(m);
    cJSON_Delete(body);
    cJSON_Delete(macj);
    gf_free(text);
    gf_free(path);
    return rc;
}

/* ---- key -------------------------------------------------------------------------------- */

char *gf_audit_default_key_path(const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    size_t slash = n;
    while (slash > 0 && dir[slash - 1] != '/')
        slash--;
    // "audit" -> "audit.key" beside it; "/data/audit" -> "/data/audit.key"
    const char *base = "audit.key";
    size_t bl = strlen(base);
    char *p = gf_malloc(slash + bl + 1);
    if (p == NULL)
        return NULL;
    memcpy(p, dir, slash);
    memcpy(p + slash, base, bl + 1);
    return p;
}

int gf_audit_key_load(const char *path, bool create, uint8_t key[GF_AUDIT_KEY_LEN],
                      struct gf_err *err)
{
    const char *env = getenv("GARDEFOU_AUDIT_KEY");
    if (env != NULL && *env != '\0') {
        if (audit_unhex(env, strlen(env), key, GF_AUDIT_KEY_LEN) != 0)
            return gf_err_set(err, GF_EINVAL, "GARDEFOU_AUDIT_KEY: expected 64 hex digits");
        return 0;
    }
    if (path == NULL)
        return gf_err_set(err, GF_EINVAL, "audit key: no key file given");
    char *text = NULL;
    size_t len = 0;
    struct gf_err e2 = {0};
    int rc = audit_read_file(path, 4096, &text, &len, &e2);
    if (rc == GF_ENOTFOUND && create) {
        char hex[2 * GF_AUDIT_KEY_LEN + 2];
        if (gf_random_bytes(key, GF_AUDIT_KEY_LEN) != 0)
            return gf_err_set(err, GF_EIO, "audit key: no randomness");
        gf_hex(key, GF_AUDIT_KEY_LEN, hex);
        hex[2 * GF_AUDIT_KEY_LEN] = '\n';
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
            return gf_err_set(err, GF_EIO, "%s: %s", path, strerror(errno));
        ssize_t w = write(fd, hex, 2 * GF_AUDIT_KEY_LEN + 1);
        int ok = w == 2 * GF_AUDIT_KEY_LEN + 1 && fsync(fd) == 0;
        close(fd);
        if (!ok) {
            unlink(path);
            return gf_err_set(err, GF_EIO, "%s: cannot write the audit key", path);
        }
        gf_log(GF_LOG_INFO, "audit", "event=key_created path=%s", path);
        return 0;
    }
    if (rc != 0) {
        gf_err_set(err, e2.code, "%s", e2.msg);
        return rc;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    rc = audit_unhex(text, len, key, GF_AUDIT_KEY_LEN);
    gf_free(text);
    if (rc != 0)
        return gf_err_set(err, GF_EFORMAT, "%s: expected 64 hex digits", path);
    return 0;
}
