/* io_fault.h — system-call fault injection for the audit tests, by symbol interposition: the
 * test executable defines open, read, write, fsync, ... so the audit library linked into it
 * calls these, which pass to the next definition (libc, or the sanitizer's interceptor) unless
 * armed. io_fail(call, n, err) makes the n-th call of that kind from now fail with errno err
 * (once); io_fail_path restricts the count to calls whose path contains a string. Include it in
 * one test file only. Works from any thread (the writer's). Built with _FILE_OFFSET_BITS=64 (as
 * meson does), open, ftruncate, truncate and fstat are the *64 symbols: the next ones are looked
 * up by those names. */
#ifndef GF_IO_FAULT_H
#define GF_IO_FAULT_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define GF_IO_UNUSED __attribute__((unused))

enum io_call {
    IO_OPEN,
    IO_READ,
    IO_WRITE,
    IO_FSYNC,
    IO_FDATASYNC,
    IO_FTRUNCATE,
    IO_TRUNCATE,
    IO_RENAME,
    IO_OPENDIR,
    IO_EVENTFD,
    IO_FSTAT,
    IO_UNLINK,
    IO_N
};

static const char *const io_call_names[IO_N] = {"open",      "read",     "write",  "fsync",
                                                "fdatasync", "ftruncate", "truncate", "rename",
                                                "opendir",   "eventfd",  "fstat",  "unlink"};

static atomic_int io_countdown[IO_N]; // 0: off; else the call that makes it reach 0 fails
static atomic_int io_repeat[IO_N];    // further calls that fail right after it
static atomic_int io_err[IO_N];
static atomic_int io_fired;           // faults injected since io_reset
static char io_path_filter[128];      // counted calls must name a path containing this ("" = any)

static void io_reset(void)
{
    for (int i = 0; i < IO_N; i++) {
        atomic_store(&io_countdown[i], 0);
        atomic_store(&io_repeat[i], 0);
    }
    atomic_store(&io_fired, 0);
    io_path_filter[0] = '\0';
}

static void io_fail(enum io_call c, int n, int err)
{
    atomic_store(&io_err[c], err);
    atomic_store(&io_repeat[c], 0);
    atomic_store(&io_countdown[c], n);
}

/* The n-th call from now and the times-1 calls after it fail. */
static void io_fail_times(enum io_call c, int n, int times, int err)
{
    io_fail(c, n, err);
    atomic_store(&io_repeat[c], times - 1);
}

static GF_IO_UNUSED void io_fail_path(const char *filter)
{
    snprintf(io_path_filter, sizeof(io_path_filter), "%s", filter ? filter : "");
}

/* Whether this call fails (sets errno). path may be NULL (fd calls ignore the filter). */
static int io_hit(enum io_call c, const char *path)
{
    if (atomic_load(&io_countdown[c]) == 0)
        return 0;
    if (path != NULL && io_path_filter[0] && strstr(path, io_path_filter) == NULL)
        return 0;
    if (atomic_fetch_sub(&io_countdown[c], 1) != 1)
        return 0;
    if (atomic_load(&io_repeat[c]) > 0) {
        atomic_fetch_sub(&io_repeat[c], 1);
        atomic_store(&io_countdown[c], 1);
    }
    atomic_fetch_add(&io_fired, 1);
    errno = atomic_load(&io_err[c]);
    return 1;
}

#define IO_NEXT(name, type) ((type)dlsym(RTLD_NEXT, name))

static int io_open_common(const char *sym, const char *path, int flags, va_list ap)
{
    mode_t mode = 0;
    if (flags & (O_CREAT | O_TMPFILE))
        mode = (mode_t)va_arg(ap, int);
    if (io_hit(IO_OPEN, path))
        return -1;
    return IO_NEXT(sym, int (*)(const char *, int, ...))(path, flags, mode);
}

int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    int r = io_open_common("open64", path, flags, ap);
    va_end(ap);
    return r;
}


ssize_t read(int fd, void *p, size_t n)
{
    if (io_hit(IO_READ, NULL))
        return -1;
    return IO_NEXT("read", ssize_t (*)(int, void *, size_t))(fd, p, n);
}

ssize_t write(int fd, const void *p, size_t n)
{
    if (io_hit(IO_WRITE, NULL))
        return -1;
    return IO_NEXT("write", ssize_t (*)(int, const void *, size_t))(fd, p, n);
}

int fsync(int fd)
{
    if (io_hit(IO_FSYNC, NULL))
        return -1;
    return IO_NEXT("fsync", int (*)(int))(fd);
}

int fdatasync(int fd)
{
    if (io_hit(IO_FDATASYNC, NULL))
        return -1;
    return IO_NEXT("fdatasync", int (*)(int))(fd);
}

int ftruncate(int fd, off_t len)
{
    if (io_hit(IO_FTRUNCATE, NULL))
        return -1;
    return IO_NEXT("ftruncate64", int (*)(int, off_t))(fd, len);
}


int truncate(const char *path, off_t len)
{
    if (io_hit(IO_TRUNCATE, path))
        return -1;
    return IO_NEXT("truncate64", int (*)(const char *, off_t))(path, len);
}


int rename(const char *from, const char *to); // stdio.h declares it only with its own header
int rename(const char *from, const char *to)
{
    if (io_hit(IO_RENAME, to))
        return -1;
    return IO_NEXT("rename", int (*)(const char *, const char *))(from, to);
}

DIR *opendir(const char *path)
{
    if (io_hit(IO_OPENDIR, path))
        return NULL;
    return IO_NEXT("opendir", DIR *(*)(const char *))(path);
}

int eventfd(unsigned int initval, int flags)
{
    if (io_hit(IO_EVENTFD, NULL))
        return -1;
    return IO_NEXT("eventfd", int (*)(unsigned int, int))(initval, flags);
}

int fstat(int fd, struct stat *st)
{
    if (io_hit(IO_FSTAT, NULL))
        return -1;
    return IO_NEXT("fstat64", int (*)(int, struct stat *))(fd, st);
}


int unlink(const char *path)
{
    if (io_hit(IO_UNLINK, path))
        return -1;
    return IO_NEXT("unlink", int (*)(const char *))(path);
}

#endif
