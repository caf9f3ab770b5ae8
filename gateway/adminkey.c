/* adminkey.c — the admin secret: GARDEFOU_ADMIN_KEY, or DATA_DIR/admin.key (mode 0600) created on
 * first start. Invariant: the file is created with O_EXCL and mode 0600 before the secret is
 * written, so no other user can ever read it, and an existing file is never overwritten. */
#include "gateway/keys_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ADMIN_RANDOM_LEN 40

static int trimmed_copy(const char *s, size_t n, char **out, struct gf_err *err, const char *where)
{
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        n--;
    if (n < GF_ADMIN_KEY_MIN)
        return gf_err_set(err, GF_EINVAL, "%s: the admin key must have at least %d characters",
                          where, GF_ADMIN_KEY_MIN);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
            return gf_err_set(err, GF_EINVAL, "%s: the admin key must be printable ASCII", where);
    *out = gf_strndup(s, n);
    return *out ? 0 : gf_err_set(err, GF_ENOMEM, "out of memory");
}

static int create_file(const char *path, char **out, struct gf_err *err)
{
    char key[6 + ADMIN_RANDOM_LEN + 2];
    memcpy(key, "gfadm_", 6);
    if (gf_apikey_random_b62(key + 6, ADMIN_RANDOM_LEN) != 0)
        return gf_err_set(err, GF_EIO, "admin key: no randomness");
    key[6 + ADMIN_RANDOM_LEN] = '\n';
    key[6 + ADMIN_RANDOM_LEN + 1] = '\0';
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == EEXIST ? GF_EAGAIN
                               : gf_err_set(err, GF_EIO, "%s: %s", path, strerror(errno));
    size_t n = strlen(key);
    bool ok = write(fd, key, n) == (ssize_t)n && fsync(fd) == 0;
    close(fd);
    if (!ok) {
        unlink(path);
        return gf_err_set(err, GF_EIO, "%s: cannot write", path);
    }
    int rc = trimmed_copy(key, n, out, err, path);
    memset(key, 0, sizeof(key));
    return rc;
}

int gf_admin_key_load(const char *data_dir, bool create, char **out, bool *created,
                      struct gf_err *err)
{
    *out = NULL;
    if (created)
        *created = false;
    const char *env = getenv(GF_ADMIN_KEY_ENV);
    if (env && *env)
        return trimmed_copy(env, strlen(env), out, err, GF_ADMIN_KEY_ENV);
    if (data_dir == NULL || *data_dir == '\0')
        return gf_err_set(err, GF_EINVAL,
                          "no admin key: set " GF_ADMIN_KEY_ENV " or give a data directory");
    char path[4096];
    int n = snprintf(path, sizeof(path), "%s/admin.key", data_dir);
    if (n < 0 || (size_t)n >= sizeof(path))
        return gf_err_set(err, GF_EINVAL, "%s: path too long", data_dir);
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0 && errno == ENOENT && create) {
            if (mkdir(data_dir, 0700) != 0 && errno != EEXIST)
                return gf_err_set(err, GF_EIO, "%s: cannot create: %s", data_dir, strerror(errno));
            int rc = create_file(path, out, err);
            if (rc == GF_EAGAIN) // another process made it first: read theirs
                continue;
            if (rc == 0 && created)
                *created = true;
            return rc;
        }
        if (fd < 0)
            return gf_err_set(err, errno == ENOENT ? GF_ENOTFOUND : GF_EIO, "%s: %s", path,
                              strerror(errno));
        struct stat st;
        if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            close(fd);
            return gf_err_set(err, GF_EIO, "%s: not a regular file", path);
        }
        if (st.st_mode & 077) {
            close(fd);
            return gf_err_set(err, GF_EPERM,
                              "%s: readable by others (mode %03o); run chmod 600 on it", path,
                              (unsigned)(st.st_mode & 0777));
        }
        char buf[512];
        ssize_t r = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (r < 0)
            return gf_err_set(err, GF_EIO, "%s: %s", path, strerror(errno));
        int rc = trimmed_copy(buf, (size_t)r, out, err, path);
        memset(buf, 0, sizeof(buf));
        return rc;
    }
    return gf_err_set(err, GF_EIO, "%s: cannot create or read", path);
}
